//! Keys, signatures, digests and the domain-separation contexts.
//!
//! Every signature covers `"tessera/v1/" ‖ context label ‖ 0x00 ‖ message`,
//! so bytes signed for one purpose (say, an endorsement) can never verify as
//! another (say, a gate challenge answer): DESIGN §4, property 3.

use crate::codec::fixed_bytes;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use sha2::Digest as _;
use zeroize::Zeroizing;

fixed_bytes!(
    /// An Ed25519 public key: an issuer, the registry, a gate, a merchant,
    /// an account or one instrument's holder.
    PublicKey,
    32
);
fixed_bytes!(
    /// An Ed25519 signature.
    Signature,
    64
);
fixed_bytes!(
    /// A SHA-256 digest of a structure's canonical encoding.
    Digest,
    32
);

/// What a signature is for. The label is part of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// An issuer creating an instrument.
    Genesis,
    /// A holder passing an instrument to a new holder key.
    Endorsement,
    /// The registry compacting a chain into a certificate.
    RegisteredCertificate,
    /// The registry certifying issuer, gate and merchant keys.
    TrustList,
    /// The registry publishing denied instruments.
    DenyList,
    /// A gate's challenge to a presenting wallet.
    GateChallenge,
    /// A holder answering a gate's challenge.
    Presentation,
    /// A gate certifying what it did with an instrument.
    ExaminationCertificate,
    /// A sender's transfer offer.
    Offer,
    /// A receiver's acceptance of an offer.
    Acceptance,
    /// A receiver's receipt closing an exchange.
    Receipt,
    /// A request to the registry's HTTP API.
    RegistryRequest,
    /// A gate's bag of examination records.
    Bag,
    /// A gate telling other gates that it used an instrument.
    UsedEvent,
    /// A holder proving control of a key outside any exchange.
    Possession,
    /// A sender's transfer certificate: the envelope of the endorsements
    /// that hand an exchange's instruments (and change) over.
    TransferCertificate,
    /// A receiver declining an offer.
    Decline,
}

impl Context {
    /// Every context, for tests that check they are all distinct.
    pub const ALL: [Context; 17] = [
        Context::Genesis,
        Context::Endorsement,
        Context::RegisteredCertificate,
        Context::TrustList,
        Context::DenyList,
        Context::GateChallenge,
        Context::Presentation,
        Context::ExaminationCertificate,
        Context::Offer,
        Context::Acceptance,
        Context::Receipt,
        Context::RegistryRequest,
        Context::Bag,
        Context::UsedEvent,
        Context::Possession,
        Context::TransferCertificate,
        Context::Decline,
    ];

    /// The label mixed into the signed bytes.
    pub fn label(self) -> &'static str {
        match self {
            Context::Genesis => "genesis",
            Context::Endorsement => "endorsement",
            Context::RegisteredCertificate => "registered-certificate",
            Context::TrustList => "trust-list",
            Context::DenyList => "deny-list",
            Context::GateChallenge => "gate-challenge",
            Context::Presentation => "presentation",
            Context::ExaminationCertificate => "examination-certificate",
            Context::Offer => "offer",
            Context::Acceptance => "acceptance",
            Context::Receipt => "receipt",
            Context::RegistryRequest => "registry-request",
            Context::Bag => "bag",
            Context::UsedEvent => "used-event",
            Context::Possession => "possession",
            Context::TransferCertificate => "transfer-certificate",
            Context::Decline => "decline",
        }
    }

    /// The exact bytes a signature under this context covers.
    pub fn signed_bytes(self, message: &[u8]) -> Vec<u8> {
        let label = self.label().as_bytes();
        let mut out = Vec::with_capacity(12 + label.len() + message.len());
        out.extend_from_slice(b"tessera/v1/");
        out.extend_from_slice(label);
        out.push(0);
        out.extend_from_slice(message);
        out
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not a valid Ed25519 point.
    #[error("the public key is not a valid Ed25519 key")]
    InvalidKey,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Invalid,
}

impl PublicKey {
    /// Checks `signature` over `message` under `context`, strictly (no
    /// malleable signatures, no small-order keys).
    pub fn verify(&self, context: Context, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(&context.signed_bytes(message), &sig).map_err(|_| SignatureError::Invalid)
    }

    /// A short form for people: the first 8 hex digits.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl Digest {
    /// The digest of a structure's canonical bytes. The prefix keeps these
    /// digests apart from any other SHA-256 use.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(b"tessera/v1/digest\0");
        h.update(bytes);
        Self(h.finalize().into())
    }
}

/// An Ed25519 private key. Zeroized on drop; `Debug` never shows it.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self(SigningKey::generate(rng))
    }
    /// Rebuilds a key from its 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(bytes))
    }
    /// The 32 secret bytes, in a buffer that is zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    /// Signs `message` under `context`.
    pub fn sign(&self, context: Context, message: &[u8]) -> Signature {
        Signature(self.0.sign(&context.signed_bytes(message)).to_bytes())
    }
}

// `SigningKey` (ed25519-dalek with `zeroize`) wipes its secret when dropped,
// so a `SecretKey` does too; the marker lets tests and callers require it.
impl zeroize::ZeroizeOnDrop for SecretKey {}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

/// Why a signer could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The key is not available (keystore locked, key deleted, user refused).
    #[error("signing key unavailable: {0}")]
    Unavailable(String),
    /// The platform signer failed.
    #[error("signer failed: {0}")]
    Failed(String),
}

/// Anything that can sign for one public key: a key in memory, a platform
/// keystore, a hardware token. Protocols sign only through this trait.
pub trait Signer {
    /// The key signatures will verify under.
    fn public_key(&self) -> PublicKey;
    /// Signs `message` under `context`.
    fn sign(&self, context: Context, message: &[u8]) -> Result<Signature, SignerError>;
}

/// A signer holding its key in process memory.
#[derive(Debug)]
pub struct LocalSigner {
    key: SecretKey,
    public: PublicKey,
}

impl LocalSigner {
    /// Wraps a secret key.
    pub fn new(key: SecretKey) -> Self {
        let public = key.public_key();
        Self { key, public }
    }
    /// A signer with a fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self::new(SecretKey::generate(rng))
    }
    /// A signer whose key is derived from a seed: for test vectors and
    /// reproducible simulations only, never for real keys.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::new(SecretKey::from_bytes(seed))
    }
    /// The secret key, for sealing into a store.
    pub fn secret(&self) -> &SecretKey {
        &self.key
    }
}

impl Signer for LocalSigner {
    fn public_key(&self) -> PublicKey {
        self.public
    }
    fn sign(&self, context: Context, message: &[u8]) -> Result<Signature, SignerError> {
        Ok(self.key.sign(context, message))
    }
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
    fn sign(&self, context: Context, message: &[u8]) -> Result<Signature, SignerError> {
        (**self).sign(context, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_debug_is_redacted() {
        let signer = LocalSigner::from_seed(&[7u8; 32]);
        let shown = format!("{signer:?}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
        assert!(!shown.contains(&hex::encode([7u8; 32])), "{shown}");
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<_> = Context::ALL.iter().map(|c| c.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Context::ALL.len());
    }

    #[test]
    fn signature_binds_context() {
        let signer = LocalSigner::from_seed(&[1u8; 32]);
        let sig = signer.key.sign(Context::Offer, b"hello");
        assert_eq!(signer.public.verify(Context::Offer, b"hello", &sig), Ok(()));
        for other in Context::ALL.iter().filter(|c| **c != Context::Offer) {
            assert_eq!(signer.public.verify(*other, b"hello", &sig), Err(SignatureError::Invalid));
        }
    }
}
