//! Phone to phone over NFC: the transfer engine's messages (offer,
//! acceptance, certificate, receipt; DESIGN §3.1) carried over the same APDU
//! channel as a presentation. The sender's phone is the reader, the
//! receiver's phone the card (`WalletCard`, INS `60` TRANSFER).
//!
//! ```text
//!  sender (reader)                                   receiver (card)
//!  SELECT ───────────────────────────────────────────▶ "tessera/2"
//!  TRANSFER offer ───────────────────────────────────▶ handle_transfer; gift + "receive"
//!  ◀─────────────────────────────── acceptance        open → accept at once
//!     (empty answer: the user decides on screen; the next tap polls
//!      with an empty TRANSFER and collects the answer)
//!  handle_transfer(acceptance) → certificate
//!  TRANSFER certificate ─────────────────────────────▶ handle_transfer → receipt
//!  ◀─────────────────────────────────── receipt
//!  handle_transfer(receipt): completed on both sides
//! ```
//! Every step is persisted by the engine before its message leaves, so a
//! tap that breaks off resumes at the next tap (or over libp2p).

use crate::apdu::{INS_TRANSFER, Limits, ReaderChannel, ReaderError, ReaderEvent, TESSERA_AID, Traffic};
use crate::store::WalletStore;
use crate::transfer::{TransferError, TransferEvent};
use crate::wallet::Wallet;

/// Why a transfer tap stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NfcTransferError {
    /// The channel failed or the card refused.
    #[error(transparent)]
    Channel(#[from] ReaderError),
    /// The card is not a Tessera wallet.
    #[error("the other phone is not a Tessera wallet")]
    UnknownProtocol,
    /// This wallet's engine refused the peer's message.
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

/// What a response led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfcTransferStep {
    /// Transmit [`NfcTransferReader::next_command`] next.
    Continue,
    /// The receiver has not answered yet (the user decides): tap again.
    AwaitingPeer,
    /// The exchange is complete on this side.
    Done(Vec<TransferEvent>),
}

/// The sender's side of one tap.
#[derive(Debug)]
pub struct NfcTransferReader {
    channel: ReaderChannel,
    first: Option<Vec<u8>>,
    events: Vec<TransferEvent>,
}

impl NfcTransferReader {
    /// A tap that sends `message` (the offer from `offer_transfer`, or an
    /// empty poll to collect a pending answer).
    pub fn start(message: Vec<u8>) -> Self {
        let mut channel = ReaderChannel::new(Limits::default());
        channel.select(&TESSERA_AID);
        Self { channel, first: Some(message), events: Vec::new() }
    }

    /// The next command APDU to transmit.
    pub fn next_command(&mut self) -> Option<Vec<u8>> {
        self.channel.next_command()
    }

    /// Bytes on the air so far.
    pub fn traffic(&self) -> Traffic {
        self.channel.traffic()
    }

    /// Digests the card's answer; hands the receiver's messages to `wallet`.
    pub fn on_response<S: WalletStore>(
        &mut self,
        response: &[u8],
        wallet: &mut Wallet<S>,
    ) -> Result<NfcTransferStep, NfcTransferError> {
        let message = match self.channel.on_response(response)? {
            ReaderEvent::Continue => return Ok(NfcTransferStep::Continue),
            ReaderEvent::Selected(hello) => {
                if hello != super::HELLO {
                    return Err(NfcTransferError::UnknownProtocol);
                }
                let first = self.first.take().unwrap_or_default();
                self.channel.send(INS_TRANSFER, 0, 0, &first)?;
                return Ok(NfcTransferStep::Continue);
            }
            ReaderEvent::Response(m) => m,
        };
        if message.is_empty() {
            return Ok(NfcTransferStep::AwaitingPeer);
        }
        let step = wallet.handle_transfer(&message)?;
        // A decline or an expiry ends the exchange as surely as a receipt:
        // the sender must not be told to tap again.
        let done = step.events.iter().any(|e| {
            matches!(
                e,
                TransferEvent::Completed { .. } | TransferEvent::Declined { .. } | TransferEvent::Expired { .. }
            )
        });
        self.events.extend(step.events);
        match step.send {
            Some(next) if !done => {
                self.channel.send(INS_TRANSFER, 0, 0, &next)?;
                Ok(NfcTransferStep::Continue)
            }
            _ if done => Ok(NfcTransferStep::Done(std::mem::take(&mut self.events))),
            _ => Ok(NfcTransferStep::AwaitingPeer),
        }
    }
}
