//! The wallet object apps hold: one per wallet file, safe to share across
//! threads (calls are serialised by a mutex; each is a short SQLite
//! transaction).

use crate::error::WalletError;
use crate::keystore::{Keystore, KeystoreKeyProvider};
use crate::types::{Balance, HistoryEntry, InstrumentSummary, VerifiedInstrument};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tessera_core::clock::SystemClock;
use tessera_core::store::SqliteStore;
use tessera_core::{InstrumentId, PublicKey};

/// Most history lines one call returns.
const MAX_HISTORY: u32 = 10_000;

/// A Tessera wallet stored in one SQLite file.
#[derive(uniffi::Object)]
pub struct Wallet {
    inner: Mutex<tessera_core::Wallet<SqliteStore>>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The core wallet's Debug shows only public facts (account key,
        // registry, trust list version); its sealer prints as redacted.
        match self.inner.try_lock() {
            Ok(inner) => f.debug_tuple("Wallet").field(&*inner).finish(),
            Err(_) => f.write_str("Wallet(<in use>)"),
        }
    }
}

fn parse_public_key(hex: &str) -> Result<PublicKey, WalletError> {
    PublicKey::from_hex(hex).map_err(|e| WalletError::invalid_input(e.to_string()))
}

fn parse_instrument_id(hex: &str) -> Result<InstrumentId, WalletError> {
    InstrumentId::from_hex(hex).map_err(|e| WalletError::invalid_input(e.to_string()))
}

impl Wallet {
    fn wrap(inner: tessera_core::Wallet<SqliteStore>) -> Arc<Self> {
        Arc::new(Self { inner: Mutex::new(inner) })
    }

    fn lock(&self) -> MutexGuard<'_, tessera_core::Wallet<SqliteStore>> {
        // Every change is one atomic store batch, so a panic in another call
        // cannot have left the wallet half-changed: carry on with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[uniffi::export]
impl Wallet {
    /// Creates a wallet in a new file at `path`; `keystore` supplies the key
    /// that seals its private keys.
    #[uniffi::constructor]
    pub fn create(path: String, keystore: Arc<dyn Keystore>) -> Result<Arc<Self>, WalletError> {
        let keys = KeystoreKeyProvider::new(keystore);
        Ok(Self::wrap(tessera_core::Wallet::create_at(path, &keys, Arc::new(SystemClock))?))
    }

    /// Opens the wallet at `path`. A storage key that does not open it is
    /// `WrongStorageKey`, and nothing is changed.
    #[uniffi::constructor]
    pub fn open(path: String, keystore: Arc<dyn Keystore>) -> Result<Arc<Self>, WalletError> {
        let keys = KeystoreKeyProvider::new(keystore);
        Ok(Self::wrap(tessera_core::Wallet::open_at(path, &keys, Arc::new(SystemClock))?))
    }

    /// The account key (hex): this wallet's identity at the registry.
    pub fn account_key(&self) -> String {
        self.lock().account_key().to_hex()
    }

    /// The pinned registry key (hex), if any.
    pub fn registry_key(&self) -> Option<String> {
        self.lock().registry_key().map(|k| k.to_hex())
    }

    /// The installed trust list's version, if any.
    pub fn trust_list_version(&self) -> Option<u64> {
        self.lock().trust_list().map(|t| t.version())
    }

    /// Pins the service provider's key (hex). Once pinned it cannot change.
    pub fn pin_registry(&self, key: String) -> Result<(), WalletError> {
        let key = parse_public_key(&key)?;
        Ok(self.lock().pin_registry(key)?)
    }

    /// Installs a trust list signed by the pinned registry.
    pub fn install_trust_list(&self, bytes: Vec<u8>) -> Result<(), WalletError> {
        Ok(self.lock().install_trust_list(&bytes)?)
    }

    /// Installs a deny list signed by the pinned registry.
    pub fn install_deny_list(&self, bytes: Vec<u8>) -> Result<(), WalletError> {
        Ok(self.lock().install_deny_list(&bytes)?)
    }

    /// Makes a fresh holder key (hex) for an issuer or sender to endorse an
    /// instrument to. Its private half never leaves the wallet.
    pub fn new_holder_key(&self) -> Result<String, WalletError> {
        Ok(self.lock().new_holder_key()?.to_hex())
    }

    /// Imports an encoded instrument issued or endorsed to one of this
    /// wallet's holder keys; it must pass the verifier.
    pub fn import(&self, bytes: Vec<u8>) -> Result<InstrumentSummary, WalletError> {
        Ok(self.lock().import(&bytes)?.into())
    }

    /// Tickets held or pending out.
    pub fn tickets(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.lock().tickets()?.into_iter().map(Into::into).collect())
    }

    /// Notes held or pending out.
    pub fn notes(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.lock().notes()?.into_iter().map(Into::into).collect())
    }

    /// Coupons held or pending out.
    pub fn coupons(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.lock().coupons()?.into_iter().map(Into::into).collect())
    }

    /// Money per currency.
    pub fn balance(&self) -> Result<Vec<Balance>, WalletError> {
        Ok(self.lock().balance()?.into_iter().map(Into::into).collect())
    }

    /// The newest `limit` history lines (at most 10 000), newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<HistoryEntry>, WalletError> {
        let limit = usize::try_from(limit.min(MAX_HISTORY)).unwrap_or(usize::MAX);
        Ok(self.lock().history(limit)?.into_iter().map(Into::into).collect())
    }

    /// Runs the verifier on a held instrument (id in hex), for this wallet's key.
    pub fn verify(&self, id: String) -> Result<VerifiedInstrument, WalletError> {
        let id = parse_instrument_id(&id)?;
        Ok(self.lock().verify(&id)?.into())
    }

    /// The encoded instrument (id in hex), to save or hand to another party.
    pub fn export(&self, id: String) -> Result<Vec<u8>, WalletError> {
        let id = parse_instrument_id(&id)?;
        Ok(self.lock().export(&id)?)
    }
}
