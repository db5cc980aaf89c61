//! A [`RegistryStore`] that passes every call to a real store and "crashes"
//! at its Nth write call: either before the write (nothing of it is stored;
//! the process is gone) or just after it commits (stored, but the caller
//! never sees the result). After the crash every call fails, the way a dead
//! process answers nothing; the test drops the registry and reopens the
//! database.
//!
//! A crash point is named by the store method and the flow step the test
//! was in (`carol syncs / apply_chains AfterCommit`), so a failure says
//! which step broke. Used by `registry/tests/crash.rs`; as a test helper it
//! is part of no shipped build.
//!
//! Every method of the trait is delegated here: a new `RegistryStore`
//! method must be added below (through `write` when it changes anything),
//! or this file stops compiling.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tessera_core::{Digest, ExchangeId, InstrumentId, PublicKey, Status, Timestamp};
use tessera_registry::store::{
    BagSettled, ChainOutcome, ChainUpdate, DoubleSaleRecord, EquivocationOutcome, EventRow, ExaminationReport,
    ExaminationRow, FormerHolder, GiftRow, InstrumentRow, LedgerEntry, LinkRecord, ModificationRow, MoneyTotals,
    NoteExchange, Notice, Party, ProofKind, ProofRecord, RegistryStore, SaleRefund, Settlement, StoreError,
    StoreResult, StoredPrefix,
};

/// When the injected crash strikes relative to the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    /// The process dies before the write's transaction commits.
    BeforeCommit,
    /// The transaction commits, then the process dies before answering.
    AfterCommit,
}

/// Counts write calls (of every registry sharing the plan) and crashes at
/// one of them.
#[derive(Debug, Default)]
pub struct CrashPlan {
    /// Writes are counted (and the crash can strike) only once armed, so a
    /// test's setup is not among the crash points.
    armed: std::sync::atomic::AtomicBool,
    writes: AtomicUsize,
    crash_at: Option<(usize, When)>,
    /// The flow step the test is in, for naming the crash point.
    step: Mutex<String>,
    /// The crash point that struck.
    crashed: Mutex<Option<String>>,
    /// Every write as `step / method`, in order (for enumerating points).
    log: Mutex<Vec<String>>,
}

impl CrashPlan {
    /// A plan that crashes at write `at` (1-based), or never.
    pub fn new(crash_at: Option<(usize, When)>) -> Arc<Self> {
        Arc::new(Self { crash_at, ..Self::default() })
    }

    /// Starts counting writes.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Names the step the following writes belong to.
    pub fn set_step(&self, step: &str) {
        *self.step.lock().unwrap() = step.to_owned();
    }

    /// The crash point, once it struck.
    pub fn crashed(&self) -> Option<String> {
        self.crashed.lock().unwrap().clone()
    }

    /// Writes made so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every write made, as `step / method`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// The wrapper.
pub struct CrashingStore {
    inner: Arc<dyn RegistryStore>,
    plan: Arc<CrashPlan>,
}

impl CrashingStore {
    /// Wraps `inner` under `plan`.
    pub fn new(inner: Arc<dyn RegistryStore>, plan: Arc<CrashPlan>) -> Self {
        Self { inner, plan }
    }

    fn dead() -> StoreError {
        StoreError::Backend("the registry process has crashed".into())
    }

    /// A read: passed on unless the process is dead.
    fn read<T>(&self, f: impl FnOnce(&dyn RegistryStore) -> StoreResult<T>) -> StoreResult<T> {
        if self.plan.crashed.lock().unwrap().is_some() {
            return Err(Self::dead());
        }
        f(self.inner.as_ref())
    }

    /// A write (one transaction of the real store): counted, and the crash
    /// strikes before or after it when it is the planned one.
    fn write<T>(&self, method: &str, f: impl FnOnce(&dyn RegistryStore) -> StoreResult<T>) -> StoreResult<T> {
        if self.plan.crashed.lock().unwrap().is_some() {
            return Err(Self::dead());
        }
        if !self.plan.armed.load(Ordering::SeqCst) {
            return f(self.inner.as_ref());
        }
        let n = self.plan.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let mut point = format!("{} / {method}", self.plan.step.lock().unwrap());
        {
            // The second write of the same method in one step (the nonce of
            // `/reconcile`, then of `/sync`) is its own point.
            let mut log = self.plan.log.lock().unwrap();
            let before = log.iter().filter(|p| p.split(" #").next() == Some(point.as_str())).count();
            if before > 0 {
                point = format!("{point} #{}", before + 1);
            }
            log.push(point.clone());
        }
        match self.plan.crash_at {
            Some((at, when)) if at == n => {
                if when == When::AfterCommit {
                    // Whatever the write answered, the caller never sees it.
                    let _ = f(self.inner.as_ref());
                }
                *self.plan.crashed.lock().unwrap() = Some(format!("{point} {when:?}"));
                Err(StoreError::Backend(format!("crash injected at {point} {when:?}")))
            }
            _ => f(self.inner.as_ref()),
        }
    }
}

impl RegistryStore for CrashingStore {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn insert_instrument(&self, row: &InstrumentRow) -> StoreResult<bool> {
        self.write("insert_instrument", |s| s.insert_instrument(row))
    }
    fn instrument(&self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>> {
        self.read(|s| s.instrument(id))
    }
    fn links(&self, id: &InstrumentId) -> StoreResult<Vec<LinkRecord>> {
        self.read(|s| s.links(id))
    }
    fn former_holders(&self, id: &InstrumentId) -> StoreResult<Vec<FormerHolder>> {
        self.read(|s| s.former_holders(id))
    }
    fn stored_prefixes(&self, wanted: &[(InstrumentId, u32, u32)]) -> StoreResult<Vec<Option<StoredPrefix>>> {
        self.read(|s| s.stored_prefixes(wanted))
    }
    fn apply_chains(&self, updates: &[ChainUpdate], now: Timestamp) -> StoreResult<Vec<ChainOutcome>> {
        self.write("apply_chains", |s| s.apply_chains(updates, now))
    }
    fn set_status(
        &self,
        id: &InstrumentId,
        holder: &PublicKey,
        from: Status,
        to: Status,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write("set_status", |s| s.set_status(id, holder, from, to, now))
    }
    fn record_proof(
        &self,
        kind: ProofKind,
        record: &ProofRecord,
        deny: bool,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<EquivocationOutcome> {
        self.write("record_proof", |s| s.record_proof(kind, record, deny, notices, now))
    }
    fn proofs(&self, kind: ProofKind, id: &InstrumentId) -> StoreResult<Vec<ProofRecord>> {
        self.read(|s| s.proofs(kind, id))
    }
    fn flagged(&self, key: &PublicKey) -> StoreResult<Option<String>> {
        self.read(|s| s.flagged(key))
    }
    fn deny(&self, id: &InstrumentId, reason: &str, now: Timestamp) -> StoreResult<u64> {
        self.write("deny", |s| s.deny(id, reason, now))
    }
    fn deny_changes_since(&self, version: u64) -> StoreResult<(u64, Vec<(InstrumentId, u64)>)> {
        self.read(|s| s.deny_changes_since(version))
    }
    fn use_nonce(&self, key: &PublicKey, nonce: &[u8], now: Timestamp, forget_before: Timestamp) -> StoreResult<bool> {
        self.write("use_nonce", |s| s.use_nonce(key, nonce, now, forget_before))
    }
    fn put_party(&self, party: &Party) -> StoreResult<u64> {
        self.write("put_party", |s| s.put_party(party))
    }
    fn parties(&self) -> StoreResult<Vec<Party>> {
        self.read(|s| s.parties())
    }
    fn trust_version(&self) -> StoreResult<u64> {
        self.read(|s| s.trust_version())
    }
    fn top_up(
        &self,
        account: &PublicKey,
        amount: &tessera_core::Amount,
        reference: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write("top_up", |s| s.top_up(account, amount, reference, now))
    }
    fn exchange_notes(&self, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64> {
        self.write("exchange_notes", |s| s.exchange_notes(exchange, now))
    }
    fn balance(&self, account: &PublicKey, currency: &str) -> StoreResult<u64> {
        self.read(|s| s.balance(account, currency))
    }
    fn ledger_entry(&self, reference: &str) -> StoreResult<Option<LedgerEntry>> {
        self.read(|s| s.ledger_entry(reference))
    }
    fn money_totals(&self, currency: &str) -> StoreResult<MoneyTotals> {
        self.read(|s| s.money_totals(currency))
    }
    fn put_event(&self, event: &EventRow) -> StoreResult<bool> {
        self.write("put_event", |s| s.put_event(event))
    }
    fn event(&self, event_id: &str) -> StoreResult<Option<EventRow>> {
        self.read(|s| s.event(event_id))
    }
    fn events(&self) -> StoreResult<Vec<EventRow>> {
        self.read(|s| s.events())
    }
    fn put_gift(&self, gift: &GiftRow, notice: &Notice) -> StoreResult<()> {
        self.write("put_gift", |s| s.put_gift(gift, notice))
    }
    fn gift(&self, gift_id: &[u8; 16]) -> StoreResult<Option<GiftRow>> {
        self.read(|s| s.gift(gift_id))
    }
    fn pending_gifts(&self, recipient: &PublicKey) -> StoreResult<Vec<GiftRow>> {
        self.read(|s| s.pending_gifts(recipient))
    }
    fn settle_gift(&self, gift_id: &[u8; 16], state: &str, holder: &PublicKey) -> StoreResult<bool> {
        self.write("settle_gift", |s| s.settle_gift(gift_id, state, holder))
    }
    fn settle_bag(
        &self,
        gate: &PublicKey,
        bag_number: u64,
        digest: &Digest,
        records: &[ExaminationRow],
        now: Timestamp,
    ) -> StoreResult<BagSettled> {
        self.write("settle_bag", |s| s.settle_bag(gate, bag_number, digest, records, now))
    }
    fn settlement(&self, gate: &PublicKey) -> StoreResult<Settlement> {
        self.read(|s| s.settlement(gate))
    }
    fn admitted_answers(&self, ids: &[InstrumentId]) -> StoreResult<Vec<(InstrumentId, Vec<u8>)>> {
        self.read(|s| s.admitted_answers(ids))
    }
    fn report_examination(&self, report: &ExaminationReport, now: Timestamp) -> StoreResult<(bool, InstrumentRow)> {
        self.write("report_examination", |s| s.report_examination(report, now))
    }
    fn examination_reports(&self, id: &InstrumentId) -> StoreResult<Vec<ExaminationReport>> {
        self.read(|s| s.examination_reports(id))
    }
    fn put_modification(&self, m: &ModificationRow, notices: &[Notice]) -> StoreResult<()> {
        self.write("put_modification", |s| s.put_modification(m, notices))
    }
    fn modification(&self, id: &[u8; 16]) -> StoreResult<Option<ModificationRow>> {
        self.read(|s| s.modification(id))
    }
    fn settle_modification(&self, id: &[u8; 16], state: &str) -> StoreResult<bool> {
        self.write("settle_modification", |s| s.settle_modification(id, state))
    }
    fn refund_sale(&self, refund: &SaleRefund, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64> {
        self.write("refund_sale", |s| s.refund_sale(refund, exchange, now))
    }
    fn refunded_sales(&self, offers: &[ExchangeId]) -> StoreResult<Vec<ExchangeId>> {
        self.read(|s| s.refunded_sales(offers))
    }
    fn record_double_sale(&self, record: &DoubleSaleRecord, notices: &[Notice], now: Timestamp) -> StoreResult<bool> {
        self.write("record_double_sale", |s| s.record_double_sale(record, notices, now))
    }
    fn double_sales(&self, offer: &ExchangeId) -> StoreResult<Vec<DoubleSaleRecord>> {
        self.read(|s| s.double_sales(offer))
    }
    fn replace_instrument(
        &self,
        exchange: &NoteExchange,
        replaced: &InstrumentId,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<()> {
        self.write("replace_instrument", |s| s.replace_instrument(exchange, replaced, notices, now))
    }
    fn push_notice(&self, notice: &Notice) -> StoreResult<u64> {
        self.write("push_notice", |s| s.push_notice(notice))
    }
    fn notices(&self, recipients: &[PublicKey], after: u64) -> StoreResult<Vec<Notice>> {
        self.read(|s| s.notices(recipients, after))
    }
    fn dump(&self) -> StoreResult<String> {
        self.read(|s| s.dump())
    }
}
