//! A phone's wallet on a PC: the wallet directory layout the test tools
//! share, and the sender's side of a phone-to-phone NFC transfer driven
//! over any [`Transceiver`] (libnfc in `tessera-phone`, a `WalletCard` in
//! the same process in tests). The protocol is
//! `tessera_core::presentation::NfcTransferReader`.

use crate::gate::Transceiver;
use std::path::Path;
use std::sync::Arc;
use tessera_core::apdu::Traffic;
use tessera_core::presentation::{NfcTransferError, NfcTransferReader, NfcTransferStep};
use tessera_core::sealing::KeyFileProvider;
use tessera_core::store::{SqliteStore, WalletStore};
use tessera_core::{SystemClock, Wallet, WalletError};

/// The most round trips one transfer tap may take (an offer of 16
/// instruments with long chains, chained both ways, and three messages).
const MAX_ROUND_TRIPS: usize = 400;

/// Opens the wallet in `dir` (`wallet.db`, sealed under `wallet.key`).
pub fn open_wallet(dir: &Path) -> Result<Wallet<SqliteStore>, WalletError> {
    let keys = KeyFileProvider::new(dir.join("wallet.key"));
    Wallet::open_at(dir.join("wallet.db"), &keys, Arc::new(SystemClock))
}

/// Why a transfer tap stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The link to the other phone broke.
    #[error("link: {0}")]
    Link(String),
    /// The protocol stopped (the card refused, or this wallet refused its answer).
    #[error(transparent)]
    Transfer(#[from] NfcTransferError),
    /// More round trips than any transfer needs.
    #[error("the exchange did not finish within {MAX_ROUND_TRIPS} round trips")]
    TooLong,
}

/// How one transfer tap ended, and what it cost on the air.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferTap {
    /// `Done` (completed here) or `AwaitingPeer` (tap again).
    pub step: NfcTransferStep,
    /// Bytes on the air.
    pub traffic: Traffic,
    /// APDU round trips.
    pub round_trips: usize,
}

/// One tap of the sending phone: SELECT, then `message` (an offer, or
/// empty to collect a pending answer) and whatever the engine answers,
/// until the exchange completes or the other phone's user has to decide.
pub fn send_tap<S: WalletStore>(
    link: &mut dyn Transceiver,
    wallet: &mut Wallet<S>,
    message: Vec<u8>,
) -> Result<TransferTap, TapError> {
    let mut reader = NfcTransferReader::start(message);
    let mut round_trips = 0;
    while let Some(command) = reader.next_command() {
        if round_trips == MAX_ROUND_TRIPS {
            return Err(TapError::TooLong);
        }
        round_trips += 1;
        let answer = link.transceive(&command).map_err(TapError::Link)?;
        match reader.on_response(&answer, wallet)? {
            NfcTransferStep::Continue => {}
            step => return Ok(TransferTap { step, traffic: reader.traffic(), round_trips }),
        }
    }
    Err(TapError::Link("the reader stopped before an answer".into()))
}
