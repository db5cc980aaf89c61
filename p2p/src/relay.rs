//! The relay server (`tessera relay`): runs on a reachable host so that two
//! phones behind NAT can reach each other through it, then try a direct
//! connection with DCUtR. It only forwards encrypted streams; it never sees
//! a transfer's content.

use crate::node::P2pError;
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, identity::Keypair, multiaddr::Protocol, noise, ping, relay, tcp, yamux};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(NetworkBehaviour)]
struct RelayBehaviour {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayServer {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Where it listens, each ending in `/p2p/<peer id>`, ready for a node's `relay` setting.
    pub addresses: Vec<Multiaddr>,
    circuits: Arc<AtomicU64>,
    reservations: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
}

impl RelayServer {
    /// Circuits opened through it so far.
    pub fn circuits(&self) -> u64 {
        self.circuits.load(Ordering::Relaxed)
    }
    /// Reservations accepted so far.
    pub fn reservations(&self) -> u64 {
        self.reservations.load(Ordering::Relaxed)
    }
    /// Stops it.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Limits generous enough for transfers with long chains and a person deciding.
fn relay_config() -> relay::Config {
    relay::Config {
        max_circuit_duration: Duration::from_secs(600),
        max_circuit_bytes: 8 * 1024 * 1024,
        ..relay::Config::default()
    }
}

/// Starts a relay listening on `listen`, advertising `external` (plus the
/// bound listen addresses when `external` is empty, fine on a LAN or loopback).
pub async fn run_relay(
    keypair: Keypair,
    listen: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
) -> Result<RelayServer, P2pError> {
    let transport = |e: &dyn std::fmt::Display| P2pError::Transport(e.to_string());
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_behaviour(|key| RelayBehaviour {
            relay: relay::Behaviour::new(key.public().to_peer_id(), relay_config()),
            identify: identify::Behaviour::new(identify::Config::new("/tessera/1".into(), key.public())),
            ping: ping::Behaviour::default(),
        })
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(crate::node::IDLE_TIMEOUT))
        .build();
    for addr in &listen {
        swarm.listen_on(addr.clone()).map_err(|e| transport(&e))?;
    }
    let peer_id = *swarm.local_peer_id();
    let mut bound = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while bound.len() < listen.len() {
        tokio::select! {
            event = swarm.select_next_some() => {
                if let SwarmEvent::NewListenAddr { address, .. } = event {
                    bound.push(address);
                }
            }
            _ = &mut deadline => return Err(P2pError::Transport("the relay did not bind its addresses".into())),
        }
    }
    let advertised = if external.is_empty() { bound.clone() } else { external };
    for addr in &advertised {
        swarm.add_external_address(addr.clone());
    }
    let circuits = Arc::new(AtomicU64::new(0));
    let reservations = Arc::new(AtomicU64::new(0));
    let (stop, mut stopped) = oneshot::channel();
    let (c, r) = (circuits.clone(), reservations.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(relay::Event::CircuitReqAccepted { src_peer_id, dst_peer_id })) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%src_peer_id, %dst_peer_id, "relay circuit opened");
                    }
                    SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(relay::Event::ReservationReqAccepted { src_peer_id, .. })) => {
                        r.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%src_peer_id, "relay reservation accepted");
                    }
                    _ => {}
                },
            }
        }
    });
    let addresses = advertised.into_iter().map(|a| a.with(Protocol::P2p(peer_id))).collect();
    Ok(RelayServer { peer_id, addresses, circuits, reservations, stop: Some(stop) })
}
