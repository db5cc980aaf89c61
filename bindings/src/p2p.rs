//! The p2p node: a libp2p swarm on the library's runtime that owns the
//! wallet while it runs and carries transfer messages to and from peers.
//!
//! ```text
//!  wallet.start_node(config) ──▶ P2pNode ── offer / accept / decline / dial / uri
//!        ▲                          │ next_event() (suspends until an event; null once stopped)
//!        └── wallet back ◀── stop() or the P2pNode dropped (closed)
//! ```
//! While the node runs, every `Wallet` call still works (it runs as a job
//! inside the node task), except the NFC card side (see [`crate::nfc`]).

use crate::error::P2pError;
use crate::runtime::{self, Unavailable};
use crate::transfer::{OfferSummary, OfferTerms, Role, hex_ids, parse_exchange_id, parse_items};
use crate::wallet::Wallet;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tessera_core::store::SqliteStore;
use tessera_p2p::libp2p_reexports::{Multiaddr, PeerId};
use tessera_p2p::{EventStream, NodeHandle, TesseraUri};

/// How to start a node.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeConfig {
    /// Multiaddresses to listen on (`/ip4/0.0.0.0/udp/0/quic-v1`).
    pub listen: Vec<String>,
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// A relay to reserve a slot at (its address ending in `/p2p/<id>`).
    pub relay: Option<String>,
    /// Idle connections close after this many seconds.
    pub idle_timeout_seconds: u64,
}

impl From<tessera_p2p::NodeConfig> for NodeConfig {
    fn from(c: tessera_p2p::NodeConfig) -> Self {
        Self {
            listen: c.listen.iter().map(ToString::to_string).collect(),
            mdns: c.mdns,
            relay: c.relay.map(|r| r.to_string()),
            idle_timeout_seconds: c.idle_timeout.as_secs(),
        }
    }
}

fn multiaddr(text: &str) -> Result<Multiaddr, P2pError> {
    text.parse().map_err(|e| P2pError::InvalidInput { error_message: format!("address {text:?}: {e}") })
}

impl TryFrom<NodeConfig> for tessera_p2p::NodeConfig {
    type Error = P2pError;
    fn try_from(c: NodeConfig) -> Result<Self, P2pError> {
        Ok(Self {
            listen: c.listen.iter().map(|a| multiaddr(a)).collect::<Result<_, _>>()?,
            mdns: c.mdns,
            relay: c.relay.as_deref().map(multiaddr).transpose()?,
            idle_timeout: Duration::from_secs(c.idle_timeout_seconds),
        })
    }
}

/// Loopback only (QUIC and TCP on 127.0.0.1), no mDNS: tests and demos.
#[uniffi::export]
pub fn loopback_node_config() -> NodeConfig {
    tessera_p2p::NodeConfig::loopback().into()
}

/// All interfaces (QUIC and TCP), mDNS on: a phone on a Wi-Fi network.
#[uniffi::export]
pub fn default_node_config() -> NodeConfig {
    let mut config = loopback_node_config();
    config.listen = vec!["/ip4/0.0.0.0/udp/0/quic-v1".into(), "/ip4/0.0.0.0/tcp/0".into()];
    config.mdns = true;
    config
}

/// What the app hears from the node.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum NodeEvent {
    /// The node listens on an address (direct or relayed).
    Listening { address: String },
    /// mDNS found a peer on the local network.
    Discovered { peer: String },
    /// A connection to a peer is up.
    Connected { peer: String, relayed: bool },
    /// A relay accepted the reservation: peers can reach this node through it.
    RelayReservation { relay: String },
    /// A verified offer waits for the user.
    OfferReceived { peer: String, offer: OfferSummary },
    /// The receiver accepted.
    Accepted { exchange: String, role: Role },
    /// The receiver declined.
    Declined { exchange: String, role: Role, reason: String },
    /// The exchange completed on this side.
    Completed { exchange: String, role: Role, received: Vec<String>, sent: Vec<String> },
    /// An offer expired unanswered.
    Expired { exchange: String, role: Role },
    /// Something went wrong with an exchange or a peer.
    Failed { peer: Option<String>, exchange: Option<String>, reason: String },
}

impl From<tessera_p2p::NodeEvent> for NodeEvent {
    fn from(event: tessera_p2p::NodeEvent) -> Self {
        use tessera_p2p::NodeEvent as E;
        match event {
            E::Listening(a) => Self::Listening { address: a.to_string() },
            E::Discovered(p) => Self::Discovered { peer: p.to_string() },
            E::Connected { peer, relayed } => Self::Connected { peer: peer.to_string(), relayed },
            E::RelayReservation(r) => Self::RelayReservation { relay: r.to_string() },
            E::OfferReceived { peer, offer } => Self::OfferReceived { peer: peer.to_string(), offer: offer.into() },
            E::Accepted { exchange, role } => Self::Accepted { exchange: exchange.to_hex(), role: role.into() },
            E::Declined { exchange, role, reason } => {
                Self::Declined { exchange: exchange.to_hex(), role: role.into(), reason }
            }
            E::Completed { exchange, role, received, sent } => Self::Completed {
                exchange: exchange.to_hex(),
                role: role.into(),
                received: hex_ids(received),
                sent: hex_ids(sent),
            },
            E::Expired { exchange, role } => Self::Expired { exchange: exchange.to_hex(), role: role.into() },
            E::Failed { peer, exchange, reason } => {
                Self::Failed { peer: peer.map(|p| p.to_string()), exchange: exchange.map(|e| e.to_hex()), reason }
            }
        }
    }
}

/// A running node. `stop()` gives the wallet back; so does dropping it
/// (Kotlin `close()`, Swift deinit).
#[derive(uniffi::Object)]
pub struct P2pNode {
    wallet: Arc<Wallet>,
    node: NodeHandle<SqliteStore>,
    events: tokio::sync::Mutex<EventStream>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for P2pNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pNode").field("node", &self.node).finish_non_exhaustive()
    }
}

fn peer_id(text: &str) -> Result<PeerId, P2pError> {
    PeerId::from_str(text).map_err(|e| P2pError::InvalidInput { error_message: format!("peer id {text:?}: {e}") })
}

#[uniffi::export]
impl Wallet {
    /// Starts a p2p node that owns this wallet until it stops. Fails with
    /// `AlreadyRunning` when a node already has it.
    pub async fn start_node(self: Arc<Self>, config: NodeConfig) -> Result<Arc<P2pNode>, P2pError> {
        let config = tessera_p2p::NodeConfig::try_from(config)?;
        runtime::spawn(async move {
            let wallet = self.take_for_node().ok_or_else(|| P2pError::AlreadyRunning {
                error_message: "a p2p node already holds this wallet (or one is starting or stopping)".into(),
            })?;
            match tessera_p2p::spawn(wallet, config).await {
                Ok((node, events)) => {
                    self.set_node(node.clone());
                    Ok(Arc::new(P2pNode {
                        wallet: self,
                        node,
                        events: tokio::sync::Mutex::new(events),
                        stopped: AtomicBool::new(false),
                    }))
                }
                Err(e) => {
                    // The failed start dropped the core wallet: open the file again.
                    self.reopen()?;
                    Err(e.into())
                }
            }
        })
        .await
    }
}

#[uniffi::export]
impl P2pNode {
    /// This node's peer id.
    pub fn peer_id(&self) -> String {
        self.node.peer_id().to_string()
    }

    /// This node's `tessera:` URI (peer id and addresses), for a QR code.
    pub async fn uri(&self) -> Result<String, P2pError> {
        let node = self.node.clone();
        runtime::spawn(async move { Ok::<_, P2pError>(node.uri().await?.to_string()) }).await
    }

    /// Learns a peer's addresses from its URI and connects.
    pub async fn dial(&self, uri: String) -> Result<(), P2pError> {
        let uri = TesseraUri::from_str(&uri)
            .map_err(|e| P2pError::InvalidInput { error_message: format!("uri {uri:?}: {e}") })?;
        let node = self.node.clone();
        runtime::spawn(async move { Ok::<_, P2pError>(node.dial(uri).await?) }).await
    }

    /// Offers `items` to `peer` (dial it first, or let mDNS find it); the
    /// exchange id. Progress comes as events.
    pub async fn offer(
        &self,
        peer: String,
        items: Vec<String>,
        terms: OfferTerms,
        ttl_seconds: u64,
    ) -> Result<String, P2pError> {
        let peer = peer_id(&peer)?;
        let items = parse_items(&items)?;
        let node = self.node.clone();
        runtime::spawn(async move { Ok::<_, P2pError>(node.offer(peer, items, terms.into(), ttl_seconds).await?) })
            .await
            .map(|e| e.to_hex())
    }

    /// The user said yes to an offer received.
    pub async fn accept(&self, exchange: String) -> Result<(), P2pError> {
        let exchange = parse_exchange_id(&exchange)?;
        let node = self.node.clone();
        runtime::spawn(async move { Ok::<_, P2pError>(node.accept(exchange).await?) }).await
    }

    /// The user said no.
    pub async fn decline(&self, exchange: String, reason: String) -> Result<(), P2pError> {
        let exchange = parse_exchange_id(&exchange)?;
        let node = self.node.clone();
        runtime::spawn(async move { Ok::<_, P2pError>(node.decline(exchange, &reason).await?) }).await
    }

    /// The next event; `None` once the node has stopped.
    pub async fn next_event(&self) -> Option<NodeEvent> {
        // tokio's channels need no runtime to be polled: await them directly
        // on the foreign executor.
        self.events.lock().await.next_event().await.map(Into::into)
    }

    /// Stops the node and gives the wallet back to its `Wallet` object.
    pub async fn stop(&self) -> Result<(), P2pError> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let node = self.node.clone();
        let wallet = self.wallet.clone();
        runtime::spawn(stop(node, wallet)).await
    }
}

async fn stop(node: NodeHandle<SqliteStore>, wallet: Arc<Wallet>) -> Result<(), P2pError> {
    // Calls made meanwhile fail as Unavailable instead of reaching a node
    // that is going away.
    wallet.mark_moving();
    match node.stop().await {
        Ok(core) => {
            wallet.put_back(core);
            Ok(())
        }
        Err(e) => {
            // The node task ended on its own and took the wallet with it.
            wallet.reopen()?;
            Err(e.into())
        }
    }
}

impl Drop for P2pNode {
    fn drop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let node = self.node.clone();
        let wallet = self.wallet.clone();
        match runtime::runtime() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = stop(node, wallet).await {
                        tracing::warn!(error = %e, "stopping a dropped p2p node failed");
                    }
                });
            }
            Err(Unavailable(e)) => tracing::warn!(error = %e, "cannot stop a dropped p2p node"),
        }
    }
}
