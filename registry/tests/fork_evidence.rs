//! A fork against a registered certificate, end to end on an embedded
//! registry (SQLite, loopback): the wallet holding the certificate cannot
//! prove the fork, so it refuses the chain, keeps it, and uploads it at its
//! next sync; the registry, which stores the registered links, names the
//! key that signed twice — not the honest holder who forwarded the branch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::{SqliteStore, WalletStore};
use tessera_core::{ExchangeId, LocalSigner, Signed, Signer, SystemClock, Wallet, WalletError};
use tessera_registry::client::{RegistryClient, WalletSession};
use tessera_registry::embedded::{signers_from_seed, start_embedded};
use tessera_registry::wire;

const SEED: [u8; 32] = [43; 32];

fn wallet(dir: &std::path::Path, name: &str, client: &RegistryClient) -> Wallet<SqliteStore> {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([1; 32]));
    let mut w = Wallet::create_at(dir.join(format!("{name}.db")), &keys, Arc::new(SystemClock)).unwrap();
    WalletSession::new(&mut w, client.clone()).sync().unwrap();
    w
}

#[test]
fn a_fork_refused_against_a_certificate_is_proven_by_the_registry_at_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_embedded(&dir.path().join("registry.db"), &SEED).unwrap();
    let client = RegistryClient::new(&registry.url());
    let (operator, _) = signers_from_seed(&SEED);
    let organiser = LocalSigner::from_seed(&[8; 32]);
    let party = wire::PartyRequest {
        key: organiser.public_key().to_hex(),
        role: "issuer".into(),
        name: "Arena".into(),
        not_after: u64::MAX / 2,
    };
    let _: wire::PartyResponse = client.post("/admin/parties", &operator, &party).unwrap();
    let event = wire::EventJson {
        event_id: "cup".into(),
        title: "The Cup".into(),
        zones: vec!["east".into()],
        valid_from: 0,
        valid_until: u64::MAX / 2,
        price: wire::AmountJson { currency: "EUR".into(), minor: 1000 },
        transferable: true,
        uses: 1,
    };
    let _: serde_json::Value = client.post("/events", &organiser, &event).unwrap();
    let [mut mallory, mut carol, mut dave, mut bob] =
        ["mallory", "carol", "dave", "bob"].map(|n| wallet(dir.path(), n, &client));

    // Mallory's ticket, endorsed to Carol and, from a copy, to Dave.
    let mk = mallory.new_holder_key().unwrap();
    let issue =
        wire::IssueTicketRequest { event_id: "cup".into(), zone: "east".into(), seat: None, holder: mk.to_hex() };
    let issued: wire::InstrumentsResponse = client.post("/issue/ticket", &organiser, &issue).unwrap();
    let id = mallory.import(&wire::unb64(&issued.instruments[0]).unwrap()).unwrap().id;
    let original = mallory.instrument(&id).unwrap().instrument;
    let (ck, dk) = (carol.new_holder_key().unwrap(), dave.new_holder_key().unwrap());
    carol.import_instrument(mallory.endorse(&id, ck, ExchangeId([1; 16]), ExchangeId([1; 16])).unwrap()).unwrap();
    let body = original.next_endorsement(dk, ExchangeId([2; 16]), ExchangeId([2; 16]), 1);
    dave.import_instrument(original.with_link(Signed::sign(body, &mallory.signer(&mk).unwrap()).unwrap())).unwrap();

    // Carol passes hers to Bob, who reconciles: he holds a certificate.
    let (b1, b2) = (bob.new_holder_key().unwrap(), bob.new_holder_key().unwrap());
    bob.import_instrument(carol.endorse(&id, b1, ExchangeId([3; 16]), ExchangeId([3; 16])).unwrap()).unwrap();
    assert_eq!(WalletSession::new(&mut bob, client.clone()).sync().unwrap().reconcile.certified, vec![id]);
    let held = bob.instrument(&id).unwrap();
    assert!(held.instrument.links.is_empty() && held.instrument.registered.is_some());

    // Dave, in good faith, forwards his branch to Bob: same sequence, other
    // tip. Bob refuses it without a proof and his ticket is untouched.
    let fork = dave.endorse(&id, b2, ExchangeId([4; 16]), ExchangeId([4; 16])).unwrap();
    let refused = bob.import_instrument(fork.clone());
    assert!(matches!(refused, Err(WalletError::DoubleTransfer { proof: None, .. })), "{refused:?}");
    assert_eq!(bob.instrument(&id).unwrap(), held, "a refused fork changes nothing in the holder's instruments");
    let kept = bob.store().fork_evidence().unwrap();
    assert_eq!(kept.iter().map(|k| &k.chain).collect::<Vec<_>>(), vec![&fork], "kept for upload");
    // Offered again, it is refused again and kept once.
    assert!(bob.import_instrument(fork.clone()).is_err());
    assert_eq!(bob.store().fork_evidence().unwrap().len(), 1);

    // Bob's next sync uploads it; the registry names Mallory, not Dave.
    let report = WalletSession::new(&mut bob, client.clone()).sync().unwrap();
    assert_eq!(report.reconcile.conflicts.len(), 1, "{report:?}");
    let proof = &report.reconcile.conflicts[0];
    assert_eq!((proof.signer, proof.sequence()), (mk, 1), "the key that signed sequence 1 twice");
    proof.verify().unwrap();
    let store = registry.registry.store();
    assert!(store.flagged(&mk).unwrap().is_some(), "Mallory is flagged");
    assert!(store.flagged(&dk).unwrap().is_none(), "Dave, who only forwarded the branch, is not");
    assert!(store.flagged(&ck).unwrap().is_none());
    assert!(bob.store().fork_evidence().unwrap().is_empty(), "answered, so forgotten");
    // Bob's own ticket is the registered one: the registry replaces it for
    // his key (the old id is denied), and a further sync stores nothing new.
    let again = WalletSession::new(&mut bob, client.clone()).sync().unwrap();
    assert!(again.reconcile.conflicts.is_empty());
    let before = store.dump().unwrap();
    WalletSession::new(&mut bob, client.clone()).sync().unwrap();
    assert_eq!(store.dump().unwrap(), before);
}
