#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The gate against a registry serving HTTP on loopback (the registry's
//! own embedded server, the same router `tessera-registry serve` runs):
//! pinning, sync, offline taps, bags kept until answered, a bag sent again
//! after a lost answer, reused numbers.
//! `scripts/test.d/50-nfc.sh` runs the same flow with the real processes
//! and the real NFC stack.

use std::sync::Arc;
use tessera_core::presentation::{GatePolicy, Instruction, ReentryPolicy, WalletCard};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::{Clock, LocalSigner, PublicKey, Signer, SystemClock, Wallet};
use tessera_gate::Gate;
use tessera_gate::sync::{self, BagAnswer, SyncError};
use tessera_registry::client::{ClientError, RegistryClient, WalletSession};
use tessera_registry::embedded::{EmbeddedRegistry, signers_from_seed, start_embedded};
use tessera_registry::wire;

const SEED: [u8; 32] = [41; 32];

struct Venue {
    _dir: tempfile::TempDir,
    registry: EmbeddedRegistry,
    client: RegistryClient,
    organiser: LocalSigner,
}

fn venue(gate_keys: &[PublicKey]) -> Venue {
    let dir = tempfile::tempdir().unwrap();
    let registry = start_embedded(&dir.path().join("registry.db"), &SEED).unwrap();
    let client = RegistryClient::new(&registry.url());
    let (operator, _) = signers_from_seed(&SEED);
    let organiser = LocalSigner::from_seed(&[42; 32]);
    let mut parties = vec![(organiser.public_key(), "issuer")];
    parties.extend(gate_keys.iter().map(|k| (*k, "gate")));
    for (key, role) in parties {
        let _: wire::PartyResponse = client
            .post(
                "/admin/parties",
                &operator,
                &wire::PartyRequest {
                    key: key.to_hex(),
                    role: role.into(),
                    name: role.into(),
                    not_after: u64::MAX / 2,
                },
            )
            .unwrap();
    }
    let now = SystemClock.now();
    let _: serde_json::Value = client
        .post(
            "/events",
            &organiser,
            &wire::EventJson {
                event_id: "final-2026".into(),
                title: "Cup Final".into(),
                zones: vec!["north".into()],
                valid_from: now - 3600,
                valid_until: now + 3600,
                price: wire::AmountJson { currency: "EUR".into(), minor: 4500 },
                transferable: true,
                uses: 1,
            },
        )
        .unwrap();
    Venue { _dir: dir, registry, client, organiser }
}

fn phone(v: &Venue) -> WalletCard<SqliteStore> {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([5; 32]));
    let mut w = Wallet::create(SqliteStore::in_memory().unwrap(), &keys, Arc::new(SystemClock)).unwrap();
    WalletSession::new(&mut w, v.client.clone()).sync().unwrap();
    let holder = w.new_holder_key().unwrap();
    let issued: wire::InstrumentsResponse = v
        .client
        .post(
            "/issue/ticket",
            &v.organiser,
            &wire::IssueTicketRequest {
                event_id: "final-2026".into(),
                zone: "north".into(),
                seat: None,
                holder: holder.to_hex(),
            },
        )
        .unwrap();
    w.import(&wire::unb64(&issued.instruments[0]).unwrap()).unwrap();
    WalletCard::new(w)
}

fn gate(dir: &std::path::Path) -> Gate {
    let policy = GatePolicy {
        event_id: "final-2026".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    };
    Gate::init(dir, &policy).unwrap();
    Gate::open(dir).unwrap()
}

#[test]
fn sync_needs_the_pinned_registry_and_then_installs_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate(dir.path());
    let v = venue(&[g.public_key()]);
    let now = SystemClock.now();
    assert!(matches!(sync::sync(&mut g, &v.client, now), Err(SyncError::NotPinned)));
    g.pin_registry(PublicKey([9; 32])).unwrap();
    assert!(matches!(sync::sync(&mut g, &v.client, now), Err(SyncError::WrongRegistry { .. })));
    assert!(g.trust_list().is_none(), "a refused sync installs nothing");

    let dir = tempfile::tempdir().unwrap();
    let mut g = gate(dir.path());
    let v = venue(&[g.public_key()]);
    g.pin_registry(v.registry.registry_key).unwrap();
    let r = sync::sync(&mut g, &v.client, now).unwrap();
    assert_eq!(r.trust_version.0, None);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.event.as_ref().map(|e| e.title.as_str()), Some("Cup Final"));
    assert_eq!(sync::stored_event(&g).unwrap(), r.event);
    assert!(g.trust_list().unwrap().certifies(&g.public_key(), tessera_core::Role::Gate, now));
    // Unreachable registry: a typed transport error, the lists stay.
    let dead = RegistryClient::new("http://127.0.0.1:1");
    assert!(matches!(sync::sync(&mut g, &dead, now), Err(SyncError::Client(ClientError::Transport(_)))));
    assert!(g.trust_list().is_some());
}

#[test]
fn bags_stay_packed_until_answered_replays_get_the_settlement_and_a_reused_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = gate(dir.path());
    let v = venue(&[g.public_key()]);
    g.pin_registry(v.registry.registry_key).unwrap();
    let now = SystemClock.now();
    sync::sync(&mut g, &v.client, now).unwrap();
    let mut card = phone(&v);
    assert!(g.tap(&mut card, now).unwrap().admitted());
    assert_eq!(g.tap(&mut card, now).unwrap().reason(), "no-matching-ticket");

    let bag = g.pack_bag(512, now).unwrap().unwrap();
    assert_eq!((bag.body.bag_number, bag.body.entries.len()), (1, 1));
    let dead = RegistryClient::new("http://127.0.0.1:1");
    assert!(sync::upload_packed(&mut g, &dead, now).is_err());
    assert_eq!(g.store().packed_bags().unwrap().len(), 1, "an unanswered bag stays packed");

    let sent = sync::upload_packed(&mut g, &v.client, now).unwrap();
    assert!(matches!(&sent[0].answer, BagAnswer::Settled(r) if r.admitted == 1), "{sent:?}");
    assert!(g.store().packed_bags().unwrap().is_empty());
    assert_eq!(g.store().bag(1).unwrap().unwrap().state, "settled");

    // The same bag again: its original settlement, marked replayed.
    let bytes = tessera_core::Wire::to_bytes(&bag);
    let again = sync::upload_file(&mut g, &v.client, &bytes, now).unwrap();
    assert!(
        matches!(&again.answer, BagAnswer::Settled(r) if r.replayed && (r.bags, r.admitted, r.refused) == (1, 1, 0)),
        "{again:?}"
    );
    assert_eq!(g.store().bag(1).unwrap().unwrap().state, "settled", "a settled bag stays settled");
    // Another bag under the used number (the same record packed again).
    let repacked = tessera_core::Signed::sign(
        tessera_core::presentation::BagBody { packed_at: now + 1, ..bag.body.clone() },
        g.signer(),
    )
    .unwrap();
    let other = sync::upload_file(&mut g, &v.client, &tessera_core::Wire::to_bytes(&repacked), now).unwrap();
    assert!(matches!(&other.answer, BagAnswer::Refused { status: 409, code, .. } if code == "bag_reused"), "{other:?}");

    // The answer to bag 2 is lost on its way back: the registry settled it,
    // the gate still has it packed. The next upload gets the original
    // settlement and the gate records the bag as settled.
    let mut card2 = phone(&v);
    assert!(g.tap(&mut card2, now).unwrap().admitted());
    let bag2 = g.pack_bag(512, now).unwrap().unwrap();
    let lost: wire::SettlementReport = v
        .client
        .post("/gate/bags", g.signer(), &wire::BagUpload { bag: wire::b64(&tessera_core::Wire::to_bytes(&bag2)) })
        .unwrap();
    assert!(!lost.replayed);
    assert_eq!(g.store().bag(2).unwrap().unwrap().state, "packed");
    let sent = sync::upload_packed(&mut g, &v.client, now).unwrap();
    assert!(matches!(&sent[0].answer, BagAnswer::Settled(r) if r.replayed && r.admitted == 1), "{sent:?}");
    assert_eq!(g.store().bag(2).unwrap().unwrap().state, "settled");

    let other_dir = tempfile::tempdir().unwrap();
    let mut other = gate(other_dir.path());
    assert!(matches!(sync::upload_file(&mut other, &v.client, &bytes, now), Err(SyncError::NotOurBag(_))));

    let totals = sync::settlement(&g, &v.client).unwrap();
    assert_eq!((totals.bags, totals.admitted, totals.refused), (2, 2, 0), "replays count once");
    assert!(g.pack_bag(512, now).unwrap().is_none(), "nothing left to pack");
}
