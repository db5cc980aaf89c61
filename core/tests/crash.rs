//! Crash injection (issue 7, item 2) for transfer and presentation: every
//! persisted step of a gift, a sale and a gate tap is interrupted in turn by
//! a store that "crashes" at its Nth write batch — before the batch commits
//! or just after — and the process is dropped, the wallet reopened from its
//! SQLite file, and the flow resumed the way an app does it
//! (`resume_transfers`, the user accepting again, `transfer_tick` after the
//! expiry). Links may lose what was in flight. Over at least 50 seeds:
//!
//! - no instrument is lost: each ticket and note is held by exactly one
//!   wallet in the end, and the other has it as passed on or never had it;
//! - none is valid in two wallets (never held by both);
//! - money is conserved: the notes held add up to what was issued;
//! - a sale is all or nothing: the buyer has the ticket exactly when the
//!   seller has the payment;
//! - a tap interrupted at the wallet's write leaves the wallet's use count
//!   no lower than the gate's decision allows (it never loses a use it did
//!   not spend, and a use the gate admitted is not given back twice).
//!
//! The crash points are named by the writes of the batch (for example
//! `PutPending+UpdateInstrument+AppendHistory`), so a failure says which
//! step broke.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::OsRng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::{
    GateContext, GateEvent, GateExamination, GatePolicy, Instruction, Outcome, PriorUse, ReentryPolicy, WalletCard,
};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::{
    ExaminationRecord, ForkEvidence, HistoryEntry, Holding, InstrumentFilter, InstrumentRecord, InstrumentSummary,
    KeyRecord, KeyRole, PendingRecord, SqliteStore, StoreError, WalletStore, Write, WriteBatch,
};
use tessera_core::transfer::{OfferTerms, Role as TransferRole, TransferEvent};
use tessera_core::{
    Amount, Attributes, Clock, DenyList, ExchangeId, InstrumentId, LocalSigner, ManualClock, NoteAttributes, PublicKey,
    Role, Signer, TicketAttributes, Timestamp, TrustEntry, TrustList, Verifier, Wallet,
};

const T0: Timestamp = 1_800_000_000;

/// When the injected crash strikes relative to the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// The process dies before the batch commits: nothing of it is stored.
    BeforeCommit,
    /// The batch commits, then the process dies before using the result.
    AfterCommit,
}

/// Counts write batches shared by every wallet of a run; crashes at one.
#[derive(Debug, Default)]
struct CrashPlan {
    batches: AtomicUsize,
    crash_at: Option<(usize, When)>,
    crashed: std::sync::Mutex<Option<String>>,
}

/// A `WalletStore` that passes everything to SQLite and crashes as planned.
#[derive(Debug)]
struct CrashingStore {
    inner: SqliteStore,
    plan: Arc<CrashPlan>,
}

/// The step a batch persists, named by its writes.
fn step_name(batch: &WriteBatch) -> String {
    batch
        .0
        .iter()
        .map(|w| match w {
            Write::PutMeta(..) => "PutMeta",
            Write::InsertKey(_) => "InsertKey",
            Write::InsertInstrument(_) => "InsertInstrument",
            Write::UpdateInstrument(_) => "UpdateInstrument",
            Write::PutPending(_) => "PutPending",
            Write::DeletePending(_) => "DeletePending",
            Write::AppendHistory(_) => "AppendHistory",
            Write::AppendExamination(_) => "AppendExamination",
            Write::KeepForkEvidence(_) => "KeepForkEvidence",
            Write::DropForkEvidence(_) => "DropForkEvidence",
        })
        .collect::<Vec<_>>()
        .join("+")
}

impl WalletStore for CrashingStore {
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta(key)
    }
    fn key(&self, public: &PublicKey) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.key(public)
    }
    fn keys(&self, role: KeyRole) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.keys(role)
    }
    fn instrument(&self, id: &InstrumentId) -> Result<Option<InstrumentRecord>, StoreError> {
        self.inner.instrument(id)
    }
    fn instruments(&self, filter: InstrumentFilter) -> Result<Vec<InstrumentSummary>, StoreError> {
        self.inner.instruments(filter)
    }
    fn pending(&self, id: &ExchangeId) -> Result<Option<PendingRecord>, StoreError> {
        self.inner.pending(id)
    }
    fn all_pending(&self) -> Result<Vec<PendingRecord>, StoreError> {
        self.inner.all_pending()
    }
    fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(limit)
    }
    fn examinations(&self, instrument: Option<&InstrumentId>) -> Result<Vec<ExaminationRecord>, StoreError> {
        self.inner.examinations(instrument)
    }
    fn fork_evidence(&self) -> Result<Vec<ForkEvidence>, StoreError> {
        self.inner.fork_evidence()
    }
    fn apply(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        if self.plan.crashed.lock().unwrap().is_some() {
            // A dead process writes nothing more.
            return Err(StoreError::Backend("the process has crashed".into()));
        }
        let n = self.plan.batches.fetch_add(1, Ordering::SeqCst) + 1;
        match self.plan.crash_at {
            Some((at, when)) if at == n => {
                let name = step_name(&batch);
                if when == When::AfterCommit {
                    self.inner.apply(batch)?;
                }
                *self.plan.crashed.lock().unwrap() = Some(format!("{name} {when:?} (batch {n})"));
                Err(StoreError::Backend("crash injected".into()))
            }
            _ => self.inner.apply(batch),
        }
    }
}

/// A registry, an issuer, a gate, a clock and a directory of wallet files.
struct Venue {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    gate: LocalSigner,
    trust: TrustList,
    trust_bytes: Vec<u8>,
    keys: StaticKeyProvider,
}

impl Venue {
    fn new() -> Self {
        let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
        let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
        let gate = LocalSigner::generate(&mut OsRng);
        let entries = vec![
            TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "Arena".into(), not_after: T0 + 99_999 },
            TrustEntry { key: gate.public_key(), role: Role::Gate, name: "Gate".into(), not_after: T0 + 99_999 },
        ];
        let signed = registry.trust_list(1, entries, T0).unwrap();
        let trust = TrustList::verify(signed.clone(), &registry.public_key()).unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(T0)),
            registry,
            issuer,
            gate,
            trust,
            trust_bytes: tessera_core::Wire::to_bytes(&signed),
            keys: StaticKeyProvider::new(StorageKey::generate(&mut OsRng)),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// A new wallet file, set up without crashes.
    fn create(&self, name: &str) {
        let mut w = Wallet::create_at(self.path(name), &self.keys, self.clock.clone()).unwrap();
        w.pin_registry(self.registry.public_key()).unwrap();
        w.install_trust_list(&self.trust_bytes).unwrap();
    }

    /// Opens a wallet file behind the crashing store.
    fn open(&self, name: &str, plan: &Arc<CrashPlan>) -> Wallet<CrashingStore> {
        let store = CrashingStore { inner: SqliteStore::open(self.path(name)).unwrap(), plan: plan.clone() };
        Wallet::open(store, &self.keys, self.clock.clone()).unwrap()
    }

    fn ticket(&self, wallet: &mut Wallet<CrashingStore>) -> InstrumentId {
        let holder = wallet.new_holder_key().unwrap();
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: "final".into(),
            title: "Cup final".into(),
            zone: "north".into(),
            seat: None,
            guidance: None,
            valid_from: T0 - 100,
            valid_until: T0 + 99_999,
            transferable: true,
            uses: 2,
            face_price: Some(Amount::new("EUR", 4000)),
        });
        wallet.import_instrument(self.issuer.issue(attributes, holder, T0 - 10, &mut OsRng).unwrap()).unwrap().id
    }

    fn note(&self, wallet: &mut Wallet<CrashingStore>, minor: u64) -> InstrumentId {
        let holder = wallet.new_holder_key().unwrap();
        let attributes =
            Attributes::Note(NoteAttributes { amount: Amount::new("EUR", minor), expires_at: T0 + 99_999 });
        wallet.import_instrument(self.issuer.issue(attributes, holder, T0 - 10, &mut OsRng).unwrap()).unwrap().id
    }
}

#[derive(Debug, Clone, Copy)]
enum Flow {
    Gift,
    Sale,
    Tap,
}

/// One run: two wallets (`seller` 0, `buyer` 1), their instruments, and the plan.
struct Run {
    venue: Venue,
    plan: Arc<CrashPlan>,
    wallets: Vec<Wallet<CrashingStore>>,
    names: [&'static str; 2],
    ticket: InstrumentId,
    notes: Vec<InstrumentId>,
    queue: Vec<(usize, Vec<u8>)>,
    /// Drop what is in flight when a side crashes (the link breaks too).
    drop_link: bool,
    reopened: bool,
    /// The crash that struck, kept across the restart.
    crash: Option<String>,
}

impl Run {
    fn new(crash_at: Option<(usize, When)>, drop_link: bool) -> Self {
        let venue = Venue::new();
        let setup = Arc::new(CrashPlan::default());
        venue.create("seller");
        venue.create("buyer");
        let mut seller = venue.open("seller", &setup);
        let mut buyer = venue.open("buyer", &setup);
        let ticket = venue.ticket(&mut seller);
        let notes = vec![venue.note(&mut buyer, 2000), venue.note(&mut buyer, 2000)];
        drop((seller, buyer));
        let plan = Arc::new(CrashPlan { crash_at, ..CrashPlan::default() });
        let wallets = vec![venue.open("seller", &plan), venue.open("buyer", &plan)];
        Self {
            venue,
            plan,
            wallets,
            names: ["seller", "buyer"],
            ticket,
            notes,
            queue: Vec::new(),
            drop_link,
            reopened: false,
            crash: None,
        }
    }

    fn crashed(&self) -> bool {
        self.plan.crashed.lock().unwrap().is_some()
    }

    /// After a crash: every wallet process restarts (the crashed one lost
    /// its memory; the peer reconnects), with the crash plan spent.
    fn restart(&mut self) {
        if self.reopened || !self.crashed() {
            return;
        }
        self.reopened = true;
        self.crash = self.plan.crashed.lock().unwrap().clone();
        if self.drop_link {
            self.queue.clear();
        }
        let fresh = Arc::new(CrashPlan::default());
        self.wallets.clear();
        for name in self.names {
            self.wallets.push(self.venue.open(name, &fresh));
        }
        self.plan = fresh;
        for side in 0..2 {
            self.resume(side);
        }
    }

    /// What an app does on start: send again what is due, and ask the user
    /// about offers still open (the user says yes again).
    fn resume(&mut self, side: usize) {
        for r in self.wallets[side].resume_transfers().unwrap() {
            self.queue.push((1 - side, r.bytes));
        }
        for t in self.wallets[side].transfers().unwrap() {
            if t.role == TransferRole::Receiver
                && t.state == "offered"
                && let Ok(step) = self.wallets[side].accept_offer(t.exchange)
            {
                self.queue.extend(step.send.map(|m| (1 - side, m)));
            }
        }
    }

    fn after(
        &mut self,
        side: usize,
        step: Result<tessera_core::transfer::Step, tessera_core::transfer::TransferError>,
    ) {
        if self.crashed() && !self.reopened {
            return;
        }
        let Ok(step) = step else { return };
        self.queue.extend(step.send.map(|m| (1 - side, m)));
        for event in step.events {
            if let TransferEvent::OfferReceived(summary) = event {
                let accepted = self.wallets[side].accept_offer(summary.offer_id);
                self.after(side, accepted);
            }
        }
    }

    /// Delivers until nothing moves, restarting after the crash.
    fn drive(&mut self) {
        for _ in 0..100 {
            self.restart();
            let Some((to, bytes)) = (if self.queue.is_empty() { None } else { Some(self.queue.remove(0)) }) else {
                return;
            };
            let step = self.wallets[to].handle_transfer(&bytes);
            self.after(to, step);
        }
        panic!("the transfer does not settle");
    }

    fn transfer(&mut self, terms: OfferTerms) {
        let offer = self.wallets[0].offer_transfer(&[self.ticket], terms, self.venue.clock.now() + 600);
        match offer {
            Ok((_, step)) => self.after(0, Ok(step)),
            Err(_) => assert!(self.crashed(), "the offer failed without a crash"),
        }
        self.drive();
        // Reconnect once more (both resume), then let every offer expire.
        self.restart();
        for side in 0..2 {
            self.resume(side);
        }
        self.drive();
        self.venue.clock.advance(3600);
        for side in 0..2 {
            for step in self.wallets[side].transfer_tick().unwrap() {
                self.queue.extend(step.send.map(|m| (1 - side, m)));
            }
        }
        self.drive();
    }

    fn holding(&self, side: usize, id: &InstrumentId) -> Option<Holding> {
        self.wallets[side].store().instrument(id).unwrap().map(|r| r.holding)
    }

    /// Held by exactly one wallet; the other has it gone or never had it.
    fn held_by(&self, id: &InstrumentId) -> usize {
        let holders: Vec<usize> = (0..2).filter(|&s| self.holding(s, id) == Some(Holding::Held)).collect();
        assert_eq!(holders.len(), 1, "{id} is held by {holders:?} ({})", self.crash_name());
        let other = 1 - holders[0];
        assert!(
            matches!(self.holding(other, id), None | Some(Holding::Gone)),
            "{id} is {:?} in the other wallet ({})",
            self.holding(other, id),
            self.crash_name()
        );
        holders[0]
    }

    fn crash_name(&self) -> String {
        self.crash.clone().unwrap_or_else(|| "no crash".into())
    }

    fn money(&self) -> u64 {
        (0..2)
            .flat_map(|s| self.wallets[s].notes().unwrap())
            .filter(|n| n.holding == Holding::Held)
            .map(|n| n.amount.as_ref().map_or(0, |a| a.minor))
            .sum()
    }
}

/// One tap at the gate; a crash in the wallet's write of the examination.
fn tap(run: &mut Run) {
    let wallet = run.wallets.remove(0);
    let mut card = WalletCard::new(wallet);
    card.choose(Some(run.ticket));
    let deny = DenyList::empty();
    let mut ledger: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
    let policy = GatePolicy {
        event_id: "final".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    };
    let mut admitted = 0u16;
    for record in 1..=2u64 {
        let now = run.venue.clock.now();
        let mut exam =
            GateExamination::start(&run.venue.gate, policy.clone(), ExchangeId::random(&mut OsRng), record, now)
                .unwrap();
        while let Some(command) = exam.next_command() {
            let answer = card.process_apdu(&command);
            let ctx = GateContext { verifier: Verifier::new(&run.venue.trust, &deny), ledger: &ledger, now };
            match exam.on_response(&answer, &run.venue.gate, &ctx) {
                Ok(GateEvent::Decided(e)) => {
                    if e.outcome == Outcome::Admitted {
                        admitted += 1;
                        let entry = ledger.entry(e.instrument_id).or_insert(PriorUse {
                            uses_consumed: 0,
                            holder: e.holder,
                            instrument: e.presentation.instrument.clone(),
                        });
                        entry.uses_consumed += e.presentation.answer.body.change.uses_before - e.uses_left;
                    }
                }
                Ok(GateEvent::Finished) | Err(_) => break,
                Ok(GateEvent::Continue) => {}
            }
        }
        if run.crashed() && !run.reopened {
            // The phone died mid-tap: reopen its wallet, tap again.
            drop(card);
            run.reopened = true;
            run.crash = run.plan.crashed.lock().unwrap().clone();
            run.plan = Arc::new(CrashPlan::default());
            card = WalletCard::new(run.venue.open("seller", &run.plan));
            card.choose(Some(run.ticket));
        }
    }
    let record = card.wallet().store().instrument(&run.ticket).unwrap().unwrap();
    // The gate's count is the truth: the wallet never claims more uses
    // than remain, and never fewer than the gate has left it.
    let gate_left = 2 - admitted.min(2);
    assert!(record.uses_left >= gate_left, "the wallet lost a use ({})", run.crash_name());
    assert!(admitted <= 2, "the gate admitted more uses than the ticket has ({})", run.crash_name());
    let examinations = card.wallet().store().examinations(Some(&run.ticket)).unwrap().len();
    assert!(examinations <= usize::from(admitted), "an examination logged twice ({})", run.crash_name());
    run.wallets.insert(0, card.into_wallet());
}

/// Runs `flow` with the crash at batch `at` (or none), checks the invariants,
/// and returns how many batches the run wrote (to enumerate crash points)
/// and the step the crash struck.
fn check(flow: Flow, crash_at: Option<(usize, When)>, drop_link: bool) -> (usize, String) {
    let mut run = Run::new(crash_at, drop_link);
    let money_before = run.money();
    match flow {
        Flow::Gift => run.transfer(OfferTerms::Gift),
        Flow::Sale => run.transfer(OfferTerms::Sale(Amount::new("EUR", 4000))),
        Flow::Tap => tap(&mut run),
    }
    let name = run.crash_name();
    assert_eq!(crash_at.is_some(), run.reopened, "the planned crash did not strike ({name})");
    assert_eq!(run.money(), money_before, "money not conserved ({name})");
    let ticket_side = run.held_by(&run.ticket);
    let paid: Vec<usize> = run.notes.clone().iter().map(|n| run.held_by(n)).collect();
    match flow {
        Flow::Sale => {
            let sold = ticket_side == 1;
            assert!(
                paid.iter().all(|&s| s == if sold { 0 } else { 1 }),
                "a sale half done: ticket with {ticket_side}, notes with {paid:?} ({name})"
            );
        }
        Flow::Gift => assert!(paid.iter().all(|&s| s == 1), "a gift moved the buyer's notes ({name})"),
        Flow::Tap => assert_eq!(ticket_side, 0),
    }
    (run.plan.batches.load(Ordering::SeqCst), name)
}

/// Every crash point of every flow, before and after the commit, with the
/// link kept or dropped: ≥ 50 runs, each on fresh random keys.
#[test]
fn every_crash_point_of_transfer_and_presentation_keeps_the_invariants() {
    let mut runs = 0;
    let mut steps = std::collections::BTreeSet::new();
    for flow in [Flow::Gift, Flow::Sale, Flow::Tap] {
        let (batches, _) = check(flow, None, false);
        assert!(batches > 0, "{flow:?} writes nothing");
        for at in 1..=batches {
            for when in [When::BeforeCommit, When::AfterCommit] {
                for drop_link in [false, true] {
                    let (_, step) = check(flow, Some((at, when)), drop_link);
                    let step = step.split_once(" (batch").map_or(step.as_str(), |(s, _)| s).to_owned();
                    steps.insert(format!("{flow:?}: {step}"));
                    runs += 1;
                }
            }
        }
    }
    eprintln!(
        "{runs} crash runs over {} distinct steps:\n{}",
        steps.len(),
        steps.into_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(runs >= 50, "only {runs} crash runs");
}

#[test]
fn step_names_say_what_a_batch_persists() {
    assert_eq!(step_name(&WriteBatch(vec![Write::DeletePending(ExchangeId::NONE)])), "DeletePending");
}
