//! # tessera-core
//!
//! The heart of Tessera: one model of instruments (tickets, e-money notes and
//! coupons), one verifier that wallets, gates and the service provider all
//! use, the wallet store, and the [`Wallet`] facade that apps embed.
//!
//! Nothing in this crate opens a socket or reads a clock on its own: time is
//! passed in through [`Clock`], storage sits behind [`store::WalletStore`],
//! and signing goes through the [`Signer`] trait so that a platform keystore
//! can hold keys.
//!
//! ```text
//!   issuer ──signs──▶ Genesis ──▶ Endorsement 1 ──▶ … ──▶ Endorsement n
//!                         ▲            (signed by the previous holder)
//!   registry (SP) ──signs──▶ RegisteredCertificate  (compacts a chain)
//!                                        │
//!                    verify::Verifier ◀──┘  one routine for wallet, gate, SP
//! ```

pub mod apdu;
pub mod authority;
pub mod bench;
pub mod clock;
pub mod codec;
pub mod crypto;
pub mod ids;
pub mod instrument;
pub mod presentation;
pub mod proof;
pub mod reconcile;
pub mod sealing;
pub mod store;
pub mod transfer;
pub mod trust;
pub mod verify;
pub mod wallet;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use codec::{DecodeError, Wire};
pub use crypto::{Context, Digest, LocalSigner, PublicKey, SecretKey, Signature, Signer, SignerError};
pub use ids::{ExchangeId, InstrumentId};
pub use instrument::{
    Amount, Attributes, CouponAttributes, Endorsement, Genesis, Instrument, InstrumentState, Kind, NoteAttributes,
    RegisteredCertificate, Signed, Status, TicketAttributes,
};
pub use proof::{EquivocationProof, ProofError};
pub use trust::{DenyList, Role, TrustEntry, TrustList, TrustListBody};
pub use verify::{Rejection, VerifiedInstrument, Verifier};
pub use wallet::{Wallet, WalletError};
