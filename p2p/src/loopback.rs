//! Moving instruments between two wallets over a real swarm on loopback:
//! what `tessera demo` and the tests call.

use crate::node::{NodeConfig, NodeEvent, NodeHandle, P2pError, spawn};
use crate::uri::TesseraUri;
use std::time::Duration;
use tessera_core::store::WalletStore;
use tessera_core::transfer::{OfferTerms, Role};
use tessera_core::{ExchangeId, InstrumentId, Wallet};

/// What one exchange over loopback did.
#[derive(Debug)]
pub struct LoopbackOutcome<S: WalletStore> {
    /// The sender's wallet, back.
    pub sender: Wallet<S>,
    /// The receiver's wallet, back.
    pub receiver: Wallet<S>,
    /// The exchange.
    pub exchange: ExchangeId,
    /// Offer sent → sender's completion, as the sender saw it.
    pub elapsed: Duration,
}

/// Starts two nodes on 127.0.0.1, offers `items` from `sender` to
/// `receiver` on `terms`, lets the receiver accept once the verifier passed
/// the offer, and waits until both sides completed (or `timeout`).
pub async fn transfer_over_loopback<S: WalletStore + 'static>(
    sender: Wallet<S>,
    receiver: Wallet<S>,
    items: Vec<InstrumentId>,
    terms: OfferTerms,
    timeout: Duration,
) -> Result<LoopbackOutcome<S>, P2pError> {
    transfer_with(sender, receiver, items, terms, timeout, NodeConfig::loopback()).await
}

/// Like [`transfer_over_loopback`], with both nodes started from `config`
/// (e.g. QUIC only or TCP only).
pub async fn transfer_with<S: WalletStore + 'static>(
    sender: Wallet<S>,
    receiver: Wallet<S>,
    items: Vec<InstrumentId>,
    terms: OfferTerms,
    timeout: Duration,
    config: NodeConfig,
) -> Result<LoopbackOutcome<S>, P2pError> {
    let (a, mut a_events) = spawn(sender, config.clone()).await?;
    let (b, mut b_events) = spawn(receiver, config).await?;
    let run = async {
        let b_uri = wait_for_uri(&b).await?;
        a.dial(b_uri).await?;
        let started = std::time::Instant::now();
        let exchange = a.offer(b.peer_id(), items, terms, 600).await?;
        let (mut a_done, mut b_done) = (false, false);
        let mut elapsed = Duration::ZERO;
        while !(a_done && b_done) {
            tokio::select! {
                Some(event) = a_events.next_event() => match event {
                    NodeEvent::Completed { exchange: e, role: Role::Sender, .. } if e == exchange => {
                        a_done = true;
                        elapsed = started.elapsed();
                    }
                    NodeEvent::Declined { reason, .. } => return Err(P2pError::Transport(format!("declined: {reason}"))),
                    NodeEvent::Failed { reason, .. } => tracing::debug!(%reason, "sender saw a failure"),
                    _ => {}
                },
                Some(event) = b_events.next_event() => match event {
                    NodeEvent::OfferReceived { offer, .. } if offer.offer_id == exchange => b.accept(exchange).await?,
                    NodeEvent::Completed { exchange: e, role: Role::Receiver, .. } if e == exchange => b_done = true,
                    NodeEvent::Failed { reason, .. } => tracing::debug!(%reason, "receiver saw a failure"),
                    _ => {}
                },
            }
        }
        Ok::<_, P2pError>((exchange, elapsed))
    };
    let (exchange, elapsed) =
        tokio::time::timeout(timeout, run).await.map_err(|_| P2pError::Transport("timed out".into()))??;
    // The receipt's acknowledgement, so that neither side stops mid-message.
    a.settle(Duration::from_secs(5)).await?;
    b.settle(Duration::from_secs(5)).await?;
    Ok(LoopbackOutcome { sender: a.stop().await?, receiver: b.stop().await?, exchange, elapsed })
}

/// A node's URI once it listens somewhere (a relayed listener can take a
/// few seconds on a loaded machine: the reservation is a round trip).
pub async fn wait_for_uri<S: WalletStore + 'static>(node: &NodeHandle<S>) -> Result<TesseraUri, P2pError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let uri = node.uri().await?;
        if !uri.addresses.is_empty() {
            return Ok(uri);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(P2pError::Transport("the node never listened".into()))
}
