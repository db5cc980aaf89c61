//! End to end over HTTP on an embedded registry (SQLite, loopback): issue,
//! top-up, withdraw, buy, transfer through the core API, reconcile, double
//! transfer, refund, redeem and refresh — each checked against the
//! registered-ticket list and its former-holder chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::{ExchangeId, LocalSigner, PublicKey, Signer, SystemClock, Wallet, Wire};
use tessera_registry::client::{ClientError, RegistryClient, WalletSession};
use tessera_registry::embedded::{EmbeddedRegistry, signers_from_seed, start_embedded};
use tessera_registry::wire;

const SEED: [u8; 32] = [42; 32];

#[derive(Debug)]
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub registry: EmbeddedRegistry,
    pub client: RegistryClient,
    pub operator: LocalSigner,
    pub organiser: LocalSigner,
}

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_embedded(&dir.path().join("registry.db"), &SEED).unwrap();
    let client = RegistryClient::new(&registry.url());
    let (operator, _) = signers_from_seed(&SEED);
    let organiser = LocalSigner::from_seed(&[7; 32]);
    common::open_finals(&client, &operator, &organiser, &["north", "south"], 2500);
    Setup { dir, registry, client, operator, organiser }
}

pub fn wallet(dir: &std::path::Path, name: &str) -> Wallet<SqliteStore> {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([1; 32]));
    Wallet::create_at(dir.join(format!("{name}.db")), &keys, Arc::new(SystemClock)).unwrap()
}

fn status(client: &RegistryClient, id: &tessera_core::InstrumentId) -> wire::InstrumentStatus {
    client.get(&format!("/instruments/{}", id.to_hex())).unwrap()
}

#[test]
fn buy_transfer_reconcile_refund_and_money() {
    let s = setup();
    let mut alice = wallet(s.dir.path(), "alice");
    let mut bob = wallet(s.dir.path(), "bob");
    let mut carol = wallet(s.dir.path(), "carol");
    for w in [&mut alice, &mut bob, &mut carol] {
        WalletSession::new(w, s.client.clone()).sync().unwrap();
    }

    // Money in: top-up (idempotent per payment token), then notes.
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    assert_eq!(a.top_up("EUR", 10_000, "card-1").unwrap(), 10_000);
    assert_eq!(a.top_up("EUR", 10_000, "card-1").unwrap(), 10_000, "a retried payment is credited once");
    let notes = a.withdraw("EUR", 3000).unwrap();
    assert_eq!(notes.len(), 2, "2000 + 1000");
    // Buy with notes: 3000 paid for a 2500 ticket, 500 stays on the account.
    let ticket = a.buy("finals", "north", Some("12".into())).unwrap();
    let t = status(&s.client, &ticket);
    assert_eq!(
        (t.sequence, t.status.as_str(), t.holder.clone()),
        (0, "active", alice.instrument(&ticket).unwrap().holder.to_hex())
    );
    let totals = s.registry.registry.store().money_totals("EUR").unwrap();
    assert_eq!(totals.issued - totals.redeemed, totals.active_notes);
    assert_eq!(totals.paid_in - totals.paid_out, totals.balances + totals.active_notes);
    assert_eq!(s.registry.registry.store().balance(&alice.account_key(), "EUR").unwrap(), 7000 + 500);

    // Alice passes the ticket to Bob, Bob to Carol (the core API; no server).
    let bob_key = bob.new_holder_key().unwrap();
    let to_bob = alice.endorse(&ticket, bob_key, ExchangeId([1; 16]), ExchangeId([2; 16])).unwrap();
    bob.import_instrument(to_bob).unwrap();
    alice.confirm_transferred(&ticket).unwrap();
    let carol_key = carol.new_holder_key().unwrap();
    let to_carol = bob.endorse(&ticket, carol_key, ExchangeId([3; 16]), ExchangeId([4; 16])).unwrap();
    carol.import_instrument(to_carol.clone()).unwrap();

    // Carol reconciles: the list names her, with Bob and Alice as former holders.
    let report = WalletSession::new(&mut carol, s.client.clone()).sync().unwrap();
    assert_eq!(report.reconcile.certified, vec![ticket]);
    let t = status(&s.client, &ticket);
    assert_eq!((t.sequence, t.holder.clone()), (2, carol_key.to_hex()));
    let chain: Vec<_> = t.former_holders.iter().map(|f| (f.holder.clone(), f.from_sequence, f.previous_from)).collect();
    let alice_key = to_carol.genesis.body.holder;
    assert_eq!(chain, vec![(bob_key.to_hex(), 1, Some(0)), (alice_key.to_hex(), 0, None)]);
    let held = carol.instrument(&ticket).unwrap().instrument;
    assert!(held.links.is_empty() && held.registered.is_some(), "the chain is compacted into a certificate");
    // Uploading again changes nothing.
    let before = s.registry.registry.store().dump().unwrap();
    WalletSession::new(&mut carol, s.client.clone()).sync().unwrap();
    assert_eq!(s.registry.registry.store().dump().unwrap(), before);
    // Bob's copy is superseded: his sync marks it gone.
    let report = WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    assert_eq!(report.reconcile.gone, vec![ticket]);

    // Carol refunds it for notes of its face price.
    let mut c = WalletSession::new(&mut carol, s.client.clone());
    let refund_notes = c.refund(&ticket).unwrap();
    assert_eq!(refund_notes.len(), 2, "2000 + 500");
    assert_eq!(status(&s.client, &ticket).status, "refunded");
    // She redeems one note to her account.
    let balance = c.redeem(&refund_notes[..1], false).unwrap();
    assert_eq!(balance, 2000);
    let totals = s.registry.registry.store().money_totals("EUR").unwrap();
    assert_eq!(totals.issued - totals.redeemed, totals.active_notes);
    assert_eq!(totals.paid_in - totals.paid_out, totals.balances + totals.active_notes);
}

#[test]
fn double_transfer_is_caught_and_both_sides_told() {
    let s = setup();
    let mut alice = wallet(s.dir.path(), "alice");
    let mut bob = wallet(s.dir.path(), "bob");
    let mut mallory = wallet(s.dir.path(), "mallory");
    for w in [&mut alice, &mut bob, &mut mallory] {
        WalletSession::new(w, s.client.clone()).sync().unwrap();
    }
    // The organiser issues Mallory a ticket.
    let holder = mallory.new_holder_key().unwrap();
    let issued: wire::InstrumentsResponse = s
        .client
        .post(
            "/issue/ticket",
            &s.organiser,
            &wire::IssueTicketRequest {
                event_id: "finals".into(),
                zone: "south".into(),
                seat: None,
                holder: holder.to_hex(),
            },
        )
        .unwrap();
    let id = mallory.import(&wire::unb64(&issued.instruments[0]).unwrap()).unwrap().id;
    // Mallory endorses the same ticket to Alice and (from a copy) to Bob.
    let signer = mallory.signer(&holder).unwrap();
    let original = mallory.instrument(&id).unwrap().instrument;
    let (ak, bk) = (alice.new_holder_key().unwrap(), bob.new_holder_key().unwrap());
    let to_alice = mallory.endorse(&id, ak, ExchangeId([1; 16]), ExchangeId([1; 16])).unwrap();
    let body = original.next_endorsement(bk, ExchangeId([2; 16]), ExchangeId([2; 16]), 1);
    let to_bob = original.with_link(tessera_core::Signed::sign(body, &signer).unwrap());
    alice.import_instrument(to_alice).unwrap();
    bob.import_instrument(to_bob).unwrap();

    let first = WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert_eq!(first.reconcile.certified, vec![id]);
    let second = WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    assert_eq!(second.reconcile.conflicts.len(), 1);
    assert_eq!(second.reconcile.conflicts[0].signer, holder, "the proof names Mallory's key");
    let t = status(&s.client, &id);
    assert_eq!(
        (t.holder.clone(), t.denied),
        (ak.to_hex(), true),
        "the first registered stands; the instrument is denied"
    );
    assert!(s.registry.registry.store().flagged(&holder).unwrap().is_some());
    assert!(bob.deny_list().denies(&id));
    // Alice is told at her next sync.
    let again = WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert!(
        again.notices.iter().any(|(kind, inst)| kind == "conflict" && inst.as_deref() == Some(id.to_hex().as_str()))
    );
    // Alice, the honest first holder, is not left with a denied ticket: her
    // sync brought a replacement for her holder key that a gate's verifier
    // (her trust and deny lists) accepts, while the old id is denied.
    assert!(matches!(alice.verify(&id), Err(tessera_core::WalletError::Rejected(tessera_core::Rejection::Denied))));
    let replacement = alice.tickets().unwrap().into_iter().find(|t| t.id != id).expect("a replacement ticket");
    let verified = alice.verify(&replacement.id).unwrap();
    assert_eq!((verified.holder, verified.state.uses_left), (ak, 1));
    let record = alice.instrument(&replacement.id).unwrap();
    assert_eq!(record.instrument.attributes(), original.attributes(), "same event, zone and uses");
    assert_eq!(status(&s.client, &id).status, "modified");
    assert_eq!(status(&s.client, &replacement.id).holder, ak.to_hex());
    // Bob uploading again stores nothing new, and no second replacement.
    let before = s.registry.registry.store().dump().unwrap();
    WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    assert_eq!(s.registry.registry.store().dump().unwrap(), before);
}

#[test]
fn refresh_preserves_value_and_trust_list_is_signed() {
    let s = setup();
    let mut alice = wallet(s.dir.path(), "alice");
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    a.sync().unwrap();
    a.top_up("EUR", 500, "card-9").unwrap();
    let notes = a.withdraw("EUR", 500).unwrap();
    let issuer = PublicKey::from_hex(&s.client.info().unwrap().issuer_key).unwrap();
    let endorsed: Vec<String> = notes
        .iter()
        .map(|id| {
            wire::b64(
                &alice
                    .endorse(id, issuer, ExchangeId::returned_by(&alice.account_key()), ExchangeId::NONE)
                    .unwrap()
                    .to_bytes(),
            )
        })
        .collect();
    let account = alice.signer(&alice.account_key()).unwrap();
    let holders: Vec<String> = (0..3).map(|_| alice.new_holder_key().unwrap().to_hex()).collect();
    let wrong =
        wire::RefreshRequest { notes: endorsed.clone(), denominations: vec![200, 200, 200], holders: holders.clone() };
    let err = s.client.post::<_, wire::InstrumentsResponse>("/money/refresh", &account, &wrong).unwrap_err();
    assert!(matches!(err, ClientError::Refused { status: 422, .. }), "{err}");
    let ok = wire::RefreshRequest { notes: endorsed, denominations: vec![200, 200, 100], holders };
    // Someone who copied the body sends it under their own account: the
    // notes were given back by alice's, so nothing is theirs to take.
    let before = s.registry.registry.store().dump().unwrap();
    let mallory = tessera_core::LocalSigner::generate(&mut rand::rngs::OsRng);
    let err = s.client.post::<_, wire::InstrumentsResponse>("/money/refresh", &mallory, &ok).unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 403, body } if body.error == "not_returned_by_caller"),
        "{err}"
    );
    assert_eq!(s.registry.registry.store().dump().unwrap(), before, "refused requests changed nothing");
    let fresh: wire::InstrumentsResponse = s.client.post("/money/refresh", &account, &ok).unwrap();
    assert_eq!(fresh.instruments.len(), 3);
    for n in &fresh.instruments {
        alice.import(&wire::unb64(n).unwrap()).unwrap();
    }
    let totals = s.registry.registry.store().money_totals("EUR").unwrap();
    assert_eq!((totals.active_notes, totals.balances), (500, 0));

    let bytes = s.client.get_bytes("/trust-list").unwrap();
    let list = tessera_core::TrustList::verify(
        tessera_core::Signed::<tessera_core::TrustListBody>::from_bytes(&bytes).unwrap(),
        &s.registry.registry_key,
    )
    .unwrap();
    assert!(list.certifies(&s.organiser.public_key(), tessera_core::Role::Issuer, 1));
    let _ = &s.operator;
}

#[test]
fn openapi_document_matches_docs() {
    let s = setup();
    let served: serde_json::Value = s.client.get("/openapi.json").unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let checked_in: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(served, checked_in, "regenerate with: tessera-registry openapi > docs/openapi.json");
    let metrics = ureq::get(&format!("{}/metrics", s.registry.url())).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("tessera_registry_requests_total"), "{metrics}");
    let health: serde_json::Value = s.client.get("/healthz").unwrap();
    assert_eq!(health["status"], "ok");
}

/// Alice and Bob synced; Alice topped up and bought two tickets (north, south).
fn alice_with_two_tickets(
    s: &Setup,
    payment: &str,
) -> (Wallet<SqliteStore>, Wallet<SqliteStore>, tessera_core::InstrumentId, tessera_core::InstrumentId) {
    let mut alice = wallet(s.dir.path(), "alice");
    let mut bob = wallet(s.dir.path(), "bob");
    for w in [&mut alice, &mut bob] {
        WalletSession::new(w, s.client.clone()).sync().unwrap();
    }
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    a.top_up("EUR", 5000, payment).unwrap();
    let north = a.buy("finals", "north", None).unwrap();
    let south = a.buy("finals", "south", None).unwrap();
    (alice, bob, north, south)
}

#[test]
fn gift_through_the_registry_is_never_in_two_places() {
    let s = setup();
    let (mut alice, mut bob, first, second) = alice_with_two_tickets(&s, "card-g");
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    let bob_account = bob.account_key();
    let g1 = a.gift(&first, &bob_account).unwrap();
    let g2 = a.gift(&second, &bob_account).unwrap();
    // Until Bob answers, the registry holds it: not Alice's, not Bob's.
    let issuer = s.client.info().unwrap().issuer_key;
    assert_eq!(status(&s.client, &first).holder, issuer);
    assert_eq!(alice.instrument(&first).unwrap().holding, tessera_core::store::Holding::PendingOut);

    let mut b = WalletSession::new(&mut bob, s.client.clone());
    let report = b.sync().unwrap();
    assert_eq!(report.notices.iter().filter(|(k, _)| k == "gift").count(), 2);
    let pending = b.pending_gifts().unwrap();
    assert_eq!(pending.len(), 2);
    let got = b.answer_gift(&g1, true).unwrap().unwrap();
    assert_eq!(got, first);
    assert_eq!(b.answer_gift(&g2, false).unwrap(), None);
    // Answering again the other way is refused.
    let err = b.answer_gift(&g1, false).unwrap_err();
    assert!(matches!(err, ClientError::Refused { status: 409, .. }), "{err}");
    assert!(b.pending_gifts().unwrap().is_empty());
    let t = status(&s.client, &first);
    assert_eq!(t.holder, bob.instrument(&first).unwrap().holder.to_hex());
    assert_eq!(t.former_holders[0].holder, issuer, "the registry held it between sender and recipient");
    // The declined one goes back to Alice at her next sync.
    WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    let back = alice.instrument(&second).unwrap();
    assert_eq!(back.holding, tessera_core::store::Holding::Held);
    assert_eq!(status(&s.client, &second).holder, back.holder.to_hex());
}

#[test]
fn gate_bags_settle_once_with_reasons() {
    use tessera_core::presentation::{
        BagBody, BagEntry, ExaminationBody, Instruction, Outcome, PresentationBody, StateChange,
    };
    use tessera_core::{Digest, InstrumentId, Signed, Status};
    let s = setup();
    let gate = LocalSigner::from_seed(&[21; 32]);
    let _: wire::PartyResponse = s
        .client
        .post(
            "/admin/parties",
            &s.operator,
            &wire::PartyRequest {
                key: gate.public_key().to_hex(),
                role: "gate".into(),
                name: "North 1".into(),
                not_after: u64::MAX / 2,
            },
        )
        .unwrap();
    let holder = LocalSigner::from_seed(&[22; 32]);
    let issued: wire::InstrumentsResponse = s
        .client
        .post(
            "/issue/ticket",
            &s.organiser,
            &wire::IssueTicketRequest {
                event_id: "finals".into(),
                zone: "north".into(),
                seat: None,
                holder: holder.public_key().to_hex(),
            },
        )
        .unwrap();
    let ticket = tessera_core::Instrument::from_bytes(&wire::unb64(&issued.instruments[0]).unwrap()).unwrap();
    let entry = |counter: u32| {
        let answer = Signed::sign(
            PresentationBody {
                challenge: Digest([counter as u8; 32]),
                instrument_id: ticket.id(),
                sequence: 0,
                tip: ticket.tip_digest(),
                instruction: Instruction::Enter,
                change: StateChange { uses_before: 1, uses_after: 0, status_after: Status::Active },
                counter,
                time: 10,
            },
            &holder,
        )
        .unwrap();
        let certificate = Signed::sign(
            ExaminationBody {
                gate: gate.public_key(),
                challenge: Digest([counter as u8; 32]),
                presentation: answer.digest(),
                instrument_id: ticket.id(),
                instruction: Instruction::Enter,
                counter,
                uses_left: 0,
                status: Status::Active,
                outcome: Outcome::Admitted,
                record: u64::from(counter),
                time: 10,
            },
            &gate,
        )
        .unwrap();
        BagEntry { instrument: ticket.clone(), answer, certificate }
    };
    let bag = |number: u64, entries: Vec<BagEntry>| {
        let signed =
            Signed::sign(BagBody { gate: gate.public_key(), bag_number: number, packed_at: 11, entries }, &gate)
                .unwrap();
        wire::BagUpload { bag: wire::b64(&signed.to_bytes()) }
    };
    let upload = |b: &wire::BagUpload| s.client.post::<_, wire::SettlementReport>("/gate/bags", &gate, b);
    let store = s.registry.registry.store().clone();

    let first = bag(1, vec![entry(1)]);
    let report = upload(&first).unwrap();
    assert_eq!((report.bags, report.admitted, report.refused, report.replayed), (1, 1, 0, false));
    assert_eq!(status(&s.client, &ticket.id()).uses_left, 0, "the admission is applied to the registered list");

    let before = store.dump().unwrap();
    // The same bag again, byte for byte (the gate never got the answer):
    // the original settlement, and nothing changes.
    let again = upload(&first).unwrap();
    assert_eq!(again, wire::SettlementReport { replayed: true, ..report });
    assert_eq!(store.dump().unwrap(), before, "a replayed bag changes nothing");
    let refused = |b: wire::BagUpload, code: &str, st: u16| match upload(&b).unwrap_err() {
        ClientError::Refused { status, body } => {
            assert_eq!((status, body.error.as_str()), (st, code), "{}", body.message)
        }
        other => panic!("{other}"),
    };
    // Another bag under the used number: new records, or the same ones
    // packed again.
    refused(bag(1, vec![entry(2)]), "bag_reused", 409);
    let repacked =
        Signed::sign(BagBody { gate: gate.public_key(), bag_number: 1, packed_at: 12, entries: vec![entry(1)] }, &gate)
            .unwrap();
    refused(wire::BagUpload { bag: wire::b64(&repacked.to_bytes()) }, "bag_reused", 409);
    refused(bag(2, vec![entry(2), entry(1)]), "already_settled", 409);
    refused(bag(3, vec![entry(3), entry(3)]), "duplicate_record", 400);
    // Someone else's bag.
    let stranger = s.client.post::<_, wire::SettlementReport>("/gate/bags", &s.organiser, &bag(4, vec![entry(4)]));
    assert!(matches!(stranger, Err(ClientError::Refused { status: 403, .. })));
    assert_eq!(store.dump().unwrap(), before, "a refused bag changes nothing");

    let ok = upload(&bag(2, vec![entry(2)])).unwrap();
    assert_eq!(ok.admitted, 1);
    let totals: wire::SettlementReport = s.client.post("/gate/settlement", &gate, &wire::SettlementRequest {}).unwrap();
    assert_eq!((totals.bags, totals.admitted, totals.refused), (2, 2, 0));
    let _ = InstrumentId([0; 16]);
}

#[test]
fn modification_accept_refuse_refund() {
    let s = setup();
    let mut alice = wallet(s.dir.path(), "alice");
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    a.sync().unwrap();
    a.top_up("EUR", 10_000, "card-m").unwrap();
    let tickets: Vec<_> = (0..3).map(|_| a.buy("finals", "north", None).unwrap()).collect();
    let mut ids = Vec::new();
    for t in &tickets {
        let r: wire::ModifyResponse = s
            .client
            .post(
                "/modifications",
                &s.organiser,
                &wire::ModifyRequest {
                    instrument_id: t.to_hex(),
                    zone: "south".into(),
                    seat: Some("7".into()),
                    valid_from: 0,
                    valid_until: u64::MAX / 4,
                },
            )
            .unwrap();
        ids.push(r.modification_id);
    }
    // Only the organiser may modify.
    let bad = s.client.post::<_, wire::ModifyResponse>(
        "/modifications",
        &s.operator,
        &wire::ModifyRequest {
            instrument_id: tickets[0].to_hex(),
            zone: "south".into(),
            seat: None,
            valid_from: 0,
            valid_until: 1,
        },
    );
    assert!(matches!(bad, Err(ClientError::Refused { status: 403, .. })));

    let mut a = WalletSession::new(&mut alice, s.client.clone());
    let report = a.sync().unwrap();
    for (t, m) in tickets.iter().zip(&ids) {
        assert!(report.modifications.contains(&(*t, m.clone())), "notice for {t}");
    }
    let new = a.answer_modification(&tickets[0], &ids[0], "accept").unwrap();
    assert!(a.answer_modification(&tickets[1], &ids[1], "refuse").unwrap().is_empty());
    let notes = a.answer_modification(&tickets[2], &ids[2], "refund").unwrap();
    assert_eq!(notes.len(), 2, "2000 + 500");
    assert_eq!(status(&s.client, &tickets[0]).status, "modified");
    let refused = status(&s.client, &tickets[1]);
    assert_eq!((refused.status.as_str(), refused.denied), ("revoked", true));
    assert_eq!(status(&s.client, &tickets[2]).status, "refunded");
    let fresh = alice.instrument(&new[0]).unwrap().instrument;
    match fresh.attributes() {
        tessera_core::Attributes::Ticket(t) => assert_eq!((t.zone.as_str(), t.seat.as_deref()), ("south", Some("7"))),
        _ => panic!("not a ticket"),
    }
    let totals = s.registry.registry.store().money_totals("EUR").unwrap();
    assert_eq!(totals.paid_in - totals.paid_out, totals.balances + totals.active_notes);
}

#[test]
fn sale_claim_pending_then_refunded_when_the_seller_sold_twice() {
    let s = setup();
    let mut sale = sale(&s, Arc::new(SystemClock));
    let claim = wire::b64(&sale.claim.to_bytes());
    let item = || wire::UploadItemJson::Sale { claim: claim.clone(), double_sale: None };
    let account = sale.carol.signer(&sale.carol.account_key()).unwrap();
    // Nothing registered about the ticket yet: the claim waits.
    assert_eq!(judge(&s, &account, item()).unwrap().0, "pending");
    // Alice sells the same ticket to Bob instead, and Bob reconciles first.
    let bk = sale.bob.new_holder_key().unwrap();
    let to_bob = sale.alice.endorse(&sale.ticket, bk, ExchangeId([0x44; 16]), ExchangeId([0x45; 16])).unwrap();
    sale.bob.import_instrument(to_bob).unwrap();
    WalletSession::new(&mut sale.bob, s.client.clone()).sync().unwrap();
    // Carol's claim now wins her money back, once.
    let (verdict, notes) = judge(&s, &account, item()).unwrap();
    assert_eq!((verdict.as_str(), notes.len()), ("refunded", 2));
    for n in &notes {
        sale.carol.import(&wire::unb64(n).unwrap()).unwrap();
    }
    let before = s.registry.registry.store().dump().unwrap();
    assert_eq!(judge(&s, &account, item()).unwrap(), ("refunded".to_owned(), vec![]));
    assert_eq!(s.registry.registry.store().dump().unwrap(), before, "judged once");
    money_balances(&s);
}

fn certify(s: &Setup, key: &PublicKey, role: &str, name: &str) {
    let _: wire::PartyResponse = s
        .client
        .post(
            "/admin/parties",
            &s.operator,
            &wire::PartyRequest { key: key.to_hex(), role: role.into(), name: name.into(), not_after: u64::MAX / 2 },
        )
        .unwrap();
}

#[test]
fn wallet_uploads_examination_certificates_once() {
    use tessera_core::presentation::{ChallengeBody, ExaminationBody, Instruction, Outcome};
    use tessera_core::{Signed, Status};
    let s = setup();
    let gate = LocalSigner::from_seed(&[31; 32]);
    certify(&s, &gate.public_key(), "gate", "North 2");
    let mut alice = wallet(s.dir.path(), "alice");
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    a.sync().unwrap();
    a.top_up("EUR", 5000, "card-x").unwrap();
    let ticket = a.buy("finals", "north", None).unwrap();
    drop(a);

    // A tap at the gate, through the core's wallet side of the protocol.
    let now = tessera_core::Clock::now(&SystemClock);
    let challenge = Signed::sign(
        ChallengeBody {
            gate: gate.public_key(),
            nonce: ExchangeId([5; 16]),
            event_id: "finals".into(),
            zones: vec!["north".into()],
            instruction: Instruction::Enter,
            time: now,
        },
        &gate,
    )
    .unwrap();
    let pending = alice.answer_challenge(&challenge, Some(&ticket)).unwrap();
    let certificate = |outcome: Outcome, signer: &LocalSigner, counter: u32| {
        Signed::sign(
            ExaminationBody {
                gate: gate.public_key(),
                challenge: challenge.digest(),
                presentation: pending.answer.digest(),
                instrument_id: ticket,
                instruction: Instruction::Enter,
                counter,
                uses_left: 0,
                status: Status::Active,
                outcome,
                record: 1,
                time: now,
            },
            signer,
        )
        .unwrap()
    };
    let admitted = certificate(Outcome::Admitted, &gate, pending.answer.body.counter);
    alice.record_examination(&pending, &admitted).unwrap();
    assert_eq!(status(&s.client, &ticket).uses_left, 1, "the registry has not heard of the use yet");

    // The next sync uploads the certificate; the registered list follows.
    let report = WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert_eq!(report.examinations_recorded, 1);
    assert_eq!(status(&s.client, &ticket).uses_left, 0);
    let store = s.registry.registry.store().clone();
    let reports = store.examination_reports(&ticket).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].counter, reports[0].gate, reports[0].record.admitted), (1, gate.public_key(), true));
    assert_eq!(reports[0].reported_by, alice.account_key());

    // Again: idempotent, nothing changes.
    let before = store.dump().unwrap();
    let report = WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert_eq!(report.examinations_recorded, 0);
    assert_eq!(store.dump().unwrap(), before);

    // Typed refusals, none of which changes anything.
    let uploader = LocalSigner::from_seed(&[32; 32]);
    let upload = |certificate: String| {
        s.client.post::<_, wire::ReconcileResponse>(
            "/reconcile",
            &uploader,
            &wire::ReconcileRequest { items: vec![wire::UploadItemJson::Examination { certificate }] },
        )
    };
    let refused = |certificate: String, code: &str, st: u16| match upload(certificate).unwrap_err() {
        ClientError::Refused { status, body } => {
            assert_eq!((status, body.error.as_str()), (st, code), "{}", body.message)
        }
        other => panic!("{other}"),
    };
    let stranger = LocalSigner::from_seed(&[33; 32]);
    let mut forged = certificate(Outcome::Admitted, &stranger, 2);
    refused(wire::b64(&forged.to_bytes()), "bad_signature", 422);
    forged.body.gate = stranger.public_key();
    refused(wire::b64(&forged.to_bytes()), "not_gate", 403);
    let mut unknown = admitted.body.clone();
    unknown.instrument_id = tessera_core::InstrumentId([0xab; 16]);
    refused(wire::b64(&Signed::sign(unknown, &gate).unwrap().to_bytes()), "unknown_instrument", 404);
    refused("not base64!".into(), "bad_base64", 400);
    refused(wire::b64(b"\x01\x02"), "malformed_cbor", 400);
    assert_eq!(store.dump().unwrap(), before, "refused certificates change nothing");

    // A refusal at the gate is recorded without a state change; the
    // gate's own bag with the admitted certificate still settles.
    let refusal = certificate(Outcome::Refused(tessera_core::presentation::Refusal::UsedUp), &gate, 3);
    let answer = upload(wire::b64(&refusal.to_bytes())).unwrap();
    assert!(matches!(&answer.results[0], wire::ItemResultJson::Examination { recorded: true, uses_left: 0, .. }));
    assert_eq!(store.examination_reports(&ticket).unwrap().len(), 2);
    let entry = tessera_core::presentation::BagEntry {
        instrument: alice.instrument(&ticket).unwrap().instrument,
        answer: pending.answer.clone(),
        certificate: admitted,
    };
    let bag = Signed::sign(
        tessera_core::presentation::BagBody {
            gate: gate.public_key(),
            bag_number: 1,
            packed_at: now,
            entries: vec![entry],
        },
        &gate,
    )
    .unwrap();
    let settled: wire::SettlementReport =
        s.client.post("/gate/bags", &gate, &wire::BagUpload { bag: wire::b64(&bag.to_bytes()) }).unwrap();
    assert_eq!((settled.bags, settled.admitted), (1, 1));
    assert_eq!(status(&s.client, &ticket).uses_left, 0, "the use counts once");
}

/// Alice (holding a ticket) offers it to Carol for 25.00; Carol accepts and
/// pays with notes. Carol's wallet clock is `carol_clock`; the offer is
/// open for ten minutes from it.
struct Sale {
    alice: Wallet<SqliteStore>,
    bob: Wallet<SqliteStore>,
    carol: Wallet<SqliteStore>,
    ticket: tessera_core::InstrumentId,
    claim: tessera_core::transfer::evidence::SaleClaim,
}

fn sale(s: &Setup, carol_clock: Arc<dyn tessera_core::Clock>) -> Sale {
    use tessera_core::transfer::evidence::SaleClaim;
    use tessera_core::transfer::{Offer, OfferBody, Terms, TransferMessage};
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([1; 32]));
    let offered_at = carol_clock.now();
    let mut carol = Wallet::create_at(s.dir.path().join("carol.db"), &keys, carol_clock).unwrap();
    let mut alice = wallet(s.dir.path(), "alice");
    let mut bob = wallet(s.dir.path(), "bob");
    for w in [&mut alice, &mut bob, &mut carol] {
        WalletSession::new(w, s.client.clone()).sync().unwrap();
    }
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    a.top_up("EUR", 2500, "card-a").unwrap();
    let ticket = a.buy("finals", "north", None).unwrap();
    let mut c = WalletSession::new(&mut carol, s.client.clone());
    c.top_up("EUR", 2500, "card-c").unwrap();
    c.withdraw("EUR", 2500).unwrap();
    let item = alice.instrument(&ticket).unwrap().instrument;
    let holder = alice.signer(&item.holder()).unwrap();
    let payees = vec![alice.new_holder_key().unwrap(), alice.new_holder_key().unwrap()];
    let body = OfferBody {
        offer_id: ExchangeId([0x33; 16]),
        sender: alice.account_key(),
        items: vec![item],
        terms: Terms::Sale { price: tessera_core::Amount::new("EUR", 2500), payee_keys: payees, change: vec![] },
        created_at: offered_at.saturating_sub(1),
        expires_at: offered_at + 600,
    };
    let offer = Offer::sign(body, &alice.signer(&alice.account_key()).unwrap(), &[&holder as &dyn Signer]).unwrap();
    carol.handle_transfer(&TransferMessage::Offer(offer.clone()).to_bytes()).unwrap();
    let step = carol.accept_offer(offer.id()).unwrap();
    let TransferMessage::Acceptance(acceptance) = TransferMessage::from_bytes(&step.send.unwrap()).unwrap() else {
        panic!("expected an acceptance")
    };
    Sale { alice, bob, carol, ticket, claim: SaleClaim { offer, acceptance } }
}

fn judge(s: &Setup, buyer: &LocalSigner, item: wire::UploadItemJson) -> Result<(String, Vec<String>), ClientError> {
    let r: wire::ReconcileResponse =
        s.client.post("/reconcile", buyer, &wire::ReconcileRequest { items: vec![item] })?;
    match r.results.into_iter().next().unwrap() {
        wire::ItemResultJson::Sale { verdict, instruments, .. } => Ok((verdict, instruments)),
        other => panic!("{other:?}"),
    }
}

fn money_balances(s: &Setup) {
    let totals = s.registry.registry.store().money_totals("EUR").unwrap();
    assert_eq!(totals.issued - totals.redeemed, totals.active_notes);
    assert_eq!(totals.paid_in - totals.paid_out, totals.balances + totals.active_notes);
}

#[test]
fn undelivered_sale_is_refunded_after_the_deadline_and_a_late_delivery_refused() {
    use tessera_core::Clock as _;
    let s = setup();
    // Carol accepted eight days ago; the seller never delivered.
    let eight_days_ago = SystemClock.now() - 8 * 24 * 3600;
    let mut sale = sale(&s, Arc::new(tessera_core::ManualClock::new(eight_days_ago)));
    let claim = wire::b64(&sale.claim.to_bytes());
    let item = || wire::UploadItemJson::Sale { claim: claim.clone(), double_sale: None };
    let account = sale.carol.signer(&sale.carol.account_key()).unwrap();
    let (verdict, notes) = judge(&s, &account, item()).unwrap();
    assert_eq!((verdict.as_str(), notes.len()), ("refunded", 2), "past the delivery window");
    let before = s.registry.registry.store().dump().unwrap();
    assert_eq!(judge(&s, &account, item()).unwrap(), ("refunded".to_owned(), vec![]));
    assert_eq!(s.registry.registry.store().dump().unwrap(), before, "refunded once");
    money_balances(&s);

    // Alice delivers now, too late: the delivery is refused, Carol keeps
    // her money and the registered holder stays Alice's key.
    let a = &sale.claim.acceptance.body;
    let late = sale.alice.endorse(&sale.ticket, a.holder_keys[0], a.offer_id, a.acceptance_id).unwrap();
    let alice_account = sale.alice.signer(&sale.alice.account_key()).unwrap();
    let refused = s.client.post::<_, wire::ReconcileResponse>(
        "/reconcile",
        &alice_account,
        &wire::ReconcileRequest {
            items: vec![wire::UploadItemJson::Chain { instrument: wire::b64(&late.to_bytes()) }],
        },
    );
    match refused.unwrap_err() {
        ClientError::Refused { status, body } => assert_eq!((status, body.error.as_str()), (409, "sale_refunded")),
        other => panic!("{other}"),
    }
    assert_eq!(s.registry.registry.store().dump().unwrap(), before);
    let _ = &mut sale.bob;
}

#[test]
fn double_sale_proof_refunds_the_cheated_buyer_and_is_stored() {
    use tessera_core::transfer::evidence::DoubleSaleProof;
    let s = setup();
    let mut sale = sale(&s, Arc::new(SystemClock));
    let claim = wire::b64(&sale.claim.to_bytes());
    let account = sale.carol.signer(&sale.carol.account_key()).unwrap();
    // While the offer to Carol is open, Alice endorses the ticket to Bob in
    // another exchange; Bob has not reconciled yet.
    let seller_key = sale.alice.instrument(&sale.ticket).unwrap().holder;
    let bk = sale.bob.new_holder_key().unwrap();
    let to_bob = sale.alice.endorse(&sale.ticket, bk, ExchangeId([0x44; 16]), ExchangeId([0x45; 16])).unwrap();
    let proof =
        DoubleSaleProof { offer: sale.claim.offer.clone(), item: 0, endorsement: to_bob.links.last().unwrap().clone() };
    assert_eq!(
        judge(&s, &account, wire::UploadItemJson::Sale { claim: claim.clone(), double_sale: None }).unwrap().0,
        "pending"
    );

    // A proof that does not verify is refused and changes nothing.
    let store = s.registry.registry.store().clone();
    let before = store.dump().unwrap();
    let mut forged = proof.clone();
    forged.endorsement.signature.0[3] ^= 1;
    let bad = judge(
        &s,
        &account,
        wire::UploadItemJson::Sale { claim: claim.clone(), double_sale: Some(wire::b64(&forged.to_bytes())) },
    );
    match bad.unwrap_err() {
        ClientError::Refused { status, body } => assert_eq!((status, body.error.as_str()), (422, "bad_proof")),
        other => panic!("{other}"),
    }
    assert_eq!(store.dump().unwrap(), before);

    let with_proof =
        || wire::UploadItemJson::Sale { claim: claim.clone(), double_sale: Some(wire::b64(&proof.to_bytes())) };
    let (verdict, notes) = judge(&s, &account, with_proof()).unwrap();
    assert_eq!((verdict.as_str(), notes.len()), ("refunded", 2));
    let offer_id = sale.claim.offer.id();
    let stored = store.double_sales(&offer_id).unwrap();
    assert_eq!((stored.len(), stored[0].signer, stored[0].item), (1, seller_key, 0));
    assert_eq!(stored[0].proof, proof.to_bytes());
    assert!(store.flagged(&seller_key).unwrap().is_some(), "the seller's key is flagged");
    let notices = store.notices(&[sale.alice.account_key()], 0).unwrap();
    assert!(notices.iter().any(|n| n.kind == "double-sale"), "the seller is told");
    for n in &notes {
        sale.carol.import(&wire::unb64(n).unwrap()).unwrap();
    }
    let before = store.dump().unwrap();
    assert_eq!(judge(&s, &account, with_proof()).unwrap(), ("refunded".to_owned(), vec![]));
    assert_eq!(store.dump().unwrap(), before, "stored and refunded once");

    // Bob's purchase stands: his chain registers when he reconciles.
    sale.bob.import_instrument(to_bob).unwrap();
    WalletSession::new(&mut sale.bob, s.client.clone()).sync().unwrap();
    assert_eq!(status(&s.client, &sale.ticket).holder, bk.to_hex());
    money_balances(&s);
}

/// Found by `registry/tests/crash.rs`: a request whose answer was lost
/// (the registry crashed after its commit, or the link broke) and that the
/// client sends again — the same body, a fresh nonce — used to withdraw
/// twice with the first notes never delivered, to refuse a refund whose
/// notes were never delivered (`not_active`), and to leave a second pending
/// gift for the same ticket. Now a retry gets the earlier answer, and the
/// wallet's next sync imports what was issued to its keys.
#[test]
fn a_request_retried_after_its_answer_was_lost_gets_the_same_answer() {
    let s = setup();
    let mut alice = wallet(s.dir.path(), "alice");
    let mut bob = wallet(s.dir.path(), "bob");
    for w in [&mut alice, &mut bob] {
        WalletSession::new(w, s.client.clone()).sync().unwrap();
    }
    let account = alice.signer(&alice.account_key()).unwrap();
    let store = s.registry.registry.store().clone();
    WalletSession::new(&mut alice, s.client.clone()).top_up("EUR", 10_000, "card-r").unwrap();

    // A withdrawal: the first answer never reaches the wallet.
    let holders = (0..2).map(|_| alice.new_holder_key().unwrap().to_hex()).collect();
    let withdraw = wire::WithdrawRequest { amount: wire::AmountJson { currency: "EUR".into(), minor: 3000 }, holders };
    let first: wire::InstrumentsResponse = s.client.post("/money/withdraw", &account, &withdraw).unwrap();
    let again: wire::InstrumentsResponse = s.client.post("/money/withdraw", &account, &withdraw).unwrap();
    assert_eq!((again.instruments, again.balance), (first.instruments, Some(7000)), "withdrawn once");
    WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert_eq!(alice.balance().unwrap()[0].available, 3000, "the sync delivers the notes");

    // A refund: the ticket given back, the answer lost, the body sent again.
    let ticket = WalletSession::new(&mut alice, s.client.clone()).buy("finals", "north", None).unwrap();
    let holders = (0..2).map(|_| alice.new_holder_key().unwrap().to_hex()).collect();
    let back = alice
        .endorse(&ticket, s.registry.issuer_key, ExchangeId::returned_by(&alice.account_key()), ExchangeId::NONE)
        .unwrap();
    let refund = wire::RefundRequest { ticket: wire::b64(&back.to_bytes()), holders };
    let first: wire::InstrumentsResponse = s.client.post("/refund", &account, &refund).unwrap();
    let again: wire::InstrumentsResponse = s.client.post("/refund", &account, &refund).unwrap();
    assert_eq!(again.instruments, first.instruments, "the same notes, refunded once");
    let totals = store.money_totals("EUR").unwrap();
    assert_eq!((totals.paid_in, totals.paid_out), (10_000 + 2500, 2500));
    WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert_eq!(alice.balance().unwrap()[0].available, 2500, "the refund's notes arrive at the sync");
    assert_eq!(alice.instrument(&ticket).unwrap().holding, tessera_core::store::Holding::Gone);

    // A redemption with pay-out, sent twice (fresh nonce, same notes): the
    // account is credited and the money paid out once, and the retry gets
    // the balance instead of a refusal.
    let notes = alice.notes().unwrap();
    assert_eq!(notes.len(), 2, "the refund's 2000 and 500");
    let given_back = notes
        .iter()
        .map(|n| {
            let back = alice
                .endorse(&n.id, s.registry.issuer_key, ExchangeId::returned_by(&alice.account_key()), ExchangeId::NONE)
                .unwrap();
            wire::b64(&back.to_bytes())
        })
        .collect::<Vec<_>>();
    let redeem = wire::RedeemRequest { notes: given_back, payout: true };
    let first: wire::BalanceResponse = s.client.post("/money/redeem", &account, &redeem).unwrap();
    let after_first = store.dump().unwrap();
    let again: wire::BalanceResponse = s.client.post("/money/redeem", &account, &redeem).unwrap();
    assert_eq!((again.currency.as_str(), again.balance), ("EUR", first.balance), "the same answer");
    assert_eq!(store.dump().unwrap(), after_first, "the retry changed nothing");
    let totals = store.money_totals("EUR").unwrap();
    assert_eq!((totals.paid_out, totals.active_notes), (2500 + 2500, 0), "paid out once");
    // The same notes in another request (one of them alone) are spent.
    let one = wire::RedeemRequest { notes: redeem.notes[..1].to_vec(), payout: false };
    let refused = s.client.post::<_, wire::BalanceResponse>("/money/redeem", &account, &one).unwrap_err();
    assert!(refused.to_string().contains("note_not_spendable"), "{refused}");
    assert_eq!(store.dump().unwrap(), after_first);

    // A gift left twice is left once.
    let ticket = WalletSession::new(&mut alice, s.client.clone()).buy("finals", "north", None).unwrap();
    let back = alice
        .endorse(&ticket, s.registry.issuer_key, ExchangeId::returned_by(&alice.account_key()), ExchangeId::NONE)
        .unwrap();
    let gift = wire::GiftRequest {
        instrument: wire::b64(&back.to_bytes()),
        recipient: bob.account_key().to_hex(),
        return_holder: alice.new_holder_key().unwrap().to_hex(),
    };
    let first: wire::GiftResponse = s.client.post("/gifts", &account, &gift).unwrap();
    let again: wire::GiftResponse = s.client.post("/gifts", &account, &gift).unwrap();
    assert_eq!(again.gift_id, first.gift_id);
    assert_eq!(WalletSession::new(&mut bob, s.client.clone()).pending_gifts().unwrap().len(), 1);
}

/// A gate over the core's offline decision: its key, policy and used set.
struct TestGate {
    key: LocalSigner,
    policy: tessera_core::presentation::GatePolicy,
    used: std::collections::BTreeMap<tessera_core::InstrumentId, tessera_core::presentation::PriorUse>,
    records: u64,
}

impl TestGate {
    fn new(s: &Setup, seed: u8) -> Self {
        use tessera_core::presentation::{GatePolicy, Instruction, ReentryPolicy};
        let key = LocalSigner::from_seed(&[seed; 32]);
        certify(s, &key.public_key(), "gate", "North 9");
        let policy = GatePolicy {
            event_id: "finals".into(),
            zones: vec!["north".into()],
            instruction: Instruction::Enter,
            reentry: ReentryPolicy::Refuse,
        };
        Self { key, policy, used: Default::default(), records: 0 }
    }

    fn challenge(&self, now: u64) -> tessera_core::Signed<tessera_core::presentation::ChallengeBody> {
        let body = tessera_core::presentation::ChallengeBody {
            gate: self.key.public_key(),
            nonce: ExchangeId([self.records as u8 + 1; 16]),
            event_id: "finals".into(),
            zones: vec!["north".into()],
            instruction: tessera_core::presentation::Instruction::Enter,
            time: now,
        };
        tessera_core::Signed::sign(body, &self.key).unwrap()
    }

    /// Decides offline with the trust and deny lists of its last sync, as
    /// a gate app does; records an admission in its used set.
    fn tap(
        &mut self,
        s: &Setup,
        challenge: &tessera_core::Signed<tessera_core::presentation::ChallengeBody>,
        presentation: tessera_core::presentation::Presentation,
        now: u64,
    ) -> tessera_core::presentation::BagEntry {
        use tessera_core::presentation::{ExaminationBody, GateContext, Outcome, PriorUse, decide};
        let trust = s.registry.registry.trust_list().unwrap();
        let deny = s.registry.registry.deny_list().unwrap().body;
        let ctx = GateContext { verifier: tessera_core::Verifier::new(&trust, &deny), ledger: &self.used, now };
        let (outcome, instruction, uses_left, status, _) = decide(&self.policy, challenge, &presentation, &ctx);
        self.records += 1;
        let answer = presentation.answer;
        let certificate = tessera_core::Signed::sign(
            ExaminationBody {
                gate: self.key.public_key(),
                challenge: challenge.digest(),
                presentation: answer.digest(),
                instrument_id: answer.body.instrument_id,
                instruction,
                counter: answer.body.counter,
                uses_left,
                status,
                outcome,
                record: self.records,
                time: now,
            },
            &self.key,
        )
        .unwrap();
        if outcome == Outcome::Admitted {
            let consumed = self.used.get(&answer.body.instrument_id).map_or(0, |p| p.uses_consumed);
            self.used.insert(
                answer.body.instrument_id,
                PriorUse {
                    uses_consumed: consumed + 1,
                    holder: presentation.instrument.holder(),
                    instrument: presentation.instrument.clone(),
                },
            );
        }
        tessera_core::presentation::BagEntry { instrument: presentation.instrument, answer, certificate }
    }

    /// At the doors: the seller's stale copy is admitted first, then the
    /// buyer is refused, already used. Returns both records.
    fn stale_copy_first(
        &mut self,
        s: &Setup,
        (stale, seller): (&tessera_core::Instrument, &LocalSigner),
        (buyer, ticket): (&Wallet<SqliteStore>, tessera_core::InstrumentId),
        now: u64,
    ) -> (tessera_core::presentation::BagEntry, tessera_core::presentation::BagEntry) {
        use tessera_core::presentation::{Outcome, Presentation, Refusal};
        let tap = self.challenge(now);
        let stale_entry = self.tap(s, &tap, stale_answer(stale, seller, &tap, now), now);
        assert_eq!(stale_entry.certificate.body.outcome, Outcome::Admitted);
        let tap = self.challenge(now + 5);
        let pending = buyer.answer_challenge(&tap, Some(&ticket)).unwrap();
        let copy = Presentation { instrument: buyer.instrument(&ticket).unwrap().instrument, answer: pending.answer };
        let buyer_entry = self.tap(s, &tap, copy, now + 5);
        assert_eq!(buyer_entry.certificate.body.outcome, Outcome::Refused(Refusal::AlreadyUsed));
        (stale_entry, buyer_entry)
    }

    fn bag(&self, number: u64, entries: Vec<tessera_core::presentation::BagEntry>) -> wire::BagUpload {
        let body = tessera_core::presentation::BagBody {
            gate: self.key.public_key(),
            bag_number: number,
            packed_at: 1,
            entries,
        };
        wire::BagUpload { bag: wire::b64(&tessera_core::Signed::sign(body, &self.key).unwrap().to_bytes()) }
    }
}

/// What a modified wallet signs to present a copy it no longer holds (an
/// honest wallet refuses to present an instrument it passed on).
fn stale_answer(
    instrument: &tessera_core::Instrument,
    holder: &LocalSigner,
    challenge: &tessera_core::Signed<tessera_core::presentation::ChallengeBody>,
    time: u64,
) -> tessera_core::presentation::Presentation {
    use tessera_core::presentation::{Instruction, Presentation, PresentationBody};
    let body = PresentationBody {
        challenge: challenge.digest(),
        instrument_id: instrument.id(),
        sequence: instrument.sequence(),
        tip: instrument.tip_digest(),
        instruction: Instruction::Enter,
        change: Instruction::Enter.apply(1),
        counter: 1,
        time,
    };
    Presentation { instrument: instrument.clone(), answer: tessera_core::Signed::sign(body, holder).unwrap() }
}

#[test]
fn stale_copy_used_after_transfer_flags_the_seller_and_replaces_the_buyers_ticket() {
    use tessera_core::presentation::{Outcome, Presentation};
    use tessera_core::proof::UsedAfterTransferProof;
    use tessera_core::store::{Holding, InstrumentFilter, WalletStore as _};
    use tessera_core::{Clock as _, ManualClock};
    let s = setup();
    let store = s.registry.registry.store().clone();
    let now = SystemClock.now();
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([1; 32]));
    // Alice sells an hour before the doors open and keeps a copy; Dave sells
    // honestly, after using his coupon-like ticket at the gate first.
    let an_hour_ago: Arc<dyn tessera_core::Clock> = Arc::new(ManualClock::new(now - 3600));
    let mut alice = Wallet::create_at(s.dir.path().join("alice.db"), &keys, an_hour_ago.clone()).unwrap();
    let mut dave = Wallet::create_at(s.dir.path().join("dave.db"), &keys, an_hour_ago).unwrap();
    let mut bob = wallet(s.dir.path(), "bob");
    let mut carol = wallet(s.dir.path(), "carol");
    let mut bought = Vec::new();
    for (w, card) in [(&mut alice, "card-a"), (&mut dave, "card-d")] {
        let mut session = WalletSession::new(w, s.client.clone());
        session.sync().unwrap();
        session.top_up("EUR", 2500, card).unwrap();
        bought.push(session.buy("finals", "north", None).unwrap());
    }
    let (ticket, honest) = (bought[0], bought[1]);
    let stale = alice.instrument(&ticket).unwrap().instrument;
    let seller_key = stale.holder();
    let seller = alice.signer(&seller_key).unwrap();
    let mut gate = TestGate::new(&s, 51);

    // Dave is admitted two hours ago, then passes the ticket to Carol.
    let early = gate.challenge(now - 7200);
    let dave_copy = dave.instrument(&honest).unwrap().instrument;
    let dave_signer = dave.signer(&dave_copy.holder()).unwrap();
    let dave_entry = gate.tap(&s, &early, stale_answer(&dave_copy, &dave_signer, &early, now - 7200), now - 7200);
    assert_eq!(dave_entry.certificate.body.outcome, Outcome::Admitted);
    for (from, id, to) in [(&mut alice, ticket, &mut bob), (&mut dave, honest, &mut carol)] {
        WalletSession::new(to, s.client.clone()).sync().unwrap();
        let key = to.new_holder_key().unwrap();
        let passed = from.endorse(&id, key, ExchangeId([0x71; 16]), ExchangeId([0x72; 16])).unwrap();
        to.import_instrument(passed).unwrap();
        from.confirm_transferred(&id).unwrap();
        // The buyer reconciles: the registered chain names the seller's link.
        assert_eq!(WalletSession::new(to, s.client.clone()).sync().unwrap().reconcile.certified, vec![id]);
    }

    // At the doors, offline, the gate admits Alice's stale copy first; Bob
    // is then refused: already used.
    let (stale_entry, bob_entry) = gate.stale_copy_first(&s, (&stale, &seller), (&bob, ticket), now);

    // Bad input first: a bag whose stale answer was altered (to re-date
    // it), or whose certificate belongs to another answer, is refused
    // whole with a typed error and changes nothing.
    let before = store.dump().unwrap();
    let refused = |bag: &wire::BagUpload, code: &str| match s
        .client
        .post::<_, wire::SettlementReport>("/gate/bags", &gate.key, bag)
        .unwrap_err()
    {
        ClientError::Refused { status, body } => assert_eq!((status, body.error.as_str()), (422, code)),
        other => panic!("{other}"),
    };
    let mut redated = stale_entry.clone();
    redated.answer.body.time += 3600;
    refused(&gate.bag(1, vec![redated]), "bad_bag");
    let mut mismatched = stale_entry.clone();
    mismatched.certificate = bob_entry.certificate.clone();
    refused(&gate.bag(1, vec![mismatched]), "bad_bag");
    assert_eq!(store.dump().unwrap(), before, "a refused bag changes nothing");

    // The gate uploads its bag: it settles as before, and the registry
    // proves Alice's key used the ticket after passing it on.
    let bag = gate.bag(1, vec![dave_entry, stale_entry, bob_entry]);
    let report: wire::SettlementReport = s.client.post("/gate/bags", &gate.key, &bag).unwrap();
    assert_eq!((report.bags, report.admitted, report.refused, report.replayed), (1, 2, 1, false));
    assert_eq!(report.used_after_transfer.len(), 1, "Dave's use before his sale proves nothing");
    let proof = UsedAfterTransferProof::from_bytes(&wire::unb64(&report.used_after_transfer[0]).unwrap()).unwrap();
    assert_eq!(proof.verify(), Ok(seller_key), "anyone can check the proof offline");
    let stored = store.used_after_transfers(&ticket).unwrap();
    assert_eq!((stored.len(), stored[0].signer, stored[0].sequence), (1, seller_key, 0));
    assert_eq!(stored[0].proof, proof.to_bytes());
    assert!(store.flagged(&seller_key).unwrap().unwrap().contains("after passing it on"));
    let shown = status(&s.client, &ticket);
    assert!(shown.denied, "the stale copy is stopped at every gate");
    assert_eq!(shown.status, "modified", "replaced for its registered holder");
    assert_eq!(shown.proofs.len(), 1);
    assert_eq!(
        (shown.proofs[0].kind.as_str(), shown.proofs[0].signer.clone(), shown.proofs[0].proof.clone()),
        ("used-after-transfer", seller_key.to_hex(), report.used_after_transfer[0].clone())
    );
    // The same bag again: its settlement, nothing changes.
    let before = store.dump().unwrap();
    let again: wire::SettlementReport = s.client.post("/gate/bags", &gate.key, &bag).unwrap();
    assert!(again.replayed);
    assert_eq!(store.dump().unwrap(), before, "a bag uploaded again changes nothing");

    // Bob's next sync brings a replacement, which the gate admits.
    let report = WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    assert!(report.notices.iter().any(|(kind, _)| kind == "used-after-transfer"), "{:?}", report.notices);
    let held = bob.instruments(InstrumentFilter { kind: None, holding: Some(Holding::Held) }).unwrap();
    let replacement = held.iter().find(|i| i.id != ticket).expect("a replacement ticket");
    assert_eq!((replacement.uses_left, replacement.event_id.as_deref()), (1, Some("finals")));
    let tap = gate.challenge(now + 10);
    let pending = bob.answer_challenge(&tap, Some(&replacement.id)).unwrap();
    let instrument = bob.instrument(&replacement.id).unwrap().instrument;
    let entry = gate.tap(&s, &tap, Presentation { instrument, answer: pending.answer }, now + 10);
    assert_eq!(entry.certificate.body.outcome, Outcome::Admitted, "Bob gets in");
    // Alice's wallet is told at its next sync (and its sync still works
    // although the replacement notice for her account is Bob's ticket).
    let report = WalletSession::new(&mut alice, s.client.clone()).sync().unwrap();
    assert!(report.notices.iter().any(|(kind, _)| kind == "used-after-transfer"));
    // No honest party is flagged, and Dave's ticket stands with Carol.
    for key in
        [bob.account_key(), carol.account_key(), dave.account_key(), alice.account_key(), gate.key.public_key()]
            .into_iter()
            .chain([&bob, &carol, &dave].iter().flat_map(|w| {
                w.store().keys(tessera_core::store::KeyRole::Holder).unwrap().into_iter().map(|k| k.public)
            }))
    {
        assert_eq!(store.flagged(&key).unwrap(), None, "{key:?} is honest");
    }
    assert!(store.used_after_transfers(&honest).unwrap().is_empty());
    assert_eq!(status(&s.client, &honest).holder, carol.instrument(&honest).unwrap().holder.to_hex());
}

#[test]
fn stale_copy_in_a_bag_settled_before_the_buyer_reconciles_is_proven_when_the_buyer_does() {
    use tessera_core::store::{Holding, InstrumentFilter};
    use tessera_core::{Clock as _, ManualClock};
    let s = setup();
    let store = s.registry.registry.store().clone();
    let mut gate = TestGate::new(&s, 52);
    let now = SystemClock.now();
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([1; 32]));
    let an_hour_ago: Arc<dyn tessera_core::Clock> = Arc::new(ManualClock::new(now - 3600));
    let mut alice = Wallet::create_at(s.dir.path().join("alice.db"), &keys, an_hour_ago).unwrap();
    let mut bob = wallet(s.dir.path(), "bob");
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    a.sync().unwrap();
    a.top_up("EUR", 2500, "card-a").unwrap();
    let ticket = a.buy("finals", "north", None).unwrap();
    WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    let stale = alice.instrument(&ticket).unwrap().instrument;
    let seller = alice.signer(&stale.holder()).unwrap();
    // Alice passes the ticket to Bob an hour before the doors open; Bob
    // does not reconcile before the event.
    let key = bob.new_holder_key().unwrap();
    let passed = alice.endorse(&ticket, key, ExchangeId([0x73; 16]), ExchangeId([0x74; 16])).unwrap();
    bob.import_instrument(passed).unwrap();
    alice.confirm_transferred(&ticket).unwrap();
    let (stale_entry, _) = gate.stale_copy_first(&s, (&stale, &seller), (&bob, ticket), now);

    // The gate's bag arrives first: Alice's key is still the registered
    // holder, so nothing is proven yet.
    let report: wire::SettlementReport =
        s.client.post("/gate/bags", &gate.key, &gate.bag(1, vec![stale_entry])).unwrap();
    assert!(report.used_after_transfer.is_empty());
    assert_eq!(store.flagged(&seller.public_key()).unwrap(), None);

    // Bob reconciles after the event: registering Alice's link to him
    // proves her stale copy from the admission the bag left, and his same
    // sync brings the replacement.
    let sync = WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    assert!(sync.notices.iter().any(|(kind, _)| kind == "used-after-transfer"), "{:?}", sync.notices);
    let stored = store.used_after_transfers(&ticket).unwrap();
    assert_eq!((stored.len(), stored[0].signer), (1, seller.public_key()));
    assert!(store.flagged(&seller.public_key()).unwrap().is_some());
    assert_eq!(store.flagged(&key).unwrap(), None);
    let held = bob.instruments(InstrumentFilter { kind: None, holding: Some(Holding::Held) }).unwrap();
    let replacement = held.iter().find(|i| i.id != ticket).expect("a replacement ticket");
    assert_eq!(replacement.uses_left, 1);
    // Again: nothing changes.
    let before = store.dump().unwrap();
    WalletSession::new(&mut bob, s.client.clone()).sync().unwrap();
    assert_eq!(store.dump().unwrap(), before, "reconciling again changes nothing");
}

/// A refund, a gift or a redemption whose request never reached a
/// registry that answers (down past the client's retries) leaves the
/// instrument endorsed to the registry, pending out: calling the flow again
/// sends that endorsement again and completes it (before, the second call
/// was refused `NotHeld`, and the instrument stayed pending out for good).
#[test]
fn a_refund_or_gift_that_never_reached_the_registry_resumes_when_called_again() {
    let s = setup();
    let (mut alice, mut bob, refunded, gifted) = alice_with_two_tickets(&s, "card-resume");
    // Both flows endorsed the instrument to the registry, then their request
    // was lost (what a session leaves when the registry never answers).
    for id in [&refunded, &gifted] {
        alice
            .endorse(id, s.registry.issuer_key, ExchangeId::returned_by(&alice.account_key()), ExchangeId::NONE)
            .unwrap();
        assert_eq!(alice.instrument(id).unwrap().holding, tessera_core::store::Holding::PendingOut);
    }
    // …and complete when called again against the registry.
    let mut a = WalletSession::new(&mut alice, s.client.clone());
    assert_eq!(a.refund(&refunded).unwrap().len(), 2, "2000 + 500");
    a.gift(&gifted, &bob.account_key()).unwrap();
    assert_eq!(status(&s.client, &refunded).status, "refunded");
    assert_eq!(WalletSession::new(&mut bob, s.client.clone()).pending_gifts().unwrap().len(), 1);
    money_balances(&s);
}
