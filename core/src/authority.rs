//! The signing side of issuers and the registry: creating instruments,
//! certifying keys, compacting chains. The registry service and the demo use
//! these; wallets never do.

use crate::clock::Timestamp;
use crate::crypto::{PublicKey, Signer, SignerError};
use crate::ids::InstrumentId;
use crate::instrument::{Attributes, Genesis, Instrument, InstrumentState, RegisteredCertificate, Signed};
use crate::trust::{DenyList, TrustEntry, TrustListBody};
use crate::verify::VerifiedInstrument;
use rand_core::{CryptoRng, RngCore};

/// An issuer: an event organiser or an e-money issuer.
#[derive(Debug)]
pub struct Issuer<S: Signer> {
    signer: S,
}

impl<S: Signer> Issuer<S> {
    /// An issuer signing with `signer`.
    pub fn new(signer: S) -> Self {
        Self { signer }
    }
    /// The issuer key to certify in the trust list.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }
    /// Issues an instrument to `holder`, a key generated in the holder's wallet.
    pub fn issue(
        &self,
        attributes: Attributes,
        holder: PublicKey,
        now: Timestamp,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Instrument, SignerError> {
        self.issue_with_id(InstrumentId::random(rng), attributes, holder, now)
    }
    /// Issues with a chosen id (test vectors, replays).
    pub fn issue_with_id(
        &self,
        instrument_id: InstrumentId,
        attributes: Attributes,
        holder: PublicKey,
        now: Timestamp,
    ) -> Result<Instrument, SignerError> {
        let genesis = Genesis { instrument_id, issuer: self.signer.public_key(), holder, issued_at: now, attributes };
        Ok(Instrument::issued(Signed::sign(genesis, &self.signer)?))
    }
}

/// The registry (service provider) as a signer.
#[derive(Debug)]
pub struct RegistryAuthority<S: Signer> {
    signer: S,
}

impl<S: Signer> RegistryAuthority<S> {
    /// The registry signing with `signer`.
    pub fn new(signer: S) -> Self {
        Self { signer }
    }
    /// The registry key wallets and gates pin.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }
    /// Signs a trust list.
    pub fn trust_list(
        &self,
        version: u64,
        entries: Vec<TrustEntry>,
        now: Timestamp,
    ) -> Result<Signed<TrustListBody>, SignerError> {
        let body = TrustListBody { registry: self.signer.public_key(), version, issued_at: now, entries };
        Signed::sign(body, &self.signer)
    }
    /// Signs a deny list.
    pub fn deny_list(&self, list: DenyList) -> Result<Signed<DenyList>, SignerError> {
        Signed::sign(list, &self.signer)
    }
    /// Compacts a verified instrument into a registered certificate for its
    /// current holder: the returned instrument carries no links.
    pub fn register(
        &self,
        instrument: &Instrument,
        verified: &VerifiedInstrument,
        state: InstrumentState,
        now: Timestamp,
    ) -> Result<Instrument, SignerError> {
        let body = RegisteredCertificate {
            instrument_id: verified.id,
            genesis: instrument.genesis.digest(),
            sequence: verified.sequence,
            replaces: verified.tip,
            holder: verified.holder,
            state,
            issued_at: now,
        };
        Ok(Instrument {
            genesis: instrument.genesis.clone(),
            registered: Some(Signed::sign(body, &self.signer)?),
            links: Vec::new(),
        })
    }
}
