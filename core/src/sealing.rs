//! Secrets at rest. Private keys are sealed with ChaCha20-Poly1305 under a
//! storage key that the embedding app supplies through [`KeyProvider`]
//! (Android Keystore, iOS Keychain, a passphrase, a key file). Stores only
//! ever see sealed bytes, so no store implementation can leak a key.

use crate::crypto::{PublicKey, SecretKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// A 256-bit key that seals secrets. Zeroized on drop, never shown.
pub struct StorageKey(Zeroizing<[u8; 32]>);

impl StorageKey {
    /// Wraps raw key bytes (for example unwrapped by a platform keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        Self(k)
    }
    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

// The bytes sit in `Zeroizing`, which wipes them when dropped.
impl zeroize::ZeroizeOnDrop for StorageKey {}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey([REDACTED])")
    }
}

/// Why no storage key could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProviderError {
    /// The provider could not produce the key (keystore locked, file missing).
    #[error("storage key unavailable: {0}")]
    Unavailable(String),
}

/// Supplies the key that seals a wallet's secrets.
///
/// `wallet_salt` is random, created with the wallet and stored in it in the
/// clear: a passphrase provider uses it as the KDF salt, a keystore provider
/// may use it as a key alias or ignore it.
pub trait KeyProvider: Send + Sync {
    /// The storage key for the wallet with this salt.
    fn storage_key(&self, wallet_salt: &[u8; 16]) -> Result<StorageKey, KeyProviderError>;
}

/// A provider that holds the key itself (already unwrapped by the platform).
pub struct StaticKeyProvider(StorageKey);

impl StaticKeyProvider {
    /// A provider returning `key`.
    pub fn new(key: StorageKey) -> Self {
        Self(key)
    }
}

impl std::fmt::Debug for StaticKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticKeyProvider([REDACTED])")
    }
}

impl KeyProvider for StaticKeyProvider {
    fn storage_key(&self, _wallet_salt: &[u8; 16]) -> Result<StorageKey, KeyProviderError> {
        Ok(StorageKey::from_bytes(*self.0.bytes()))
    }
}

/// Derives the storage key from a passphrase with Argon2id.
pub struct PassphraseKeyProvider {
    passphrase: Zeroizing<String>,
    params: argon2::Params,
}

impl PassphraseKeyProvider {
    /// Argon2id with 19 MiB, 2 passes, 1 lane (the OWASP baseline).
    pub fn new(passphrase: impl Into<String>) -> Self {
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default();
        Self { passphrase: Zeroizing::new(passphrase.into()), params }
    }
}

impl std::fmt::Debug for PassphraseKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassphraseKeyProvider([REDACTED])")
    }
}

impl KeyProvider for PassphraseKeyProvider {
    fn storage_key(&self, wallet_salt: &[u8; 16]) -> Result<StorageKey, KeyProviderError> {
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, self.params.clone());
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(self.passphrase.as_bytes(), wallet_salt, out.as_mut())
            .map_err(|e| KeyProviderError::Unavailable(format!("argon2: {e}")))?;
        Ok(StorageKey(out))
    }
}

/// Reads the storage key from a file holding 64 hex digits.
#[derive(Debug, Clone)]
pub struct KeyFileProvider {
    path: std::path::PathBuf,
}

impl KeyFileProvider {
    /// A provider reading `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }
    /// Writes a fresh random key file that only its owner can read.
    pub fn create(path: impl Into<std::path::PathBuf>, rng: &mut (impl RngCore + CryptoRng)) -> std::io::Result<Self> {
        let path = path.into();
        let key = StorageKey::generate(rng);
        let text = Zeroizing::new(hex::encode(key.bytes()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&path)?, text.as_bytes())?;
        Ok(Self { path })
    }
}

impl KeyProvider for KeyFileProvider {
    fn storage_key(&self, _wallet_salt: &[u8; 16]) -> Result<StorageKey, KeyProviderError> {
        let text = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(|e| {
            KeyProviderError::Unavailable(format!("cannot read key file {}: {e}", self.path.display()))
        })?);
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut()).map_err(|_| {
            KeyProviderError::Unavailable(format!("key file {} must hold 64 hex digits", self.path.display()))
        })?;
        Ok(StorageKey(key))
    }
}

/// Why a sealed secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Wrong storage key, or the sealed bytes were altered.
    #[error("the sealed secret does not open with this storage key")]
    CannotOpen,
}

/// Seals and opens secrets under one storage key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

const NONCE_LEN: usize = 12;

impl Sealer {
    /// A sealer for `key`.
    pub fn new(key: &StorageKey) -> Self {
        Self { cipher: ChaCha20Poly1305::new(Key::from_slice(key.bytes())) }
    }

    /// Seals `plaintext`, bound to `label` (what it is and whose it is), so a
    /// sealed value cannot be moved to another row. Output: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, label: &[u8], plaintext: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption only fails for inputs over 256 GiB.
        if let Ok(ct) = self.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: label }) {
            out.extend_from_slice(&ct);
        }
        out
    }

    /// Opens what [`Sealer::seal`] produced with the same label.
    pub fn open(&self, label: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(SealError::CannotOpen);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: label })
            .map(Zeroizing::new)
            .map_err(|_| SealError::CannotOpen)
    }

    /// Seals a private key, bound to its public key.
    pub fn seal_key(&self, key: &SecretKey, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        self.seal(&key_label(&key.public_key()), key.to_bytes().as_ref(), rng)
    }

    /// Opens a sealed private key and checks it matches `public`.
    pub fn open_key(&self, public: &PublicKey, sealed: &[u8]) -> Result<SecretKey, SealError> {
        let bytes = self.open(&key_label(public), sealed)?;
        let arr: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| SealError::CannotOpen)?;
        let key = SecretKey::from_bytes(arr);
        if key.public_key() != *public {
            return Err(SealError::CannotOpen);
        }
        Ok(key)
    }
}

fn key_label(public: &PublicKey) -> Vec<u8> {
    let mut label = b"tessera/v1/sealed-key\0".to_vec();
    label.extend_from_slice(public.as_bytes());
    label
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn seal_round_trip_and_binding() {
        let sealer = Sealer::new(&StorageKey::generate(&mut OsRng));
        let key = SecretKey::generate(&mut OsRng);
        let sealed = sealer.seal_key(&key, &mut OsRng);
        assert!(!sealed.windows(32).any(|w| w == key.to_bytes().as_ref()));
        let opened = sealer.open_key(&key.public_key(), &sealed).expect("opens");
        assert_eq!(opened.public_key(), key.public_key());
        let other = SecretKey::generate(&mut OsRng).public_key();
        assert_eq!(sealer.open_key(&other, &sealed).err(), Some(SealError::CannotOpen));
        let wrong = Sealer::new(&StorageKey::generate(&mut OsRng));
        assert_eq!(wrong.open_key(&key.public_key(), &sealed).err(), Some(SealError::CannotOpen));
    }

    #[test]
    fn passphrase_provider_is_deterministic_per_salt() {
        let p = PassphraseKeyProvider::new("correct horse");
        let a = p.storage_key(&[1; 16]).expect("derives");
        let b = p.storage_key(&[1; 16]).expect("derives");
        let c = p.storage_key(&[2; 16]).expect("derives");
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert_eq!(format!("{a:?}"), "StorageKey([REDACTED])");
        assert!(format!("{p:?}").contains("[REDACTED]"));
    }
}
