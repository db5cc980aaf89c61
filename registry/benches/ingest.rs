//! Reconciliation ingest: endorsements registered per second on SQLite and
//! (when `TESSERA_BENCH_POSTGRES_URL` is set) PostgreSQL, against batch
//! Ed25519 verification of the signatures ingest must check, measured in
//! the same run: `tessera_registry::bench` (shared with `tessera bench`),
//! printed as a table.
//!
//! `cargo bench -p tessera-registry --bench ingest [-- N]` (N chains of one
//! endorsement; default 20,000, 2,000 under `cargo test --benches`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use tessera_core::bench::{Scale, load_average, markdown};
use tessera_registry::bench::{Params, measure};

fn main() -> ExitCode {
    let full = std::env::args().any(|a| a == "--bench");
    let mut params = Params::for_scale(if full { Scale::Full } else { Scale::Quick });
    if let Some(n) = std::env::args().skip(1).find_map(|a| a.parse().ok()) {
        params.chains = n;
    }
    let url = std::env::var("TESSERA_BENCH_POSTGRES_URL").ok();
    let load = load_average();
    let figures = match measure(params, url.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ingest: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "reconciliation ingest, {} chains (1 endorsement each); load average {load} → {}\n",
        params.chains,
        load_average()
    );
    print!("{}", markdown(&figures, full && !cfg!(debug_assertions)));
    if url.is_none() {
        println!("\n(set TESSERA_BENCH_POSTGRES_URL to measure PostgreSQL)");
    }
    ExitCode::SUCCESS
}
