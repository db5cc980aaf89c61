//! Crash injection on the registry side (issue 7, item 2): reconciliation
//! of a multi-hop transfer chain, a sale and its refund (with e-money
//! withdrawn and redeemed around it), a sale between wallets refunded to
//! its buyer on her claim (`refund_sale`), and a gift through the registry
//! that is accepted or declined. Every write the registry's store makes during a
//! flow is, in turn, the point where the registry "crashes" (`CrashingStore`
//! in `common/crashing.rs`): before its transaction commits, or just after
//! it commits and before the answer leaves. The crashed registry answers
//! nothing more; a supervisor (as systemd would) drops it and its store and
//! starts a new registry on the same database file and the same address.
//! The wallets are real `Wallet`s on SQLite, talking to the registry over
//! HTTP through the real client (`WalletSession`), which retries a request
//! the registry did not answer (each attempt signed with a fresh nonce: a
//! retry after a crash that stored the nonce is not a replay). After the
//! flow every wallet syncs once more, as an app does on its next start.
//!
//! Checked after every run, over fresh random keys each time:
//!
//! - no instrument is lost and none is valid in two wallets: the ticket is
//!   held by exactly the wallet the reference model names, it is gone from
//!   every other wallet, and the registered-ticket list names that wallet's
//!   key;
//! - money is conserved: on the registry, issued − redeemed = active notes
//!   and paid in − paid out = balances + active notes; the notes the
//!   wallets hold add up to the active notes; and the user's value (balance
//!   plus notes held) is what the flow says it is (paid out and paid in
//!   exactly once);
//! - the registered state equals the reference model by meaning: holder,
//!   sequence, status, uses left and the former-holder chain, each key
//!   named by the wallet that owns it; no gift left pending.
//!
//! A failure names the crash point: the flow step and the store method
//! (`bob answers / settle_gift AfterCommit`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::crashing::{CrashPlan, CrashingStore, When};
use rand::RngCore as _;
use rand::rngs::OsRng;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::{Holding, SqliteStore, WalletStore as _};
use tessera_core::{ExchangeId, InstrumentId, LocalSigner, PublicKey, Signer, SystemClock, Wallet};
use tessera_registry::client::{RegistryClient, Retry, WalletSession};
use tessera_registry::embedded::{EmbeddedRegistry, signers_from_seed, start_on};
use tessera_registry::{PostgresRegistry, RegistryStore, SqliteRegistry, wire};

const PRICE: u64 = 2500;
const TOP_UP: u64 = 10_000;

/// Where the registry keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// A SQLite file in the run's directory.
    Sqlite,
    /// A fresh schema of the PostgreSQL at `TESSERA_TEST_POSTGRES_URL`.
    Postgres,
}

enum Database {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

/// The registry "process": restarted by a supervisor thread when its store
/// crashes, on the same file and address.
struct Node {
    db: Database,
    seed: [u8; 32],
    addr: SocketAddr,
    running: Mutex<Option<EmbeddedRegistry>>,
    plan: Mutex<Arc<CrashPlan>>,
    /// The crash that struck, once the supervisor restarted the registry.
    crash: Mutex<Option<String>>,
    stop: AtomicBool,
}

impl Node {
    fn start(db: Database, seed: [u8; 32], plan: Arc<CrashPlan>) -> Arc<Self> {
        let registry = Self::open(&db, &seed, plan.clone(), SocketAddr::from(([127, 0, 0, 1], 0)));
        let node = Arc::new(Self {
            db,
            seed,
            addr: registry.addr,
            running: Mutex::new(Some(registry)),
            plan: Mutex::new(plan),
            crash: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let supervised = node.clone();
        std::thread::spawn(move || supervised.supervise());
        node
    }

    fn open(db: &Database, seed: &[u8; 32], plan: Arc<CrashPlan>, addr: SocketAddr) -> EmbeddedRegistry {
        let store: Arc<dyn RegistryStore> = match db {
            Database::Sqlite(path) => Arc::new(SqliteRegistry::open(path).unwrap()),
            Database::Postgres { url, schema } => Arc::new(PostgresRegistry::open_in_schema(url, schema).unwrap()),
        };
        start_on(Arc::new(CrashingStore::new(store, plan)), seed, addr).unwrap()
    }

    /// Restarts the registry once its store crashed: everything of the old
    /// process (service, store, connection) is dropped first.
    fn supervise(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            let crashed = self.plan.lock().unwrap().crashed();
            if let Some(point) = crashed {
                drop(self.running.lock().unwrap().take());
                let fresh = CrashPlan::new(None);
                *self.plan.lock().unwrap() = fresh.clone();
                *self.running.lock().unwrap() = Some(Self::open(&self.db, &self.seed, fresh, self.addr));
                *self.crash.lock().unwrap() = Some(point);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(self.running.lock().unwrap().take());
    }

    fn step(&self, step: &str) {
        self.plan.lock().unwrap().set_step(step);
    }

    fn store(&self) -> Arc<dyn RegistryStore> {
        // The current process's store (a fresh plan after a restart).
        self.running.lock().unwrap().as_ref().map(|r| r.registry.store().clone()).unwrap()
    }

    fn issuer_key(&self) -> PublicKey {
        signers_from_seed(&self.seed).1.public_key()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    /// alice → bob → carol offline, then each reconciles.
    Reconcile,
    /// Withdraw notes, buy a ticket with them, refund it, refresh one of
    /// the refund's notes, redeem the other.
    SaleAndRefund,
    /// alice leaves a ticket at the registry for bob, who accepts.
    GiftAccepted,
    /// The same, bob declines: it returns to alice's return key.
    GiftDeclined,
    /// alice sells a ticket to carol for notes, then passes it to bob
    /// instead; bob reconciles, carol's claim gets her payment back.
    SaleClaimRefunded,
}

/// One run: a registry, three wallets, an organiser and its event.
struct Run {
    _dir: tempfile::TempDir,
    node: Arc<Node>,
    plan: Arc<CrashPlan>,
    client: RegistryClient,
    wallets: Vec<(&'static str, Wallet<SqliteStore>)>,
    organiser: LocalSigner,
}

impl Run {
    fn new(crash_at: Option<(usize, When)>, backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let plan = CrashPlan::new(crash_at);
        let db = match backend {
            Backend::Sqlite => Database::Sqlite(dir.path().join("registry.db")),
            Backend::Postgres => {
                static RUNS: AtomicU32 = AtomicU32::new(0);
                let url = std::env::var("TESSERA_TEST_POSTGRES_URL").expect(
                    "TESSERA_TEST_POSTGRES_URL must name a PostgreSQL database (scripts/test.d/40-registry.sh sets it)",
                );
                let schema = format!("crash_{}_{}", std::process::id(), RUNS.fetch_add(1, Ordering::SeqCst));
                Database::Postgres { url, schema }
            }
        };
        let node = Node::start(db, seed, plan.clone());
        let url = format!("http://{}", node.addr);
        let retry =
            Retry { attempts: 60, first_delay: Duration::from_millis(5), max_delay: Duration::from_millis(100) };
        let client = RegistryClient::new(&url).with_retry(retry);
        let organiser = LocalSigner::generate(&mut OsRng);
        let (operator, _) = signers_from_seed(&seed);
        common::open_finals(&client, &operator, &organiser, &["north"], PRICE);
        let keys = StaticKeyProvider::new(StorageKey::generate(&mut OsRng));
        let mut wallets = Vec::new();
        for name in ["alice", "bob", "carol"] {
            let path = dir.path().join(format!("{name}.db"));
            let mut w = Wallet::create_at(path, &keys, Arc::new(SystemClock)).unwrap();
            WalletSession::new(&mut w, client.clone()).sync().unwrap();
            wallets.push((name, w));
        }
        Self { _dir: dir, node, plan, client, wallets, organiser }
    }

    fn wallet(&mut self, name: &str) -> &mut Wallet<SqliteStore> {
        &mut self.wallets.iter_mut().find(|(n, _)| *n == name).unwrap().1
    }

    fn session(&mut self, name: &str) -> WalletSession<'_, SqliteStore> {
        let client = self.client.clone();
        WalletSession::new(self.wallet(name), client)
    }

    /// A ticket the organiser issues to a fresh key of `name`'s wallet.
    fn issue_ticket(&mut self, name: &str) -> InstrumentId {
        let holder = self.wallet(name).new_holder_key().unwrap();
        let r: wire::InstrumentsResponse = self
            .client
            .post(
                "/issue/ticket",
                &self.organiser,
                &wire::IssueTicketRequest {
                    event_id: "finals".into(),
                    zone: "north".into(),
                    seat: None,
                    holder: holder.to_hex(),
                },
            )
            .unwrap();
        let bytes = wire::unb64(&r.instruments[0]).unwrap();
        self.wallet(name).import(&bytes).unwrap().id
    }

    /// The name of whoever owns `key`.
    fn who(&self, key: &PublicKey) -> String {
        if *key == self.node.issuer_key() {
            return "issuer".into();
        }
        for (name, w) in &self.wallets {
            if w.store().key(key).unwrap().is_some() {
                return (*name).into();
            }
        }
        format!("stranger {}", key.short())
    }

    /// The ticket on the registered-ticket list, by meaning.
    fn registered(&self, id: &InstrumentId) -> Registered {
        let store = self.node.store();
        let row = store.instrument(id).unwrap().expect("the instrument is on the registered list");
        let former = store
            .former_holders(id)
            .unwrap()
            .into_iter()
            .map(|f| (self.who(&f.holder), f.from_sequence, f.until_sequence, f.previous_from))
            .collect();
        Registered {
            holder: self.who(&row.holder),
            sequence: row.sequence,
            status: row.status.as_str().into(),
            uses_left: row.uses_left,
            former,
        }
    }

    /// The wallets holding `id`; every other wallet has it gone or never had it.
    fn holders(&self, id: &InstrumentId) -> Vec<&'static str> {
        let mut held = Vec::new();
        for (name, w) in &self.wallets {
            match w.store().instrument(id).unwrap().map(|r| r.holding) {
                Some(Holding::Held) => held.push(*name),
                None | Some(Holding::Gone) => {}
                Some(other) => panic!("{id} is {other:?} in {name}'s wallet after every sync"),
            }
        }
        held
    }

    /// The value of the notes `name`'s wallet holds.
    fn notes_held(&self, name: &str) -> u64 {
        let w = &self.wallets.iter().find(|(n, _)| *n == name).unwrap().1;
        w.notes()
            .unwrap()
            .into_iter()
            .filter(|n| n.holding == Holding::Held)
            .map(|n| n.amount.map_or(0, |a| a.minor))
            .sum()
    }

    /// Every wallet syncs, as an app does at its next start.
    fn everyone_syncs(&mut self) {
        for name in ["alice", "bob", "carol"] {
            self.node.step(&format!("{name} syncs again"));
            self.session(name).sync().unwrap();
        }
    }

    fn crash_name(&self) -> String {
        self.node.crash.lock().unwrap().clone().unwrap_or_else(|| "no crash".into())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.node.stop.store(true, Ordering::SeqCst);
    }
}

/// An instrument's registered state, keys named by their owner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registered {
    holder: String,
    sequence: u32,
    status: String,
    uses_left: u16,
    /// (holder, from, until, previous from), newest first.
    former: Vec<(String, u32, u32, Option<u32>)>,
}

fn former(chain: &[(&str, u32, u32, Option<u32>)]) -> Vec<(String, u32, u32, Option<u32>)> {
    chain.iter().map(|(h, f, u, p)| ((*h).to_owned(), *f, *u, *p)).collect()
}

/// A flow step: the store's writes until the next step are named after it.
fn step<T>(run: &mut Run, name: &str, f: impl FnOnce(&mut Run) -> T) -> T {
    run.node.step(name);
    f(run)
}

fn reconcile(run: &mut Run) {
    let ticket = run.issue_ticket("alice");
    let bob_key = run.wallet("bob").new_holder_key().unwrap();
    let to_bob = run.wallet("alice").endorse(&ticket, bob_key, ExchangeId::NONE, ExchangeId::NONE).unwrap();
    run.wallet("bob").import_instrument(to_bob).unwrap();
    run.wallet("alice").confirm_transferred(&ticket).unwrap();
    let carol_key = run.wallet("carol").new_holder_key().unwrap();
    let to_carol = run.wallet("bob").endorse(&ticket, carol_key, ExchangeId::NONE, ExchangeId::NONE).unwrap();
    run.wallet("carol").import_instrument(to_carol).unwrap();
    run.wallet("bob").confirm_transferred(&ticket).unwrap();
    run.plan.arm();
    for name in ["carol", "bob", "alice"] {
        step(run, &format!("{name} syncs"), |r| r.session(name).sync().unwrap());
    }
    run.everyone_syncs();
    let crash = run.crash_name();
    assert_eq!(run.holders(&ticket), vec!["carol"], "{crash}");
    let expected = Registered {
        holder: "carol".into(),
        sequence: 2,
        status: "active".into(),
        uses_left: 1,
        former: former(&[("bob", 1, 1, Some(0)), ("alice", 0, 0, None)]),
    };
    assert_eq!(run.registered(&ticket), expected, "{crash}");
    let carol = run.wallet("carol").instrument(&ticket).unwrap().instrument;
    assert!(carol.links.is_empty() && carol.registered.is_some(), "carol's copy is not certified ({crash})");
}

fn sale_and_refund(run: &mut Run) {
    let mut payment = [0u8; 8];
    OsRng.fill_bytes(&mut payment);
    run.session("alice").top_up("EUR", TOP_UP, &format!("card-{}", hex::encode(payment))).unwrap();
    run.plan.arm();
    step(run, "alice withdraws", |r| r.session("alice").withdraw("EUR", 3000).unwrap());
    let ticket = step(run, "alice buys", |r| r.session("alice").buy("finals", "north", None).unwrap());
    let notes = step(run, "alice refunds", |r| r.session("alice").refund(&ticket).unwrap());
    // The refund's 500 note, split into 200 + 200 + 100.
    let five_hundred = notes.iter().copied().find(|n| {
        run.wallet("alice").instrument(n).unwrap().instrument.attributes().amount().map(|a| a.minor) == Some(500)
    });
    let five_hundred = five_hundred.expect("the refund gives 2000 + 500");
    step(run, "alice refreshes", |r| r.session("alice").refresh(&[five_hundred], &[200, 200, 100]).unwrap());
    let two_thousand: Vec<InstrumentId> = notes.into_iter().filter(|n| *n != five_hundred).collect();
    // A redemption that committed before the crash is answered, when
    // retried, with the balance: the retry credits nothing twice.
    let balance_before = run.node.store().balance(&run.wallet("alice").account_key(), "EUR").unwrap();
    let redeemed = step(run, "alice redeems", |r| r.session("alice").redeem(&two_thousand, false));
    let crash = run.crash_name();
    let balance = redeemed.unwrap_or_else(|e| panic!("redeem failed: {e} ({crash})"));
    assert_eq!(balance, balance_before + 2000, "credited once ({crash})");
    run.everyone_syncs();
    let crash = run.crash_name();
    assert!(run.holders(&ticket).is_empty(), "the refunded ticket is still held ({crash})");
    let expected = Registered {
        holder: "issuer".into(),
        sequence: 1,
        status: "refunded".into(),
        uses_left: 1,
        former: former(&[("alice", 0, 0, None)]),
    };
    assert_eq!(run.registered(&ticket), expected, "{crash}");
    let store = run.node.store();
    let totals = store.money_totals("EUR").unwrap();
    assert_eq!(totals.issued - totals.redeemed, totals.active_notes, "{crash}: {totals:?}");
    assert_eq!(totals.paid_in - totals.paid_out, totals.balances + totals.active_notes, "{crash}: {totals:?}");
    // The sale paid the organiser once; the refund paid it back once.
    assert_eq!((totals.paid_in, totals.paid_out), (TOP_UP + PRICE, PRICE), "{crash}: {totals:?}");
    let held = run.notes_held("alice");
    assert_eq!(held, totals.active_notes, "notes lost or valid twice ({crash}): {totals:?}");
    let account = run.wallet("alice").account_key();
    let balance = store.balance(&account, "EUR").unwrap();
    assert_eq!(balance + held, TOP_UP, "alice's value changed ({crash}): balance {balance}, notes {held}");
}

fn gift(run: &mut Run, accept: bool) {
    let ticket = run.issue_ticket("alice");
    run.plan.arm();
    let bob = run.wallet("bob").account_key();
    step(run, "alice gifts", |r| r.session("alice").gift(&ticket, &bob).unwrap());
    let pending = step(run, "bob lists gifts", |r| r.session("bob").pending_gifts().unwrap());
    assert_eq!(pending.len(), 1, "{} pending gifts for one ({})", pending.len(), run.crash_name());
    step(run, "bob answers", |r| r.session("bob").answer_gift(&pending[0].gift_id, accept).unwrap());
    run.everyone_syncs();
    let crash = run.crash_name();
    let (holder, return_key) = if accept { ("bob", "alice") } else { ("alice", "alice") };
    assert_eq!(run.holders(&ticket), vec![holder], "{crash}");
    let expected = Registered {
        holder: holder.into(),
        sequence: 2,
        status: "active".into(),
        uses_left: 1,
        former: former(&[("issuer", 1, 1, Some(0)), (return_key, 0, 0, None)]),
    };
    assert_eq!(run.registered(&ticket), expected, "{crash}");
    let left = run.node.store().pending_gifts(&bob).unwrap();
    assert!(left.is_empty(), "a gift still pending after its answer ({crash})");
}

/// alice offers her ticket to carol for `PRICE`; carol accepts and pays with
/// notes (the acceptance never reaches alice). Returns the ticket and carol's
/// claim, as the sale-claim item of an upload.
fn offer_to_carol(run: &mut Run) -> (InstrumentId, wire::UploadItemJson) {
    use tessera_core::transfer::evidence::SaleClaim;
    use tessera_core::transfer::{Offer, OfferBody, Terms, TransferMessage};
    use tessera_core::{Clock as _, Wire as _};
    let mut payment = [0u8; 8];
    OsRng.fill_bytes(&mut payment);
    let ticket = run.issue_ticket("alice");
    let mut carol = run.session("carol");
    carol.top_up("EUR", PRICE, &format!("card-{}", hex::encode(payment))).unwrap();
    carol.withdraw("EUR", PRICE).unwrap();
    let alice = run.wallet("alice");
    let item = alice.instrument(&ticket).unwrap().instrument;
    let holder = alice.signer(&item.holder()).unwrap();
    let payee_keys = vec![alice.new_holder_key().unwrap(), alice.new_holder_key().unwrap()];
    let now = SystemClock.now();
    let mut offer_id = [0u8; 16];
    OsRng.fill_bytes(&mut offer_id);
    let body = OfferBody {
        offer_id: ExchangeId(offer_id),
        sender: alice.account_key(),
        items: vec![item],
        terms: Terms::Sale { price: tessera_core::Amount::new("EUR", PRICE), payee_keys, change: vec![] },
        created_at: now - 1,
        expires_at: now + 600,
    };
    let offer = Offer::sign(body, &alice.signer(&alice.account_key()).unwrap(), &[&holder as &dyn Signer]).unwrap();
    let carol = run.wallet("carol");
    carol.handle_transfer(&TransferMessage::Offer(offer.clone()).to_bytes()).unwrap();
    let sent = carol.accept_offer(offer.id()).unwrap().send.unwrap();
    let TransferMessage::Acceptance(acceptance) = TransferMessage::from_bytes(&sent).unwrap() else {
        panic!("expected an acceptance")
    };
    let claim = wire::b64(&SaleClaim { offer, acceptance }.to_bytes());
    (ticket, wire::UploadItemJson::Sale { claim, double_sale: None })
}

fn sale_claim_refunded(run: &mut Run) {
    let (ticket, claim) = offer_to_carol(run);
    let bob_key = run.wallet("bob").new_holder_key().unwrap();
    let to_bob = run.wallet("alice").endorse(&ticket, bob_key, ExchangeId::NONE, ExchangeId::NONE).unwrap();
    run.wallet("bob").import_instrument(to_bob).unwrap();
    run.wallet("alice").confirm_transferred(&ticket).unwrap();
    run.plan.arm();
    step(run, "bob syncs", |r| r.session("bob").sync().unwrap());
    let carol_account = run.wallet("carol").account_key();
    let carol = run.wallet("carol").signer(&carol_account).unwrap();
    let answer: wire::ReconcileResponse = step(run, "carol claims", |r| {
        r.client.post("/reconcile", &carol, &wire::ReconcileRequest { items: vec![claim] }).unwrap()
    });
    match &answer.results[..] {
        [wire::ItemResultJson::Sale { verdict, instruments, .. }] => {
            assert_eq!(verdict, "refunded", "{}", run.crash_name());
            for note in instruments {
                run.wallet("carol").import(&wire::unb64(note).unwrap()).unwrap();
            }
        }
        other => panic!("{other:?} ({})", run.crash_name()),
    }
    // The notes came with the answer or, when it was lost, come at the next sync.
    run.everyone_syncs();
    let crash = run.crash_name();
    assert_eq!(run.holders(&ticket), vec!["bob"], "{crash}");
    let expected = Registered {
        holder: "bob".into(),
        sequence: 1,
        status: "active".into(),
        uses_left: 1,
        former: former(&[("alice", 0, 0, None)]),
    };
    assert_eq!(run.registered(&ticket), expected, "{crash}");
    let totals = run.node.store().money_totals("EUR").unwrap();
    assert_eq!(totals.issued - totals.redeemed, totals.active_notes, "{crash}: {totals:?}");
    assert_eq!(totals.paid_in - totals.paid_out, totals.balances + totals.active_notes, "{crash}: {totals:?}");
    assert_eq!((run.notes_held("carol"), run.notes_held("alice")), (PRICE, 0), "{crash}: {totals:?}");
    assert_eq!(totals.active_notes, PRICE, "notes lost or valid twice ({crash}): {totals:?}");
}

/// Runs `flow` with the crash at write `at` (or none), checks the model,
/// and returns the writes the flow made, named.
fn check(flow: Flow, crash_at: Option<(usize, When)>, backend: Backend) -> (Vec<String>, Option<String>) {
    let mut run = Run::new(crash_at, backend);
    match flow {
        Flow::Reconcile => reconcile(&mut run),
        Flow::SaleAndRefund => sale_and_refund(&mut run),
        Flow::GiftAccepted => gift(&mut run, true),
        Flow::GiftDeclined => gift(&mut run, false),
        Flow::SaleClaimRefunded => sale_claim_refunded(&mut run),
    }
    let crash = run.node.crash.lock().unwrap().clone();
    assert_eq!(crash.is_some(), crash_at.is_some(), "the planned crash did not strike ({crash:?})");
    (run.plan.log(), crash)
}

/// Every write of every flow at each of `timings`, each run on fresh random
/// keys; returns the runs and the distinct points.
fn every_crash_point(backend: Backend, timings: &[When]) -> (usize, BTreeSet<String>) {
    let mut runs = 0;
    let mut points = BTreeSet::new();
    for flow in [Flow::Reconcile, Flow::SaleAndRefund, Flow::GiftAccepted, Flow::GiftDeclined, Flow::SaleClaimRefunded]
    {
        let (writes, _) = check(flow, None, backend);
        assert!(!writes.is_empty(), "{flow:?} writes nothing");
        for at in 1..=writes.len() {
            for &when in timings {
                let (_, crash) = check(flow, Some((at, when)), backend);
                points.insert(format!("{flow:?}: {}", crash.unwrap()));
                runs += 1;
            }
        }
    }
    eprintln!(
        "{backend:?}: {runs} crash runs over {} distinct crash points:\n{}",
        points.len(),
        points.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    (runs, points)
}

/// ≥ 50 runs on SQLite (section rust).
#[test]
fn every_crash_point_of_reconciliation_refund_and_gift_keeps_the_invariants() {
    let (runs, _) = every_crash_point(Backend::Sqlite, &[When::BeforeCommit, When::AfterCommit]);
    assert!(runs >= 50, "only {runs} crash runs");
}

/// The same on PostgreSQL, each run in its own schema, reopened from it;
/// after the commit only (before it, the wrapper never reaches the store, so
/// the SQLite runs say the same), to keep section registry short.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn every_crash_point_on_postgresql_keeps_the_invariants() {
    let (runs, _) = every_crash_point(Backend::Postgres, &[When::AfterCommit]);
    assert!(runs >= 50, "only {runs} crash runs");
}
