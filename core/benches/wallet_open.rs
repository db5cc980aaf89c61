//! Opening a wallet that holds 10,000 instruments and listing them.
//!
//! Targets: open + list in at most 30 ms, with a peak RSS of at most 30 MB.
//!
//! The parent builds the wallet file once (through the facade: real issuer
//! signatures, real imports), then re-executes this binary as a child for
//! every measurement, so each figure is of a fresh process that does one
//! thing and reports its own time and `VmHWM` (peak resident set, from
//! `/proc/self/status`):
//!
//! | child                | what it does                                          |
//! |----------------------|-------------------------------------------------------|
//! | `idle`               | nothing: the RSS baseline of this binary              |
//! | `raw-scan`           | rusqlite alone: open, select the same list columns    |
//! | `raw-scan-rust-sort` | the same select without `ORDER BY`, sorted in Rust    |
//! | `open-list`          | `Wallet::open_at` (`StaticKeyProvider`) + list        |
//! | `kdf`                | the passphrase provider's Argon2id derivation alone   |
//! | `open-list-pw`       | the passphrase-sealed copy: open + list (the CLI)     |
//!
//! Each child reports wall time and on-CPU time (`/proc/self/schedstat`,
//! which leaves out the time spent waiting for a core on a shared machine).
//!
//! The storage key of the static wallet reaches its children through an
//! environment variable: a benchmark's throw-away key, never a real one.
//!
//! `cargo bench -p tessera-core --bench wallet_open` runs the full size;
//! without `--bench` (as under `cargo test --benches`) it runs a 200-row
//! smoke version of the same steps. `TESSERA_BENCH_KEEP=<dir>` leaves the
//! wallet files and the static key there, to profile a child by hand
//! (`TESSERA_BENCH_CHILD=open-list TESSERA_BENCH_WALLET=… perf record …`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::sealing::{KeyProvider, PassphraseKeyProvider, StaticKeyProvider, StorageKey};
use tessera_core::store::{InstrumentFilter, SqliteStore, WalletStore};
use tessera_core::{
    Amount, Attributes, Clock, CouponAttributes, LocalSigner, ManualClock, NoteAttributes, Role, TicketAttributes,
    Timestamp, TrustEntry, Wallet,
};

const CHILD_ENV: &str = "TESSERA_BENCH_CHILD";
const WALLET_ENV: &str = "TESSERA_BENCH_WALLET";
const KEY_ENV: &str = "TESSERA_BENCH_STORAGE_KEY";
const ROWS_ENV: &str = "TESSERA_BENCH_ROWS";
const PASSPHRASE: &str = "correct horse battery staple";
const NOW: Timestamp = 1_800_000_000;

const TIME_TARGET_MS: f64 = 30.0;
const RSS_TARGET_MB: f64 = 30.0;

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child(&mode);
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (rows, runs) = if full { (10_000, 15) } else { (200, 1) };

    let dir = tempfile::tempdir().expect("temp dir");
    // TESSERA_BENCH_KEEP=<dir> leaves the built wallets there, to profile the children by hand.
    let keep = std::env::var_os("TESSERA_BENCH_KEEP").map(std::path::PathBuf::from);
    let files = keep.as_deref().unwrap_or(dir.path());
    let static_path = files.join("static.db");
    let passphrase_path = files.join("passphrase.db");
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);

    let started = Instant::now();
    build_wallet(&static_path, &StaticKeyProvider::new(StorageKey::from_bytes(key)), rows);
    let build_secs = started.elapsed().as_secs_f64();
    // The same wallet again, sealed under a passphrase: what the CLI opens.
    build_wallet(&passphrase_path, &PassphraseKeyProvider::new(PASSPHRASE), rows);
    let file_mb = std::fs::metadata(&static_path).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);

    let key_hex = hex::encode(key);
    if keep.is_some() {
        std::fs::write(files.join("static.key"), &key_hex).expect("writes the bench key");
    }
    let run =
        |mode: &str, path: &Path| -> Vec<Sample> { (0..runs).map(|_| run_child(mode, path, &key_hex, rows)).collect() };
    let idle = run("idle", &static_path);
    let raw = run("raw-scan", &static_path);
    let raw_rust_sort = run("raw-scan-rust-sort", &static_path);
    let open_list = run("open-list", &static_path);
    let kdf = run("kdf", &passphrase_path);
    let open_list_pw = run("open-list-pw", &passphrase_path);

    let ms = |s: &[Sample]| median(s.iter().map(|s| s.micros as f64 / 1_000.0).collect());
    let cpu_ms = |s: &[Sample]| median(s.iter().map(|s| s.cpu_micros as f64 / 1_000.0).collect());
    let mb = |s: &[Sample]| s.iter().map(|s| s.vmhwm_kib as f64 / 1_024.0).fold(0.0, f64::max);

    println!();
    if !full {
        println!("smoke run (no --bench): small wallet, one child per figure; the targets apply to the full run only");
    }
    println!(
        "wallet: {rows} instruments, {file_mb:.1} MB file, built in {build_secs:.1} s; \
         {runs} child process(es) per figure (time: median, RSS: max)"
    );
    println!("{:<48} {:>11} {:>11} {:>8}  target", "figure", "measured", "baseline", "ratio");
    let row = |figure: &str, measured: f64, baseline: f64, unit: &str, target: Option<f64>| {
        let verdict = match target {
            Some(t) if measured <= t => format!("≤ {t} {unit} ok"),
            Some(t) => format!("≤ {t} {unit} MISSED"),
            None => "(reported)".to_owned(),
        };
        println!("{figure:<48} {measured:>8.2} {unit} {baseline:>8.2} {unit} {:>7.2}×  {verdict}", measured / baseline);
    };
    let target_ms = Some(TIME_TARGET_MS);
    row("open + list, wall time (base: raw SQLite scan)", ms(&open_list), ms(&raw), "ms", target_ms);
    row("open + list, CPU time (base: raw SQLite scan)", cpu_ms(&open_list), cpu_ms(&raw), "ms", target_ms);
    row("open + list, peak RSS (base: idle child)", mb(&open_list), mb(&idle), "MB", Some(RSS_TARGET_MB));
    row("raw scan, sorted in Rust, CPU (base: raw scan)", cpu_ms(&raw_rust_sort), cpu_ms(&raw), "ms", None);
    row("raw SQLite scan, peak RSS (base: idle child)", mb(&raw), mb(&idle), "MB", None);
    row("passphrase KDF alone, wall (base: open + list)", ms(&kdf), ms(&open_list), "ms", None);
    row("passphrase KDF alone, CPU (base: open + list)", cpu_ms(&kdf), cpu_ms(&open_list), "ms", None);
    row("passphrase KDF alone, peak RSS (base: idle)", mb(&kdf), mb(&idle), "MB", None);
    row("open + list with passphrase, wall (base: static)", ms(&open_list_pw), ms(&open_list), "ms", None);
    row("open + list with passphrase, CPU (base: static)", cpu_ms(&open_list_pw), cpu_ms(&open_list), "ms", None);
    row("open + list with passphrase, peak RSS (base: idle)", mb(&open_list_pw), mb(&idle), "MB", None);
}

/// What one child reported.
#[derive(Debug, Clone, Copy)]
struct Sample {
    micros: u64,
    cpu_micros: u64,
    vmhwm_kib: u64,
}

fn run_child(mode: &str, wallet: &Path, key_hex: &str, rows: usize) -> Sample {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env(CHILD_ENV, mode)
        .env(WALLET_ENV, wallet)
        .env(KEY_ENV, key_hex)
        .env(ROWS_ENV, rows.to_string())
        .output()
        .expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child {mode} failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    let field = |name: &str| -> u64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("child {mode} did not report {name}: {text}"))
    };
    Sample { micros: field("micros"), cpu_micros: field("cpu_micros"), vmhwm_kib: field("vmhwm_kib") }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A wallet with `rows` instruments: tickets, notes and coupons in turn,
/// each issued to a fresh holder key of the wallet and imported.
fn build_wallet(path: &Path, keys: &dyn KeyProvider, rows: usize) {
    let clock = Arc::new(ManualClock::new(NOW));
    let mut wallet = Wallet::create_at(path, keys, clock.clone()).expect("creates");
    let registry = RegistryAuthority::new(LocalSigner::from_seed(&[0xEE; 32]));
    let issuer = Issuer::new(LocalSigner::from_seed(&[0x15; 32]));
    let entries = vec![TrustEntry {
        key: issuer.public_key(),
        role: Role::Issuer,
        name: "Bench Events".into(),
        not_after: NOW * 2,
    }];
    wallet.pin_registry(registry.public_key()).expect("pins");
    wallet
        .install_trust_list(&tessera_core::Wire::to_bytes(&registry.trust_list(1, entries, NOW).expect("signs")))
        .expect("installs");
    for i in 0..rows {
        let attributes = match i % 3 {
            0 => Attributes::Ticket(TicketAttributes {
                event_id: format!("event-{}", i % 50),
                title: "Benchmark Night".into(),
                zone: "North".into(),
                seat: Some(format!("{}-{}", i / 100, i % 100)),
                guidance: None,
                valid_from: NOW - 1_000,
                valid_until: NOW + 1_000_000,
                transferable: true,
                uses: 1,
                face_price: Some(Amount::new("EUR", 4_500)),
            }),
            1 => Attributes::Note(NoteAttributes {
                amount: Amount::new(if i % 2 == 0 { "EUR" } else { "CHF" }, [100, 200, 500, 1_000][i % 4]),
                expires_at: NOW + 1_000_000,
            }),
            _ => Attributes::Coupon(CouponAttributes {
                program: "coffee".into(),
                title: "Tenth coffee free".into(),
                uses: 10,
                valid_from: NOW - 1_000,
                valid_until: NOW + 1_000_000,
                transferable: false,
            }),
        };
        let holder = wallet.new_holder_key().expect("holder key");
        let instrument = issuer.issue(attributes, holder, clock.now(), &mut rand::rngs::OsRng).expect("issues");
        wallet.import_instrument(instrument).expect("imports");
        clock.advance(1);
    }
    assert_eq!(wallet.instruments(InstrumentFilter::default()).expect("lists").len(), rows);
}

/// Peak resident set of this process so far, in KiB.
fn vmhwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

fn child(mode: &str) {
    let path = std::env::var(WALLET_ENV).expect("wallet path");
    let rows: usize = std::env::var(ROWS_ENV).ok().and_then(|r| r.parse().ok()).expect("row count");
    let clock = Arc::new(ManualClock::new(NOW + 10_000));
    let cpu_started = cpu_nanos();
    let started = Instant::now();
    let listed = match mode {
        "idle" => 0,
        "raw-scan" => raw_scan(Path::new(&path), true),
        "raw-scan-rust-sort" => raw_scan(Path::new(&path), false),
        "open-list" => {
            let mut key = [0u8; 32];
            hex::decode_to_slice(std::env::var(KEY_ENV).expect("key"), &mut key).expect("hex key");
            let provider = StaticKeyProvider::new(StorageKey::from_bytes(key));
            let wallet = Wallet::open_at(&path, &provider, clock).expect("opens");
            let list = wallet.instruments(InstrumentFilter::default()).expect("lists");
            assert_eq!(list.len(), rows);
            list.len()
        }
        "kdf" => {
            let salt = SqliteStore::open(&path).expect("opens").meta("salt").expect("reads").expect("salt");
            let salt: [u8; 16] = salt.try_into().expect("16-byte salt");
            let (cpu_started, timed) = (cpu_nanos(), Instant::now());
            let key = PassphraseKeyProvider::new(PASSPHRASE).storage_key(&salt).expect("derives");
            drop(std::hint::black_box(key));
            report(timed, cpu_started, 0);
            return;
        }
        "open-list-pw" => {
            let wallet = Wallet::open_at(&path, &PassphraseKeyProvider::new(PASSPHRASE), clock).expect("opens");
            let list = wallet.instruments(InstrumentFilter::default()).expect("lists");
            assert_eq!(list.len(), rows);
            list.len()
        }
        other => panic!("unknown child mode {other}"),
    };
    report(started, cpu_started, listed);
}

fn report(started: Instant, cpu_started: u64, rows: usize) {
    let micros = started.elapsed().as_micros();
    let cpu_micros = cpu_nanos().saturating_sub(cpu_started) / 1_000;
    println!("micros={micros} cpu_micros={cpu_micros} vmhwm_kib={} rows={rows}", vmhwm_kib());
}

/// Time this process has spent on a CPU, in ns (`/proc/self/schedstat`).
/// On a shared machine it is steadier than wall time, which also counts the
/// time spent waiting for a core.
fn cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The floor under the facade's list: the same columns, straight from SQLite,
/// ordered by SQLite (`sql_order`) or read in table order and sorted here.
fn raw_scan(path: &Path, sql_order: bool) -> usize {
    type Row =
        (Vec<u8>, String, String, Option<String>, Option<i64>, Option<String>, i64, i64, String, String, i64, i64);
    let conn = rusqlite::Connection::open(path).expect("opens");
    let columns =
        "id, kind, label, currency, amount, event_id, valid_until, uses_left, status, holding, sequence, updated_at";
    let sql = if sql_order {
        format!("SELECT {columns} FROM instruments ORDER BY updated_at DESC, id")
    } else {
        format!("SELECT {columns} FROM instruments")
    };
    let mut stmt = conn.prepare(&sql).expect("prepares");
    let mut rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
            ))
        })
        .expect("queries")
        .collect::<Result<_, _>>()
        .expect("rows");
    if !sql_order {
        rows.sort_by(|a, b| b.11.cmp(&a.11).then_with(|| a.0.cmp(&b.0)));
    }
    std::hint::black_box(&rows);
    rows.len()
}
