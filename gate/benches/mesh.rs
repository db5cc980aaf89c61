//! Used-event propagation across 10 gates meshed over libp2p gossipsub on
//! loopback: time from one gate's publish until every other gate has the
//! envelope. The venue tuning and libp2p's defaults (the baseline) run in
//! the same process, one after the other, on the same topology. Prints a
//! Markdown table.
//!
//! `cargo bench -p tessera-gate --features mesh --bench mesh`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};
use tessera_core::ExchangeId;
use tessera_core::codec::Wire;
use tessera_core::presentation::mesh::MeshEnvelope;
use tessera_gate::mesh::{GossipTuning, MeshConfig, MeshEvent, MeshHandle};

const GATES: usize = 10;
const ROUNDS: usize = 200;
/// Time the gates get to connect and subscribe before the first round.
const SETTLE: Duration = Duration::from_secs(3);

fn config(peers: Vec<libp2p::Multiaddr>, gossip: GossipTuning) -> MeshConfig {
    MeshConfig { listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(), peers, topic: MeshConfig::topic_for("bench"), gossip }
}

async fn measure(gossip: GossipTuning) -> Vec<Duration> {
    let mut nodes: Vec<MeshHandle> = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..GATES {
        // Each gate dials up to two earlier ones: a connected, not complete, graph.
        let peers = addrs.iter().rev().take(2).cloned().collect();
        let mut node = MeshHandle::start(config(peers, gossip)).unwrap();
        loop {
            if let Some(MeshEvent::Listening(a)) = node.next_event().await {
                addrs.push(a);
                break;
            }
        }
        nodes.push(node);
    }
    tokio::time::sleep(SETTLE).await;
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
        let deadline = started + Duration::from_secs(10);
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
    samples
}

fn pct(samples: &[Duration], p: f64) -> f64 {
    samples[((samples.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let load_before = load_average();
    let configs = [
        ("libp2p defaults, heartbeat 200 ms (baseline)", GossipTuning::library_defaults(Duration::from_millis(200))),
        ("venue: first heartbeat at 200 ms", GossipTuning::venue()),
        (
            "heartbeat 100 ms, mesh 8/6/16",
            GossipTuning {
                heartbeat: Duration::from_millis(100),
                heartbeat_initial_delay: Duration::from_millis(100),
                mesh_n: 8,
                mesh_n_low: 6,
                mesh_n_high: 16,
                flood_publish: true,
            },
        ),
    ];
    // Two passes in alternating order, pooled, so neither configuration
    // always runs on the quieter or the busier machine.
    let mut pooled: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
    for pass in 0..2 {
        for k in 0..configs.len() {
            let i = if pass == 0 { k } else { configs.len() - 1 - k };
            pooled[i].extend(measure(configs[i].1).await);
        }
    }
    for s in &mut pooled {
        s.sort();
    }
    println!(
        "### Used event reaches all {} other gates ({} rounds per configuration, load {load_before} → {})\n",
        GATES - 1,
        2 * ROUNDS,
        load_average()
    );
    println!("| gossipsub | p50 | p90 | p99 | max | p99 / baseline p99 |");
    println!("|---|---|---|---|---|---|");
    for ((name, _), s) in configs.iter().zip(&pooled) {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
            pct(s, 0.5),
            pct(s, 0.9),
            pct(s, 0.99),
            pct(s, 1.0),
            pct(s, 0.99) / pct(&pooled[0], 0.99)
        );
    }
}
