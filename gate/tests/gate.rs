#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The gate app with a wallet in the same process as its card: the same
//! `Gate::tap` the reader loop runs, over the in-process transceiver.

use tessera_core::presentation::{Instruction, Outcome, Refusal};
use tessera_core::{Clock, DenyList, SystemClock, Wire};
use tessera_gate::{Decision, Gate, GateAppError, screen};

mod common;
use common::{Venue, policy};

fn ready_gate(dir: &std::path::Path) -> (Gate, Venue) {
    let key = Gate::init(dir, &policy()).unwrap();
    let v = Venue::new(&[key]);
    let gate = v.open_gate(dir);
    (gate, v)
}

#[test]
fn admits_then_refuses_and_remembers_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut gate, v) = ready_gate(dir.path());
    let mut card = v.card_with_ticket("north");
    let first = gate.tap(&mut card, SystemClock.now()).unwrap();
    assert!(first.admitted() && first.confirmed, "{first:?}");
    let shown = screen::render(&first);
    assert!(shown.contains("ADMIT") && shown.contains("Seat A1") && shown.contains("lift at door 2"), "{shown}");

    // The gate restarts: the used set and the lists come back from SQLite.
    drop(gate);
    let mut gate = Gate::open(dir.path()).unwrap();
    let id = match &first.decision {
        Decision::Decided(e) => e.instrument_id,
        other => panic!("{other:?}"),
    };
    card.choose(Some(id));
    let second = gate.tap(&mut card, SystemClock.now()).unwrap();
    assert_eq!(second.reason(), "already-used");
    assert!(screen::render(&second).contains("REFUSED — already used"));
    let log = gate.store().records(10).unwrap();
    assert_eq!(log.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), vec!["refused", "admitted"]);
    assert_eq!(card.wallet().instrument(&id).unwrap().exam_counter, 1);
}

#[test]
fn wrong_zone_and_deny_list() {
    let dir = tempfile::tempdir().unwrap();
    let (mut gate, v) = ready_gate(dir.path());
    let mut south = v.card_with_ticket("south");
    let id = south.wallet().tickets().unwrap()[0].id;
    south.choose(Some(id));
    let r = gate.tap(&mut south, SystemClock.now()).unwrap();
    assert!(matches!(&r.decision, Decision::Decided(e) if e.outcome == Outcome::Refused(Refusal::WrongZone)));

    let mut north = v.card_with_ticket("north");
    let id = north.wallet().tickets().unwrap()[0].id;
    let mut deny = DenyList::empty();
    deny.deny(id);
    gate.install_deny_list(&v.registry.deny_list(deny).unwrap().to_bytes()).unwrap();
    assert_eq!(gate.tap(&mut north, SystemClock.now()).unwrap().reason(), "revoked");
    // An older deny list is refused and the newer one stays.
    let stale = v.registry.deny_list(DenyList::empty()).unwrap().to_bytes();
    assert!(matches!(gate.install_deny_list(&stale), Err(GateAppError::Trust(_))));
    assert!(gate.deny_list().denies(&id));
}

#[test]
fn lists_from_another_registry_are_refused_and_no_list_means_no_tap() {
    let dir = tempfile::tempdir().unwrap();
    Gate::init(dir.path(), &policy()).unwrap();
    let mut gate = Gate::open(dir.path()).unwrap();
    let v = Venue::new(&[gate.public_key()]);
    let mut card = v.card_with_ticket("north");
    assert!(matches!(gate.tap(&mut card, SystemClock.now()), Err(GateAppError::NoTrustList)));
    gate.pin_registry(v.registry.public_key()).unwrap();
    let other = Venue::new(&[gate.public_key()]);
    assert!(gate.install_trust_list(&other.trust).is_err());
    assert!(gate.install_trust_list(b"\x82\x01").is_err());
    assert!(gate.trust_list().is_none());
    assert!(Gate::init(dir.path(), &policy()).is_err(), "init twice");
}

#[test]
fn bags_carry_every_record_once_with_single_use_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut gate, v) = ready_gate(dir.path());
    assert!(gate.pack_bag(10, SystemClock.now()).unwrap().is_none());
    for zone in ["north", "south", "north"] {
        let mut card = v.card_with_ticket(zone);
        if zone == "south" {
            let id = card.wallet().tickets().unwrap()[0].id;
            card.choose(Some(id));
        }
        gate.tap(&mut card, SystemClock.now()).unwrap();
    }
    let first = gate.pack_bag(2, SystemClock.now()).unwrap().unwrap();
    assert_eq!((first.body.bag_number, first.body.entries.len()), (1, 2));
    assert_eq!(first.check(), Ok(()));
    assert_eq!(first.admissions().count(), 1);
    drop(gate);
    let mut gate = Gate::open(dir.path()).unwrap();
    let second = gate.pack_bag(10, SystemClock.now()).unwrap().unwrap();
    assert_eq!((second.body.bag_number, second.body.entries.len()), (2, 1));
    assert!(gate.pack_bag(10, SystemClock.now()).unwrap().is_none());
    let decoded = tessera_core::Signed::<tessera_core::presentation::BagBody>::from_bytes(&second.to_bytes()).unwrap();
    assert_eq!(decoded.check(), Ok(()));
}

#[test]
fn dispense_prints_a_paper_ticket_and_voids_the_e_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let (mut gate, v) = ready_gate(dir.path());
    let mut kiosk_policy = policy();
    kiosk_policy.instruction = Instruction::Dispense;
    gate.set_policy(kiosk_policy).unwrap();
    let mut card = v.card_with_ticket("north");
    let id = card.wallet().tickets().unwrap()[0].id;
    let report = gate.tap(&mut card, SystemClock.now()).unwrap();
    let Decision::Decided(e) = &report.decision else { panic!("{report:?}") };
    assert!(report.admitted());
    let pdf = tessera_gate::paper::ticket_pdf(&e.guidance, &e.certificate).unwrap();
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.starts_with("%PDF-1.4") && text.ends_with("%%EOF\n"));
    assert!(text.contains("(Cup Final)") && text.contains("(Seat A1)"));
    // The cross-reference table points at each object.
    let xref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
    assert!(text[xref..].starts_with("xref"));
    for line in text[xref..].lines().skip(3).take(5) {
        let offset: usize = line[..10].parse().unwrap();
        assert!(text[offset..].split_whitespace().nth(1) == Some("0"), "{line}");
    }
    // The barcode carries the kiosk's signed certificate.
    let scanned = tessera_gate::paper::read_barcode(&tessera_gate::paper::barcode_payload(&e.certificate)).unwrap();
    assert_eq!(&scanned, &e.certificate);
    scanned.verify(&gate.public_key()).unwrap();
    assert_eq!(card.wallet().instrument(&id).unwrap().status, tessera_core::Status::Dispensed);
    // The e-ticket no longer enters: the wallet does not offer it, and a forced pick is refused.
    gate.set_policy(policy()).unwrap();
    assert_eq!(gate.tap(&mut card, SystemClock.now()).unwrap().reason(), "no-matching-ticket");
    card.choose(Some(id));
    assert_eq!(gate.tap(&mut card, SystemClock.now()).unwrap().reason(), "already-used");
    // A refused or non-dispense certificate makes no paper.
    let Decision::Decided(e2) = &gate.tap(&mut card, SystemClock.now()).unwrap().decision else { panic!() };
    assert!(tessera_gate::paper::ticket_pdf(&e2.guidance, &e2.certificate).is_err());
}

/// A card that answers whatever bytes it is given, in turn.
struct Scripted(std::collections::VecDeque<Vec<u8>>);

impl tessera_gate::Transceiver for Scripted {
    fn transceive(&mut self, _: &[u8]) -> Result<Vec<u8>, String> {
        self.0.pop_front().ok_or_else(|| "target lost".into())
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The gate app over a card answering arbitrary bytes (after a proper
    /// SELECT answer, so the bytes reach the presentation decoder): no
    /// panic, no error out of `tap`, nothing admitted, nothing in the used set.
    #[test]
    fn no_byte_string_makes_the_gate_app_panic_or_admit(
        answers in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..5),
        selected in proptest::prelude::any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut gate, _v) = ready_gate(dir.path());
        let mut script: std::collections::VecDeque<Vec<u8>> = answers.into_iter().collect();
        if selected {
            script.push_front([tessera_core::presentation::HELLO, &[0x90, 0x00][..]].concat());
        }
        let report = gate.tap(&mut Scripted(script), SystemClock.now()).unwrap();
        proptest::prop_assert!(!report.admitted());
        proptest::prop_assert!(gate.store().records(10).unwrap().iter().all(|r| r.outcome != "admitted"));
    }
}
