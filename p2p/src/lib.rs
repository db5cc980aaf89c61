//! # tessera-p2p
//!
//! Carries the transfer engine's bytes between two wallets over libp2p:
//! QUIC and TCP (noise, yamux), the request-response protocol
//! `/tessera/transfer/1` with size bounds, mDNS on the local network, a
//! relay client with DCUtR hole punching for peers behind NAT, and a relay
//! server ([`relay::run_relay`]) to run on a reachable host. Peers find each
//! other by mDNS or by a `tessera:` URI ([`uri::TesseraUri`]) shown as a QR
//! code.
//!
//! The protocol logic lives in `tessera_core::transfer`; this crate is
//! only an adapter: it never decides anything the engine did not.

pub mod bench;
pub mod codec;
pub mod loopback;
pub mod node;
pub mod relay;
pub mod uri;

pub use node::{EventStream, NodeConfig, NodeEvent, NodeHandle, P2pError, spawn, spawn_with_identity};
pub use uri::{TesseraUri, UriError};

/// The libp2p types an application needs to configure a node.
pub mod libp2p_reexports {
    pub use libp2p::identity::Keypair;
    pub use libp2p::{Multiaddr, PeerId};
}
