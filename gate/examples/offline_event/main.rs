//! The offline event (issue 7, item 6; `docs/security.md`): 10 meshed gates,
//! 50,000 entries, cheating holders, the registry unreachable throughout,
//! partitions that heal, then every gate's records reconciled with the
//! registry. Prints the report table.
//!
//! ```sh
//! cargo run --release -p tessera-gate --features registry --example offline_event -- --entries 50000
//! ```
//! Options: `--entries N`, `--gates N`, `--party N` (tickets per phone),
//! `--seed N`, `--max-hops N`, `--split-cheats PERMILLE` (cheats placed
//! while the mesh is split, on opposite sides), `--dir PATH` (default: a fresh directory in
//! /dev/shm when it exists, removed afterwards), `--keep` (leave the files).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod sim;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let tmp = tempfile::Builder::new().prefix("tessera-offline-event").tempdir_in(base)?;
    let mut config = sim::Config::event(50_000, tmp.path().to_path_buf());
    let mut keep = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> anyhow::Result<String> {
            args.next().ok_or_else(|| anyhow::anyhow!("{name} needs a value"))
        };
        match arg.as_str() {
            "--entries" => config.entries = value("--entries")?.parse()?,
            "--gates" => config.gates = value("--gates")?.parse()?,
            "--party" => config.party = value("--party")?.parse()?,
            "--seed" => config.seed = value("--seed")?.parse()?,
            "--max-hops" => config.policy.max_unreconciled_hops = value("--max-hops")?.parse()?,
            "--split-cheats" => config.split_cheats = value("--split-cheats")?.parse()?,
            "--dir" => config.dir = value("--dir")?.into(),
            "--keep" => keep = true,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    anyhow::ensure!((2..=64).contains(&config.gates), "--gates must be 2 to 64");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "offline event: {} entries at {} gates in {} (load {})",
        config.entries,
        config.gates,
        config.dir.display(),
        load.trim()
    );
    let report = sim::run(&config)?;
    println!("{}", sim::table(&config, &report));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after the run: {}", load.trim());
    if keep {
        let kept = tmp.keep();
        eprintln!("files kept in {}", kept.display());
    }
    Ok(())
}
