//! Used-event propagation across 10 gates meshed over libp2p gossipsub on
//! loopback: time from one gate's publish until every other gate has the
//! envelope. Prints a Markdown row.
//!
//! `cargo bench -p tessera-gate --features mesh --bench mesh`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};
use tessera_core::ExchangeId;
use tessera_core::codec::Wire;
use tessera_core::presentation::mesh::MeshEnvelope;
use tessera_gate::mesh::{MeshConfig, MeshEvent, MeshHandle};

const GATES: usize = 10;
const ROUNDS: usize = 100;

fn config(peers: Vec<libp2p::Multiaddr>) -> MeshConfig {
    MeshConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        peers,
        topic: MeshConfig::topic_for("bench"),
        heartbeat: Duration::from_millis(200),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut nodes: Vec<MeshHandle> = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..GATES {
        // Each gate dials up to two earlier ones: a connected, not complete, graph.
        let peers = addrs.iter().rev().take(2).cloned().collect();
        let mut node = MeshHandle::start(config(peers)).unwrap();
        loop {
            if let Some(MeshEvent::Listening(a)) = node.next_event().await {
                addrs.push(a);
                break;
            }
        }
        nodes.push(node);
        let _ = i;
    }
    // Let subscriptions spread and the gossip mesh form.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for node in &mut nodes {
        while node.try_event().is_some() {}
    }
    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let from = round % GATES;
        // A realistic payload: an envelope the size of one registered ticket's event.
        let envelope = MeshEnvelope { id: ExchangeId::random(&mut rand::rngs::OsRng), events: Vec::new() };
        let mut bytes = envelope.to_bytes();
        bytes.resize(600, 0);
        let started = Instant::now();
        nodes[from].publish(bytes.clone());
        let mut waiting: Vec<usize> = (0..GATES).filter(|i| *i != from).collect();
        let deadline = started + Duration::from_secs(5);
        while !waiting.is_empty() && Instant::now() < deadline {
            waiting.retain(|i| {
                let mut got = false;
                while let Some(e) = nodes[*i].try_event() {
                    if e == MeshEvent::Envelope(bytes.clone()) {
                        got = true;
                    }
                }
                !got
            });
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        assert!(waiting.is_empty(), "round {round}: gates {waiting:?} never got the event");
        samples.push(started.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "| used event reaches all {} other gates ({ROUNDS} rounds) | p50 {:.1} ms | p99 {:.1} ms | max {:.1} ms |",
        GATES - 1,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
