//! Wallet to wallet over libp2p: `tessera listen`, `tessera offer`,
//! `tessera pending`, `tessera relay`, and the loopback transfers the demo
//! runs.

use crate::wallet_cmd::{Location, format_time};
use anyhow::{Context as _, Result, anyhow, bail};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tessera_core::store::{SqliteStore, WalletStore};
use tessera_core::transfer::{OfferSummary, OfferTerms, Role};
use tessera_core::{Amount, InstrumentId, Wallet};
use tessera_p2p::libp2p_reexports::{Keypair, Multiaddr, PeerId};
use tessera_p2p::{NodeConfig, NodeEvent, NodeHandle, TesseraUri};

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
    /// Be reachable only through the relay: no direct listening addresses.
    #[arg(long, requires = "relay")]
    relay_only: bool,
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
        let listen = if self.relay_only { Vec::new() } else { listen };
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

/// How long a command waits, before exiting, for its last messages to be
/// acknowledged.
const SETTLE: Duration = Duration::from_secs(10);

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

/// An offer as a person reads it before answering.
fn print_offer(offer: &OfferSummary) {
    println!();
    println!("offer {} from wallet {}", offer.offer_id, offer.sender.short());
    for item in &offer.items {
        let hops = match item.hops {
            0 => "straight from its issuer".to_string(),
            1 => "passed on once before".to_string(),
            n => format!("passed on {n} times before"),
        };
        println!("  {:<6} {}  [{}] ({hops}; the verifier passed it)", item.kind.as_str(), item.label, item.id.short());
    }
    match &offer.price {
        Some(price) => println!("  price  {price}, paid from your notes; any change comes back in the same exchange"),
        None => println!("  price  none: a gift"),
    }
    println!("  answer before {} UTC", format_time(offer.expires_at));
}

trait ShortId {
    fn short(&self) -> String;
}
impl ShortId for InstrumentId {
    fn short(&self) -> String {
        self.to_hex()[..8].to_string()
    }
}

/// One line per instrument: what it is, from the wallet's records.
async fn labels(node: &NodeHandle<SqliteStore>, ids: Vec<InstrumentId>) -> Result<Vec<String>> {
    Ok(node
        .with_wallet(move |w| {
            ids.iter()
                .map(|id| match w.instrument(id) {
                    Ok(r) => format!("{} [{}]", r.instrument.attributes().label(), id.short()),
                    Err(_) => format!("[{}]", id.short()),
                })
                .collect()
        })
        .await?)
}

/// Available money per currency, on one line.
async fn balance_line(node: &NodeHandle<SqliteStore>) -> Result<String> {
    let balances = node.with_wallet(|w| w.balance()).await??;
    let parts: Vec<String> = balances.iter().map(|b| Amount::new(&b.currency, b.available).to_string()).collect();
    Ok(if parts.is_empty() { "no money".into() } else { parts.join(", ") })
}

fn print_lines(title: &str, lines: &[String]) {
    for line in lines {
        println!("  {title:<8} {line}");
    }
}

/// Waits until the node can be reached, through the relay when one is set
/// (a reservation is a round trip to the relay).
async fn wait_until_reachable(node: &NodeHandle<SqliteStore>, through_relay: bool) -> Result<TesseraUri> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let uri = tessera_p2p::loopback::wait_for_uri(node).await?;
        if !through_relay || uri.addresses.iter().any(|a| a.to_string().contains("/p2p-circuit")) {
            return Ok(uri);
        }
        if std::time::Instant::now() > deadline {
            bail!("the relay gave no reservation within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Accept every verified offer without asking (for scripts and demos).
    #[arg(long, alias = "accept-all")]
    yes: bool,
    /// Exit after this many completed exchanges.
    #[arg(long)]
    count: Option<usize>,
}

/// Receives offers, asks at the prompt, shows progress.
pub fn listen(location: &Location, args: ListenArgs) -> Result<()> {
    let wallet = location.open()?;
    let config = args.net.config()?;
    let through_relay = config.relay.is_some();
    let key = identity(args.net.identity.as_ref())?;
    runtime()?.block_on(async move {
        let (node, mut events) = tessera_p2p::spawn_with_identity(wallet, config, key).await?;
        let uri = wait_until_reachable(&node, through_relay).await?;
        println!("listening as {uri}");
        println!("(give this URI to the sender: `tessera offer <instrument> --to <URI>`; Ctrl-C stops)");
        let mut done = 0usize;
        while let Some(event) = events.next_event().await {
            match event {
                NodeEvent::OfferReceived { offer, .. } => {
                    print_offer(&offer);
                    let yes = if args.yes {
                        println!("accepting (--yes)");
                        true
                    } else {
                        ask("accept? [y/N] ").await?
                    };
                    if !yes {
                        node.decline(offer.offer_id, "declined by the user").await?;
                        println!("declined: nothing moved");
                        continue;
                    }
                    match node.accept(offer.offer_id).await {
                        Ok(()) => match &offer.price {
                            Some(price) => println!(
                                "accepted: notes for {price} endorsed to the seller; waiting for the transfer certificate…"
                            ),
                            None => println!("accepted: waiting for the transfer certificate…"),
                        },
                        Err(e) => {
                            println!("cannot accept: {e}; declining");
                            node.decline(offer.offer_id, &e.to_string()).await?;
                        }
                    }
                }
                NodeEvent::Completed { exchange, received, sent, .. } => {
                    println!("done: exchange {exchange} complete, receipt sent");
                    print_lines("received", &labels(&node, received).await?);
                    print_lines("paid", &labels(&node, sent).await?);
                    println!("  balance  {}", balance_line(&node).await?);
                    done += 1;
                    if args.count.is_some_and(|c| done >= c) {
                        break;
                    }
                }
                NodeEvent::Declined { exchange, .. } => println!("exchange {exchange}: the decline went out"),
                NodeEvent::Expired { exchange, .. } => println!("exchange {exchange} expired unanswered: nothing moved"),
                NodeEvent::Failed { reason, .. } => println!("problem: {reason}"),
                NodeEvent::Discovered(peer) => println!("found {peer} on the local network"),
                NodeEvent::RelayReservation(relay) => println!("reachable through relay {relay}"),
                NodeEvent::Connected { peer, relayed } => {
                    println!("connected to {peer}{}", if relayed { " through a relay" } else { "" })
                }
                _ => {}
            }
        }
        if !node.settle(SETTLE).await? {
            println!("(stopping with messages unacknowledged; `tessera pending` shows what is open)");
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
        let what = labels(&node, items.clone()).await?;
        let terms_text = match &terms {
            OfferTerms::Sale(price) => format!("for {price}"),
            OfferTerms::Gift => "as a gift".to_string(),
        };
        let exchange = node.offer(peer, items, terms, args.ttl).await?;
        println!("offer {exchange} sent {terms_text}:");
        print_lines("offered", &what);
        println!("waiting for the receiver to answer (up to {} s); the items are locked meanwhile", args.ttl);
        let outcome = tokio::time::timeout(Duration::from_secs(args.ttl + 30), async {
            while let Some(event) = events.next_event().await {
                match event {
                    NodeEvent::Connected { peer: p, relayed } if p == peer => {
                        println!("connected to {peer}{}", if relayed { " through a relay" } else { " directly" })
                    }
                    NodeEvent::Accepted { exchange: e, .. } if e == exchange => {
                        println!("accepted: transfer certificate sent, waiting for the receipt…")
                    }
                    NodeEvent::Completed { exchange: e, role: Role::Sender, received, sent } if e == exchange => {
                        println!("done: receipt in, exchange {exchange} complete");
                        print_lines("gave", &labels(&node, sent).await?);
                        print_lines("received", &labels(&node, received).await?);
                        println!("  balance  {}", balance_line(&node).await?);
                        return Ok(());
                    }
                    NodeEvent::Declined { exchange: e, reason, .. } if e == exchange => {
                        bail!("declined ({reason}): nothing moved, the items are yours again")
                    }
                    NodeEvent::Expired { exchange: e, .. } if e == exchange => {
                        bail!("the offer expired unanswered: nothing moved, the items are yours again")
                    }
                    NodeEvent::Failed { exchange: Some(e), reason, .. }
                        if e == exchange && reason.starts_with("refused by peer") =>
                    {
                        bail!(
                            "{reason}; the items stay locked until the offer expires in {} s (`tessera pending`)",
                            args.ttl
                        )
                    }
                    NodeEvent::Failed { reason, .. } => println!("problem: {reason}"),
                    _ => {}
                }
            }
            bail!("the node stopped")
        })
        .await;
        if !node.settle(SETTLE).await? {
            println!("(stopping with messages unacknowledged; `tessera pending` shows what is open)");
        }
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
