//! The gate mesh over libp2p gossipsub: every gate of a venue subscribes to
//! one topic and publishes a [`MeshEnvelope`] for each admission; a gate
//! that (re)joins is sent every event its peers know (catch-up), so a
//! partition heals into one used set and its conflicts are reported.
//! Merging is the gate's job ([`crate::Gate::merge_envelope`]); this module
//! only moves bytes.
//!
//! ```text
//!  Gate::tap ─▶ TapReport::used_event ─▶ MeshHandle::publish ─▶ gossipsub topic
//!  gossipsub ─▶ MeshEvent::Envelope ─▶ Gate::merge_envelope (used set, conflicts)
//!  gossipsub Subscribed(peer) ─▶ MeshEvent::PeerJoined ─▶ Gate::catch_up ─▶ publish
//! ```
//!
//! [`MeshEnvelope`]: tessera_core::presentation::mesh::MeshEnvelope

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use std::collections::VecDeque;
use std::time::Duration;
use tessera_core::codec::Wire;
use tessera_core::presentation::mesh::MeshEnvelope;
use tokio::sync::mpsc;

/// How a mesh node is set up.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Where to listen (loopback in tests: `/ip4/127.0.0.1/tcp/0`).
    pub listen: Multiaddr,
    /// Peers to dial at start.
    pub peers: Vec<Multiaddr>,
    /// The venue's topic (one per event).
    pub topic: String,
    /// Gossipsub parameters.
    pub gossip: GossipTuning,
}

/// The gossipsub parameters that decide how fast a used event reaches every
/// gate. On a venue's LAN, libp2p's mesh parameters already deliver an
/// event to all of 10 gates in about 15 ms at p99 (docs/benchmarks.md); a
/// shorter heartbeat and a wider mesh measured no faster (within noise). What
/// [`GossipTuning::venue`] changes is the first heartbeat: libp2p waits 5 s
/// before it, so a gate that just started or rejoined is in no mesh for that
/// long and does not forward what it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipTuning {
    /// How often meshes are repaired and IHAVE gossip is sent.
    pub heartbeat: Duration,
    /// Delay before the first heartbeat.
    pub heartbeat_initial_delay: Duration,
    /// Target mesh degree.
    pub mesh_n: usize,
    /// Below this, a heartbeat grafts more peers.
    pub mesh_n_low: usize,
    /// Above this, a heartbeat prunes peers.
    pub mesh_n_high: usize,
    /// Send own messages to every subscribed peer, not only the mesh.
    pub flood_publish: bool,
}

impl GossipTuning {
    /// For a venue's gates: libp2p's mesh, a 200 ms heartbeat from the start.
    pub fn venue() -> Self {
        Self {
            heartbeat_initial_delay: Duration::from_millis(200),
            ..Self::library_defaults(Duration::from_millis(200))
        }
    }

    /// libp2p's defaults with `heartbeat` (what the gates ran before; the
    /// benchmark's baseline).
    pub fn library_defaults(heartbeat: Duration) -> Self {
        Self {
            heartbeat,
            heartbeat_initial_delay: Duration::from_secs(5),
            mesh_n: 6,
            mesh_n_low: 5,
            mesh_n_high: 12,
            flood_publish: true,
        }
    }
}

impl MeshConfig {
    /// The topic name for an event.
    pub fn topic_for(event_id: &str) -> String {
        format!("tessera/gate-mesh/1/{event_id}")
    }
}

/// What the mesh tells the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshEvent {
    /// Listening on this address.
    Listening(Multiaddr),
    /// A peer subscribed to the venue's topic: send it a catch-up.
    PeerJoined(PeerId),
    /// A peer's connection closed.
    PeerLeft(PeerId),
    /// An envelope from another gate (already bounded in size).
    Envelope(Vec<u8>),
}

#[derive(Debug)]
enum Command {
    Publish(Vec<u8>),
    Dial(Multiaddr),
    DisconnectAll,
}

/// Why the mesh could not start.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// libp2p setup failed.
    #[error("mesh: {0}")]
    Setup(String),
}

/// A running mesh node; dropping it stops the node.
#[derive(Debug)]
pub struct MeshHandle {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<MeshEvent>,
    peer_id: PeerId,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MeshHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MeshHandle {
    /// Starts a node on the current tokio runtime.
    pub fn start(config: MeshConfig) -> Result<Self, MeshError> {
        let setup = |e: &dyn std::fmt::Display| MeshError::Setup(e.to_string());
        let g = config.gossip;
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(g.heartbeat)
            .heartbeat_initial_delay(g.heartbeat_initial_delay)
            .mesh_n(g.mesh_n)
            .mesh_n_low(g.mesh_n_low)
            .mesh_n_high(g.mesh_n_high)
            .gossip_lazy(g.mesh_n)
            .flood_publish(g.flood_publish)
            .validation_mode(ValidationMode::Strict)
            .max_transmit_size(64 * 1024)
            .build()
            .map_err(|e| setup(&e))?;
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| setup(&e))?
            .with_behaviour(|key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                Ok(gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?)
            })
            .map_err(|e| setup(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        let topic = IdentTopic::new(config.topic.clone());
        swarm.behaviour_mut().subscribe(&topic).map_err(|e| setup(&e))?;
        swarm.listen_on(config.listen.clone()).map_err(|e| setup(&e))?;
        for peer in &config.peers {
            swarm.dial(peer.clone()).map_err(|e| setup(&e))?;
        }
        let peer_id = *swarm.local_peer_id();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(swarm, topic, command_rx, event_tx));
        Ok(Self { commands, events, peer_id, task })
    }

    /// This node's libp2p id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Publishes an envelope (queued until a peer is subscribed).
    pub fn publish(&self, envelope: Vec<u8>) {
        let _ = self.commands.send(Command::Publish(envelope));
    }

    /// Dials a peer (to heal a partition, or to add a gate).
    pub fn dial(&self, addr: Multiaddr) {
        let _ = self.commands.send(Command::Dial(addr));
    }

    /// Drops every connection: a partition, for tests and drills.
    pub fn disconnect_all(&self) {
        let _ = self.commands.send(Command::DisconnectAll);
    }

    /// The next event.
    pub async fn next_event(&mut self) -> Option<MeshEvent> {
        self.events.recv().await
    }

    /// An event if one is waiting.
    pub fn try_event(&mut self) -> Option<MeshEvent> {
        self.events.try_recv().ok()
    }
}

async fn run(
    mut swarm: Swarm<gossipsub::Behaviour>,
    topic: IdentTopic,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<MeshEvent>,
) {
    // Envelopes published while no peer listened; sent when one subscribes.
    let mut waiting: VecDeque<Vec<u8>> = VecDeque::new();
    let flush = |swarm: &mut Swarm<gossipsub::Behaviour>, waiting: &mut VecDeque<Vec<u8>>| {
        while let Some(bytes) = waiting.pop_front() {
            match swarm.behaviour_mut().publish(topic.clone(), bytes.clone()) {
                Ok(_) => {}
                Err(gossipsub::PublishError::Duplicate) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "mesh publish deferred");
                    waiting.push_front(bytes);
                    break;
                }
            }
        }
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Publish(bytes)) => {
                    waiting.push_back(bytes);
                    flush(&mut swarm, &mut waiting);
                }
                Some(Command::Dial(addr)) => {
                    if let Err(e) = swarm.dial(addr) {
                        tracing::warn!(error = %e, "mesh dial");
                    }
                }
                Some(Command::DisconnectAll) => {
                    let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
                    for peer in peers {
                        let _ = swarm.disconnect_peer_id(peer);
                    }
                }
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    let _ = events.send(MeshEvent::Listening(address));
                }
                SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) => {
                    flush(&mut swarm, &mut waiting);
                    let _ = events.send(MeshEvent::PeerJoined(peer_id));
                }
                SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. })
                    if message.data.len() <= MeshEnvelope::MAX_LEN =>
                {
                    let _ = events.send(MeshEvent::Envelope(message.data));
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    let _ = events.send(MeshEvent::PeerLeft(peer_id));
                }
                _ => {}
            },
        }
    }
}
