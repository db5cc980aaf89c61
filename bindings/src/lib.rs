//! # tessera-ffi
//!
//! Tessera's wallet for Kotlin (Android, JVM) and Swift (iOS), through
//! [uniffi](https://mozilla.github.io/uniffi-rs/). A thin layer: every
//! exported item wraps the `tessera-core` item of the same name, converts
//! types at the edge (keys and ids as lowercase hex, timestamps as Unix
//! seconds) and turns errors into one `thiserror` enum per domain whose text
//! field is `error_message` (a field called `message` would clash with
//! Kotlin's `Throwable.message`).
//!
//! ```text
//!   Kotlin / Swift app
//!     │  Wallet.create(path, keystore) · import · tickets · balance · …
//!     ▼
//!   tessera_ffi::Wallet ──Mutex<Slot>──▶ WalletCard(tessera_core::Wallet<SqliteStore>)
//!     │   ▲                         │        (or, while a P2pNode runs, the node task owns it)
//!     │   └── Keystore (foreign) ◀──┘ storage_key(salt) via KeystoreKeyProvider
//!     ├── offer_transfer · handle_transfer · accept_offer · decline_offer · transfers   (transfer)
//!     ├── process_apdu (HCE card) · nfc_transfer(NfcChannel (foreign), bytes)           (nfc)
//!     ├── start_node → P2pNode: offer · accept · decline · next_event · stop            (p2p)
//!     └── sync · buy · refund · top_up · withdraw   async, on the library's runtime     (registry)
//! ```
//!
//! The interface is declared with proc-macros; `udl/tessera.udl` is its
//! readable listing, and `tests/udl_contract.rs` checks that the built
//! library exports exactly what the listing says (see
//! `docs/decisions/0002-ffi-interface.md`).

mod error;
mod keystore;
mod nfc;
mod p2p;
mod registry;
mod runtime;
mod transfer;
mod types;
mod wallet;

pub use error::{
    KeystoreError, NfcChannelError, NfcTransferError, P2pError, RegistryError, TransferError, WalletError,
};
pub use keystore::{Keystore, KeystoreKeyProvider, generate_storage_key};
pub use nfc::{ExaminationResult, NfcChannel, NfcTransferStep};
pub use p2p::{NodeConfig, NodeEvent, P2pNode, default_node_config, loopback_node_config};
pub use registry::SyncReport;
pub use transfer::{
    ItemSummary, OfferMade, OfferSummary, OfferTerms, Retransmit, Role, TransferEvent, TransferStep, TransferSummary,
};
pub use types::{
    Amount, Balance, Direction, HistoryEntry, Holding, InstrumentState, InstrumentSummary, Kind, Status,
    VerifiedInstrument,
};
pub use wallet::Wallet;

uniffi::setup_scaffolding!("tessera");

/// The version of this library, for an app's about screen and bug reports.
/// Also the cheapest call there is, which the JVM suite uses to measure the
/// cost of one crossing.
#[uniffi::export]
pub fn library_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
