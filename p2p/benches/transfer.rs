//! Offer → receipt latency over an established loopback connection, with
//! the signature work of one transfer and the engine alone (no network)
//! measured in the same run as baselines.
//!
//! `cargo bench -p tessera-p2p --bench transfer` (add `-- <n>` for the
//! number of transfers; default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};
use tessera_core::crypto::{Context, LocalSigner, Signer};
use tessera_core::transfer::testing::World;
use tessera_core::transfer::{OfferTerms, Role};
use tessera_p2p::loopback::wait_for_uri;
use tessera_p2p::{NodeConfig, NodeEvent, spawn};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signature work per gift of one freshly issued ticket. Signatures: the
/// offer (account and holder), the acceptance, the endorsement, the
/// certificate and the receipt, so 6. Verifications: the sender's check of
/// its own item (genesis), the offer's two signatures, the genesis at the
/// offer check, the acceptance, the certificate, the chain with its new link
/// (genesis and endorsement), the receipt, so 9.
const SIGNS_PER_TRANSFER: u32 = 6;
const VERIFIES_PER_TRANSFER: u32 = 9;

fn signature_costs() -> (Duration, Duration) {
    let signer = LocalSigner::generate(&mut rand::rngs::OsRng);
    let message = [7u8; 200];
    let n = 2000;
    let start = Instant::now();
    let mut sig = signer.sign(Context::Endorsement, &message).unwrap();
    for _ in 0..n {
        sig = signer.sign(Context::Endorsement, &message).unwrap();
    }
    let sign = start.elapsed() / n;
    let public = signer.public_key();
    let start = Instant::now();
    for _ in 0..n {
        public.verify(Context::Endorsement, &message, &sig).unwrap();
    }
    (sign, start.elapsed() / n)
}

fn engine_only(n: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let mut b = world.peer("b");
    let tickets: Vec<_> = (0..n).map(|i| world.ticket(&mut a, &i.to_string())).collect();
    let mut out = Vec::with_capacity(n);
    for t in tickets {
        let start = Instant::now();
        let (id, step) = a.wallet.offer_transfer(&[t], OfferTerms::Gift, world_now(&world) + 600).unwrap();
        b.wallet.handle_transfer(&step.send.unwrap()).unwrap();
        let acc = b.wallet.accept_offer(id).unwrap().send.unwrap();
        let cert = a.wallet.handle_transfer(&acc).unwrap().send.unwrap();
        let receipt = b.wallet.handle_transfer(&cert).unwrap().send.unwrap();
        a.wallet.handle_transfer(&receipt).unwrap();
        out.push(start.elapsed());
    }
    out
}

fn world_now(world: &World) -> u64 {
    use tessera_core::Clock;
    world.clock.now()
}

async fn over_loopback(n: usize) -> (Vec<Duration>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path());
    let mut a = world.peer("a");
    let b = world.peer("b");
    let tickets: Vec<_> = (0..n).map(|i| world.ticket(&mut a, &i.to_string())).collect();
    let (na, mut ea) = spawn(a.wallet, NodeConfig::loopback()).await.unwrap();
    let (nb, mut eb) = spawn(b.wallet, NodeConfig::loopback()).await.unwrap();
    na.dial(wait_for_uri(&nb).await.unwrap()).await.unwrap();
    // The receiver's user says yes at once.
    let acceptor = nb.clone();
    tokio::spawn(async move {
        while let Some(event) = eb.next_event().await {
            if let NodeEvent::OfferReceived { offer, .. } = event {
                acceptor.accept(offer.offer_id).await.unwrap();
            }
        }
    });
    // Warm up: the first transfer also establishes the connection.
    let mut latencies = Vec::with_capacity(n);
    let total = Instant::now();
    for (i, t) in tickets.into_iter().enumerate() {
        let start = Instant::now();
        let exchange = na.offer(nb.peer_id(), vec![t], OfferTerms::Gift, 600).await.unwrap();
        loop {
            match ea.next_event().await.unwrap() {
                NodeEvent::Completed { exchange: e, role: Role::Sender, .. } if e == exchange => break,
                NodeEvent::Failed { reason, .. } => panic!("{reason}"),
                _ => {}
            }
        }
        if i > 0 {
            latencies.push(start.elapsed());
        }
    }
    (latencies, total.elapsed())
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    let (sign, verify) = signature_costs();
    let per_transfer_sigs = sign * SIGNS_PER_TRANSFER + verify * VERIFIES_PER_TRANSFER;
    let mut engine = engine_only(n);
    engine.sort();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (mut net, total) = runtime.block_on(over_loopback(n + 1));
    net.sort();
    let median = percentile(&net, 0.5);
    let engine_median = percentile(&engine, 0.5);
    println!("offer → receipt, {n} gifts of one ticket, loopback (QUIC/TCP, one connection)");
    println!("| measure | value | ratio to signature work |");
    println!("|---|---|---|");
    println!("| Ed25519 sign | {:.3} ms | |", ms(sign));
    println!("| Ed25519 verify | {:.3} ms | |", ms(verify));
    println!(
        "| signature work per transfer ({SIGNS_PER_TRANSFER} sign + {VERIFIES_PER_TRANSFER} verify) | {:.3} ms | 1.00 |",
        ms(per_transfer_sigs)
    );
    println!(
        "| engine only, both wallets in-process (SQLite), median | {:.3} ms | {:.2} |",
        ms(engine_median),
        engine_median.as_secs_f64() / per_transfer_sigs.as_secs_f64()
    );
    println!(
        "| loopback median | {:.3} ms | {:.2} |",
        ms(median),
        median.as_secs_f64() / per_transfer_sigs.as_secs_f64()
    );
    let p99 = percentile(&net, 0.99);
    println!("| loopback p99 | {:.3} ms | {:.2} |", ms(p99), p99.as_secs_f64() / per_transfer_sigs.as_secs_f64());
    println!("| transfers per second (sequential) | {:.0} | |", n as f64 / total.as_secs_f64());
    println!(
        "| network share of the median (loopback / engine only) | {:.2}× | |",
        median.as_secs_f64() / engine_median.as_secs_f64()
    );
}
