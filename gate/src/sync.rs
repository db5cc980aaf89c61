//! The gate's link to the registry (feature `registry`), over the
//! registry's own HTTP client: every request is signed with the gate key.
//!
//! ```text
//!  sync:    GET /info ── registry key = pinned? ──no──▶ refuse (nothing changes)
//!             │ yes
//!           POST /sync {deny_since: installed deny version}
//!             ├─ trust version newer ──▶ GET /trust-list ──▶ verify, install
//!             ├─ deny version newer  ──▶ signed full list: verify, install;
//!             │                          the increments must all be in it
//!           GET /events ──▶ keep this gate's event; warn on unknown zones
//!
//!  bags:    pack (number + records + signed bag, one transaction) ─▶ packed
//!           packed ── POST /gate/bags ──▶ 200: settled (the bag's report)
//!                                    ├──▶ 4xx: refused, with the registry's code
//!                                    └──▶ unreachable: stays packed, retried
//! ```
//!
//! Taps never wait for any of this: the gate decides offline from what the
//! last sync installed.

use crate::gate::{Gate, GateAppError};
use tessera_core::codec::Wire;
use tessera_core::presentation::BagBody;
use tessera_core::{InstrumentId, PublicKey, Role, Signed, Timestamp};
use tessera_registry::client::{ClientError, RegistryClient};
use tessera_registry::wire;

const META_EVENT_INFO: &str = "event-info";

/// Why a sync or an upload failed. Nothing the gate holds changed unless
/// the error says so.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The registry could not be reached, or refused the request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The gate refused what came back (a list not signed by the pinned
    /// registry, an older list) or its store failed.
    #[error(transparent)]
    Gate(#[from] GateAppError),
    /// The gate's database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// No registry key pinned: the gate will not trust a key it is handed
    /// over the network.
    #[error("no registry key pinned: run `tessera-gate pin-registry` with the key the service provider gave you")]
    NotPinned,
    /// The server signs with another key than the pinned one.
    #[error("the registry signs with {offered}, not the pinned {pinned}")]
    WrongRegistry {
        /// Pinned.
        pinned: PublicKey,
        /// Offered.
        offered: PublicKey,
    },
    /// The answer was not what the protocol allows.
    #[error("bad answer from the registry: {0}")]
    BadAnswer(String),
    /// A bag file that is not one of this gate's bags.
    #[error("not a bag of this gate: {0}")]
    NotOurBag(String),
}

/// What a sync changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Trust-list version before and after.
    pub trust_version: (Option<u64>, u64),
    /// Deny-list version before and after.
    pub deny_version: (u64, u64),
    /// Instruments denied since the gate's previous deny-list version.
    pub newly_denied: Vec<InstrumentId>,
    /// The gate's event as the registry lists it.
    pub event: Option<wire::EventJson>,
    /// Things the operator should look at (the gate still runs).
    pub warnings: Vec<String>,
}

/// The registry's answer to one bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BagAnswer {
    /// Settled: the bag's settlement report. `replayed` when the registry
    /// had settled this very bag before (an answer lost on the way back):
    /// the report is the original one and the bag counts as settled.
    Settled(wire::SettlementReport),
    /// Refused, with the registry's HTTP status, code and message.
    Refused {
        /// HTTP status.
        status: u16,
        /// Stable code (`bag_reused`, `duplicate_record`, `already_settled`, …).
        code: String,
        /// For people.
        message: String,
    },
}

/// One bag sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagUpload {
    /// The bag number.
    pub number: u64,
    /// Records in it.
    pub entries: usize,
    /// What the registry said.
    pub answer: BagAnswer,
}

fn pinned(gate: &Gate, client: &RegistryClient) -> Result<(), SyncError> {
    let info = client.info()?;
    let offered =
        PublicKey::from_hex(&info.registry_key).map_err(|_| SyncError::BadAnswer("registry key is not hex".into()))?;
    let pinned = gate.registry_key().ok_or(SyncError::NotPinned)?;
    if offered != pinned {
        return Err(SyncError::WrongRegistry { pinned, offered });
    }
    Ok(())
}

/// Brings the gate's trust list, deny list and event up to date. The
/// registry key must already be pinned and must match.
pub fn sync(gate: &mut Gate, client: &RegistryClient, now: Timestamp) -> Result<SyncReport, SyncError> {
    pinned(gate, client)?;
    let trust_before = gate.trust_list().map(tessera_core::TrustList::version);
    let deny_before = gate.deny_list().version;
    let answer: wire::SyncResponse = client.post(
        "/sync",
        gate.signer(),
        &wire::SyncRequest { holders: Vec::new(), after_notice: 0, deny_since: deny_before },
    )?;
    let mut warnings = Vec::new();

    if trust_before != Some(answer.trust_version) {
        let bytes = client.get_bytes("/trust-list")?;
        gate.install_trust_list(&bytes)?;
    }
    let certified = gate.trust_list().is_some_and(|t| t.certifies(&gate.public_key(), Role::Gate, now));
    if !certified {
        warnings
            .push(format!("the trust list does not certify this gate ({}): wallets will refuse it", gate.public_key()));
    }

    let mut newly_denied = Vec::with_capacity(answer.denied.len());
    for d in &answer.denied {
        if d.version <= deny_before {
            return Err(SyncError::BadAnswer(format!(
                "deny entry of version {} is not after {deny_before}",
                d.version
            )));
        }
        newly_denied
            .push(InstrumentId::from_hex(&d.instrument_id).map_err(|_| SyncError::BadAnswer("denied id".into()))?);
    }
    if answer.deny_version > deny_before || gate.store().meta(crate::gate::META_DENY)?.is_none() {
        let bytes = wire::unb64(&answer.deny_list).ok_or_else(|| SyncError::BadAnswer("deny list base64".into()))?;
        // Check before installing: the unsigned increments must agree with
        // the signed list, or nothing is installed.
        let list = Signed::<tessera_core::DenyList>::from_bytes(&bytes).map_err(GateAppError::from)?;
        if list.body.version != answer.deny_version {
            return Err(SyncError::BadAnswer(format!(
                "signed deny list is version {}, the answer says {}",
                list.body.version, answer.deny_version
            )));
        }
        if let Some(missing) = newly_denied.iter().find(|id| !list.body.denies(id)) {
            return Err(SyncError::BadAnswer(format!("{missing} is reported denied but not in the signed list")));
        }
        gate.install_deny_list(&bytes)?;
    } else if !newly_denied.is_empty() {
        return Err(SyncError::BadAnswer("deny entries without a newer deny list".into()));
    }

    let events: wire::EventsResponse = client.get("/events")?;
    let event = events.events.into_iter().find(|e| e.event_id == gate.policy().event_id);
    match &event {
        Some(e) => {
            for zone in gate.policy().zones.iter().filter(|z| !e.zones.contains(z)) {
                warnings.push(format!("zone {zone} is not a zone of event {} ({})", e.event_id, e.zones.join(", ")));
            }
            if e.valid_until < now {
                warnings.push(format!("event {} ended at {}", e.event_id, e.valid_until));
            }
            let json = serde_json::to_vec(e).map_err(|err| SyncError::BadAnswer(err.to_string()))?;
            gate.store().put_meta(META_EVENT_INFO, &json).map_err(GateAppError::from)?;
        }
        None => warnings.push(format!("the registry lists no event {}", gate.policy().event_id)),
    }
    for w in &warnings {
        tracing::warn!(warning = %w, "sync");
    }
    Ok(SyncReport {
        trust_version: (trust_before, gate.trust_list().map_or(0, tessera_core::TrustList::version)),
        deny_version: (deny_before, gate.deny_list().version),
        newly_denied,
        event,
        warnings,
    })
}

/// The event as the last sync stored it.
pub fn stored_event(gate: &Gate) -> Result<Option<wire::EventJson>, GateAppError> {
    Ok(gate.store().meta(META_EVENT_INFO)?.and_then(|b| serde_json::from_slice(&b).ok()))
}

fn send(gate: &Gate, client: &RegistryClient, bag: &[u8]) -> Result<BagAnswer, ClientError> {
    match client.post::<_, wire::SettlementReport>(
        "/gate/bags",
        gate.signer(),
        &wire::BagUpload { bag: wire::b64(bag) },
    ) {
        Ok(report) => Ok(BagAnswer::Settled(report)),
        Err(ClientError::Refused { status, body }) => {
            Ok(BagAnswer::Refused { status, code: body.error, message: body.message })
        }
        Err(e) => Err(e),
    }
}

fn record_answer(gate: &mut Gate, number: u64, answer: &BagAnswer, now: Timestamp) -> Result<(), GateAppError> {
    let reason = match answer {
        BagAnswer::Settled(_) => None,
        BagAnswer::Refused { code, message, .. } => Some(format!("{code}: {message}")),
    };
    gate.store_mut().answer_bag(number, reason.as_deref(), now)?;
    Ok(())
}

/// Uploads every packed bag, oldest first, recording each answer. Stops at
/// the first transport failure (the rest stay packed for the next try).
pub fn upload_packed(gate: &mut Gate, client: &RegistryClient, now: Timestamp) -> Result<Vec<BagUpload>, SyncError> {
    let mut out = Vec::new();
    for (number, bytes) in gate.store().packed_bags()? {
        let entries = Signed::<BagBody>::from_bytes(&bytes).map_err(GateAppError::from)?.body.entries.len();
        let answer = send(gate, client, &bytes)?;
        record_answer(gate, number, &answer, now)?;
        tracing::info!(bag = number, entries, ?answer, "bag uploaded");
        out.push(BagUpload { number, entries, answer });
    }
    Ok(out)
}

/// Uploads a bag file of this gate's as it is (a bag carried from a gate
/// without a network, or sent again). The answer is recorded when the file
/// is the bag this gate stored under that number and not yet answered.
pub fn upload_file(
    gate: &mut Gate,
    client: &RegistryClient,
    bytes: &[u8],
    now: Timestamp,
) -> Result<BagUpload, SyncError> {
    let bag = Signed::<BagBody>::from_bytes(bytes).map_err(GateAppError::from)?;
    if bag.body.gate != gate.public_key() {
        return Err(SyncError::NotOurBag(format!("signed for gate {}", bag.body.gate)));
    }
    let number = bag.body.bag_number;
    let answer = send(gate, client, bytes)?;
    if gate.store().bag(number)?.is_some_and(|b| b.bag == bytes && b.state == "packed") {
        record_answer(gate, number, &answer, now)?;
    }
    Ok(BagUpload { number, entries: bag.body.entries.len(), answer })
}

/// The registry's totals for this gate.
pub fn settlement(gate: &Gate, client: &RegistryClient) -> Result<wire::SettlementReport, SyncError> {
    Ok(client.post("/gate/settlement", gate.signer(), &wire::SettlementRequest {})?)
}
