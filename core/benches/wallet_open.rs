//! Opening a wallet that holds 10,000 instruments and listing them: the
//! measurement is `tessera_core::bench::wallet_open` (shared with
//! `tessera bench`); this binary is its `cargo bench` entry point and its
//! child process.
//!
//! `cargo bench -p tessera-core --bench wallet_open` runs the full size;
//! without `--bench` (as under `cargo test --benches`) it runs a 200-row
//! smoke version of the same steps, one child per figure.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::{Command, ExitCode};
use tessera_core::bench::wallet_open::{Params, child_from_env, measure};
use tessera_core::bench::{Scale, load_average, markdown};

fn main() -> ExitCode {
    if let Some(line) = child_from_env() {
        return match line {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let full = std::env::args().any(|a| a == "--bench");
    let params = if full { Params::for_scale(Scale::Full) } else { Params { rows: 200, children: 1 } };
    let load = load_average();
    let child = || match std::env::current_exe() {
        Ok(exe) => Command::new(exe),
        Err(_) => Command::new(std::env::args().next().unwrap_or_default()),
    };
    match measure(params, &child) {
        Ok(figures) => {
            if !full {
                println!("smoke run (no --bench): the targets apply to the full run only");
            }
            println!("load average before: {load}, after: {}\n", load_average());
            print!("{}", markdown(&figures, full && !cfg!(debug_assertions)));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wallet_open: {e}");
            ExitCode::FAILURE
        }
    }
}
