//! `tessera`: a desktop wallet, and `tessera demo`, the end-to-end story of
//! the whole system on embedded defaults.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench_cmd;
mod demo;
mod p2p_cmd;
mod registry_cmd;
mod wallet_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Tessera: tickets and e-money that move phone to phone and verify offline.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
struct Cli {
    /// The wallet database file.
    #[arg(long, global = true, env = "TESSERA_WALLET")]
    wallet: Option<PathBuf>,
    /// A file holding the storage key (64 hex digits) instead of a passphrase.
    #[arg(long, global = true, env = "TESSERA_KEY_FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new wallet.
    Init(wallet_cmd::InitArgs),
    /// List tickets, notes and coupons.
    List(wallet_cmd::ListArgs),
    /// Show one instrument in full.
    Show {
        /// Instrument id (hex).
        id: String,
    },
    /// Money per currency.
    Balance,
    /// The transaction history, newest first.
    History {
        /// How many lines.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Import an instrument file (as issued or endorsed to this wallet).
    Import {
        /// File with the encoded instrument (binary or hex).
        file: PathBuf,
    },
    /// Write an instrument's encoding to a file or standard output (hex).
    Export {
        /// Instrument id (hex).
        id: String,
        /// Output file (binary); hex on standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make a fresh holder key for an issuer or a sender to endorse to.
    NewKey,
    /// Pin the service provider's key and install its trust list.
    Trust(wallet_cmd::TrustArgs),
    /// Receive offers from other wallets over libp2p and answer them.
    Listen(p2p_cmd::ListenArgs),
    /// Offer instruments to another wallet (gift, or sale with --price).
    Offer(p2p_cmd::OfferArgs),
    /// Exchanges in progress.
    Pending,
    /// Run a libp2p relay so wallets behind NAT can reach each other.
    Relay(p2p_cmd::RelayArgs),
    /// Reconcile with the service provider: lists, certificates, conflicts.
    Sync(registry_cmd::RegistryArgs),
    /// Buy a ticket from the service provider with notes.
    Buy(registry_cmd::BuyArgs),
    /// Give a ticket back for notes.
    Refund(registry_cmd::RefundArgs),
    /// Add money through the payment provider (and take it as notes).
    Topup(registry_cmd::TopUpArgs),
    /// Give notes back to the service provider.
    Redeem(registry_cmd::RedeemArgs),
    /// Run the whole system on embedded defaults and tell what happens.
    Demo,
    /// Measure every figure of docs/benchmarks.md against its baseline and target.
    Bench(bench_cmd::BenchArgs),
    /// One sample of `tessera bench`'s wallet-open figures, in a fresh process.
    #[command(hide = true)]
    BenchChild,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    // Commands that use no wallet do not need a wallet location.
    let location = wallet_cmd::Location::new(cli.wallet, cli.key_file);
    match cli.command {
        Command::Init(args) => wallet_cmd::init(&location?, args),
        Command::List(args) => wallet_cmd::list(&location?, args),
        Command::Show { id } => wallet_cmd::show(&location?, &id),
        Command::Balance => wallet_cmd::balance(&location?),
        Command::History { limit } => wallet_cmd::history(&location?, limit),
        Command::Import { file } => wallet_cmd::import(&location?, &file),
        Command::Export { id, out } => wallet_cmd::export(&location?, &id, out.as_deref()),
        Command::NewKey => wallet_cmd::new_key(&location?),
        Command::Trust(args) => wallet_cmd::trust(&location?, args),
        Command::Listen(args) => p2p_cmd::listen(&location?, args),
        Command::Offer(args) => p2p_cmd::offer(&location?, args),
        Command::Pending => p2p_cmd::pending(&location?),
        Command::Relay(args) => p2p_cmd::relay(args),
        Command::Sync(args) => registry_cmd::sync(&location?, &args),
        Command::Buy(args) => registry_cmd::buy(&location?, args),
        Command::Refund(args) => registry_cmd::refund(&location?, args),
        Command::Topup(args) => registry_cmd::topup(&location?, args),
        Command::Redeem(args) => registry_cmd::redeem(&location?, args),
        Command::Demo => demo::run(),
        Command::Bench(args) => bench_cmd::run(args),
        Command::BenchChild => bench_cmd::child(),
    }
}
