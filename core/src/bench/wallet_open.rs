//! Opening a wallet that holds 10,000 instruments and listing them.
//!
//! Targets: open + list in at most 30 ms, with a peak RSS of at most 30 MB.
//!
//! [`measure`] builds the wallet file once (through the facade: real issuer
//! signatures, real imports), then starts a child process for every sample
//! (the caller says how: the `tessera` binary runs `tessera bench-child`,
//! the `wallet_open` bench binary re-executes itself), so each figure is of
//! a fresh process that does one thing and reports its own time and
//! `VmHWM` (peak resident set, from `/proc/self/status`). The child runs
//! [`child_from_env`]:
//!
//! | child          | what it does                                        |
//! |----------------|-----------------------------------------------------|
//! | `idle`         | nothing: the RSS baseline of the binary             |
//! | `raw-scan`     | rusqlite alone: open, select the same list columns  |
//! | `open-list`    | `Wallet::open_at` (`StaticKeyProvider`) + list      |
//! | `kdf`          | the passphrase provider's Argon2id derivation alone |
//! | `open-list-pw` | the passphrase-sealed copy: open + list (the CLI)   |
//!
//! Each child reports wall time and on-CPU time (`/proc/self/schedstat`,
//! which leaves out the time spent waiting for a core on a shared machine).
//! The storage key of the static wallet reaches its children through an
//! environment variable: a benchmark's throw-away key, never a real one.

use super::{BenchContext, BenchError, Figure, Quantity, Scale, ScratchDir, Target, Unit, ensure, median};
use crate::authority::{Issuer, RegistryAuthority};
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::codec::Wire;
use crate::crypto::LocalSigner;
use crate::instrument::{Amount, Attributes, CouponAttributes, NoteAttributes, TicketAttributes};
use crate::sealing::{KeyProvider, PassphraseKeyProvider, StaticKeyProvider, StorageKey};
use crate::store::{InstrumentFilter, SqliteStore, WalletStore};
use crate::trust::{Role, TrustEntry};
use crate::wallet::Wallet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// The child's mode; its presence makes a process a child.
pub const CHILD_ENV: &str = "TESSERA_BENCH_CHILD";
const WALLET_ENV: &str = "TESSERA_BENCH_WALLET";
const KEY_ENV: &str = "TESSERA_BENCH_STORAGE_KEY";
const ROWS_ENV: &str = "TESSERA_BENCH_ROWS";
const PASSPHRASE: &str = "correct horse battery staple";
const NOW: Timestamp = 1_800_000_000;

/// The targets' wallet size.
pub const TARGET_ROWS: usize = 10_000;
const TIME_TARGET_MS: f64 = 30.0;
const RSS_TARGET_MB: f64 = 30.0;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Instruments in the wallet.
    pub rows: usize,
    /// Child processes per figure (times: median, RSS: maximum).
    pub children: usize,
}

impl Params {
    /// The documented run (10,000 instruments, 15 children per figure) or
    /// the quick one (2,000 instruments, 3 children).
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self { rows: TARGET_ROWS, children: 15 },
            Scale::Quick => Self { rows: 2_000, children: 3 },
        }
    }
}

/// What one child reported.
#[derive(Debug, Clone, Copy)]
struct Sample {
    micros: u64,
    cpu_micros: u64,
    vmhwm_kib: u64,
}

/// Builds the wallets and measures every figure; `child` makes the command
/// that starts a child process (this module's [`child_from_env`] must run
/// in it), to which the figure's environment is added.
pub fn measure(params: Params, child: &dyn Fn() -> Command) -> Result<Vec<Figure>, BenchError> {
    let dir = ScratchDir::new("wallet-open")?;
    let static_path = dir.path().join("static.db");
    let passphrase_path = dir.path().join("passphrase.db");
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    build_wallet(&static_path, &StaticKeyProvider::new(StorageKey::from_bytes(key)), params.rows)?;
    // The same wallet again, sealed under a passphrase: what the CLI opens.
    build_wallet(&passphrase_path, &PassphraseKeyProvider::new(PASSPHRASE), params.rows)?;
    let key_hex = hex::encode(key);

    let run = |mode: &str, path: &Path| -> Result<Vec<Sample>, BenchError> {
        (0..params.children.max(1)).map(|_| run_child(child, mode, path, &key_hex, params.rows)).collect()
    };
    let idle = run("idle", &static_path)?;
    let raw = run("raw-scan", &static_path)?;
    let open_list = run("open-list", &static_path)?;
    let kdf = run("kdf", &passphrase_path)?;
    let open_list_pw = run("open-list-pw", &passphrase_path)?;

    let wall = |s: &[Sample]| Quantity {
        value: median(s.iter().map(|s| s.micros as f64 / 1e3).collect()),
        unit: Unit::Millis,
    };
    let cpu = |s: &[Sample]| Quantity {
        value: median(s.iter().map(|s| s.cpu_micros as f64 / 1e3).collect()),
        unit: Unit::Millis,
    };
    let rss = |s: &[Sample]| Quantity::megabytes(s.iter().map(|s| s.vmhwm_kib as f64 * 1024.0).fold(0.0, f64::max));
    let n = params.rows;
    let sample = format!("{n} instruments, median of {} processes", params.children.max(1));
    let time_target = Target::at_most(TIME_TARGET_MS, Unit::Millis);
    Ok(vec![
        Figure::new(format!("wallet open + list {n}, wall time"), wall(&open_list))
            .against("raw SQLite scan", wall(&raw))
            .target(time_target)
            .note(sample.clone()),
        Figure::new(format!("wallet open + list {n}, CPU time"), cpu(&open_list))
            .against("raw SQLite scan", cpu(&raw))
            .target(time_target)
            .note(sample),
        Figure::new(format!("wallet open + list {n}, peak RSS"), rss(&open_list))
            .against("idle process", rss(&idle))
            .target(Target::at_most(RSS_TARGET_MB, Unit::Megabytes)),
        Figure::new("passphrase KDF alone (Argon2id), CPU time", cpu(&kdf)).against("open + list", cpu(&open_list)),
        Figure::new(format!("wallet open + list {n} with passphrase, wall time"), wall(&open_list_pw))
            .against("open + list", wall(&open_list)),
        Figure::new(format!("wallet open + list {n} with passphrase, peak RSS"), rss(&open_list_pw))
            .against("idle process", rss(&idle)),
    ])
}

fn run_child(
    child: &dyn Fn() -> Command,
    mode: &str,
    wallet: &Path,
    key_hex: &str,
    rows: usize,
) -> Result<Sample, BenchError> {
    let out = child()
        .env(CHILD_ENV, mode)
        .env(WALLET_ENV, wallet)
        .env(KEY_ENV, key_hex)
        .env(ROWS_ENV, rows.to_string())
        .output()
        .bench("starting a wallet-open child")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure(out.status.success(), || {
        format!("wallet-open child {mode} failed: {text} {}", String::from_utf8_lossy(&out.stderr))
    })?;
    let field = |name: &str| -> Result<u64, BenchError> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .bench(&format!("wallet-open child {mode} did not report {name}: {text}"))
    };
    Ok(Sample { micros: field("micros")?, cpu_micros: field("cpu_micros")?, vmhwm_kib: field("vmhwm_kib")? })
}

/// A wallet with `rows` instruments: tickets, notes and coupons in turn,
/// each issued to a fresh holder key of the wallet and imported.
fn build_wallet(path: &Path, keys: &dyn KeyProvider, rows: usize) -> Result<(), BenchError> {
    let clock = Arc::new(ManualClock::new(NOW));
    let mut wallet = Wallet::create_at(path, keys, clock.clone()).bench("creating the wallet")?;
    let registry = RegistryAuthority::new(LocalSigner::from_seed(&[0xEE; 32]));
    let issuer = Issuer::new(LocalSigner::from_seed(&[0x15; 32]));
    let entries = vec![TrustEntry {
        key: issuer.public_key(),
        role: Role::Issuer,
        name: "Bench Events".into(),
        not_after: NOW * 2,
    }];
    wallet.pin_registry(registry.public_key()).bench("pinning the registry")?;
    let list = registry.trust_list(1, entries, NOW).bench("signing the trust list")?;
    wallet.install_trust_list(&list.to_bytes()).bench("installing the trust list")?;
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
        let holder = wallet.new_holder_key().bench("making a holder key")?;
        let instrument =
            issuer.issue(attributes, holder, clock.now(), &mut rand::rngs::OsRng).bench("issuing an instrument")?;
        wallet.import_instrument(instrument).bench("importing an instrument")?;
        clock.advance(1);
    }
    let listed = wallet.instruments(InstrumentFilter::default()).bench("listing the built wallet")?.len();
    ensure(listed == rows, || format!("the built wallet lists {listed} instruments, not {rows}"))
}

/// In a child process (its environment names a mode), does the one thing
/// the mode says and returns the line to print on standard output; `None`
/// in any other process.
pub fn child_from_env() -> Option<Result<String, BenchError>> {
    let mode = std::env::var(CHILD_ENV).ok()?;
    Some(child(&mode))
}

fn child(mode: &str) -> Result<String, BenchError> {
    let path = std::env::var(WALLET_ENV).bench("no wallet path in the environment")?;
    let rows: usize = std::env::var(ROWS_ENV).ok().and_then(|r| r.parse().ok()).bench("no row count")?;
    let clock = Arc::new(ManualClock::new(NOW + 10_000));
    let cpu_started = cpu_nanos();
    let started = Instant::now();
    let listed = match mode {
        "idle" => 0,
        "raw-scan" => raw_scan(Path::new(&path))?,
        "open-list" => {
            let mut key = [0u8; 32];
            hex::decode_to_slice(std::env::var(KEY_ENV).bench("no storage key")?, &mut key).bench("storage key")?;
            let provider = StaticKeyProvider::new(StorageKey::from_bytes(key));
            let wallet = Wallet::open_at(&path, &provider, clock).bench("opening the wallet")?;
            wallet.instruments(InstrumentFilter::default()).bench("listing")?.len()
        }
        "kdf" => {
            let salt = SqliteStore::open(&path).bench("opening")?.meta("salt").bench("reading")?.bench("no salt")?;
            let salt: [u8; 16] = salt.try_into().ok().bench("the salt is not 16 bytes")?;
            let (cpu_started, timed) = (cpu_nanos(), Instant::now());
            let key = PassphraseKeyProvider::new(PASSPHRASE).storage_key(&salt).bench("deriving")?;
            drop(std::hint::black_box(key));
            return report(timed, cpu_started, 0);
        }
        "open-list-pw" => {
            let provider = PassphraseKeyProvider::new(PASSPHRASE);
            let wallet = Wallet::open_at(&path, &provider, clock).bench("opening the wallet")?;
            wallet.instruments(InstrumentFilter::default()).bench("listing")?.len()
        }
        other => return Err(BenchError(format!("unknown wallet-open child mode {other}"))),
    };
    ensure(mode == "idle" || listed == rows, || format!("{mode} listed {listed} of {rows} instruments"))?;
    report(started, cpu_started, listed)
}

fn report(started: Instant, cpu_started: u64, rows: usize) -> Result<String, BenchError> {
    let micros = started.elapsed().as_micros();
    let cpu_micros = cpu_nanos().saturating_sub(cpu_started) / 1_000;
    Ok(format!("micros={micros} cpu_micros={cpu_micros} vmhwm_kib={} rows={rows}", vmhwm_kib()?))
}

/// Peak resident set of this process so far, in KiB.
fn vmhwm_kib() -> Result<u64, BenchError> {
    let status = std::fs::read_to_string("/proc/self/status").bench("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .bench("no VmHWM line in /proc/self/status")
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

/// The floor under the facade's list: the same columns, straight from
/// SQLite, in the same order.
fn raw_scan(path: &Path) -> Result<usize, BenchError> {
    type Row =
        (Vec<u8>, String, String, Option<String>, Option<i64>, Option<String>, i64, i64, String, String, i64, i64);
    let conn = rusqlite::Connection::open(path).bench("opening")?;
    let sql = "SELECT id, kind, label, currency, amount, event_id, valid_until, uses_left, status, holding, \
               sequence, updated_at FROM instruments ORDER BY updated_at DESC, id";
    let mut stmt = conn.prepare(sql).bench("preparing")?;
    let rows: Vec<Row> = stmt
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
        .bench("querying")?
        .collect::<Result<_, _>>()
        .bench("reading rows")?;
    std::hint::black_box(&rows);
    Ok(rows.len())
}
