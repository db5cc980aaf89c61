//! The registry's storage: the registered-ticket list, stored endorsements,
//! former-holder chains, equivocation proofs, flagged accounts, the deny
//! list, request nonces, certified parties and the e-money ledger.
//!
//! [`RegistryStore`] has two implementations, [`SqliteRegistry`] (one file,
//! no setup) and [`PostgresRegistry`] (several registry processes over one
//! database), and one conformance suite ([`conformance`]) that both run.
//!
//! Correctness under concurrency comes from the database, never from locks
//! in this process: `(instrument, sequence)` is the primary key of the
//! endorsement table, so two registry processes can never register two
//! endorsements for one step; account balances carry `CHECK (balance >= 0)`;
//! a note is spent by a conditional `UPDATE … WHERE status = 'active'`; every
//! multi-row change runs in one transaction, and the chain logic locks the
//! instrument's row (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE`
//! on SQLite) before it reads the current holder — or, on ingest's batch
//! path, writes it only if it is still the version read before
//! ([`ChainUpdate::seen`]).
//!
//! ```text
//! instruments (registered-ticket list)
//!  id ─ holder, holder_since, sequence, tip
//!   │
//!   └─▶ endorsements PRIMARY KEY (instrument, sequence): signer, new_holder, …
//!         │
//!         └─ former_holders (a view): each endorsement at sequence s makes its
//!            signer the holder from s-1 until s-1, after the record at s-2
//! ```

use tessera_core::instrument::Kind;
use tessera_core::{Amount, Digest, ExchangeId, InstrumentId, PublicKey, Role, Status, Timestamp};

pub mod conformance;
mod logic;
mod postgres;
mod sqlite;

pub use postgres::PostgresRegistry;
pub use sqlite::SqliteRegistry;

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, connection, SQL).
    #[error("database: {0}")]
    Backend(String),
    /// Stored data does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer build.
    #[error("database schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// Version in the database.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// An account would go below zero. Nothing was applied.
    #[error("insufficient funds: balance {balance}, needed {needed}")]
    InsufficientFunds {
        /// The balance before.
        balance: u64,
        /// What the change needed.
        needed: u64,
    },
    /// A note offered for spending is not an active note held by the given key.
    #[error("note {0} cannot be spent (unknown, already spent, or held by another key)")]
    NoteNotSpendable(InstrumentId),
    /// A ledger reference was used before. Nothing was applied.
    #[error("ledger reference {0} was already used")]
    DuplicateReference(String),
    /// An instrument that must exist does not.
    #[error("unknown instrument {0}")]
    UnknownInstrument(InstrumentId),
    /// A gate used a bag number twice. Nothing was applied.
    #[error("bag number {number} of gate {gate} was already settled")]
    BagReused {
        /// The gate.
        gate: PublicKey,
        /// The number.
        number: u64,
    },
    /// An examination record was settled before. Nothing was applied.
    #[error("examination record {0} was already settled")]
    AlreadySettled(Digest),
    /// An instrument to retire is not active or not held by the given key.
    #[error("instrument {0} is not active under the given holder")]
    NotActive(InstrumentId),
    /// A sale's refund found a link registered, since it was judged, at an
    /// item it waited for. Nothing was applied: judge the sale again.
    #[error("sale {} changed since it was judged: judge it again", .0.to_hex())]
    SaleChanged(ExchangeId),
}

/// A shorthand.
pub type StoreResult<T> = Result<T, StoreError>;

/// One row of the registered-ticket list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentRow {
    /// The instrument.
    pub id: InstrumentId,
    /// Ticket, note or coupon.
    pub kind: Kind,
    /// The issuer key.
    pub issuer: PublicKey,
    /// The wire bytes of its `Signed<Genesis>`.
    pub genesis: Vec<u8>,
    /// The current holder key.
    pub holder: PublicKey,
    /// The sequence at which the current holder received it.
    pub holder_since: u32,
    /// The registered tip sequence (equal to `holder_since`).
    pub sequence: u32,
    /// Digest of the registered tip link (the genesis at sequence 0).
    pub tip: Digest,
    /// Life-cycle status.
    pub status: Status,
    /// Uses left.
    pub uses_left: u16,
    /// A note's value.
    pub value: Option<Amount>,
    /// The account that bought or received it from the registry, if known.
    pub account: Option<PublicKey>,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A stored endorsement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Its sequence.
    pub sequence: u32,
    /// Digest of the signed endorsement.
    pub digest: Digest,
    /// Digest of the link before it.
    pub previous: Digest,
    /// The holder key that signed it.
    pub signer: PublicKey,
    /// The holder it names.
    pub new_holder: PublicKey,
    /// The wire bytes of the `Signed<Endorsement>`.
    pub bytes: Vec<u8>,
}

/// A holder the instrument had before its current one (seed 003 [1465–1467]):
/// each record points at the one before it. Read from the registered
/// endorsements (each makes its signer a former holder), never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormerHolder {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The former holder key.
    pub holder: PublicKey,
    /// The sequence at which it received the instrument.
    pub from_sequence: u32,
    /// The last sequence at which it held it.
    pub until_sequence: u32,
    /// `from_sequence` of the record before this one.
    pub previous_from: Option<u32>,
    /// When the record was made.
    pub recorded_at: Timestamp,
}

/// What is stored of one instrument, for the verifier not to check its
/// signatures again (see `tessera_core::verify::VerifiedPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrefix {
    /// The wire bytes of its `Signed<Genesis>`.
    pub genesis: Vec<u8>,
    /// Stored endorsements, by sequence, each with the key that signed it.
    pub links: Vec<tessera_core::verify::VerifiedLink>,
    /// Its row as this read saw it, from a backend that can apply a
    /// [`ChainUpdate`] against it ([`ChainUpdate::seen`]); `None` from the
    /// others.
    pub seen: Option<SeenRow>,
}

/// A row of the registered-ticket list as a read outside any write
/// transaction saw it, and which version of the row that was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRow {
    /// The row.
    pub row: InstrumentRow,
    /// Backend-defined: equal to the stored row's only while nothing has
    /// written the row since (PostgreSQL: its `xmin`).
    pub version: u64,
}

/// Verified links to apply to one instrument, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainUpdate {
    /// The instrument.
    pub instrument: InstrumentId,
    /// Consecutive links; they may start at or before the registered tip.
    pub links: Vec<LinkRecord>,
    /// The row as [`RegistryStore::stored_prefixes`] read it, if it did. A
    /// backend may apply a batch whose updates all carry one without
    /// locking and reading the rows again: it writes a row only if it is
    /// still that version, and otherwise applies the batch the locking way.
    /// The outcome is the same either way.
    pub seen: Option<SeenRow>,
}

/// What applying a [`ChainUpdate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // built once per upload, never stored in bulk
pub enum ChainOutcome {
    /// Links were registered (`added` may be 0 when all were known).
    Applied {
        /// New links registered.
        added: u32,
        /// The row after the change.
        row: InstrumentRow,
    },
    /// A link conflicts with the registered one at its sequence: the
    /// registered one stands. Links before it were applied.
    Conflict {
        /// The registered link.
        registered: LinkRecord,
        /// The uploaded link that lost.
        uploaded: LinkRecord,
        /// The row after the links before the conflict were applied.
        row: InstrumentRow,
    },
    /// The upload does not connect to the registered chain (a gap, or a
    /// link naming a previous digest the registry does not have).
    Disconnected {
        /// The sequence that did not connect.
        sequence: u32,
    },
    /// The registry does not know the instrument.
    Unknown,
    /// A link not yet registered is bound to an offer whose sale was
    /// refunded to its buyer: the delivery is void. Checked under the
    /// instrument's row lock, the one [`RegistryStore::refund_sale`] takes,
    /// so a refund and a delivery of one sale never both commit. Links
    /// before it were applied.
    SaleRefunded {
        /// The sequence of the refused link.
        sequence: u32,
        /// The refunded offer it is bound to.
        offer: ExchangeId,
    },
}

/// A stored proof that a holder key cheated on one instrument: an
/// `EquivocationProof` (double transfer, [`RegistryStore::record_equivocation`])
/// or a `UsedAfterTransferProof` (a stale copy presented at a gate,
/// [`RegistryStore::record_used_after_transfer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRecord {
    /// The instrument.
    pub instrument: InstrumentId,
    /// The sequence signed twice, or presented after it was passed on.
    pub sequence: u32,
    /// The key the proof names.
    pub signer: PublicKey,
    /// The proof's wire bytes.
    pub proof: Vec<u8>,
}

/// A stored equivocation proof.
pub type EquivocationRecord = ProofRecord;

/// Which misuse a [`ProofRecord`] proves: its table, and what the flag
/// and the deny list say. Both kinds are recorded by one routine per
/// backend, [`RegistryStore::record_proof`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofKind {
    /// `EquivocationProof`.
    DoubleTransfer,
    /// `UsedAfterTransferProof`.
    UsedAfterTransfer,
}

impl ProofKind {
    pub(crate) fn table(self) -> &'static str {
        match self {
            Self::DoubleTransfer => "equivocations",
            Self::UsedAfterTransfer => "used_after_transfer",
        }
    }
    pub(crate) fn flag_reason(self, r: &ProofRecord) -> String {
        match self {
            Self::DoubleTransfer => {
                format!("signed two endorsements of {} at sequence {}", r.instrument, r.sequence)
            }
            Self::UsedAfterTransfer => {
                format!("presented {} at sequence {} after passing it on", r.instrument, r.sequence)
            }
        }
    }
    pub(crate) fn deny_reason(self) -> &'static str {
        match self {
            Self::DoubleTransfer => "equivocation",
            Self::UsedAfterTransfer => "used after transfer",
        }
    }
}

/// Something a wallet learns at its next sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Store-assigned, increasing; 0 before it is stored.
    pub id: u64,
    /// The key it is for (an account or holder key).
    pub recipient: PublicKey,
    /// What kind of notice (`conflict`, `gift`, `modification`, …).
    pub kind: String,
    /// The instrument concerned.
    pub instrument: Option<InstrumentId>,
    /// Kind-specific bytes.
    pub payload: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// What recording an equivocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EquivocationOutcome {
    /// False when this exact proof was stored before (nothing changed).
    pub new: bool,
    /// The deny-list version that added the instrument, if this call did.
    pub denied_at_version: Option<u64>,
}

/// A key the registry certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The key.
    pub key: PublicKey,
    /// Issuer, gate or merchant.
    pub role: Role,
    /// Its name.
    pub name: String,
    /// Certification lapses after this.
    pub not_after: Timestamp,
}

/// A note to spend: it must be active and registered to `holder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSpend {
    /// The note.
    pub id: InstrumentId,
    /// The key it must be registered to.
    pub holder: PublicKey,
}

/// One atomic e-money movement for an account: notes spent (value credited),
/// notes issued (value debited), and a payout to the outside world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteExchange {
    /// The account.
    pub account: PublicKey,
    /// The currency.
    pub currency: String,
    /// Notes given back to the registry.
    pub spend: Vec<NoteSpend>,
    /// Other instruments given back (a refunded ticket): each must be
    /// active and registered to its holder; it becomes `refunded`.
    pub retire: Vec<NoteSpend>,
    /// New instruments registered in the same transaction; notes (rows
    /// with `value`) are paid for from the account, tickets cost nothing here.
    pub issue: Vec<InstrumentRow>,
    /// Paid out of the e-money system (redemption to a bank, a sale's
    /// proceeds to the organiser).
    pub payout: u64,
    /// Paid into the e-money system (a refund's money from the organiser).
    pub paid_in: u64,
    /// Unique reference; a second use is refused.
    pub reference: String,
    /// Notices left in the same transaction: each instrument issued, for
    /// the key it is issued to, so that a wallet that never got the answer
    /// (the registry crashed after its commit, the link broke) finds it at
    /// its next sync.
    pub notices: Vec<Notice>,
}

/// An event an organiser created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// The organiser's name for it; unique.
    pub event_id: String,
    /// The certified issuer key that created it.
    pub organiser: PublicKey,
    /// A title people read.
    pub title: String,
    /// Zones (entrances) tickets can name.
    pub zones: Vec<String>,
    /// Tickets are valid from.
    pub valid_from: Timestamp,
    /// Tickets are valid until.
    pub valid_until: Timestamp,
    /// Face price of one ticket.
    pub price: Amount,
    /// Whether tickets may be passed on.
    pub transferable: bool,
    /// Uses per ticket.
    pub uses: u16,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A gift left at the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRow {
    /// Random id.
    pub gift_id: [u8; 16],
    /// The instrument, registered to the registry's issuer key meanwhile.
    pub instrument: InstrumentId,
    /// The sender's account.
    pub sender: PublicKey,
    /// The recipient's account.
    pub recipient: PublicKey,
    /// Where a declined gift goes back to.
    pub return_holder: PublicKey,
    /// `pending`, `accepted` or `declined`.
    pub state: String,
    /// The holder key it was settled to.
    pub settled_to: Option<PublicKey>,
    /// When it was left.
    pub created_at: Timestamp,
}

/// One examination record of a bag, as settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExaminationRow {
    /// Digest of the gate's certificate: the record's identity.
    pub certificate: Digest,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Admitted (the state change happened) or refused.
    pub admitted: bool,
    /// Uses left after it.
    pub uses_left: u16,
    /// Status after it.
    pub status: Status,
    /// When it happened.
    pub examined_at: Timestamp,
    /// The wire bytes of the holder's signed answer (`Signed<PresentationBody>`)
    /// of an admission settled from a bag; `None` for refusals and for
    /// certificates a wallet reported (they carry no answer).
    pub answer: Option<Vec<u8>>,
}

/// A gate's examination certificate a wallet uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExaminationReport {
    /// The record as a bag would settle it.
    pub record: ExaminationRow,
    /// The gate that signed it.
    pub gate: PublicKey,
    /// The wallet's examination counter the gate certified.
    pub counter: u32,
    /// The key that uploaded it.
    pub reported_by: PublicKey,
}

/// A sale the registry refunded to its buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRefund {
    /// The offer.
    pub offer_id: ExchangeId,
    /// The buyer's account.
    pub buyer: PublicKey,
    /// `elsewhere`, `double_sale` or `deadline`.
    pub reason: String,
    /// The items (instrument, sequence of the link that would deliver it)
    /// that had no registered link when the sale was judged. The refund
    /// locks their rows and is refused with [`StoreError::SaleChanged`] if
    /// any has one now.
    pub awaiting: Vec<(InstrumentId, u32)>,
}

/// A stored double-sale proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleSaleRecord {
    /// The offer the seller's holder key signed.
    pub offer_id: ExchangeId,
    /// The item of the offer it committed elsewhere.
    pub item: u32,
    /// The holder key that committed twice.
    pub signer: PublicKey,
    /// The wire bytes of the `DoubleSaleProof`.
    pub proof: Vec<u8>,
}

/// What settling one bag gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BagSettled {
    /// This bag's settlement (`bags` is 1).
    pub settlement: Settlement,
    /// The bag was settled before, byte for byte: nothing changed now.
    pub replayed: bool,
}

/// A gate's settlement totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settlement {
    /// Bags settled.
    pub bags: u64,
    /// Admissions settled.
    pub admitted: u64,
    /// Refusals recorded.
    pub refused: u64,
}

/// A change an organiser made to a ticket, waiting for its holder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModificationRow {
    /// Random id.
    pub modification_id: [u8; 16],
    /// The ticket.
    pub instrument: InstrumentId,
    /// The new zone.
    pub zone: String,
    /// The new seat.
    pub seat: Option<String>,
    /// The new validity window.
    pub valid_from: Timestamp,
    /// The new validity window.
    pub valid_until: Timestamp,
    /// `pending`, `accept`, `refuse` or `refund`.
    pub state: String,
    /// When it was made.
    pub created_at: Timestamp,
}

/// One line of the e-money ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The account it moved value for.
    pub account: PublicKey,
    /// Its currency.
    pub currency: String,
    /// What it added to the account's balance (negative: taken away).
    pub amount: i64,
}

/// Money totals for one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoneyTotals {
    /// Value of notes ever issued.
    pub issued: u64,
    /// Value of notes ever redeemed (spent back to the registry).
    pub redeemed: u64,
    /// Paid in by top-ups.
    pub paid_in: u64,
    /// Paid out by redemptions.
    pub paid_out: u64,
    /// Value of active notes, summed over the registered-ticket list.
    pub active_notes: u64,
    /// Sum of account balances.
    pub balances: u64,
}

/// The registry's storage. Every method is one transaction.
pub trait RegistryStore: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend_name(&self) -> &'static str;

    /// How many store transactions of one ingest should be in flight at
    /// once: more than one only where a second can use what the first
    /// leaves idle (a database server working while this process waits).
    fn writers(&self) -> usize {
        1
    }

    /// Registers a new instrument. `false` (and no change) if it exists.
    fn insert_instrument(&self, row: &InstrumentRow) -> StoreResult<bool>;
    /// One row of the registered-ticket list.
    fn instrument(&self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>>;
    /// The stored endorsements of an instrument, by sequence.
    fn links(&self, id: &InstrumentId) -> StoreResult<Vec<LinkRecord>>;
    /// The former-holder chain, newest first, following `previous_from`.
    fn former_holders(&self, id: &InstrumentId) -> StoreResult<Vec<FormerHolder>>;
    /// For each `(instrument, first, last)`: what is stored of it — the
    /// genesis bytes and the endorsements with a sequence in
    /// `first..=last`, by sequence — or `None` when it is not registered.
    /// A plain read, without locks or a write transaction: stored parts
    /// never change, and a part stored a moment later is only missed. A
    /// row it returns as [`StoredPrefix::seen`] may be stale by the time
    /// it is used, which [`ChainUpdate::seen`] allows for.
    fn stored_prefixes(&self, wanted: &[(InstrumentId, u32, u32)]) -> StoreResult<Vec<Option<StoredPrefix>>>;
    /// Applies verified links; each update independently, all in one
    /// transaction (the batch path of reconciliation ingest).
    fn apply_chains(&self, updates: &[ChainUpdate], now: Timestamp) -> StoreResult<Vec<ChainOutcome>>;
    /// Changes an instrument's status (and uses left) if it is registered to
    /// `holder` with status `from`. `false` and no change otherwise.
    fn set_status(
        &self,
        id: &InstrumentId,
        holder: &PublicKey,
        from: Status,
        to: Status,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Stores a proof of `kind`, flags its signer, optionally denies the
    /// instrument, and leaves the notices — all only the first time this
    /// proof is seen.
    fn record_proof(
        &self,
        kind: ProofKind,
        record: &ProofRecord,
        deny: bool,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<EquivocationOutcome>;
    /// Stored proofs of `kind` for an instrument.
    fn proofs(&self, kind: ProofKind, id: &InstrumentId) -> StoreResult<Vec<ProofRecord>>;
    /// [`RegistryStore::record_proof`] of a double transfer.
    fn record_equivocation(
        &self,
        record: &EquivocationRecord,
        deny: bool,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<EquivocationOutcome> {
        self.record_proof(ProofKind::DoubleTransfer, record, deny, notices, now)
    }
    /// Stored double-transfer proofs for an instrument.
    fn equivocations(&self, id: &InstrumentId) -> StoreResult<Vec<EquivocationRecord>> {
        self.proofs(ProofKind::DoubleTransfer, id)
    }
    /// [`RegistryStore::record_proof`] of a use after transfer.
    fn record_used_after_transfer(
        &self,
        record: &ProofRecord,
        deny: bool,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<EquivocationOutcome> {
        self.record_proof(ProofKind::UsedAfterTransfer, record, deny, notices, now)
    }
    /// Stored used-after-transfer proofs for an instrument.
    fn used_after_transfers(&self, id: &InstrumentId) -> StoreResult<Vec<ProofRecord>> {
        self.proofs(ProofKind::UsedAfterTransfer, id)
    }
    /// Why a key is flagged, if it is.
    fn flagged(&self, key: &PublicKey) -> StoreResult<Option<String>>;

    /// Adds an instrument to the deny list; returns the version that added
    /// it (the existing version if it was already denied).
    fn deny(&self, id: &InstrumentId, reason: &str, now: Timestamp) -> StoreResult<u64>;
    /// The current deny-list version and the entries added after `version`.
    fn deny_changes_since(&self, version: u64) -> StoreResult<(u64, Vec<(InstrumentId, u64)>)>;

    /// Records a request nonce; `false` if `(key, nonce)` was seen before.
    /// Nonces older than `forget_before` are pruned.
    fn use_nonce(&self, key: &PublicKey, nonce: &[u8], now: Timestamp, forget_before: Timestamp) -> StoreResult<bool>;

    /// Certifies (or re-certifies) a key; returns the new trust-list version.
    fn put_party(&self, party: &Party) -> StoreResult<u64>;
    /// All certified keys.
    fn parties(&self) -> StoreResult<Vec<Party>>;
    /// The trust-list version.
    fn trust_version(&self) -> StoreResult<u64>;

    /// Credits an account from outside (a top-up). The reference makes it
    /// idempotent: a second call with it changes nothing and returns `false`.
    fn top_up(&self, account: &PublicKey, amount: &Amount, reference: &str, now: Timestamp) -> StoreResult<bool>;
    /// Applies a [`NoteExchange`] atomically; returns the new balance.
    fn exchange_notes(&self, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64>;
    /// An account's balance.
    fn balance(&self, account: &PublicKey, currency: &str) -> StoreResult<u64>;
    /// The ledger line recorded under `reference`, if any: how a retried
    /// request finds that its first attempt committed.
    fn ledger_entry(&self, reference: &str) -> StoreResult<Option<LedgerEntry>>;
    /// Totals for a currency.
    fn money_totals(&self, currency: &str) -> StoreResult<MoneyTotals>;

    /// Creates an event; `false` (no change) if its id exists.
    fn put_event(&self, event: &EventRow) -> StoreResult<bool>;
    /// One event.
    fn event(&self, event_id: &str) -> StoreResult<Option<EventRow>>;
    /// Every event, by id.
    fn events(&self) -> StoreResult<Vec<EventRow>>;

    /// Leaves a gift and its notice for the recipient in one transaction.
    fn put_gift(&self, gift: &GiftRow, notice: &Notice) -> StoreResult<()>;
    /// One gift.
    fn gift(&self, gift_id: &[u8; 16]) -> StoreResult<Option<GiftRow>>;
    /// Pending gifts for a recipient account.
    fn pending_gifts(&self, recipient: &PublicKey) -> StoreResult<Vec<GiftRow>>;
    /// Moves a pending gift to `state`, settled to `holder`; `false` (no
    /// change) when it is not pending.
    fn settle_gift(&self, gift_id: &[u8; 16], state: &str, holder: &PublicKey) -> StoreResult<bool>;

    /// Settles a bag: its number (single-use per gate), each record (once
    /// ever), and the admitted records' state changes on the registered
    /// list, in one transaction. A reused number or an already settled
    /// record refuses the whole bag — except a byte-identical bag (the same
    /// `digest` under its number), which changes nothing and gets the
    /// settlement it had (`replayed`).
    fn settle_bag(
        &self,
        gate: &PublicKey,
        bag_number: u64,
        digest: &Digest,
        records: &[ExaminationRow],
        now: Timestamp,
    ) -> StoreResult<BagSettled>;
    /// A gate's totals.
    fn settlement(&self, gate: &PublicKey) -> StoreResult<Settlement>;
    /// The stored answers (`ExaminationRow::answer`) of the admissions of
    /// `ids` settled from bags, as `(instrument, answer bytes)`. A plain
    /// read: settled records never change.
    fn admitted_answers(&self, ids: &[InstrumentId]) -> StoreResult<Vec<(InstrumentId, Vec<u8>)>>;
    /// Records an examination certificate a wallet uploaded, and its state
    /// change (uses left, status) when the gate admitted, in one
    /// transaction. `Ok((false, row))` and no change when it was reported
    /// before; [`StoreError::UnknownInstrument`] and no change when the
    /// instrument is not registered. A bag carrying the same certificate
    /// still settles (the state change applies once either way: uses left
    /// only go down).
    fn report_examination(&self, report: &ExaminationReport, now: Timestamp) -> StoreResult<(bool, InstrumentRow)>;
    /// The examinations reported for an instrument, by counter.
    fn examination_reports(&self, id: &InstrumentId) -> StoreResult<Vec<ExaminationReport>>;

    /// Stores a modification and its notices in one transaction.
    fn put_modification(&self, m: &ModificationRow, notices: &[Notice]) -> StoreResult<()>;
    /// One modification.
    fn modification(&self, id: &[u8; 16]) -> StoreResult<Option<ModificationRow>>;
    /// Moves a pending modification to `state`; `false` when not pending.
    fn settle_modification(&self, id: &[u8; 16], state: &str) -> StoreResult<bool>;

    /// Refunds a sale: records it and applies `exchange` (the payment notes
    /// spent, fresh notes issued) in one transaction.
    /// [`StoreError::DuplicateReference`] and no change when the sale was
    /// refunded before; [`StoreError::SaleChanged`] and no change when an
    /// item it is `awaiting` got a registered link (checked under the
    /// item's row lock, so a delivery racing the refund either commits
    /// first and is seen, or waits and then sees the refund).
    fn refund_sale(&self, refund: &SaleRefund, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64>;
    /// The offers among `offers` whose sale was refunded.
    fn refunded_sales(&self, offers: &[ExchangeId]) -> StoreResult<Vec<ExchangeId>>;
    /// Stores a double-sale proof, flags its signer and leaves the notices,
    /// once; `false` and no change when it was stored before.
    fn record_double_sale(&self, record: &DoubleSaleRecord, notices: &[Notice], now: Timestamp) -> StoreResult<bool>;
    /// The double-sale proofs stored for an offer.
    fn double_sales(&self, offer: &ExchangeId) -> StoreResult<Vec<DoubleSaleRecord>>;

    /// Replaces an instrument in one transaction: applies `exchange` (which
    /// spends or retires the old one and issues its replacement), marks the
    /// old one `modified` and leaves the notices. A second call with the same
    /// exchange reference is refused with [`StoreError::DuplicateReference`]
    /// and changes nothing.
    fn replace_instrument(
        &self,
        exchange: &NoteExchange,
        replaced: &InstrumentId,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Leaves a notice.
    fn push_notice(&self, notice: &Notice) -> StoreResult<u64>;
    /// Notices for any of `recipients` with id above `after`, oldest first.
    fn notices(&self, recipients: &[PublicKey], after: u64) -> StoreResult<Vec<Notice>>;

    /// Every row of every table but `nonces` as text, for tests that check
    /// a refused request changed nothing (a refused but correctly signed
    /// request still leaves its nonce, so that it cannot be replayed).
    fn dump(&self) -> StoreResult<String>;
}

/// A stored examination report's columns: certificate, gate, counter,
/// admitted, uses left, status, examined at, reported by.
pub(crate) type ReportColumns<'a> = (&'a [u8], &'a [u8], i64, bool, i64, &'a str, i64, &'a [u8]);

pub(crate) fn report_from(instrument: InstrumentId, c: ReportColumns<'_>) -> StoreResult<ExaminationReport> {
    let (certificate, gate, counter, admitted, uses_left, status, examined_at, reported_by) = c;
    Ok(ExaminationReport {
        record: ExaminationRow {
            certificate: digest_from(certificate)?,
            instrument,
            admitted,
            uses_left: u16::try_from(uses_left).map_err(|_| StoreError::Corrupt("uses left".into()))?,
            status: status_from(status)?,
            examined_at: to_u64(examined_at)?,
            answer: None,
        },
        gate: key_from(gate)?,
        counter: to_u32(counter)?,
        reported_by: key_from(reported_by)?,
    })
}

pub(crate) fn status_str(s: Status) -> &'static str {
    s.as_str()
}

pub(crate) fn status_from(s: &str) -> StoreResult<Status> {
    Ok(match s {
        "active" => Status::Active,
        "dispensed" => Status::Dispensed,
        "refunded" => Status::Refunded,
        "revoked" => Status::Revoked,
        "modified" => Status::Modified,
        _ => return Err(StoreError::Corrupt(format!("status {s}"))),
    })
}

pub(crate) fn role_from(s: &str) -> StoreResult<Role> {
    Ok(match s {
        "issuer" => Role::Issuer,
        "gate" => Role::Gate,
        "merchant" => Role::Merchant,
        _ => return Err(StoreError::Corrupt(format!("role {s}"))),
    })
}

pub(crate) fn kind_from(s: &str) -> StoreResult<Kind> {
    Kind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("kind {s}")))
}

pub(crate) fn key_from(b: &[u8]) -> StoreResult<PublicKey> {
    PublicKey::from_slice(b).ok_or_else(|| StoreError::Corrupt("public key".into()))
}

pub(crate) fn id_from(b: &[u8]) -> StoreResult<InstrumentId> {
    InstrumentId::from_slice(b).ok_or_else(|| StoreError::Corrupt("instrument id".into()))
}

pub(crate) fn digest_from(b: &[u8]) -> StoreResult<Digest> {
    Digest::from_slice(b).ok_or_else(|| StoreError::Corrupt("digest".into()))
}

pub(crate) fn to_i64(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{v} does not fit a database integer")))
}

pub(crate) fn to_u64(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

/// The answer to a bag whose number is taken: its original settlement when
/// the stored digest is this bag's, else `BagReused`.
pub(crate) fn replayed_bag(
    gate: &PublicKey,
    number: u64,
    digest: &Digest,
    entries: i64,
    admitted: i64,
    stored: Option<&[u8]>,
) -> StoreResult<BagSettled> {
    if stored != Some(digest.as_bytes().as_slice()) {
        return Err(StoreError::BagReused { gate: *gate, number });
    }
    let settlement = Settlement { bags: 1, admitted: to_u64(admitted)?, refused: to_u64(entries - admitted)? };
    Ok(BagSettled { settlement, replayed: true })
}

pub(crate) fn to_u32(v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("value {v} out of range")))
}

impl InstrumentRow {
    /// The row for an instrument as issued (sequence 0, holder from the
    /// genesis). The caller has verified it.
    pub fn issued(instrument: &tessera_core::Instrument, account: Option<PublicKey>, now: Timestamp) -> Self {
        use tessera_core::Wire as _;
        let g = &instrument.genesis.body;
        Self {
            id: g.instrument_id,
            kind: g.attributes.kind(),
            issuer: g.issuer,
            genesis: instrument.genesis.to_bytes(),
            holder: g.holder,
            holder_since: 0,
            sequence: 0,
            tip: instrument.genesis.digest(),
            status: Status::Active,
            uses_left: g.attributes.uses(),
            value: g.attributes.amount().cloned(),
            account,
            updated_at: now,
        }
    }
}

impl LinkRecord {
    /// The record of a verified link signed by `signer`.
    pub fn of(link: &tessera_core::Signed<tessera_core::Endorsement>, signer: PublicKey) -> Self {
        use tessera_core::Wire as _;
        Self {
            instrument: link.body.instrument_id,
            sequence: link.body.sequence,
            digest: link.digest(),
            previous: link.body.previous,
            signer,
            new_holder: link.body.new_holder,
            bytes: link.to_bytes(),
        }
    }
}
