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
//!   tessera_ffi::Wallet ──Mutex──▶ tessera_core::Wallet<SqliteStore>
//!     ▲                                   │ storage_key(salt)
//!     └──── Keystore (foreign trait) ◀────┘ via KeystoreKeyProvider
//! ```
//!
//! The interface is declared with proc-macros; `udl/tessera.udl` is its
//! readable listing, and `tests/udl_contract.rs` checks that the built
//! library exports exactly what the listing says (see
//! `docs/decisions/0002-ffi-interface.md`).

mod error;
mod keystore;
mod types;
mod wallet;

pub use error::{KeystoreError, WalletError};
pub use keystore::{Keystore, KeystoreKeyProvider, generate_storage_key};
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
