//! The wallet store: a trait, its records, and the SQLite implementation.
//!
//! Reads are plain queries. Every change goes through [`WalletStore::apply`]
//! as one [`WriteBatch`] that is applied entirely or not at all, so a step
//! that moves value (an instrument out, its history line, the exchange's new
//! state) can never be half-written.
//!
//! Secrets reach a store only sealed (see [`crate::sealing`]): no store
//! implementation can leak a private key.

use crate::clock::Timestamp;
use crate::crypto::PublicKey;
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Amount, Instrument, Kind, Status};

mod sqlite;
pub use sqlite::SqliteStore;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, locking, SQL).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A write conflicts with what is stored (insert of an existing row,
    /// update of a missing one). Nothing in its batch was applied.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// Stored data does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer version of Tessera.
    #[error("database schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// Version in the file.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The wallet's identity at the registry.
    Account,
    /// Holds one instrument.
    Holder,
}

impl KeyRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Account => "account",
            KeyRole::Holder => "holder",
        }
    }
    /// Parses [`KeyRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "account" => Some(KeyRole::Account),
            "holder" => Some(KeyRole::Holder),
            _ => None,
        }
    }
}

/// A private key, sealed, with its public half.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public key.
    pub public: PublicKey,
    /// What it is for.
    pub role: KeyRole,
    /// The sealed private key (nonce ‖ ciphertext ‖ tag).
    pub sealed: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("public", &self.public)
            .field("role", &self.role)
            .field("sealed", &"[REDACTED]")
            .finish()
    }
}

/// Where an instrument stands from this wallet's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holding {
    /// This wallet holds it and may present or offer it.
    Held,
    /// Endorsed to someone, receipt not yet seen: it may not be presented or
    /// offered again.
    PendingOut,
    /// Passed on (receipt seen) or spent; kept as evidence for reconciliation.
    Gone,
}

impl Holding {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Holding::Held => "held",
            Holding::PendingOut => "pending-out",
            Holding::Gone => "gone",
        }
    }
    /// Parses [`Holding::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "held" => Some(Holding::Held),
            "pending-out" => Some(Holding::PendingOut),
            "gone" => Some(Holding::Gone),
            _ => None,
        }
    }
}

/// An instrument in the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentRecord {
    /// The instrument as last known (the tip may be someone else's after a transfer).
    pub instrument: Instrument,
    /// This wallet's key that holds (or held) it.
    pub holder: PublicKey,
    /// Where it stands.
    pub holding: Holding,
    /// Uses left as this wallet knows.
    pub uses_left: u16,
    /// Life-cycle status as this wallet knows.
    pub status: Status,
    /// Presentations made (the examination counter).
    pub exam_counter: u32,
    /// Last change.
    pub updated_at: Timestamp,
}

/// An instrument's list row, read without decoding its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentSummary {
    /// The instrument.
    pub id: InstrumentId,
    /// Its kind.
    pub kind: Kind,
    /// A one-line label.
    pub label: String,
    /// Value, for notes.
    pub amount: Option<Amount>,
    /// Event or programme, for tickets and coupons.
    pub event_id: Option<String>,
    /// End of validity.
    pub valid_until: Timestamp,
    /// Uses left.
    pub uses_left: u16,
    /// Life-cycle status.
    pub status: Status,
    /// Where it stands.
    pub holding: Holding,
    /// Sequence of the tip.
    pub sequence: u32,
    /// Last change.
    pub updated_at: Timestamp,
}

impl InstrumentRecord {
    /// The list row for this record.
    pub fn summary(&self) -> InstrumentSummary {
        let attributes = self.instrument.attributes();
        let event_id = match attributes {
            crate::Attributes::Ticket(t) => Some(t.event_id.clone()),
            crate::Attributes::Coupon(c) => Some(c.program.clone()),
            crate::Attributes::Note(_) => None,
        };
        InstrumentSummary {
            id: self.instrument.id(),
            kind: self.instrument.kind(),
            label: attributes.label(),
            amount: attributes.amount().cloned(),
            event_id,
            valid_until: attributes.validity().1,
            uses_left: self.uses_left,
            status: self.status,
            holding: self.holding,
            sequence: self.instrument.sequence(),
            updated_at: self.updated_at,
        }
    }
}

/// Which way value moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Into this wallet.
    In,
    /// Out of this wallet.
    Out,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One line of the transaction history: every movement of money or tickets
/// in or out (seed 000: the storage device's transaction history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Order of recording; assigned by the store (pass 0 when appending).
    pub seq: u64,
    /// When it happened.
    pub time: Timestamp,
    /// In or out.
    pub direction: Direction,
    /// Kind of instrument.
    pub kind: Kind,
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// Value moved, for notes (and prices).
    pub amount: Option<Amount>,
    /// The other party's key, when known.
    pub counterparty: Option<PublicKey>,
    /// The exchange it belongs to, when any.
    pub exchange: Option<ExchangeId>,
    /// What happened, for people ("issued", "sent to …", "received from …").
    pub memo: String,
}

/// One presentation at a gate, with the gate's examination certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExaminationRecord {
    /// Order of recording; assigned by the store.
    pub seq: u64,
    /// The instrument presented.
    pub instrument_id: InstrumentId,
    /// The gate's key.
    pub gate: PublicKey,
    /// The instruction carried out (enter, punch, …).
    pub instruction: String,
    /// The wallet's examination counter for this instrument after it.
    pub counter: u32,
    /// When.
    pub time: Timestamp,
    /// The gate's signed examination certificate, encoded.
    pub certificate: Vec<u8>,
}

/// A chain the wallet refused because it forks against a registered
/// certificate the wallet holds: kept only to upload at the next
/// reconciliation, where the registry (which stores the registered link)
/// builds the equivocation proof the wallet cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    /// Order of recording; assigned by the store.
    pub seq: u64,
    /// The refused chain (verified before it was kept).
    pub chain: Instrument,
    /// When it was refused.
    pub kept_at: Timestamp,
}

/// A protocol exchange in progress, stored before each message leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    /// The exchange.
    pub id: ExchangeId,
    /// Which protocol ("transfer-out", "transfer-in", …).
    pub protocol: String,
    /// The protocol's own encoding of its state.
    pub state: Vec<u8>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One change; see [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Set a metadata value.
    PutMeta(String, Vec<u8>),
    /// Add a key; conflicts if the public key is stored.
    InsertKey(KeyRecord),
    /// Add an instrument; conflicts if its id is stored.
    InsertInstrument(InstrumentRecord),
    /// Replace an instrument; conflicts if its id is not stored.
    UpdateInstrument(InstrumentRecord),
    /// Add or replace an exchange's state.
    PutPending(PendingRecord),
    /// Forget an exchange (no-op if absent).
    DeletePending(ExchangeId),
    /// Append a history line.
    AppendHistory(HistoryEntry),
    /// Append an examination record.
    AppendExamination(ExaminationRecord),
    /// Keep a refused fork for upload (no-op if the same chain tip of the
    /// same instrument is kept already).
    KeepForkEvidence(ForkEvidence),
    /// Forget the kept forks of an instrument (no-op if none).
    DropForkEvidence(InstrumentId),
}

/// Changes applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch(pub Vec<Write>);

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a change.
    pub fn push(&mut self, write: Write) -> &mut Self {
        self.0.push(write);
        self
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which instruments to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstrumentFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this holding.
    pub holding: Option<Holding>,
}

/// Persistent wallet state.
pub trait WalletStore: Send {
    /// A metadata value.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A key by its public half.
    fn key(&self, public: &PublicKey) -> Result<Option<KeyRecord>, StoreError>;
    /// Keys of a role.
    fn keys(&self, role: KeyRole) -> Result<Vec<KeyRecord>, StoreError>;
    /// An instrument.
    fn instrument(&self, id: &InstrumentId) -> Result<Option<InstrumentRecord>, StoreError>;
    /// List rows, newest change first.
    fn instruments(&self, filter: InstrumentFilter) -> Result<Vec<InstrumentSummary>, StoreError>;
    /// An exchange in progress.
    fn pending(&self, id: &ExchangeId) -> Result<Option<PendingRecord>, StoreError>;
    /// All exchanges in progress.
    fn all_pending(&self) -> Result<Vec<PendingRecord>, StoreError>;
    /// The newest `limit` history lines, newest first.
    fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Examination records, oldest first, for one instrument or all.
    fn examinations(&self, instrument: Option<&InstrumentId>) -> Result<Vec<ExaminationRecord>, StoreError>;
    /// Kept fork evidence, oldest first.
    fn fork_evidence(&self) -> Result<Vec<ForkEvidence>, StoreError>;
    /// Applies every change in `batch`, or none.
    fn apply(&mut self, batch: WriteBatch) -> Result<(), StoreError>;
}
