#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::evidence::{DoubleSaleProof, SaleClaim};
use super::testing::{Peer, T0, World};
use super::*;
use crate::clock::Clock;
use crate::codec::Wire;
use crate::crypto::Signer;
use crate::instrument::{Endorsement, Signed};
use crate::proof::EquivocationProof;
use crate::store::{Holding, InstrumentFilter};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

const A: usize = 0;
const B: usize = 1;

/// What the receiving user answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    Decline,
    Ignore,
}

/// Both wallets, the messages in flight, and what went wrong.
struct Sim {
    _dir: tempfile::TempDir,
    world: World,
    peers: [Peer; 2],
    queue: VecDeque<(usize, Vec<u8>)>,
    errors: Vec<TransferError>,
    events: Vec<(usize, TransferEvent)>,
    answer: Answer,
    /// Crash side `.0` right after its `.1`-th successful engine call.
    crash_at: Option<(usize, usize)>,
    calls: [usize; 2],
    crashed: bool,
    /// On a crash, the link breaks too: everything in flight is lost.
    crash_drops_link: bool,
}

impl Sim {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let world = World::new(dir.path());
        let peers = [world.peer("a"), world.peer("b")];
        Self {
            _dir: dir,
            world,
            peers,
            queue: VecDeque::new(),
            errors: Vec::new(),
            events: Vec::new(),
            answer: Answer::Accept,
            crash_at: None,
            calls: [0, 0],
            crashed: false,
            crash_drops_link: false,
        }
    }

    fn wallet(&mut self, side: usize) -> &mut crate::Wallet<crate::store::SqliteStore> {
        &mut self.peers[side].wallet
    }

    /// Routes the result of an engine call on `side`.
    fn after(&mut self, side: usize, result: Result<Step, TransferError>) {
        let step = match result {
            Ok(step) => step,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        self.calls[side] += 1;
        if !self.crashed && self.crash_at == Some((side, self.calls[side])) {
            // The step is persisted; its message and events die with the process.
            self.crashed = true;
            self.peers[side].reopen();
            if self.crash_drops_link {
                self.queue.clear();
            }
            return;
        }
        if let Some(bytes) = step.send {
            self.queue.push_back((1 - side, bytes));
        }
        for event in step.events {
            if let TransferEvent::OfferReceived(summary) = &event {
                self.answer_offer(side, summary.offer_id);
            }
            self.events.push((side, event));
        }
    }

    fn answer_offer(&mut self, side: usize, offer_id: ExchangeId) {
        let result = match self.answer {
            Answer::Accept => self.wallet(side).accept_offer(offer_id),
            Answer::Decline => self.wallet(side).decline_offer(offer_id, "no thanks"),
            Answer::Ignore => return,
        };
        self.after(side, result);
    }

    fn offer(&mut self, items: &[InstrumentId], terms: OfferTerms) -> ExchangeId {
        let expires = self.world.clock.now() + 600;
        let result = self.wallet(A).offer_transfer(items, terms, expires);
        let (id, step) = result.unwrap();
        self.after(A, Ok(step));
        id
    }

    fn deliver(&mut self, to: usize, bytes: Vec<u8>) {
        let result = self.wallet(to).handle_transfer(&bytes);
        self.after(to, result);
    }

    /// Delivers everything in flight, in order, reliably (bounded).
    fn run(&mut self) {
        for _ in 0..1000 {
            let Some((to, bytes)) = self.queue.pop_front() else { return };
            self.deliver(to, bytes);
        }
        panic!("the exchange did not settle");
    }

    /// What a reopened app does: resend, and ask the user again about
    /// offers still waiting for an answer.
    fn retry(&mut self, side: usize) {
        for r in self.wallet(side).resume_transfers().unwrap() {
            self.queue.push_back((1 - side, r.bytes));
        }
        let waiting: Vec<ExchangeId> = self
            .wallet(side)
            .transfers()
            .unwrap()
            .into_iter()
            .filter(|t| t.role == Role::Receiver && t.state == "offered")
            .map(|t| t.exchange)
            .collect();
        for id in waiting {
            self.answer_offer(side, id);
        }
    }

    /// Retries on both sides until every exchange is over.
    fn settle(&mut self) {
        for _ in 0..20 {
            self.run();
            let open =
                |w: &crate::Wallet<crate::store::SqliteStore>| w.transfers().unwrap().iter().any(|t| !t.is_final);
            if !open(&self.peers[A].wallet) && !open(&self.peers[B].wallet) {
                return;
            }
            self.retry(A);
            self.retry(B);
        }
        panic!("exchanges still open after retries: {:?}", self.wallet(A).transfers().unwrap());
    }

    fn holding(&self, side: usize, id: &InstrumentId) -> Option<Holding> {
        self.peers[side].wallet.store().instrument(id).unwrap().map(|r| r.holding)
    }

    fn held_eur(&self, side: usize) -> u64 {
        self.peers[side].wallet.balance().unwrap().iter().filter(|b| b.currency == "EUR").map(|b| b.available).sum()
    }

    /// Exactly one wallet holds every instrument either has seen, and none
    /// is left pending-out.
    fn assert_conserved(&self) {
        let mut all = BTreeMap::new();
        for side in [A, B] {
            for s in self.peers[side].wallet.instruments(InstrumentFilter::default()).unwrap() {
                all.entry(s.id).or_insert_with(Vec::new).push((side, s.holding));
            }
        }
        for (id, holdings) in all {
            let held = holdings.iter().filter(|(_, h)| *h == Holding::Held).count();
            assert_eq!(held, 1, "instrument {id} held {held} times: {holdings:?}");
            assert!(
                holdings.iter().all(|(_, h)| *h != Holding::PendingOut),
                "instrument {id} left pending-out: {holdings:?}"
            );
        }
    }
}

/// The four kinds of exchange the schedules and crashes run over.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Gift,
    Payment,
    SaleWithChange,
    MultiSale,
}

struct Setup {
    items: Vec<InstrumentId>,
    /// Total EUR in both wallets.
    money: u64,
    /// What the buyer should hold in EUR afterwards, and the seller.
    expect_eur: (u64, u64),
}

fn setup(sim: &mut Sim, scenario: Scenario) -> (Setup, OfferTerms) {
    let world = &sim.world;
    let [a, b] = &mut sim.peers;
    match scenario {
        Scenario::Gift => {
            let t = world.ticket(a, "1");
            (Setup { items: vec![t], money: 0, expect_eur: (0, 0) }, OfferTerms::Gift)
        }
        Scenario::Payment => {
            let notes = world.notes(a, &[500, 200]);
            (Setup { items: notes, money: 700, expect_eur: (700, 0) }, OfferTerms::Gift)
        }
        Scenario::SaleWithChange => {
            let t = world.ticket(a, "2");
            world.notes(a, &[500, 200, 100]);
            world.notes(b, &[1000, 1000]);
            let setup = Setup { items: vec![t], money: 2800, expect_eur: (500, 2300) };
            (setup, OfferTerms::Sale(crate::Amount::new("EUR", 1500)))
        }
        Scenario::MultiSale => {
            let t1 = world.ticket(a, "3");
            let t2 = world.ticket(a, "4");
            world.notes(b, &[2000, 1000, 500]);
            let setup = Setup { items: vec![t1, t2], money: 3500, expect_eur: (500, 3000) };
            (setup, OfferTerms::Sale(crate::Amount::new("EUR", 3000)))
        }
    }
}

fn scenario_of(n: u64) -> Scenario {
    [Scenario::Gift, Scenario::Payment, Scenario::SaleWithChange, Scenario::MultiSale][(n % 4) as usize]
}

/// After everything settled: the items are with B, the money adds up, nothing doubled or lost.
fn assert_completed(sim: &Sim, setup: &Setup) {
    sim.assert_conserved();
    for id in &setup.items {
        assert_eq!(sim.holding(B, id), Some(Holding::Held), "item {id} not with the receiver");
        assert_eq!(sim.holding(A, id), Some(Holding::Gone), "item {id} not gone from the sender");
    }
    assert_eq!(sim.held_eur(A) + sim.held_eur(B), setup.money, "money created or lost");
    assert_eq!((sim.held_eur(B), sim.held_eur(A)), setup.expect_eur);
}

fn run_scenario(scenario: Scenario) -> (Sim, Setup) {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, scenario);
    sim.offer(&setup.items, terms);
    sim.run();
    (sim, setup)
}

#[test]
fn gift_of_a_ticket() {
    let (sim, setup) = run_scenario(Scenario::Gift);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_completed(&sim, &setup);
    let b = &sim.peers[B].wallet;
    b.verify(&setup.items[0]).expect("the receiver's copy passes the verifier");
    assert!(sim.events.iter().any(|(s, e)| *s == A && matches!(e, TransferEvent::Completed { .. })));
    assert!(sim.events.iter().any(|(s, e)| *s == B && matches!(e, TransferEvent::Completed { .. })));
    // History on both sides records the movement.
    assert!(sim.peers[A].wallet.history(10).unwrap().iter().any(|h| h.direction == crate::store::Direction::Out));
    assert!(b.history(10).unwrap().iter().any(|h| h.memo.starts_with("received from")));
}

#[test]
fn payment_in_notes() {
    let (sim, setup) = run_scenario(Scenario::Payment);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_completed(&sim, &setup);
}

#[test]
fn sale_with_change() {
    let (sim, setup) = run_scenario(Scenario::SaleWithChange);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_completed(&sim, &setup);
    // The 200 and 100 notes set aside for change but not needed are free again.
    let a = &sim.peers[A].wallet;
    assert_eq!(a.balance().unwrap()[0].pending_out, 0);
}

#[test]
fn multi_instrument_sale() {
    let (sim, setup) = run_scenario(Scenario::MultiSale);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_completed(&sim, &setup);
}

#[test]
fn decline_returns_everything() {
    let mut sim = Sim::new();
    sim.answer = Answer::Decline;
    let (setup, terms) = setup(&mut sim, Scenario::SaleWithChange);
    let before_b = sim.peers[B].snapshot().instruments;
    let id = sim.offer(&setup.items, terms);
    assert_eq!(sim.holding(A, &setup.items[0]), Some(Holding::PendingOut), "offered items are locked");
    sim.run();
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_eq!(sim.holding(A, &setup.items[0]), Some(Holding::Held));
    assert_eq!(sim.held_eur(A), 800);
    assert_eq!(sim.peers[B].snapshot().instruments, before_b);
    assert!(sim.events.iter().any(|(s, e)| *s == A && matches!(e, TransferEvent::Declined { .. })));
    let t = sim.wallet(A).transfers().unwrap();
    assert_eq!((t[0].exchange, t[0].state), (id, "declined"));
}

#[test]
fn expiry_unlocks_the_sender_and_refuses_late_answers() {
    let mut sim = Sim::new();
    sim.answer = Answer::Ignore;
    let (setup, terms) = setup(&mut sim, Scenario::Gift);
    let id = sim.offer(&setup.items, terms);
    sim.run();
    sim.world.clock.advance(601);
    // Too late to accept.
    assert!(matches!(sim.wallet(B).accept_offer(id), Err(TransferError::Expired { .. })));
    let a_steps = sim.wallet(A).transfer_tick().unwrap();
    let b_steps = sim.wallet(B).transfer_tick().unwrap();
    assert!(matches!(a_steps[0].events[0], TransferEvent::Expired { role: Role::Sender, .. }));
    assert!(matches!(b_steps[0].events[0], TransferEvent::Expired { role: Role::Receiver, .. }));
    assert_eq!(sim.holding(A, &setup.items[0]), Some(Holding::Held));
    assert_eq!(sim.holding(B, &setup.items[0]), None);
    // Can be offered again.
    sim.answer = Answer::Accept;
    sim.offer(&setup.items, OfferTerms::Gift);
    sim.run();
    sim.assert_conserved();
    assert_eq!(sim.holding(B, &setup.items[0]), Some(Holding::Held));
}

#[test]
fn an_acceptance_after_expiry_is_refused_and_changes_nothing() {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::SaleWithChange);
    sim.offer(&setup.items, terms);
    let (to, offer) = sim.queue.pop_front().unwrap();
    sim.deliver(to, offer);
    let (_, acceptance) = sim.queue.pop_front().unwrap();
    sim.world.clock.advance(601);
    let before = sim.peers[A].snapshot();
    let err = sim.wallet(A).handle_transfer(&acceptance).unwrap_err();
    assert!(matches!(err, TransferError::Expired { .. }), "{err}");
    assert_eq!(sim.peers[A].snapshot(), before);
}

fn strict(max_unreconciled_hops: usize, max_note_value: u64) -> crate::presentation::OfflinePolicy {
    crate::presentation::OfflinePolicy { max_unreconciled_hops, max_note_value }
}

#[test]
fn the_offline_policy_survives_a_reopen_and_a_setting_out_of_range_changes_nothing() {
    let mut sim = Sim::new();
    assert_eq!(sim.wallet(B).offline_policy(), crate::presentation::OfflinePolicy::DEFAULT);
    sim.wallet(B).set_offline_policy(strict(2, 500)).unwrap();
    sim.peers[B].reopen();
    assert_eq!(sim.wallet(B).offline_policy(), strict(2, 500));
    let err = sim.wallet(B).set_offline_policy(strict(crate::verify::MAX_LINKS + 1, 500)).unwrap_err();
    assert!(matches!(err, WalletError::BadPolicy(_)), "{err}");
    sim.peers[B].reopen();
    assert_eq!(sim.wallet(B).offline_policy(), strict(2, 500));
}

#[test]
fn a_gift_past_the_receivers_offline_policy_is_refused_and_changes_nothing() {
    let mut sim = Sim::new();
    let first = sim.world.ticket(&mut sim.peers[A], "7");
    let second = sim.world.ticket(&mut sim.peers[A], "8");
    // Fresh from the issuer, the gift would be the ticket's first hop.
    sim.wallet(B).set_offline_policy(strict(0, 10_000)).unwrap();
    let before = sim.peers[B].snapshot();
    sim.offer(&[first], OfferTerms::Gift);
    sim.run();
    assert!(
        matches!(sim.errors.as_slice(), [TransferError::OverOfflineLimit(m)] if m.contains("1 unreconciled hops (at most 0)")),
        "{:?}",
        sim.errors
    );
    assert_eq!(sim.peers[B].snapshot(), before, "the refused offer left a trace");
    // One hop allowed: the next gift goes through.
    sim.errors.clear();
    sim.wallet(B).set_offline_policy(strict(1, 10_000)).unwrap();
    sim.offer(&[second], OfferTerms::Gift);
    sim.run();
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_eq!(sim.holding(B, &second), Some(Holding::Held));
}

#[test]
fn notes_worth_more_than_the_receivers_offline_policy_are_refused() {
    let mut sim = Sim::new();
    let notes = sim.world.notes(&mut sim.peers[A], &[500, 200]);
    sim.wallet(B).set_offline_policy(strict(8, 200)).unwrap();
    let before = sim.peers[B].snapshot();
    sim.offer(&notes, OfferTerms::Gift);
    sim.run();
    assert!(
        matches!(sim.errors.as_slice(), [TransferError::OverOfflineLimit(m)] if m.contains("worth 500 minor units of EUR (at most 200)")),
        "{:?}",
        sim.errors
    );
    assert_eq!(sim.peers[B].snapshot(), before);
}

#[test]
fn a_buyer_overpays_only_by_change_its_offline_policy_takes() {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::SaleWithChange);
    // Paying 1500 from two notes of 1000 needs the seller's 500 as change,
    // a larger note than this buyer takes: no payment is possible.
    sim.wallet(B).set_offline_policy(strict(8, 200)).unwrap();
    sim.offer(&setup.items, terms);
    sim.run();
    assert!(matches!(sim.errors.as_slice(), [TransferError::CannotMakeChange]), "{:?}", sim.errors);
    assert_eq!(sim.held_eur(B), 2000);
}

#[test]
fn pending_out_cannot_be_offered_again() {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::Gift);
    sim.offer(&setup.items, terms);
    let expires = T0 + 600;
    let err = sim.wallet(A).offer_transfer(&setup.items, OfferTerms::Gift, expires).unwrap_err();
    assert_eq!(err, TransferError::NotHeld { id: setup.items[0], holding: "pending-out" });
    sim.run();
    let err = sim.wallet(A).offer_transfer(&setup.items, OfferTerms::Gift, expires).unwrap_err();
    assert_eq!(err, TransferError::NotHeld { id: setup.items[0], holding: "gone" });
}

// ---- drops, duplicates and reordering ----

/// One adversarial schedule: each action acts on the messages in flight
/// or fires a retry timer; then the link heals.
fn run_schedule(scenario: Scenario, actions: &[u8]) {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, scenario);
    sim.offer(&setup.items, terms);
    for action in actions {
        match action % 6 {
            0 => {
                if let Some((to, b)) = sim.queue.pop_front() {
                    sim.deliver(to, b);
                }
            }
            1 => {
                sim.queue.pop_front();
            }
            2 => {
                if let Some((to, b)) = sim.queue.front().cloned() {
                    sim.deliver(to, b);
                }
            }
            3 => {
                if let Some((to, b)) = sim.queue.pop_back() {
                    sim.deliver(to, b);
                }
            }
            4 => sim.retry(A),
            _ => sim.retry(B),
        }
    }
    sim.settle();
    assert_completed(&sim, &setup);
    // Whatever failed along the way was a refused duplicate or a message
    // out of order, never a corrupt state.
    for e in &sim.errors {
        assert!(
            matches!(e, TransferError::WrongState { .. } | TransferError::UnknownExchange(_)),
            "unexpected refusal: {e}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn every_schedule_of_drops_duplicates_and_reorders_conserves(
        scenario in 0u64..4,
        actions in proptest::collection::vec(any::<u8>(), 0..14),
    ) {
        run_schedule(scenario_of(scenario), &actions);
    }
}

#[test]
fn short_schedules_exhaustively() {
    // Every schedule of up to three actions, on the sale with change.
    let mut schedules = vec![vec![]];
    for len in 1..=3u32 {
        for n in 0..6u32.pow(len) {
            schedules.push((0..len).map(|i| ((n / 6u32.pow(i)) % 6) as u8).collect::<Vec<u8>>());
        }
    }
    for actions in schedules {
        run_schedule(Scenario::SaleWithChange, &actions);
    }
}

// ---- crashes at every persisted step ----

#[test]
fn crash_at_every_step_on_either_side_then_resume() {
    for seed in 0..50u64 {
        for side in [A, B] {
            for step in 1..=3 {
                let mut sim = Sim::new();
                sim.crash_at = Some((side, step));
                sim.crash_drops_link = seed % 2 == 1;
                let (setup, terms) = setup(&mut sim, scenario_of(seed / 2));
                sim.offer(&setup.items, terms);
                sim.run();
                assert!(sim.crashed, "seed {seed}: side {side} never reached step {step}");
                sim.settle();
                assert_completed(&sim, &setup);
            }
        }
    }
}

#[test]
fn crash_right_after_the_offer_is_persisted() {
    // The offer never left: the reopened sender resends it.
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::Gift);
    let expires = T0 + 600;
    sim.wallet(A).offer_transfer(&setup.items, terms, expires).unwrap();
    sim.peers[A].reopen();
    assert_eq!(sim.holding(A, &setup.items[0]), Some(Holding::PendingOut));
    sim.settle();
    assert_completed(&sim, &setup);
}

// ---- a cheating or broken peer ----

/// Runs a sale up to the point where B has accepted; returns the offer,
/// the acceptance and B's snapshot.
fn accepted_sale() -> (Sim, Setup, Offer, Acceptance) {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::SaleWithChange);
    sim.offer(&setup.items, terms);
    let (to, offer_bytes) = sim.queue.pop_front().unwrap();
    sim.deliver(to, offer_bytes.clone());
    let (_, acceptance_bytes) = sim.queue.front().cloned().unwrap();
    let TransferMessage::Offer(offer) = TransferMessage::from_bytes(&offer_bytes).unwrap() else { panic!() };
    let TransferMessage::Acceptance(acceptance) = TransferMessage::from_bytes(&acceptance_bytes).unwrap() else {
        panic!()
    };
    (sim, setup, offer, acceptance)
}

/// A certificate A could sign, with endorsements changed by `tamper`.
fn forged_certificate(sim: &Sim, offer: &Offer, acceptance: &Acceptance, tamper: impl Fn(&mut Endorsement)) -> Vec<u8> {
    let a = &sim.peers[A].wallet;
    let now = a.now();
    let endorsements = offer
        .body
        .items
        .iter()
        .zip(&acceptance.body.holder_keys)
        .map(|(item, key)| {
            let mut body = item.next_endorsement(*key, offer.id(), acceptance.body.acceptance_id, now);
            tamper(&mut body);
            Signed::sign(body, &a.signer(&item.holder()).unwrap()).unwrap()
        })
        .collect();
    let body = CertificateBody {
        offer_id: offer.id(),
        acceptance_id: acceptance.body.acceptance_id,
        acceptance_digest: acceptance.digest(),
        endorsements,
        change: Vec::new(),
    };
    TransferMessage::Certificate(Signed::sign(body, &a.signer(&a.account_key()).unwrap()).unwrap()).to_bytes()
}

fn refused(peer: &mut Peer, bytes: &[u8]) -> TransferError {
    let before = peer.snapshot();
    let err = peer.wallet.handle_transfer(bytes).expect_err("a cheating message must be refused");
    assert_eq!(peer.snapshot(), before, "a refused message changed the store ({err})");
    err
}

#[test]
fn certificate_with_the_wrong_sequence_is_refused() {
    let (mut sim, _, offer, acceptance) = accepted_sale();
    let bytes = forged_certificate(&sim, &offer, &acceptance, |e| e.sequence += 1);
    assert!(matches!(refused(&mut sim.peers[B], &bytes), TransferError::WrongSequence { .. }));
}

#[test]
fn endorsement_to_another_key_is_refused() {
    let (mut sim, _, offer, acceptance) = accepted_sale();
    let other = sim.peers[A].wallet.account_key();
    let bytes = forged_certificate(&sim, &offer, &acceptance, |e| e.new_holder = other);
    assert!(matches!(refused(&mut sim.peers[B], &bytes), TransferError::WrongHolderKey { .. }));
}

#[test]
fn endorsement_bound_to_another_exchange_is_refused() {
    let (mut sim, _, offer, acceptance) = accepted_sale();
    let bytes = forged_certificate(&sim, &offer, &acceptance, |e| e.acceptance_id = ExchangeId([9; 16]));
    assert!(matches!(refused(&mut sim.peers[B], &bytes), TransferError::Mismatch(_)));
}

#[test]
fn short_certificate_without_the_change_is_refused() {
    // A sale paid 2000 for 1500: a certificate without the 500 change is refused.
    let (mut sim, _, offer, acceptance) = accepted_sale();
    let bytes = forged_certificate(&sim, &offer, &acceptance, |_| {});
    assert!(matches!(refused(&mut sim.peers[B], &bytes), TransferError::BadChange(_)));
}

#[test]
fn bad_signatures_are_refused() {
    let (mut sim, _, offer, acceptance) = accepted_sale();
    // A certificate whose envelope signature is broken.
    let mut bytes = forged_certificate(&sim, &offer, &acceptance, |_| {});
    let TransferMessage::Certificate(mut cert) = TransferMessage::from_bytes(&bytes).unwrap() else { panic!() };
    cert.signature.0[0] ^= 1;
    bytes = TransferMessage::Certificate(cert).to_bytes();
    assert_eq!(refused(&mut sim.peers[B], &bytes), TransferError::BadSignature(SignedPart::Certificate));
    // An acceptance whose signature is broken.
    let mut bad = acceptance.clone();
    bad.signature.0[5] ^= 1;
    let bytes = TransferMessage::Acceptance(bad).to_bytes();
    assert_eq!(refused(&mut sim.peers[A], &bytes), TransferError::BadSignature(SignedPart::Acceptance));
    // An offer with a broken holder signature, to a third wallet.
    let mut c = sim.world.peer("c");
    let mut bad = offer.clone();
    bad.holder_signatures[0].0[0] ^= 1;
    let bytes = TransferMessage::Offer(bad).to_bytes();
    assert_eq!(refused(&mut c, &bytes), TransferError::BadSignature(SignedPart::OfferHolder(0)));
}

/// The certificate and the decline each have their own context: the same
/// body signed by the right key under any other context (the endorsement
/// and acceptance contexts they once shared included) is refused.
#[test]
fn signatures_under_a_sibling_context_are_refused() {
    use crate::crypto::Context;
    let (mut sim, _, offer, acceptance) = accepted_sale();
    let bytes = forged_certificate(&sim, &offer, &acceptance, |_| {});
    let TransferMessage::Certificate(cert) = TransferMessage::from_bytes(&bytes).unwrap() else { panic!() };
    let a_account = sim.peers[A].wallet.signer(&sim.peers[A].wallet.account_key()).unwrap();
    for context in Context::ALL.into_iter().filter(|c| *c != Context::TransferCertificate) {
        let mut bad = cert.clone();
        bad.signature = a_account.sign(context, &minicbor::to_vec(&bad.body).unwrap()).unwrap();
        let bytes = TransferMessage::Certificate(bad).to_bytes();
        assert_eq!(
            refused(&mut sim.peers[B], &bytes),
            TransferError::BadSignature(SignedPart::Certificate),
            "{context:?}"
        );
    }

    // A second offer, which B declines.
    let t2 = sim.world.ticket(&mut sim.peers[A], "8");
    let (second, step) = sim.wallet(A).offer_transfer(&[t2], OfferTerms::Gift, T0 + 600).unwrap();
    sim.peers[B].wallet.handle_transfer(&step.send.unwrap()).unwrap();
    let decline_bytes = sim.peers[B].wallet.decline_offer(second, "no thanks").unwrap().send.unwrap();
    let TransferMessage::Decline(decline) = TransferMessage::from_bytes(&decline_bytes).unwrap() else { panic!() };
    let b_account = sim.peers[B].wallet.signer(&sim.peers[B].wallet.account_key()).unwrap();
    for context in Context::ALL.into_iter().filter(|c| *c != Context::Decline) {
        let mut bad = decline.clone();
        bad.signature = b_account.sign(context, &minicbor::to_vec(&bad.body).unwrap()).unwrap();
        let bytes = TransferMessage::Decline(bad).to_bytes();
        assert_eq!(refused(&mut sim.peers[A], &bytes), TransferError::BadSignature(SignedPart::Decline), "{context:?}");
    }
    // The genuine decline still goes through.
    sim.peers[A].wallet.handle_transfer(&decline_bytes).unwrap();
    assert_eq!(sim.peers[A].wallet.instrument(&t2).unwrap().holding, Holding::Held);
}

#[test]
fn acceptance_for_another_offer_is_refused() {
    let (mut sim, setup, _, acceptance) = accepted_sale();
    // A second offer from A to B, for another ticket.
    let world = &sim.world;
    let t2 = world.ticket(&mut sim.peers[A], "9");
    let (second, _) = sim.wallet(A).offer_transfer(&[t2], OfferTerms::Gift, T0 + 600).unwrap();
    // B (cheating) re-labels its acceptance of the first offer for the second.
    let b_signer = sim.peers[B].wallet.signer(&sim.peers[B].wallet.account_key()).unwrap();
    let mut body = acceptance.body.clone();
    body.offer_id = second;
    let forged = Signed::sign(body, &b_signer).unwrap();
    let bytes = TransferMessage::Acceptance(forged).to_bytes();
    assert_eq!(refused(&mut sim.peers[A], &bytes), TransferError::Mismatch("the acceptance answers another offer"));
    // For an offer A never made.
    let mut body = acceptance.body.clone();
    body.offer_id = ExchangeId([7; 16]);
    let forged = Signed::sign(body, &b_signer).unwrap();
    let bytes = TransferMessage::Acceptance(forged).to_bytes();
    assert_eq!(refused(&mut sim.peers[A], &bytes), TransferError::UnknownExchange(ExchangeId([7; 16])));
    let _ = setup;
}

#[test]
fn messages_replayed_from_an_earlier_exchange_are_refused() {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::Gift);
    sim.offer(&setup.items, terms);
    let mut seen = Vec::new();
    while let Some((to, bytes)) = sim.queue.pop_front() {
        seen.push((to, bytes.clone()));
        sim.deliver(to, bytes);
    }
    let [(_, offer1), (_, _acceptance1), (_, certificate1), (_, receipt1)] = seen.as_slice() else {
        panic!("{} messages", seen.len())
    };
    // A second exchange between the same wallets.
    let world = &sim.world;
    let t2 = world.ticket(&mut sim.peers[A], "5");
    let (second, _) = sim.wallet(A).offer_transfer(&[t2], OfferTerms::Gift, T0 + 600).unwrap();
    // The first exchange's receipt, re-labelled for the second by B.
    let TransferMessage::Receipt(r) = TransferMessage::from_bytes(receipt1).unwrap() else { panic!() };
    let b = &sim.peers[B].wallet;
    let mut body = r.body.clone();
    body.offer_id = second;
    let forged = TransferMessage::Receipt(Signed::sign(body, &b.signer(&b.account_key()).unwrap()).unwrap());
    assert!(matches!(
        refused(&mut sim.peers[A], &forged.to_bytes()),
        TransferError::WrongState { state: "offered", .. }
    ));
    // The first offer's id reused for different content.
    let TransferMessage::Offer(o) = TransferMessage::from_bytes(offer1).unwrap() else { panic!() };
    let a = &sim.peers[A].wallet;
    let mut body = o.body.clone();
    body.expires_at += 1;
    let holder = a.signer(&body.items[0].holder()).unwrap();
    let forged = Offer::sign(body, &a.signer(&a.account_key()).unwrap(), &[&holder as &dyn Signer]).unwrap();
    assert_eq!(refused(&mut sim.peers[B], &TransferMessage::Offer(forged).to_bytes()), TransferError::Replayed(o.id()));
    // The first certificate replayed verbatim gets the same receipt and changes nothing.
    let before = sim.peers[B].snapshot();
    let step = sim.wallet(B).handle_transfer(certificate1).unwrap();
    assert_eq!(step.send.as_deref(), Some(receipt1.as_slice()));
    assert_eq!(sim.peers[B].snapshot(), before);
}

#[test]
fn oversized_messages_are_refused_before_parsing() {
    let mut sim = Sim::new();
    let bytes = vec![0x82; TransferMessage::MAX_LEN + 1];
    assert!(matches!(refused(&mut sim.peers[B], &bytes), TransferError::Decode(crate::DecodeError::TooLarge { .. })));
    assert!(matches!(refused(&mut sim.peers[B], &[0xff, 0x00]), TransferError::Decode(_)));
}

#[test]
fn an_offer_for_an_instrument_the_sender_no_longer_holds() {
    let (mut sim, setup) = run_scenario(Scenario::Gift);
    let t = setup.items[0];
    // A's wallet itself refuses.
    assert!(matches!(
        sim.wallet(A).offer_transfer(&[t], OfferTerms::Gift, T0 + 600),
        Err(TransferError::NotHeld { holding: "gone", .. })
    ));
    // A cheating sender re-offers its old chain to B, who has the later state.
    let a = &sim.peers[A].wallet;
    let mut old = a.instrument(&t).unwrap().instrument;
    old.links.pop();
    let holder = a.signer(&old.holder()).unwrap();
    let body = OfferBody {
        offer_id: ExchangeId([3; 16]),
        sender: a.account_key(),
        items: vec![old],
        terms: Terms::Gift,
        created_at: T0,
        expires_at: T0 + 600,
    };
    let forged = Offer::sign(body, &a.signer(&a.account_key()).unwrap(), &[&holder as &dyn Signer]).unwrap();
    let bytes = TransferMessage::Offer(forged.clone()).to_bytes();
    assert_eq!(refused(&mut sim.peers[B], &bytes), TransferError::Stale(t));
    // A third wallet cannot know offline; if it takes it, the two links of the same
    // sequence name A's key at reconciliation.
    let mut c = sim.world.peer("c");
    c.wallet.handle_transfer(&bytes).unwrap();
    let step = c.wallet.accept_offer(forged.id()).unwrap();
    let TransferMessage::Acceptance(acc) = TransferMessage::from_bytes(&step.send.unwrap()).unwrap() else { panic!() };
    let item = &forged.body.items[0];
    let second =
        Signed::sign(item.next_endorsement(acc.body.holder_keys[0], forged.id(), acc.body.acceptance_id, T0), &holder)
            .unwrap();
    let with_b = sim.peers[B].wallet.instrument(&t).unwrap().instrument;
    let proof = EquivocationProof::find(&with_b, &item.with_link(second)).expect("a double transfer is provable");
    assert_eq!(proof.verify(), Ok(item.holder()));
}

// ---- fair sales ----

/// The registry's rule for a sale claim (see `docs/transfer.md`): with the
/// delivery in hand the payment stands, else it goes back to the payer keys.
fn registry_decides(claim: &SaleClaim, world: &World, links: &[Signed<Endorsement>]) -> Result<bool, String> {
    let trust = crate::TrustList::verify(
        crate::Signed::<crate::TrustListBody>::from_bytes(&world.trust_list).unwrap(),
        &world.registry.public_key(),
    )
    .unwrap();
    let deny = crate::DenyList::empty();
    let verifier = crate::Verifier::new(&trust, &deny);
    let checked = claim.check(&verifier, claim.acceptance.body.time).map_err(|e| e.to_string())?;
    Ok(checked.is_delivered_by(links))
}

/// The buyer's evidence, straight from its stored state.
fn buyer_claim(sim: &Sim, offer_id: ExchangeId) -> Option<SaleClaim> {
    let record = sim.peers[B].wallet.store().pending(&offer_id).unwrap()?;
    match ReceiverState::from_bytes(&record.state).unwrap() {
        ReceiverState::Accepted(offer, acceptance) | ReceiverState::Completed(offer, acceptance, ..) => {
            Some(SaleClaim { offer, acceptance })
        }
        _ => None,
    }
}

/// The seller's delivery links, from its stored state.
fn seller_links(sim: &Sim, offer_id: ExchangeId) -> Vec<Signed<Endorsement>> {
    let Some(record) = sim.peers[A].wallet.store().pending(&offer_id).unwrap() else { return Vec::new() };
    match SenderState::from_bytes(&record.state).unwrap() {
        SenderState::Certified(s) => s.certificate.body.endorsements,
        SenderState::Completed(s) => s.certified.certificate.body.endorsements,
        _ => Vec::new(),
    }
}

#[test]
fn after_every_prefix_of_a_sale_each_side_has_its_value_or_evidence() {
    for delivered in 0..=4 {
        let mut sim = Sim::new();
        let (setup, terms) = setup(&mut sim, Scenario::SaleWithChange);
        let id = sim.offer(&setup.items, terms);
        for _ in 0..delivered {
            let (to, bytes) = sim.queue.pop_front().unwrap();
            sim.deliver(to, bytes);
        }
        // The link dies here; both sides give up waiting.
        sim.queue.clear();
        sim.world.clock.advance(601);
        sim.wallet(A).transfer_tick().unwrap();
        sim.wallet(B).transfer_tick().unwrap();
        let ticket = setup.items[0];
        let b_paid = sim.held_eur(B) < 2000;
        let a_endorsed = !seller_links(&sim, id).is_empty();
        match buyer_claim(&sim, id) {
            None => {
                // Prefixes 0 and 1: nobody gave anything up.
                assert!(!b_paid && !a_endorsed, "prefix {delivered}");
                assert_eq!(sim.holding(A, &ticket), Some(Holding::Held));
                assert_eq!(sim.held_eur(A), 800);
            }
            Some(claim) => {
                // The buyer paid: its claim holds, and the registry either sees the
                // delivery (the ticket is the buyer's) or returns the money.
                assert!(b_paid, "prefix {delivered}");
                let delivered_links = seller_links(&sim, id);
                let verdict = registry_decides(&claim, &sim.world, &delivered_links).unwrap();
                assert_eq!(verdict, a_endorsed, "prefix {delivered}");
                if verdict {
                    // The seller gave the ticket up, and holds the payment already.
                    assert!(sim.held_eur(A) >= 800 + 1500);
                } else {
                    assert_eq!(sim.holding(A, &ticket), Some(Holding::Held), "the seller still has it");
                }
            }
        }
    }
}

#[test]
fn double_sale_refunds_the_losing_buyer_and_names_the_seller() {
    let mut sim = Sim::new();
    let (setup, terms) = setup(&mut sim, Scenario::SaleWithChange);
    let ticket = setup.items[0];
    let mut c = sim.world.peer("c");
    sim.world.notes(&mut c, &[1000, 500]);
    // The honest offer to B.
    let first = sim.offer(&setup.items, terms);
    // The seller cheats: a second offer of the same ticket to C, signed by hand.
    let a = &sim.peers[A].wallet;
    let item = a.instrument(&ticket).unwrap().instrument;
    let holder = a.signer(&item.holder()).unwrap();
    let payee = a.account_key();
    let body = OfferBody {
        offer_id: ExchangeId([0x22; 16]),
        sender: a.account_key(),
        items: vec![item.clone()],
        terms: Terms::Sale {
            price: crate::Amount::new("EUR", 1500),
            payee_keys: vec![payee, holder.public_key()],
            change: vec![],
        },
        created_at: T0,
        expires_at: T0 + 600,
    };
    let second = Offer::sign(body, &a.signer(&a.account_key()).unwrap(), &[&holder as &dyn Signer]).unwrap();
    c.wallet.handle_transfer(&TransferMessage::Offer(second.clone()).to_bytes()).unwrap();
    let c_step = c.wallet.accept_offer(second.id()).unwrap();
    assert_eq!(c.wallet.balance().unwrap()[0].pending_out, 1500, "C paid");
    // B's exchange completes normally.
    sim.run();
    assert_eq!(sim.holding(B, &ticket), Some(Holding::Held));
    // C's claim: it paid, and the registry's chain shows the ticket went to B in another exchange.
    let TransferMessage::Acceptance(c_acceptance) = TransferMessage::from_bytes(&c_step.send.unwrap()).unwrap() else {
        panic!()
    };
    let claim = SaleClaim { offer: second.clone(), acceptance: c_acceptance.clone() };
    let registered = sim.peers[B].wallet.instrument(&ticket).unwrap().instrument.links;
    assert_eq!(registry_decides(&claim, &sim.world, &registered), Ok(false), "C gets its money back");
    let trust = crate::TrustList::verify(
        crate::Signed::<crate::TrustListBody>::from_bytes(&sim.world.trust_list).unwrap(),
        &sim.world.registry.public_key(),
    )
    .unwrap();
    let deny = crate::DenyList::empty();
    let checked = claim.check(&crate::Verifier::new(&trust, &deny), T0).unwrap();
    assert_eq!(checked.payment.len(), 2);
    assert!(
        checked.payment.iter().all(|p| c.wallet.store().key(&p.payer).unwrap().is_some()),
        "refund goes to C's keys"
    );
    // B's claim, for comparison, is delivered.
    let b_claim = buyer_claim(&sim, first).unwrap();
    assert_eq!(registry_decides(&b_claim, &sim.world, &registered), Ok(true));
    // The seller is named: its holder key offered the ticket to C and, while
    // that offer was open, endorsed it to B in another exchange.
    let proof =
        DoubleSaleProof { offer: second.clone(), item: 0, endorsement: registered[registered.len() - 1].clone() };
    let proof = DoubleSaleProof::from_bytes(&proof.to_bytes()).unwrap();
    assert_eq!(proof.verify(), Ok(item.holder()));
    // A decline signed by the claimant would have excused the seller; one by anyone else does not.
    let decline = |w: &crate::Wallet<crate::store::SqliteStore>| {
        let body = DeclineBody {
            offer_id: second.id(),
            offer_digest: second.digest(),
            receiver: w.account_key(),
            reason: "no".into(),
            time: T0,
        };
        Signed::sign(body, &w.signer(&w.account_key()).unwrap()).unwrap()
    };
    assert!(proof.excused_by(&decline(&c.wallet), &c_acceptance.body.receiver));
    assert!(!proof.excused_by(&decline(&sim.peers[A].wallet), &c_acceptance.body.receiver));
}

#[test]
fn evidence_checks_refuse_tampering() {
    let (sim, _, offer, acceptance) = accepted_sale();
    let claim = SaleClaim { offer: offer.clone(), acceptance: acceptance.clone() };
    assert_eq!(registry_decides(&claim, &sim.world, &[]), Ok(false));
    // A claim against another offer.
    let mut other = offer.clone();
    other.body.expires_at += 1;
    let bad = SaleClaim { offer: other, acceptance: acceptance.clone() };
    assert!(registry_decides(&bad, &sim.world, &[]).is_err());
    // An acceptance with a broken signature.
    let mut acc = acceptance.clone();
    acc.signature.0[1] ^= 1;
    assert!(registry_decides(&SaleClaim { offer: offer.clone(), acceptance: acc }, &sim.world, &[]).is_err());
    // A proof whose endorsement belongs to the same exchange is no proof.
    let a = &sim.peers[A].wallet;
    let item = &offer.body.items[0];
    let link = Signed::sign(
        item.next_endorsement(acceptance.body.holder_keys[0], offer.id(), acceptance.body.acceptance_id, T0),
        &a.signer(&item.holder()).unwrap(),
    )
    .unwrap();
    let proof = DoubleSaleProof { offer: offer.clone(), item: 0, endorsement: link.clone() };
    assert_eq!(proof.verify(), Err(evidence::EvidenceError::SameExchange));
    // And a delivery by links signed with the wrong key does not count.
    let wrong = Signed::sign(link.body.clone(), &a.signer(&a.account_key()).unwrap()).unwrap();
    assert_eq!(registry_decides(&claim, &sim.world, &[wrong]), Ok(false));
    assert_eq!(registry_decides(&claim, &sim.world, &[link]), Ok(true));
}

#[test]
fn states_and_messages_round_trip() {
    let (sim, _, offer, acceptance) = accepted_sale();
    for m in [TransferMessage::Offer(offer.clone()), TransferMessage::Acceptance(acceptance.clone())] {
        assert_eq!(TransferMessage::from_bytes(&m.to_bytes()).unwrap(), m);
    }
    let claim = SaleClaim { offer, acceptance };
    assert_eq!(SaleClaim::from_bytes(&claim.to_bytes()).unwrap(), claim);
    assert_eq!(sim.peers[B].wallet.transfers().unwrap()[0].state, "accepted");
}

#[test]
fn wallets_export_their_evidence_for_reconciliation() {
    let (mut sim, _, offer, acceptance) = accepted_sale();
    // B paid, nothing delivered yet: one claim.
    let evidence = sim.wallet(B).transfer_evidence().unwrap();
    assert_eq!(evidence.claims, vec![SaleClaim { offer: offer.clone(), acceptance }]);
    assert!(evidence.deliveries.is_empty());
    // A answers; the certificate is lost: A has a delivery without receipt.
    let (to, bytes) = sim.queue.pop_front().unwrap();
    sim.deliver(to, bytes);
    let a_evidence = sim.wallet(A).transfer_evidence().unwrap();
    assert_eq!(a_evidence.deliveries.len(), 1);
    assert!(a_evidence.deliveries[0].1.is_none());
    // Once complete, B has no open claim and A holds the receipt.
    sim.settle();
    assert!(sim.wallet(B).transfer_evidence().unwrap().claims.is_empty());
    assert!(sim.wallet(A).transfer_evidence().unwrap().deliveries[0].1.is_some());
    let _ = offer;
}
