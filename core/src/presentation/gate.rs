//! The gate's side of a presentation: one tap as a state machine over the
//! APDU reader channel, and the offline decision.
//!
//! ```text
//!  Selecting ──hello──▶ Challenging ──presentation──▶ Decided ──CONFIRM 9000──▶ Finished
//!      │                    │                          │   (the app persists the
//!      └── status word / junk / bound ─────────────────┴──▶ error: nothing admitted
//! ```
//! The decision is returned as [`GateEvent::Decided`] *before* the
//! certificate is sent, so the gate app writes it to its used set first; a
//! field lost after that leaves the record standing at the gate.

use super::on_air::{CertificateOnAir, PresentationOnAir};
use super::wallet::instruction_fits;
use super::{
    ChallengeBody, ExaminationBody, HELLO, Instruction, MAX_CLOCK_SKEW, Outcome, Presentation, PresentationBody,
    Refusal, StateChange,
};
use crate::apdu::{INS_CONFIRM, INS_PRESENT, Limits, ReaderChannel, ReaderError, ReaderEvent, TESSERA_AID, Traffic};
use crate::clock::Timestamp;
use crate::codec::{DecodeError, Wire};
use crate::crypto::{Digest, PublicKey, Signer, SignerError};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Attributes, Instrument, Signed, Status};
use crate::proof::EquivocationProof;
use crate::verify::{Rejection, VerifiedInstrument, Verifier};

/// Whether a gate admits again a ticket it admitted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReentryPolicy {
    /// A used ticket is refused.
    #[default]
    Refuse,
    /// The same holder key may come back in, without using a use.
    SameHolder,
}

/// What a gate admits and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePolicy {
    /// The event (or coupon programme).
    pub event_id: String,
    /// The zones this gate admits to.
    pub zones: Vec<String>,
    /// What it does with instruments.
    pub instruction: Instruction,
    /// Re-entry.
    pub reentry: ReentryPolicy,
}

/// The offline policy of DESIGN §2: nothing stops a holder from signing
/// twice while the registry is out of reach, so what a gate accepts
/// without it is bounded. A gate refuses, with [`Refusal::OverOfflineLimit`],
/// an instrument that has passed through more hands since its genesis or
/// its last registered certificate than `max_unreconciled_hops` (each hop
/// is a holder who could have double-transferred it unseen), or a note worth
/// more than `max_note_value` minor units (what one double spend can take).
/// The registry resets the hop count whenever it certifies a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflinePolicy {
    /// Most links after the genesis or the registered certificate.
    pub max_unreconciled_hops: usize,
    /// Largest note, in minor units of its currency.
    pub max_note_value: u64,
}

impl OfflinePolicy {
    /// What a gate applies unless configured otherwise: eight hops (a
    /// ticket resold or gifted a few times before the event), notes up to
    /// 100.00 in their currency.
    pub const DEFAULT: Self = Self { max_unreconciled_hops: 8, max_note_value: 10_000 };

    /// Whether `instrument` is within the policy.
    pub fn admits(&self, instrument: &Instrument) -> bool {
        self.excess(instrument, 0).is_none()
    }

    /// What puts `instrument`, after `more_links` further endorsements (a
    /// wallet judging an offer before the sender endorses it over), past
    /// the policy, in words for the user; `None` when it is within. Only an
    /// excess allocates, so the gate's in-policy path costs no more.
    pub fn excess(&self, instrument: &Instrument, more_links: usize) -> Option<String> {
        let hops = instrument.links.len().saturating_add(more_links);
        if hops > self.max_unreconciled_hops {
            return Some(format!(
                "{} would have {hops} unreconciled hops (at most {})",
                instrument.id(),
                self.max_unreconciled_hops
            ));
        }
        let amount = instrument.attributes().amount().filter(|a| a.minor > self.max_note_value)?;
        Some(format!(
            "note {} is worth {} minor units of {} (at most {})",
            instrument.id(),
            amount.minor,
            amount.currency,
            self.max_note_value
        ))
    }
}

impl Default for OfflinePolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the gate (and its mesh) has recorded about one instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorUse {
    /// Uses consumed here since the state the instrument carries.
    pub uses_consumed: u16,
    /// The holder key last admitted.
    pub holder: PublicKey,
    /// The instrument as first admitted, to detect a fork.
    pub instrument: Instrument,
}

/// The gate's used set, as the decision needs it.
pub trait Ledger {
    /// What is recorded about `id`, if anything; an error when the used
    /// set cannot be read (the decision then refuses: never admit blind).
    fn prior(&self, id: &InstrumentId) -> Result<Option<PriorUse>, String>;
}

impl Ledger for std::collections::BTreeMap<InstrumentId, PriorUse> {
    fn prior(&self, id: &InstrumentId) -> Result<Option<PriorUse>, String> {
        Ok(self.get(id).cloned())
    }
}

/// What the decision needs besides the messages.
#[derive(Debug, Clone, Copy)]
pub struct GateContext<'a, L: Ledger + ?Sized> {
    /// The one verifier, over the gate's trust and deny lists.
    pub verifier: Verifier<'a>,
    /// The used set.
    pub ledger: &'a L,
    /// The gate's clock.
    pub now: Timestamp,
}

/// Seat and guidance for the screen (seed 004).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guidance {
    /// What it is.
    pub title: String,
    /// Zone.
    pub zone: Option<String>,
    /// Seat.
    pub seat: Option<String>,
    /// Route or help, from the ticket's attributes.
    pub guidance: Option<String>,
}

impl Guidance {
    fn of(attributes: &Attributes) -> Self {
        match attributes {
            Attributes::Ticket(t) => Self {
                title: t.title.clone(),
                zone: Some(t.zone.clone()),
                seat: t.seat.clone(),
                guidance: t.guidance.clone(),
            },
            Attributes::Coupon(c) => Self { title: c.title.clone(), ..Self::default() },
            Attributes::Note(n) => Self { title: format!("note {}", n.amount), ..Self::default() },
        }
    }
}

/// One examination as the gate records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Examination {
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// The decision.
    pub outcome: Outcome,
    /// What was carried out.
    pub instruction: Instruction,
    /// Uses left after.
    pub uses_left: u16,
    /// The signed certificate sent to the wallet.
    pub certificate: Signed<ExaminationBody>,
    /// What the wallet presented.
    pub presentation: Presentation,
    /// The holder key that answered.
    pub holder: PublicKey,
    /// A proof of double transfer, when the refusal is one.
    pub proof: Option<EquivocationProof>,
    /// Seat and guidance.
    pub guidance: Guidance,
}

/// The decision on a presentation, without any I/O: the verifier, then
/// possession, then event and zone, then instruction and state change,
/// then the used set. Returns the outcome, what was carried out, the uses
/// left after, and a proof when two forks met.
pub fn decide<L: Ledger + ?Sized>(
    policy: &GatePolicy,
    challenge: &Signed<ChallengeBody>,
    presentation: &Presentation,
    ctx: &GateContext<'_, L>,
) -> (Outcome, Instruction, u16, Status, Option<EquivocationProof>) {
    let instruction = policy.instruction;
    let refuse = |r: Refusal| (Outcome::Refused(r), instruction, 0, Status::Active, None);
    let instrument = &presentation.instrument;
    let verified = match ctx.verifier.verify(instrument, ctx.now) {
        Ok(v) => v,
        Err(rejection) => return refuse(refusal_for(&rejection)),
    };
    let answer = &presentation.answer;
    if !answer_binds(&answer.body, challenge.digest(), &verified) || answer.verify(&verified.holder).is_err() {
        return refuse(Refusal::NotHolder);
    }
    // The holder's signed clock must agree with the gate's as the wallet
    // requires of the challenge: a used-after-transfer proof dates the tap
    // by it, so a modified wallet may not backdate its answer.
    if answer.body.time.abs_diff(ctx.now) > MAX_CLOCK_SKEW {
        return refuse(Refusal::NotHolder);
    }
    let attributes = instrument.attributes();
    match attributes {
        Attributes::Ticket(t) if t.event_id != policy.event_id => return refuse(Refusal::WrongEvent),
        Attributes::Ticket(t) if !policy.zones.contains(&t.zone) => return refuse(Refusal::WrongZone),
        Attributes::Coupon(c) if c.program != policy.event_id => return refuse(Refusal::WrongEvent),
        _ => {}
    }
    if !instruction_fits(attributes, instruction) || answer.body.instruction != instruction {
        return refuse(Refusal::WrongInstruction);
    }
    let prior = match ctx.ledger.prior(&verified.id) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "used set unreadable: refusing");
            return refuse(Refusal::GateFault);
        }
    };
    if let Some(p) = &prior
        && let Some(proof) = EquivocationProof::find(&p.instrument, instrument)
    {
        return (Outcome::Refused(Refusal::DoubleTransfer), instruction, 0, Status::Active, Some(proof));
    }
    let consumed = prior.as_ref().map_or(0, |p| p.uses_consumed);
    let uses_left = verified.state.uses_left.saturating_sub(consumed).min(answer.body.change.uses_before);
    let expected: StateChange = instruction.apply(uses_left);
    // The wallet may know fewer uses than the gate (a lost certificate),
    // but what it asks for must follow from the instruction.
    let claimed = answer.body.change;
    if claimed != instruction.apply(claimed.uses_before) {
        return refuse(Refusal::WrongInstruction);
    }
    if uses_left == 0 {
        let same_holder = prior.as_ref().is_some_and(|p| p.holder == verified.holder);
        if policy.reentry == ReentryPolicy::SameHolder
            && same_holder
            && matches!(instruction, Instruction::Enter | Instruction::ReEnter)
        {
            return (Outcome::Admitted, Instruction::ReEnter, 0, Status::Active, None);
        }
        let reason = if prior.is_some() { Refusal::AlreadyUsed } else { Refusal::UsedUp };
        return refuse(reason);
    }
    (Outcome::Admitted, instruction, expected.uses_after, expected.status_after, None)
}

fn answer_binds(answer: &PresentationBody, challenge: Digest, verified: &VerifiedInstrument) -> bool {
    answer.challenge == challenge
        && answer.instrument_id == verified.id
        && answer.sequence == verified.sequence
        && answer.tip == verified.tip
}

fn refusal_for(rejection: &Rejection) -> Refusal {
    match rejection {
        Rejection::NotYetValid { .. } => Refusal::NotYetValid,
        Rejection::Expired { .. } => Refusal::Expired,
        Rejection::Revoked | Rejection::Refunded | Rejection::Modified | Rejection::Denied => Refusal::Revoked,
        Rejection::Dispensed => Refusal::Dispensed,
        Rejection::UsedUp => Refusal::UsedUp,
        Rejection::WrongHolder { .. } => Refusal::NotHolder,
        _ => Refusal::Forged,
    }
}

/// Why a tap ended without a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The channel failed: a status word from the card (say, 6982 when the
    /// wallet does not trust this gate), a short answer, a bound.
    #[error(transparent)]
    Channel(#[from] ReaderError),
    /// The card is not a Tessera wallet.
    #[error("the card answered SELECT with an unknown protocol")]
    UnknownProtocol,
    /// The card's presentation did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The gate's signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// A response arrived when none was expected.
    #[error("the exchange is already over")]
    Finished,
}

/// What a response led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    /// Transmit [`GateExamination::next_command`] next.
    Continue,
    /// The decision: persist it, then transmit the next command (CONFIRM).
    Decided(Box<Examination>),
    /// The wallet acknowledged the certificate.
    Finished,
}

#[derive(Debug)]
enum Phase {
    Selecting,
    Challenging,
    Confirming,
    Finished,
}

/// One tap at a gate.
#[derive(Debug)]
pub struct GateExamination {
    channel: ReaderChannel,
    policy: GatePolicy,
    challenge: Signed<ChallengeBody>,
    record: u64,
    phase: Phase,
    offline: OfflinePolicy,
}

impl GateExamination {
    /// Starts a tap: signs a fresh challenge and queues the SELECT.
    /// `record` is the gate's next record number.
    pub fn start(
        signer: &impl Signer,
        policy: GatePolicy,
        nonce: ExchangeId,
        record: u64,
        now: Timestamp,
    ) -> Result<Self, SignerError> {
        let body = ChallengeBody {
            gate: signer.public_key(),
            nonce,
            event_id: policy.event_id.clone(),
            zones: policy.zones.clone(),
            instruction: policy.instruction,
            time: now,
        };
        let challenge = Signed::sign(body, signer)?;
        let mut channel = ReaderChannel::new(Limits::default());
        channel.select(&TESSERA_AID);
        Ok(Self { channel, policy, challenge, record, phase: Phase::Selecting, offline: OfflinePolicy::DEFAULT })
    }

    /// Applies `offline` instead of [`OfflinePolicy::DEFAULT`]: an
    /// admission of an instrument outside it becomes a refusal.
    pub fn with_offline_policy(mut self, offline: OfflinePolicy) -> Self {
        self.offline = offline;
        self
    }

    /// The challenge of this tap.
    pub fn challenge(&self) -> &Signed<ChallengeBody> {
        &self.challenge
    }

    /// Bytes on the air so far.
    pub fn traffic(&self) -> Traffic {
        self.channel.traffic()
    }

    /// The next command APDU to transmit, if one is due.
    pub fn next_command(&mut self) -> Option<Vec<u8>> {
        self.channel.next_command()
    }

    /// Digests the card's answer to the last command.
    pub fn on_response<L: Ledger + ?Sized>(
        &mut self,
        response: &[u8],
        signer: &impl Signer,
        ctx: &GateContext<'_, L>,
    ) -> Result<GateEvent, GateError> {
        let event = match self.channel.on_response(response) {
            Ok(e) => e,
            Err(e) => {
                self.phase = Phase::Finished;
                return Err(e.into());
            }
        };
        let message = match event {
            ReaderEvent::Continue => return Ok(GateEvent::Continue),
            ReaderEvent::Selected(m) | ReaderEvent::Response(m) => m,
        };
        match self.phase {
            Phase::Selecting => {
                if message != HELLO {
                    self.phase = Phase::Finished;
                    return Err(GateError::UnknownProtocol);
                }
                self.channel.send(INS_PRESENT, 0, 0, &self.challenge.to_bytes())?;
                self.phase = Phase::Challenging;
                Ok(GateEvent::Continue)
            }
            Phase::Challenging => {
                let presentation = match PresentationOnAir::from_bytes(&message) {
                    Ok(p) => p.expand(&self.challenge),
                    Err(e) => {
                        self.phase = Phase::Finished;
                        return Err(e.into());
                    }
                };
                let examination = self.examine(presentation, signer, ctx)?;
                let on_air = CertificateOnAir::from_certificate(&examination.certificate);
                self.channel.send(INS_CONFIRM, 0, 0, &on_air.to_bytes())?;
                self.phase = Phase::Confirming;
                Ok(GateEvent::Decided(Box::new(examination)))
            }
            Phase::Confirming => {
                self.phase = Phase::Finished;
                Ok(GateEvent::Finished)
            }
            Phase::Finished => Err(GateError::Finished),
        }
    }

    fn examine<L: Ledger + ?Sized>(
        &self,
        presentation: Presentation,
        signer: &impl Signer,
        ctx: &GateContext<'_, L>,
    ) -> Result<Examination, SignerError> {
        let (mut outcome, instruction, mut uses_left, mut status, proof) =
            decide(&self.policy, &self.challenge, &presentation, ctx);
        if outcome == Outcome::Admitted && !self.offline.admits(&presentation.instrument) {
            (outcome, uses_left, status) = (Outcome::Refused(Refusal::OverOfflineLimit), 0, Status::Active);
        }
        let answer = &presentation.answer;
        let body = ExaminationBody {
            gate: signer.public_key(),
            challenge: self.challenge.digest(),
            presentation: answer.digest(),
            instrument_id: answer.body.instrument_id,
            instruction,
            counter: answer.body.counter,
            uses_left,
            status,
            outcome,
            record: self.record,
            time: ctx.now,
        };
        let certificate = Signed::sign(body, signer)?;
        Ok(Examination {
            instrument_id: answer.body.instrument_id,
            outcome,
            instruction,
            uses_left,
            certificate,
            holder: presentation.instrument.holder(),
            guidance: Guidance::of(presentation.instrument.attributes()),
            presentation,
            proof,
        })
    }
}
