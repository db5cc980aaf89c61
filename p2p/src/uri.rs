//! `tessera:` URIs: how one phone tells another where to find it, small
//! enough for a QR code.
//!
//! ```text
//! tessera:<peer id>?a=<multiaddr>&a=<multiaddr>…
//! tessera:12D3KooW…?a=/ip4/192.168.1.20/udp/4001/quic-v1&a=/ip4/192.168.1.20/tcp/4001
//! ```
//! Addresses are multiaddrs without the trailing `/p2p/<peer id>`; a relayed
//! address is the relay's address followed by `/p2p-circuit`.

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use std::fmt;
use std::str::FromStr;

/// Longest URI accepted: what fits a QR code comfortably.
pub const MAX_URI_LEN: usize = 2048;
/// Most addresses one URI may carry.
pub const MAX_ADDRESSES: usize = 8;

const SCHEME: &str = "tessera:";

/// Why a `tessera:` URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Longer than [`MAX_URI_LEN`].
    #[error("the URI is {0} bytes, over the {MAX_URI_LEN}-byte bound")]
    TooLong(usize),
    /// It does not start with `tessera:`.
    #[error("not a tessera: URI")]
    WrongScheme,
    /// The peer id does not parse.
    #[error("bad peer id: {0}")]
    BadPeerId(String),
    /// A query parameter other than `a=`.
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    /// An address does not parse as a multiaddr.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// An address names another peer.
    #[error("address {0:?} names another peer")]
    OtherPeer(String),
    /// More than [`MAX_ADDRESSES`] addresses.
    #[error("more than {MAX_ADDRESSES} addresses")]
    TooManyAddresses,
}

/// A peer and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TesseraUri {
    /// The peer.
    pub peer: PeerId,
    /// Its addresses, without `/p2p/<peer>`.
    pub addresses: Vec<Multiaddr>,
}

impl TesseraUri {
    /// A URI for `peer` at `addresses` (a trailing `/p2p/<peer>` is dropped).
    pub fn new(peer: PeerId, addresses: impl IntoIterator<Item = Multiaddr>) -> Self {
        let addresses = addresses
            .into_iter()
            .map(|mut a| {
                if matches!(a.iter().last(), Some(Protocol::P2p(p)) if p == peer) {
                    a.pop();
                }
                a
            })
            .take(MAX_ADDRESSES)
            .collect();
        Self { peer, addresses }
    }

    /// Each address with `/p2p/<peer>` appended, ready to dial.
    pub fn dial_addresses(&self) -> Vec<Multiaddr> {
        self.addresses.iter().map(|a| a.clone().with(Protocol::P2p(self.peer))).collect()
    }
}

impl fmt::Display for TesseraUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.peer)?;
        for (i, a) in self.addresses.iter().enumerate() {
            write!(f, "{}a={a}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl FromStr for TesseraUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_URI_LEN {
            return Err(UriError::TooLong(s.len()));
        }
        let rest = s.trim().strip_prefix(SCHEME).ok_or(UriError::WrongScheme)?;
        let (peer, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let peer = PeerId::from_str(peer).map_err(|_| UriError::BadPeerId(peer.to_owned()))?;
        let mut addresses = Vec::new();
        for param in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            let value = param.strip_prefix("a=").ok_or_else(|| UriError::UnknownParameter(param.to_owned()))?;
            let mut addr = Multiaddr::from_str(value).map_err(|_| UriError::BadAddress(value.to_owned()))?;
            match addr.iter().last() {
                Some(Protocol::P2p(p)) if p == peer => {
                    addr.pop();
                }
                Some(Protocol::P2p(_)) => return Err(UriError::OtherPeer(value.to_owned())),
                _ => {}
            }
            if addresses.len() == MAX_ADDRESSES {
                return Err(UriError::TooManyAddresses);
            }
            addresses.push(addr);
        }
        Ok(Self { peer, addresses })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use libp2p::identity::Keypair;

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    #[test]
    fn prints_and_parses_back() {
        let p = peer();
        let addrs: Vec<Multiaddr> =
            vec!["/ip4/127.0.0.1/udp/4001/quic-v1".parse().unwrap(), "/ip4/127.0.0.1/tcp/4001".parse().unwrap()];
        let uri = TesseraUri::new(p, addrs.clone());
        let text = uri.to_string();
        assert!(text.starts_with("tessera:12D3KooW"), "{text}");
        assert_eq!(text.parse::<TesseraUri>().unwrap(), uri);
        assert_eq!(uri.dial_addresses()[0], addrs[0].clone().with(Protocol::P2p(p)));
        // A bare peer id is a valid URI (mDNS finds the addresses).
        assert_eq!(format!("tessera:{p}").parse::<TesseraUri>().unwrap().addresses, vec![]);
    }

    #[test]
    fn own_p2p_suffix_is_dropped_and_relay_addresses_kept() {
        let p = peer();
        let relay = peer();
        let text = format!("tessera:{p}?a=/ip4/127.0.0.1/tcp/1/p2p/{p}&a=/ip4/127.0.0.1/tcp/2/p2p/{relay}/p2p-circuit");
        let uri: TesseraUri = text.parse().unwrap();
        assert_eq!(uri.addresses[0], "/ip4/127.0.0.1/tcp/1".parse::<Multiaddr>().unwrap());
        assert!(uri.addresses[1].to_string().ends_with("/p2p-circuit"));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let p = peer();
        assert_eq!("http://x".parse::<TesseraUri>(), Err(UriError::WrongScheme));
        assert!(matches!("tessera:notapeer".parse::<TesseraUri>(), Err(UriError::BadPeerId(_))));
        assert!(matches!(format!("tessera:{p}?b=1").parse::<TesseraUri>(), Err(UriError::UnknownParameter(_))));
        assert!(matches!(format!("tessera:{p}?a=/nope/1").parse::<TesseraUri>(), Err(UriError::BadAddress(_))));
        let other = peer();
        assert!(matches!(
            format!("tessera:{p}?a=/ip4/1.2.3.4/tcp/1/p2p/{other}").parse::<TesseraUri>(),
            Err(UriError::OtherPeer(_))
        ));
        let many: String = (0..9).map(|i| format!("&a=/ip4/127.0.0.1/tcp/{i}")).collect();
        assert_eq!(format!("tessera:{p}?{}", &many[1..]).parse::<TesseraUri>(), Err(UriError::TooManyAddresses));
        let long = format!("tessera:{p}?a={}", "/".repeat(MAX_URI_LEN));
        assert!(matches!(long.parse::<TesseraUri>(), Err(UriError::TooLong(_))));
    }
}
