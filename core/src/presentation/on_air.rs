//! What actually crosses the air: the presentation and the examination
//! certificate with every field the receiver can recompute left out.
//!
//! Nothing signed changes. The signed bodies (`PresentationBody`,
//! `ExaminationBody`, the instrument's `RegisteredCertificate` and
//! `Endorsement`s) are exactly those of the full messages; only their
//! encoding on the air omits fields the other side already holds or can
//! derive, and the receiver rebuilds each body before checking its
//! signature. A wrong rebuild — a sender that lied about a left-out field,
//! a chain whose links do not follow one another — fails that signature
//! check, so the receiver refuses exactly what it would have refused in
//! the full form (`forged`, `not-holder`, a certificate mismatch).
//!
//! ```text
//!  left out                         rebuilt by the receiver from
//!  ───────────────────────────────  ─────────────────────────────────────────
//!  registered.instrument_id          genesis.instrument_id
//!  registered.genesis                digest(genesis)
//!  registered.replaces (sequence 0)  digest(genesis)
//!  link.instrument_id                genesis.instrument_id
//!  link.sequence                     previous tip sequence + 1
//!  link.previous                     previous tip digest (genesis, certificate's
//!                                    `replaces`, or the link before)
//!  answer.challenge                  digest(the gate's own signed challenge)
//!  answer.instrument_id, .sequence,  the rebuilt instrument: id, tip sequence,
//!        .tip                        tip digest
//!  answer.instruction                the challenge's instruction
//!  certificate.gate                  the challenge's gate key
//!  certificate.challenge             digest(the challenge the wallet answered)
//!  certificate.presentation          digest(the wallet's own signed answer)
//!  certificate.instrument_id,        the wallet's own answer
//!             .counter
//! ```
//!
//! On a registered ticket this removes 290 of 1 000 bytes from a tap and
//! one GET RESPONSE round trip (docs/benchmarks.md).

use super::{
    ChallengeBody, ExaminationBody, Instruction, Outcome, PendingPresentation, Presentation, PresentationBody,
    StateChange,
};
use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::{Digest, PublicKey, Signature};
use crate::ids::ExchangeId;
use crate::instrument::{Endorsement, Genesis, Instrument, InstrumentState, RegisteredCertificate, Signed, Status};
use minicbor::{Decode, Encode};

/// A registered certificate on the air.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct RegisteredOnAir {
    /// The sequence of the last link it replaces.
    #[n(0)]
    pub sequence: u32,
    /// That link's digest; absent at sequence 0, where it is the genesis'.
    #[n(1)]
    pub replaces: Option<Digest>,
    /// The holder at `sequence`.
    #[n(2)]
    pub holder: PublicKey,
    /// State as registered.
    #[n(3)]
    pub state: InstrumentState,
    /// When it was certified.
    #[n(4)]
    pub issued_at: Timestamp,
    /// The registry's signature over the full `RegisteredCertificate`.
    #[n(5)]
    pub signature: Signature,
}

/// An endorsement on the air.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct LinkOnAir {
    /// The key that holds it from then on.
    #[n(0)]
    pub new_holder: PublicKey,
    /// The exchange's offer.
    #[n(1)]
    pub offer_id: ExchangeId,
    /// The exchange's acceptance.
    #[n(2)]
    pub acceptance_id: ExchangeId,
    /// When it was signed.
    #[n(3)]
    pub time: Timestamp,
    /// The holder's signature over the full `Endorsement`.
    #[n(4)]
    pub signature: Signature,
}

/// The holder's answer on the air.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct AnswerOnAir {
    /// The state change it asks for.
    #[n(0)]
    pub change: StateChange,
    /// This examination's number.
    #[n(1)]
    pub counter: u32,
    /// The wallet's clock.
    #[n(2)]
    pub time: Timestamp,
    /// The holder's signature over the full `PresentationBody`.
    #[n(3)]
    pub signature: Signature,
}

/// The PRESENT answer: a [`Presentation`] without what the gate recomputes.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct PresentationOnAir {
    /// The issuer-signed genesis, whole.
    #[n(0)]
    pub genesis: Signed<Genesis>,
    /// The registered certificate, if the chain was compacted.
    #[n(1)]
    pub registered: Option<RegisteredOnAir>,
    /// The links after the genesis or the certificate.
    #[n(2)]
    pub links: Vec<LinkOnAir>,
    /// The holder's answer.
    #[n(3)]
    pub answer: AnswerOnAir,
}

impl Wire for PresentationOnAir {
    const NAME: &'static str = "presentation on air";
    const MAX_LEN: usize = crate::apdu::Limits::DEFAULT_MAX_MESSAGE;
}

/// The CONFIRM data: an examination certificate without what the wallet
/// recomputes.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct CertificateOnAir {
    /// What was done.
    #[n(0)]
    pub instruction: Instruction,
    /// Uses left afterwards.
    #[n(1)]
    pub uses_left: u16,
    /// Status afterwards.
    #[n(2)]
    pub status: Status,
    /// Admitted or refused, and why.
    #[n(3)]
    pub outcome: Outcome,
    /// The gate's record number.
    #[n(4)]
    pub record: u64,
    /// The gate's clock.
    #[n(5)]
    pub time: Timestamp,
    /// The gate's signature over the full `ExaminationBody`.
    #[n(6)]
    pub signature: Signature,
}

impl Wire for CertificateOnAir {
    const NAME: &'static str = "examination certificate on air";
    const MAX_LEN: usize = 256;
}

impl PresentationOnAir {
    /// The wallet's side: leaves out what the gate recomputes.
    pub fn from_presentation(p: &Presentation) -> Self {
        let i = &p.instrument;
        let registered = i.registered.as_ref().map(|c| RegisteredOnAir {
            sequence: c.body.sequence,
            replaces: (c.body.sequence != 0).then_some(c.body.replaces),
            holder: c.body.holder,
            state: c.body.state,
            issued_at: c.body.issued_at,
            signature: c.signature,
        });
        let links = i
            .links
            .iter()
            .map(|l| LinkOnAir {
                new_holder: l.body.new_holder,
                offer_id: l.body.offer_id,
                acceptance_id: l.body.acceptance_id,
                time: l.body.time,
                signature: l.signature,
            })
            .collect();
        let a = &p.answer;
        let answer =
            AnswerOnAir { change: a.body.change, counter: a.body.counter, time: a.body.time, signature: a.signature };
        Self { genesis: i.genesis.clone(), registered, links, answer }
    }

    /// The gate's side: the full presentation as the wallet signed it, if
    /// the wallet followed the rules (signatures are checked afterwards, by
    /// the verifier and `decide`).
    pub fn expand(self, challenge: &Signed<ChallengeBody>) -> Presentation {
        let id = self.genesis.body.instrument_id;
        let genesis_digest = self.genesis.digest();
        let registered = self.registered.map(|c| Signed {
            body: RegisteredCertificate {
                instrument_id: id,
                genesis: genesis_digest,
                sequence: c.sequence,
                replaces: c.replaces.unwrap_or(genesis_digest),
                holder: c.holder,
                state: c.state,
                issued_at: c.issued_at,
            },
            signature: c.signature,
        });
        let mut instrument =
            Instrument { genesis: self.genesis, registered, links: Vec::with_capacity(self.links.len()) };
        for l in self.links {
            let body = Endorsement {
                instrument_id: id,
                sequence: instrument.sequence().saturating_add(1),
                previous: instrument.tip_digest(),
                new_holder: l.new_holder,
                offer_id: l.offer_id,
                acceptance_id: l.acceptance_id,
                time: l.time,
            };
            instrument.links.push(Signed { body, signature: l.signature });
        }
        let a = self.answer;
        let answer = Signed {
            body: PresentationBody {
                challenge: challenge.digest(),
                instrument_id: id,
                sequence: instrument.sequence(),
                tip: instrument.tip_digest(),
                instruction: challenge.body.instruction,
                change: a.change,
                counter: a.counter,
                time: a.time,
            },
            signature: a.signature,
        };
        Presentation { instrument, answer }
    }
}

impl CertificateOnAir {
    /// The gate's side.
    pub fn from_certificate(c: &Signed<ExaminationBody>) -> Self {
        let b = &c.body;
        Self {
            instruction: b.instruction,
            uses_left: b.uses_left,
            status: b.status,
            outcome: b.outcome,
            record: b.record,
            time: b.time,
            signature: c.signature,
        }
    }

    /// The wallet's side: the full certificate for the pending answer (its
    /// signature is checked by `Wallet::record_examination`).
    pub fn expand(self, pending: &PendingPresentation) -> Signed<ExaminationBody> {
        let a = &pending.answer.body;
        Signed {
            body: ExaminationBody {
                gate: pending.challenge.body.gate,
                challenge: pending.challenge.digest(),
                presentation: pending.answer.digest(),
                instrument_id: a.instrument_id,
                instruction: self.instruction,
                counter: a.counter,
                uses_left: self.uses_left,
                status: self.status,
                outcome: self.outcome,
                record: self.record,
                time: self.time,
            },
            signature: self.signature,
        }
    }
}
