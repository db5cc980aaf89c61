//! Tap-to-decision over a modelled NFC link, bytes on the air against the
//! cryptographic minimum, and the gate's decision CPU against the raw
//! signature checks of the same run: `tessera_gate::bench::tap` (shared
//! with `tessera bench`), printed as Markdown tables.
//!
//! `cargo bench -p tessera-gate --bench tap` (under `cargo test --benches`,
//! without `--bench`, it runs the quick sizes).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use tessera_core::bench::{Scale, load_average, markdown};
use tessera_gate::bench::tap::{Params, measure};

fn main() -> ExitCode {
    let full = std::env::args().any(|a| a == "--bench");
    let params = Params::for_scale(if full { Scale::Full } else { Scale::Quick });
    let load = load_average();
    let reports = match measure(params) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tap: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("### NFC presentation ({} taps per case, load average {load} → {})\n", params.taps, load_average());
    println!("Link model: 85 µs/byte at 106 kbit/s, 21 µs/byte at 424 kbit/s, 10 ms turnaround per APDU;");
    println!("CPU measured in process (wallet card + gate state machines, in-memory SQLite).\n");
    let figures: Vec<_> = reports.iter().flat_map(|r| r.figures.iter().cloned()).collect();
    print!("{}", markdown(&figures, full && !cfg!(debug_assertions)));
    println!("\nThe same run's messages in full (as signed, stored and bagged) and on the air:\n");
    println!("| case | presentation full → on air | certificate full → on air | both: on air / full |");
    println!("|---|---|---|---|");
    for r in &reports {
        let ((p_full, p_air), (c_full, c_air)) = (r.presentation_full_air, r.certificate_full_air);
        println!(
            "| {} | {p_full} → {p_air} B | {c_full} → {c_air} B | {:.2}× |",
            r.case,
            (p_air + c_air) as f64 / (p_full + c_full) as f64
        );
    }
    ExitCode::SUCCESS
}
