#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Both sides of a presentation in one process, with a manual clock.

use super::*;
use crate::apdu::{Command, INS_CONFIRM, INS_PRESENT, Response, StatusWord, TESSERA_AID};
use crate::authority::{Issuer, RegistryAuthority};
use crate::clock::{Clock, ManualClock};
use crate::crypto::{LocalSigner, Signer};
use crate::instrument::{Amount, Attributes, CouponAttributes, Instrument, TicketAttributes};
use crate::sealing::{StaticKeyProvider, StorageKey};
use crate::store::{Holding, SqliteStore, WalletStore, Write, WriteBatch};
use crate::trust::{DenyList, Role, TrustEntry, TrustList};
use crate::verify::Verifier;
use crate::wallet::Wallet;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: u64 = 1_800_000_000;

struct Venue {
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    gate: LocalSigner,
    trust: TrustList,
    trust_bytes: Vec<u8>,
    deny: DenyList,
    ledger: BTreeMap<InstrumentId, PriorUse>,
    records: u64,
}

type Card = WalletCard<SqliteStore>;

impl Venue {
    fn new() -> Self {
        let registry = RegistryAuthority::new(LocalSigner::from_seed(&[1; 32]));
        let issuer = Issuer::new(LocalSigner::from_seed(&[2; 32]));
        let gate = LocalSigner::from_seed(&[3; 32]);
        let entries = vec![
            TrustEntry {
                key: issuer.public_key(),
                role: Role::Issuer,
                name: "Arena".into(),
                not_after: T0 + 1_000_000,
            },
            TrustEntry { key: gate.public_key(), role: Role::Gate, name: "North 1".into(), not_after: T0 + 1_000_000 },
        ];
        let signed = registry.trust_list(1, entries, T0).unwrap();
        let trust = TrustList::verify(signed.clone(), &registry.public_key()).unwrap();
        Self {
            clock: Arc::new(ManualClock::new(T0)),
            registry,
            issuer,
            gate,
            trust,
            trust_bytes: signed.to_bytes(),
            deny: DenyList::empty(),
            ledger: BTreeMap::new(),
            records: 0,
        }
    }

    fn wallet(&self) -> Wallet<SqliteStore> {
        let keys = StaticKeyProvider::new(StorageKey::from_bytes([9; 32]));
        let mut w = Wallet::create(SqliteStore::in_memory().unwrap(), &keys, self.clock.clone()).unwrap();
        w.pin_registry(self.registry.public_key()).unwrap();
        w.install_trust_list(&self.trust_bytes).unwrap();
        w
    }

    fn ticket_attributes(zone: &str, uses: u16) -> Attributes {
        Attributes::Ticket(TicketAttributes {
            event_id: "final-2026".into(),
            title: "Cup Final".into(),
            zone: zone.into(),
            seat: Some("R12 S7".into()),
            guidance: Some("step-free route via door 2".into()),
            valid_from: T0 - 3600,
            valid_until: T0 + 3600,
            transferable: true,
            uses,
            face_price: Some(Amount::new("EUR", 4500)),
        })
    }

    fn issue_to(&self, wallet: &mut Wallet<SqliteStore>, attributes: Attributes) -> InstrumentId {
        let holder = wallet.new_holder_key().unwrap();
        let instrument = self.issuer.issue(attributes, holder, T0 - 7200, &mut rand::rngs::OsRng).unwrap();
        wallet.import_instrument(instrument).unwrap().id
    }

    fn ticket(&self, wallet: &mut Wallet<SqliteStore>, zone: &str) -> InstrumentId {
        self.issue_to(wallet, Self::ticket_attributes(zone, 1))
    }

    fn policy(instruction: Instruction) -> GatePolicy {
        GatePolicy {
            event_id: "final-2026".into(),
            zones: vec!["north".into()],
            instruction,
            reentry: ReentryPolicy::Refuse,
        }
    }

    fn start(&mut self, policy: GatePolicy, signer: &LocalSigner) -> GateExamination {
        self.records += 1;
        let nonce = ExchangeId::random(&mut rand::rngs::OsRng);
        GateExamination::start(signer, policy, nonce, self.records, self.clock.now()).unwrap()
    }

    /// One tap, driven to the end; the ledger learns admissions the way
    /// the gate app writes them, before the certificate leaves.
    fn tap(&mut self, card: &mut Card, policy: GatePolicy) -> Result<Examination, GateError> {
        let gate = LocalSigner::from_seed(&[3; 32]);
        let mut exam = self.start(policy, &gate);
        self.drive(&mut exam, card, &gate)
    }

    fn drive(
        &mut self,
        exam: &mut GateExamination,
        card: &mut Card,
        gate: &LocalSigner,
    ) -> Result<Examination, GateError> {
        let mut decided = None;
        for _ in 0..200 {
            let Some(command) = exam.next_command() else { break };
            let answer = card.process_apdu(&command);
            let ctx = GateContext {
                verifier: Verifier::new(&self.trust, &self.deny),
                ledger: &self.ledger,
                now: self.clock.now(),
            };
            match exam.on_response(&answer, gate, &ctx)? {
                GateEvent::Continue => {}
                GateEvent::Decided(e) => {
                    self.remember(&e);
                    decided = Some(*e);
                }
                GateEvent::Finished => return Ok(decided.expect("decided before finishing")),
            }
        }
        panic!("tap did not finish");
    }

    fn remember(&mut self, e: &Examination) {
        if e.outcome != Outcome::Admitted || e.instruction == Instruction::ReEnter {
            return;
        }
        let entry = self.ledger.entry(e.instrument_id).or_insert(PriorUse {
            uses_consumed: 0,
            holder: e.holder,
            instrument: e.presentation.instrument.clone(),
        });
        entry.uses_consumed += e.presentation.answer.body.change.uses_before - e.uses_left;
        entry.holder = e.holder;
    }
}

fn card_of(wallet: Wallet<SqliteStore>) -> Card {
    WalletCard::new(wallet)
}

fn unchanged(card: &Card, id: &InstrumentId, uses: u16) {
    let record = card.wallet().instrument(id).unwrap();
    assert_eq!((record.uses_left, record.exam_counter), (uses, 0));
    assert!(card.wallet().store().examinations(Some(id)).unwrap().is_empty());
}

#[test]
fn admits_a_registered_ticket_and_the_wallet_logs_it() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    // Compact the ticket into a registered certificate, as after a sync.
    let record = wallet.instrument(&id).unwrap();
    let verified = Verifier::new(&venue.trust, &venue.deny).verify(&record.instrument, T0).unwrap();
    let registered = venue.registry.register(&record.instrument, &verified, verified.state, T0).unwrap();
    wallet.import_instrument(registered).unwrap();

    let mut card = card_of(wallet);
    let e = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Admitted);
    assert_eq!(e.guidance.seat.as_deref(), Some("R12 S7"));
    assert_eq!(e.guidance.guidance.as_deref(), Some("step-free route via door 2"));
    e.certificate.verify(&venue.gate.public_key()).unwrap();

    let record = card.wallet().instrument(&id).unwrap();
    assert_eq!((record.uses_left, record.exam_counter), (0, 1));
    let log = card.wallet().store().examinations(Some(&id)).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].counter, log[0].instruction.as_str(), log[0].gate), (1, "enter", venue.gate.public_key()));
    assert_eq!(Signed::<ExaminationBody>::from_bytes(&log[0].certificate).unwrap(), e.certificate);
    assert_eq!(card.last_result().unwrap().uses_left, 0);

    // Used: the wallet finds nothing to present, and a forced pick is refused by the gate.
    let err = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap_err();
    assert_eq!(err, GateError::Channel(crate::apdu::ReaderError::Status(StatusWord::DATA_NOT_FOUND)));
    card.choose(Some(id));
    let again = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(again.outcome, Outcome::Refused(Refusal::AlreadyUsed));
    assert_eq!(card.wallet().instrument(&id).unwrap().exam_counter, 1);
    assert_eq!(card.wallet().store().examinations(Some(&id)).unwrap().len(), 1);
}

#[test]
fn admits_a_three_hop_chain() {
    let mut venue = Venue::new();
    let mut wallets: Vec<_> = (0..4).map(|_| venue.wallet()).collect();
    let id = venue.ticket(&mut wallets[0], "north");
    for hop in 0..3 {
        let to = wallets[hop + 1].new_holder_key().unwrap();
        let offer = ExchangeId::random(&mut rand::rngs::OsRng);
        let moved = wallets[hop].endorse(&id, to, offer, offer).unwrap();
        wallets[hop + 1].import_instrument(moved).unwrap();
    }
    let last = wallets.pop().unwrap();
    let mut card = card_of(last);
    let e = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Admitted);
    assert_eq!(e.presentation.instrument.links.len(), 3);

    // The first holder's copy is pending out: never presented.
    let first = wallets.swap_remove(0);
    assert_eq!(first.instrument(&id).unwrap().holding, Holding::PendingOut);
    let mut first_card = card_of(first);
    first_card.choose(Some(id));
    let err = venue.tap(&mut first_card, Venue::policy(Instruction::Enter)).unwrap_err();
    assert_eq!(err, GateError::Channel(crate::apdu::ReaderError::Status(StatusWord::CONDITIONS_NOT_SATISFIED)));
}

#[test]
fn refuses_wrong_zone_expired_and_revoked_and_nothing_changes() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let south = venue.ticket(&mut wallet, "south");
    let revoked = venue.ticket(&mut wallet, "north");
    let expiring = venue.ticket(&mut wallet, "north");
    venue.deny.deny(revoked);
    let mut card = card_of(wallet);

    card.choose(Some(south));
    let e = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::WrongZone));
    unchanged(&card, &south, 1);

    card.choose(Some(revoked));
    let e = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::Revoked));
    unchanged(&card, &revoked, 1);

    venue.clock.advance(7200);
    card.choose(Some(expiring));
    let e = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::Expired));
    unchanged(&card, &expiring, 1);
    assert!(venue.ledger.is_empty());
}

#[test]
fn refuses_a_forged_ticket() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "south");
    // Rewrite the zone in the stored genesis: the issuer's signature breaks.
    let mut record = wallet.instrument(&id).unwrap();
    if let Attributes::Ticket(t) = &mut record.instrument.genesis.body.attributes {
        t.zone = "north".into();
    }
    wallet.store.apply(WriteBatch(vec![Write::UpdateInstrument(record)])).unwrap();
    let mut card = card_of(wallet);
    let e = venue.tap(&mut card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::Forged));
    unchanged(&card, &id, 1);
}

#[test]
fn refuses_a_double_transfer_with_a_proof() {
    let mut venue = Venue::new();
    let mut alice = venue.wallet();
    let (mut bob, mut carol) = (venue.wallet(), venue.wallet());
    let id = venue.ticket(&mut alice, "north");
    let before = alice.instrument(&id).unwrap();
    let bob_key = bob.new_holder_key().unwrap();
    let offer = ExchangeId::random(&mut rand::rngs::OsRng);
    bob.import_instrument(alice.endorse(&id, bob_key, offer, offer).unwrap()).unwrap();
    // Alice signs the same sequence again, to Carol, outside the wallet's rules.
    let carol_key = carol.new_holder_key().unwrap();
    let body = before.instrument.next_endorsement(carol_key, offer, offer, T0);
    let link = Signed::sign(body, &alice.signer(&before.holder).unwrap()).unwrap();
    carol.import_instrument(before.instrument.with_link(link)).unwrap();

    let mut bob_card = card_of(bob);
    assert_eq!(venue.tap(&mut bob_card, Venue::policy(Instruction::Enter)).unwrap().outcome, Outcome::Admitted);
    let mut carol_card = card_of(carol);
    let e = venue.tap(&mut carol_card, Venue::policy(Instruction::Enter)).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::DoubleTransfer));
    let proof = e.proof.expect("a proof");
    assert_eq!(proof.verify(), Ok(before.holder));
    unchanged(&carol_card, &id, 1);
}

#[test]
fn punches_a_coupon_and_counters_match() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.issue_to(
        &mut wallet,
        Attributes::Coupon(CouponAttributes {
            program: "final-2026".into(),
            title: "Drink".into(),
            uses: 3,
            valid_from: T0 - 10,
            valid_until: T0 + 10_000,
            transferable: false,
        }),
    );
    let mut card = card_of(wallet);
    for n in 1..=3u32 {
        let e = venue.tap(&mut card, Venue::policy(Instruction::Punch)).unwrap();
        assert_eq!(e.outcome, Outcome::Admitted);
        let record = card.wallet().instrument(&id).unwrap();
        assert_eq!((record.uses_left, record.exam_counter), (3 - n as u16, n));
        assert_eq!(venue.ledger[&id].uses_consumed, n as u16);
    }
    card.choose(Some(id));
    let e = venue.tap(&mut card, Venue::policy(Instruction::Punch)).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::AlreadyUsed));
    let log = card.wallet().store().examinations(Some(&id)).unwrap();
    assert_eq!(log.iter().map(|l| l.counter).collect::<Vec<_>>(), vec![1, 2, 3]);
    // A coupon cannot be used to enter.
    let mut other = venue.wallet();
    let ticket = venue.ticket(&mut other, "north");
    let mut other_card = card_of(other);
    other_card.choose(Some(ticket));
    let e = venue.tap(&mut other_card, Venue::policy(Instruction::Punch)).unwrap();
    assert_eq!(e.outcome, Outcome::Admitted, "a ticket can be punched (multi-use passes)");
}

#[test]
fn reentry_policy_is_configurable() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let mut card = card_of(wallet);
    let mut policy = Venue::policy(Instruction::Enter);
    policy.reentry = ReentryPolicy::SameHolder;
    assert_eq!(venue.tap(&mut card, policy.clone()).unwrap().outcome, Outcome::Admitted);
    card.choose(Some(id));
    let e = venue.tap(&mut card, policy).unwrap();
    assert_eq!((e.outcome, e.instruction), (Outcome::Admitted, Instruction::ReEnter));
    let record = card.wallet().instrument(&id).unwrap();
    assert_eq!((record.uses_left, record.exam_counter), (0, 2));
}

#[test]
fn dispense_marks_the_ticket_printed() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let mut card = card_of(wallet);
    let e = venue.tap(&mut card, Venue::policy(Instruction::Dispense)).unwrap();
    assert_eq!((e.outcome, e.certificate.body.status), (Outcome::Admitted, Status::Dispensed));
    assert_eq!(card.wallet().instrument(&id).unwrap().status, Status::Dispensed);
}

#[test]
fn an_uncertified_gate_learns_nothing_and_changes_nothing() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let mut card = card_of(wallet);
    let rogue = LocalSigner::from_seed(&[4; 32]);
    let mut exam = venue.start(Venue::policy(Instruction::Enter), &rogue);
    let err = venue.drive(&mut exam, &mut card, &rogue).unwrap_err();
    assert_eq!(err, GateError::Channel(crate::apdu::ReaderError::Status(StatusWord::SECURITY_NOT_SATISFIED)));
    unchanged(&card, &id, 1);
}

fn select(card: &mut Card) {
    assert_eq!(Response::parse(&card.process_apdu(&Command::select(&TESSERA_AID).to_bytes())).unwrap().data, HELLO);
}

fn send(card: &mut Card, ins: u8, message: &[u8]) -> Response {
    let mut out = Response::status(StatusWord::OK);
    let chunks: Vec<&[u8]> = message.chunks(255).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let cla = if i + 1 == chunks.len() { 0x80 } else { 0x90 };
        out = Response::parse(&card.process_apdu(&Command::new(cla, ins, 0, 0, chunk.to_vec()).to_bytes())).unwrap();
    }
    let mut data = out.data.clone();
    while out.status.is_more_data() {
        out = Response::parse(&card.process_apdu(&Command::get_response(256).to_bytes())).unwrap();
        data.extend_from_slice(&out.data);
    }
    Response { data, status: out.status }
}

#[test]
fn replayed_and_stale_challenges_are_refused() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let mut card = card_of(wallet);
    let gate = venue.gate.clone_signer();
    let exam = venue.start(Venue::policy(Instruction::Enter), &gate);
    let challenge = exam.challenge().to_bytes();
    select(&mut card);
    assert_eq!(send(&mut card, INS_PRESENT, &challenge).status, StatusWord::OK);
    select(&mut card);
    assert_eq!(send(&mut card, INS_PRESENT, &challenge).status, StatusWord::REFERENCE_DATA_NOT_USABLE);
    // A challenge from an hour ago.
    venue.clock.advance(3600);
    let old = venue.start(Venue::policy(Instruction::Enter), &gate);
    venue.clock.advance(3600);
    assert_eq!(send(&mut card, INS_PRESENT, &old.challenge().to_bytes()).status, StatusWord::REFERENCE_DATA_NOT_USABLE);
    // Malformed, and a certificate with nothing pending.
    assert_eq!(send(&mut card, INS_PRESENT, b"\x82\x01").status, StatusWord::WRONG_DATA);
    assert_eq!(send(&mut card, INS_CONFIRM, &[0u8; 600]).status, StatusWord::NOT_ENOUGH_MEMORY);
    unchanged(&card, &id, 1);
}

#[test]
fn a_presentation_replayed_into_a_new_challenge_is_refused() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let mut card = card_of(wallet);
    // Record a presentation answered to one challenge…
    let gate = venue.gate.clone_signer();
    let first = venue.start(Venue::policy(Instruction::Enter), &gate);
    select(&mut card);
    let old = send(&mut card, INS_PRESENT, &first.challenge().to_bytes());
    assert_eq!(old.status, StatusWord::OK);
    card.deactivate();
    // …and play it to a gate that sent a fresh one.
    let mut exam = venue.start(Venue::policy(Instruction::Enter), &gate);
    let ctx = GateContext { verifier: Verifier::new(&venue.trust, &venue.deny), ledger: &venue.ledger, now: T0 };
    exam.next_command().unwrap();
    let hello = [HELLO, &[0x90, 0x00][..]].concat();
    assert_eq!(exam.on_response(&hello, &gate, &ctx).unwrap(), GateEvent::Continue);
    exam.next_command().unwrap();
    // The presentation is longer than one frame: deliver it as chunks.
    let chunks: Vec<Vec<u8>> = old.data.chunks(256).map(<[u8]>::to_vec).collect();
    let mut event = GateEvent::Continue;
    for (i, chunk) in chunks.iter().enumerate() {
        let mut r = chunk.clone();
        let left = old.data.len() - (i * 256 + chunk.len());
        r.extend_from_slice(&if left == 0 { StatusWord::OK } else { StatusWord::more_data(left) }.to_bytes());
        if i > 0 {
            exam.next_command().unwrap();
        }
        event = exam.on_response(&r, &gate, &ctx).unwrap();
    }
    let GateEvent::Decided(e) = event else { panic!("no decision: {event:?}") };
    assert_eq!(e.outcome, Outcome::Refused(Refusal::NotHolder));
    unchanged(&card, &id, 1);
}

#[test]
fn a_certificate_for_another_presentation_changes_nothing() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let mut card = card_of(wallet);
    let gate = venue.gate.clone_signer();
    let exam = venue.start(Venue::policy(Instruction::Enter), &gate);
    select(&mut card);
    let answer = send(&mut card, INS_PRESENT, &exam.challenge().to_bytes());
    let presentation = super::on_air::PresentationOnAir::from_bytes(&answer.data).unwrap().expand(exam.challenge());
    // Signed for another counter, or by another key: the wallet rebuilds the
    // body for its own answer and the signature does not verify.
    let forge = |signer: &LocalSigner, counter: u32| {
        Signed::sign(
            ExaminationBody {
                gate: gate.public_key(),
                challenge: exam.challenge().digest(),
                presentation: presentation.answer.digest(),
                instrument_id: id,
                instruction: Instruction::Enter,
                counter,
                uses_left: 0,
                status: Status::Active,
                outcome: Outcome::Admitted,
                record: 1,
                time: T0,
            },
            signer,
        )
        .map(|c| super::on_air::CertificateOnAir::from_certificate(&c).to_bytes())
        .unwrap()
    };
    let rogue = LocalSigner::from_seed(&[4; 32]);
    assert_eq!(send(&mut card, INS_CONFIRM, &forge(&rogue, 1)).status, StatusWord::SECURITY_NOT_SATISFIED);
    assert_eq!(send(&mut card, INS_CONFIRM, &forge(&gate, 7)).status, StatusWord::SECURITY_NOT_SATISFIED);
    unchanged(&card, &id, 1);
    assert_eq!(send(&mut card, INS_CONFIRM, &forge(&gate, 1)).status, StatusWord::OK);
    assert_eq!(card.wallet().instrument(&id).unwrap().exam_counter, 1);
}

trait CloneSigner {
    fn clone_signer(&self) -> LocalSigner;
}
impl CloneSigner for LocalSigner {
    fn clone_signer(&self) -> LocalSigner {
        LocalSigner::new(crate::crypto::SecretKey::from_bytes(&self.secret().to_bytes()))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_byte_string_makes_the_wallet_card_panic(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6),
        ins in prop::sample::select(vec![INS_PRESENT, INS_CONFIRM, crate::apdu::INS_TRANSFER, 0x00, 0xFF]),
    ) {
        let venue = Venue::new();
        let mut wallet = venue.wallet();
        let id = venue.ticket(&mut wallet, "north");
        let mut card = card_of(wallet);
        select(&mut card);
        for frame in &frames {
            let answer = card.process_apdu(frame);
            prop_assert!(answer.len() >= 2);
            let mut cmd = vec![0x80, ins, 0, 0, frame.len().min(255) as u8];
            cmd.extend_from_slice(&frame[..frame.len().min(255)]);
            let answer = card.process_apdu(&cmd);
            prop_assert!(answer.len() >= 2);
        }
        unchanged(&card, &id, 1);
    }

    #[test]
    fn no_byte_string_makes_the_gate_panic(answers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..6)) {
        let mut venue = Venue::new();
        let gate = venue.gate.clone_signer();
        let mut exam = venue.start(Venue::policy(Instruction::Enter), &gate);
        let ctx = GateContext { verifier: Verifier::new(&venue.trust, &venue.deny), ledger: &venue.ledger, now: T0 };
        exam.next_command();
        let hello = [HELLO, &[0x90, 0x00][..]].concat();
        let _ = exam.on_response(&hello, &gate, &ctx);
        for answer in &answers {
            exam.next_command();
            if let Ok(GateEvent::Decided(e)) = exam.on_response(answer, &gate, &ctx) {
                prop_assert!(e.outcome != Outcome::Admitted);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A real on-air presentation with bytes changed, cut or appended: the
    /// gate never panics and never admits anything but the original bytes
    /// (every field on the air is covered by a signature once rebuilt).
    #[test]
    fn altered_on_air_presentations_are_never_admitted(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut venue = Venue::new();
        let mut wallet = venue.wallet();
        venue.ticket(&mut wallet, "north");
        let mut card = card_of(wallet);
        let gate = venue.gate.clone_signer();
        let exam = venue.start(Venue::policy(Instruction::Enter), &gate);
        select(&mut card);
        let answer = send(&mut card, INS_PRESENT, &exam.challenge().to_bytes());
        let original = answer.data.clone();
        let mut altered = original.clone();
        for (at, byte) in &edits {
            let i = at.index(altered.len());
            altered[i] ^= byte | 1;
        }
        if let Some(at) = cut {
            altered.truncate(at.index(altered.len()));
        }
        let decided = match on_air::PresentationOnAir::from_bytes(&altered) {
            Ok(p) => {
                let ctx = GateContext { verifier: Verifier::new(&venue.trust, &venue.deny), ledger: &venue.ledger, now: T0 };
                Some(decide(&Venue::policy(Instruction::Enter), exam.challenge(), &p.expand(exam.challenge()), &ctx).0)
            }
            Err(_) => None,
        };
        prop_assert!(altered == original || decided != Some(Outcome::Admitted), "{decided:?}");
    }
}

/// Deterministic messages for `docs/vectors/nfc-*.hex`.
fn vector_messages() -> (Signed<ChallengeBody>, Presentation, Signed<ExaminationBody>) {
    let venue = Venue::new();
    let holder = LocalSigner::from_seed(&[5; 32]);
    let instrument: Instrument = venue
        .issuer
        .issue_with_id(InstrumentId([7; 16]), Venue::ticket_attributes("north", 1), holder.public_key(), T0 - 7200)
        .unwrap();
    let challenge = Signed::sign(
        ChallengeBody {
            gate: venue.gate.public_key(),
            nonce: ExchangeId([0xAB; 16]),
            event_id: "final-2026".into(),
            zones: vec!["north".into()],
            instruction: Instruction::Enter,
            time: T0,
        },
        &venue.gate,
    )
    .unwrap();
    let answer = Signed::sign(
        PresentationBody {
            challenge: challenge.digest(),
            instrument_id: instrument.id(),
            sequence: 0,
            tip: instrument.tip_digest(),
            instruction: Instruction::Enter,
            change: Instruction::Enter.apply(1),
            counter: 1,
            time: T0,
        },
        &holder,
    )
    .unwrap();
    let presentation = Presentation { instrument, answer };
    let certificate = Signed::sign(
        ExaminationBody {
            gate: venue.gate.public_key(),
            challenge: challenge.digest(),
            presentation: presentation.answer.digest(),
            instrument_id: presentation.instrument.id(),
            instruction: Instruction::Enter,
            counter: 1,
            uses_left: 0,
            status: Status::Active,
            outcome: Outcome::Admitted,
            record: 1,
            time: T0,
        },
        &venue.gate,
    )
    .unwrap();
    (challenge, presentation, certificate)
}

/// Writes the files with `TESSERA_WRITE_VECTORS` set; otherwise requires
/// the stored files to hold exactly these bytes.
fn check_vector_files(files: &[(&str, Vec<u8>)]) {
    if std::env::var_os("TESSERA_WRITE_VECTORS").is_some() {
        for (name, bytes) in files {
            std::fs::write(vector_path(name), format!("{}\n", hex::encode(bytes))).unwrap();
        }
    }
    for (name, bytes) in files {
        let stored = hex::decode(std::fs::read_to_string(vector_path(name)).unwrap().trim()).unwrap();
        assert_eq!(&stored, bytes, "{name} differs from what this build encodes");
    }
}

fn vector_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors").join(name)
}

#[test]
fn nfc_vectors_decode_and_reencode() {
    let (challenge, presentation, certificate) = vector_messages();
    let files = [
        ("nfc-challenge.hex", challenge.to_bytes()),
        ("nfc-presentation.hex", presentation.to_bytes()),
        ("nfc-examination.hex", certificate.to_bytes()),
    ];
    check_vector_files(&files);
    let stored = |n: &str| hex::decode(std::fs::read_to_string(vector_path(n)).unwrap().trim()).unwrap();
    let c = Signed::<ChallengeBody>::from_bytes(&stored("nfc-challenge.hex")).unwrap();
    let p = Presentation::from_bytes(&stored("nfc-presentation.hex")).unwrap();
    let x = Signed::<ExaminationBody>::from_bytes(&stored("nfc-examination.hex")).unwrap();
    assert_eq!(c.to_bytes(), stored("nfc-challenge.hex"));
    c.verify(&c.body.gate).unwrap();
    p.answer.verify(&p.instrument.holder()).unwrap();
    assert_eq!(p.answer.body.challenge, c.digest());
    x.verify(&c.body.gate).unwrap();
    assert_eq!(x.body.presentation, p.answer.digest());
}

#[test]
fn signatures_do_not_cross_contexts() {
    let (challenge, presentation, certificate) = vector_messages();
    let gate = challenge.body.gate;
    // A challenge signature never passes as a certificate and vice versa.
    let as_cert = Signed { body: certificate.body.clone(), signature: challenge.signature };
    assert!(as_cert.verify(&gate).is_err());
    let as_challenge = Signed { body: challenge.body.clone(), signature: certificate.signature };
    assert!(as_challenge.verify(&gate).is_err());
    assert!(presentation.answer.verify(&gate).is_err());
}

fn vector_bag() -> Signed<BagBody> {
    let venue = Venue::new();
    let (_, presentation, certificate) = vector_messages();
    let entry = BagEntry { instrument: presentation.instrument, answer: presentation.answer, certificate };
    Signed::sign(
        BagBody { gate: venue.gate.public_key(), bag_number: 1, packed_at: T0 + 60, entries: vec![entry] },
        &venue.gate,
    )
    .unwrap()
}

#[test]
fn nfc_bag_vector_and_checks() {
    let bag = vector_bag();
    if std::env::var_os("TESSERA_WRITE_VECTORS").is_some() {
        std::fs::write(vector_path("nfc-bag.hex"), format!("{}\n", hex::encode(bag.to_bytes()))).unwrap();
    }
    let stored = hex::decode(std::fs::read_to_string(vector_path("nfc-bag.hex")).unwrap().trim()).unwrap();
    assert_eq!(stored, bag.to_bytes());
    let decoded = Signed::<BagBody>::from_bytes(&stored).unwrap();
    assert_eq!(decoded.check(), Ok(()));
    assert_eq!(decoded.admissions().count(), 1);

    let gate = LocalSigner::from_seed(&[3; 32]);
    let resign = |body: BagBody| Signed::sign(body, &gate).unwrap();
    let mut twice = bag.body.clone();
    twice.entries.push(twice.entries[0].clone());
    assert_eq!(resign(twice).check(), Err(BagError::Duplicate(1)));
    let mut foreign = bag.body.clone();
    foreign.gate = LocalSigner::from_seed(&[4; 32]).public_key();
    assert_eq!(
        Signed::sign(foreign, &LocalSigner::from_seed(&[4; 32])).unwrap().check(),
        Err(BagError::ForeignCertificate(0))
    );
    let mut tampered = bag.body.clone();
    tampered.entries[0].answer.body.counter = 9;
    assert_eq!(resign(tampered).check(), Err(BagError::Mismatch(0)));
    let mut unsigned = bag.clone();
    unsigned.body.bag_number = 2;
    assert_eq!(unsigned.check(), Err(BagError::BadSignature));
    // A bag signature is not a certificate signature (property 3).
    assert!(
        Signed { body: bag.body.entries[0].certificate.body.clone(), signature: bag.signature }
            .verify(&gate.public_key())
            .is_err()
    );
}

fn drive_transfer(
    reader: &mut NfcTransferReader,
    sender: &mut Wallet<SqliteStore>,
    card: &mut Card,
) -> NfcTransferStep {
    for _ in 0..200 {
        let command = reader.next_command().expect("a command is due");
        let answer = card.process_apdu(&command);
        match reader.on_response(&answer, sender).unwrap() {
            NfcTransferStep::Continue => {}
            done => return done,
        }
    }
    panic!("transfer tap did not finish");
}

#[test]
fn phone_to_phone_gift_in_one_tap() {
    let venue = Venue::new();
    let mut sender = venue.wallet();
    let id = venue.ticket(&mut sender, "north");
    let mut receiver = card_of(venue.wallet());
    receiver.accept_gifts(true);
    let (_, step) = sender.offer_transfer(&[id], crate::transfer::OfferTerms::Gift, T0 + 600).unwrap();
    let mut reader = NfcTransferReader::start(step.send.expect("an offer"));
    let done = drive_transfer(&mut reader, &mut sender, &mut receiver);
    assert!(
        matches!(done, NfcTransferStep::Done(ref events) if events.iter().any(|e| matches!(e, crate::transfer::TransferEvent::Completed { .. }))),
        "{done:?}"
    );
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::Gone);
    let got = receiver.wallet().instrument(&id).unwrap();
    assert_eq!((got.holding, got.instrument.sequence()), (Holding::Held, 1));
    assert!(
        receiver.take_transfer_events().iter().any(|e| matches!(e, crate::transfer::TransferEvent::Completed { .. }))
    );
    // The ticket now presents from the receiver's phone.
    let mut venue = venue;
    assert_eq!(venue.tap(&mut receiver, Venue::policy(Instruction::Enter)).unwrap().outcome, Outcome::Admitted);
}

/// A gift offered by tap to a phone whose receive screen is closed: the
/// first tap ends with the offer waiting for the receiver's user.
fn first_tap_leaves_the_offer_with_the_user(venue: &Venue) -> (Wallet<SqliteStore>, Card, InstrumentId, ExchangeId) {
    let mut sender = venue.wallet();
    let id = venue.ticket(&mut sender, "north");
    let mut receiver = card_of(venue.wallet());
    let (offer_id, step) = sender.offer_transfer(&[id], crate::transfer::OfferTerms::Gift, T0 + 600).unwrap();
    let mut first = NfcTransferReader::start(step.send.unwrap());
    assert_eq!(drive_transfer(&mut first, &mut sender, &mut receiver), NfcTransferStep::AwaitingPeer);
    (sender, receiver, id, offer_id)
}

#[test]
fn phone_to_phone_waits_for_the_user_then_completes_at_the_next_tap() {
    let venue = Venue::new();
    let (mut sender, mut receiver, id, offer_id) = first_tap_leaves_the_offer_with_the_user(&venue);
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::PendingOut);
    // The user says yes on screen; the answer waits for the next tap.
    let accepted = receiver.wallet_mut().accept_offer(offer_id).unwrap();
    receiver.queue_transfer_reply(accepted.send.unwrap());
    receiver.deactivate();
    let mut second = NfcTransferReader::start(Vec::new());
    assert!(matches!(drive_transfer(&mut second, &mut sender, &mut receiver), NfcTransferStep::Done(_)));
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::Gone);
    assert_eq!(receiver.wallet().instrument(&id).unwrap().holding, Holding::Held);
    // Junk in a TRANSFER command is refused and changes nothing.
    select(&mut receiver);
    assert_eq!(send(&mut receiver, crate::apdu::INS_TRANSFER, b"\x82\x01\x00").status, StatusWord::WRONG_DATA);
}

#[test]
fn phone_to_phone_decline_on_screen_ends_the_exchange_at_the_next_tap() {
    let venue = Venue::new();
    let (mut sender, mut receiver, id, offer_id) = first_tap_leaves_the_offer_with_the_user(&venue);
    // The user says no on screen; the decline waits for the next tap.
    let declined = receiver.wallet_mut().decline_offer(offer_id, "not mine").unwrap();
    receiver.queue_transfer_reply(declined.send.unwrap());
    receiver.deactivate();
    let mut second = NfcTransferReader::start(Vec::new());
    let done = drive_transfer(&mut second, &mut sender, &mut receiver);
    assert!(
        matches!(done, NfcTransferStep::Done(ref events) if events.iter().any(|e| matches!(e, crate::transfer::TransferEvent::Declined { reason, .. } if reason == "not mine"))),
        "the sender learns the exchange is over: {done:?}"
    );
    // Nothing moved: the sender holds the ticket again, the receiver never had it.
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::Held);
    assert!(receiver.wallet().instrument(&id).is_err());
}

#[test]
fn nfc_on_air_vectors_expand_to_the_signed_messages() {
    let (challenge, presentation, certificate) = vector_messages();
    let on_air = on_air::PresentationOnAir::from_presentation(&presentation);
    let cert_on_air = on_air::CertificateOnAir::from_certificate(&certificate);
    let files =
        [("nfc-presentation-on-air.hex", on_air.to_bytes()), ("nfc-examination-on-air.hex", cert_on_air.to_bytes())];
    check_vector_files(&files);
    let stored = |n: &str| hex::decode(std::fs::read_to_string(vector_path(n)).unwrap().trim()).unwrap();
    let p = on_air::PresentationOnAir::from_bytes(&stored("nfc-presentation-on-air.hex")).unwrap().expand(&challenge);
    assert_eq!(p.to_bytes(), stored("nfc-presentation.hex"), "expands to exactly what the holder signed");
    let pending = PendingPresentation { challenge: challenge.clone(), answer: p.answer.clone() };
    let c = on_air::CertificateOnAir::from_bytes(&stored("nfc-examination-on-air.hex")).unwrap().expand(&pending);
    assert_eq!(c.to_bytes(), stored("nfc-examination.hex"));
    assert!(stored("nfc-presentation-on-air.hex").len() + 80 < stored("nfc-presentation.hex").len());
    assert!(stored("nfc-examination-on-air.hex").len() + 100 < stored("nfc-examination.hex").len());
}

/// Every chain shape the verifier accepts survives the on-air form
/// byte for byte: genesis only, registered at sequence 0, registered after
/// links with links after it, a plain chain.
#[test]
fn on_air_form_is_lossless_for_every_chain_shape() {
    let venue = Venue::new();
    let challenge = Signed::sign(
        ChallengeBody {
            gate: venue.gate.public_key(),
            nonce: ExchangeId([1; 16]),
            event_id: "final-2026".into(),
            zones: vec!["north".into()],
            instruction: Instruction::Punch,
            time: T0,
        },
        &venue.gate,
    )
    .unwrap();
    let holders: Vec<LocalSigner> = (0..6).map(|i| LocalSigner::from_seed(&[40 + i; 32])).collect();
    let issued = venue
        .issuer
        .issue(Venue::ticket_attributes("north", 3), holders[0].public_key(), T0 - 60, &mut rand::rngs::OsRng)
        .unwrap();
    let extend = |i: &Instrument, from: usize| {
        let body = i.next_endorsement(
            holders[from + 1].public_key(),
            ExchangeId([from as u8; 16]),
            ExchangeId([from as u8 + 9; 16]),
            T0,
        );
        i.with_link(Signed::sign(body, &holders[from]).unwrap())
    };
    let register = |i: &Instrument| {
        let verified = Verifier::new(&venue.trust, &DenyList::empty()).verify(i, T0).unwrap();
        venue.registry.register(i, &verified, verified.state, T0).unwrap()
    };
    let chain2 = extend(&extend(&issued, 0), 1);
    let registered_late = extend(&register(&chain2), 2);
    for (instrument, holder) in [(issued.clone(), 0), (register(&issued), 0), (chain2.clone(), 2), (registered_late, 3)]
    {
        let answer = Signed::sign(
            PresentationBody {
                challenge: challenge.digest(),
                instrument_id: instrument.id(),
                sequence: instrument.sequence(),
                tip: instrument.tip_digest(),
                instruction: Instruction::Punch,
                change: Instruction::Punch.apply(3),
                counter: 4,
                time: T0,
            },
            &holders[holder],
        )
        .unwrap();
        let full = Presentation { instrument, answer };
        let bytes = on_air::PresentationOnAir::from_presentation(&full).to_bytes();
        let back = on_air::PresentationOnAir::from_bytes(&bytes).unwrap().expand(&challenge);
        assert_eq!(back, full);
        assert!(bytes.len() < full.to_bytes().len());
    }
    // A chain whose link names a wrong previous digest cannot be rebuilt:
    // the rebuilt link's signature fails, as the full form's chain check would.
    let mut broken = chain2;
    broken.links[1].body.previous = Digest([0; 32]);
    broken.links[1] = Signed::sign(broken.links[1].body.clone(), &holders[1]).unwrap();
    let answer = Signed::sign(
        PresentationBody {
            challenge: challenge.digest(),
            instrument_id: broken.id(),
            sequence: 2,
            tip: broken.tip_digest(),
            instruction: Instruction::Punch,
            change: Instruction::Punch.apply(3),
            counter: 1,
            time: T0,
        },
        &holders[2],
    )
    .unwrap();
    let full = Presentation { instrument: broken, answer };
    let rebuilt = on_air::PresentationOnAir::from_presentation(&full).expand(&challenge);
    assert!(Verifier::new(&venue.trust, &DenyList::empty()).verify(&full.instrument, T0).is_err());
    assert!(Verifier::new(&venue.trust, &DenyList::empty()).verify(&rebuilt.instrument, T0).is_err());
}

/// The answer's signed time must be the tap's, within the skew the wallet
/// allows the challenge: a used-after-transfer proof dates the tap by it,
/// so a modified wallet may not backdate (or postdate) its answer.
#[test]
fn an_answer_dated_outside_the_clock_skew_is_refused() {
    let mut venue = Venue::new();
    let mut wallet = venue.wallet();
    let id = venue.ticket(&mut wallet, "north");
    let gate = venue.gate.clone_signer();
    let challenge = venue.start(Venue::policy(Instruction::Enter), &gate).challenge().clone();
    let record = wallet.instrument(&id).unwrap();
    let signer = wallet.signer(&record.holder).unwrap();
    let honest = wallet.answer_challenge(&challenge, Some(&id)).unwrap().answer;
    let ctx = GateContext { verifier: Verifier::new(&venue.trust, &venue.deny), ledger: &venue.ledger, now: T0 };
    let outcome_at = |time: u64| {
        let body = PresentationBody { time, ..honest.body.clone() };
        let presentation =
            Presentation { instrument: record.instrument.clone(), answer: Signed::sign(body, &signer).unwrap() };
        decide(&Venue::policy(Instruction::Enter), &challenge, &presentation, &ctx).0
    };
    assert_eq!(outcome_at(T0), Outcome::Admitted);
    assert_eq!(outcome_at(T0 - MAX_CLOCK_SKEW), Outcome::Admitted);
    assert_eq!(outcome_at(T0 + MAX_CLOCK_SKEW), Outcome::Admitted);
    assert_eq!(outcome_at(T0 - MAX_CLOCK_SKEW - 1), Outcome::Refused(Refusal::NotHolder));
    assert_eq!(outcome_at(T0 + MAX_CLOCK_SKEW + 1), Outcome::Refused(Refusal::NotHolder));
}

/// The offline policy turns an admission of a chain with more unregistered
/// hops than allowed into `over-offline-limit`; within it, nothing changes.
#[test]
fn the_offline_policy_bounds_unreconciled_hops() {
    let mut venue = Venue::new();
    let mut alice = venue.wallet();
    let mut bob = venue.wallet();
    let id = venue.ticket(&mut alice, "north");
    let key = bob.new_holder_key().unwrap();
    let offer = ExchangeId::random(&mut rand::rngs::OsRng);
    bob.import_instrument(alice.endorse(&id, key, offer, offer).unwrap()).unwrap();
    let mut card = card_of(bob);
    let gate = venue.gate.clone_signer();
    let strict = OfflinePolicy { max_unreconciled_hops: 0, ..OfflinePolicy::DEFAULT };
    let mut exam = venue.start(Venue::policy(Instruction::Enter), &gate).with_offline_policy(strict);
    let e = venue.drive(&mut exam, &mut card, &gate).unwrap();
    assert_eq!(e.outcome, Outcome::Refused(Refusal::OverOfflineLimit));
    unchanged(&card, &id, 1);
    let mut exam = venue.start(Venue::policy(Instruction::Enter), &gate).with_offline_policy(OfflinePolicy::DEFAULT);
    assert_eq!(venue.drive(&mut exam, &mut card, &gate).unwrap().outcome, Outcome::Admitted);
}
