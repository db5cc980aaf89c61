//! Two `tessera-registry serve` processes over one PostgreSQL database,
//! clients uploading conflicting endorsements and spending the same notes
//! through both at once: exactly one endorsement registered per
//! (instrument, sequence), each note spent once, and the money supply
//! (issued − redeemed) equal to the value of the valid notes.
//!
//! `#[ignore]`d: `scripts/test.d/40-registry.sh` runs it with a throwaway
//! cluster; without `TESSERA_TEST_POSTGRES_URL` it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestDatabase, open_finals, serve};
use tessera_core::{ExchangeId, Instrument, LocalSigner, PublicKey, Signed, Signer, Wire};
use tessera_registry::client::{ClientError, RegistryClient};
use tessera_registry::embedded::signers_from_seed;
use tessera_registry::store::RegistryStore;
use tessera_registry::{PostgresRegistry, wire};

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn two_registries_never_register_twice_or_lose_money() {
    let db = TestDatabase::create("twoproc");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("registry.key");
    std::fs::write(&key_file, hex::encode([11u8; 32])).unwrap();
    let (a, url_a) = serve(&db.url, &key_file);
    let (b, url_b) = serve(&db.url, &key_file);
    let (ca, cb) = (RegistryClient::new(&url_a), RegistryClient::new(&url_b));
    let (operator, _) = signers_from_seed(&[11; 32]);
    let organiser = LocalSigner::from_seed(&[12; 32]);
    open_finals(&cb, &operator, &organiser, &["z"], 100);

    // Tickets, each endorsed twice by its holder: one branch per process.
    const TICKETS: usize = 24;
    let mut branches: Vec<(Instrument, Instrument)> = Vec::new();
    for i in 0..TICKETS {
        let holder = LocalSigner::from_seed(&[i as u8 + 100; 32]);
        let issued: wire::InstrumentsResponse = ca
            .post(
                "/issue/ticket",
                &organiser,
                &wire::IssueTicketRequest {
                    event_id: "finals".into(),
                    zone: "z".into(),
                    seat: None,
                    holder: holder.public_key().to_hex(),
                },
            )
            .unwrap();
        let t = Instrument::from_bytes(&wire::unb64(&issued.instruments[0]).unwrap()).unwrap();
        let fork = |to: u8| {
            let body = t.next_endorsement(PublicKey([to; 32]), ExchangeId([to; 16]), ExchangeId::NONE, 1);
            t.with_link(Signed::sign(body, &holder).unwrap())
        };
        branches.push((fork(1), fork(2)));
    }
    let uploader = LocalSigner::from_seed(&[13; 32]);
    let upload = |client: &RegistryClient, inst: &Instrument| -> wire::ItemResultJson {
        let r: wire::ReconcileResponse = client
            .post(
                "/reconcile",
                &uploader,
                &wire::ReconcileRequest {
                    items: vec![wire::UploadItemJson::Chain { instrument: wire::b64(&inst.to_bytes()) }],
                },
            )
            .unwrap();
        r.results.into_iter().next().unwrap()
    };

    // Money: notes withdrawn through A, then each redeemed through both at once.
    let wallet = LocalSigner::from_seed(&[14; 32]);
    let _: wire::BalanceResponse = ca
        .post(
            "/money/topup",
            &wallet,
            &wire::TopUpRequest {
                amount: wire::AmountJson { currency: "EUR".into(), minor: 8500 },
                payment: "p1".into(),
            },
        )
        .unwrap();
    let note_holders: Vec<LocalSigner> = (0..4).map(|i| LocalSigner::from_seed(&[i + 200; 32])).collect();
    let notes: wire::InstrumentsResponse = ca
        .post(
            "/money/withdraw",
            &wallet,
            &wire::WithdrawRequest {
                amount: wire::AmountJson { currency: "EUR".into(), minor: 8500 },
                holders: note_holders.iter().map(|h| h.public_key().to_hex()).collect(),
            },
        )
        .unwrap();
    let issuer_key = PublicKey::from_hex(&ca.info().unwrap().issuer_key).unwrap();
    let endorsed: Vec<String> = notes
        .instruments
        .iter()
        .map(|n| {
            let inst = Instrument::from_bytes(&wire::unb64(n).unwrap()).unwrap();
            let signer = note_holders.iter().find(|h| h.public_key() == inst.holder()).unwrap();
            let body =
                inst.next_endorsement(issuer_key, ExchangeId::returned_by(&wallet.public_key()), ExchangeId::NONE, 1);
            wire::b64(&inst.with_link(Signed::sign(body, signer).unwrap()).to_bytes())
        })
        .collect();

    let redeem = |client: &RegistryClient| {
        endorsed
            .iter()
            .filter(|n| {
                let r: Result<wire::BalanceResponse, _> = client.post(
                    "/money/redeem",
                    &wallet,
                    &wire::RedeemRequest { notes: vec![(*n).clone()], payout: true },
                );
                match r {
                    Ok(_) => true,
                    Err(ClientError::Refused { status, .. }) if (400..500).contains(&status) => false,
                    Err(e) => panic!("unexpected {e}"),
                }
            })
            .count()
    };
    let redeem = &redeem;
    let (results_a, results_b, redeemed) = std::thread::scope(|s| {
        let ha = s.spawn(|| branches.iter().map(|(x, _)| upload(&ca, x)).collect::<Vec<_>>());
        let hb = s.spawn(|| branches.iter().rev().map(|(_, y)| upload(&cb, y)).collect::<Vec<_>>());
        let ra = s.spawn(|| redeem(&ca));
        let rb = s.spawn(|| redeem(&cb));
        (ha.join().unwrap(), hb.join().unwrap(), ra.join().unwrap() + rb.join().unwrap())
    });
    drop((a, b));

    let store = PostgresRegistry::open(&db.url).unwrap();
    let mut registered = 0;
    let mut conflicts = 0;
    for r in results_a.iter().chain(results_b.iter()) {
        match r {
            wire::ItemResultJson::Registered { .. } => registered += 1,
            wire::ItemResultJson::Conflict { .. } => conflicts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((registered, conflicts), (TICKETS, TICKETS), "one branch registered, one caught, per ticket");
    for (x, _) in &branches {
        let links = store.links(&x.id()).unwrap();
        assert_eq!(links.len(), 1, "exactly one endorsement registered for {}", x.id());
        assert_eq!(store.equivocations(&x.id()).unwrap().len(), 1);
    }
    // Each note is sent through both processes: the second to arrive gets
    // the balance again (the same redemption), and the totals below show
    // each credited and paid out once.
    assert_eq!(redeemed, 2 * endorsed.len(), "both answers are the redemption's");
    let t = store.money_totals("EUR").unwrap();
    assert_eq!(t.issued - t.redeemed, t.active_notes, "{t:?}");
    assert_eq!(t.paid_in - t.paid_out, t.balances + t.active_notes, "{t:?}");
    assert_eq!((t.paid_in, t.paid_out, t.active_notes), (8500, 8500, 0));
    drop(store);
}
