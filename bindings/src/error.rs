//! Errors as the apps see them: one enum per domain, every variant carrying
//! the core's explanation in `error_message`.
//!
//! Kotlin gets `WalletException.WrongStorageKey(errorMessage)` and so on,
//! Swift `WalletError.WrongStorageKey(errorMessage:)`. The variants mirror
//! `tessera_core::WalletError` so an app can react to the ones it handles
//! (a wrong storage key, an instrument that is not ours) and show the text
//! of the rest.

use crate::runtime::Unavailable;
use tessera_core::presentation::NfcTransferError as CoreNfcTransferError;
use tessera_core::transfer::TransferError as CoreTransferError;
use tessera_core::wallet::WalletError as CoreWalletError;
use tessera_p2p::P2pError as CoreP2pError;
use tessera_registry::client::ClientError;

/// Why a wallet call failed. A failed call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WalletError {
    /// The database failed (I/O, locking, corruption, a newer schema).
    #[error("{error_message}")]
    Storage { error_message: String },
    /// Bytes from outside (an instrument, a trust list) did not decode.
    #[error("{error_message}")]
    Decode { error_message: String },
    /// The verifier refused an instrument (forged, expired, revoked, …).
    #[error("{error_message}")]
    Rejected { error_message: String },
    /// A trust or deny list was refused (wrong registry, bad signature, stale).
    #[error("{error_message}")]
    Trust { error_message: String },
    /// The app's `Keystore` could not supply the storage key.
    #[error("{error_message}")]
    Keystore { error_message: String },
    /// A signing key could not sign.
    #[error("{error_message}")]
    Signer { error_message: String },
    /// The storage key does not open this wallet.
    #[error("{error_message}")]
    WrongStorageKey { error_message: String },
    /// No wallet has been created at this path.
    #[error("{error_message}")]
    NotCreated { error_message: String },
    /// A wallet already exists at this path.
    #[error("{error_message}")]
    AlreadyCreated { error_message: String },
    /// No registry key is pinned yet.
    #[error("{error_message}")]
    NoRegistry { error_message: String },
    /// A different registry key is already pinned.
    #[error("{error_message}")]
    RegistryMismatch { error_message: String },
    /// No trust list is installed yet.
    #[error("{error_message}")]
    NoTrustList { error_message: String },
    /// The instrument is not in this wallet.
    #[error("{error_message}")]
    UnknownInstrument { error_message: String },
    /// The instrument is held by a key this wallet does not have.
    #[error("{error_message}")]
    NotOurs { error_message: String },
    /// The wallet already holds this instrument at this point of its chain.
    #[error("{error_message}")]
    AlreadyHeld { error_message: String },
    /// The wallet holds a later state of this instrument.
    #[error("{error_message}")]
    Stale { error_message: String },
    /// The instrument is pending out or gone.
    #[error("{error_message}")]
    NotHeld { error_message: String },
    /// The instrument may not be passed on.
    #[error("{error_message}")]
    NotTransferable { error_message: String },
    /// Stored data broke an invariant.
    #[error("{error_message}")]
    Inconsistent { error_message: String },
    /// An argument from the app is malformed (not hex, wrong length).
    #[error("{error_message}")]
    InvalidInput { error_message: String },
    /// The wallet cannot take calls now (a p2p node is starting or
    /// stopping with it, or the library's runtime failed); try again.
    #[error("{error_message}")]
    Unavailable { error_message: String },
}

impl WalletError {
    /// The text of any variant.
    pub fn error_message(&self) -> &str {
        match self {
            Self::Storage { error_message }
            | Self::Decode { error_message }
            | Self::Rejected { error_message }
            | Self::Trust { error_message }
            | Self::Keystore { error_message }
            | Self::Signer { error_message }
            | Self::WrongStorageKey { error_message }
            | Self::NotCreated { error_message }
            | Self::AlreadyCreated { error_message }
            | Self::NoRegistry { error_message }
            | Self::RegistryMismatch { error_message }
            | Self::NoTrustList { error_message }
            | Self::UnknownInstrument { error_message }
            | Self::NotOurs { error_message }
            | Self::AlreadyHeld { error_message }
            | Self::Stale { error_message }
            | Self::NotHeld { error_message }
            | Self::NotTransferable { error_message }
            | Self::Inconsistent { error_message }
            | Self::InvalidInput { error_message }
            | Self::Unavailable { error_message } => error_message,
        }
    }

    pub(crate) fn invalid_input(error_message: impl Into<String>) -> Self {
        Self::InvalidInput { error_message: error_message.into() }
    }
}

impl From<Unavailable> for WalletError {
    fn from(error: Unavailable) -> Self {
        Self::Unavailable { error_message: error.0 }
    }
}

impl From<CoreWalletError> for WalletError {
    fn from(error: CoreWalletError) -> Self {
        // The core's Display is already a sentence meant for people; keep it
        // whole and let the variant carry the machine-readable part.
        let error_message = error.to_string();
        match error {
            CoreWalletError::Store(_) => Self::Storage { error_message },
            CoreWalletError::Decode(_) => Self::Decode { error_message },
            // A double transfer is a rejection of the offered copy; the text names it.
            CoreWalletError::Rejected(_) | CoreWalletError::DoubleTransfer { .. } => Self::Rejected { error_message },
            CoreWalletError::Trust(_) => Self::Trust { error_message },
            CoreWalletError::KeyProvider(_) => Self::Keystore { error_message },
            CoreWalletError::Signer(_) => Self::Signer { error_message },
            CoreWalletError::WrongStorageKey => Self::WrongStorageKey { error_message },
            CoreWalletError::NotCreated => Self::NotCreated { error_message },
            CoreWalletError::AlreadyCreated => Self::AlreadyCreated { error_message },
            CoreWalletError::NoRegistry => Self::NoRegistry { error_message },
            CoreWalletError::RegistryMismatch(_) => Self::RegistryMismatch { error_message },
            CoreWalletError::NoTrustList => Self::NoTrustList { error_message },
            CoreWalletError::UnknownInstrument(_) => Self::UnknownInstrument { error_message },
            CoreWalletError::NotOurs(_) => Self::NotOurs { error_message },
            CoreWalletError::AlreadyHeld(_) => Self::AlreadyHeld { error_message },
            CoreWalletError::Stale(_) => Self::Stale { error_message },
            CoreWalletError::NotHeld { .. } => Self::NotHeld { error_message },
            CoreWalletError::NotTransferable(_) => Self::NotTransferable { error_message },
            CoreWalletError::Inconsistent(_) => Self::Inconsistent { error_message },
            CoreWalletError::BadPolicy(_) => Self::InvalidInput { error_message },
        }
    }
}

/// Why the app's [`crate::Keystore`] could not supply the storage key.
///
/// The app throws `KeystoreException.Unavailable` (Kotlin) or
/// `KeystoreError.Unavailable` (Swift) when the platform keystore is locked
/// or the key is gone. Anything else it throws arrives as `Unexpected`
/// instead of aborting the process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum KeystoreError {
    /// The platform keystore cannot produce the key now (locked, user not
    /// authenticated, key invalidated).
    #[error("keystore unavailable: {error_message}")]
    Unavailable { error_message: String },
    /// The app's keystore threw something it did not declare.
    #[error("keystore failed unexpectedly: {error_message}")]
    Unexpected { error_message: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeystoreError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unexpected { error_message: error.reason }
    }
}

/// A flow's error from the wallet's: argument and availability errors keep
/// their meaning, anything else is the flow's `Wallet` variant.
macro_rules! wallet_error_conversions {
    ($flow:ident) => {
        impl From<WalletError> for $flow {
            fn from(error: WalletError) -> Self {
                match error {
                    WalletError::InvalidInput { error_message } => Self::InvalidInput { error_message },
                    WalletError::Unavailable { error_message } => Self::Unavailable { error_message },
                    other => Self::Wallet { error_message: other.error_message().to_owned() },
                }
            }
        }

        impl From<Unavailable> for $flow {
            fn from(error: Unavailable) -> Self {
                Self::Unavailable { error_message: error.0 }
            }
        }
    };
}

/// Why a transfer call or a peer's transfer message was refused. A refused
/// message or call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransferError {
    /// The bytes are not a well-formed transfer message within its bound.
    #[error("{error_message}")]
    Decode { error_message: String },
    /// The wallet (store, keys, trust list) failed.
    #[error("{error_message}")]
    Wallet { error_message: String },
    /// The verifier refused an instrument in the message.
    #[error("{error_message}")]
    Rejected { error_message: String },
    /// The peer's message breaks the protocol (bad signature, replay, wrong
    /// state, wrong keys, wrong payment or change, this wallet's own offer).
    #[error("{error_message}")]
    Refused { error_message: String },
    /// No exchange with this id is known here.
    #[error("{error_message}")]
    UnknownExchange { error_message: String },
    /// The offer expired.
    #[error("{error_message}")]
    Expired { error_message: String },
    /// The sender no longer holds what it offered.
    #[error("{error_message}")]
    Stale { error_message: String },
    /// An instrument is pending out or gone.
    #[error("{error_message}")]
    NotHeld { error_message: String },
    /// An instrument may not be passed on.
    #[error("{error_message}")]
    NotTransferable { error_message: String },
    /// The offer's items or terms are malformed (none, too many, repeated).
    #[error("{error_message}")]
    BadOffer { error_message: String },
    /// Not enough notes to pay.
    #[error("{error_message}")]
    InsufficientFunds { error_message: String },
    /// No set of held notes pays with change the seller can give.
    #[error("{error_message}")]
    CannotMakeChange { error_message: String },
    /// Taking an instrument would put it past this wallet's offline policy
    /// (too many unreconciled hops, too large a note): the sender syncs
    /// with the registry first, or pays with smaller notes.
    #[error("{error_message}")]
    OverOfflineLimit { error_message: String },
    /// Stored exchange state does not decode.
    #[error("{error_message}")]
    Corrupt { error_message: String },
    /// An argument from the app is malformed.
    #[error("{error_message}")]
    InvalidInput { error_message: String },
    /// The wallet cannot take calls now; try again.
    #[error("{error_message}")]
    Unavailable { error_message: String },
}

impl From<CoreTransferError> for TransferError {
    fn from(error: CoreTransferError) -> Self {
        use CoreTransferError as E;
        let error_message = error.to_string();
        match error {
            E::Decode(_) => Self::Decode { error_message },
            E::Wallet(_) => Self::Wallet { error_message },
            E::Rejected { .. } => Self::Rejected { error_message },
            E::BadSignature(_)
            | E::Replayed(_)
            | E::WrongState { .. }
            | E::Mismatch(_)
            | E::WrongSequence { .. }
            | E::WrongPrevious(_)
            | E::WrongHolderKey { .. }
            | E::WrongInstrument { .. }
            | E::OwnOffer
            | E::BadPayment(_)
            | E::BadChange(_) => Self::Refused { error_message },
            E::UnknownExchange(_) => Self::UnknownExchange { error_message },
            E::Expired { .. } => Self::Expired { error_message },
            E::Stale(_) => Self::Stale { error_message },
            E::NotHeld { .. } => Self::NotHeld { error_message },
            E::NotTransferable(_) => Self::NotTransferable { error_message },
            E::BadItems(_) | E::BadTerms(_) => Self::BadOffer { error_message },
            E::InsufficientFunds { .. } => Self::InsufficientFunds { error_message },
            E::CannotMakeChange => Self::CannotMakeChange { error_message },
            E::OverOfflineLimit(_) => Self::OverOfflineLimit { error_message },
            E::Corrupt(_) => Self::Corrupt { error_message },
        }
    }
}

wallet_error_conversions!(TransferError);

/// Why a p2p node call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum P2pError {
    /// Building the swarm, listening or dialling failed.
    #[error("{error_message}")]
    Transport { error_message: String },
    /// The node has stopped.
    #[error("{error_message}")]
    Stopped { error_message: String },
    /// The transfer engine refused.
    #[error("{error_message}")]
    Transfer { error_message: String },
    /// No address is known for the peer: dial its URI first.
    #[error("{error_message}")]
    NoAddress { error_message: String },
    /// A node already runs with this wallet.
    #[error("{error_message}")]
    AlreadyRunning { error_message: String },
    /// The wallet failed (reopening it after a failed start).
    #[error("{error_message}")]
    Wallet { error_message: String },
    /// An argument from the app is malformed (peer id, address, URI, id).
    #[error("{error_message}")]
    InvalidInput { error_message: String },
    /// The runtime failed or the wallet is moving; try again.
    #[error("{error_message}")]
    Unavailable { error_message: String },
}

impl From<CoreP2pError> for P2pError {
    fn from(error: CoreP2pError) -> Self {
        let error_message = error.to_string();
        match error {
            CoreP2pError::Transport(_) => Self::Transport { error_message },
            CoreP2pError::Stopped => Self::Stopped { error_message },
            CoreP2pError::Transfer(_) => Self::Transfer { error_message },
            CoreP2pError::NoAddress(_) => Self::NoAddress { error_message },
        }
    }
}

wallet_error_conversions!(P2pError);

/// What the app's [`crate::NfcChannel`] throws when a transceive fails.
/// Anything else it throws arrives as `Unexpected`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum NfcChannelError {
    /// The other phone left the field (Android `TagLostException`, iOS
    /// `NFCReaderError.readerTransceiveErrorTagConnectionLost`).
    #[error("tag lost: {error_message}")]
    TagLost { error_message: String },
    /// Any other I/O failure of the NFC stack.
    #[error("nfc i/o: {error_message}")]
    Io { error_message: String },
    /// The app's channel threw something it did not declare.
    #[error("nfc channel failed unexpectedly: {error_message}")]
    Unexpected { error_message: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for NfcChannelError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unexpected { error_message: error.reason }
    }
}

/// Why a phone-to-phone NFC tap stopped. Every step the engine took before
/// was persisted: tap again (or finish over libp2p).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum NfcTransferError {
    /// The app's channel failed (tag lost, I/O, an undeclared exception).
    #[error("{error_message}")]
    Channel { error_message: String },
    /// The other phone answered with an error status word or broke the APDU framing.
    #[error("{error_message}")]
    Card { error_message: String },
    /// The other phone is not a Tessera wallet.
    #[error("{error_message}")]
    UnknownProtocol { error_message: String },
    /// This wallet's engine refused the peer's message.
    #[error("{error_message}")]
    Transfer { error_message: String },
    /// The tap took more commands than any transfer needs.
    #[error("{error_message}")]
    TooManyCommands { error_message: String },
    /// The wallet cannot take calls now; try again.
    #[error("{error_message}")]
    Unavailable { error_message: String },
}

impl From<CoreNfcTransferError> for NfcTransferError {
    fn from(error: CoreNfcTransferError) -> Self {
        let error_message = error.to_string();
        match error {
            CoreNfcTransferError::Channel(_) => Self::Card { error_message },
            CoreNfcTransferError::UnknownProtocol => Self::UnknownProtocol { error_message },
            CoreNfcTransferError::Transfer(_) => Self::Transfer { error_message },
        }
    }
}

impl From<NfcChannelError> for NfcTransferError {
    fn from(error: NfcChannelError) -> Self {
        Self::Channel { error_message: error.to_string() }
    }
}

impl From<Unavailable> for NfcTransferError {
    fn from(error: Unavailable) -> Self {
        Self::Unavailable { error_message: error.0 }
    }
}

/// Why a registry call failed. The wallet changed only as far as the
/// registry confirmed (instruments endorsed to the registry stay pending
/// out until it answers, and the next sync settles them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum RegistryError {
    /// The registry refused the request: its HTTP status, its error code
    /// (`insufficient_funds`, `unknown_event`, …) and its explanation.
    #[error("{error_message}")]
    Refused { status: u16, code: String, error_message: String },
    /// The registry could not be reached or answered something unreadable.
    #[error("{error_message}")]
    Transport { error_message: String },
    /// The wallet refused or failed.
    #[error("{error_message}")]
    Wallet { error_message: String },
    /// The answer was not what the protocol allows.
    #[error("{error_message}")]
    BadAnswer { error_message: String },
    /// An argument from the app is malformed.
    #[error("{error_message}")]
    InvalidInput { error_message: String },
    /// The wallet cannot take calls now; try again.
    #[error("{error_message}")]
    Unavailable { error_message: String },
}

impl From<ClientError> for RegistryError {
    fn from(error: ClientError) -> Self {
        let error_message = error.to_string();
        match error {
            ClientError::Refused { status, body } => Self::Refused { status, code: body.error, error_message },
            ClientError::Transport(_) => Self::Transport { error_message },
            ClientError::Wallet(_) => Self::Wallet { error_message },
            ClientError::BadAnswer(_) => Self::BadAnswer { error_message },
        }
    }
}

wallet_error_conversions!(RegistryError);
