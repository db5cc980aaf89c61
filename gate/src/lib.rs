//! # tessera-gate
//!
//! The gate at a venue entrance: it reads a phone over NFC (the phone is the
//! card, the gate the reader), decides **offline** from the registry's trust
//! list and deny list, its own used set, the validity window and its zones,
//! shows admit or refuse with the seat and guidance, and keeps every record
//! in SQLite. The protocol itself lives in `tessera_core::presentation`;
//! this crate adds the key, the store, the screen and the transports.
//!
//! ```text
//!  NfcReader (nfc1/libnfc: pcsc, pn532_uart, acr122_usb)   feature `nfc`
//!      │ Transceiver
//!      ▼
//!  Gate::tap ──▶ GateExamination (core) ──▶ decide (core Verifier + used set)
//!      │                                        │
//!      ▼                                        ▼
//!  screen::render                          GateStore (SQLite: records, used)
//! ```

pub mod bench;
pub mod gate;
#[cfg(feature = "mesh")]
pub mod mesh;
#[cfg(feature = "nfc")]
pub mod nfc;
pub mod paper;
pub mod phone;
pub mod screen;
pub mod store;
#[cfg(feature = "registry")]
pub mod sync;
pub mod vpcd;

pub use gate::{Decision, Gate, GateAppError, MergeReport, TapReport, Transceiver};
pub use store::GateStore;
