//! Two `tessera-registry serve` processes over one PostgreSQL database: for
//! each of several sales past their delivery deadline, the buyer's claim
//! (which refunds) goes to one process while the seller's late delivery
//! goes to the other, at the same moment. Exactly one of the two wins each
//! time — never the buyer with both ticket and money — and the money
//! supply adds up.
//!
//! `#[ignore]`d: `scripts/test.d/40-registry.sh` runs it with a throwaway
//! cluster; without `TESSERA_TEST_POSTGRES_URL` it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestDatabase, open_finals, serve};
use std::sync::Arc;
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::transfer::evidence::SaleClaim;
use tessera_core::transfer::{Offer, OfferBody, Terms, TransferMessage};
use tessera_core::{Clock as _, ExchangeId, Instrument, LocalSigner, ManualClock, Signer, SystemClock, Wallet, Wire};
use tessera_registry::client::{ClientError, RegistryClient, WalletSession};
use tessera_registry::embedded::signers_from_seed;
use tessera_registry::store::RegistryStore;
use tessera_registry::{PostgresRegistry, wire};

const SALES: usize = 16;

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn a_refund_and_the_late_delivery_it_races_never_both_stand() {
    let db = TestDatabase::create("refundrace");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("registry.key");
    std::fs::write(&key_file, hex::encode([21u8; 32])).unwrap();
    let (a, url_a) = serve(&db.url, &key_file);
    let (b, url_b) = serve(&db.url, &key_file);
    let (ca, cb) = (RegistryClient::new(&url_a), RegistryClient::new(&url_b));
    let (operator, _) = signers_from_seed(&[21; 32]);
    open_finals(&ca, &operator, &LocalSigner::from_seed(&[22; 32]), &["z"], 2500);

    // The seller holds a ticket per sale; the buyer accepted each offer
    // eight days ago, paying with notes, and was never delivered.
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([1; 32]));
    let accepted_at = SystemClock.now() - 8 * 24 * 3600;
    let mut seller = Wallet::create_at(dir.path().join("seller.db"), &keys, Arc::new(SystemClock)).unwrap();
    let mut buyer =
        Wallet::create_at(dir.path().join("buyer.db"), &keys, Arc::new(ManualClock::new(accepted_at))).unwrap();
    let mut sales: Vec<(SaleClaim, Instrument)> = Vec::new();
    {
        let mut s = WalletSession::new(&mut seller, ca.clone());
        s.sync().unwrap();
        s.top_up("EUR", 2500 * SALES as u64, "card-s").unwrap();
        let mut b = WalletSession::new(&mut buyer, cb.clone());
        b.sync().unwrap();
        b.top_up("EUR", 2500 * SALES as u64, "card-b").unwrap();
    }
    for i in 0..SALES {
        let ticket = WalletSession::new(&mut seller, ca.clone()).buy("finals", "z", None).unwrap();
        WalletSession::new(&mut buyer, cb.clone()).withdraw("EUR", 2500).unwrap();
        let item = seller.instrument(&ticket).unwrap().instrument;
        let holder = seller.signer(&item.holder()).unwrap();
        let payees = vec![seller.new_holder_key().unwrap(), seller.new_holder_key().unwrap()];
        let body = OfferBody {
            offer_id: ExchangeId([0x40 + i as u8; 16]),
            sender: seller.account_key(),
            items: vec![item],
            terms: Terms::Sale { price: tessera_core::Amount::new("EUR", 2500), payee_keys: payees, change: vec![] },
            created_at: accepted_at - 1,
            expires_at: accepted_at + 600,
        };
        let offer =
            Offer::sign(body, &seller.signer(&seller.account_key()).unwrap(), &[&holder as &dyn Signer]).unwrap();
        buyer.handle_transfer(&TransferMessage::Offer(offer.clone()).to_bytes()).unwrap();
        let step = buyer.accept_offer(offer.id()).unwrap();
        let TransferMessage::Acceptance(acceptance) = TransferMessage::from_bytes(&step.send.unwrap()).unwrap() else {
            panic!("expected an acceptance")
        };
        let a = &acceptance.body;
        let delivery = seller.endorse(&ticket, a.holder_keys[0], a.offer_id, a.acceptance_id).unwrap();
        sales.push((SaleClaim { offer, acceptance }, delivery));
    }

    // Each sale: the claim through A, the delivery through B, at once.
    let buyer_account = buyer.signer(&buyer.account_key()).unwrap();
    let seller_account = seller.signer(&seller.account_key()).unwrap();
    let claim = |(sale, _): &(SaleClaim, Instrument)| -> bool {
        let item = wire::UploadItemJson::Sale { claim: wire::b64(&sale.to_bytes()), double_sale: None };
        let r: wire::ReconcileResponse =
            ca.post("/reconcile", &buyer_account, &wire::ReconcileRequest { items: vec![item] }).unwrap();
        match r.results.into_iter().next().unwrap() {
            wire::ItemResultJson::Sale { verdict, .. } if verdict == "refunded" => true,
            wire::ItemResultJson::Sale { verdict, .. } if verdict == "delivered" => false,
            other => panic!("unexpected {other:?}"),
        }
    };
    let deliver = |(_, delivery): &(SaleClaim, Instrument)| -> bool {
        let item = wire::UploadItemJson::Chain { instrument: wire::b64(&delivery.to_bytes()) };
        let r = cb.post::<_, wire::ReconcileResponse>(
            "/reconcile",
            &seller_account,
            &wire::ReconcileRequest { items: vec![item] },
        );
        match r {
            Ok(r) => matches!(r.results[0], wire::ItemResultJson::Registered { .. }),
            Err(ClientError::Refused { status: 409, body }) if body.error == "sale_refunded" => false,
            Err(e) => panic!("unexpected {e}"),
        }
    };
    // The claim does more before its transaction (checking the claim,
    // registering the payments) than the delivery, and how much more
    // depends on the machine's load: one side starts 0–16 ms after the
    // other, the claim late for the first half of the sales and the
    // delivery late for the second, so that either comes first at the ends
    // and the transactions meet somewhere between.
    let outcomes: Vec<(bool, bool)> = sales
        .iter()
        .enumerate()
        .map(|(i, sale)| {
            let barrier = std::sync::Barrier::new(2);
            let step = |n: usize| std::time::Duration::from_millis(2 * n as u64);
            let (claim_after, deliver_after) =
                if i < SALES / 2 { (step(SALES / 2 - i), step(0)) } else { (step(0), step(i - SALES / 2)) };
            std::thread::scope(|s| {
                let refunded = s.spawn(|| {
                    barrier.wait();
                    std::thread::sleep(claim_after);
                    claim(sale)
                });
                let delivered = s.spawn(|| {
                    barrier.wait();
                    std::thread::sleep(deliver_after);
                    deliver(sale)
                });
                (refunded.join().unwrap(), delivered.join().unwrap())
            })
        })
        .collect();
    drop((a, b));

    let store = PostgresRegistry::open(&db.url).unwrap();
    for ((refunded, delivered), (sale, delivery)) in outcomes.iter().zip(&sales) {
        assert!(
            refunded != delivered,
            "offer {}: refunded {refunded}, delivered {delivered}",
            sale.offer.id().to_hex()
        );
        let row = store.instrument(&delivery.id()).unwrap().unwrap();
        let to_buyer = row.holder == delivery.holder();
        assert_eq!(to_buyer, *delivered, "the registered holder follows the winner");
        assert_eq!(store.refunded_sales(&[sale.offer.id()]).unwrap().len(), usize::from(*refunded));
    }
    let t = store.money_totals("EUR").unwrap();
    assert_eq!(t.issued - t.redeemed, t.active_notes, "{t:?}");
    assert_eq!(t.paid_in - t.paid_out, t.balances + t.active_notes, "{t:?}");
    let refunds = outcomes.iter().filter(|(r, _)| *r).count();
    eprintln!("{refunds} refunded, {} delivered", SALES - refunds);
    drop(store);
}
