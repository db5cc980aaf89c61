//! Gates of one venue telling each other what they admitted, so a ticket
//! used at gate A is refused at gate B with no registry link (DESIGN §3.2).
//! No I/O here: the messages, their checks and the conflict rule. The gate
//! app carries them over libp2p gossipsub.
//!
//! ```text
//!  gate A admits X ──▶ Signed<UsedEventBody> (Context::UsedEvent) ──gossip──▶ gate B
//!                                                     B: signed by a certified gate?
//!                                                        already seen (gate, record)? → ignore
//!                                                        merge into the used set
//!                                                        fork with B's copy → double transfer
//!                                                        uses consumed > uses allowed → double entry
//!  partition: A and B each admit a cloned X; heal: each receives the other's
//!  event, merges it, and reports the double entry with both gates named.
//! ```

use super::PriorUse;
use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::{Context, PublicKey};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Instrument, Signed, SignedBody};
use crate::proof::EquivocationProof;
use crate::trust::{Role, TrustList};
use minicbor::{Decode, Encode};

/// Most events in one envelope (a catch-up after a partition is split).
pub const MAX_ENVELOPE_EVENTS: usize = 64;

/// One admission, as a gate tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct UsedEventBody {
    /// The admitting gate.
    #[n(0)]
    pub gate: PublicKey,
    /// The gate's record number: `(gate, record)` names the event.
    #[n(1)]
    pub record: u64,
    /// The instrument.
    #[n(2)]
    pub instrument_id: InstrumentId,
    /// The holder key admitted.
    #[n(3)]
    pub holder: PublicKey,
    /// Uses this admission consumed (0 for a re-entry).
    #[n(4)]
    pub uses_consumed: u16,
    /// The chain admitted, so another gate can tell a fork.
    #[n(5)]
    pub instrument: Instrument,
    /// When.
    #[n(6)]
    pub time: Timestamp,
}

impl SignedBody for UsedEventBody {
    const CONTEXT: Context = Context::UsedEvent;
}

impl Wire for Signed<UsedEventBody> {
    const NAME: &'static str = "used event";
    const MAX_LEN: usize = super::Presentation::MAX_LEN + 512;
}

/// What travels on the mesh topic: a batch of events with a fresh id, so a
/// catch-up resend is a new message to gossip's duplicate filter.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct MeshEnvelope {
    /// Fresh per envelope.
    #[n(0)]
    pub id: ExchangeId,
    /// The events, at most [`MAX_ENVELOPE_EVENTS`].
    #[n(1)]
    pub events: Vec<Signed<UsedEventBody>>,
}

impl Wire for MeshEnvelope {
    const NAME: &'static str = "mesh envelope";
    /// Gossipsub's default transmit size is 64 KiB; envelopes stay under it
    /// (a registered ticket's event is ≈ 600 B).
    const MAX_LEN: usize = 60 * 1024;
}

/// Why an event from the mesh was ignored. Nothing was merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// Too many events in one envelope.
    #[error("an envelope of {0} events is over the bound")]
    TooManyEvents(usize),
    /// Not signed by the gate it names.
    #[error("the used event is not signed by its gate")]
    BadSignature,
    /// The gate is not certified in this gate's trust list.
    #[error("gate {0} is not certified")]
    UncertifiedGate(PublicKey),
    /// The event names another instrument than the chain it carries.
    #[error("the used event's instrument does not match its chain")]
    Mismatch,
}

/// How two admissions of one instrument disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// More uses consumed across the mesh than the instrument allows: it got
    /// in twice while the gates could not talk.
    DoubleEntry,
    /// Two forks of the instrument were admitted: a holder signed twice.
    DoubleTransfer,
}

/// A conflict found when merging an event, for the operator and the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConflict {
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// What kind.
    pub kind: ConflictKind,
    /// The gate whose event revealed it.
    pub remote_gate: PublicKey,
    /// Its record number.
    pub remote_record: u64,
    /// Uses consumed across the mesh after merging.
    pub uses_consumed: u16,
    /// Uses the instrument allows.
    pub uses_allowed: u16,
    /// The proof naming the signer, for a double transfer.
    pub proof: Option<EquivocationProof>,
}

impl Signed<UsedEventBody> {
    /// Checks an event from the mesh: its gate's signature and certification.
    pub fn check(&self, trust: &TrustList, now: Timestamp) -> Result<(), MeshError> {
        let e = &self.body;
        if !trust.certifies(&e.gate, Role::Gate, now) {
            return Err(MeshError::UncertifiedGate(e.gate));
        }
        self.verify(&e.gate).map_err(|_| MeshError::BadSignature)?;
        if e.instrument.id() != e.instrument_id {
            return Err(MeshError::Mismatch);
        }
        Ok(())
    }
}

impl MeshEnvelope {
    /// Decodes and bounds an envelope from the mesh.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::codec::DecodeError> {
        Self::from_bytes(bytes)
    }

    /// Checks the bound on events.
    pub fn check_bounds(&self) -> Result<(), MeshError> {
        if self.events.len() > MAX_ENVELOPE_EVENTS {
            return Err(MeshError::TooManyEvents(self.events.len()));
        }
        Ok(())
    }
}

/// The uses an instrument allows, from what it carries.
pub fn uses_allowed(instrument: &Instrument) -> u16 {
    match &instrument.registered {
        Some(cert) => cert.body.state.uses_left,
        None => instrument.attributes().uses(),
    }
}

/// Whether merging `event` into what this gate knows (`prior`) reveals a
/// conflict. Pure: the caller merges either way (a use is a use) and
/// reports the conflict.
pub fn classify(prior: Option<&PriorUse>, event: &UsedEventBody) -> Option<MeshConflict> {
    let prior = prior?;
    let allowed = uses_allowed(&event.instrument).max(uses_allowed(&prior.instrument));
    let consumed = prior.uses_consumed.saturating_add(event.uses_consumed);
    let conflict = |kind, proof| MeshConflict {
        instrument_id: event.instrument_id,
        kind,
        remote_gate: event.gate,
        remote_record: event.record,
        uses_consumed: consumed,
        uses_allowed: allowed,
        proof,
    };
    if let Some(proof) = EquivocationProof::find(&prior.instrument, &event.instrument) {
        return Some(conflict(ConflictKind::DoubleTransfer, Some(proof)));
    }
    (event.uses_consumed > 0 && consumed > allowed).then(|| conflict(ConflictKind::DoubleEntry, None))
}
