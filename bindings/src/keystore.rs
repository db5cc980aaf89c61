//! The platform keystore the app implements, and its bridge to the core's
//! [`KeyProvider`].
//!
//! The core seals every private key under a 256-bit storage key and never
//! stores that key. On Android the app keeps it wrapped by an Android
//! Keystore key (or derives it there); on iOS in the Keychain or wrapped by
//! the Secure Enclave. [`generate_storage_key`] makes a fresh one for the app
//! to wrap when it creates a wallet.

use crate::error::KeystoreError;
use rand::RngCore;
use rand::rngs::OsRng;
use std::sync::Arc;
use tessera_core::sealing::{KeyProvider, KeyProviderError, StorageKey};
use zeroize::{Zeroize, Zeroizing};

/// Length of a storage key in bytes.
const STORAGE_KEY_LEN: usize = 32;

/// The platform keystore, implemented by the app.
#[uniffi::export(with_foreign)]
pub trait Keystore: Send + Sync {
    /// The 32-byte storage key of the wallet with this salt (16 random
    /// bytes stored in the wallet in the clear: use it as a key alias or a
    /// KDF salt, or ignore it). Called once per open or create.
    fn storage_key(&self, wallet_salt: Vec<u8>) -> Result<Vec<u8>, KeystoreError>;
}

/// A fresh random storage key, for the app to wrap with its platform
/// keystore before it creates a wallet.
#[uniffi::export]
pub fn generate_storage_key() -> Vec<u8> {
    let mut key = vec![0u8; STORAGE_KEY_LEN];
    OsRng.fill_bytes(&mut key);
    key
}

/// The core's [`KeyProvider`] over an app's [`Keystore`].
pub struct KeystoreKeyProvider {
    keystore: Arc<dyn Keystore>,
}

impl KeystoreKeyProvider {
    /// A provider asking `keystore`.
    pub fn new(keystore: Arc<dyn Keystore>) -> Self {
        Self { keystore }
    }
}

impl std::fmt::Debug for KeystoreKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeystoreKeyProvider([REDACTED])")
    }
}

impl KeyProvider for KeystoreKeyProvider {
    fn storage_key(&self, wallet_salt: &[u8; 16]) -> Result<StorageKey, KeyProviderError> {
        let mut bytes = Zeroizing::new(
            self.keystore
                .storage_key(wallet_salt.to_vec())
                .map_err(|e| KeyProviderError::Unavailable(e.to_string()))?,
        );
        let key: Result<[u8; STORAGE_KEY_LEN], _> = bytes.as_slice().try_into();
        let len = bytes.len();
        bytes.zeroize();
        match key {
            Ok(mut raw) => {
                let key = StorageKey::from_bytes(raw);
                raw.zeroize();
                Ok(key)
            }
            // Say how long it was, never what it held.
            Err(_) => Err(KeyProviderError::Unavailable(format!(
                "the keystore returned {len} bytes, a storage key has {STORAGE_KEY_LEN}"
            ))),
        }
    }
}
