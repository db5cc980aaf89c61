#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two gates of one venue sharing used events with no registry: the merge
//! rules, with the envelopes passed by hand (the libp2p transport is tested
//! in `mesh_p2p`).

use std::path::Path;
use tessera_core::presentation::mesh::{ConflictKind, MeshEnvelope};
use tessera_core::{Clock, SystemClock, Wire};
use tessera_gate::Gate;

mod common;
use common::{Venue, card, policy};

fn gates(root: &Path, n: usize) -> (Vec<Gate>, Venue) {
    let names: Vec<String> = (0..n).map(|i| format!("g{i}")).collect();
    let (venue, gates) = Venue::with_gates(root, &names.iter().map(String::as_str).collect::<Vec<_>>());
    (gates, venue)
}

#[test]
fn used_at_a_is_refused_at_b_with_no_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, v) = gates(dir.path(), 2);
    let id = v.wallet_file(&dir.path().join("w.db"));
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
    let id = v.wallet_file(&dir.path().join("w.db"));
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
    let mut rogue = v.open_gate(&dir.path().join("rogue"));
    let id = v.wallet_file(&dir.path().join("w.db"));
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
