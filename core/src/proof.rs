//! Proofs of equivocation: two different endorsements of the same
//! (instrument, sequence) signed by the same key. Offline, nothing stops a
//! holder from signing twice; this proof makes it attributable to that key,
//! and anyone can check it with nothing but the two links.

use crate::codec::Wire;
use crate::crypto::PublicKey;
use crate::ids::InstrumentId;
use crate::instrument::{Endorsement, Instrument, Signed};
use minicbor::{Decode, Encode};

/// Why two endorsements do not make a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The endorsements are of different instruments.
    #[error("the endorsements are of different instruments")]
    DifferentInstruments,
    /// The endorsements have different sequence numbers.
    #[error("the endorsements have different sequence numbers")]
    DifferentSequences,
    /// The two endorsements say the same thing (their signatures may differ).
    #[error("the two endorsements are identical")]
    Identical,
    /// The endorsements are not in digest order, so the same conflict would
    /// have two encodings.
    #[error("the endorsements are not in canonical (digest) order")]
    NotCanonical,
    /// One endorsement does not verify under the named signer.
    #[error("endorsement {0} is not signed by the named signer")]
    NotSignedBy(u8),
}

/// Two conflicting endorsements and the key that signed both.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct EquivocationProof {
    /// The key that signed twice.
    #[n(0)]
    pub signer: PublicKey,
    /// The endorsement with the smaller digest.
    #[n(1)]
    pub first: Signed<Endorsement>,
    /// The endorsement with the larger digest.
    #[n(2)]
    pub second: Signed<Endorsement>,
}

impl Wire for EquivocationProof {
    const NAME: &'static str = "equivocation proof";
    const MAX_LEN: usize = 1024;
}

impl EquivocationProof {
    /// Builds and checks a proof. The order of `a` and `b` does not matter:
    /// the same two endorsements always give the same proof.
    pub fn new(signer: PublicKey, a: Signed<Endorsement>, b: Signed<Endorsement>) -> Result<Self, ProofError> {
        let (first, second) = if a.digest() <= b.digest() { (a, b) } else { (b, a) };
        let proof = Self { signer, first, second };
        proof.verify()?;
        Ok(proof)
    }

    /// Checks the proof; returns the key that signed twice.
    pub fn verify(&self) -> Result<PublicKey, ProofError> {
        let (a, b) = (&self.first.body, &self.second.body);
        if a.instrument_id != b.instrument_id {
            return Err(ProofError::DifferentInstruments);
        }
        if a.sequence != b.sequence {
            return Err(ProofError::DifferentSequences);
        }
        // Compare bodies, not signatures: a signer with randomised nonces
        // (some platform keystores) gives two signatures over one body, and
        // signing the same endorsement twice is not a double transfer.
        if a == b {
            return Err(ProofError::Identical);
        }
        // One conflict, one proof: the registry stores and compares proofs
        // by their bytes.
        if self.first.digest() > self.second.digest() {
            return Err(ProofError::NotCanonical);
        }
        self.first.verify(&self.signer).map_err(|_| ProofError::NotSignedBy(1))?;
        self.second.verify(&self.signer).map_err(|_| ProofError::NotSignedBy(2))?;
        Ok(self.signer)
    }

    /// The instrument concerned.
    pub fn instrument_id(&self) -> InstrumentId {
        self.first.body.instrument_id
    }

    /// The sequence signed twice.
    pub fn sequence(&self) -> u32 {
        self.first.body.sequence
    }

    /// Finds where two copies of one instrument fork and, if the fork is two
    /// links signed by the same holder, returns the proof. Both copies must
    /// already have passed the verifier, so each link is signed by the
    /// holder before it.
    pub fn find(a: &Instrument, b: &Instrument) -> Option<Self> {
        if a.id() != b.id() {
            return None;
        }
        let signer_before = |inst: &Instrument, seq: u32| -> Option<PublicKey> {
            let mut holder = inst.genesis.body.holder;
            let mut at = 0u32;
            if let Some(cert) = &inst.registered {
                holder = cert.body.holder;
                at = cert.body.sequence;
            }
            // Checked: unverified copies may carry sequences at u32::MAX.
            if at.checked_add(1) == Some(seq) {
                return Some(holder);
            }
            inst.links.iter().find(|l| l.body.sequence.checked_add(1) == Some(seq)).map(|l| l.body.new_holder)
        };
        for la in &a.links {
            let Some(lb) = b.links.iter().find(|l| l.body.sequence == la.body.sequence) else {
                continue;
            };
            if la.body == lb.body {
                continue;
            }
            let seq = la.body.sequence;
            let signer = signer_before(a, seq)?;
            if signer_before(b, seq) != Some(signer) {
                return None;
            }
            return Self::new(signer, la.clone(), lb.clone()).ok();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::LocalSigner;
    use crate::ids::ExchangeId;
    use crate::instrument::Signed;
    use crate::{Digest, Signer};

    #[test]
    fn swapped_links_are_not_a_second_form_of_the_proof() {
        let holder = LocalSigner::from_seed(&[4; 32]);
        let link = |to: u8| {
            let body = Endorsement {
                instrument_id: InstrumentId([1; 16]),
                sequence: 1,
                previous: Digest([0; 32]),
                new_holder: PublicKey([to; 32]),
                offer_id: ExchangeId::NONE,
                acceptance_id: ExchangeId::NONE,
                time: 5,
            };
            Signed::sign(body, &holder).expect("signs")
        };
        let proof = EquivocationProof::new(holder.public_key(), link(7), link(8)).expect("conflict");
        assert_eq!(proof.verify(), Ok(holder.public_key()));
        let swapped =
            EquivocationProof { signer: proof.signer, first: proof.second.clone(), second: proof.first.clone() };
        assert_eq!(swapped.verify(), Err(ProofError::NotCanonical));
        assert_eq!(
            EquivocationProof::from_bytes(&swapped.to_bytes()).map(|p| p.verify()),
            Ok(Err(ProofError::NotCanonical))
        );
    }
}
