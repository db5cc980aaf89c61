//! The gate app: its key, lists, policy and store, and one tap driven over
//! any [`Transceiver`] (libnfc, a virtual card, a wallet in the same
//! process).
//!
//! ```text
//!   init ──▶ pin registry ──▶ install trust list (certifying this gate's key)
//!        ──▶ [install deny list] ──▶ tap, tap, tap …   (offline from here)
//! ```

use crate::store::{GateStore, StoreError};
use rand::rngs::OsRng;
use std::path::{Path, PathBuf};
use tessera_core::apdu::{StatusWord, Traffic};
use tessera_core::codec::Wire;
use tessera_core::presentation::mesh::{MAX_ENVELOPE_EVENTS, MeshConflict, MeshEnvelope, UsedEventBody, classify};
use tessera_core::presentation::{
    BagBody, BagEntry, Examination, ExaminationBody, GateContext, GateError, GateEvent, GateExamination, GatePolicy,
    Instruction, MAX_BAG_ENTRIES, OfflinePolicy, Outcome, Presentation, ReentryPolicy,
};
use tessera_core::sealing::{KeyFileProvider, KeyProvider, Sealer};
use tessera_core::trust::TrustError;
use tessera_core::{
    DenyList, ExchangeId, LocalSigner, PublicKey, SecretKey, Signed, Signer, Timestamp, TrustList, TrustListBody,
    Verifier,
};

const META_SALT: &str = "salt";
const META_GATE_KEY: &str = "gate-key";
const META_GATE_PUBLIC: &str = "gate-public";
const META_REGISTRY: &str = "registry";
const META_TRUST: &str = "trust-list";
pub(crate) const META_DENY: &str = "deny-list";
const META_EVENT: &str = "event";
const META_ZONES: &str = "zones";
const META_INSTRUCTION: &str = "instruction";
const META_REENTRY: &str = "reentry";
const META_MAX_HOPS: &str = "max-unreconciled-hops";
const META_MAX_NOTE: &str = "max-note-value";

/// The most round trips one tap may take: a presentation at the frame
/// bound plus its response chain and the confirmation.
const MAX_ROUND_TRIPS: usize = 200;

/// Why a gate call failed.
#[derive(Debug, thiserror::Error)]
pub enum GateAppError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file could not be read or written.
    #[error("gate key: {0}")]
    Key(String),
    /// A list from outside was refused.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A list from outside did not decode.
    #[error(transparent)]
    Decode(#[from] tessera_core::DecodeError),
    /// No registry key pinned yet, or a different one.
    #[error("registry: {0}")]
    Registry(String),
    /// No trust list installed: the gate cannot decide anything.
    #[error("no trust list installed: the gate refuses to run without one")]
    NoTrustList,
    /// The configuration in the database is unusable.
    #[error("gate configuration: {0}")]
    Config(String),
    /// The gate's signer failed.
    #[error(transparent)]
    Signer(#[from] tessera_core::SignerError),
}

/// Carries one command APDU to the card and brings its answer back.
pub trait Transceiver {
    /// Sends `command`, returns the response APDU (data and status word).
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String>;
}

impl<S: tessera_core::store::WalletStore> Transceiver for tessera_core::presentation::WalletCard<S> {
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.process_apdu(command))
    }
}

/// How a tap ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The gate decided; the examination is recorded.
    Decided(Box<Examination>),
    /// The card refused before presenting (an untrusted gate, no ticket).
    CardRefused(StatusWord),
    /// The card went away or answered nonsense before a decision.
    Failed(String),
}

/// Everything about one tap, for the screen and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapReport {
    /// The decision.
    pub decision: Decision,
    /// Whether the wallet acknowledged the certificate.
    pub confirmed: bool,
    /// Bytes on the air.
    pub traffic: Traffic,
    /// APDU round trips.
    pub round_trips: usize,
    /// For an admission: the mesh envelope announcing it to the other gates.
    pub used_event: Option<Vec<u8>>,
}

/// What merging one envelope did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Events new to this gate, merged into its used set.
    pub merged: usize,
    /// Events already known (or this gate's own).
    pub known: usize,
    /// Events refused (bad signature, uncertified gate, bounds).
    pub rejected: usize,
    /// Conflicts revealed.
    pub conflicts: Vec<MeshConflict>,
}

fn envelope(events: Vec<Signed<UsedEventBody>>) -> Vec<u8> {
    MeshEnvelope { id: ExchangeId::random(&mut OsRng), events }.to_bytes()
}

impl TapReport {
    /// Whether the holder may pass.
    pub fn admitted(&self) -> bool {
        matches!(&self.decision, Decision::Decided(e) if e.outcome == Outcome::Admitted)
    }

    /// A short machine reason: `admitted`, a refusal code, or why the card refused.
    pub fn reason(&self) -> String {
        match &self.decision {
            Decision::Decided(e) => match e.outcome {
                Outcome::Admitted => "admitted".into(),
                Outcome::Refused(r) => r.as_str().into(),
            },
            Decision::CardRefused(sw) => card_reason(*sw).into(),
            Decision::Failed(_) => "no-decision".into(),
        }
    }
}

/// The reason code for a status word the wallet refused with.
pub fn card_reason(sw: StatusWord) -> &'static str {
    match sw {
        StatusWord::SECURITY_NOT_SATISFIED => "gate-not-trusted-by-wallet",
        StatusWord::DATA_NOT_FOUND => "no-matching-ticket",
        StatusWord::CONDITIONS_NOT_SATISFIED => "ticket-not-presentable",
        StatusWord::REFERENCE_DATA_NOT_USABLE => "stale-challenge",
        StatusWord::FILE_NOT_FOUND => "not-a-tessera-wallet",
        _ => "card-error",
    }
}

/// A gate: its key, the registry's lists, its policy and its records.
pub struct Gate {
    store: GateStore,
    signer: LocalSigner,
    registry: Option<PublicKey>,
    trust: Option<TrustList>,
    deny: DenyList,
    policy: GatePolicy,
    offline: OfflinePolicy,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("key", &self.signer.public_key())
            .field("policy", &self.policy)
            .field("trust_list_version", &self.trust.as_ref().map(TrustList::version))
            .finish_non_exhaustive()
    }
}

/// Paths of a gate's files in its directory.
pub fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("gate.db"), dir.join("gate.key"))
}

fn parse_policy(store: &GateStore) -> Result<GatePolicy, GateAppError> {
    let text = |k: &str| -> Result<String, GateAppError> {
        let v = store.meta(k)?.ok_or_else(|| GateAppError::Config(format!("{k} not set")))?;
        String::from_utf8(v).map_err(|_| GateAppError::Config(format!("{k} is not text")))
    };
    let instruction = text(META_INSTRUCTION)?;
    Ok(GatePolicy {
        event_id: text(META_EVENT)?,
        zones: text(META_ZONES)?.split(',').filter(|z| !z.is_empty()).map(str::to_owned).collect(),
        instruction: Instruction::parse(&instruction)
            .ok_or_else(|| GateAppError::Config(format!("unknown instruction {instruction}")))?,
        reentry: match text(META_REENTRY)?.as_str() {
            "same-holder" => ReentryPolicy::SameHolder,
            _ => ReentryPolicy::Refuse,
        },
    })
}

/// The offline policy in the database; [`OfflinePolicy::DEFAULT`] for
/// what is not set.
fn parse_offline(store: &GateStore) -> Result<OfflinePolicy, GateAppError> {
    let number = |k: &str, default: u64| -> Result<u64, GateAppError> {
        match store.meta(k)? {
            None => Ok(default),
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| GateAppError::Config(format!("{k} is not a number"))),
        }
    };
    let d = OfflinePolicy::DEFAULT;
    let hops = number(META_MAX_HOPS, d.max_unreconciled_hops as u64)?;
    Ok(OfflinePolicy {
        max_unreconciled_hops: usize::try_from(hops)
            .map_err(|_| GateAppError::Config(format!("{META_MAX_HOPS} is too large")))?,
        max_note_value: number(META_MAX_NOTE, d.max_note_value)?,
    })
}

impl Gate {
    /// Creates a gate in `dir`: a key file, a fresh gate key sealed under
    /// it in the database, and the policy. Returns the gate's public key,
    /// which the registry certifies in its trust list.
    pub fn init(dir: &Path, policy: &GatePolicy) -> Result<PublicKey, GateAppError> {
        std::fs::create_dir_all(dir).map_err(|e| GateAppError::Key(e.to_string()))?;
        let (db, key_file) = paths(dir);
        let store = GateStore::open(&db)?;
        if store.meta(META_GATE_KEY)?.is_some() {
            return Err(GateAppError::Config(format!("a gate already exists in {}", dir.display())));
        }
        let provider = KeyFileProvider::create(&key_file, &mut OsRng).map_err(|e| GateAppError::Key(e.to_string()))?;
        let mut salt = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut salt);
        let sealer = Sealer::new(&provider.storage_key(&salt).map_err(|e| GateAppError::Key(e.to_string()))?);
        let key = SecretKey::generate(&mut OsRng);
        store.put_meta(META_SALT, &salt)?;
        store.put_meta(META_GATE_KEY, &sealer.seal_key(&key, &mut OsRng))?;
        store.put_meta(META_GATE_PUBLIC, &key.public_key().0)?;
        Self::write_policy(&store, policy)?;
        Ok(key.public_key())
    }

    fn write_policy(store: &GateStore, policy: &GatePolicy) -> Result<(), GateAppError> {
        store.put_meta(META_EVENT, policy.event_id.as_bytes())?;
        store.put_meta(META_ZONES, policy.zones.join(",").as_bytes())?;
        store.put_meta(META_INSTRUCTION, policy.instruction.as_str().as_bytes())?;
        let reentry = match policy.reentry {
            ReentryPolicy::Refuse => "refuse",
            ReentryPolicy::SameHolder => "same-holder",
        };
        store.put_meta(META_REENTRY, reentry.as_bytes())?;
        Ok(())
    }

    /// Opens the gate in `dir`.
    pub fn open(dir: &Path) -> Result<Self, GateAppError> {
        let (db, key_file) = paths(dir);
        if !db.exists() {
            return Err(GateAppError::Config(format!("no gate in {} (run `tessera-gate init`)", dir.display())));
        }
        let store = GateStore::open(&db)?;
        let salt: [u8; 16] = store
            .meta(META_SALT)?
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| GateAppError::Config("salt missing".into()))?;
        let sealed = store.meta(META_GATE_KEY)?.ok_or_else(|| GateAppError::Config("gate key missing".into()))?;
        let storage =
            KeyFileProvider::new(key_file).storage_key(&salt).map_err(|e| GateAppError::Key(e.to_string()))?;
        let sealer = Sealer::new(&storage);
        let public = store
            .meta(META_GATE_PUBLIC)?
            .and_then(|b| PublicKey::from_slice(&b))
            .ok_or_else(|| GateAppError::Config("gate public key missing".into()))?;
        let key = sealer.open_key(&public, &sealed).map_err(|e| GateAppError::Key(e.to_string()))?;
        let signer = LocalSigner::new(key);
        let registry = store.meta(META_REGISTRY)?.and_then(|b| PublicKey::from_slice(&b));
        let trust = match (registry, store.meta(META_TRUST)?) {
            (Some(r), Some(bytes)) => Some(TrustList::verify(Signed::<TrustListBody>::from_bytes(&bytes)?, &r)?),
            _ => None,
        };
        let deny = match store.meta(META_DENY)? {
            Some(bytes) => Signed::<DenyList>::from_bytes(&bytes)?.body,
            None => DenyList::empty(),
        };
        let policy = parse_policy(&store)?;
        let offline = parse_offline(&store)?;
        Ok(Self { store, signer, registry, trust, deny, policy, offline })
    }

    /// The gate's key.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// The signer, for the mesh and bags.
    pub fn signer(&self) -> &LocalSigner {
        &self.signer
    }

    /// The policy.
    pub fn policy(&self) -> &GatePolicy {
        &self.policy
    }

    /// Changes the policy.
    pub fn set_policy(&mut self, policy: GatePolicy) -> Result<(), GateAppError> {
        Self::write_policy(&self.store, &policy)?;
        self.policy = policy;
        Ok(())
    }

    /// What the gate admits without the registry (DESIGN §2).
    pub fn offline_policy(&self) -> OfflinePolicy {
        self.offline
    }

    /// Changes the offline policy.
    pub fn set_offline_policy(&mut self, offline: OfflinePolicy) -> Result<(), GateAppError> {
        self.store.put_meta(META_MAX_HOPS, offline.max_unreconciled_hops.to_string().as_bytes())?;
        self.store.put_meta(META_MAX_NOTE, offline.max_note_value.to_string().as_bytes())?;
        self.offline = offline;
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &GateStore {
        &self.store
    }

    /// The store, mutably (mesh merges).
    pub fn store_mut(&mut self) -> &mut GateStore {
        &mut self.store
    }

    /// The pinned registry key.
    pub fn registry_key(&self) -> Option<PublicKey> {
        self.registry
    }

    /// The installed trust list.
    pub fn trust_list(&self) -> Option<&TrustList> {
        self.trust.as_ref()
    }

    /// The deny list.
    pub fn deny_list(&self) -> &DenyList {
        &self.deny
    }

    /// Pins the registry key; it cannot change afterwards.
    pub fn pin_registry(&mut self, key: PublicKey) -> Result<(), GateAppError> {
        match self.registry {
            Some(k) if k == key => Ok(()),
            Some(k) => Err(GateAppError::Registry(format!("already pinned to {k}"))),
            None => {
                self.store.put_meta(META_REGISTRY, &key.0)?;
                self.registry = Some(key);
                Ok(())
            }
        }
    }

    /// Installs a trust list signed by the pinned registry; never an older one.
    pub fn install_trust_list(&mut self, bytes: &[u8]) -> Result<(), GateAppError> {
        let registry = self.registry.ok_or_else(|| GateAppError::Registry("not pinned".into()))?;
        let list = TrustList::verify(Signed::<TrustListBody>::from_bytes(bytes)?, &registry)?;
        if let Some(current) = &self.trust
            && list.version() < current.version()
        {
            return Err(TrustError::Stale { installed: current.version(), offered: list.version() }.into());
        }
        self.store.put_meta(META_TRUST, bytes)?;
        self.trust = Some(list);
        Ok(())
    }

    /// Installs a deny list signed by the pinned registry; never an older one.
    pub fn install_deny_list(&mut self, bytes: &[u8]) -> Result<(), GateAppError> {
        let registry = self.registry.ok_or_else(|| GateAppError::Registry("not pinned".into()))?;
        let signed = Signed::<DenyList>::from_bytes(bytes)?;
        signed.verify(&registry).map_err(|_| TrustError::BadSignature)?;
        if signed.body.version < self.deny.version {
            return Err(TrustError::Stale { installed: self.deny.version, offered: signed.body.version }.into());
        }
        self.store.put_meta(META_DENY, bytes)?;
        self.deny = signed.body;
        Ok(())
    }

    /// The used event for an admission, signed and stored for catch-up.
    fn used_event(
        store: &mut GateStore,
        signer: &LocalSigner,
        e: &Examination,
        now: Timestamp,
    ) -> Result<Signed<UsedEventBody>, GateAppError> {
        let body = UsedEventBody {
            gate: signer.public_key(),
            record: e.certificate.body.record,
            instrument_id: e.instrument_id,
            holder: e.holder,
            uses_consumed: crate::store::consumed_by(e),
            instrument: e.presentation.instrument.clone(),
            time: now,
        };
        let event = Signed::sign(body, signer)?;
        store.put_own_event(&event, now)?;
        Ok(event)
    }

    /// Merges an envelope from the mesh. Events from uncertified gates or
    /// with bad signatures are skipped (and logged); events already known
    /// change nothing. Returns the conflicts the merge revealed.
    pub fn merge_envelope(&mut self, bytes: &[u8], now: Timestamp) -> Result<MergeReport, GateAppError> {
        let envelope = MeshEnvelope::decode(bytes)?;
        let mut report = MergeReport::default();
        if let Err(e) = envelope.check_bounds() {
            tracing::warn!(error = %e, "mesh envelope refused");
            report.rejected += envelope.events.len();
            return Ok(report);
        }
        let trust = self.trust.as_ref().ok_or(GateAppError::NoTrustList)?;
        for event in &envelope.events {
            let e = &event.body;
            if e.gate == self.signer.public_key() || self.store.has_event(&e.gate, e.record)? {
                report.known += 1;
                continue;
            }
            if let Err(err) = event.check(trust, now) {
                tracing::warn!(error = %err, "mesh event refused");
                report.rejected += 1;
                continue;
            }
            let prior = self.store.prior_use(&e.instrument_id)?;
            let conflict = classify(prior.as_ref(), e);
            self.store.merge_event(event, conflict.as_ref(), now)?;
            report.merged += 1;
            if let Some(c) = conflict {
                tracing::warn!(instrument = %c.instrument_id, kind = ?c.kind, remote = %c.remote_gate, "mesh conflict");
                report.conflicts.push(c);
            }
        }
        Ok(report)
    }

    /// Envelopes holding every event this gate knows, for a peer that just
    /// (re)joined: each under the size and count bounds.
    pub fn catch_up(&self) -> Result<Vec<Vec<u8>>, GateAppError> {
        let mut out = Vec::new();
        let mut batch: Vec<Signed<UsedEventBody>> = Vec::new();
        let mut size = 0usize;
        for event in self.store.events()? {
            let len = event.to_bytes().len();
            if !batch.is_empty() && (batch.len() >= MAX_ENVELOPE_EVENTS || size + len > MeshEnvelope::MAX_LEN / 2) {
                out.push(envelope(std::mem::take(&mut batch)));
                size = 0;
            }
            size += len;
            batch.push(event);
        }
        if !batch.is_empty() {
            out.push(envelope(batch));
        }
        Ok(out)
    }

    /// Packs up to `max` unpacked records into a signed bag with a fresh,
    /// single-use bag number. The number, the records' packing and the signed
    /// bag are stored in one transaction (kept `packed` until the registry
    /// answers an upload). `None` when there is nothing to pack.
    pub fn pack_bag(&mut self, max: usize, now: Timestamp) -> Result<Option<Signed<BagBody>>, GateAppError> {
        let rows = self.store.unbagged(max.min(MAX_BAG_ENTRIES))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(rows.len());
        for (_, presentation, certificate) in &rows {
            let p = Presentation::from_bytes(presentation)?;
            let certificate = Signed::<ExaminationBody>::from_bytes(certificate)?;
            entries.push(BagEntry { instrument: p.instrument, answer: p.answer, certificate });
        }
        let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let signer = &self.signer;
        let mut signed = None;
        self.store.pack_bag(&seqs, now, |bag_number| -> Result<Vec<u8>, GateAppError> {
            let body = BagBody { gate: signer.public_key(), bag_number, packed_at: now, entries };
            let bag = Signed::sign(body, signer)?;
            let bytes = bag.to_bytes();
            signed = Some(bag);
            Ok(bytes)
        })?;
        Ok(signed)
    }

    /// One tap: challenge, presentation, offline decision written to the
    /// store, certificate to the wallet. Never admits without a trust list.
    pub fn tap(&mut self, link: &mut dyn Transceiver, now: Timestamp) -> Result<TapReport, GateAppError> {
        let trust = self.trust.as_ref().ok_or(GateAppError::NoTrustList)?;
        let nonce = ExchangeId::random(&mut OsRng);
        let mut exam =
            GateExamination::start(&self.signer, self.policy.clone(), nonce, self.store.next_record()?, now)?
                .with_offline_policy(self.offline);
        let mut decided: Option<Box<Examination>> = None;
        let mut round_trips = 0;
        let mut failure = None;
        let mut confirmed = false;
        let mut used = None;
        while round_trips < MAX_ROUND_TRIPS {
            let Some(command) = exam.next_command() else { break };
            round_trips += 1;
            let answer = match link.transceive(&command) {
                Ok(a) => a,
                Err(e) => {
                    failure = Some(Decision::Failed(format!("link: {e}")));
                    break;
                }
            };
            let ctx = GateContext { verifier: Verifier::new(trust, &self.deny), ledger: &self.store, now };
            match exam.on_response(&answer, &self.signer, &ctx) {
                Ok(GateEvent::Continue) => {}
                Ok(GateEvent::Decided(e)) => {
                    // Persisted before the certificate leaves.
                    self.store.record(&e, &self.signer.public_key(), now)?;
                    tracing::info!(instrument = %e.instrument_id, outcome = ?e.outcome, "decided");
                    if e.outcome == Outcome::Admitted {
                        used = Some(envelope(vec![Self::used_event(&mut self.store, &self.signer, &e, now)?]));
                    }
                    decided = Some(e);
                }
                Ok(GateEvent::Finished) => {
                    confirmed = true;
                    break;
                }
                Err(GateError::Channel(tessera_core::apdu::ReaderError::Status(sw))) if decided.is_none() => {
                    failure = Some(Decision::CardRefused(sw));
                    break;
                }
                Err(e) => {
                    failure = Some(Decision::Failed(e.to_string()));
                    break;
                }
            }
        }
        let decision = match (decided, failure) {
            (Some(e), _) => Decision::Decided(e),
            (None, Some(f)) => f,
            (None, None) => Decision::Failed("the exchange did not finish".into()),
        };
        Ok(TapReport { decision, confirmed, traffic: exam.traffic(), round_trips, used_event: used })
    }
}
