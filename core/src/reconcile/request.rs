//! Signed requests to the registry's HTTP API.
//!
//! Every state-changing request carries the caller's key, a timestamp, a
//! fresh nonce and a signature under [`Context::RegistryRequest`] over
//!
//! ```text
//! "tessera-request\n" ‖ METHOD ‖ "\n" ‖ path ‖ "\n" ‖ hex(Digest::of(body)) ‖ "\n" ‖ time ‖ "\n" ‖ hex(nonce)
//! ```
//!
//! The registry refuses a request whose time is outside its freshness
//! window or whose `(key, nonce)` it has seen, so a captured request can be
//! neither replayed nor moved to another path or body.

use crate::clock::Timestamp;
use crate::crypto::{Context, Digest, PublicKey, Signature, Signer, SignerError};
use rand_core::{CryptoRng, RngCore};

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 16;

/// The authentication a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// The caller's key (an account, issuer, gate, merchant or the registry).
    pub key: PublicKey,
    /// When it was signed.
    pub time: Timestamp,
    /// Fresh random bytes.
    pub nonce: [u8; NONCE_LEN],
    /// The signature.
    pub signature: Signature,
}

/// The exact bytes a request signature covers.
pub fn request_message(method: &str, path: &str, body: &[u8], time: Timestamp, nonce: &[u8]) -> Vec<u8> {
    format!(
        "tessera-request\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        Digest::of(body).to_hex(),
        time,
        hex::encode(nonce)
    )
    .into_bytes()
}

/// Signs a request.
pub fn sign_request(
    signer: &impl Signer,
    method: &str,
    path: &str,
    body: &[u8],
    time: Timestamp,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<RequestSignature, SignerError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let signature = signer.sign(Context::RegistryRequest, &request_message(method, path, body, time, &nonce))?;
    Ok(RequestSignature { key: signer.public_key(), time, nonce, signature })
}

/// Why a request's authentication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestAuthError {
    /// The signature does not verify over this method, path and body.
    #[error("the request signature does not verify")]
    BadSignature,
    /// The timestamp is outside the freshness window.
    #[error("the request was signed at {time}, outside {window} s of {now}")]
    Stale {
        /// The request's time.
        time: Timestamp,
        /// The registry's time.
        now: Timestamp,
        /// The window.
        window: u64,
    },
}

impl RequestSignature {
    /// Checks signature and freshness (the nonce is checked by whoever
    /// stores nonces).
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        now: Timestamp,
        window: u64,
    ) -> Result<(), RequestAuthError> {
        if self.time.abs_diff(now) > window {
            return Err(RequestAuthError::Stale { time: self.time, now, window });
        }
        self.key
            .verify(
                Context::RegistryRequest,
                &request_message(method, path, body, self.time, &self.nonce),
                &self.signature,
            )
            .map_err(|_| RequestAuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::LocalSigner;

    #[test]
    fn binds_method_path_body_and_time() {
        let signer = LocalSigner::from_seed(&[3; 32]);
        let sig = sign_request(&signer, "POST", "/reconcile", b"{}", 1000, &mut rand::rngs::OsRng).unwrap();
        assert_eq!(sig.verify("POST", "/reconcile", b"{}", 1000, 300), Ok(()));
        assert_eq!(sig.verify("POST", "/reconcile", b"{} ", 1000, 300), Err(RequestAuthError::BadSignature));
        assert_eq!(sig.verify("POST", "/money/redeem", b"{}", 1000, 300), Err(RequestAuthError::BadSignature));
        assert_eq!(sig.verify("PUT", "/reconcile", b"{}", 1000, 300), Err(RequestAuthError::BadSignature));
        assert!(matches!(sig.verify("POST", "/reconcile", b"{}", 1400, 300), Err(RequestAuthError::Stale { .. })));
        // The same bytes signed for another purpose do not verify.
        let msg = request_message("POST", "/reconcile", b"{}", 1000, &sig.nonce);
        let other = signer.sign(Context::Offer, &msg).unwrap();
        let forged = RequestSignature { signature: other, ..sig };
        assert_eq!(forged.verify("POST", "/reconcile", b"{}", 1000, 300), Err(RequestAuthError::BadSignature));
    }
}
