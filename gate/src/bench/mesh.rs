//! Used-event propagation across 10 gates meshed over libp2p gossipsub on
//! loopback: time from one gate's publish until every other gate has the
//! envelope. The venue tuning and libp2p's defaults (the baseline) run in
//! the same process on the same topology, in alternating order.

use crate::mesh::{GossipTuning, MeshConfig, MeshEvent, MeshHandle};
use std::time::{Duration, Instant};
use tessera_core::ExchangeId;
use tessera_core::bench::{BenchContext, BenchError, Figure, Quantity, Scale, Target, Unit, ensure, percentile};
use tessera_core::codec::Wire;
use tessera_core::presentation::mesh::MeshEnvelope;

/// Gates in the mesh.
pub const GATES: usize = 10;
/// Time the gates get to connect and subscribe before the first round.
const SETTLE: Duration = Duration::from_secs(3);
const TARGET_P99_MS: f64 = 100.0;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Rounds (one published event each) per configuration and pass.
    pub rounds: usize,
    /// Passes over the configurations, in alternating order, pooled.
    pub passes: usize,
    /// Also measure heartbeat 100 ms with mesh 8/6/16 (a reported row).
    pub extra_config: bool,
}

impl Params {
    /// Full: 2 passes of 200 rounds over three configurations; quick: one
    /// pass of 40 rounds over the venue tuning and the baseline.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self { rounds: 200, passes: 2, extra_config: true },
            Scale::Quick => Self { rounds: 40, passes: 1, extra_config: false },
        }
    }
}

fn config(peers: Vec<libp2p::Multiaddr>, gossip: GossipTuning) -> Result<MeshConfig, BenchError> {
    Ok(MeshConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().bench("listen address")?,
        peers,
        topic: MeshConfig::topic_for("bench"),
        gossip,
    })
}

async fn rounds(gossip: GossipTuning, rounds: usize) -> Result<Vec<Duration>, BenchError> {
    let mut nodes: Vec<MeshHandle> = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..GATES {
        // Each gate dials up to two earlier ones: a connected, not complete, graph.
        let peers = addrs.iter().rev().take(2).cloned().collect();
        let mut node = MeshHandle::start(config(peers, gossip)?).bench("starting a gate's mesh")?;
        loop {
            match node.next_event().await {
                Some(MeshEvent::Listening(a)) => {
                    addrs.push(a);
                    break;
                }
                Some(_) => {}
                None => return Err(BenchError("a gate's mesh stopped before listening".into())),
            }
        }
        nodes.push(node);
    }
    tokio::time::sleep(SETTLE).await;
    for node in &mut nodes {
        while node.try_event().is_some() {}
    }
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
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
        ensure(waiting.is_empty(), || format!("round {round}: gates {waiting:?} never got the event"))?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// The configurations measured, the baseline first.
pub fn configurations(params: Params) -> Vec<(&'static str, GossipTuning)> {
    let mut configs = vec![
        ("libp2p defaults, heartbeat 200 ms", GossipTuning::library_defaults(Duration::from_millis(200))),
        ("venue tuning", GossipTuning::venue()),
    ];
    if params.extra_config {
        configs.push((
            "heartbeat 100 ms, mesh 8/6/16",
            GossipTuning {
                heartbeat: Duration::from_millis(100),
                heartbeat_initial_delay: Duration::from_millis(100),
                mesh_n: 8,
                mesh_n_low: 6,
                mesh_n_high: 16,
                flood_publish: true,
            },
        ));
    }
    configs
}

/// Sorted samples per configuration of [`configurations`], pooled over
/// the passes (alternating order, so no configuration always runs on the
/// quieter or the busier machine). Runs its own two-thread runtime: call it
/// outside any async context.
pub fn samples(params: Params) -> Result<Vec<Vec<Duration>>, BenchError> {
    let configs = configurations(params);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .bench("starting the mesh runtime")?;
    let mut pooled: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
    for pass in 0..params.passes.max(1) {
        for k in 0..configs.len() {
            let i = if pass % 2 == 0 { k } else { configs.len() - 1 - k };
            pooled[i].extend(runtime.block_on(rounds(configs[i].1, params.rounds.max(1)))?);
        }
    }
    for s in &mut pooled {
        s.sort();
    }
    Ok(pooled)
}

/// The figures: the venue tuning's p99 against libp2p's defaults, and the
/// extra configuration's when measured.
pub fn measure(params: Params) -> Result<Vec<Figure>, BenchError> {
    let configs = configurations(params);
    let pooled = samples(params)?;
    let baseline = Quantity::millis(percentile(&pooled[0], 0.99));
    let n = pooled[0].len();
    let mut figures = Vec::new();
    for (i, (name, _)) in configs.iter().enumerate().skip(1) {
        let s = &pooled[i];
        let mut figure = Figure::new(
            format!("used-event propagation across {GATES} meshed gates, p99, {name}"),
            Quantity::millis(percentile(s, 0.99)),
        )
        .against("libp2p defaults p99", baseline)
        .note(format!("{n} rounds, p50 {:.1} ms", percentile(s, 0.5).as_secs_f64() * 1e3));
        if i == 1 {
            figure = figure.target(Target::at_most(TARGET_P99_MS, Unit::Millis));
        }
        figures.push(figure);
    }
    Ok(figures)
}
