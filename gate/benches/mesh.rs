//! Used-event propagation across 10 gates meshed over libp2p gossipsub on
//! loopback: `tessera_gate::bench::mesh` (shared with `tessera bench`),
//! every configuration's percentiles printed as a Markdown table.
//!
//! `cargo bench -p tessera-gate --features mesh --bench mesh` (under
//! `cargo test --benches`, without `--bench`, it runs the quick sizes).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use tessera_core::bench::{Scale, load_average, percentile};
use tessera_gate::bench::mesh::{GATES, Params, configurations, samples};

fn main() -> ExitCode {
    let full = std::env::args().any(|a| a == "--bench");
    let params = Params::for_scale(if full { Scale::Full } else { Scale::Quick });
    let load_before = load_average();
    let pooled = match samples(params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mesh: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ms = |s: &[std::time::Duration], p: f64| percentile(s, p).as_secs_f64() * 1e3;
    println!(
        "### Used event reaches all {} other gates ({} rounds per configuration, load {load_before} → {})\n",
        GATES - 1,
        params.passes * params.rounds,
        load_average()
    );
    println!("| gossipsub | p50 | p90 | p99 | max | p99 / baseline p99 |");
    println!("|---|---|---|---|---|---|");
    for ((name, _), s) in configurations(params).iter().zip(&pooled) {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
            ms(s, 0.5),
            ms(s, 0.9),
            ms(s, 0.99),
            ms(s, 1.0),
            ms(s, 0.99) / ms(&pooled[0], 0.99)
        );
    }
    ExitCode::SUCCESS
}
