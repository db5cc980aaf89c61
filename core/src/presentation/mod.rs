//! Presentation at a gate over NFC (DESIGN §3.2; seed 003 [1637–1653]).
//!
//! The phone is the card, the gate the reader. Three messages, each bound to
//! the one before it by digest, each signed under its own [`Context`]:
//!
//! ```text
//!  gate (reader)                                         wallet (card)
//!   │ SELECT F0 'TESSERA'  ───────────────────────────────▶ │
//!   │ ◀─────────────────────────────────────── "tessera/2" │
//!   │ PRESENT  Signed<ChallengeBody>  ─────────────────────▶ │ gate key certified as a gate?
//!   │   gate key, fresh nonce, event, zones,                 │ challenge fresh, nonce unseen?
//!   │   instruction, time       (Context::GateChallenge)     │ pick the instrument (held only)
//!   │ ◀──────────── Presentation { instrument, Signed<PresentationBody> }
//!   │   (on the air without what the gate recomputes: on_air)
//!   │   challenge digest, tip, state change, counter         │ (Context::Presentation, holder key)
//!   │ decide offline: Verifier + possession + event/zone     │   nothing changed yet
//!   │   + used set + instruction; persist the decision       │
//!   │ CONFIRM  Signed<ExaminationBody>  ───────────────────▶ │ signed by the challenge's gate?
//!   │   outcome, uses left, counter                          │ matches the pending answer?
//!   │   (Context::ExaminationCertificate)                    │ admitted → apply + log, atomically
//!   │ ◀──────────────────────────────────────────── 90 00   │
//! ```
//!
//! The wallet changes nothing before the gate's certificate arrives, and a
//! certificate for any other challenge or answer changes nothing either.

mod bag;
mod gate;
pub mod mesh;
mod nfc_transfer;
pub mod on_air;
mod wallet;

pub use bag::{BagBody, BagEntry, BagError, MAX_BAG_ENTRIES};
pub use gate::{
    Examination, GateContext, GateError, GateEvent, GateExamination, GatePolicy, Guidance, Ledger, OfflinePolicy,
    PriorUse, ReentryPolicy, decide,
};
pub use nfc_transfer::{NfcTransferError, NfcTransferReader, NfcTransferStep};
pub use wallet::{ExaminationResult, PendingPresentation, PresentationError, WalletApplication, WalletCard};

use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::{Context, Digest, PublicKey};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Instrument, Signed, SignedBody, Status};
use minicbor::{Decode, Encode};

/// What the SELECT answer carries: the protocol and its version.
/// Version 2: the presentation and certificate travel in their on-air form
/// ([`on_air`]).
pub const HELLO: &[u8] = b"tessera/2";

/// How far a challenge's time may be from the wallet's clock, in seconds.
pub const MAX_CLOCK_SKEW: u64 = 300;

/// What the gate asks the wallet to do with the instrument
/// (seed 003: instruction code 11017).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
#[cbor(index_only)]
pub enum Instruction {
    /// Enter: uses one use of a ticket.
    #[n(0)]
    Enter,
    /// Re-enter: admits again a ticket already used here; uses nothing.
    #[n(1)]
    ReEnter,
    /// Punch one use of a coupon (or a multi-use ticket).
    #[n(2)]
    Punch,
    /// Print a paper ticket: the electronic one becomes dispensed.
    #[n(3)]
    Dispense,
    /// Redeem: uses every use left at once.
    #[n(4)]
    Redeem,
}

impl Instruction {
    /// The lowercase name, as the wallet logs it.
    pub fn as_str(self) -> &'static str {
        match self {
            Instruction::Enter => "enter",
            Instruction::ReEnter => "re-enter",
            Instruction::Punch => "punch",
            Instruction::Dispense => "dispense",
            Instruction::Redeem => "redeem",
        }
    }

    /// Parses [`Instruction::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enter, Self::ReEnter, Self::Punch, Self::Dispense, Self::Redeem].into_iter().find(|i| i.as_str() == s)
    }

    /// The state after carrying this instruction out on `(uses_left, status)`.
    pub fn apply(self, uses_left: u16) -> StateChange {
        let (uses_after, status_after) = match self {
            Instruction::Enter | Instruction::Punch => (uses_left.saturating_sub(1), Status::Active),
            Instruction::ReEnter => (uses_left, Status::Active),
            Instruction::Dispense => (uses_left, Status::Dispensed),
            Instruction::Redeem => (0, Status::Active),
        };
        StateChange { uses_before: uses_left, uses_after, status_after }
    }
}

/// The gate's challenge (seed 001: the per-deal challenge; seed 003: 6702).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct ChallengeBody {
    /// The gate's key; the wallet requires it certified with the gate role.
    #[n(0)]
    pub gate: PublicKey,
    /// Fresh for every tap.
    #[n(1)]
    pub nonce: ExchangeId,
    /// The event (or coupon programme) this gate examines.
    #[n(2)]
    pub event_id: String,
    /// The zones this gate admits to.
    #[n(3)]
    pub zones: Vec<String>,
    /// What it will do with the instrument.
    #[n(4)]
    pub instruction: Instruction,
    /// The gate's clock.
    #[n(5)]
    pub time: Timestamp,
}

impl SignedBody for ChallengeBody {
    const CONTEXT: Context = Context::GateChallenge;
}

impl Wire for Signed<ChallengeBody> {
    const NAME: &'static str = "gate challenge";
    const MAX_LEN: usize = 1024;
}

/// The state change an instruction asks for, as the wallet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct StateChange {
    /// Uses left before.
    #[n(0)]
    pub uses_before: u16,
    /// Uses left after.
    #[n(1)]
    pub uses_after: u16,
    /// Status after.
    #[n(2)]
    pub status_after: Status,
}

/// The holder's answer (seed 003: 6701 and 6703 in one message), signed by
/// the instrument's holder key.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct PresentationBody {
    /// Digest of the signed challenge it answers.
    #[n(0)]
    pub challenge: Digest,
    /// The instrument.
    #[n(1)]
    pub instrument_id: InstrumentId,
    /// Sequence of the tip presented.
    #[n(2)]
    pub sequence: u32,
    /// Digest of the tip presented.
    #[n(3)]
    pub tip: Digest,
    /// The instruction answered.
    #[n(4)]
    pub instruction: Instruction,
    /// The state change it asks for.
    #[n(5)]
    pub change: StateChange,
    /// This examination's number for the instrument (previous + 1).
    #[n(6)]
    pub counter: u32,
    /// The wallet's clock.
    #[n(7)]
    pub time: Timestamp,
}

impl SignedBody for PresentationBody {
    const CONTEXT: Context = Context::Presentation;
}

/// What the wallet sends the gate.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Presentation {
    /// The instrument: genesis, registered certificate or chain.
    #[n(0)]
    pub instrument: Instrument,
    /// The holder's signed answer.
    #[n(1)]
    pub answer: Signed<PresentationBody>,
}

impl Wire for Presentation {
    const NAME: &'static str = "presentation";
    /// Fits the APDU layer's message bound with the framing around it.
    const MAX_LEN: usize = crate::apdu::Limits::DEFAULT_MAX_MESSAGE;
}

/// Why a gate refused. Stable codes: the wallet shows them and the
/// registry replays them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum Refusal {
    /// A signature in the instrument does not verify, or its issuer is unknown.
    #[n(0)]
    Forged,
    /// Before its validity window.
    #[n(1)]
    NotYetValid,
    /// After its validity window.
    #[n(2)]
    Expired,
    /// Revoked, refunded, modified or on the deny list.
    #[n(3)]
    Revoked,
    /// Already used here (or at a gate of the same mesh).
    #[n(4)]
    AlreadyUsed,
    /// For another event.
    #[n(5)]
    WrongEvent,
    /// For another zone.
    #[n(6)]
    WrongZone,
    /// Two holders hold forks of one instrument; the proof is kept.
    #[n(7)]
    DoubleTransfer,
    /// The answer is not signed by the holder, or answers another challenge.
    #[n(8)]
    NotHolder,
    /// The instruction does not apply to this kind of instrument, or the
    /// state change does not follow from it.
    #[n(9)]
    WrongInstruction,
    /// Printed on paper already.
    #[n(10)]
    Dispensed,
    /// No uses left.
    #[n(11)]
    UsedUp,
    /// The gate could not read its own used set; it never admits blind.
    #[n(12)]
    GateFault,
    /// Outside the gate's offline policy: passed through too many hands
    /// since the registry last certified it, or a note worth too much
    /// ([`OfflinePolicy`]). The holder reconciles and comes back.
    #[n(13)]
    OverOfflineLimit,
}

impl Refusal {
    /// What the gate's screen says.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Forged => "forged: a signature does not verify",
            Refusal::NotYetValid => "not valid yet",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::AlreadyUsed => "already used",
            Refusal::WrongEvent => "ticket for another event",
            Refusal::WrongZone => "wrong zone for this entrance",
            Refusal::DoubleTransfer => "double transfer: ticket given to two people",
            Refusal::NotHolder => "not signed by the ticket's holder",
            Refusal::WrongInstruction => "cannot be used this way here",
            Refusal::Dispensed => "printed on paper already",
            Refusal::UsedUp => "no uses left",
            Refusal::GateFault => "gate fault: ask a steward",
            Refusal::OverOfflineLimit => "sync the wallet first: too many unregistered transfers",
        }
    }

    /// A short machine name, for logs and tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Forged => "forged",
            Refusal::NotYetValid => "not-yet-valid",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
            Refusal::AlreadyUsed => "already-used",
            Refusal::WrongEvent => "wrong-event",
            Refusal::WrongZone => "wrong-zone",
            Refusal::DoubleTransfer => "double-transfer",
            Refusal::NotHolder => "not-holder",
            Refusal::WrongInstruction => "wrong-instruction",
            Refusal::Dispensed => "dispensed",
            Refusal::UsedUp => "used-up",
            Refusal::GateFault => "gate-fault",
            Refusal::OverOfflineLimit => "over-offline-limit",
        }
    }
}

/// The gate's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Outcome {
    /// Admitted; the instruction was carried out.
    #[n(0)]
    Admitted,
    /// Refused; nothing changes.
    #[n(1)]
    Refused(#[n(0)] Refusal),
}

/// The gate's examination certificate (seed 003: 6704), signed by the gate.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct ExaminationBody {
    /// The gate's key.
    #[n(0)]
    pub gate: PublicKey,
    /// Digest of the signed challenge.
    #[n(1)]
    pub challenge: Digest,
    /// Digest of the holder's signed answer.
    #[n(2)]
    pub presentation: Digest,
    /// The instrument.
    #[n(3)]
    pub instrument_id: InstrumentId,
    /// What was done (`ReEnter` when an enter gate admitted a ticket again).
    #[n(4)]
    pub instruction: Instruction,
    /// The examination number from the answer.
    #[n(5)]
    pub counter: u32,
    /// Uses left afterwards, as the gate reckons them.
    #[n(6)]
    pub uses_left: u16,
    /// Status afterwards.
    #[n(7)]
    pub status: Status,
    /// Admitted or refused, and why.
    #[n(8)]
    pub outcome: Outcome,
    /// The gate's own record number.
    #[n(9)]
    pub record: u64,
    /// The gate's clock.
    #[n(10)]
    pub time: Timestamp,
}

impl SignedBody for ExaminationBody {
    const CONTEXT: Context = Context::ExaminationCertificate;
}

impl Wire for Signed<ExaminationBody> {
    const NAME: &'static str = "examination certificate";
    const MAX_LEN: usize = 512;
}

#[cfg(test)]
mod tests;
