//! The desktop wallet commands: init, list, show, balance, history, import,
//! export, new-key, trust.

use anyhow::{Context as _, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::sealing::{KeyFileProvider, KeyProvider, PassphraseKeyProvider};
use tessera_core::store::{Holding, InstrumentFilter, InstrumentSummary};
use tessera_core::{InstrumentId, Kind, PublicKey, SystemClock, Wallet};

/// Where the wallet lives and how its storage key is obtained.
#[derive(Debug)]
pub struct Location {
    path: PathBuf,
    key_file: Option<PathBuf>,
}

impl Location {
    pub fn new(wallet: Option<PathBuf>, key_file: Option<PathBuf>) -> Result<Self> {
        let path = match wallet {
            Some(p) => p,
            None => {
                let base = std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                    .ok_or_else(|| anyhow!("set --wallet or HOME"))?;
                base.join("tessera").join("wallet.db")
            }
        };
        Ok(Self { path, key_file })
    }

    fn provider(&self, creating: bool) -> Result<Box<dyn KeyProvider>> {
        if let Some(file) = &self.key_file {
            if creating && !file.exists() {
                KeyFileProvider::create(file, &mut rand::rngs::OsRng)
                    .with_context(|| format!("creating key file {}", file.display()))?;
                println!("created key file {} (keep it safe: it opens the wallet)", file.display());
            }
            return Ok(Box::new(KeyFileProvider::new(file)));
        }
        let passphrase = match std::env::var("TESSERA_PASSPHRASE") {
            Ok(p) => p,
            Err(_) => {
                let p = rpassword::prompt_password("wallet passphrase: ").context("reading the passphrase")?;
                if creating && rpassword::prompt_password("again: ").context("reading the passphrase")? != p {
                    bail!("the passphrases differ");
                }
                p
            }
        };
        if passphrase.is_empty() {
            bail!("an empty passphrase would leave the keys unprotected; set TESSERA_PASSPHRASE or use --key-file");
        }
        Ok(Box::new(PassphraseKeyProvider::new(passphrase)))
    }

    pub fn open(&self) -> Result<Wallet> {
        if !self.path.exists() {
            bail!("no wallet at {} (run `tessera init` first)", self.path.display());
        }
        let provider = self.provider(false)?;
        Ok(Wallet::open_at(&self.path, provider.as_ref(), Arc::new(SystemClock))?)
    }
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The service provider's public key (hex) to pin now.
    #[arg(long)]
    registry: Option<String>,
}

pub fn init(location: &Location, args: InitArgs) -> Result<()> {
    if location.path.exists() {
        bail!("a wallet already exists at {}", location.path.display());
    }
    if let Some(dir) = location.path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let provider = location.provider(true)?;
    let mut wallet = Wallet::create_at(&location.path, provider.as_ref(), Arc::new(SystemClock))?;
    if let Some(key) = args.registry {
        wallet.pin_registry(PublicKey::from_hex(&key)?)?;
    }
    println!("created wallet {}", location.path.display());
    println!("account key {}", wallet.account_key());
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this kind: ticket, note or coupon.
    #[arg(long)]
    kind: Option<String>,
    /// Include instruments already passed on.
    #[arg(long)]
    all: bool,
}

pub fn list(location: &Location, args: ListArgs) -> Result<()> {
    let wallet = location.open()?;
    let kind = args.kind.as_deref().map(|k| Kind::parse(k).ok_or_else(|| anyhow!("unknown kind {k}"))).transpose()?;
    let mut rows = wallet.instruments(InstrumentFilter { kind, holding: None })?;
    if !args.all {
        rows.retain(|r| r.holding != Holding::Gone);
    }
    if rows.is_empty() {
        println!("(nothing)");
    }
    for row in rows {
        println!("{}", list_line(&row));
    }
    Ok(())
}

pub fn list_line(row: &InstrumentSummary) -> String {
    format!(
        "{}  {:<6} {:<11} {}{}",
        row.id,
        row.kind.as_str(),
        row.holding.as_str(),
        row.label,
        if row.status == tessera_core::Status::Active { String::new() } else { format!(" [{}]", row.status.as_str()) }
    )
}

fn parse_id(id: &str) -> Result<InstrumentId> {
    InstrumentId::from_hex(id).map_err(|e| anyhow!("{e}"))
}

pub fn show(location: &Location, id: &str) -> Result<()> {
    let wallet = location.open()?;
    let record = wallet.instrument(&parse_id(id)?)?;
    let inst = &record.instrument;
    let g = &inst.genesis.body;
    println!("instrument {}", inst.id());
    println!("  kind        {}", inst.kind().as_str());
    println!("  what        {}", inst.attributes().label());
    let (from, until) = inst.attributes().validity();
    println!("  valid       {} → {}", format_time(from), format_time(until));
    println!("  issuer      {}", g.issuer);
    println!("  issued      {}", format_time(g.issued_at));
    if let Some(cert) = &inst.registered {
        println!("  registered  at sequence {} on {}", cert.body.sequence, format_time(cert.body.issued_at));
    }
    println!("  links       {}", inst.links.len());
    for link in &inst.links {
        println!(
            "    #{} → holder {} at {}",
            link.body.sequence,
            link.body.new_holder.short(),
            format_time(link.body.time)
        );
    }
    println!("  holder      {} ({})", record.holder, record.holding.as_str());
    println!(
        "  uses left   {}   status {}   presentations {}",
        record.uses_left,
        record.status.as_str(),
        record.exam_counter
    );
    match wallet.verify(&inst.id()) {
        Ok(v) => println!("  verifier    valid for this wallet at sequence {}", v.sequence),
        Err(e) => println!("  verifier    {e}"),
    }
    Ok(())
}

pub fn balance(location: &Location) -> Result<()> {
    let wallet = location.open()?;
    let balances = wallet.balance()?;
    if balances.is_empty() {
        println!("no money");
    }
    for b in balances {
        println!(
            "{}  available {}  pending out {}",
            b.currency,
            tessera_core::Amount::new(&b.currency, b.available),
            tessera_core::Amount::new(&b.currency, b.pending_out)
        );
    }
    Ok(())
}

pub fn history(location: &Location, limit: usize) -> Result<()> {
    let wallet = location.open()?;
    for h in wallet.history(limit)? {
        let amount = h.amount.map(|a| format!(" {a}")).unwrap_or_default();
        println!(
            "{}  {:<3} {:<6} {}{}  {}",
            format_time(h.time),
            h.direction.as_str(),
            h.kind.as_str(),
            h.instrument_id,
            amount,
            h.memo
        );
    }
    Ok(())
}

fn read_instrument_file(file: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // Hex files are accepted too, for copy and paste.
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    match text.and_then(|t| hex::decode(t).ok()) {
        Some(decoded) if !decoded.is_empty() => Ok(decoded),
        _ => Ok(bytes),
    }
}

pub fn import(location: &Location, file: &Path) -> Result<()> {
    let mut wallet = location.open()?;
    let summary = wallet.import(&read_instrument_file(file)?)?;
    println!("imported {}", list_line(&summary));
    Ok(())
}

pub fn export(location: &Location, id: &str, out: Option<&Path>) -> Result<()> {
    let wallet = location.open()?;
    let bytes = wallet.export(&parse_id(id)?)?;
    match out {
        Some(path) => std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{}", hex::encode(bytes)),
    }
    Ok(())
}

pub fn new_key(location: &Location) -> Result<()> {
    let mut wallet = location.open()?;
    println!("{}", wallet.new_holder_key()?);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The service provider's public key (hex); pinned on first use.
    #[arg(long)]
    registry: Option<String>,
    /// A trust list file signed by that registry (binary or hex).
    #[arg(long)]
    list: Option<PathBuf>,
}

pub fn trust(location: &Location, args: TrustArgs) -> Result<()> {
    let mut wallet = location.open()?;
    if let Some(key) = args.registry {
        wallet.pin_registry(PublicKey::from_hex(&key)?)?;
        println!("registry {} pinned", key);
    }
    if let Some(file) = args.list {
        wallet.install_trust_list(&read_instrument_file(&file)?)?;
        if let Some(list) = wallet.trust_list() {
            println!("trust list version {} installed: {} certified keys", list.version(), list.entries().len());
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn format_time(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(1_795_000_000), "2026-11-18 11:06");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00");
    }
}
