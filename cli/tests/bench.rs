//! `tessera bench --quick` as CI runs it: every figure of docs/benchmarks.md
//! comes out of one run, each with its same-run baseline, and `--json`
//! parses. Targets are not judged here (a debug build's figures are not
//! the targets' figures); only a failed measurement fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;

#[test]
fn quick_bench_measures_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["bench", "--quick", "--json"])
        .env_remove("TESSERA_BENCH_POSTGRES_URL")
        .output()
        .expect("runs tessera bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tessera bench failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(run["scale"], "quick");
    assert_eq!(run["profile"], if cfg!(debug_assertions) { "debug" } else { "release" });
    assert_eq!(run["judged"], false, "a quick run's verdicts are indicative only");
    assert_eq!(run["errors"].as_array().map(Vec::len), Some(0), "{stdout}");
    let figures = run["figures"].as_array().expect("figures");
    let names: Vec<&str> = figures.iter().filter_map(|f| f["figure"].as_str()).collect();

    let expected: &[&[&str]] = &[
        &["gate decision CPU", "registered ticket"],
        &["gate decision CPU", "3-hop chain"],
        &["tap-to-decision", "@106 kbit/s", "registered ticket"],
        &["tap-to-decision", "@424 kbit/s", "registered ticket"],
        &["tap-to-decision", "@106 kbit/s", "3-hop chain"],
        &["tap-to-decision", "@424 kbit/s", "3-hop chain"],
        &["bytes on air", "registered ticket"],
        &["bytes on air", "3-hop chain"],
        &["ingest", "SQLite"],
        &["ingest", "PostgreSQL"],
        &["transfer offer → receipt"],
        &["used-event propagation", "10 meshed gates", "p99"],
        &["wallet open + list", "wall time"],
        &["wallet open + list", "peak RSS"],
    ];
    for parts in expected {
        let found = figures.iter().find(|f| f["figure"].as_str().is_some_and(|n| parts.iter().all(|p| n.contains(p))));
        let Some(f) = found else { panic!("no figure named with {parts:?} among {names:#?}") };
        assert!(f["target"]["text"].is_string(), "{parts:?} has no target: {f}");
        if parts.contains(&"PostgreSQL") {
            // No URL given: the row is there and says why it has no value.
            assert_eq!(f["verdict"], "not measured", "{f}");
            assert!(f["note"].as_str().is_some_and(|n| n.contains("PostgreSQL URL")), "{f}");
            continue;
        }
        assert!(f["value"].as_f64().is_some_and(|v| v > 0.0), "{parts:?} measured nothing: {f}");
        assert!(f["baseline"]["value"].as_f64().is_some_and(|v| v > 0.0), "{parts:?} has no baseline: {f}");
        assert!(f["ratio"].as_f64().is_some_and(f64::is_finite), "{parts:?} has no ratio: {f}");
        assert!(["met", "missed"].contains(&f["verdict"].as_str().unwrap_or("")), "{f}");
    }
}
