//! `tessera bench`: every figure of docs/benchmarks.md in one run, each
//! against a limit or baseline measured in the same run, as one table.
//!
//! The measurements live in the crates they measure (`tessera_gate::bench`,
//! `tessera_registry::bench`, `tessera_p2p::bench`,
//! `tessera_core::bench::wallet_open`); their `cargo bench` entry points
//! call the same functions. Targets are judged on a release build at full
//! scale only: a debug build or `--quick` prints its verdicts in
//! parentheses. A missed target is not an error; a measurement that fails
//! is (exit status 1).

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tessera_core::bench::{BenchError, Bound, Figure, Scale, Subject, load_average, markdown, wallet_open};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run (seconds to a minute) that measures every figure on
    /// smaller samples; its verdicts are indicative only.
    #[arg(long)]
    quick: bool,
    /// Print the run as JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// PostgreSQL to measure registry ingest on (a throw-away schema is
    /// made in it); without it that row says "not measured".
    #[arg(long, env = "TESSERA_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Measure only these groups (all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
}

/// The groups of figures, in the order they run and are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// Gate decision CPU, tap-to-decision and bytes on the air (NFC).
    Tap,
    /// Registry reconciliation ingest (SQLite, PostgreSQL).
    Ingest,
    /// Transfer offer → receipt over loopback libp2p.
    Transfer,
    /// Used-event propagation across 10 meshed gates.
    Mesh,
    /// Wallet open + list.
    Wallet,
}

const GROUPS: [Group; 5] = [Group::Tap, Group::Ingest, Group::Transfer, Group::Mesh, Group::Wallet];

fn measure(group: Group, scale: Scale, postgres: Option<&str>) -> Result<Vec<Figure>, BenchError> {
    match group {
        Group::Tap => {
            let reports = tessera_gate::bench::tap::measure(tessera_gate::bench::tap::Params::for_scale(scale))?;
            // Decision CPU of both cases first, then the link figures.
            let (cpu, link): (Vec<Figure>, Vec<Figure>) =
                reports.into_iter().flat_map(|r| r.figures).partition(|f| f.name.starts_with("gate decision CPU"));
            Ok(cpu.into_iter().chain(link).collect())
        }
        Group::Ingest => tessera_registry::bench::measure(tessera_registry::bench::Params::for_scale(scale), postgres),
        Group::Transfer => Ok(tessera_p2p::bench::measure(tessera_p2p::bench::Params::for_scale(scale))?.figures()),
        Group::Mesh => tessera_gate::bench::mesh::measure(tessera_gate::bench::mesh::Params::for_scale(scale)),
        Group::Wallet => {
            let exe = std::env::current_exe().map_err(|e| BenchError(format!("own executable: {e}")))?;
            let child = move || {
                let mut c = Command::new(&exe);
                c.arg("bench-child");
                c
            };
            wallet_open::measure(wallet_open::Params::for_scale(scale), &child)
        }
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let scale = if args.quick { Scale::Quick } else { Scale::Full };
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let judged = scale == Scale::Full && profile == "release";
    let started_utc = utc_now();
    let load_before = load_average();
    let started = Instant::now();
    let mut figures = Vec::new();
    let mut errors = Vec::new();
    for group in GROUPS.into_iter().filter(|g| args.only.is_empty() || args.only.contains(g)) {
        let name = group.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned());
        eprintln!("tessera bench: measuring {name}…");
        let t = Instant::now();
        match measure(group, scale, args.postgres.as_deref()) {
            Ok(f) => figures.extend(f),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
        eprintln!("tessera bench: {name} took {:.1} s", t.elapsed().as_secs_f64());
    }
    let load_after = load_average();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let scale_name = if args.quick { "quick" } else { "full" };
    let command = if args.quick { "tessera bench --quick" } else { "tessera bench" };
    if args.json {
        let run = json!({
            "command": command,
            "scale": scale_name,
            "profile": profile,
            "judged": judged,
            "started_utc": started_utc,
            "seconds": started.elapsed().as_secs_f64(),
            "cores": cores,
            "load_before": load_before,
            "load_after": load_after,
            "figures": figures.iter().map(figure_json).collect::<Vec<_>>(),
            "errors": errors,
        });
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        println!(
            "tessera bench ({scale_name}), {profile} build, started {started_utc}, {:.0} s, {cores} cores, \
             load average {load_before} → {load_after}\n",
            started.elapsed().as_secs_f64()
        );
        print!("{}", markdown(&figures, judged));
        if !judged {
            println!(
                "\nVerdicts in parentheses are indicative only: {}. The targets are judged on \
                 `cargo run --release --bin tessera -- bench` (docs/benchmarks.md).",
                if profile == "debug" { "a debug build's figures are not the targets' figures" } else { "a quick run" }
            );
        }
        for e in &errors {
            println!("\nfailed: {e}");
        }
    }
    if !errors.is_empty() {
        bail!("{} measurement(s) failed: {}", errors.len(), errors.join("; "));
    }
    Ok(())
}

fn figure_json(f: &Figure) -> Value {
    json!({
        "figure": f.name,
        "value": f.value.map(|q| q.value),
        "unit": f.value.map(|q| q.unit.symbol()),
        "baseline": f.baseline.as_ref().map(|b| json!({
            "label": b.label, "value": b.value.value, "unit": b.value.unit.symbol(),
        })),
        "ratio": f.ratio,
        "target": f.target.map(|t| json!({
            "text": t.to_string(),
            "bound": match t.bound { Bound::AtMost => "at_most", Bound::AtLeast => "at_least" },
            "limit": t.limit,
            "on": match t.on { Subject::Value => "value", Subject::Ratio => "ratio" },
        })),
        "verdict": f.verdict().as_str(),
        "note": f.note,
    })
}

/// `tessera bench-child`: one wallet-open sample in a fresh process.
pub fn child() -> Result<()> {
    match wallet_open::child_from_env() {
        Some(Ok(line)) => {
            println!("{line}");
            Ok(())
        }
        Some(Err(e)) => bail!("{e}"),
        None => bail!("bench-child is started by `tessera bench`, with {} set", wallet_open::CHILD_ENV),
    }
}

/// Now, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{} UTC", crate::wallet_cmd::format_time(secs))
}
