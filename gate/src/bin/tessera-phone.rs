//! `tessera-phone`: a phone in reader mode on a PC, for trying
//! phone-to-phone transfers through a real reader (PC/SC, PN532) — the
//! other phone is a card (an Android phone, or `tessera-vcard serve` on
//! vpcd). See `docs/nfc.md` §8.

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tessera_core::presentation::NfcTransferStep;
use tessera_core::transfer::{OfferTerms, TransferEvent};
use tessera_core::{Clock, InstrumentId, SystemClock};
use tessera_gate::nfc::NfcReader;
use tessera_gate::phone::{open_wallet, send_tap};

#[derive(Parser, Debug)]
#[command(name = "tessera-phone", about = "A Tessera wallet as the reader phone of a phone-to-phone NFC transfer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Gives instruments to the phone on the reader (one tap when its user
    /// has the receive screen open; otherwise tap again with `collect`).
    Give {
        /// The wallet directory.
        #[arg(long)]
        wallet: PathBuf,
        /// An instrument to give (hex id; repeat for several).
        #[arg(long = "id", required = true)]
        ids: Vec<InstrumentId>,
        /// libnfc connstring (`pcsc:<reader name>`, `pn532_uart:/dev/ttyUSB0`).
        #[arg(long)]
        connstring: Option<String>,
        /// Give up when no phone comes within this many seconds.
        #[arg(long, default_value_t = 20)]
        wait_secs: u64,
    },
    /// A second tap: collects the other phone's answer to a pending offer.
    Collect {
        /// The wallet directory.
        #[arg(long)]
        wallet: PathBuf,
        /// libnfc connstring.
        #[arg(long)]
        connstring: Option<String>,
        /// Give up when no phone comes within this many seconds.
        #[arg(long, default_value_t = 20)]
        wait_secs: u64,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TESSERA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let mut out = std::io::stdout().lock();
    let (wallet_dir, connstring, wait_secs, offer) = match Cli::parse().command {
        Command::Give { wallet, ids, connstring, wait_secs } => (wallet, connstring, wait_secs, Some(ids)),
        Command::Collect { wallet, connstring, wait_secs } => (wallet, connstring, wait_secs, None),
    };
    let mut wallet = open_wallet(&wallet_dir).context("opening the wallet")?;
    let message = match offer {
        Some(ids) => {
            // The offer is persisted (items pending-out) before it leaves.
            let (_, step) = wallet.offer_transfer(&ids, OfferTerms::Gift, SystemClock.now() + 600)?;
            step.send.context("the engine made no offer")?
        }
        None => Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    let mut reader = NfcReader::open_when_ready(connstring.as_deref()).context("opening the NFC reader")?;
    if !reader.wait_for_card(Some(deadline), &mut || {}) {
        bail!("no phone presented within {wait_secs} s");
    }
    let tap = send_tap(&mut reader, &mut wallet, message)?;
    let (done, sent, received, declined) = match &tap.step {
        NfcTransferStep::Done(events) => {
            let mut sent = Vec::new();
            let mut received = Vec::new();
            let mut declined = None;
            let mut completed = false;
            for e in events {
                match e {
                    TransferEvent::Completed { sent: s, received: r, .. } => {
                        completed = true;
                        sent.extend(s.iter().map(|i| i.to_hex()));
                        received.extend(r.iter().map(|i| i.to_hex()));
                    }
                    TransferEvent::Declined { reason, .. } => declined = Some(reason.clone()),
                    _ => {}
                }
            }
            (completed, sent, received, declined)
        }
        _ => (false, Vec::new(), Vec::new(), None),
    };
    let v = serde_json::json!({
        "completed": done,
        "declined": declined,
        "awaiting_peer": tap.step == NfcTransferStep::AwaitingPeer,
        "sent": sent,
        "received": received,
        "round_trips": tap.round_trips,
        "bytes_on_air": tap.traffic.bytes_sent + tap.traffic.bytes_received,
    });
    writeln!(out, "{v}")?;
    Ok(())
}
