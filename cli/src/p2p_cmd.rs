//! Wallet to wallet over libp2p: `tessera listen`, `tessera offer`,
//! `tessera pending`, `tessera relay`, and the loopback transfers the demo
//! runs.

use crate::wallet_cmd::Location;
use anyhow::{Context as _, Result, anyhow, bail};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tessera_core::store::{SqliteStore, WalletStore};
use tessera_core::transfer::{OfferSummary, OfferTerms, Role};
use tessera_core::{Amount, InstrumentId, Wallet};
use tessera_p2p::libp2p_reexports::{Keypair, Multiaddr, PeerId};
use tessera_p2p::{NodeConfig, NodeEvent, TesseraUri};

/// Options shared by the commands that start a node.
#[derive(Debug, clap::Args)]
pub struct NetArgs {
    /// Addresses to listen on.
    #[arg(long = "listen", default_values_t = ["/ip4/0.0.0.0/udp/0/quic-v1".to_string(), "/ip4/0.0.0.0/tcp/0".to_string()])]
    listen: Vec<String>,
    /// Do not look for peers on the local network.
    #[arg(long)]
    no_mdns: bool,
    /// A relay to be reachable through (its address ending in `/p2p/<relay id>`).
    #[arg(long)]
    relay: Option<String>,
    /// A file keeping this node's network identity (not a wallet key), so its URI stays the same.
    #[arg(long, env = "TESSERA_P2P_IDENTITY")]
    identity: Option<PathBuf>,
}

impl NetArgs {
    fn config(&self) -> Result<NodeConfig> {
        let listen =
            self.listen.iter().map(|a| a.parse().with_context(|| format!("bad address {a}"))).collect::<Result<_>>()?;
        let relay =
            self.relay.as_deref().map(|r| r.parse().with_context(|| format!("bad relay address {r}"))).transpose()?;
        Ok(NodeConfig { listen, mdns: !self.no_mdns, relay, idle_timeout: tessera_p2p::node::IDLE_TIMEOUT })
    }
}

fn identity(path: Option<&PathBuf>) -> Result<Keypair> {
    let Some(path) = path else { return Ok(Keypair::generate_ed25519()) };
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes).map_err(|e| anyhow!("bad identity file: {e}"));
    }
    let key = Keypair::generate_ed25519();
    std::fs::write(path, key.to_protobuf_encoding().map_err(|e| anyhow!("{e}"))?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn describe(offer: &OfferSummary) -> String {
    let items: Vec<String> = offer.items.iter().map(|i| format!("{} [{}]", i.label, i.id.short())).collect();
    let terms = match &offer.price {
        Some(p) => format!("for {p}"),
        None => "as a gift".into(),
    };
    format!("offer {} from {}: {} {terms}", offer.offer_id, offer.sender.short(), items.join(", "))
}

trait ShortId {
    fn short(&self) -> String;
}
impl ShortId for InstrumentId {
    fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }
}

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Accept every verified offer without asking (for scripts and demos).
    #[arg(long)]
    yes: bool,
    /// Exit after this many completed exchanges.
    #[arg(long)]
    count: Option<usize>,
}

/// Receives offers, asks at the prompt, shows progress.
pub fn listen(location: &Location, args: ListenArgs) -> Result<()> {
    let wallet = location.open()?;
    let config = args.net.config()?;
    let key = identity(args.net.identity.as_ref())?;
    runtime()?.block_on(async move {
        let (node, mut events) = tessera_p2p::spawn_with_identity(wallet, config, key).await?;
        let uri = tessera_p2p::loopback::wait_for_uri(&node).await?;
        println!("listening as {uri}");
        let mut done = 0usize;
        while let Some(event) = events.next_event().await {
            match event {
                NodeEvent::OfferReceived { offer, .. } => {
                    println!("{}", describe(&offer));
                    let yes = args.yes || ask("accept? [y/N] ").await?;
                    if yes {
                        node.accept(offer.offer_id).await?;
                        println!("accepted; waiting for the transfer certificate");
                    } else {
                        node.decline(offer.offer_id, "declined by the user").await?;
                        println!("declined");
                    }
                }
                NodeEvent::Completed { exchange, role, received, sent } => {
                    println!("exchange {exchange} complete ({role:?}): {} in, {} out", received.len(), sent.len());
                    done += 1;
                    if args.count.is_some_and(|c| done >= c) {
                        break;
                    }
                }
                NodeEvent::Declined { exchange, reason, .. } => println!("exchange {exchange} declined: {reason}"),
                NodeEvent::Expired { exchange, .. } => println!("exchange {exchange} expired"),
                NodeEvent::Failed { reason, .. } => println!("problem: {reason}"),
                NodeEvent::Discovered(peer) => println!("found {peer} on the local network"),
                NodeEvent::RelayReservation(relay) => println!("reachable through relay {relay}"),
                _ => {}
            }
        }
        node.stop().await?;
        Ok(())
    })
}

async fn ask(prompt: &str) -> Result<bool> {
    let prompt = prompt.to_owned();
    tokio::task::spawn_blocking(move || {
        print!("{prompt}");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(matches!(line.trim(), "y" | "Y" | "yes"))
    })
    .await?
}

#[derive(Debug, clap::Args)]
pub struct OfferArgs {
    /// Instrument ids (hex) to offer.
    #[arg(required = true)]
    instruments: Vec<String>,
    /// The receiver: a tessera: URI, or a peer id found by mDNS.
    #[arg(long)]
    to: String,
    /// Ask this price, e.g. `15.00 EUR` (a gift when absent).
    #[arg(long)]
    price: Option<String>,
    /// Seconds the receiver has to answer.
    #[arg(long, default_value_t = 300)]
    ttl: u64,
    #[command(flatten)]
    net: NetArgs,
}

/// Parses `15.00 EUR`, `15 EUR` or `1500 cents EUR`-free forms into minor units.
pub fn parse_price(s: &str) -> Result<Amount> {
    let (value, currency) = s.trim().split_once(' ').ok_or_else(|| anyhow!("a price is like `15.00 EUR`"))?;
    let currency = currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        bail!("currency must be 3 letters");
    }
    let (whole, cents) = value.split_once('.').unwrap_or((value, "0"));
    if cents.len() > 2 {
        bail!("at most 2 decimals");
    }
    let whole: u64 = whole.parse().context("bad amount")?;
    let cents: u64 = format!("{cents:0<2}").parse().context("bad amount")?;
    let minor = whole.checked_mul(100).and_then(|w| w.checked_add(cents)).ok_or_else(|| anyhow!("amount too large"))?;
    if minor == 0 {
        bail!("a price must be positive");
    }
    Ok(Amount::new(&currency, minor))
}

/// Offers instruments to a peer and follows the exchange to its end.
pub fn offer(location: &Location, args: OfferArgs) -> Result<()> {
    let wallet = location.open()?;
    let items = args
        .instruments
        .iter()
        .map(|i| i.parse::<InstrumentId>().map_err(|e| anyhow!("{e}")))
        .collect::<Result<Vec<_>>>()?;
    let terms = match &args.price {
        Some(p) => OfferTerms::Sale(parse_price(p)?),
        None => OfferTerms::Gift,
    };
    let (peer, uri) = if args.to.starts_with("tessera:") {
        let uri: TesseraUri = args.to.parse()?;
        (uri.peer, Some(uri))
    } else {
        (args.to.parse::<PeerId>().map_err(|e| anyhow!("--to is neither a tessera: URI nor a peer id: {e}"))?, None)
    };
    let config = args.net.config()?;
    let key = identity(args.net.identity.as_ref())?;
    runtime()?.block_on(async move {
        let (node, mut events) = tessera_p2p::spawn_with_identity(wallet, config, key).await?;
        match uri {
            Some(uri) => node.dial(uri).await?,
            None => {
                println!("looking for {peer} on the local network…");
                tokio::time::timeout(Duration::from_secs(15), async {
                    while let Some(e) = events.next_event().await {
                        if e == NodeEvent::Discovered(peer) {
                            return;
                        }
                    }
                })
                .await
                .map_err(|_| anyhow!("{peer} was not found by mDNS; pass its tessera: URI"))?;
            }
        }
        let exchange = node.offer(peer, items, terms, args.ttl).await?;
        println!("offer {exchange} sent; waiting for the answer");
        let outcome = tokio::time::timeout(Duration::from_secs(args.ttl + 30), async {
            while let Some(event) = events.next_event().await {
                match event {
                    NodeEvent::Accepted { exchange: e, .. } if e == exchange => println!("accepted; certificate sent"),
                    NodeEvent::Completed { exchange: e, role: Role::Sender, received, .. } if e == exchange => {
                        println!("receipt in: transfer complete ({} payment notes received)", received.len());
                        return Ok(());
                    }
                    NodeEvent::Declined { exchange: e, reason, .. } if e == exchange => bail!("declined: {reason}"),
                    NodeEvent::Expired { exchange: e, .. } if e == exchange => bail!("the offer expired"),
                    NodeEvent::Failed { reason, .. } => println!("problem: {reason}"),
                    _ => {}
                }
            }
            bail!("the node stopped")
        })
        .await;
        node.stop().await?;
        match outcome {
            Ok(r) => r,
            Err(_) => bail!("no receipt yet: the instruments stay pending-out; `tessera pending` shows them"),
        }
    })
}

/// Lists exchanges in progress (and the last finished ones).
pub fn pending(location: &Location) -> Result<()> {
    let wallet = location.open()?;
    print_pending(&wallet)
}

fn print_pending<S: WalletStore>(wallet: &Wallet<S>) -> Result<()> {
    let transfers = wallet.transfers()?;
    if transfers.is_empty() {
        println!("no exchanges");
    }
    for t in transfers {
        let mark = if t.is_final { " " } else { "*" };
        println!("{mark} {} {:?} {:<10} {}", t.exchange, t.role, t.state, describe(&t.offer));
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Addresses to listen on.
    #[arg(long = "listen", default_values_t = ["/ip4/0.0.0.0/tcp/4001".to_string(), "/ip4/0.0.0.0/udp/4001/quic-v1".to_string()])]
    listen: Vec<String>,
    /// Public addresses to advertise (defaults to the listen addresses).
    #[arg(long)]
    external: Vec<String>,
    /// A file keeping the relay's identity, so its address stays the same.
    #[arg(long)]
    identity: Option<PathBuf>,
}

/// Runs a relay until interrupted.
pub fn relay(args: RelayArgs) -> Result<()> {
    let parse = |v: &[String]| {
        v.iter().map(|a| a.parse::<Multiaddr>().with_context(|| format!("bad address {a}"))).collect::<Result<Vec<_>>>()
    };
    let (listen, external) = (parse(&args.listen)?, parse(&args.external)?);
    let key = identity(args.identity.as_ref())?;
    runtime()?.block_on(async move {
        let relay = tessera_p2p::relay::run_relay(key, listen, external).await?;
        for a in &relay.addresses {
            println!("relay at {a}");
        }
        tokio::signal::ctrl_c().await?;
        println!("{} reservations, {} circuits", relay.reservations(), relay.circuits());
        relay.stop();
        Ok(())
    })
}

/// For `tessera demo`: moves `items` from `sender` to `receiver` on
/// `terms` over a real libp2p swarm on 127.0.0.1 (the receiver accepts
/// once the verifier passed the offer) and gives both wallets back, with
/// the offer → receipt time.
pub fn move_over_loopback(
    sender: Wallet<SqliteStore>,
    receiver: Wallet<SqliteStore>,
    items: Vec<InstrumentId>,
    terms: OfferTerms,
) -> Result<(Wallet<SqliteStore>, Wallet<SqliteStore>, Duration)> {
    let out = runtime()?.block_on(tessera_p2p::loopback::transfer_over_loopback(
        sender,
        receiver,
        items,
        terms,
        Duration::from_secs(60),
    ))?;
    Ok((out.sender, out.receiver, out.elapsed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prices_parse() {
        assert_eq!(parse_price("15.00 EUR").unwrap(), Amount::new("EUR", 1500));
        assert_eq!(parse_price("15 eur").unwrap(), Amount::new("EUR", 1500));
        assert_eq!(parse_price("0.5 EUR").unwrap(), Amount::new("EUR", 50));
        assert!(parse_price("15.001 EUR").is_err());
        assert!(parse_price("0 EUR").is_err());
        assert!(parse_price("15 EURO").is_err());
        assert!(parse_price("15").is_err());
    }
}
