//! The wallet facade: what an app (through the bindings) or the CLI calls.
//!
//! It owns a store, the key that seals secrets, and a clock. Every call is
//! synchronous and either completes its change or leaves the store as it was.

use crate::clock::{Clock, Timestamp};
use crate::codec::{DecodeError, Wire};
use crate::crypto::{LocalSigner, PublicKey, SecretKey, SignerError};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Amount, Instrument, Kind, RegisteredCertificate, Signed, Status};
use crate::presentation::OfflinePolicy;
use crate::proof::EquivocationProof;
use crate::sealing::{KeyProvider, KeyProviderError, Sealer};
use crate::store::{
    Direction, ForkEvidence, HistoryEntry, Holding, InstrumentFilter, InstrumentRecord, InstrumentSummary, KeyRecord,
    KeyRole, SqliteStore, StoreError, WalletStore, Write, WriteBatch,
};
use crate::trust::{DenyList, Role, TrustError, TrustList, TrustListBody};
use crate::verify::{MAX_LINKS, Rejection, VerifiedInstrument, Verifier};
use rand::rngs::OsRng;
use rand_core::RngCore;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const META_SALT: &str = "salt";
const META_KEY_CHECK: &str = "key-check";
const META_ACCOUNT: &str = "account";
const META_REGISTRY: &str = "registry";
const META_TRUST_LIST: &str = "trust-list";
const META_DENY_LIST: &str = "deny-list";
/// The offline policy: hops then note value, two big-endian u64s.
const META_OFFLINE_POLICY: &str = "offline-policy";
/// How many refused forks a wallet keeps for its next reconciliation.
pub const MAX_FORK_EVIDENCE: usize = 16;
const KEY_CHECK_LABEL: &[u8] = b"tessera/v1/key-check";
const KEY_CHECK_TEXT: &[u8] = b"tessera wallet";

/// Why a wallet call failed. A failed call changed nothing, except that a
/// [`WalletError::DoubleTransfer`] without a proof keeps the refused chain
/// as evidence to upload (see `Wallet::reconcile_upload`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bytes from outside did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The verifier refused an instrument.
    #[error("instrument rejected: {0}")]
    Rejected(#[from] Rejection),
    /// A trust list was refused.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The platform could not supply the storage key.
    #[error(transparent)]
    KeyProvider(#[from] KeyProviderError),
    /// A signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The storage key does not open this wallet (wrong passphrase or key file).
    #[error("the storage key does not open this wallet (wrong passphrase or key file?)")]
    WrongStorageKey,
    /// No wallet has been created in this store.
    #[error("no wallet has been created here")]
    NotCreated,
    /// A wallet already exists in this store.
    #[error("a wallet already exists here")]
    AlreadyCreated,
    /// No registry key is pinned yet.
    #[error("no registry is configured: pin the service provider's key first")]
    NoRegistry,
    /// A different registry key is already pinned.
    #[error("this wallet already trusts registry {0}")]
    RegistryMismatch(PublicKey),
    /// No trust list is installed yet.
    #[error("no trust list is installed: sync with the registry first")]
    NoTrustList,
    /// The instrument is not in this wallet.
    #[error("instrument {0} is not in this wallet")]
    UnknownInstrument(InstrumentId),
    /// The instrument's holder key was not made by this wallet.
    #[error("instrument {0} is held by a key this wallet does not have")]
    NotOurs(InstrumentId),
    /// The wallet already holds this instrument at this point of its chain.
    #[error("instrument {0} is already in this wallet")]
    AlreadyHeld(InstrumentId),
    /// The wallet holds a later state of this instrument than the one offered.
    #[error("instrument {0} is older than the copy in this wallet")]
    Stale(InstrumentId),
    /// The instrument is pending out or gone, so it cannot be used.
    #[error("instrument {id} is {holding}, not held")]
    NotHeld {
        /// The instrument.
        id: InstrumentId,
        /// Where it stands.
        holding: &'static str,
    },
    /// The instrument may not be passed on.
    #[error("instrument {0} is not transferable")]
    NotTransferable(InstrumentId),
    /// A setting out of its range; nothing was stored.
    #[error("bad policy: {0}")]
    BadPolicy(String),
    /// A second, different endorsement of a point of the chain this wallet
    /// already holds: the sender signed twice. The first copy is kept.
    #[error("instrument {id} was endorsed twice at the same sequence (double transfer)")]
    DoubleTransfer {
        /// The instrument.
        id: InstrumentId,
        /// The proof naming the key that signed twice, when both copies
        /// carry the conflicting links.
        proof: Option<Box<EquivocationProof>>,
    },
    /// Stored data broke an invariant.
    #[error("wallet data is inconsistent: {0}")]
    Inconsistent(String),
}

/// Money in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// ISO 4217 code.
    pub currency: String,
    /// Notes held and free to spend, in minor units.
    pub available: u64,
    /// Notes endorsed away whose receipt is not yet in, in minor units.
    pub pending_out: u64,
}

/// A wallet: account key, holder keys, instruments, history.
///
/// Protocol engines inside this crate extend it with their own `impl`
/// blocks, which is why the fields are crate-visible.
pub struct Wallet<S: WalletStore = SqliteStore> {
    pub(crate) store: S,
    pub(crate) sealer: Sealer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) account: PublicKey,
    pub(crate) registry: Option<PublicKey>,
    pub(crate) trust: Option<TrustList>,
    pub(crate) deny: DenyList,
    /// What the wallet accepts from a peer while nothing is reconciled.
    pub(crate) offline: OfflinePolicy,
}

impl<S: WalletStore> std::fmt::Debug for Wallet<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("account", &self.account)
            .field("registry", &self.registry)
            .field("trust_list_version", &self.trust.as_ref().map(TrustList::version))
            .field("sealer", &self.sealer)
            .finish_non_exhaustive()
    }
}

impl Wallet<SqliteStore> {
    /// Creates a wallet in a new SQLite file.
    pub fn create_at(
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WalletError> {
        Self::create(SqliteStore::open(path)?, keys, clock)
    }
    /// Writes a consistent backup of the wallet to a new file. Restoring an
    /// old backup and spending from it again is a double transfer, which
    /// reconciliation catches and attributes.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<(), WalletError> {
        Ok(self.store.backup_to(path)?)
    }

    /// Opens the wallet in an SQLite file.
    pub fn open_at(path: impl AsRef<Path>, keys: &dyn KeyProvider, clock: Arc<dyn Clock>) -> Result<Self, WalletError> {
        Self::open(SqliteStore::open(path)?, keys, clock)
    }
}

/// Whether `chain` carries, at the sequence `cert` registered, a link other
/// than the registered one: it is on a branch the registry did not
/// register (the certificate carries no links, so only its digest tells).
fn off_registered_branch(chain: &Instrument, cert: &Signed<RegisteredCertificate>) -> bool {
    let (at, registered) = (cert.body.sequence, cert.body.replaces);
    chain.links.iter().any(|l| l.body.sequence == at && l.digest() != registered)
}

impl<S: WalletStore> Wallet<S> {
    /// Creates a wallet in an empty store: a salt, the account key, and the
    /// check value that tells a wrong storage key at open.
    pub fn create(mut store: S, keys: &dyn KeyProvider, clock: Arc<dyn Clock>) -> Result<Self, WalletError> {
        if store.meta(META_SALT)?.is_some() {
            return Err(WalletError::AlreadyCreated);
        }
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let sealer = Sealer::new(&keys.storage_key(&salt)?);
        let account = SecretKey::generate(&mut OsRng);
        let public = account.public_key();
        let now = clock.now();
        let mut batch = WriteBatch::new();
        batch
            .push(Write::PutMeta(META_SALT.into(), salt.to_vec()))
            .push(Write::PutMeta(META_KEY_CHECK.into(), sealer.seal(KEY_CHECK_LABEL, KEY_CHECK_TEXT, &mut OsRng)))
            .push(Write::PutMeta(META_ACCOUNT.into(), public.0.to_vec()))
            .push(Write::InsertKey(KeyRecord {
                public,
                role: KeyRole::Account,
                sealed: sealer.seal_key(&account, &mut OsRng),
                created_at: now,
            }));
        store.apply(batch)?;
        Ok(Self {
            store,
            sealer,
            clock,
            account: public,
            registry: None,
            trust: None,
            deny: DenyList::empty(),
            offline: OfflinePolicy::DEFAULT,
        })
    }

    /// Opens a wallet created earlier with [`Wallet::create`].
    pub fn open(store: S, keys: &dyn KeyProvider, clock: Arc<dyn Clock>) -> Result<Self, WalletError> {
        let salt: [u8; 16] = store
            .meta(META_SALT)?
            .ok_or(WalletError::NotCreated)?
            .try_into()
            .map_err(|_| WalletError::Inconsistent("salt".into()))?;
        let sealer = Sealer::new(&keys.storage_key(&salt)?);
        let check = store.meta(META_KEY_CHECK)?.ok_or_else(|| WalletError::Inconsistent("key check".into()))?;
        match sealer.open(KEY_CHECK_LABEL, &check) {
            Ok(text) if text.as_slice() == KEY_CHECK_TEXT => {}
            _ => return Err(WalletError::WrongStorageKey),
        }
        let account = store
            .meta(META_ACCOUNT)?
            .and_then(|b| PublicKey::from_slice(&b))
            .ok_or_else(|| WalletError::Inconsistent("account key".into()))?;
        let registry = store.meta(META_REGISTRY)?.and_then(|b| PublicKey::from_slice(&b));
        let trust = match (registry, store.meta(META_TRUST_LIST)?) {
            (Some(reg), Some(bytes)) => Some(TrustList::verify(Signed::<TrustListBody>::from_bytes(&bytes)?, &reg)?),
            _ => None,
        };
        let deny = match (registry, store.meta(META_DENY_LIST)?) {
            (Some(reg), Some(bytes)) => {
                let signed = Signed::<DenyList>::from_bytes(&bytes)?;
                signed.verify(&reg).map_err(|_| WalletError::Inconsistent("deny list signature".into()))?;
                signed.body
            }
            _ => DenyList::empty(),
        };
        let offline = match store.meta(META_OFFLINE_POLICY)? {
            None => OfflinePolicy::DEFAULT,
            Some(bytes) => {
                decode_offline_policy(&bytes).ok_or_else(|| WalletError::Inconsistent("offline policy".into()))?
            }
        };
        Ok(Self { store, sealer, clock, account, registry, trust, deny, offline })
    }

    /// The account key: this wallet's identity at the registry.
    pub fn account_key(&self) -> PublicKey {
        self.account
    }

    /// The pinned registry key, if any.
    pub fn registry_key(&self) -> Option<PublicKey> {
        self.registry
    }

    /// The installed trust list, if any.
    pub fn trust_list(&self) -> Option<&TrustList> {
        self.trust.as_ref()
    }

    /// The installed deny list.
    pub fn deny_list(&self) -> &DenyList {
        &self.deny
    }

    /// The current time as the wallet's clock tells it.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The store, for protocol engines and inspection.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Pins the service provider's key. Once pinned it cannot change: a
    /// wallet that trusted one registry never silently trusts another.
    pub fn pin_registry(&mut self, key: PublicKey) -> Result<(), WalletError> {
        match self.registry {
            Some(existing) if existing == key => Ok(()),
            Some(existing) => Err(WalletError::RegistryMismatch(existing)),
            None => {
                self.store.apply(WriteBatch(vec![Write::PutMeta(META_REGISTRY.into(), key.0.to_vec())]))?;
                self.registry = Some(key);
                Ok(())
            }
        }
    }

    /// Installs a trust list signed by the pinned registry. An older version
    /// than the installed one is refused.
    pub fn install_trust_list(&mut self, bytes: &[u8]) -> Result<(), WalletError> {
        let registry = self.registry.ok_or(WalletError::NoRegistry)?;
        let list = TrustList::verify(Signed::<TrustListBody>::from_bytes(bytes)?, &registry)?;
        if let Some(current) = &self.trust
            && list.version() < current.version()
        {
            return Err(TrustError::Stale { installed: current.version(), offered: list.version() }.into());
        }
        self.store.apply(WriteBatch(vec![Write::PutMeta(META_TRUST_LIST.into(), bytes.to_vec())]))?;
        self.trust = Some(list);
        Ok(())
    }

    /// Installs a deny list signed by the pinned registry.
    pub fn install_deny_list(&mut self, bytes: &[u8]) -> Result<(), WalletError> {
        let registry = self.registry.ok_or(WalletError::NoRegistry)?;
        let signed = Signed::<DenyList>::from_bytes(bytes)?;
        signed.verify(&registry).map_err(|_| TrustError::BadSignature)?;
        if signed.body.version < self.deny.version {
            return Err(TrustError::Stale { installed: self.deny.version, offered: signed.body.version }.into());
        }
        self.store.apply(WriteBatch(vec![Write::PutMeta(META_DENY_LIST.into(), bytes.to_vec())]))?;
        self.deny = signed.body;
        Ok(())
    }

    /// What this wallet accepts from a peer while nothing is reconciled
    /// (DESIGN §2): a transfer or a payment that would put an instrument
    /// past `max_unreconciled_hops`, or a note worth more than
    /// `max_note_value`, is refused with `TransferError::OverOfflineLimit`.
    /// [`OfflinePolicy::DEFAULT`] until the app sets another.
    pub fn offline_policy(&self) -> OfflinePolicy {
        self.offline
    }

    /// Sets and stores the offline policy. At most
    /// [`MAX_LINKS`] hops, the longest chain the verifier takes.
    pub fn set_offline_policy(&mut self, policy: OfflinePolicy) -> Result<(), WalletError> {
        if policy.max_unreconciled_hops > MAX_LINKS {
            return Err(WalletError::BadPolicy(format!(
                "at most {} unreconciled hops, not {}",
                MAX_LINKS, policy.max_unreconciled_hops
            )));
        }
        let hops = policy.max_unreconciled_hops as u64;
        let bytes = [hops.to_be_bytes(), policy.max_note_value.to_be_bytes()].concat();
        self.store.apply(WriteBatch(vec![Write::PutMeta(META_OFFLINE_POLICY.into(), bytes)]))?;
        self.offline = policy;
        Ok(())
    }

    /// Makes a fresh holder key, sealed in the store, for an issuer or a
    /// sender to endorse an instrument to. Its private half never leaves.
    pub fn new_holder_key(&mut self) -> Result<PublicKey, WalletError> {
        let (public, write) = self.fresh_holder_key(self.now());
        self.store.apply(WriteBatch(vec![write]))?;
        Ok(public)
    }

    /// A fresh holder key and the write that stores it sealed, for callers
    /// that persist it in the same batch as the step that uses it.
    pub(crate) fn fresh_holder_key(&self, now: Timestamp) -> (PublicKey, Write) {
        let key = SecretKey::generate(&mut OsRng);
        let public = key.public_key();
        let sealed = self.sealer.seal_key(&key, &mut OsRng);
        (public, Write::InsertKey(KeyRecord { public, role: KeyRole::Holder, sealed, created_at: now }))
    }

    /// Signs the next link of `record` (held by one of this wallet's keys) to `new_holder`.
    pub(crate) fn sign_next_link(
        &self,
        record: &InstrumentRecord,
        new_holder: PublicKey,
        offer_id: ExchangeId,
        acceptance_id: ExchangeId,
        now: Timestamp,
    ) -> Result<Signed<crate::instrument::Endorsement>, WalletError> {
        let body = record.instrument.next_endorsement(new_holder, offer_id, acceptance_id, now);
        Ok(Signed::sign(body, &self.signer(&record.holder)?)?)
    }

    /// A signer for one of this wallet's keys. The key is unsealed for the
    /// signer's lifetime and zeroized when it drops.
    pub fn signer(&self, public: &PublicKey) -> Result<LocalSigner, WalletError> {
        let record = self.store.key(public)?.ok_or_else(|| WalletError::Inconsistent(format!("no key {public}")))?;
        let key = self.sealer.open_key(public, &record.sealed).map_err(|_| WalletError::WrongStorageKey)?;
        Ok(LocalSigner::new(key))
    }

    /// A verifier over the installed trust and deny lists.
    pub fn verifier(&self) -> Result<Verifier<'_>, WalletError> {
        Ok(Verifier::new(self.trust.as_ref().ok_or(WalletError::NoTrustList)?, &self.deny))
    }

    /// Imports an instrument from its encoded bytes (a file, an issuer's answer).
    pub fn import(&mut self, bytes: &[u8]) -> Result<InstrumentSummary, WalletError> {
        self.import_instrument(Instrument::from_bytes(bytes)?)
    }

    /// Imports an instrument issued or endorsed to one of this wallet's keys.
    /// It must pass the verifier; the history records it.
    pub fn import_instrument(&mut self, instrument: Instrument) -> Result<InstrumentSummary, WalletError> {
        let now = self.now();
        let verified = self.verifier()?.verify(&instrument, now)?;
        let id = verified.id;
        match self.store.key(&verified.holder)? {
            Some(k) if k.role == KeyRole::Holder => {}
            _ => return Err(WalletError::NotOurs(id)),
        }
        let existing = self.store.instrument(&id)?;
        // The new chain starts from a registered certificate whose
        // registered link is not the one our copy has at that sequence: ours
        // is on a branch the registry did not register, so the new chain is
        // neither stale to it nor a fork to refuse, whatever their
        // sequences. It is taken, and ours kept for the registry to prove
        // the double transfer with (found by the adversarial model: the
        // import used to overwrite the only evidence, and, when our copy of
        // the unregistered branch was as far along and passed on, to refuse
        // an honest transfer of the registered one as stale).
        let ours_unregistered = match (&existing, &instrument.registered) {
            (Some(old), Some(cert)) => off_registered_branch(&old.instrument, cert),
            _ => false,
        };
        if let Some(old) = existing.as_ref().filter(|_| !ours_unregistered) {
            let old_seq = old.instrument.sequence();
            if old.holding == Holding::Held && old.instrument == instrument {
                return Err(WalletError::AlreadyHeld(id));
            }
            // A chain that forks from our copy — whether it is behind, level
            // with or ahead of it — is a double transfer upstream, and its
            // evidence must not be lost behind "stale" or an overwrite
            // (each case found by the adversarial model). Provable from the
            // two chains: refused with the proof.
            if let Some(proof) = EquivocationProof::find(&old.instrument, &instrument) {
                return Err(WalletError::DoubleTransfer { id, proof: Some(Box::new(proof)) });
            }
            // A chain whose link at our certificate's sequence is not the
            // registered one forks at or below it. `find` cannot see it (the
            // certificate carries no links); the registry can, so the chain
            // is kept for it.
            let below_certificate =
                old.instrument.registered.as_ref().is_some_and(|cert| off_registered_branch(&instrument, cert));
            // Same point of the chain as a copy we hold, different tip: the
            // sender endorsed this sequence twice. (A registered certificate
            // that compacts the chain names the same tip, so it still
            // replaces it.)
            let level_fork = old_seq == verified.sequence
                && old.holding == Holding::Held
                && old.instrument.tip_digest() != verified.tip;
            if below_certificate || level_fork {
                self.keep_fork_evidence(instrument, now)?;
                return Err(WalletError::DoubleTransfer { id, proof: None });
            }
            if old_seq > verified.sequence || (old_seq == verified.sequence && old.holding != Holding::Held) {
                return Err(WalletError::Stale(id));
            }
        }
        let evidence = match &existing {
            Some(old) if ours_unregistered => self.fork_evidence_write(old.instrument.clone(), now)?,
            _ => None,
        };
        let (memo, counterparty) = self.arrival(&instrument);
        let record = InstrumentRecord {
            holder: verified.holder,
            holding: Holding::Held,
            uses_left: verified.state.uses_left,
            status: verified.state.status,
            exam_counter: existing.as_ref().map_or(0, |r| r.exam_counter),
            updated_at: now,
            instrument,
        };
        let history = HistoryEntry {
            seq: 0,
            time: now,
            direction: Direction::In,
            kind: verified.kind,
            instrument_id: id,
            amount: record.instrument.attributes().amount().cloned(),
            counterparty,
            exchange: record.instrument.links.last().map(|l| l.body.offer_id),
            memo,
        };
        let summary = record.summary();
        let write = if existing.is_some() { Write::UpdateInstrument(record) } else { Write::InsertInstrument(record) };
        let mut batch = WriteBatch(vec![write, Write::AppendHistory(history)]);
        batch.0.extend(evidence);
        self.store.apply(batch)?;
        Ok(summary)
    }

    /// Keeps a chain refused as a fork that this wallet cannot prove (its
    /// copy is a registered certificate, which carries only a digest of the
    /// registered link), for [`Wallet::reconcile_upload`]: the registry
    /// holds the registered link and builds the proof. The instruments are
    /// untouched. At most [`MAX_FORK_EVIDENCE`] chains are kept; past that
    /// the new one is dropped, so a flood of forks cannot push out the
    /// evidence kept first.
    fn keep_fork_evidence(&mut self, chain: Instrument, now: Timestamp) -> Result<(), WalletError> {
        if let Some(write) = self.fork_evidence_write(chain, now)? {
            self.store.apply(WriteBatch(vec![write]))?;
        }
        Ok(())
    }

    /// The write that keeps `chain` as fork evidence, or `None` when
    /// [`MAX_FORK_EVIDENCE`] chains are kept already.
    fn fork_evidence_write(&self, chain: Instrument, now: Timestamp) -> Result<Option<Write>, WalletError> {
        if self.store.fork_evidence()?.len() >= MAX_FORK_EVIDENCE {
            return Ok(None);
        }
        Ok(Some(Write::KeepForkEvidence(ForkEvidence { seq: 0, chain, kept_at: now })))
    }

    /// How an instrument came to us, for the history.
    fn arrival(&self, instrument: &Instrument) -> (String, Option<PublicKey>) {
        let name_of = |key: &PublicKey| self.trust.as_ref().and_then(|t| t.entry(key)).map(|e| e.name.clone());
        match instrument.links.len() {
            0 if instrument.registered.is_some() => ("registered by the service provider".into(), self.registry),
            0 => {
                let issuer = instrument.genesis.body.issuer;
                (format!("issued by {}", name_of(&issuer).unwrap_or_else(|| issuer.short())), Some(issuer))
            }
            n => {
                let from = if n >= 2 {
                    instrument.links[n - 2].body.new_holder
                } else if let Some(cert) = &instrument.registered {
                    cert.body.holder
                } else {
                    instrument.genesis.body.holder
                };
                (format!("received from holder {}", from.short()), Some(from))
            }
        }
    }

    /// List rows.
    pub fn instruments(&self, filter: InstrumentFilter) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.store.instruments(filter)?)
    }

    /// Tickets this wallet holds or has pending.
    pub fn tickets(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        self.of_kind(Kind::Ticket)
    }

    /// Notes this wallet holds or has pending.
    pub fn notes(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        self.of_kind(Kind::Note)
    }

    /// Coupons this wallet holds or has pending.
    pub fn coupons(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        self.of_kind(Kind::Coupon)
    }

    fn of_kind(&self, kind: Kind) -> Result<Vec<InstrumentSummary>, WalletError> {
        let mut rows = self.store.instruments(InstrumentFilter { kind: Some(kind), holding: None })?;
        rows.retain(|r| r.holding != Holding::Gone);
        Ok(rows)
    }

    /// Money per currency, in notes held and notes pending out.
    pub fn balance(&self) -> Result<Vec<Balance>, WalletError> {
        let mut sums: BTreeMap<String, Balance> = BTreeMap::new();
        for note in self.store.instruments(InstrumentFilter { kind: Some(Kind::Note), holding: None })? {
            let Some(Amount { currency, minor }) = note.amount else { continue };
            let entry = sums.entry(currency.clone()).or_insert(Balance { currency, available: 0, pending_out: 0 });
            match note.holding {
                Holding::Held if note.status == Status::Active => entry.available += minor,
                Holding::PendingOut => entry.pending_out += minor,
                _ => {}
            }
        }
        Ok(sums.into_values().collect())
    }

    /// The newest `limit` history lines, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, WalletError> {
        Ok(self.store.history(limit)?)
    }

    /// One instrument's full record.
    pub fn instrument(&self, id: &InstrumentId) -> Result<InstrumentRecord, WalletError> {
        self.store.instrument(id)?.ok_or(WalletError::UnknownInstrument(*id))
    }

    /// The encoded instrument, to hand to another party or save to a file.
    pub fn export(&self, id: &InstrumentId) -> Result<Vec<u8>, WalletError> {
        Ok(self.instrument(id)?.instrument.to_bytes())
    }

    /// Runs the verifier on a held instrument, for this wallet's key.
    pub fn verify(&self, id: &InstrumentId) -> Result<VerifiedInstrument, WalletError> {
        let record = self.instrument(id)?;
        Ok(self.verifier()?.verify_for_holder(&record.instrument, &record.holder, self.now())?)
    }

    /// Endorses a held instrument to `new_holder` for the exchange named by
    /// `offer_id` and `acceptance_id`. The instrument becomes pending-out in
    /// the same write as the history line, before the caller can send the
    /// link anywhere; from then on it cannot be presented or offered again.
    pub fn endorse(
        &mut self,
        id: &InstrumentId,
        new_holder: PublicKey,
        offer_id: ExchangeId,
        acceptance_id: ExchangeId,
    ) -> Result<Instrument, WalletError> {
        let mut record = self.instrument(id)?;
        if record.holding != Holding::Held {
            return Err(WalletError::NotHeld { id: *id, holding: record.holding.as_str() });
        }
        let trust = self.trust.as_ref().ok_or(WalletError::NoTrustList)?;
        let now = self.now();
        let attributes = record.instrument.attributes();
        if !attributes.transferable()
            && !trust.certifies(&new_holder, Role::Issuer, now)
            && !trust.certifies(&new_holder, Role::Merchant, now)
        {
            return Err(WalletError::NotTransferable(*id));
        }
        let link = self.sign_next_link(&record, new_holder, offer_id, acceptance_id, now)?;
        let history = HistoryEntry {
            seq: 0,
            time: now,
            direction: Direction::Out,
            kind: record.instrument.kind(),
            instrument_id: *id,
            amount: attributes.amount().cloned(),
            counterparty: Some(new_holder),
            exchange: Some(offer_id),
            memo: format!("endorsed to holder {}", new_holder.short()),
        };
        record.instrument = record.instrument.with_link(link);
        record.holding = Holding::PendingOut;
        record.updated_at = now;
        let out = record.instrument.clone();
        self.store.apply(WriteBatch(vec![Write::UpdateInstrument(record), Write::AppendHistory(history)]))?;
        Ok(out)
    }

    /// Marks a pending-out instrument as passed on, once the receiver's
    /// receipt is in. Idempotent.
    pub fn confirm_transferred(&mut self, id: &InstrumentId) -> Result<(), WalletError> {
        let mut record = self.instrument(id)?;
        match record.holding {
            Holding::Gone => Ok(()),
            Holding::Held => Err(WalletError::NotHeld { id: *id, holding: "held, never endorsed" }),
            Holding::PendingOut => {
                record.holding = Holding::Gone;
                record.updated_at = self.now();
                self.store.apply(WriteBatch(vec![Write::UpdateInstrument(record)]))?;
                Ok(())
            }
        }
    }
}

/// The stored form of an [`OfflinePolicy`]; `None` when it is not 16 bytes
/// or names more hops than [`MAX_LINKS`].
fn decode_offline_policy(bytes: &[u8]) -> Option<OfflinePolicy> {
    let (hops, value) = bytes.split_at_checked(8)?;
    let hops = usize::try_from(u64::from_be_bytes(hops.try_into().ok()?)).ok()?;
    let max_note_value = u64::from_be_bytes(value.try_into().ok()?);
    (hops <= MAX_LINKS).then_some(OfflinePolicy { max_unreconciled_hops: hops, max_note_value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::{Issuer, RegistryAuthority};
    use crate::clock::ManualClock;
    use crate::crypto::Signer;
    use crate::instrument::{Attributes, NoteAttributes};
    use crate::sealing::{StaticKeyProvider, StorageKey};
    use crate::trust::TrustEntry;

    #[test]
    fn a_second_endorsement_of_the_same_sequence_is_refused_with_a_proof() {
        let clock = Arc::new(ManualClock::new(10));
        let keys = StaticKeyProvider::new(StorageKey::from_bytes([3; 32]));
        let sp = RegistryAuthority::new(LocalSigner::from_seed(&[1; 32]));
        let bank = Issuer::new(LocalSigner::from_seed(&[2; 32]));
        let entry = TrustEntry { key: bank.public_key(), role: Role::Issuer, name: "b".into(), not_after: 1_000 };
        let list = sp.trust_list(1, vec![entry], 0).expect("signs").to_bytes();
        let mut wallet = Wallet::create(SqliteStore::in_memory().expect("store"), &keys, clock).expect("creates");
        wallet.pin_registry(sp.public_key()).expect("pins");
        wallet.install_trust_list(&list).expect("installs");

        // A cheating sender holds a note and endorses it twice to us.
        let cheat = LocalSigner::from_seed(&[9; 32]);
        let note = NoteAttributes { amount: Amount::new("EUR", 100), expires_at: 1_000 };
        let issued =
            bank.issue_with_id(InstrumentId([5; 16]), Attributes::Note(note), cheat.public_key(), 1).expect("issues");
        let copy = |to: PublicKey| {
            let body = issued.next_endorsement(to, ExchangeId::random(&mut OsRng), ExchangeId::NONE, 2);
            issued.with_link(Signed::sign(body, &cheat).expect("signs"))
        };
        let (first, second) =
            (copy(wallet.new_holder_key().expect("key")), copy(wallet.new_holder_key().expect("key")));
        wallet.import_instrument(first.clone()).expect("first copy is accepted");
        let history = wallet.history(10).expect("history");
        match wallet.import_instrument(second) {
            Err(WalletError::DoubleTransfer { proof: Some(proof), .. }) => {
                assert_eq!(proof.verify(), Ok(cheat.public_key()));
            }
            other => panic!("expected a double transfer, got {other:?}"),
        }
        assert_eq!(wallet.instrument(&first.id()).expect("kept").instrument, first, "the first copy is kept");
        assert_eq!(wallet.history(10).expect("history"), history, "nothing recorded");
    }
}
