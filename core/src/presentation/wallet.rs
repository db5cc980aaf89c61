//! The wallet's side of a presentation, and the card application an
//! Android `HostApduService` drives through [`WalletCard::process_apdu`].
//!
//! ```text
//!   Idle ──PRESENT (gate certified, fresh, instrument held)──▶ Answered
//!    ▲  ◀── refused challenge: status word, nothing kept ──┘      │
//!    │                                                            │ CONFIRM
//!    └──── certificate checked: admitted → apply + log ◀──────────┘
//!          (refused → log nothing; mismatch → status word, stay Answered)
//! ```
//! Recovery: nothing is written before the certificate. If the field drops
//! after the gate decided, the gate holds the record and reconciliation
//! brings the wallet's state up to date.

use super::on_air::{CertificateOnAir, PresentationOnAir};
use super::{
    ChallengeBody, ExaminationBody, HELLO, Instruction, MAX_CLOCK_SKEW, Outcome, Presentation, PresentationBody,
};
use crate::apdu::{CardApplication, CardChannel, INS_CONFIRM, INS_PRESENT, INS_TRANSFER, StatusWord, TESSERA_AID};
use crate::codec::{DecodeError, Wire};
use crate::crypto::SignerError;
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Attributes, Signed};
use crate::store::{ExaminationRecord, Holding, InstrumentFilter, StoreError, WalletStore, Write, WriteBatch};
use crate::transfer::{TransferError, TransferEvent};
use crate::trust::Role;
use crate::wallet::{Wallet, WalletError};
use std::collections::VecDeque;

/// How many recent challenge nonces the card remembers to refuse replays.
const REMEMBERED_NONCES: usize = 256;

/// Why the wallet refused a challenge or a certificate. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresentationError {
    /// The bytes did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The challenge's gate key is not certified as a gate, or its
    /// signature does not verify.
    #[error("the gate is not certified by the registry")]
    UncertifiedGate,
    /// The challenge's time is too far from the wallet's clock.
    #[error("the challenge is stale (gate time {gate_time}, wallet time {now})")]
    StaleChallenge {
        /// The time in the challenge.
        gate_time: u64,
        /// The wallet's time.
        now: u64,
    },
    /// The challenge's nonce was answered before.
    #[error("the challenge was replayed")]
    ReplayedChallenge,
    /// No held instrument matches the event and zones.
    #[error("no held instrument matches event {event_id}")]
    NoMatch {
        /// The event asked for.
        event_id: String,
    },
    /// The chosen instrument is pending out or gone: never presented.
    #[error("instrument {id} is {holding} and cannot be presented")]
    NotHeld {
        /// The instrument.
        id: InstrumentId,
        /// Where it stands.
        holding: &'static str,
    },
    /// A certificate arrived with no answer waiting for it.
    #[error("no presentation is waiting for a certificate")]
    NothingToConfirm,
    /// The certificate is not for the pending answer, or not signed by the
    /// challenge's gate.
    #[error("the examination certificate does not match this presentation")]
    CertificateMismatch,
    /// The wallet could not do its part.
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

impl From<StoreError> for PresentationError {
    fn from(e: StoreError) -> Self {
        Self::Wallet(e.into())
    }
}

impl From<SignerError> for PresentationError {
    fn from(e: SignerError) -> Self {
        Self::Wallet(e.into())
    }
}

impl PresentationError {
    /// The status word the card answers with.
    pub fn status_word(&self) -> StatusWord {
        match self {
            Self::Decode(DecodeError::TooLarge { .. }) => StatusWord::NOT_ENOUGH_MEMORY,
            Self::Decode(_) => StatusWord::WRONG_DATA,
            Self::UncertifiedGate => StatusWord::SECURITY_NOT_SATISFIED,
            Self::StaleChallenge { .. } | Self::ReplayedChallenge => StatusWord::REFERENCE_DATA_NOT_USABLE,
            Self::NoMatch { .. } => StatusWord::DATA_NOT_FOUND,
            Self::NotHeld { .. } | Self::NothingToConfirm => StatusWord::CONDITIONS_NOT_SATISFIED,
            Self::CertificateMismatch => StatusWord::SECURITY_NOT_SATISFIED,
            Self::Wallet(WalletError::NoTrustList) => StatusWord::CONDITIONS_NOT_SATISFIED,
            Self::Wallet(_) => StatusWord::UNKNOWN,
        }
    }
}

/// An answer sent, waiting for the gate's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPresentation {
    /// The challenge answered.
    pub challenge: Signed<ChallengeBody>,
    /// The answer sent.
    pub answer: Signed<PresentationBody>,
}

/// What a certificate did to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExaminationResult {
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// The gate's decision.
    pub outcome: Outcome,
    /// Uses left now.
    pub uses_left: u16,
    /// The examination counter now.
    pub counter: u32,
}

fn matches_challenge(attributes: &Attributes, challenge: &ChallengeBody) -> bool {
    match attributes {
        Attributes::Ticket(t) => t.event_id == challenge.event_id && challenge.zones.contains(&t.zone),
        Attributes::Coupon(c) => c.program == challenge.event_id,
        Attributes::Note(_) => false,
    }
}

impl<S: WalletStore> Wallet<S> {
    /// Checks a gate's challenge and signs the answer with the holder key of
    /// `choice` (the user's pick) or of the held instrument that matches the
    /// event and zones. Changes nothing: the state change is applied only
    /// when the gate's certificate comes back.
    pub fn answer_challenge(
        &self,
        challenge: &Signed<ChallengeBody>,
        choice: Option<&InstrumentId>,
    ) -> Result<PendingPresentation, PresentationError> {
        let now = self.now();
        let body = &challenge.body;
        let trust = self.trust.as_ref().ok_or(WalletError::NoTrustList)?;
        // The gate first: nothing is looked at or signed for an uncertified gate.
        if !trust.certifies(&body.gate, Role::Gate, now) || challenge.verify(&body.gate).is_err() {
            return Err(PresentationError::UncertifiedGate);
        }
        if body.time.abs_diff(now) > MAX_CLOCK_SKEW {
            return Err(PresentationError::StaleChallenge { gate_time: body.time, now });
        }
        let record = match choice {
            Some(id) => self.instrument(id)?,
            None => self.pick_for(body)?,
        };
        if record.holding != Holding::Held {
            return Err(PresentationError::NotHeld { id: record.instrument.id(), holding: record.holding.as_str() });
        }
        let answer = PresentationBody {
            challenge: challenge.digest(),
            instrument_id: record.instrument.id(),
            sequence: record.instrument.sequence(),
            tip: record.instrument.tip_digest(),
            instruction: body.instruction,
            change: body.instruction.apply(record.uses_left),
            counter: record.exam_counter.saturating_add(1),
            time: now,
        };
        let answer = Signed::sign(answer, &self.signer(&record.holder)?)?;
        Ok(PendingPresentation { challenge: challenge.clone(), answer })
    }

    /// The held instrument that fits the challenge, with uses left; the
    /// most recently changed one first.
    fn pick_for(&self, challenge: &ChallengeBody) -> Result<crate::store::InstrumentRecord, PresentationError> {
        let rows = self.store.instruments(InstrumentFilter { kind: None, holding: Some(Holding::Held) })?;
        let usable = |r: &&crate::store::InstrumentSummary| {
            r.uses_left > 0
                && r.status == crate::instrument::Status::Active
                && r.event_id.as_deref() == Some(&challenge.event_id)
        };
        for row in rows.iter().filter(usable) {
            let record = self.instrument(&row.id)?;
            if matches_challenge(record.instrument.attributes(), challenge) {
                return Ok(record);
            }
        }
        Err(PresentationError::NoMatch { event_id: challenge.event_id.clone() })
    }

    /// Checks the gate's certificate against the pending answer and, if the
    /// gate admitted, applies the state change and logs the examination in
    /// one write. A refusal is returned and changes nothing.
    pub fn record_examination(
        &mut self,
        pending: &PendingPresentation,
        certificate: &Signed<ExaminationBody>,
    ) -> Result<ExaminationResult, PresentationError> {
        let c = &certificate.body;
        let gate = pending.challenge.body.gate;
        let a = &pending.answer.body;
        if c.gate != gate
            || certificate.verify(&gate).is_err()
            || c.challenge != pending.challenge.digest()
            || c.presentation != pending.answer.digest()
            || c.instrument_id != a.instrument_id
            || c.counter != a.counter
        {
            return Err(PresentationError::CertificateMismatch);
        }
        let mut record = self.instrument(&a.instrument_id)?;
        if c.outcome != Outcome::Admitted {
            return Ok(ExaminationResult {
                instrument_id: a.instrument_id,
                outcome: c.outcome,
                uses_left: record.uses_left,
                counter: record.exam_counter,
            });
        }
        if record.holding != Holding::Held {
            return Err(PresentationError::NotHeld { id: a.instrument_id, holding: record.holding.as_str() });
        }
        let now = self.now();
        // The gate's reckoning wins: it may know of uses this wallet missed.
        record.uses_left = c.uses_left.min(record.uses_left);
        record.status = c.status;
        record.exam_counter = record.exam_counter.max(c.counter);
        record.updated_at = now;
        let result = ExaminationResult {
            instrument_id: a.instrument_id,
            outcome: c.outcome,
            uses_left: record.uses_left,
            counter: record.exam_counter,
        };
        let log = ExaminationRecord {
            seq: 0,
            instrument_id: a.instrument_id,
            gate,
            instruction: c.instruction.as_str().to_owned(),
            counter: c.counter,
            time: now,
            certificate: certificate.to_bytes(),
        };
        self.store.apply(WriteBatch(vec![Write::UpdateInstrument(record), Write::AppendExamination(log)]))?;
        Ok(result)
    }
}

/// The wallet as a contactless card: holds the wallet, the user's pick and
/// the session between PRESENT and CONFIRM.
#[derive(Debug)]
pub struct WalletApplication<S: WalletStore> {
    wallet: Wallet<S>,
    choice: Option<InstrumentId>,
    pending: Option<PendingPresentation>,
    seen_nonces: VecDeque<ExchangeId>,
    last: Option<ExaminationResult>,
    /// Accept gift offers that arrive by tap (the user opened "receive").
    accept_gifts: bool,
    /// A reply waiting for the reader's next (empty) TRANSFER poll.
    transfer_outbox: Option<Vec<u8>>,
    /// What the transfer engine reported, for the app's screen.
    transfer_events: Vec<TransferEvent>,
}

impl<S: WalletStore> WalletApplication<S> {
    fn present(&mut self, message: &[u8]) -> Result<Vec<u8>, PresentationError> {
        let challenge = Signed::<ChallengeBody>::from_bytes(message)?;
        if self.seen_nonces.contains(&challenge.body.nonce) {
            // Checked after the gate: an uncertified gate learns nothing.
            let trust = self.wallet.trust.as_ref().ok_or(WalletError::NoTrustList)?;
            if !trust.certifies(&challenge.body.gate, Role::Gate, self.wallet.now()) {
                return Err(PresentationError::UncertifiedGate);
            }
            return Err(PresentationError::ReplayedChallenge);
        }
        let pending = self.wallet.answer_challenge(&challenge, self.choice.as_ref())?;
        let presentation = Presentation {
            instrument: self.wallet.instrument(&pending.answer.body.instrument_id)?.instrument,
            answer: pending.answer.clone(),
        };
        if self.seen_nonces.len() >= REMEMBERED_NONCES {
            self.seen_nonces.pop_front();
        }
        self.seen_nonces.push_back(challenge.body.nonce);
        self.pending = Some(pending);
        Ok(PresentationOnAir::from_presentation(&presentation).to_bytes())
    }

    /// Phone to phone: the transfer engine's messages over the same channel.
    /// The reader (sender) sends a message; the answer is this wallet's
    /// reply, or empty while the user has not decided (the reader polls
    /// with an empty TRANSFER at the next tap).
    fn transfer(&mut self, message: &[u8]) -> Result<Vec<u8>, StatusWord> {
        if message.is_empty() {
            return Ok(self.transfer_outbox.take().unwrap_or_default());
        }
        let refuse = |e: TransferError| {
            tracing::info!(error = %e, "transfer message refused");
            match e {
                TransferError::Decode(DecodeError::TooLarge { .. }) => StatusWord::NOT_ENOUGH_MEMORY,
                TransferError::Decode(_) => StatusWord::WRONG_DATA,
                _ => StatusWord::CONDITIONS_NOT_SATISFIED,
            }
        };
        let step = self.wallet.handle_transfer(message).map_err(refuse)?;
        let mut reply = step.send;
        for event in step.events {
            if let TransferEvent::OfferReceived(offer) = &event
                && reply.is_none()
                && self.accept_gifts
                && offer.price.is_none()
            {
                let accepted = self.wallet.accept_offer(offer.offer_id).map_err(refuse)?;
                reply = accepted.send;
                self.transfer_events.extend(accepted.events);
            }
            self.transfer_events.push(event);
        }
        Ok(reply.unwrap_or_default())
    }

    fn confirm(&mut self, message: &[u8]) -> Result<Vec<u8>, PresentationError> {
        let on_air = CertificateOnAir::from_bytes(message)?;
        let pending = self.pending.as_ref().ok_or(PresentationError::NothingToConfirm)?;
        let certificate = on_air.expand(pending);
        let result = self.wallet.record_examination(pending, &certificate)?;
        self.pending = None;
        if result.outcome == Outcome::Admitted {
            // One use per choice: the next tap picks again.
            self.choice = None;
        }
        self.last = Some(result);
        Ok(Vec::new())
    }
}

impl<S: WalletStore> CardApplication for WalletApplication<S> {
    fn aid(&self) -> &[u8] {
        &TESSERA_AID
    }
    fn on_select(&mut self) -> Vec<u8> {
        self.pending = None;
        HELLO.to_vec()
    }
    fn on_deselect(&mut self) {
        self.pending = None;
    }
    fn on_command(&mut self, ins: u8, p1: u8, p2: u8, message: &[u8]) -> Result<Vec<u8>, StatusWord> {
        if (p1, p2) != (0, 0) {
            return Err(StatusWord::WRONG_P1_P2);
        }
        let result = match ins {
            INS_TRANSFER => return self.transfer(message),
            INS_PRESENT => self.present(message),
            INS_CONFIRM => self.confirm(message),
            _ => return Err(StatusWord::INS_NOT_SUPPORTED),
        };
        result.map_err(|e| {
            tracing::info!(error = %e, "presentation refused by the wallet");
            e.status_word()
        })
    }
}

/// The wallet behind the APDU channel: what the HostApduService holds.
#[derive(Debug)]
pub struct WalletCard<S: WalletStore> {
    channel: CardChannel<WalletApplication<S>>,
}

impl<S: WalletStore> WalletCard<S> {
    /// Wraps a wallet.
    pub fn new(wallet: Wallet<S>) -> Self {
        let app = WalletApplication {
            wallet,
            choice: None,
            pending: None,
            seen_nonces: VecDeque::new(),
            last: None,
            accept_gifts: false,
            transfer_outbox: None,
            transfer_events: Vec::new(),
        };
        Self { channel: CardChannel::new(app) }
    }

    /// Answers one command APDU; never panics.
    pub fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.channel.process_apdu(apdu)
    }

    /// The field was lost.
    pub fn deactivate(&mut self) {
        self.channel.deselect();
    }

    /// The user picks what to present at the next tap (`None`: the wallet
    /// picks by event and zone).
    pub fn choose(&mut self, id: Option<InstrumentId>) {
        self.channel.app_mut().choice = id;
    }

    /// Whether gifts offered by tap are accepted at once (the user opened the
    /// "receive" screen); sales always wait for the user.
    pub fn accept_gifts(&mut self, yes: bool) {
        self.channel.app_mut().accept_gifts = yes;
    }

    /// After the user accepted or declined an offer on screen: the reply
    /// the next tap's empty TRANSFER poll collects.
    pub fn queue_transfer_reply(&mut self, bytes: Vec<u8>) {
        self.channel.app_mut().transfer_outbox = Some(bytes);
    }

    /// Transfer events since the last call.
    pub fn take_transfer_events(&mut self) -> Vec<TransferEvent> {
        std::mem::take(&mut self.channel.app_mut().transfer_events)
    }

    /// What the last certificate did, if any.
    pub fn last_result(&self) -> Option<&ExaminationResult> {
        self.channel.app().last.as_ref()
    }

    /// The wallet.
    pub fn wallet(&self) -> &Wallet<S> {
        &self.channel.app().wallet
    }

    /// The wallet, mutably.
    pub fn wallet_mut(&mut self) -> &mut Wallet<S> {
        &mut self.channel.app_mut().wallet
    }

    /// Gives the wallet back.
    pub fn into_wallet(self) -> Wallet<S> {
        self.channel.into_app().wallet
    }
}

/// Whether `instruction` can apply to the record's kind at all.
pub fn instruction_fits(attributes: &Attributes, instruction: Instruction) -> bool {
    match (attributes, instruction) {
        (Attributes::Note(_), _) => false,
        (Attributes::Ticket(_), _) => true,
        (Attributes::Coupon(_), i) => matches!(i, Instruction::Punch | Instruction::Redeem),
    }
}
