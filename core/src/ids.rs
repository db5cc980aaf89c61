//! Random identifiers.

use crate::codec::fixed_bytes;
use crate::crypto::{Digest, PublicKey};
use rand_core::{CryptoRng, RngCore};

fixed_bytes!(
    /// Names one instrument for its whole life, from genesis on.
    InstrumentId,
    16
);
fixed_bytes!(
    /// Names one step of one exchange (an offer, an acceptance, a challenge),
    /// so that nothing signed in one exchange can be replayed into another.
    ExchangeId,
    16
);

impl InstrumentId {
    /// A fresh random id.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

impl ExchangeId {
    /// A fresh random id.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }
    /// The all-zero id, used where an endorsement was made outside any
    /// exchange (a registry-mediated step).
    pub const NONE: Self = Self([0u8; 16]);

    /// The offer id of an endorsement that gives an instrument back to the
    /// registry's issuer key for `account` (a payment, refund, redemption,
    /// refresh or gift through the registry). The registry credits such an
    /// endorsement only to the account it names, so its bytes are worth
    /// nothing to whoever copies them from a request.
    pub fn returned_by(account: &PublicKey) -> Self {
        let digest = Digest::of(&[b"returned-by\0".as_slice(), account.as_bytes()].concat());
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest.as_bytes()[..16]);
        Self(b)
    }
}
