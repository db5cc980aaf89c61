//! A wallet node: one libp2p swarm on tokio, owning one wallet, carrying
//! the transfer engine's messages to and from peers.
//!
//! ```text
//!  app ──NodeHandle (commands)──▶ node task ──▶ Wallet (engine, store)
//!  app ◀──EventStream (events)──  node task ◀─▶ swarm: QUIC | TCP+noise+yamux | relay circuit
//!                                              request-response /tessera/transfer/1, mDNS,
//!                                              identify, DCUtR, ping
//! ```
//! Every message the engine returns is sent as a request; the response is
//! only an acknowledgement. A request that fails in transport is retried on
//! a timer; the engine makes retries harmless. A refusal by the peer's
//! engine is reported as [`NodeEvent::Failed`] with its reason.

use crate::codec::{PROTOCOL, TransferCodec};
use crate::uri::TesseraUri;
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle};
use libp2p::{
    Multiaddr, PeerId, Swarm, dcutr, identify, identity::Keypair, mdns, multiaddr::Protocol, noise, ping, relay,
    request_response, tcp, yamux,
};
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tessera_core::Wire;
use tessera_core::store::WalletStore;
use tessera_core::transfer::{OfferSummary, OfferTerms, Role, Step, TransferEvent, TransferMessage};
use tessera_core::{ExchangeId, InstrumentId, Wallet};
use tokio::sync::{mpsc, oneshot};

/// How long an idle connection stays open: long enough for a person to
/// read an offer and decide.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one request may take on the wire (answers are separate requests).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often expiries and failed sends are retried.
pub const TICK: Duration = Duration::from_secs(1);
/// Attempts per message before giving up until the next restart.
const MAX_ATTEMPTS: u32 = 30;

/// A failure of the node.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// Building the swarm or listening failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The node task has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The engine refused.
    #[error(transparent)]
    Transfer(#[from] tessera_core::transfer::TransferError),
    /// A peer could not be found.
    #[error("no address known for peer {0}")]
    NoAddress(PeerId),
}

/// What the app hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// The node listens on an address (direct or relayed).
    Listening(Multiaddr),
    /// mDNS found a peer on the local network.
    Discovered(PeerId),
    /// A connection to a peer is up.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Whether it runs through a relay.
        relayed: bool,
    },
    /// A relay accepted our reservation: peers can reach us through it.
    RelayReservation(PeerId),
    /// A verified offer waits for the user.
    OfferReceived {
        /// From whom.
        peer: PeerId,
        /// What it offers, as the verifier passed it.
        offer: OfferSummary,
    },
    /// The receiver accepted.
    Accepted {
        /// The exchange.
        exchange: ExchangeId,
        /// Our side.
        role: Role,
    },
    /// The receiver declined.
    Declined {
        /// The exchange.
        exchange: ExchangeId,
        /// Our side.
        role: Role,
        /// Why.
        reason: String,
    },
    /// The exchange completed on our side.
    Completed {
        /// The exchange.
        exchange: ExchangeId,
        /// Our side.
        role: Role,
        /// What came in.
        received: Vec<InstrumentId>,
        /// What went out.
        sent: Vec<InstrumentId>,
    },
    /// An offer expired unanswered.
    Expired {
        /// The exchange.
        exchange: ExchangeId,
        /// Our side.
        role: Role,
    },
    /// Something went wrong with an exchange or a peer.
    Failed {
        /// The peer, if known.
        peer: Option<PeerId>,
        /// The exchange, if known.
        exchange: Option<ExchangeId>,
        /// Why.
        reason: String,
    },
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Addresses to listen on (e.g. `/ip4/0.0.0.0/udp/0/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Whether to find peers on the local network with mDNS.
    pub mdns: bool,
    /// A relay to reserve a slot at (its address ending in `/p2p/<relay id>`).
    pub relay: Option<Multiaddr>,
    /// Idle connection timeout.
    pub idle_timeout: Duration,
}

impl NodeConfig {
    /// Loopback only, QUIC and TCP, no mDNS: for tests and the demo.
    pub fn loopback() -> Self {
        Self {
            listen: vec![
                "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap_or_else(|_| Multiaddr::empty()),
                "/ip4/127.0.0.1/tcp/0".parse().unwrap_or_else(|_| Multiaddr::empty()),
            ],
            mdns: false,
            relay: None,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

#[derive(NetworkBehaviour)]
struct WalletBehaviour {
    transfer: request_response::Behaviour<TransferCodec>,
    relay: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

type Job<S> = Box<dyn FnOnce(&mut Wallet<S>) + Send>;

enum Command<S: WalletStore> {
    Offer {
        peer: PeerId,
        items: Vec<InstrumentId>,
        terms: OfferTerms,
        ttl: u64,
        reply: oneshot::Sender<Result<ExchangeId, P2pError>>,
    },
    Accept(ExchangeId, oneshot::Sender<Result<(), P2pError>>),
    Decline(ExchangeId, String, oneshot::Sender<Result<(), P2pError>>),
    Dial(TesseraUri, oneshot::Sender<Result<(), P2pError>>),
    Addresses(oneshot::Sender<Vec<Multiaddr>>),
    Settled(oneshot::Sender<bool>),
    Wallet(Job<S>),
    Stop(oneshot::Sender<Wallet<S>>),
}

/// Controls a running node. Dropping every handle stops it.
pub struct NodeHandle<S: WalletStore> {
    peer_id: PeerId,
    commands: mpsc::UnboundedSender<Command<S>>,
}

impl<S: WalletStore> std::fmt::Debug for NodeHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle").field("peer_id", &self.peer_id).finish()
    }
}

impl<S: WalletStore> Clone for NodeHandle<S> {
    fn clone(&self) -> Self {
        Self { peer_id: self.peer_id, commands: self.commands.clone() }
    }
}

/// The node's events, as a stream.
#[derive(Debug)]
pub struct EventStream(mpsc::UnboundedReceiver<NodeEvent>);

impl EventStream {
    /// The next event, or `None` once the node stopped.
    pub async fn next_event(&mut self) -> Option<NodeEvent> {
        self.0.recv().await
    }
}

impl futures::Stream for EventStream {
    type Item = NodeEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NodeEvent>> {
        self.0.poll_recv(cx)
    }
}

impl<S: WalletStore + 'static> NodeHandle<S> {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command<S>) -> Result<T, P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// Offers `items` to `peer` (dial it first, or let mDNS find it).
    pub async fn offer(
        &self,
        peer: PeerId,
        items: Vec<InstrumentId>,
        terms: OfferTerms,
        ttl_seconds: u64,
    ) -> Result<ExchangeId, P2pError> {
        self.ask(|reply| Command::Offer { peer, items, terms, ttl: ttl_seconds, reply }).await?
    }

    /// The user said yes to an offer.
    pub async fn accept(&self, exchange: ExchangeId) -> Result<(), P2pError> {
        self.ask(|reply| Command::Accept(exchange, reply)).await?
    }

    /// The user said no.
    pub async fn decline(&self, exchange: ExchangeId, reason: &str) -> Result<(), P2pError> {
        let reason = reason.to_owned();
        self.ask(|reply| Command::Decline(exchange, reason, reply)).await?
    }

    /// Learns a peer's addresses from its URI and connects.
    pub async fn dial(&self, uri: TesseraUri) -> Result<(), P2pError> {
        self.ask(|reply| Command::Dial(uri, reply)).await?
    }

    /// Where this node can be reached now (listeners and relayed addresses).
    pub async fn addresses(&self) -> Result<Vec<Multiaddr>, P2pError> {
        self.ask(Command::Addresses).await
    }

    /// This node's `tessera:` URI.
    pub async fn uri(&self) -> Result<TesseraUri, P2pError> {
        Ok(TesseraUri::new(self.peer_id, self.addresses().await?))
    }

    /// Runs `f` on the wallet inside the node task (listing, balance, …).
    pub async fn with_wallet<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Wallet<S>) -> R + Send + 'static,
    ) -> Result<R, P2pError> {
        let (tx, rx) = oneshot::channel();
        let job: Job<S> = Box::new(move |w| {
            let _ = tx.send(f(w));
        });
        self.commands.send(Command::Wallet(job)).map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// Whether nothing is on its way: every message sent was acknowledged
    /// (or given up), none waits for a retry, every request received was
    /// answered.
    pub async fn is_settled(&self) -> Result<bool, P2pError> {
        self.ask(Command::Settled).await
    }

    /// Waits until [`NodeHandle::is_settled`] or `timeout`; whether it
    /// settled. Call it before [`NodeHandle::stop`] so that the last message
    /// of an exchange (a receipt, the acknowledgement of one) is not cut off.
    pub async fn settle(&self, timeout: Duration) -> Result<bool, P2pError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_settled().await? {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the node and gives the wallet back.
    pub async fn stop(self) -> Result<Wallet<S>, P2pError> {
        self.ask(Command::Stop).await
    }
}

fn transport(e: impl std::fmt::Display) -> P2pError {
    P2pError::Transport(e.to_string())
}

/// Starts a node owning `wallet`, with a fresh network identity.
pub async fn spawn<S: WalletStore + 'static>(
    wallet: Wallet<S>,
    config: NodeConfig,
) -> Result<(NodeHandle<S>, EventStream), P2pError> {
    spawn_with_identity(wallet, config, Keypair::generate_ed25519()).await
}

/// Starts a node owning `wallet`, with the network identity `keypair`.
pub async fn spawn_with_identity<S: WalletStore + 'static>(
    wallet: Wallet<S>,
    config: NodeConfig,
    keypair: Keypair,
) -> Result<(NodeHandle<S>, EventStream), P2pError> {
    let mdns_on = config.mdns;
    let idle = config.idle_timeout;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .map_err(transport)?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(transport)?
        .with_behaviour(|key, relay| {
            let peer_id = key.public().to_peer_id();
            let transfer = request_response::Behaviour::new(
                [(PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
            );
            let mdns =
                if mdns_on { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
            Ok(WalletBehaviour {
                transfer,
                relay,
                dcutr: dcutr::Behaviour::new(peer_id),
                identify: identify::Behaviour::new(identify::Config::new("/tessera/1".into(), key.public())),
                ping: ping::Behaviour::default(),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(transport)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    for addr in &config.listen {
        swarm.listen_on(addr.clone()).map_err(transport)?;
    }
    if let Some(relay) = &config.relay {
        // The relay client dials the relay itself for the reservation; a
        // dial of our own in flight would make its dial condition fail.
        swarm.listen_on(relay.clone().with(Protocol::P2pCircuit)).map_err(transport)?;
    }
    let peer_id = *swarm.local_peer_id();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::unbounded_channel();
    // After a restart: what each exchange in progress must send again, to
    // the peer remembered for it, as soon as that peer is connected.
    let mut parked: HashMap<PeerId, Vec<Outgoing>> = HashMap::new();
    let mut exchange_peers = HashMap::new();
    for r in wallet.resume_transfers()? {
        let Some(peer) = wallet.transfer_peer(&r.exchange)?.and_then(|b| PeerId::from_bytes(&b).ok()) else {
            continue;
        };
        exchange_peers.insert(r.exchange, peer);
        parked.entry(peer).or_default().push(Outgoing {
            peer,
            exchange: Some(r.exchange),
            bytes: r.bytes,
            attempts: 0,
        });
    }
    let node = Node {
        parked,
        swarm,
        wallet,
        events,
        exchange_peers,
        addresses: HashMap::new(),
        in_flight: HashMap::new(),
        unanswered: HashSet::new(),
        retry: Vec::new(),
        relayed_listen: Vec::new(),
    };
    tokio::spawn(node.run(command_rx));
    Ok((NodeHandle { peer_id, commands }, EventStream(event_rx)))
}

struct Outgoing {
    peer: PeerId,
    exchange: Option<ExchangeId>,
    bytes: Vec<u8>,
    attempts: u32,
}

struct Node<S: WalletStore> {
    swarm: Swarm<WalletBehaviour>,
    wallet: Wallet<S>,
    events: mpsc::UnboundedSender<NodeEvent>,
    exchange_peers: HashMap<ExchangeId, PeerId>,
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    in_flight: HashMap<request_response::OutboundRequestId, Outgoing>,
    /// Requests received whose acknowledgement is not yet written.
    unanswered: HashSet<request_response::InboundRequestId>,
    retry: Vec<Outgoing>,
    relayed_listen: Vec<Multiaddr>,
    parked: HashMap<PeerId, Vec<Outgoing>>,
}

impl<S: WalletStore + 'static> Node<S> {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command<S>>) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Stop(reply)) => {
                        let _ = reply.send(self.wallet);
                        return;
                    }
                    Some(c) => self.command(c),
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = tick.tick() => self.tick(),
            }
        }
    }

    /// Ties an exchange to a peer, in memory and in the wallet (for restarts).
    fn bind(&mut self, exchange: ExchangeId, peer: PeerId) {
        self.exchange_peers.insert(exchange, peer);
        if let Err(e) = self.wallet.remember_transfer_peer(exchange, &peer.to_bytes()) {
            self.fail(Some(peer), Some(exchange), format!("could not remember the peer: {e}"));
        }
    }

    fn emit(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    fn fail(&self, peer: Option<PeerId>, exchange: Option<ExchangeId>, reason: impl ToString) {
        self.emit(NodeEvent::Failed { peer, exchange, reason: reason.to_string() });
    }

    fn send(&mut self, mut out: Outgoing) {
        out.attempts += 1;
        let addrs = self.addresses.get(&out.peer).cloned().unwrap_or_default();
        let id = self.swarm.behaviour_mut().transfer.send_request_with_addresses(&out.peer, out.bytes.clone(), addrs);
        self.in_flight.insert(id, out);
    }

    /// Sends what a step asks for and reports its events.
    fn route(&mut self, peer: PeerId, step: Step) {
        if let Some(bytes) = step.send {
            let exchange = TransferMessage::from_bytes(&bytes).ok().map(|m| m.offer_id());
            self.send(Outgoing { peer, exchange, bytes, attempts: 0 });
        }
        for event in step.events {
            self.emit(match event {
                TransferEvent::OfferReceived(offer) => NodeEvent::OfferReceived { peer, offer },
                TransferEvent::Accepted { exchange, role } => NodeEvent::Accepted { exchange, role },
                TransferEvent::Declined { exchange, role, reason } => NodeEvent::Declined { exchange, role, reason },
                TransferEvent::Completed { exchange, role, received, sent } => {
                    NodeEvent::Completed { exchange, role, received, sent }
                }
                TransferEvent::Expired { exchange, role } => NodeEvent::Expired { exchange, role },
            });
        }
    }

    fn command(&mut self, command: Command<S>) {
        match command {
            Command::Offer { peer, items, terms, ttl, reply } => {
                let expires = self.wallet.now().saturating_add(ttl);
                let result = self.wallet.offer_transfer(&items, terms, expires).map(|(exchange, step)| {
                    self.bind(exchange, peer);
                    self.route(peer, step);
                    exchange
                });
                let _ = reply.send(result.map_err(P2pError::from));
            }
            Command::Accept(exchange, reply) => {
                let result = self.answer(exchange, |w| w.accept_offer(exchange));
                let _ = reply.send(result);
            }
            Command::Decline(exchange, reason, reply) => {
                let result = self.answer(exchange, |w| w.decline_offer(exchange, &reason));
                let _ = reply.send(result);
            }
            Command::Dial(uri, reply) => {
                self.addresses.insert(uri.peer, uri.dial_addresses());
                for addr in uri.dial_addresses() {
                    self.swarm.add_peer_address(uri.peer, addr);
                }
                let result = if uri.addresses.is_empty() {
                    Ok(())
                } else {
                    let opts =
                        libp2p::swarm::dial_opts::DialOpts::peer_id(uri.peer).addresses(uri.dial_addresses()).build();
                    self.swarm.dial(opts).map_err(transport)
                };
                let _ = reply.send(result);
            }
            Command::Addresses(reply) => {
                let mut all: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                all.extend(self.relayed_listen.iter().cloned());
                all.dedup();
                let _ = reply.send(all);
            }
            Command::Settled(reply) => {
                let _ = reply.send(self.in_flight.is_empty() && self.retry.is_empty() && self.unanswered.is_empty());
            }
            Command::Wallet(job) => job(&mut self.wallet),
            Command::Stop(_) => {}
        }
    }

    fn answer(
        &mut self,
        exchange: ExchangeId,
        f: impl FnOnce(&mut Wallet<S>) -> Result<Step, tessera_core::transfer::TransferError>,
    ) -> Result<(), P2pError> {
        let peer = *self
            .exchange_peers
            .get(&exchange)
            .ok_or(P2pError::Transfer(tessera_core::transfer::TransferError::UnknownExchange(exchange)))?;
        let step = f(&mut self.wallet)?;
        self.route(peer, step);
        Ok(())
    }

    fn tick(&mut self) {
        match self.wallet.transfer_tick() {
            Ok(steps) => {
                for step in steps {
                    for event in &step.events {
                        if let TransferEvent::Expired { exchange, role } = event {
                            self.emit(NodeEvent::Expired { exchange: *exchange, role: *role });
                        }
                    }
                }
            }
            Err(e) => self.fail(None, None, e),
        }
        for out in std::mem::take(&mut self.retry) {
            self.send(out);
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<WalletBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                if address.iter().any(|p| p == Protocol::P2pCircuit) {
                    self.relayed_listen.push(address.clone());
                }
                self.emit(NodeEvent::Listening(address));
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                let relayed = endpoint.get_remote_address().iter().any(|p| p == Protocol::P2pCircuit);
                self.emit(NodeEvent::Connected { peer: peer_id, relayed });
                for out in self.parked.remove(&peer_id).unwrap_or_default() {
                    self.send(out);
                }
            }
            SwarmEvent::Behaviour(WalletBehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr.clone());
                    self.addresses.entry(peer).or_default().push(addr);
                    self.emit(NodeEvent::Discovered(peer));
                }
            }
            SwarmEvent::Behaviour(WalletBehaviourEvent::Relay(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            })) => self.emit(NodeEvent::RelayReservation(relay_peer_id)),
            SwarmEvent::Behaviour(WalletBehaviourEvent::Transfer(event)) => self.transfer_event(event),
            SwarmEvent::ListenerClosed { addresses, reason: Err(e), .. } => {
                self.fail(None, None, format!("listener {addresses:?} closed: {e}"));
            }
            SwarmEvent::ListenerError { error, .. } => self.fail(None, None, format!("listener: {error}")),
            other => tracing::debug!(event = ?other, "swarm event"),
        }
    }

    fn transfer_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request_id, request, channel }, .. } => {
                let exchange = TransferMessage::from_bytes(&request).ok().map(|m| m.offer_id());
                if let Some(exchange) = exchange
                    && !self.exchange_peers.contains_key(&exchange)
                {
                    self.bind(exchange, peer);
                }
                let ack = match self.wallet.handle_transfer(&request) {
                    Ok(step) => {
                        self.route(peer, step);
                        Vec::new()
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "refused a transfer message");
                        self.fail(Some(peer), exchange, format!("refused from peer: {e}"));
                        e.to_string().into_bytes().into_iter().take(crate::codec::MAX_RESPONSE).collect()
                    }
                };
                if self.swarm.behaviour_mut().transfer.send_response(channel, ack).is_ok() {
                    self.unanswered.insert(request_id);
                }
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                let out = self.in_flight.remove(&request_id);
                if !response.is_empty() {
                    let reason = String::from_utf8_lossy(&response).into_owned();
                    self.fail(Some(peer), out.and_then(|o| o.exchange), format!("refused by peer: {reason}"));
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                if let Some(out) = self.in_flight.remove(&request_id) {
                    self.fail(Some(peer), out.exchange, format!("send failed (attempt {}): {error}", out.attempts));
                    if out.attempts < MAX_ATTEMPTS {
                        self.retry.push(out);
                    }
                }
            }
            Event::InboundFailure { peer, request_id, error, .. } => {
                self.unanswered.remove(&request_id);
                self.fail(Some(peer), None, format!("inbound: {error}"));
            }
            Event::ResponseSent { request_id, .. } => {
                self.unanswered.remove(&request_id);
            }
        }
    }
}
