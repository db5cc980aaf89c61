//! Records and enums the apps see, converted from the core's at the edge.
//! Keys, ids and digests travel as lowercase hex; times as Unix seconds.

use tessera_core::instrument as core_instrument;
use tessera_core::store as core_store;
use tessera_core::verify as core_verify;
use tessera_core::wallet as core_wallet;

/// What an instrument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Kind {
    /// Entry to an event (one use) or a pass (several).
    Ticket,
    /// E-money of a fixed denomination.
    Note,
    /// A coupon book or reward card with N uses.
    Coupon,
}

impl From<core_instrument::Kind> for Kind {
    fn from(kind: core_instrument::Kind) -> Self {
        match kind {
            core_instrument::Kind::Ticket => Self::Ticket,
            core_instrument::Kind::Note => Self::Note,
            core_instrument::Kind::Coupon => Self::Coupon,
        }
    }
}

/// An instrument's life-cycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Status {
    /// In circulation.
    Active,
    /// Printed on paper; the electronic form no longer admits.
    Dispensed,
    /// Given back for money.
    Refunded,
    /// Cancelled by the issuer or the registry.
    Revoked,
    /// Replaced by a modified instrument.
    Modified,
}

impl From<core_instrument::Status> for Status {
    fn from(status: core_instrument::Status) -> Self {
        match status {
            core_instrument::Status::Active => Self::Active,
            core_instrument::Status::Dispensed => Self::Dispensed,
            core_instrument::Status::Refunded => Self::Refunded,
            core_instrument::Status::Revoked => Self::Revoked,
            core_instrument::Status::Modified => Self::Modified,
        }
    }
}

/// Where an instrument stands from this wallet's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Holding {
    /// Held: may be presented or offered.
    Held,
    /// Endorsed away, receipt not yet in: may not be presented or offered.
    PendingOut,
    /// Passed on or spent; kept as evidence.
    Gone,
}

impl From<core_store::Holding> for Holding {
    fn from(holding: core_store::Holding) -> Self {
        match holding {
            core_store::Holding::Held => Self::Held,
            core_store::Holding::PendingOut => Self::PendingOut,
            core_store::Holding::Gone => Self::Gone,
        }
    }
}

/// Which way a history line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Direction {
    /// Into this wallet.
    In,
    /// Out of this wallet.
    Out,
}

impl From<core_store::Direction> for Direction {
    fn from(direction: core_store::Direction) -> Self {
        match direction {
            core_store::Direction::In => Self::In,
            core_store::Direction::Out => Self::Out,
        }
    }
}

/// A sum of money in minor units (cents).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Amount {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub minor: u64,
}

impl From<core_instrument::Amount> for Amount {
    fn from(amount: core_instrument::Amount) -> Self {
        Self { currency: amount.currency, minor: amount.minor }
    }
}

/// Money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Balance {
    /// ISO 4217 code.
    pub currency: String,
    /// Notes held and free to spend, in minor units.
    pub available: u64,
    /// Notes endorsed away whose receipt is not yet in, in minor units.
    pub pending_out: u64,
}

impl From<core_wallet::Balance> for Balance {
    fn from(balance: core_wallet::Balance) -> Self {
        Self { currency: balance.currency, available: balance.available, pending_out: balance.pending_out }
    }
}

/// One row of a wallet's list of tickets, notes or coupons.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InstrumentSummary {
    /// Instrument id, hex.
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// A short human label ("Concert · Zone A", "EUR 5.00").
    pub label: String,
    /// The value of a note.
    pub amount: Option<Amount>,
    /// The event of a ticket.
    pub event_id: Option<String>,
    /// End of validity, Unix seconds.
    pub valid_until: u64,
    /// Uses left.
    pub uses_left: u16,
    /// Life-cycle status.
    pub status: Status,
    /// Held, pending out or gone.
    pub holding: Holding,
    /// Position in its chain of endorsements.
    pub sequence: u32,
    /// Last change in this wallet, Unix seconds.
    pub updated_at: u64,
}

impl From<core_store::InstrumentSummary> for InstrumentSummary {
    fn from(s: core_store::InstrumentSummary) -> Self {
        Self {
            id: s.id.to_hex(),
            kind: s.kind.into(),
            label: s.label,
            amount: s.amount.map(Amount::from),
            event_id: s.event_id,
            valid_until: s.valid_until,
            uses_left: s.uses_left,
            status: s.status.into(),
            holding: s.holding.into(),
            sequence: s.sequence,
            updated_at: s.updated_at,
        }
    }
}

/// One line of a wallet's history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryEntry {
    /// Order of the line in this wallet.
    pub seq: u64,
    /// When, Unix seconds.
    pub time: u64,
    /// In or out.
    pub direction: Direction,
    /// What moved.
    pub kind: Kind,
    /// Which instrument, hex.
    pub instrument_id: String,
    /// How much, for a note.
    pub amount: Option<Amount>,
    /// The other side's key, hex.
    pub counterparty: Option<String>,
    /// The exchange it was part of, hex.
    pub exchange: Option<String>,
    /// A human sentence ("issued by Arena", "endorsed to holder 3f2a…").
    pub memo: String,
}

impl From<core_store::HistoryEntry> for HistoryEntry {
    fn from(h: core_store::HistoryEntry) -> Self {
        Self {
            seq: h.seq,
            time: h.time,
            direction: h.direction.into(),
            kind: h.kind.into(),
            instrument_id: h.instrument_id.to_hex(),
            amount: h.amount.map(Amount::from),
            counterparty: h.counterparty.map(|k| k.to_hex()),
            exchange: h.exchange.map(|e| e.to_hex()),
            memo: h.memo,
        }
    }
}

/// What a wallet takes from a peer while nothing is reconciled with the
/// registry (DESIGN §2): at most `max_unreconciled_hops` endorsements after
/// the last registered certificate, and notes of at most `max_note_value`
/// minor units. A transfer past it is refused with `OverOfflineLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct OfflinePolicy {
    /// Most endorsements after the genesis or registered certificate (0–64).
    pub max_unreconciled_hops: u32,
    /// Largest note, in minor units of its currency.
    pub max_note_value: u64,
}

impl From<tessera_core::presentation::OfflinePolicy> for OfflinePolicy {
    fn from(p: tessera_core::presentation::OfflinePolicy) -> Self {
        Self {
            // At most MAX_LINKS (64): the wallet refuses a larger setting.
            max_unreconciled_hops: u32::try_from(p.max_unreconciled_hops).unwrap_or(u32::MAX),
            max_note_value: p.max_note_value,
        }
    }
}

/// What the registry last recorded about an instrument's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct InstrumentState {
    /// Uses left.
    pub uses_left: u16,
    /// Life-cycle status.
    pub status: Status,
}

/// What the verifier established about a valid instrument.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VerifiedInstrument {
    /// Instrument id, hex.
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// The current holder key, hex.
    pub holder: String,
    /// Position of the tip in its chain.
    pub sequence: u32,
    /// Digest of the chain's tip, hex.
    pub tip: String,
    /// Uses left and status.
    pub state: InstrumentState,
}

impl From<core_verify::VerifiedInstrument> for VerifiedInstrument {
    fn from(v: core_verify::VerifiedInstrument) -> Self {
        Self {
            id: v.id.to_hex(),
            kind: v.kind.into(),
            holder: v.holder.to_hex(),
            sequence: v.sequence,
            tip: v.tip.to_hex(),
            state: InstrumentState { uses_left: v.state.uses_left, status: v.state.status.into() },
        }
    }
}
