#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Gates sharing used events over real libp2p gossipsub on loopback, with no
//! registry: used at A is refused at B; a partition heals into one used set
//! with the double entry reported on both sides.

use std::path::Path;
use std::time::Duration;
use tessera_core::presentation::mesh::ConflictKind;
use tessera_core::{Clock, SystemClock};
use tessera_gate::Gate;
use tessera_gate::mesh::{MeshConfig, MeshEvent, MeshHandle};

mod common;
use common::{Venue, card};

fn setup(root: &Path) -> (Gate, Gate, Venue) {
    let (venue, gates) = Venue::with_gates(root, &["a", "b"]);
    let [a, b]: [Gate; 2] = gates.try_into().map_err(|_| "two gates").unwrap();
    (a, b, venue)
}

fn config(peers: Vec<libp2p::Multiaddr>) -> MeshConfig {
    MeshConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        peers,
        topic: MeshConfig::topic_for("final-2026"),
        gossip: tessera_gate::mesh::GossipTuning::venue(),
    }
}

async fn wait(mesh: &mut MeshHandle, what: &str, pred: impl Fn(&MeshEvent) -> bool) -> MeshEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = mesh.next_event().await.expect("mesh running");
            if pred(&event) {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn listening(mesh: &mut MeshHandle) -> libp2p::Multiaddr {
    match wait(mesh, "listen address", |e| matches!(e, MeshEvent::Listening(_))).await {
        MeshEvent::Listening(a) => a,
        _ => unreachable!(),
    }
}

fn joined(e: &MeshEvent) -> bool {
    matches!(e, MeshEvent::PeerJoined(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_at_a_is_refused_at_b_over_gossipsub() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b, v) = setup(dir.path());
    let mut mesh_a = MeshHandle::start(config(vec![])).unwrap();
    let addr_a = listening(&mut mesh_a).await;
    let mut mesh_b = MeshHandle::start(config(vec![addr_a])).unwrap();
    wait(&mut mesh_a, "B joins", joined).await;
    wait(&mut mesh_b, "A joins", joined).await;

    let id = v.wallet_file(&dir.path().join("w.db"));
    let mut phone = card(&dir.path().join("w.db"));
    let at_a = a.tap(&mut phone, SystemClock.now()).unwrap();
    assert!(at_a.admitted());
    mesh_a.publish(at_a.used_event.unwrap());
    let MeshEvent::Envelope(bytes) = wait(&mut mesh_b, "A's used event", |e| matches!(e, MeshEvent::Envelope(_))).await
    else {
        unreachable!()
    };
    assert_eq!(b.merge_envelope(&bytes, SystemClock.now()).unwrap().merged, 1);
    phone.choose(Some(id));
    assert_eq!(b.tap(&mut phone, SystemClock.now()).unwrap().reason(), "already-used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_heals_and_the_double_entry_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b, v) = setup(dir.path());
    let mut mesh_a = MeshHandle::start(config(vec![])).unwrap();
    let addr_a = listening(&mut mesh_a).await;
    let mut mesh_b = MeshHandle::start(config(vec![addr_a.clone()])).unwrap();
    wait(&mut mesh_b, "A joins", joined).await;

    // Partition.
    mesh_b.disconnect_all();
    wait(&mut mesh_b, "A leaves", |e| matches!(e, MeshEvent::PeerLeft(_))).await;
    let id = v.wallet_file(&dir.path().join("w.db"));
    std::fs::copy(dir.path().join("w.db"), dir.path().join("clone.db")).unwrap();
    let at_a = a.tap(&mut card(&dir.path().join("w.db")), SystemClock.now()).unwrap();
    let at_b = b.tap(&mut card(&dir.path().join("clone.db")), SystemClock.now()).unwrap();
    assert!(at_a.admitted() && at_b.admitted(), "apart, neither gate can know");
    mesh_a.publish(at_a.used_event.unwrap()); // goes nowhere yet, or queued

    // Heal: B dials A again; on joining, each sends the other its catch-up.
    mesh_b.dial(addr_a);
    let mut conflicts = (Vec::new(), Vec::new());
    let mut sent = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (conflicts.0.is_empty() || conflicts.1.is_empty()) && tokio::time::Instant::now() < deadline {
        tokio::select! {
            Some(e) = mesh_a.next_event() => match e {
                MeshEvent::PeerJoined(_) if !sent.0 => { sent.0 = true; for env in a.catch_up().unwrap() { mesh_a.publish(env); } }
                MeshEvent::Envelope(bytes) => conflicts.0.extend(a.merge_envelope(&bytes, SystemClock.now()).unwrap().conflicts),
                _ => {}
            },
            Some(e) = mesh_b.next_event() => match e {
                MeshEvent::PeerJoined(_) if !sent.1 => { sent.1 = true; for env in b.catch_up().unwrap() { mesh_b.publish(env); } }
                MeshEvent::Envelope(bytes) => conflicts.1.extend(b.merge_envelope(&bytes, SystemClock.now()).unwrap().conflicts),
                _ => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert_eq!(conflicts.0.len(), 1, "A reports the conflict");
    assert_eq!(conflicts.1.len(), 1, "B reports the conflict");
    assert_eq!((conflicts.0[0].kind, conflicts.0[0].instrument_id), (ConflictKind::DoubleEntry, id));
    assert_eq!(conflicts.0[0].remote_gate, b.public_key());
    assert_eq!(conflicts.1[0].remote_gate, a.public_key());
}
