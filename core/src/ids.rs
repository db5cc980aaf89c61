//! Random identifiers.

use crate::codec::fixed_bytes;
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
    /// exchange (issuance back to the issuer, a registry-mediated step).
    pub const NONE: Self = Self([0u8; 16]);
}
