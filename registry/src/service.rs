//! The registry's rules, independent of HTTP: every call takes the
//! authenticated caller and decoded input, checks it, and changes the store
//! in one transaction or not at all.
//!
//! Reconciliation (DESIGN §3.3):
//!
//! ```text
//! upload item ─▶ decode (400) ─▶ Verifier (422) ─▶ known instrument? (404)
//!      ─▶ apply_chains (one transaction for the whole upload)
//!          Applied, tip = registered ─▶ RegistryAuthority::register ─▶ Registered(certificate)
//!          Applied, registered later  ─▶ Superseded
//!          Conflict ─▶ EquivocationProof; stored once; signer flagged; instrument denied
//!                      while active; notices to both holders and the uploader ─▶ Conflict(proof)
//!          Disconnected ─▶ Refused (409)
//! ```

use crate::error::ApiError;
use crate::lanes::{Job, Lanes};
use crate::payment::PaymentProvider;
use crate::store::{
    ChainOutcome, ChainUpdate, DoubleSaleRecord, EventRow, ExaminationReport, ExaminationRow, GiftRow, InstrumentRow,
    LinkRecord, ModificationRow, NoteExchange, NoteSpend, Notice, Party, ProofKind, ProofRecord, RegistryStore,
    SaleRefund, SeenRow,
};
use crate::wire;
use rand::rngs::OsRng;
use std::sync::{Arc, Mutex};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::instrument::{NoteAttributes, TicketAttributes};
use tessera_core::presentation::ExaminationBody;
use tessera_core::proof::UsedAfterTransferProof;
use tessera_core::trust::TrustEntry;
use tessera_core::verify::VerifiedPrefix;
use tessera_core::{
    Amount, Attributes, Clock, DenyList, Digest, Endorsement, EquivocationProof, ExchangeId, Instrument, InstrumentId,
    InstrumentState, Kind, LocalSigner, PublicKey, Role, Signed, Signer, Status, TrustList, VerifiedInstrument,
    Verifier, Wire,
};

/// Notes the registry issues expire after this long.
pub const NOTE_LIFETIME: u64 = 365 * 24 * 3600;
/// How long after an offer expires its seller has to get the delivery
/// registered (by reconciling the transfer certificate it sent); after
/// that, a buyer's claim that is still undelivered is refunded, and a
/// delivery bound to the offer is refused.
pub const SALE_DELIVERY_WINDOW: u64 = 7 * 24 * 3600;
/// Most items in one upload, notes in one request, holder keys in one sync.
pub const MAX_ITEMS: usize = 1000;

/// Simple counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Endorsements newly registered.
    pub endorsements_registered: std::sync::atomic::AtomicU64,
    /// Conflicts (double transfers) caught.
    pub conflicts: std::sync::atomic::AtomicU64,
    /// Instruments issued.
    pub issued: std::sync::atomic::AtomicU64,
}

/// The service provider.
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    authority: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    /// The issuer key acting as a holder: it endorses gifts on.
    holder_signer: LocalSigner,
    registry_key: PublicKey,
    issuer_key: PublicKey,
    clock: Arc<dyn Clock>,
    payments: Arc<dyn PaymentProvider>,
    trust: Mutex<Option<TrustList>>,
    /// Counters for `/metrics`.
    pub counters: Counters,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("registry_key", &self.registry_key)
            .field("backend", &self.store.backend_name())
            .finish_non_exhaustive()
    }
}

fn key_hex(s: &str, what: &str) -> Result<PublicKey, ApiError> {
    PublicKey::from_hex(s).map_err(|_| ApiError::bad_request("bad_key", format!("{what} must be 64 hex digits")))
}

fn instrument_b64(s: &str) -> Result<Instrument, ApiError> {
    let bytes = wire::unb64(s).ok_or_else(|| ApiError::bad_request("bad_base64", "an instrument is not base64"))?;
    Ok(Instrument::from_bytes(&bytes)?)
}

/// The ledger reference of a redemption: a digest of its notes' ids,
/// sorted, so a retried request (fresh nonce, same notes) finds it.
fn redemption_reference(ids: impl Iterator<Item = InstrumentId>) -> String {
    let mut ids: Vec<InstrumentId> = ids.collect();
    ids.sort();
    let mut bytes = b"redemption\0".to_vec();
    for id in &ids {
        bytes.extend_from_slice(id.as_bytes());
    }
    format!("redeem:{}", Digest::of(&bytes).to_hex())
}

fn check_count(n: usize, what: &str) -> Result<(), ApiError> {
    if n > MAX_ITEMS {
        return Err(ApiError::new(413, "too_many_items", format!("at most {MAX_ITEMS} {what} per request")));
    }
    Ok(())
}

/// The signer of each link: the holder before it.
fn link_records(instrument: &Instrument) -> Vec<LinkRecord> {
    let mut signer = match &instrument.registered {
        Some(cert) => cert.body.holder,
        None => instrument.genesis.body.holder,
    };
    instrument
        .links
        .iter()
        .map(|l| {
            let rec = LinkRecord::of(l, signer);
            signer = l.body.new_holder;
            rec
        })
        .collect()
}

/// Chains per store transaction in [`Registry::ingest`].
pub const INGEST_BATCH: usize = 1000;

/// What is stored of each chain of a batch, and the row it was read from
/// ([`Registry::stored_prefixes`]).
type StoredOf = (Vec<VerifiedPrefix>, Vec<Option<SeenRow>>);

/// Chains verified and ready for their store transaction.
struct VerifiedChains {
    now: u64,
    /// Per chain: its result when it was refused before the store.
    results: Vec<Option<Result<Registered, ApiError>>>,
    updates: Vec<ChainUpdate>,
    /// Index and verifier answer of each chain in `updates`, in order.
    pending: Vec<(usize, VerifiedInstrument)>,
}

/// What registering one verified chain gave.
#[allow(clippy::large_enum_variant)] // one per uploaded item, consumed at once
enum Registered {
    /// The chain's tip is the registered holder; the row after applying it.
    Current(Instrument, VerifiedInstrument, InstrumentRow),
    /// The registered list has a later holder.
    Superseded(InstrumentRow),
    /// Double transfer: the proof.
    Conflict(EquivocationProof),
}

impl Registry {
    /// A registry over `store`, signing with `registry_signer` (trust and
    /// deny lists, certificates) and `issuer_signer` (instruments it issues).
    pub fn new(
        store: Arc<dyn RegistryStore>,
        registry_signer: LocalSigner,
        issuer_signer: LocalSigner,
        clock: Arc<dyn Clock>,
        payments: Arc<dyn PaymentProvider>,
    ) -> Self {
        let registry_key = registry_signer.public_key();
        let issuer_key = issuer_signer.public_key();
        let holder_signer = LocalSigner::new(tessera_core::SecretKey::from_bytes(&issuer_signer.secret().to_bytes()));
        Self {
            holder_signer,
            store,
            authority: RegistryAuthority::new(registry_signer),
            issuer: Issuer::new(issuer_signer),
            registry_key,
            issuer_key,
            clock,
            payments,
            trust: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// The key wallets pin.
    pub fn registry_key(&self) -> PublicKey {
        self.registry_key
    }
    /// The key the registry issues with and receives payments at.
    pub fn issuer_key(&self) -> PublicKey {
        self.issuer_key
    }
    /// The store.
    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.store
    }
    /// The current time.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<wire::InfoResponse, ApiError> {
        Ok(wire::InfoResponse {
            registry_key: self.registry_key.to_hex(),
            issuer_key: self.issuer_key.to_hex(),
            trust_version: self.store.trust_version()? + 1,
            backend: self.store.backend_name().into(),
        })
    }

    /// The current trust list, rebuilt when another process (or this one)
    /// changed the parties. Version = stored version + 1 (the registry's
    /// own issuer entry is version 1).
    pub fn trust_list(&self) -> Result<TrustList, ApiError> {
        let version = self.store.trust_version()? + 1;
        let mut cached = self.trust.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(list) = cached.as_ref()
            && list.version() == version
        {
            return Ok(list.clone());
        }
        let mut entries = vec![TrustEntry {
            key: self.issuer_key,
            role: Role::Issuer,
            name: "service provider".into(),
            not_after: u64::MAX,
        }];
        for p in self.store.parties()? {
            if p.key != self.issuer_key {
                entries.push(TrustEntry { key: p.key, role: p.role, name: p.name, not_after: p.not_after });
            }
        }
        let signed = self
            .authority
            .trust_list(version, entries, self.now())
            .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))?;
        let list = TrustList::verify(signed, &self.registry_key)
            .map_err(|e| ApiError::new(500, "trust_list", e.to_string()))?;
        *cached = Some(list.clone());
        Ok(list)
    }

    /// The whole deny list, signed.
    pub fn deny_list(&self) -> Result<Signed<DenyList>, ApiError> {
        let (version, entries) = self.store.deny_changes_since(0)?;
        let list = DenyList { version, instruments: entries.into_iter().map(|(id, _)| id).collect() };
        self.authority.deny_list(list).map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))
    }

    fn role_of(&self, key: &PublicKey) -> Result<Option<Role>, ApiError> {
        Ok(self.trust_list()?.role_of(key))
    }

    /// `POST /admin/parties`: only the registry key may certify keys.
    pub fn put_party(&self, caller: &PublicKey, req: wire::PartyRequest) -> Result<wire::PartyResponse, ApiError> {
        if *caller != self.registry_key {
            return Err(ApiError::forbidden("not_operator", "only the registry key may certify keys"));
        }
        let role = match req.role.as_str() {
            "issuer" => Role::Issuer,
            "gate" => Role::Gate,
            "merchant" => Role::Merchant,
            _ => return Err(ApiError::bad_request("bad_role", "role must be issuer, gate or merchant")),
        };
        if req.name.is_empty() || req.name.len() > 200 {
            return Err(ApiError::bad_request("bad_name", "a name is 1-200 bytes"));
        }
        let party = Party { key: key_hex(&req.key, "key")?, role, name: req.name, not_after: req.not_after };
        let v = self.store.put_party(&party)?;
        tracing::info!(key = %party.key.short(), role = role.as_str(), "party certified");
        Ok(wire::PartyResponse { trust_version: v + 1 })
    }

    /// `POST /events`: a certified issuer (or the registry) creates an event.
    pub fn create_event(&self, caller: &PublicKey, e: wire::EventJson) -> Result<(), ApiError> {
        if *caller != self.registry_key && self.role_of(caller)? != Some(Role::Issuer) {
            return Err(ApiError::forbidden("not_issuer", "only a certified issuer may create events"));
        }
        if e.event_id.is_empty() || e.event_id.len() > 100 || e.title.len() > 200 {
            return Err(ApiError::bad_request("bad_event", "event id 1-100 bytes, title up to 200"));
        }
        if e.zones.is_empty()
            || e.zones.len() > 100
            || e.zones.iter().any(|z| z.is_empty() || z.len() > 50 || z.contains('\n'))
        {
            return Err(ApiError::bad_request("bad_event", "1-100 zones of 1-50 bytes"));
        }
        if e.valid_until < e.valid_from || e.uses == 0 || e.price.currency.len() != 3 {
            return Err(ApiError::bad_request("bad_event", "validity, uses or currency is inconsistent"));
        }
        let row = EventRow {
            event_id: e.event_id.clone(),
            organiser: *caller,
            title: e.title,
            zones: e.zones,
            valid_from: e.valid_from,
            valid_until: e.valid_until,
            price: Amount { currency: e.price.currency, minor: e.price.minor },
            transferable: e.transferable,
            uses: e.uses,
            created_at: self.now(),
        };
        if !self.store.put_event(&row)? {
            return Err(ApiError::conflict("event_exists", format!("event {} exists", e.event_id)));
        }
        Ok(())
    }

    /// `GET /events`.
    pub fn events(&self) -> Result<wire::EventsResponse, ApiError> {
        let events = self
            .store
            .events()?
            .into_iter()
            .map(|e| wire::EventJson {
                event_id: e.event_id,
                title: e.title,
                zones: e.zones,
                valid_from: e.valid_from,
                valid_until: e.valid_until,
                price: wire::AmountJson { currency: e.price.currency, minor: e.price.minor },
                transferable: e.transferable,
                uses: e.uses,
            })
            .collect();
        Ok(wire::EventsResponse { events })
    }

    fn event(&self, event_id: &str) -> Result<EventRow, ApiError> {
        self.store.event(event_id)?.ok_or_else(|| ApiError::not_found("unknown_event", format!("no event {event_id}")))
    }

    fn ticket_for(
        &self,
        event: &EventRow,
        zone: &str,
        seat: Option<String>,
        holder: PublicKey,
    ) -> Result<Instrument, ApiError> {
        if !event.zones.iter().any(|z| z == zone) {
            return Err(ApiError::bad_request("unknown_zone", format!("event {} has no zone {zone}", event.event_id)));
        }
        if seat.as_ref().is_some_and(|s| s.len() > 50) {
            return Err(ApiError::bad_request("bad_seat", "a seat is up to 50 bytes"));
        }
        let attrs = Attributes::Ticket(TicketAttributes {
            event_id: event.event_id.clone(),
            title: event.title.clone(),
            zone: zone.to_owned(),
            seat,
            guidance: None,
            valid_from: event.valid_from,
            valid_until: event.valid_until,
            transferable: event.transferable,
            uses: event.uses,
            face_price: Some(event.price.clone()),
        });
        let inst = self
            .issuer
            .issue(attrs, holder, self.now(), &mut OsRng)
            .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))?;
        self.counters.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(inst)
    }

    /// `POST /issue/ticket`: the organiser has a ticket issued (no payment).
    pub fn issue_ticket(
        &self,
        caller: &PublicKey,
        req: wire::IssueTicketRequest,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        let event = self.event(&req.event_id)?;
        if *caller != event.organiser && *caller != self.registry_key {
            return Err(ApiError::forbidden("wrong_issuer", "only the event's organiser may issue its tickets"));
        }
        let holder = key_hex(&req.holder, "holder")?;
        let ticket = self.ticket_for(&event, &req.zone, req.seat, holder)?;
        self.store.insert_instrument(&InstrumentRow::issued(&ticket, None, self.now()))?;
        Ok(wire::InstrumentsResponse { instruments: vec![wire::b64(&ticket.to_bytes())], balance: None })
    }

    /// `POST /instruments`: an issuer registers an instrument it issued.
    pub fn register_instrument(
        &self,
        caller: &PublicKey,
        req: wire::RegisterInstrumentRequest,
    ) -> Result<(), ApiError> {
        let inst = instrument_b64(&req.instrument)?;
        if inst.genesis.body.issuer != *caller {
            return Err(ApiError::forbidden("wrong_issuer", "an issuer may register only instruments it issued"));
        }
        if inst.registered.is_some() || !inst.links.is_empty() {
            return Err(ApiError::bad_request("not_fresh", "register the instrument as issued, without links"));
        }
        let trust = self.trust_list()?;
        let empty = DenyList::empty();
        Verifier::new(&trust, &empty).verify(&inst, self.now())?;
        if !self.store.insert_instrument(&InstrumentRow::issued(&inst, None, self.now()))? {
            return Err(ApiError::conflict("already_registered", format!("{} is registered", inst.id())));
        }
        Ok(())
    }

    /// `GET /instruments/{id}`.
    pub fn instrument_status(&self, id: &str) -> Result<wire::InstrumentStatus, ApiError> {
        let id = InstrumentId::from_hex(id)
            .map_err(|_| ApiError::bad_request("bad_id", "an instrument id is 32 hex digits"))?;
        let row = self
            .store
            .instrument(&id)?
            .ok_or_else(|| ApiError::not_found("unknown_instrument", format!("no instrument {id}")))?;
        let former = self.store.former_holders(&id)?;
        let denied = self.store.deny_changes_since(0)?.1.iter().any(|(d, _)| *d == id);
        let proof_json = |kind: &str, r: ProofRecord| wire::ProofJson {
            kind: kind.into(),
            sequence: r.sequence,
            signer: r.signer.to_hex(),
            proof: wire::b64(&r.proof),
        };
        let mut proofs: Vec<wire::ProofJson> =
            self.store.equivocations(&id)?.into_iter().map(|r| proof_json("double-transfer", r)).collect();
        proofs.extend(self.store.used_after_transfers(&id)?.into_iter().map(|r| proof_json("used-after-transfer", r)));
        Ok(wire::InstrumentStatus {
            instrument_id: id.to_hex(),
            kind: row.kind.as_str().into(),
            holder: row.holder.to_hex(),
            sequence: row.sequence,
            status: row.status.as_str().into(),
            uses_left: row.uses_left,
            former_holders: former
                .into_iter()
                .map(|f| wire::FormerHolderJson {
                    holder: f.holder.to_hex(),
                    from_sequence: f.from_sequence,
                    until_sequence: f.until_sequence,
                    previous_from: f.previous_from,
                })
                .collect(),
            denied,
            proofs,
        })
    }

    /// Verifies chains and registers them in one transaction. Each result
    /// is per chain; decoding was done by the caller.
    fn register_chains(
        &self,
        caller: &PublicKey,
        chains: &[Instrument],
    ) -> Result<Vec<Result<Registered, ApiError>>, ApiError> {
        let prepared = self.verify_chains(chains)?;
        self.store_chains(caller, chains, prepared)
    }

    /// The first half of [`Registry::register_chains`]: verification with
    /// the core verifier, from what the registry stored of each instrument
    /// (its signatures are not checked again), and the checks made before
    /// the store transaction. Changes nothing.
    fn verify_chains(&self, chains: &[Instrument]) -> Result<VerifiedChains, ApiError> {
        let stored = self.stored_prefixes(chains)?;
        self.verify_against(chains, stored)
    }

    /// [`Registry::verify_chains`] from what was read of the chains before
    /// ([`Registry::stored_prefixes`]). The read may be older than the
    /// store: a stored part it lacks is only verified again, and a row
    /// written since is decided again under its lock (`apply_chains`).
    fn verify_against(&self, chains: &[Instrument], stored: StoredOf) -> Result<VerifiedChains, ApiError> {
        let now = self.now();
        let trust = self.trust_list()?;
        // The registry judges denial and status from its own list, so the
        // chains themselves are checked without the deny list.
        let empty = DenyList::empty();
        let verifier = Verifier::new(&trust, &empty);
        let (known, mut seen) = stored;
        let mut results: Vec<Option<Result<Registered, ApiError>>> = Vec::with_capacity(chains.len());
        let mut updates = Vec::new();
        let mut pending = Vec::new();
        for (i, verdict) in verifier.verify_batch_from(chains, &known, now).into_iter().enumerate() {
            match verdict {
                Err(e) => results.push(Some(Err(e.into()))),
                Ok(v) => {
                    results.push(None);
                    let seen = seen.get_mut(i).and_then(Option::take);
                    updates.push(ChainUpdate { instrument: v.id, links: link_records(&chains[i]), seen });
                    pending.push((i, v));
                }
            }
        }
        Ok(VerifiedChains { now, results, updates, pending })
    }

    /// What the registry stored of each uploaded chain, as parts the
    /// verifier need not check again. Safe because everything stored was
    /// verified before it was stored, or signed by the registry itself
    /// (`register_instrument` verifies a genesis, the registry signs the
    /// ones it issues; `apply_chains` is only given verified links or the
    /// registry's own), stored parts never change, and a part counts only
    /// when the upload carries it byte for byte (the genesis compared as
    /// bytes, a link by its digest, which covers body and signature, and
    /// under the same signing key). See `docs/registry.md`. Beside each, the
    /// row the read saw, if the store returned it ([`ChainUpdate::seen`]).
    fn stored_prefixes(&self, chains: &[Instrument]) -> Result<StoredOf, ApiError> {
        let wanted: Vec<(InstrumentId, u32, u32)> = chains
            .iter()
            .map(|c| {
                // Bounded by the links carried, never by the numbers in them.
                let first = c.links.first().map_or(1, |l| l.body.sequence);
                let carried = u32::try_from(c.links.len().min(tessera_core::verify::MAX_LINKS)).unwrap_or(0);
                (c.id(), first, first.saturating_add(carried).saturating_sub(1))
            })
            .collect();
        let stored = self.store.stored_prefixes(&wanted)?;
        Ok(chains
            .iter()
            .zip(stored)
            .map(|(chain, stored)| match stored {
                None => (VerifiedPrefix::NONE, None),
                Some(p) => (
                    VerifiedPrefix {
                        genesis: (p.genesis == chain.genesis.to_bytes()).then(|| chain.genesis.digest()),
                        links: p.links,
                    },
                    p.seen,
                ),
            })
            .unzip())
    }

    /// The second half of [`Registry::register_chains`]: one store
    /// transaction for the verified chains, then what each outcome means.
    fn store_chains(
        &self,
        caller: &PublicKey,
        chains: &[Instrument],
        verified: VerifiedChains,
    ) -> Result<Vec<Result<Registered, ApiError>>, ApiError> {
        let VerifiedChains { now, mut results, updates, pending } = verified;
        let outcomes = if updates.is_empty() { Vec::new() } else { self.store.apply_chains(&updates, now)? };
        let mut used = Vec::new();
        for ((i, verified), outcome) in pending.into_iter().zip(outcomes) {
            let inst = &chains[i];
            let r = match outcome {
                ChainOutcome::Applied { added, row } => {
                    self.counters
                        .endorsements_registered
                        .fetch_add(u64::from(added), std::sync::atomic::Ordering::Relaxed);
                    // Only an instrument a gate has used can have been used
                    // by a stale copy: ingest of unused tickets reads nothing more.
                    if added > 0 && (row.uses_left < inst.attributes().uses() || row.status != Status::Active) {
                        used.push(inst);
                    }
                    if row.sequence == verified.sequence && row.holder == verified.holder {
                        Ok(Registered::Current(inst.clone(), verified, row))
                    } else {
                        Ok(Registered::Superseded(row))
                    }
                }
                ChainOutcome::Conflict { registered, uploaded, row } => {
                    self.conflict(caller, &registered, &uploaded, &row, now)
                }
                ChainOutcome::Disconnected { sequence } => Err(ApiError::conflict(
                    "disconnected",
                    format!("link {sequence} of {} does not follow the registered chain", verified.id),
                )),
                ChainOutcome::Unknown => {
                    Err(ApiError::not_found("unknown_instrument", format!("{} is not registered", verified.id)))
                }
                // Decided inside the store transaction, under the row lock a
                // refund takes too: a refund and a delivery never both stand.
                ChainOutcome::SaleRefunded { sequence, offer } => Err(ApiError::conflict(
                    "sale_refunded",
                    format!(
                        "link {sequence} of {}: the sale of offer {} was refunded to its buyer",
                        verified.id,
                        offer.to_hex()
                    ),
                )),
            };
            results[i] = Some(r);
        }
        self.stale_before_links(&used, now)?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ApiError::new(500, "internal", "no outcome"))))
            .collect())
    }

    fn conflict(
        &self,
        caller: &PublicKey,
        registered: &LinkRecord,
        uploaded: &LinkRecord,
        row: &InstrumentRow,
        now: u64,
    ) -> Result<Registered, ApiError> {
        let first = Signed::<Endorsement>::from_bytes(&registered.bytes)
            .map_err(|e| ApiError::new(500, "corrupt", e.to_string()))?;
        let second = Signed::<Endorsement>::from_bytes(&uploaded.bytes)?;
        let proof = EquivocationProof::new(registered.signer, first, second)
            .map_err(|e| ApiError::new(500, "proof", e.to_string()))?;
        let record = ProofRecord {
            instrument: row.id,
            sequence: registered.sequence,
            signer: registered.signer,
            proof: proof.to_bytes(),
        };
        let recipients = [row.holder, uploaded.new_holder, *caller];
        if self.act_on_proof(ProofKind::DoubleTransfer, &record, &recipients, row, row.uses_left, now)? {
            self.counters.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(instrument = %row.id, sequence = registered.sequence, signer = %registered.signer.short(), "double transfer caught");
        }
        Ok(Registered::Conflict(proof))
    }

    /// What the registry does with a proof that a holder key cheated on
    /// the instrument of `row` — one path for every kind of proof: stores
    /// it once (flagging its signer), leaves it as a notice to
    /// `recipients`, and while the instrument is live denies it everywhere
    /// (the cheater's copy still verifies offline; gates check chains) and
    /// replaces it, with `uses` uses, for its registered holder — unless
    /// that holder is the cheater itself. Returns whether the proof was new.
    fn act_on_proof(
        &self,
        kind: ProofKind,
        record: &ProofRecord,
        recipients: &[PublicKey],
        row: &InstrumentRow,
        uses: u16,
        now: u64,
    ) -> Result<bool, ApiError> {
        let mut recipients = recipients.to_vec();
        recipients.sort();
        recipients.dedup();
        let notice_kind = match kind {
            ProofKind::DoubleTransfer => "conflict",
            ProofKind::UsedAfterTransfer => "used-after-transfer",
        };
        let notices: Vec<Notice> = recipients
            .into_iter()
            .map(|r| Notice {
                id: 0,
                recipient: r,
                kind: notice_kind.into(),
                instrument: Some(row.id),
                payload: record.proof.clone(),
                created_at: now,
            })
            .collect();
        let deny = row.status == Status::Active;
        let out = match kind {
            ProofKind::DoubleTransfer => self.store.record_equivocation(record, deny, &notices, now)?,
            ProofKind::UsedAfterTransfer => self.store.record_used_after_transfer(record, deny, &notices, now)?,
        };
        if deny && row.holder != record.signer {
            self.replace_for_registered_holder(row, uses, now)?;
        }
        Ok(out.new)
    }

    /// Used after transfer, found from a bag (`docs/registry.md`, *Gates*):
    /// each admitted entry whose presented tip the registered chain has
    /// already moved on from, by a link the presenting key signed, gives a
    /// [`UsedAfterTransferProof`]. Runs again, changing nothing, when the
    /// same bag is uploaded again (and so completes after a crash between
    /// the bag's settlement and this).
    fn stale_in_bag(
        &self,
        bag: &Signed<tessera_core::presentation::BagBody>,
        now: u64,
    ) -> Result<Vec<UsedAfterTransferProof>, ApiError> {
        let admitted: Vec<_> = bag.admissions().collect();
        // One read for the whole bag: is a link registered right after each
        // presented tip? Usually none is.
        let wanted: Vec<(InstrumentId, u32, u32)> = admitted
            .iter()
            .map(|e| {
                let next = e.answer.body.sequence.saturating_add(1);
                (e.answer.body.instrument_id, next, next)
            })
            .collect();
        let next_links = if wanted.is_empty() { Vec::new() } else { self.store.stored_prefixes(&wanted)? };
        let mut proofs = Vec::new();
        for (entry, stored) in admitted.into_iter().zip(next_links) {
            let p = &entry.answer.body;
            let Some(next) = p.sequence.checked_add(1) else { continue };
            if !stored.is_some_and(|s| s.links.iter().any(|l| l.sequence == next)) {
                continue;
            }
            let Some(link) = self.store.links(&p.instrument_id)?.into_iter().find(|l| l.sequence == next) else {
                continue;
            };
            let endorsement = Signed::<Endorsement>::from_bytes(&link.bytes)
                .map_err(|e| ApiError::new(500, "corrupt", e.to_string()))?;
            if let Ok(proof) = UsedAfterTransferProof::new(link.signer, entry.answer.clone(), endorsement) {
                proofs.push(proof);
            }
        }
        self.act_on_stale(&proofs, now)?;
        Ok(proofs)
    }

    /// Used after transfer, found when links are registered after the bag
    /// (the buyer reconciling later): the chains just applied that carry
    /// new links and whose registered uses or status show an admission are
    /// checked against the answers of the admissions settled before.
    fn stale_before_links(&self, applied: &[&Instrument], now: u64) -> Result<(), ApiError> {
        if applied.is_empty() {
            return Ok(());
        }
        let ids: Vec<InstrumentId> = applied.iter().map(|c| c.id()).collect();
        let mut proofs = Vec::new();
        for (id, bytes) in self.store.admitted_answers(&ids)? {
            let answer = decode_answer(&bytes)?;
            // The chain passed the verifier, so `find` may read its links'
            // signers off it.
            if let Some(chain) = applied.iter().find(|c| c.id() == id)
                && let Some(proof) = UsedAfterTransferProof::find(&answer, chain)
            {
                proofs.push(proof);
            }
        }
        self.act_on_stale(&proofs, now)
    }

    /// Acts on used-after-transfer proofs — built and checked by the core,
    /// the same verifier wallets and gates use; a presentation dated before
    /// the transfer, or within the margin, gives none — as on a double
    /// transfer ([`Registry::act_on_proof`]): stored once, the signer
    /// flagged, the instrument denied, and its registered holder (whom the
    /// stale copy's admission used up) given a replacement with the uses
    /// the stale admissions took, as their signed answers state them.
    fn act_on_stale(&self, proofs: &[UsedAfterTransferProof], now: u64) -> Result<(), ApiError> {
        for proof in proofs {
            let id = proof.instrument_id();
            let row = self.store.instrument(&id)?.ok_or_else(|| ApiError::new(500, "corrupt", "proof without row"))?;
            let genesis = Signed::<tessera_core::Genesis>::from_bytes(&row.genesis)
                .map_err(|e| ApiError::new(500, "corrupt", e.to_string()))?;
            let taken = proofs
                .iter()
                .filter(|p| p.instrument_id() == id)
                .map(|p| p.presentation.body.change.uses_before.saturating_sub(p.presentation.body.change.uses_after))
                .fold(0u16, u16::saturating_add);
            let uses = row.uses_left.saturating_add(taken).min(genesis.body.attributes.uses());
            let record = ProofRecord {
                instrument: id,
                sequence: proof.sequence(),
                signer: proof.signer,
                proof: proof.to_bytes(),
            };
            let mut recipients = vec![row.holder, proof.signer];
            recipients.extend(row.account);
            if self.act_on_proof(ProofKind::UsedAfterTransfer, &record, &recipients, &row, uses, now)? {
                tracing::warn!(instrument = %id, sequence = proof.sequence(), signer = %proof.signer.short(), "stale copy used after transfer caught");
            }
        }
        Ok(())
    }

    /// The deny list stops the losing branch, and with it the instrument
    /// id: the holder of the first-registered branch did nothing wrong, so
    /// it gets a replacement — the same attributes with `uses` uses,
    /// issued under the registry's issuer key to its registered holder key
    /// — delivered as a `replacement` notice at its next sync. The old row
    /// becomes `modified`; a note is spent and reissued at the same value,
    /// so the money supply does not change. Once per instrument (the
    /// ledger reference `replace:<id>`): a repeated conflict upload, or a
    /// retry after a crash between the two transactions, finds it done.
    fn replace_for_registered_holder(&self, row: &InstrumentRow, uses: u16, now: u64) -> Result<(), ApiError> {
        let corrupt = |e: String| ApiError::new(500, "corrupt", e);
        let genesis = Signed::<tessera_core::Genesis>::from_bytes(&row.genesis).map_err(|e| corrupt(e.to_string()))?;
        let mut attributes = genesis.body.attributes.clone();
        let currency = match &mut attributes {
            Attributes::Ticket(t) => {
                t.uses = uses;
                t.face_price.as_ref().map_or_else(|| "XXX".to_owned(), |p| p.currency.clone())
            }
            Attributes::Coupon(c) => {
                c.uses = uses;
                "XXX".to_owned()
            }
            Attributes::Note(n) => n.amount.currency.clone(),
        };
        if uses == 0 {
            return Ok(());
        }
        let fresh = self
            .issuer
            .issue(attributes, row.holder, now, &mut OsRng)
            .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))?;
        let old = NoteSpend { id: row.id, holder: row.holder };
        let (spend, retire) = if row.value.is_some() { (vec![old], vec![]) } else { (vec![], vec![old]) };
        let account = row.account.unwrap_or(row.holder);
        let mut recipients = vec![row.holder];
        recipients.extend(row.account);
        let notices: Vec<Notice> = recipients
            .into_iter()
            .map(|recipient| Notice {
                id: 0,
                recipient,
                kind: "replacement".into(),
                instrument: Some(row.id),
                payload: fresh.to_bytes(),
                created_at: now,
            })
            .collect();
        let exchange = NoteExchange {
            account,
            currency,
            spend,
            retire,
            issue: vec![InstrumentRow::issued(&fresh, row.account, now)],
            payout: 0,
            paid_in: 0,
            reference: format!("replace:{}", row.id),
            notices: vec![],
        };
        match self.store.replace_instrument(&exchange, &row.id, &notices, now) {
            Ok(()) => {
                tracing::info!(old = %row.id, new = %fresh.id(), holder = %row.holder.short(), "replacement issued");
                self.counters.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Err(crate::store::StoreError::DuplicateReference(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn certify(
        &self,
        inst: &Instrument,
        verified: &VerifiedInstrument,
        row: &InstrumentRow,
    ) -> Result<Instrument, ApiError> {
        let state = InstrumentState { uses_left: row.uses_left, status: row.status };
        self.authority
            .register(inst, verified, state, self.now())
            .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))
    }

    /// Registers many uploaded chains at once (the ingest path the
    /// benchmark measures; `/reconcile` runs the same two halves for its
    /// one batch). Batches of [`INGEST_BATCH`] chains go through a
    /// pipeline: while batches are in their store transactions on the
    /// store's [`writers`](RegistryStore::writers) (one thread each), the
    /// next is verified on every core, with at most one verified batch
    /// waiting per writer. Each batch is its own transaction; two batches
    /// that share an instrument are stored one after the other, in upload
    /// order (`registry/src/lanes.rs`). The first store error stops the ingest:
    /// batches stored before it, or at the same time, stay registered.
    /// Returns how many ended registered to their uploaded tip.
    pub fn ingest(&self, caller: &PublicKey, chains: &[Instrument]) -> Result<usize, ApiError> {
        type Batch<'a> = (&'a [Instrument], VerifiedChains);
        fn current(outcomes: &[Result<Registered, ApiError>]) -> usize {
            outcomes.iter().filter(|r| matches!(r, Ok(Registered::Current(..)))).count()
        }
        if chains.len() <= INGEST_BATCH {
            return Ok(current(&self.register_chains(caller, chains)?));
        }
        let writers = self.store.writers().clamp(1, 8);
        let (to_store, verified) = std::sync::mpsc::sync_channel::<Job<Batch<'_>>>(writers);
        let lanes = &Lanes::new(verified);
        std::thread::scope(|scope| {
            let storing: Vec<_> = (0..writers)
                .map(|_| {
                    scope.spawn(move || -> Result<usize, ApiError> {
                        let mut registered = 0;
                        while let Some((_slot, (batch, v))) = lanes.take() {
                            match self.store_chains(caller, batch, v) {
                                Ok(outcomes) => registered += current(&outcomes),
                                Err(e) => {
                                    lanes.close();
                                    return Err(e);
                                }
                            }
                        }
                        Ok(registered)
                    })
                })
                .collect();
            // What is stored of the next batch is read on a thread of its
            // own while this one is verified, so verification never waits
            // on the database. The read may come before the batches ahead
            // of it are stored, as it already could when they were still
            // queued for the writers (see `verify_against`).
            let (to_verify, read) = std::sync::mpsc::sync_channel::<(&[Instrument], Result<StoredOf, ApiError>)>(1);
            scope.spawn(move || {
                for batch in chains.chunks(INGEST_BATCH) {
                    let stored = self.stored_prefixes(batch);
                    let failed = stored.is_err();
                    if to_verify.send((batch, stored)).is_err() || failed {
                        break;
                    }
                }
            });
            let mut failed = None;
            // Ends when the reader is done or failed; breaking out of it
            // drops the receiver, which stops the reader.
            for (batch, stored) in read {
                match stored.and_then(|stored| self.verify_against(batch, stored)) {
                    Ok(v) => {
                        let keys = v.updates.iter().map(|u| u.instrument).collect();
                        // A closed queue: a writer stopped on an error,
                        // which its join returns.
                        if to_store.send(Job { keys, work: (batch, v) }).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            drop(to_store);
            let mut registered = 0;
            for writer in storing {
                match writer.join() {
                    Ok(Ok(n)) => registered += n,
                    Ok(Err(e)) => {
                        failed.get_or_insert(e);
                    }
                    Err(_) => {
                        failed.get_or_insert(ApiError::new(500, "internal", "storage thread panicked"));
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(registered),
            }
        })
    }

    /// `POST /reconcile`.
    pub fn reconcile(
        &self,
        caller: &PublicKey,
        req: wire::ReconcileRequest,
    ) -> Result<wire::ReconcileResponse, ApiError> {
        use tessera_core::transfer::evidence::{DoubleSaleProof, SaleClaim};
        check_count(req.items.len(), "items")?;
        // Decode everything first: a malformed item refuses the upload.
        let mut chains = Vec::new();
        let mut claims = Vec::new();
        let mut certificates = Vec::new();
        for item in &req.items {
            match item {
                wire::UploadItemJson::Chain { instrument } => chains.push(instrument_b64(instrument)?),
                wire::UploadItemJson::Sale { claim, double_sale } => {
                    let bytes = wire::unb64(claim)
                        .ok_or_else(|| ApiError::bad_request("bad_base64", "a claim is not base64"))?;
                    let proof = match double_sale {
                        Some(p) => {
                            let bytes = wire::unb64(p)
                                .ok_or_else(|| ApiError::bad_request("bad_base64", "a proof is not base64"))?;
                            Some(DoubleSaleProof::from_bytes(&bytes)?)
                        }
                        None => None,
                    };
                    claims.push((SaleClaim::from_bytes(&bytes)?, proof));
                }
                wire::UploadItemJson::Examination { certificate } => {
                    let bytes = wire::unb64(certificate)
                        .ok_or_else(|| ApiError::bad_request("bad_base64", "a certificate is not base64"))?;
                    certificates.push(Signed::<ExaminationBody>::from_bytes(&bytes)?);
                }
            }
        }
        let outcomes = self.register_chains(caller, &chains)?;
        let mut chain_results = Vec::with_capacity(outcomes.len());
        let mut all_refused = !req.items.is_empty();
        let mut first_error = None;
        for (inst, outcome) in chains.iter().zip(outcomes) {
            let r = match outcome {
                Ok(Registered::Current(inst, verified, row)) => {
                    all_refused = false;
                    wire::ItemResultJson::Registered {
                        instrument: wire::b64(&self.certify(&inst, &verified, &row)?.to_bytes()),
                    }
                }
                Ok(Registered::Superseded(row)) => {
                    all_refused = false;
                    wire::ItemResultJson::Superseded {
                        instrument_id: row.id.to_hex(),
                        sequence: row.sequence,
                        holder: row.holder.to_hex(),
                    }
                }
                Ok(Registered::Conflict(proof)) => {
                    all_refused = false;
                    wire::ItemResultJson::Conflict {
                        instrument_id: proof.instrument_id().to_hex(),
                        proof: wire::b64(&proof.to_bytes()),
                    }
                }
                Err(e) => {
                    let item = wire::ItemResultJson::Refused {
                        instrument_id: Some(inst.id().to_hex()),
                        error: e.code.into(),
                        message: e.message.clone(),
                    };
                    first_error.get_or_insert(e);
                    item
                }
            };
            chain_results.push(r);
        }
        let mut claim_results = Vec::with_capacity(claims.len());
        for (claim, proof) in &claims {
            match self.judge_sale(caller, claim, proof.as_ref()) {
                Ok(r) => {
                    all_refused = false;
                    claim_results.push(r);
                }
                Err(e) => {
                    claim_results.push(wire::ItemResultJson::Refused {
                        instrument_id: None,
                        error: e.code.into(),
                        message: e.message.clone(),
                    });
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut examination_results = Vec::with_capacity(certificates.len());
        for certificate in &certificates {
            match self.record_examination(caller, certificate) {
                Ok(r) => {
                    all_refused = false;
                    examination_results.push(r);
                }
                Err(e) => {
                    examination_results.push(wire::ItemResultJson::Refused {
                        instrument_id: Some(certificate.body.instrument_id.to_hex()),
                        error: e.code.into(),
                        message: e.message.clone(),
                    });
                    first_error.get_or_insert(e);
                }
            }
        }
        // An upload where nothing could be used is refused as a whole, so a
        // client sees a 4xx; otherwise each item carries its own answer.
        if all_refused && let Some(e) = first_error {
            return Err(e);
        }
        // Answers follow the upload order.
        let (mut chain_results, mut claim_results) = (chain_results.into_iter(), claim_results.into_iter());
        let mut examination_results = examination_results.into_iter();
        let results = req
            .items
            .iter()
            .filter_map(|item| match item {
                wire::UploadItemJson::Chain { .. } => chain_results.next(),
                wire::UploadItemJson::Sale { .. } => claim_results.next(),
                wire::UploadItemJson::Examination { .. } => examination_results.next(),
            })
            .collect();
        Ok(wire::ReconcileResponse { results })
    }

    /// Records a gate's examination certificate a wallet uploaded: signed
    /// by a key certified as a gate, for a registered instrument. The use
    /// it certifies (uses left, status) is applied to the registered list
    /// once; uploading it again changes nothing.
    fn record_examination(
        &self,
        caller: &PublicKey,
        certificate: &Signed<ExaminationBody>,
    ) -> Result<wire::ItemResultJson, ApiError> {
        use tessera_core::presentation::Outcome;
        let c = &certificate.body;
        if !self.trust_list()?.certifies(&c.gate, Role::Gate, self.now()) {
            return Err(ApiError::forbidden("not_gate", "the certificate's key is not certified as a gate"));
        }
        certificate
            .verify(&c.gate)
            .map_err(|_| ApiError::unprocessable("bad_signature", "the gate's signature does not verify"))?;
        let report = ExaminationReport {
            record: ExaminationRow {
                certificate: certificate.digest(),
                instrument: c.instrument_id,
                admitted: c.outcome == Outcome::Admitted,
                uses_left: c.uses_left,
                status: c.status,
                examined_at: c.time,
                answer: None,
            },
            gate: c.gate,
            counter: c.counter,
            reported_by: *caller,
        };
        let (recorded, row) = self.store.report_examination(&report, self.now())?;
        if recorded {
            tracing::info!(instrument = %row.id, gate = %c.gate.short(), counter = c.counter, "examination reported");
        }
        Ok(wire::ItemResultJson::Examination {
            instrument_id: row.id.to_hex(),
            recorded,
            uses_left: row.uses_left,
            status: row.status.as_str().into(),
        })
    }

    /// The registry as optimistic arbiter of a sale (`docs/transfer.md`):
    /// the payment chains are registered; if every item's delivery link is
    /// registered the payment stands; otherwise the payment notes are
    /// replaced by fresh notes for the keys that paid, once per offer, when
    /// an item's next link went to anyone else (the first registered
    /// stands), when a valid [`DoubleSaleProof`] about the offer comes with
    /// the claim (it is stored and the seller's holder key flagged), or
    /// when [`SALE_DELIVERY_WINDOW`] has passed since the offer expired;
    /// else the claim waits.
    fn judge_sale(
        &self,
        caller: &PublicKey,
        claim: &tessera_core::transfer::evidence::SaleClaim,
        double_sale: Option<&tessera_core::transfer::evidence::DoubleSaleProof>,
    ) -> Result<wire::ItemResultJson, ApiError> {
        let trust = self.trust_list()?;
        let empty = DenyList::empty();
        let now = self.now();
        let checked = claim
            .check(&Verifier::new(&trust, &empty), now)
            .map_err(|e| ApiError::unprocessable("bad_claim", e.to_string()))?;
        let double_sale = match double_sale {
            Some(proof) => {
                let signer = proof.verify().map_err(|e| ApiError::unprocessable("bad_proof", e.to_string()))?;
                if proof.offer.digest() != claim.offer.digest() {
                    return Err(ApiError::unprocessable("proof_mismatch", "the proof is about another offer"));
                }
                Some((proof, signer))
            }
            None => None,
        };
        let payments = &claim.acceptance.body.payment;
        for r in self.register_chains(caller, payments)? {
            match r? {
                Registered::Current(..) | Registered::Superseded(_) => {}
                Registered::Conflict(_) => {
                    return Err(ApiError::conflict("payment_conflict", "a payment note was endorsed twice"));
                }
            }
        }
        let offer_id = checked.offer_id.to_hex();
        if let Some((proof, signer)) = double_sale {
            let record =
                DoubleSaleRecord { offer_id: checked.offer_id, item: proof.item, signer, proof: proof.to_bytes() };
            let notice = Notice {
                id: 0,
                recipient: checked.seller,
                kind: "double-sale".into(),
                instrument: proof.offer.body.items.get(proof.item as usize).map(Instrument::id),
                payload: record.proof.clone(),
                created_at: now,
            };
            if self.store.record_double_sale(&record, &[notice], now)? {
                tracing::warn!(offer = %offer_id, signer = %signer.short(), "double sale proven");
            }
        }
        let mut registered = Vec::new();
        let mut awaiting = Vec::new();
        let mut went_elsewhere = false;
        for item in &checked.items {
            if let Some(link) = self.store.links(&item.instrument_id)?.into_iter().find(|l| l.sequence == item.sequence)
            {
                let link = Signed::<Endorsement>::from_bytes(&link.bytes)
                    .map_err(|e| ApiError::new(500, "corrupt", e.to_string()))?;
                if !checked.is_delivered_by(std::slice::from_ref(&link)) {
                    went_elsewhere = true;
                }
                registered.push(link);
            } else {
                awaiting.push((item.instrument_id, item.sequence));
            }
        }
        let sale = |verdict: &str, instruments: Vec<String>| wire::ItemResultJson::Sale {
            offer_id: offer_id.clone(),
            verdict: verdict.into(),
            instruments,
        };
        if checked.is_delivered_by(&registered) {
            return Ok(sale("delivered", vec![]));
        }
        let reason = if went_elsewhere {
            "elsewhere"
        } else if double_sale.is_some() {
            "double_sale"
        } else if now > claim.offer.body.expires_at.saturating_add(SALE_DELIVERY_WINDOW) {
            "deadline"
        } else {
            return Ok(sale("pending", vec![]));
        };
        if !self.store.refunded_sales(&[checked.offer_id])?.is_empty() {
            return Ok(sale("refunded", vec![]));
        }
        let mut values = Vec::new();
        let mut payers = Vec::new();
        let mut spend = Vec::new();
        for (line, note) in checked.payment.iter().zip(payments) {
            let amount = note
                .attributes()
                .amount()
                .ok_or_else(|| ApiError::bad_request("wrong_kind", "a payment is not a note"))?;
            values.push(amount.minor);
            payers.push(line.payer.to_hex());
            spend.push(NoteSpend { id: line.instrument_id, holder: line.payee });
        }
        let (instruments, rows) = self.notes_for(&checked.buyer, &checked.price.currency, &values, &payers)?;
        let result = self.store.refund_sale(
            &SaleRefund { offer_id: checked.offer_id, buyer: checked.buyer, reason: reason.into(), awaiting },
            &NoteExchange {
                account: checked.buyer,
                currency: checked.price.currency.clone(),
                spend,
                retire: vec![],
                issue: rows,
                payout: 0,
                paid_in: 0,
                reference: format!("sale-refund:{offer_id}"),
                notices: Self::issued_notices(&instruments, now),
            },
            now,
        );
        match result {
            Ok(_) => {
                tracing::warn!(offer = %offer_id, seller = %checked.seller.short(), reason, "sale not delivered: payment returned");
                Ok(sale("refunded", Self::encoded(&instruments)))
            }
            Err(crate::store::StoreError::DuplicateReference(_)) => Ok(sale("refunded", vec![])),
            // A link landed at an awaited item since the judgment (another
            // registry process registered it): judge again. Each round sees
            // one more item's link, so this ends.
            Err(crate::store::StoreError::SaleChanged(_)) => {
                tracing::info!(offer = %offer_id, "sale changed while judged: judging again");
                self.judge_sale(caller, claim, double_sale.map(|(proof, _)| proof))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Registers chains that must end at the issuer key (payments, refunds,
    /// redemptions); any failure refuses the whole request.
    fn received(
        &self,
        caller: &PublicKey,
        encoded: &[String],
        kind: Option<Kind>,
    ) -> Result<Vec<(Instrument, InstrumentRow)>, ApiError> {
        check_count(encoded.len(), "instruments")?;
        let chains = encoded.iter().map(|s| instrument_b64(s)).collect::<Result<Vec<_>, _>>()?;
        let mut seen = std::collections::BTreeSet::new();
        for c in &chains {
            if let Some(kind) = kind
                && c.kind() != kind
            {
                return Err(ApiError::bad_request("wrong_kind", format!("{} is not a {}", c.id(), kind.as_str())));
            }
            if c.holder() != self.issuer_key {
                return Err(ApiError::unprocessable(
                    "not_endorsed_to_registry",
                    format!("{} must be endorsed to the issuer key", c.id()),
                ));
            }
            // Whoever saw the request could send the same chain signed by
            // their own account: only the account the endorsement names is
            // credited.
            if c.links.last().map(|l| l.body.offer_id) != Some(ExchangeId::returned_by(caller)) {
                return Err(ApiError::forbidden(
                    "not_returned_by_caller",
                    format!("{} was not given back to the registry by this account", c.id()),
                ));
            }
            if !seen.insert(c.id()) {
                return Err(ApiError::bad_request("duplicate", format!("{} appears twice", c.id())));
            }
        }
        let results = self.register_chains(caller, &chains)?;
        let mut out = Vec::new();
        for (c, r) in chains.into_iter().zip(results) {
            match r? {
                Registered::Current(_, _, row) => out.push((c, row)),
                Registered::Superseded(_) => {
                    return Err(ApiError::conflict("superseded", format!("{} was passed on later", c.id())));
                }
                Registered::Conflict(_) => {
                    return Err(ApiError::conflict(
                        "double_spend",
                        format!("{} was endorsed twice; the first registered stands", c.id()),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn notes_for(
        &self,
        account: &PublicKey,
        currency: &str,
        values: &[u64],
        holders: &[String],
    ) -> Result<(Vec<Instrument>, Vec<InstrumentRow>), ApiError> {
        if values.len() != holders.len() {
            return Err(ApiError::bad_request(
                "holder_count",
                format!("{} notes need {} holder keys, got {}", values.len(), values.len(), holders.len()),
            ));
        }
        let now = self.now();
        let mut instruments = Vec::new();
        let mut rows = Vec::new();
        for (value, holder) in values.iter().zip(holders) {
            let holder = key_hex(holder, "holder")?;
            let attrs = Attributes::Note(NoteAttributes {
                amount: Amount::new(currency, *value),
                expires_at: now.saturating_add(NOTE_LIFETIME),
            });
            let inst = self
                .issuer
                .issue(attrs, holder, now, &mut OsRng)
                .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))?;
            rows.push(InstrumentRow::issued(&inst, Some(*account), now));
            instruments.push(inst);
        }
        self.counters.issued.fetch_add(instruments.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok((instruments, rows))
    }

    fn encoded(instruments: &[Instrument]) -> Vec<String> {
        instruments.iter().map(|i| wire::b64(&i.to_bytes())).collect()
    }

    /// An `issued` notice per instrument, for the key it is issued to:
    /// stored in the transaction that issues them, so that an answer the
    /// wallet never received (the registry crashed after its commit, the
    /// link broke) reaches it at its next sync, and a retried request finds
    /// it ([`Registry::earlier_answer`]).
    fn issued_notices(instruments: &[Instrument], now: u64) -> Vec<Notice> {
        instruments
            .iter()
            .map(|i| Notice {
                id: 0,
                recipient: i.genesis.body.holder,
                kind: "issued".into(),
                instrument: Some(i.id()),
                payload: i.to_bytes(),
                created_at: now,
            })
            .collect()
    }

    /// The instruments an earlier request already issued to `holders`,
    /// when every one of these fresh keys received one: the request is a
    /// retry of one whose answer was lost, and gets that answer again
    /// instead of being charged twice or refused. The keys are the caller's
    /// own fresh keys; what they were issued is no secret (it is what
    /// `/sync` returns for them).
    fn earlier_answer(&self, holders: &[PublicKey]) -> Result<Option<Vec<Instrument>>, ApiError> {
        if holders.is_empty() {
            return Ok(None);
        }
        let notices = self.store.notices(holders, 0)?;
        let mut found = Vec::with_capacity(holders.len());
        for holder in holders {
            let Some(n) = notices.iter().find(|n| n.kind == "issued" && n.recipient == *holder) else {
                return Ok(None);
            };
            found.push(Instrument::from_bytes(&n.payload).map_err(|e| ApiError::new(500, "corrupt", e.to_string()))?);
        }
        Ok(Some(found))
    }

    fn holder_keys(holders: &[String]) -> Result<Vec<PublicKey>, ApiError> {
        holders.iter().map(|h| key_hex(h, "holder")).collect()
    }

    /// `POST /money/topup`.
    pub fn top_up(&self, caller: &PublicKey, req: wire::TopUpRequest) -> Result<wire::BalanceResponse, ApiError> {
        let amount = check_amount(&req.amount)?;
        let reference = self
            .payments
            .charge(caller, &amount, &req.payment)
            .map_err(|e| ApiError::new(402, "payment_declined", e.to_string()))?;
        self.store.top_up(caller, &amount, &reference, self.now())?;
        Ok(wire::BalanceResponse { balance: self.store.balance(caller, &amount.currency)?, currency: amount.currency })
    }

    /// `GET /money/balance/{currency}` for the signing account.
    pub fn balance(&self, caller: &PublicKey, currency: &str) -> Result<wire::BalanceResponse, ApiError> {
        Ok(wire::BalanceResponse { balance: self.store.balance(caller, currency)?, currency: currency.into() })
    }

    /// `POST /money/withdraw`: notes in fixed denominations from the balance.
    pub fn withdraw(
        &self,
        caller: &PublicKey,
        reference: &str,
        req: wire::WithdrawRequest,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        let amount = check_amount(&req.amount)?;
        check_count(req.holders.len(), "holders")?;
        if let Some(earlier) = self.earlier_answer(&Self::holder_keys(&req.holders)?)? {
            let balance = self.store.balance(caller, &amount.currency)?;
            return Ok(wire::InstrumentsResponse { instruments: Self::encoded(&earlier), balance: Some(balance) });
        }
        let values = denominations_for(amount.minor);
        let (instruments, rows) = self.notes_for(caller, &amount.currency, &values, &req.holders)?;
        let balance = self.store.exchange_notes(
            &NoteExchange {
                account: *caller,
                currency: amount.currency,
                spend: vec![],
                retire: vec![],
                issue: rows,
                payout: 0,
                paid_in: 0,
                reference: format!("withdraw:{reference}"),
                notices: Self::issued_notices(&instruments, self.now()),
            },
            self.now(),
        )?;
        Ok(wire::InstrumentsResponse { instruments: Self::encoded(&instruments), balance: Some(balance) })
    }

    fn spend_list(&self, notes: &[(Instrument, InstrumentRow)]) -> Result<(String, Vec<NoteSpend>, u64), ApiError> {
        let mut currency: Option<String> = None;
        let mut total = 0u64;
        let mut spend = Vec::new();
        for (inst, row) in notes {
            let amount = inst.attributes().amount().ok_or_else(|| ApiError::bad_request("wrong_kind", "not a note"))?;
            match &currency {
                Some(c) if *c != amount.currency => {
                    return Err(ApiError::bad_request("mixed_currency", "all notes must be in one currency"));
                }
                _ => currency = Some(amount.currency.clone()),
            }
            total = total.checked_add(amount.minor).ok_or_else(|| ApiError::bad_request("overflow", "too much"))?;
            spend.push(NoteSpend { id: row.id, holder: self.issuer_key });
        }
        Ok((currency.unwrap_or_default(), spend, total))
    }

    /// `POST /money/redeem`: notes endorsed to the issuer key credit the
    /// account (and, with `payout`, leave the system). A retry whose first
    /// attempt committed gets the account's balance again, not a refusal.
    pub fn redeem(
        &self,
        caller: &PublicKey,
        reference: &str,
        req: wire::RedeemRequest,
    ) -> Result<wire::BalanceResponse, ApiError> {
        if req.notes.is_empty() {
            return Err(ApiError::bad_request("no_notes", "give at least one note"));
        }
        let notes = self.received(caller, &req.notes, Some(Kind::Note))?;
        // Keyed by the notes, not the request: a retry has a fresh nonce,
        // and a note is redeemed at most once.
        let redemption = redemption_reference(notes.iter().map(|(_, row)| row.id));
        let (currency, spend, total) = self.spend_list(&notes)?;
        let payout = if req.payout { total } else { 0 };
        let exchanged = self.store.exchange_notes(
            &NoteExchange {
                account: *caller,
                currency: currency.clone(),
                spend,
                retire: vec![],
                issue: vec![],
                payout,
                paid_in: 0,
                reference: redemption.clone(),
                notices: vec![],
            },
            self.now(),
        );
        let balance = match exchanged {
            // Spent by this very redemption, committed before: a retry (or
            // the same request through another registry process) whose
            // answer is the balance, with nothing credited or paid twice.
            Err(crate::store::StoreError::NoteNotSpendable(_))
                if self.store.ledger_entry(&redemption)?.is_some_and(|e| e.account == *caller) =>
            {
                return Ok(wire::BalanceResponse { balance: self.store.balance(caller, &currency)?, currency });
            }
            other => other?,
        };
        // The provider gets the ledger reference: the same for a retry.
        if payout > 0
            && let Err(e) = self.payments.pay_out(caller, &Amount::new(&currency, payout), &redemption)
        {
            // The ledger holds the debit; the operator settles failed pay-outs from it.
            tracing::error!(error = %e, ledger = %redemption, request = reference, "pay-out failed after the ledger recorded it");
        }
        Ok(wire::BalanceResponse { currency, balance })
    }

    /// `POST /money/refresh`: the same value in fresh notes (split or merge).
    pub fn refresh(
        &self,
        caller: &PublicKey,
        reference: &str,
        req: wire::RefreshRequest,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        if req.notes.is_empty() {
            return Err(ApiError::bad_request("no_notes", "give at least one note"));
        }
        check_count(req.denominations.len(), "denominations")?;
        if let Some(bad) = req.denominations.iter().find(|d| !tessera_core::instrument::is_denomination(**d)) {
            return Err(ApiError::bad_request("bad_denomination", format!("{bad} is not a denomination")));
        }
        check_count(req.holders.len(), "holders")?;
        if let Some(earlier) = self.earlier_answer(&Self::holder_keys(&req.holders)?)? {
            let currency = earlier.first().and_then(|i| i.attributes().amount()).map(|a| a.currency.clone());
            let balance = currency.map(|c| self.store.balance(caller, &c)).transpose()?;
            return Ok(wire::InstrumentsResponse { instruments: Self::encoded(&earlier), balance });
        }
        let notes = self.received(caller, &req.notes, Some(Kind::Note))?;
        let (currency, spend, total) = self.spend_list(&notes)?;
        let wanted: u64 = req.denominations.iter().try_fold(0u64, |a, d| a.checked_add(*d)).unwrap_or(u64::MAX);
        if wanted != total {
            return Err(ApiError::unprocessable(
                "value_mismatch",
                format!("notes worth {total} cannot become {wanted}"),
            ));
        }
        let (instruments, rows) = self.notes_for(caller, &currency, &req.denominations, &req.holders)?;
        let balance = self.store.exchange_notes(
            &NoteExchange {
                account: *caller,
                currency,
                spend,
                retire: vec![],
                issue: rows,
                payout: 0,
                paid_in: 0,
                reference: format!("refresh:{reference}"),
                notices: Self::issued_notices(&instruments, self.now()),
            },
            self.now(),
        )?;
        Ok(wire::InstrumentsResponse { instruments: Self::encoded(&instruments), balance: Some(balance) })
    }

    /// `POST /buy`: notes (and the balance) pay the face price; the ticket
    /// is issued to the wallet's fresh holder key in the same transaction.
    pub fn buy(
        &self,
        caller: &PublicKey,
        reference: &str,
        req: wire::BuyRequest,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        // Everything that can be refused is checked before the payment
        // chains are registered.
        let event = self.event(&req.event_id)?;
        let holder = key_hex(&req.holder, "holder")?;
        if let Some(earlier) = self.earlier_answer(&[holder])? {
            let balance = self.store.balance(caller, &event.price.currency)?;
            return Ok(wire::InstrumentsResponse { instruments: Self::encoded(&earlier), balance: Some(balance) });
        }
        let ticket = self.ticket_for(&event, &req.zone, req.seat, holder)?;
        let notes = self.received(caller, &req.notes, Some(Kind::Note))?;
        let (currency, spend, _total) = self.spend_list(&notes)?;
        if !notes.is_empty() && currency != event.price.currency {
            return Err(ApiError::bad_request("mixed_currency", format!("the price is in {}", event.price.currency)));
        }
        let balance = self.store.exchange_notes(
            &NoteExchange {
                account: *caller,
                currency: event.price.currency.clone(),
                spend,
                retire: vec![],
                issue: vec![InstrumentRow::issued(&ticket, Some(*caller), self.now())],
                payout: event.price.minor,
                paid_in: 0,
                reference: format!("buy:{reference}"),
                notices: Self::issued_notices(std::slice::from_ref(&ticket), self.now()),
            },
            self.now(),
        )?;
        tracing::info!(event = %event.event_id, ticket = %ticket.id(), "ticket sold");
        Ok(wire::InstrumentsResponse { instruments: vec![wire::b64(&ticket.to_bytes())], balance: Some(balance) })
    }

    /// `POST /refund`: a ticket endorsed back for notes of its face price.
    pub fn refund(
        &self,
        caller: &PublicKey,
        reference: &str,
        req: wire::RefundRequest,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        let price = match instrument_b64(&req.ticket)?.attributes() {
            Attributes::Ticket(t) => t.face_price.clone(),
            _ => return Err(ApiError::bad_request("wrong_kind", "only tickets are refunded")),
        }
        .ok_or_else(|| ApiError::unprocessable("not_refundable", "the ticket has no face price"))?;
        let values = denominations_for(price.minor);
        if values.len() != req.holders.len() {
            return Err(ApiError::bad_request(
                "holder_count",
                format!("the refund needs {} holder keys", values.len()),
            ));
        }
        if let Some(earlier) = self.earlier_answer(&Self::holder_keys(&req.holders)?)? {
            let balance = self.store.balance(caller, &price.currency)?;
            return Ok(wire::InstrumentsResponse { instruments: Self::encoded(&earlier), balance: Some(balance) });
        }
        let mut tickets = self.received(caller, std::slice::from_ref(&req.ticket), Some(Kind::Ticket))?;
        let (_ticket, row) = tickets.pop().ok_or_else(|| ApiError::bad_request("no_ticket", "give a ticket"))?;
        if row.status != Status::Active {
            return Err(ApiError::conflict("not_active", format!("the ticket is {}", row.status.as_str())));
        }
        let (instruments, rows) = self.notes_for(caller, &price.currency, &values, &req.holders)?;
        let balance = self.store.exchange_notes(
            &NoteExchange {
                account: *caller,
                currency: price.currency,
                spend: vec![],
                retire: vec![NoteSpend { id: row.id, holder: self.issuer_key }],
                issue: rows,
                payout: 0,
                paid_in: price.minor,
                reference: format!("refund:{reference}"),
                notices: Self::issued_notices(&instruments, self.now()),
            },
            self.now(),
        )?;
        Ok(wire::InstrumentsResponse { instruments: Self::encoded(&instruments), balance: Some(balance) })
    }

    /// `POST /gifts`: the sender endorsed the instrument to the issuer key;
    /// the registry holds it for the recipient until they answer.
    pub fn create_gift(&self, caller: &PublicKey, req: wire::GiftRequest) -> Result<wire::GiftResponse, ApiError> {
        let recipient = key_hex(&req.recipient, "recipient")?;
        let return_holder = key_hex(&req.return_holder, "return holder")?;
        let mut got = self.received(caller, std::slice::from_ref(&req.instrument), None)?;
        let (inst, _row) = got.pop().ok_or_else(|| ApiError::bad_request("no_instrument", "give an instrument"))?;
        // A retry of a request whose answer was lost (the registry crashed
        // after storing the gift): the gift is left already, and a second
        // one would leave the instrument pending for the recipient twice.
        if let Some(g) =
            self.store.pending_gifts(&recipient)?.into_iter().find(|g| g.instrument == inst.id() && g.sender == *caller)
        {
            return Ok(wire::GiftResponse { gift_id: hex::encode(g.gift_id) });
        }
        let mut gift_id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut OsRng, &mut gift_id);
        let now = self.now();
        let gift = GiftRow {
            gift_id,
            instrument: inst.id(),
            sender: *caller,
            recipient,
            return_holder,
            state: "pending".into(),
            settled_to: None,
            created_at: now,
        };
        let notice = Notice {
            id: 0,
            recipient,
            kind: "gift".into(),
            instrument: Some(inst.id()),
            payload: gift_id.to_vec(),
            created_at: now,
        };
        self.store.put_gift(&gift, &notice)?;
        Ok(wire::GiftResponse { gift_id: hex::encode(gift_id) })
    }

    /// `POST /gifts/pending`.
    pub fn pending_gifts(&self, caller: &PublicKey) -> Result<wire::PendingGifts, ApiError> {
        let mut gifts = Vec::new();
        for g in self.store.pending_gifts(caller)? {
            let row = self.store.instrument(&g.instrument)?.ok_or(ApiError::new(
                500,
                "corrupt",
                "gift without instrument",
            ))?;
            gifts.push(wire::PendingGift {
                gift_id: hex::encode(g.gift_id),
                sender: g.sender.to_hex(),
                genesis: wire::b64(&row.genesis),
            });
        }
        Ok(wire::PendingGifts { gifts })
    }

    /// `POST /gifts/answer`: the registry endorses the instrument from its
    /// issuer key to the recipient's holder key (accept) or back to the
    /// sender's return key (decline). The gift's state changes once, by a
    /// conditional update, before the endorsement is signed, so it can never
    /// go to both; answering the same way again re-sends the instrument.
    pub fn answer_gift(
        &self,
        caller: &PublicKey,
        req: wire::GiftAnswer,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        let mut gift_id = [0u8; 16];
        hex::decode_to_slice(&req.gift_id, &mut gift_id)
            .map_err(|_| ApiError::bad_request("bad_id", "a gift id is 32 hex digits"))?;
        let gift = self.store.gift(&gift_id)?.ok_or_else(|| ApiError::not_found("unknown_gift", "no such gift"))?;
        if gift.recipient != *caller {
            return Err(ApiError::forbidden("not_recipient", "only the recipient answers a gift"));
        }
        let (state, to) = if req.accept {
            let holder = req
                .holder
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("no_holder", "accepting needs a holder key"))?;
            ("accepted", key_hex(holder, "holder")?)
        } else {
            ("declined", gift.return_holder)
        };
        if !self.store.settle_gift(&gift_id, state, &to)? {
            let again =
                self.store.gift(&gift_id)?.ok_or_else(|| ApiError::not_found("unknown_gift", "no such gift"))?;
            if again.state != state || again.settled_to != Some(to) {
                return Err(ApiError::conflict("already_answered", format!("the gift was {}", again.state)));
            }
        }
        let delivered = self.deliver(&gift.instrument, to)?;
        let bytes = delivered.to_bytes();
        if !req.accept {
            self.store.push_notice(&Notice {
                id: 0,
                recipient: gift.sender,
                kind: "gift-returned".into(),
                instrument: Some(gift.instrument),
                payload: bytes.clone(),
                created_at: self.now(),
            })?;
        }
        Ok(wire::InstrumentsResponse { instruments: vec![wire::b64(&bytes)], balance: None })
    }

    /// Passes an instrument registered to the issuer key on to `to`, and
    /// returns it compacted under a fresh certificate. If it already went
    /// to `to`, returns the certificate again.
    fn deliver(&self, id: &InstrumentId, to: PublicKey) -> Result<Instrument, ApiError> {
        let corrupt = |e: String| ApiError::new(500, "corrupt", e);
        let row = self.store.instrument(id)?.ok_or_else(|| ApiError::not_found("unknown_instrument", "gone"))?;
        let genesis = Signed::<tessera_core::Genesis>::from_bytes(&row.genesis).map_err(|e| corrupt(e.to_string()))?;
        let mut chain = Instrument::issued(genesis);
        for l in self.store.links(id)? {
            chain.links.push(Signed::<Endorsement>::from_bytes(&l.bytes).map_err(|e| corrupt(e.to_string()))?);
        }
        let row = if row.holder == self.issuer_key {
            let body =
                chain.next_endorsement(to, tessera_core::ExchangeId::NONE, tessera_core::ExchangeId::NONE, self.now());
            let link = Signed::sign(body, &self.holder_signer)
                .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))?;
            let record = LinkRecord::of(&link, self.issuer_key);
            chain = chain.with_link(link);
            let update = ChainUpdate { instrument: *id, links: vec![record], seen: None };
            match self.store.apply_chains(&[update], self.now())?.pop() {
                Some(ChainOutcome::Applied { row, .. }) => row,
                other => return Err(ApiError::conflict("not_delivered", format!("{other:?}"))),
            }
        } else if row.holder == to {
            row
        } else {
            return Err(ApiError::conflict("not_held", "the registry no longer holds this instrument"));
        };
        let verified = VerifiedInstrument {
            id: *id,
            kind: row.kind,
            holder: row.holder,
            sequence: row.sequence,
            tip: row.tip,
            state: InstrumentState { uses_left: row.uses_left, status: row.status },
        };
        self.certify(&chain, &verified, &row)
    }

    /// `POST /gate/bags`: a certified gate settles a bag. Refused whole
    /// (nothing stored) for a reused bag number, a record twice in the bag,
    /// or a record already settled.
    pub fn upload_bag(&self, caller: &PublicKey, req: wire::BagUpload) -> Result<wire::SettlementReport, ApiError> {
        use tessera_core::presentation::{BagBody, BagError, Outcome};
        let bytes =
            wire::unb64(&req.bag).ok_or_else(|| ApiError::bad_request("bad_base64", "the bag is not base64"))?;
        let bag = Signed::<BagBody>::from_bytes(&bytes)?;
        if bag.body.gate != *caller {
            return Err(ApiError::forbidden("wrong_gate", "a gate uploads only its own bags"));
        }
        if !self.trust_list()?.certifies(caller, Role::Gate, self.now()) {
            return Err(ApiError::forbidden("not_gate", "the key is not certified as a gate"));
        }
        bag.check().map_err(|e| match e {
            BagError::Duplicate(_) => ApiError::bad_request("duplicate_record", e.to_string()),
            BagError::TooManyEntries(_) => ApiError::new(413, "too_large", e.to_string()),
            _ => ApiError::unprocessable("bad_bag", e.to_string()),
        })?;
        let records: Vec<ExaminationRow> = bag
            .body
            .entries
            .iter()
            .map(|e| {
                let c = &e.certificate.body;
                ExaminationRow {
                    certificate: e.certificate.digest(),
                    instrument: c.instrument_id,
                    admitted: c.outcome == Outcome::Admitted,
                    uses_left: c.uses_left,
                    status: c.status,
                    examined_at: c.time,
                    answer: (c.outcome == Outcome::Admitted).then(|| encode_answer(&e.answer)),
                }
            })
            .collect();
        let now = self.now();
        let settled = self.store.settle_bag(caller, bag.body.bag_number, &bag.digest(), &records, now)?;
        let proofs = self.stale_in_bag(&bag, now)?;
        let s = settled.settlement;
        if settled.replayed {
            tracing::info!(gate = %caller.short(), bag = bag.body.bag_number, "bag uploaded again: original settlement");
        } else {
            tracing::info!(gate = %caller.short(), bag = bag.body.bag_number, admitted = s.admitted, "bag settled");
        }
        Ok(wire::SettlementReport {
            gate: caller.to_hex(),
            bags: s.bags,
            admitted: s.admitted,
            refused: s.refused,
            replayed: settled.replayed,
            used_after_transfer: proofs.iter().map(|p| wire::b64(&p.to_bytes())).collect(),
        })
    }

    /// `POST /gate/settlement`.
    pub fn settlement(&self, caller: &PublicKey) -> Result<wire::SettlementReport, ApiError> {
        let s = self.store.settlement(caller)?;
        Ok(wire::SettlementReport {
            gate: caller.to_hex(),
            bags: s.bags,
            admitted: s.admitted,
            refused: s.refused,
            replayed: false,
            used_after_transfer: Vec::new(),
        })
    }

    /// `POST /modifications`: the event's organiser changes a ticket; its
    /// registered holder (and the account that bought it) get a notice.
    pub fn modify(&self, caller: &PublicKey, req: wire::ModifyRequest) -> Result<wire::ModifyResponse, ApiError> {
        let id = InstrumentId::from_hex(&req.instrument_id)
            .map_err(|_| ApiError::bad_request("bad_id", "an instrument id is 32 hex digits"))?;
        let row =
            self.store.instrument(&id)?.ok_or_else(|| ApiError::not_found("unknown_instrument", format!("no {id}")))?;
        let genesis = Signed::<tessera_core::Genesis>::from_bytes(&row.genesis)
            .map_err(|e| ApiError::new(500, "corrupt", e.to_string()))?;
        let Attributes::Ticket(t) = &genesis.body.attributes else {
            return Err(ApiError::bad_request("wrong_kind", "only tickets are modified"));
        };
        let event = self.event(&t.event_id)?;
        if event.organiser != *caller {
            return Err(ApiError::forbidden("wrong_issuer", "only the event's organiser modifies its tickets"));
        }
        if row.status != Status::Active {
            return Err(ApiError::conflict("not_active", format!("the ticket is {}", row.status.as_str())));
        }
        if !event.zones.contains(&req.zone)
            || req.valid_until < req.valid_from
            || req.seat.as_ref().is_some_and(|s| s.len() > 50)
        {
            return Err(ApiError::bad_request("bad_modification", "zone, seat or validity is not acceptable"));
        }
        let mut modification_id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut OsRng, &mut modification_id);
        let now = self.now();
        let m = ModificationRow {
            modification_id,
            instrument: id,
            zone: req.zone,
            seat: req.seat,
            valid_from: req.valid_from,
            valid_until: req.valid_until,
            state: "pending".into(),
            created_at: now,
        };
        let mut recipients = vec![row.holder];
        recipients.extend(row.account);
        let notices: Vec<Notice> = recipients
            .into_iter()
            .map(|r| Notice {
                id: 0,
                recipient: r,
                kind: "modification".into(),
                instrument: Some(id),
                payload: modification_id.to_vec(),
                created_at: now,
            })
            .collect();
        self.store.put_modification(&m, &notices)?;
        Ok(wire::ModifyResponse { modification_id: hex::encode(modification_id) })
    }

    /// `POST /modifications/answer`. The answer is taken once (a
    /// conditional update) after the ticket came back to the issuer key.
    pub fn answer_modification(
        &self,
        caller: &PublicKey,
        reference: &str,
        req: wire::ModificationAnswer,
    ) -> Result<wire::InstrumentsResponse, ApiError> {
        let mut mid = [0u8; 16];
        hex::decode_to_slice(&req.modification_id, &mut mid)
            .map_err(|_| ApiError::bad_request("bad_id", "a modification id is 32 hex digits"))?;
        let m = self
            .store
            .modification(&mid)?
            .ok_or_else(|| ApiError::not_found("unknown_modification", "no such modification"))?;
        if m.state != "pending" {
            return Err(ApiError::conflict("already_answered", format!("answered: {}", m.state)));
        }
        let ticket = instrument_b64(&req.ticket)?;
        if ticket.id() != m.instrument {
            return Err(ApiError::bad_request("wrong_ticket", "the ticket is not the modified one"));
        }
        let Attributes::Ticket(old) = ticket.attributes().clone() else {
            return Err(ApiError::bad_request("wrong_kind", "not a ticket"));
        };
        let event = self.event(&old.event_id)?;
        // Check the answer's own inputs before anything is registered.
        let new_holder = match (req.answer.as_str(), &req.holder) {
            ("accept", Some(h)) => Some(key_hex(h, "holder")?),
            ("accept", None) => return Err(ApiError::bad_request("no_holder", "accepting needs a holder key")),
            ("refuse", _) => None,
            ("refund", _) => None,
            _ => return Err(ApiError::bad_request("bad_answer", "answer accept, refuse or refund")),
        };
        let price = old.face_price.clone().unwrap_or_else(|| event.price.clone());
        let values = denominations_for(price.minor);
        if req.answer == "refund" && values.len() != req.holders.len() {
            return Err(ApiError::bad_request(
                "holder_count",
                format!("the refund needs {} holder keys", values.len()),
            ));
        }
        let mut got = self.received(caller, std::slice::from_ref(&req.ticket), Some(Kind::Ticket))?;
        let (_, row) = got.pop().ok_or_else(|| ApiError::bad_request("no_ticket", "give the ticket"))?;
        if !self.store.settle_modification(&mid, &req.answer)? {
            return Err(ApiError::conflict("already_answered", "the modification was answered"));
        }
        let now = self.now();
        match req.answer.as_str() {
            "accept" => {
                let attrs = Attributes::Ticket(TicketAttributes {
                    zone: m.zone,
                    seat: m.seat,
                    valid_from: m.valid_from,
                    valid_until: m.valid_until,
                    ..old
                });
                let holder =
                    new_holder.ok_or_else(|| ApiError::bad_request("no_holder", "accepting needs a holder key"))?;
                let fresh = self
                    .issuer
                    .issue(attrs, holder, now, &mut OsRng)
                    .map_err(|e| ApiError::new(503, "signer_unavailable", e.to_string()))?;
                self.store.exchange_notes(
                    &NoteExchange {
                        account: *caller,
                        currency: price.currency.clone(),
                        spend: vec![],
                        retire: vec![NoteSpend { id: row.id, holder: self.issuer_key }],
                        issue: vec![InstrumentRow::issued(&fresh, Some(*caller), now)],
                        payout: 0,
                        paid_in: 0,
                        reference: format!("modify:{reference}"),
                        notices: Self::issued_notices(std::slice::from_ref(&fresh), now),
                    },
                    now,
                )?;
                // The old ticket is void either way; name why.
                self.store.set_status(&row.id, &self.issuer_key, Status::Refunded, Status::Modified, now)?;
                Ok(wire::InstrumentsResponse { instruments: vec![wire::b64(&fresh.to_bytes())], balance: None })
            }
            "refuse" => {
                self.store.set_status(&row.id, &self.issuer_key, Status::Active, Status::Revoked, now)?;
                self.store.deny(&row.id, "modification refused", now)?;
                Ok(wire::InstrumentsResponse { instruments: vec![], balance: None })
            }
            _ => {
                let (instruments, rows) = self.notes_for(caller, &price.currency, &values, &req.holders)?;
                let balance = self.store.exchange_notes(
                    &NoteExchange {
                        account: *caller,
                        currency: price.currency,
                        spend: vec![],
                        retire: vec![NoteSpend { id: row.id, holder: self.issuer_key }],
                        issue: rows,
                        payout: 0,
                        paid_in: price.minor,
                        reference: format!("modify-refund:{reference}"),
                        notices: Self::issued_notices(&instruments, now),
                    },
                    now,
                )?;
                Ok(wire::InstrumentsResponse { instruments: Self::encoded(&instruments), balance: Some(balance) })
            }
        }
    }

    /// `POST /sync`.
    pub fn sync(&self, caller: &PublicKey, req: wire::SyncRequest) -> Result<wire::SyncResponse, ApiError> {
        check_count(req.holders.len(), "holders")?;
        let mut keys = vec![*caller];
        for h in &req.holders {
            keys.push(key_hex(h, "holder")?);
        }
        let notices = self.store.notices(&keys, req.after_notice)?;
        let (deny_version, denied) = self.store.deny_changes_since(req.deny_since)?;
        Ok(wire::SyncResponse {
            trust_version: self.store.trust_version()? + 1,
            deny_version,
            denied: denied
                .into_iter()
                .map(|(id, version)| wire::DeniedJson { instrument_id: id.to_hex(), version })
                .collect(),
            deny_list: wire::b64(&self.deny_list()?.to_bytes()),
            notices: notices
                .into_iter()
                .map(|n| wire::NoticeJson {
                    id: n.id,
                    recipient: n.recipient.to_hex(),
                    kind: n.kind,
                    instrument_id: n.instrument.map(|i| i.to_hex()),
                    payload: wire::b64(&n.payload),
                })
                .collect(),
        })
    }
}

/// A holder's signed answer as the registry stores it (`examinations.answer`):
/// its CBOR, which only the registry writes. (An answer travels inside a
/// presentation or a bag, so it has no framed wire form of its own.)
fn encode_answer(answer: &Signed<tessera_core::presentation::PresentationBody>) -> Vec<u8> {
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail.
    let _ = minicbor::encode(answer, &mut out);
    out
}

fn decode_answer(bytes: &[u8]) -> Result<Signed<tessera_core::presentation::PresentationBody>, ApiError> {
    minicbor::decode(bytes).map_err(|e| ApiError::new(500, "corrupt", format!("stored answer: {e}")))
}

fn denominations_for(minor: u64) -> Vec<u64> {
    tessera_core::instrument::denominations_for(minor)
}

fn check_amount(a: &wire::AmountJson) -> Result<Amount, ApiError> {
    if a.currency.len() != 3 || !a.currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::bad_request("bad_currency", "a currency is 3 capital letters"));
    }
    if a.minor == 0 || a.minor > 100_000_000 {
        return Err(ApiError::bad_request("bad_amount", "an amount is 1 to 100,000,000 minor units"));
    }
    Ok(Amount::new(&a.currency, a.minor))
}

#[cfg(test)]
mod ingest_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::bench::{chains, holder_key, issue_all, registry_over};
    use crate::store::RegistryStore;
    use std::sync::Arc;
    use tessera_core::{ExchangeId, Instrument, LocalSigner, Signed, Signer};

    /// Ticket `i` of `chains` endorsed by its holder after `step`
    /// endorsements to `to`.
    fn endorse(chain: &Instrument, i: usize, step: u8, to: &LocalSigner) -> Instrument {
        let body = chain.next_endorsement(to.public_key(), ExchangeId::NONE, ExchangeId::NONE, 3);
        chain.with_link(Signed::sign(body, &holder_key(i, step)).unwrap())
    }

    /// Three batches, with the same instruments in more than one: the
    /// first upload of a double transfer stands however many writers the
    /// store has, an extension in a later batch follows its first link,
    /// and every other chain is registered.
    fn batches_sharing_instruments_apply_in_upload_order(store: Arc<dyn RegistryStore>) {
        let base = chains(2_600).unwrap();
        issue_all(&*store, &base).unwrap();
        let mallory = LocalSigner::from_seed(&[99; 32]);
        let stranger = LocalSigner::from_seed(&[98; 32]);
        let mut upload = base.clone();
        // Ticket 5's holder signs sequence 1 again (batch 2, which shares
        // ticket 5 with batch 1 and so waits for it), and ticket 7's next
        // holder passes it on (batch 3, links 1 and 2).
        let fork = endorse(&Instrument::issued(base[5].genesis.clone()), 5, 0, &mallory);
        upload[2_300] = endorse(&base[7], 7, 1, &stranger);
        upload.insert(1_200, fork);
        let registry = registry_over(store.clone());
        let registered = registry.ingest(&LocalSigner::from_seed(&[3; 32]).public_key(), &upload).unwrap();

        // Every upload ends registered but the fork (ticket 2,300's own
        // chain gave its place to ticket 7's extension).
        assert_eq!(registered, upload.len() - 1);
        let five = store.instrument(&base[5].id()).unwrap().unwrap();
        assert_eq!(five.holder, holder_key(5, 1).public_key(), "the first upload of sequence 1 stands");
        assert_eq!(store.equivocations(&base[5].id()).unwrap().len(), 1, "the double transfer is proven");
        let seven = store.instrument(&base[7].id()).unwrap().unwrap();
        assert_eq!((seven.sequence, seven.holder), (2, stranger.public_key()));
        for (i, chain) in base.iter().enumerate().filter(|(i, _)| ![5, 7, 2_300].contains(i)) {
            let row = store.instrument(&chain.id()).unwrap().unwrap();
            assert_eq!((row.sequence, row.holder), (1, holder_key(i, 1).public_key()), "ticket {i}");
        }
        assert_eq!(store.instrument(&base[2_300].id()).unwrap().unwrap().sequence, 0);
    }

    #[test]
    fn ingest_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteRegistry::open(dir.path().join("ingest.db")).unwrap();
        assert_eq!(store.writers(), 1);
        batches_sharing_instruments_apply_in_upload_order(Arc::new(store));
    }

    /// PostgreSQL has two writers: batches 2 and 3 are stored at once.
    #[test]
    #[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
    fn ingest_on_postgres() {
        let url =
            std::env::var("TESSERA_TEST_POSTGRES_URL").expect("TESSERA_TEST_POSTGRES_URL (scripts/test.sh sets it)");
        let schema = format!("ingest_{}", std::process::id());
        let store = crate::PostgresRegistry::open_in_schema(&url, &schema).unwrap();
        assert_eq!(store.writers(), 2);
        batches_sharing_instruments_apply_in_upload_order(Arc::new(store));
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    }
}
