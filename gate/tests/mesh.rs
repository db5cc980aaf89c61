#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two gates of one venue sharing used events with no registry: the merge
//! rules, with the envelopes passed by hand (the libp2p transport is tested
//! in `mesh_p2p`).

use rand::rngs::OsRng;
use std::path::Path;
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::mesh::{ConflictKind, MeshEnvelope};
use tessera_core::presentation::{GatePolicy, Instruction, ReentryPolicy, WalletCard};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::{
    Attributes, Clock, InstrumentId, LocalSigner, PublicKey, Role, SystemClock, TicketAttributes, TrustEntry, Wallet,
    Wire,
};
use tessera_gate::Gate;

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: "final-2026".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    }
}

struct Venue {
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    trust: Vec<u8>,
}

fn venue(gates: &[PublicKey]) -> Venue {
    let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
    let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
    let far = SystemClock.now() + 86_400;
    let mut entries =
        vec![TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "issuer".into(), not_after: far }];
    for g in gates {
        entries.push(TrustEntry { key: *g, role: Role::Gate, name: "gate".into(), not_after: far });
    }
    let trust = registry.trust_list(1, entries, SystemClock.now()).unwrap().to_bytes();
    Venue { registry, issuer, trust }
}

fn gates(root: &Path, n: usize) -> (Vec<Gate>, Venue) {
    let keys: Vec<PublicKey> = (0..n).map(|i| Gate::init(&root.join(format!("g{i}")), &policy()).unwrap()).collect();
    let v = venue(&keys);
    let gates = (0..n)
        .map(|i| {
            let mut g = Gate::open(&root.join(format!("g{i}"))).unwrap();
            g.pin_registry(v.registry.public_key()).unwrap();
            g.install_trust_list(&v.trust).unwrap();
            g
        })
        .collect();
    (gates, v)
}

/// A wallet in a file, holding one ticket; returns the file and the id.
fn wallet_file(v: &Venue, path: &Path) -> InstrumentId {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([3; 32]));
    let mut w = Wallet::create_at(path, &keys, Arc::new(SystemClock)).unwrap();
    w.pin_registry(v.registry.public_key()).unwrap();
    w.install_trust_list(&v.trust).unwrap();
    let holder = w.new_holder_key().unwrap();
    let now = SystemClock.now();
    let attributes = Attributes::Ticket(TicketAttributes {
        event_id: "final-2026".into(),
        title: "Cup Final".into(),
        zone: "north".into(),
        seat: None,
        guidance: None,
        valid_from: now - 60,
        valid_until: now + 3600,
        transferable: true,
        uses: 1,
        face_price: None,
    });
    w.import_instrument(v.issuer.issue(attributes, holder, now - 60, &mut OsRng).unwrap()).unwrap().id
}

fn card(path: &Path) -> WalletCard<SqliteStore> {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([3; 32]));
    WalletCard::new(Wallet::open_at(path, &keys, Arc::new(SystemClock)).unwrap())
}

#[test]
fn used_at_a_is_refused_at_b_with_no_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, v) = gates(dir.path(), 2);
    let id = wallet_file(&v, &dir.path().join("w.db"));
    let mut phone = card(&dir.path().join("w.db"));
    let at_a = g[0].tap(&mut phone, SystemClock.now()).unwrap();
    assert!(at_a.admitted());
    let announced = at_a.used_event.clone().expect("an admission is announced");
    let merged = g[1].merge_envelope(&announced, SystemClock.now()).unwrap();
    assert_eq!((merged.merged, merged.conflicts.len()), (1, 0));
    // Gossip delivers twice sometimes: nothing changes the second time.
    assert_eq!(g[1].merge_envelope(&announced, SystemClock.now()).unwrap().known, 1);
    // And A ignores its own event coming back.
    assert_eq!(g[0].merge_envelope(&announced, SystemClock.now()).unwrap().known, 1);

    phone.choose(Some(id));
    let at_b = g[1].tap(&mut phone, SystemClock.now()).unwrap();
    assert_eq!(at_b.reason(), "already-used");
    assert!(g[1].store().conflicts().unwrap().is_empty());
}

#[test]
fn partition_then_heal_reports_the_double_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, v) = gates(dir.path(), 2);
    let id = wallet_file(&v, &dir.path().join("w.db"));
    // The holder copies the wallet to a second phone while the gates are apart.
    std::fs::copy(dir.path().join("w.db"), dir.path().join("clone.db")).unwrap();
    let mut phone = card(&dir.path().join("w.db"));
    let mut clone = card(&dir.path().join("clone.db"));
    assert!(g[0].tap(&mut phone, SystemClock.now()).unwrap().admitted());
    assert!(g[1].tap(&mut clone, SystemClock.now()).unwrap().admitted(), "partitioned: B cannot know");

    // Heal: each gate sends the other everything it knows.
    let from_a = g[0].catch_up().unwrap();
    let from_b = g[1].catch_up().unwrap();
    let (key_a, key_b) = (g[0].public_key(), g[1].public_key());
    let mut at_b = Vec::new();
    for env in &from_a {
        at_b.extend(g[1].merge_envelope(env, SystemClock.now()).unwrap().conflicts);
    }
    let mut at_a = Vec::new();
    for env in &from_b {
        at_a.extend(g[0].merge_envelope(env, SystemClock.now()).unwrap().conflicts);
    }
    assert_eq!(at_b.len(), 1);
    assert_eq!((at_b[0].instrument_id, at_b[0].kind, at_b[0].remote_gate), (id, ConflictKind::DoubleEntry, key_a));
    assert_eq!((at_b[0].uses_consumed, at_b[0].uses_allowed), (2, 1));
    assert_eq!(at_a.len(), 1);
    assert_eq!(at_a[0].remote_gate, key_b);
    assert_eq!(g[0].store().conflicts().unwrap()[0].1, "double-entry");
    // A second catch-up changes nothing.
    for env in &g[0].catch_up().unwrap() {
        let r = g[1].merge_envelope(env, SystemClock.now()).unwrap();
        assert_eq!((r.merged, r.conflicts.len()), (0, 0));
    }
    // Once healed, neither copy gets in anywhere.
    phone.choose(Some(id));
    assert_eq!(g[1].tap(&mut phone, SystemClock.now()).unwrap().reason(), "already-used");
}

#[test]
fn events_from_uncertified_gates_and_junk_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, v) = gates(dir.path(), 2);
    // A third gate the registry never certified, with its own copy of the lists.
    Gate::init(&dir.path().join("rogue"), &policy()).unwrap();
    let mut rogue = Gate::open(&dir.path().join("rogue")).unwrap();
    rogue.pin_registry(v.registry.public_key()).unwrap();
    rogue.install_trust_list(&v.trust).unwrap();
    let id = wallet_file(&v, &dir.path().join("w.db"));
    let mut phone = card(&dir.path().join("w.db"));
    // The rogue cannot even examine (the wallet refuses it), so forge its claim directly.
    assert!(!rogue.tap(&mut phone, SystemClock.now()).unwrap().admitted());
    let at_a = g[0].tap(&mut phone, SystemClock.now()).unwrap();
    let mut envelope = MeshEnvelope::from_bytes(&at_a.used_event.unwrap()).unwrap();
    let mut body = envelope.events[0].body.clone();
    body.gate = rogue.public_key();
    envelope.events[0] = tessera_core::Signed::sign(body.clone(), rogue.signer()).unwrap();
    let r = g[1].merge_envelope(&envelope.to_bytes(), SystemClock.now()).unwrap();
    assert_eq!((r.merged, r.rejected), (0, 1));
    // A's key on the rogue's signature: bad signature.
    body.gate = g[0].public_key();
    envelope.events[0] = tessera_core::Signed { body, signature: envelope.events[0].signature };
    let r = g[1].merge_envelope(&envelope.to_bytes(), SystemClock.now()).unwrap();
    assert_eq!((r.merged, r.rejected), (0, 1));
    assert!(g[1].store().prior_use(&id).unwrap().is_none());
    assert!(g[1].merge_envelope(b"\x82\x01\x80", SystemClock.now()).is_err());
    assert!(g[1].merge_envelope(&vec![0u8; 70_000], SystemClock.now()).is_err());
}
