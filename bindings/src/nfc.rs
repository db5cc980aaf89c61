//! NFC: the card side an Android `HostApduService` forwards to
//! ([`Wallet::process_apdu`]) and the reader side of a phone-to-phone tap
//! ([`Wallet::nfc_transfer`]) over the app's [`NfcChannel`].
//!
//! ```text
//!  gate or sender phone (reader)              this phone (card, HCE)
//!    SELECT F0 'TESSERA' ─────────────────▶  process_apdu → "tessera/2" 9000
//!    PRESENT challenge / TRANSFER offer ──▶  process_apdu → answer (chained, 61xx)
//!    CONFIRM certificate ─────────────────▶  process_apdu → 9000; last_result()
//!
//!  this phone (reader): nfc_transfer(channel, offer bytes)
//!    loop { command = engine.next_command(); response = channel.transceive(command) }
//!    → Done(events) | AwaitingPeer (the receiver decides on screen: tap again
//!      with an empty message to collect the answer)
//! ```
//! While a p2p node holds the wallet, `process_apdu` answers `6985`
//! (conditions not satisfied) and the gate tries again; stop the node
//! before a tap.

use crate::error::{NfcChannelError, NfcTransferError, WalletError};
use crate::transfer::TransferEvent;
use crate::wallet::{Slot, Wallet, parse_instrument_id};
use std::sync::Arc;
use tessera_core::apdu::StatusWord;
use tessera_core::presentation::{NfcTransferReader, NfcTransferStep as CoreStep, Outcome};

/// Most command APDUs one tap may take: a 16 KiB message in 255-byte frames
/// is 65 commands each way, and a transfer has four messages.
const MAX_COMMANDS_PER_TAP: usize = 1_000;

/// The platform's NFC connection to the other phone, implemented by the app
/// (Android `IsoDep.transceive`, iOS `NFCISO7816Tag.sendCommand`).
#[uniffi::export(with_foreign)]
pub trait NfcChannel: Send + Sync {
    /// Sends one command APDU and returns the response APDU (data + SW1 SW2).
    fn transceive(&self, command: Vec<u8>) -> Result<Vec<u8>, NfcChannelError>;
}

/// What a gate's certificate did to the wallet at the last tap.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ExaminationResult {
    pub instrument_id: String,
    /// Whether the gate admitted.
    pub admitted: bool,
    /// Why it refused, as the gate's screen says it.
    pub refusal: Option<String>,
    /// Uses left now.
    pub uses_left: u16,
    /// The examination counter now.
    pub counter: u32,
}

/// How a phone-to-phone tap ended.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum NfcTransferStep {
    /// The receiver has not answered yet (its user decides): tap again with
    /// an empty message to collect the answer.
    AwaitingPeer,
    /// The exchange is complete on this side.
    Done { events: Vec<TransferEvent> },
}

#[uniffi::export]
impl Wallet {
    /// Answers one command APDU from a gate or another phone; never throws.
    /// Forward `HostApduService.processCommandApdu` here.
    pub fn process_apdu(&self, apdu: Vec<u8>) -> Vec<u8> {
        match &mut *self.lock() {
            Slot::Here(card) => card.process_apdu(&apdu),
            _ => StatusWord::CONDITIONS_NOT_SATISFIED.to_bytes().to_vec(),
        }
    }

    /// The field was lost (`HostApduService.onDeactivated`): a half-done
    /// presentation is dropped, nothing is kept.
    pub fn deactivate(&self) {
        if let Slot::Here(card) = &mut *self.lock() {
            card.deactivate();
        }
    }

    /// What to present at the next tap (id in hex); `None` lets the wallet
    /// pick by the gate's event and zone.
    pub fn choose(&self, id: Option<String>) -> Result<(), WalletError> {
        let id = id.as_deref().map(parse_instrument_id).transpose()?;
        match &mut *self.lock() {
            Slot::Here(card) => {
                card.choose(id);
                Ok(())
            }
            _ => Err(WalletError::Unavailable { error_message: "a p2p node holds the wallet: stop it first".into() }),
        }
    }

    /// Whether gifts offered by tap are accepted at once (the user opened
    /// the receive screen). Sales always wait for the user.
    pub fn accept_gifts(&self, yes: bool) {
        if let Slot::Here(card) = &mut *self.lock() {
            card.accept_gifts(yes);
        }
    }

    /// After the user answered an offer received by tap: the reply (the
    /// step's bytes from `accept_offer`/`decline_offer`) the sender's next
    /// tap collects.
    pub fn queue_transfer_reply(&self, bytes: Vec<u8>) {
        if let Slot::Here(card) = &mut *self.lock() {
            card.queue_transfer_reply(bytes);
        }
    }

    /// Transfer events from taps since the last call.
    pub fn take_transfer_events(&self) -> Vec<TransferEvent> {
        match &mut *self.lock() {
            Slot::Here(card) => card.take_transfer_events().into_iter().map(Into::into).collect(),
            _ => Vec::new(),
        }
    }

    /// What the last gate certificate did, if any (the gate-answer screen).
    pub fn last_result(&self) -> Option<ExaminationResult> {
        match &*self.lock() {
            Slot::Here(card) => card.last_result().map(|r| ExaminationResult {
                instrument_id: r.instrument_id.to_hex(),
                admitted: r.outcome == Outcome::Admitted,
                refusal: match r.outcome {
                    Outcome::Admitted => None,
                    Outcome::Refused(why) => Some(why.describe().to_owned()),
                },
                uses_left: r.uses_left,
                counter: r.counter,
            }),
            _ => None,
        }
    }

    /// One phone-to-phone tap as the reader: sends `message` (an offer from
    /// `offer_transfer`, or an empty poll to collect the receiver's answer)
    /// and drives the exchange over `channel` as far as it goes. Blocks for
    /// the tap: call it from the NFC callback's thread.
    pub fn nfc_transfer(
        &self,
        channel: Arc<dyn NfcChannel>,
        message: Vec<u8>,
    ) -> Result<NfcTransferStep, NfcTransferError> {
        self.with(move |w| {
            let mut reader = NfcTransferReader::start(message);
            for _ in 0..MAX_COMMANDS_PER_TAP {
                let Some(command) = reader.next_command() else {
                    // The engine always queues a command until it finishes.
                    return Ok(NfcTransferStep::AwaitingPeer);
                };
                let response = channel.transceive(command)?;
                match reader.on_response(&response, w)? {
                    CoreStep::Continue => {}
                    CoreStep::AwaitingPeer => return Ok(NfcTransferStep::AwaitingPeer),
                    CoreStep::Done(events) => {
                        return Ok(NfcTransferStep::Done { events: events.into_iter().map(Into::into).collect() });
                    }
                }
            }
            Err(NfcTransferError::TooManyCommands {
                error_message: format!("the tap took more than {MAX_COMMANDS_PER_TAP} commands"),
            })
        })?
    }
}
