//! # tessera-registry
//!
//! The service provider (DESIGN §1, §3.3–3.5): it certifies issuer, gate
//! and merchant keys, issues tickets and e-money, and reconciles every
//! ownership change wallets and gates made offline against the
//! **registered-ticket list**.
//!
//! ```text
//!  wallet / gate ──HTTP (signed requests)──▶ api ──▶ service ──▶ store
//!                                                      │         (SQLite | PostgreSQL)
//!                                      tessera_core::Verifier, RegistryAuthority
//! ```

pub mod store;

pub use store::{PostgresRegistry, RegistryStore, SqliteRegistry, StoreError};
pub mod error;
mod lanes;
pub mod payment;
pub mod service;
pub mod wire;

pub use error::ApiError;
pub use service::Registry;
pub mod api;
pub mod bench;
pub mod embedded;
pub mod openapi;

pub use embedded::{EmbeddedRegistry, start_embedded};
pub mod client;
