//! `tessera sync | buy | refund | topup | redeem`: the wallet talking to the
//! service provider over HTTP, through `tessera_registry::client`.

use crate::wallet_cmd::Location;
use anyhow::{Context as _, Result};
use clap::Args;
use tessera_core::InstrumentId;
use tessera_registry::client::{RegistryClient, Retry, WalletSession};

/// Where the registry is.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The registry's base URL.
    #[arg(long, env = "TESSERA_REGISTRY", default_value = "http://127.0.0.1:7700")]
    pub registry: String,
}

/// `tessera buy`.
#[derive(Debug, Args)]
pub struct BuyArgs {
    /// Registry.
    #[command(flatten)]
    pub at: RegistryArgs,
    /// The event id.
    pub event: String,
    /// The zone.
    #[arg(long)]
    pub zone: String,
    /// A seat.
    #[arg(long)]
    pub seat: Option<String>,
}

/// `tessera topup`.
#[derive(Debug, Args)]
pub struct TopUpArgs {
    /// Registry.
    #[command(flatten)]
    pub at: RegistryArgs,
    /// Minor units (cents).
    pub minor: u64,
    /// ISO 4217 currency.
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    /// The payment provider's token (the test provider takes any).
    #[arg(long)]
    pub payment: Option<String>,
    /// Also take the amount as notes.
    #[arg(long)]
    pub withdraw: bool,
}

/// `tessera refund`.
#[derive(Debug, Args)]
pub struct RefundArgs {
    /// Registry.
    #[command(flatten)]
    pub at: RegistryArgs,
    /// Ticket id (hex).
    pub ticket: String,
}

/// `tessera redeem`.
#[derive(Debug, Args)]
pub struct RedeemArgs {
    /// Registry.
    #[command(flatten)]
    pub at: RegistryArgs,
    /// Note ids (hex).
    #[arg(required = true)]
    pub notes: Vec<String>,
    /// Pay the value out to the bank instead of keeping it on the account.
    #[arg(long)]
    pub payout: bool,
}

/// The registry at `url`, retrying what it did not answer: every flow the
/// CLI runs is safe to send again (`registry/tests/crash.rs`).
fn registry(url: &str) -> RegistryClient {
    RegistryClient::new(url).with_retry(Retry::INTERACTIVE)
}

fn id(text: &str) -> Result<InstrumentId> {
    InstrumentId::from_hex(text).with_context(|| format!("{text} is not an instrument id"))
}

/// Pins the registry, installs its lists, reconciles.
pub fn sync(location: &Location, at: &RegistryArgs) -> Result<()> {
    let mut wallet = location.open()?;
    let report = WalletSession::new(&mut wallet, registry(&at.registry)).sync()?;
    println!("trust list v{}, deny list v{}", report.trust_version, report.deny_version);
    for i in &report.reconcile.certified {
        println!("registered: {i} (chain replaced by a registered certificate)");
    }
    for i in &report.reconcile.gone {
        println!("passed on: {i} (the registry names a later holder)");
    }
    for p in &report.reconcile.conflicts {
        println!(
            "double transfer: {} at sequence {} signed twice by {}",
            p.instrument_id(),
            p.sequence(),
            p.signer.short()
        );
    }
    for (i, reason) in &report.reconcile.refused {
        println!("refused: {} — {reason}", i.map(|i| i.to_hex()).unwrap_or_else(|| "upload".into()));
    }
    for (kind, inst) in &report.notices {
        println!("notice: {kind} {}", inst.as_deref().unwrap_or(""));
    }
    Ok(())
}

/// Buys a ticket with notes (and the account balance).
pub fn buy(location: &Location, args: BuyArgs) -> Result<()> {
    let mut wallet = location.open()?;
    let mut session = WalletSession::new(&mut wallet, registry(&args.at.registry));
    session.sync()?;
    let ticket = session.buy(&args.event, &args.zone, args.seat)?;
    println!("bought ticket {ticket}");
    Ok(())
}

/// Tops the account up, optionally taking notes.
pub fn topup(location: &Location, args: TopUpArgs) -> Result<()> {
    let mut wallet = location.open()?;
    let mut session = WalletSession::new(&mut wallet, registry(&args.at.registry));
    session.sync()?;
    let token = args.payment.unwrap_or_else(|| format!("cli-{}", hex::encode(rand::random::<[u8; 8]>())));
    let balance = session.top_up(&args.currency, args.minor, &token)?;
    println!("account balance {balance} {} minor units", args.currency);
    if args.withdraw {
        for note in session.withdraw(&args.currency, args.minor)? {
            println!("note {note}");
        }
    }
    Ok(())
}

/// Refunds a ticket for notes.
pub fn refund(location: &Location, args: RefundArgs) -> Result<()> {
    let mut wallet = location.open()?;
    let mut session = WalletSession::new(&mut wallet, registry(&args.at.registry));
    session.sync()?;
    for note in session.refund(&id(&args.ticket)?)? {
        println!("refund note {note}");
    }
    Ok(())
}

/// Redeems notes to the account.
pub fn redeem(location: &Location, args: RedeemArgs) -> Result<()> {
    let ids = args.notes.iter().map(|n| id(n)).collect::<Result<Vec<_>>>()?;
    let mut wallet = location.open()?;
    let mut session = WalletSession::new(&mut wallet, registry(&args.at.registry));
    session.sync()?;
    let balance = session.redeem(&ids, args.payout)?;
    println!("account balance {balance}");
    Ok(())
}
