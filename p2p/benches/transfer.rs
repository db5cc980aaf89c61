//! Offer → receipt latency over an established loopback connection, with
//! the signature work of one transfer and the engine alone as baselines:
//! `tessera_p2p::bench` (shared with `tessera bench`), printed as a table.
//!
//! `cargo bench -p tessera-p2p --bench transfer` (add `-- <n>` for the
//! number of transfers; default 200, 20 under `cargo test --benches`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;
use tessera_core::bench::{Scale, load_average, markdown, percentile};
use tessera_p2p::bench::{Params, SIGNS_PER_TRANSFER, VERIFIES_PER_TRANSFER, measure};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> ExitCode {
    let full = std::env::args().any(|a| a == "--bench");
    let mut params = Params::for_scale(if full { Scale::Full } else { Scale::Quick });
    if let Some(n) = std::env::args().skip(1).find_map(|a| a.parse().ok()) {
        params.transfers = n;
    }
    let load = load_average();
    let m = match measure(params) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("transfer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let work = m.signature_work();
    let (engine, net) = (percentile(&m.engine, 0.5), percentile(&m.loopback, 0.5));
    println!(
        "offer → receipt, {} gifts of one ticket, loopback (one connection); load average {load} → {}\n",
        params.transfers,
        load_average()
    );
    print!("{}", markdown(&m.figures(), full && !cfg!(debug_assertions)));
    println!("\n| measure | value | ratio to signature work |");
    println!("|---|---|---|");
    println!("| Ed25519 sign | {:.3} ms | |", ms(m.sign));
    println!("| Ed25519 verify | {:.3} ms | |", ms(m.verify));
    println!(
        "| signature work per transfer ({SIGNS_PER_TRANSFER} sign + {VERIFIES_PER_TRANSFER} verify) | {:.3} ms | 1.00 |",
        ms(work)
    );
    let ratio = |d: Duration| d.as_secs_f64() / work.as_secs_f64();
    println!("| engine only, both wallets in-process (SQLite), median | {:.3} ms | {:.2} |", ms(engine), ratio(engine));
    println!("| loopback median | {:.3} ms | {:.2} |", ms(net), ratio(net));
    let p99 = percentile(&m.loopback, 0.99);
    println!("| loopback p99 | {:.3} ms | {:.2} |", ms(p99), ratio(p99));
    println!(
        "| transfers per second (sequential) | {:.0} | |",
        m.loopback.len() as f64 / m.loopback_total.as_secs_f64()
    );
    println!(
        "| network share of the median (loopback / engine only) | {:.2}× | |",
        net.as_secs_f64() / engine.as_secs_f64()
    );
    ExitCode::SUCCESS
}
