//! Errors as the apps see them: one enum per domain, every variant carrying
//! the core's explanation in `error_message`.
//!
//! Kotlin gets `WalletException.WrongStorageKey(errorMessage)` and so on,
//! Swift `WalletError.WrongStorageKey(errorMessage:)`. The variants mirror
//! `tessera_core::WalletError` so an app can react to the ones it handles
//! (a wrong storage key, an instrument that is not ours) and show the text
//! of the rest.

use tessera_core::wallet::WalletError as CoreWalletError;

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
            | Self::InvalidInput { error_message } => error_message,
        }
    }

    pub(crate) fn invalid_input(error_message: impl Into<String>) -> Self {
        Self::InvalidInput { error_message: error_message.into() }
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
