//! Bags: how a gate hands its examination records to the registry (seed 001:
//! the "money bag" with a single-use bag number; DESIGN §3.2).
//!
//! A bag is signed by the gate under [`Context::Bag`]. Its number is used
//! once per gate: the gate allocates it (and persists the allocation) before
//! the bag leaves, and the registry refuses a number it has already settled
//! for that gate. Each entry carries what the registry needs to replay the
//! examination without trusting the gate alone: the holder-signed answer
//! (which binds the challenge digest and the state change), the gate's
//! certificate, and the instrument as presented (the chain may hold
//! transfers the registry has not seen yet).
//!
//! ```text
//!  gate: records ──pack (number n, persisted)──▶ Signed<BagBody> ──upload──▶ registry
//!                                                    registry refuses: number n reused,
//!                                                    an entry twice, an entry already settled
//! ```

use super::{ExaminationBody, Outcome, PresentationBody};
use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::{Context, PublicKey};
use crate::instrument::{Instrument, Signed, SignedBody};
use minicbor::{Decode, Encode};

/// The most entries one bag carries.
pub const MAX_BAG_ENTRIES: usize = 512;

/// One examination, as the registry replays it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct BagEntry {
    /// The instrument as presented.
    #[n(0)]
    pub instrument: Instrument,
    /// The holder's signed answer to the gate's challenge.
    #[n(1)]
    pub answer: Signed<PresentationBody>,
    /// The gate's signed certificate of what it decided.
    #[n(2)]
    pub certificate: Signed<ExaminationBody>,
}

/// A gate's bag of examination records.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct BagBody {
    /// The gate's key (certified with role gate in the trust list).
    #[n(0)]
    pub gate: PublicKey,
    /// Single-use per gate, increasing.
    #[n(1)]
    pub bag_number: u64,
    /// When it was packed.
    #[n(2)]
    pub packed_at: Timestamp,
    /// The records, oldest first.
    #[n(3)]
    pub entries: Vec<BagEntry>,
}

impl SignedBody for BagBody {
    const CONTEXT: Context = Context::Bag;
}

impl Wire for Signed<BagBody> {
    const NAME: &'static str = "bag";
    /// 512 entries of ≈ 1 KB each (a registered ticket's presentation and
    /// certificate), with room for a few longer chains.
    const MAX_LEN: usize = 2 * 1024 * 1024;
}

/// Why a bag is not self-consistent. The registry checks these first, then
/// its own duties (gate certified, number unused, entries unsettled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BagError {
    /// The gate's signature over the bag does not verify.
    #[error("the bag's signature does not verify under its gate key")]
    BadSignature,
    /// More entries than [`MAX_BAG_ENTRIES`].
    #[error("the bag holds {0} entries, over {MAX_BAG_ENTRIES}")]
    TooManyEntries(usize),
    /// An entry's certificate is not this gate's, or does not verify.
    #[error("entry {0}: the certificate is not signed by the bag's gate")]
    ForeignCertificate(usize),
    /// An entry's certificate does not name its answer or instrument.
    #[error("entry {0}: the certificate does not match the answer")]
    Mismatch(usize),
    /// An entry's answer is not signed by the instrument's holder key.
    #[error("entry {0}: the answer is not signed by the instrument's holder")]
    BadAnswer(usize),
    /// The same certificate twice in one bag.
    #[error("entry {0} repeats an earlier entry")]
    Duplicate(usize),
}

impl Signed<BagBody> {
    /// Checks the bag on its own: the gate's signatures, each entry's
    /// binding of certificate to answer to instrument, and no repeats.
    /// The instruments themselves go through the registry's `Verifier`.
    pub fn check(&self) -> Result<(), BagError> {
        let bag = &self.body;
        self.verify(&bag.gate).map_err(|_| BagError::BadSignature)?;
        if bag.entries.len() > MAX_BAG_ENTRIES {
            return Err(BagError::TooManyEntries(bag.entries.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, e) in bag.entries.iter().enumerate() {
            let c = &e.certificate.body;
            if c.gate != bag.gate || e.certificate.verify(&bag.gate).is_err() {
                return Err(BagError::ForeignCertificate(i));
            }
            if c.presentation != e.answer.digest()
                || c.challenge != e.answer.body.challenge
                || c.instrument_id != e.answer.body.instrument_id
                || e.instrument.id() != c.instrument_id
                || c.counter != e.answer.body.counter
            {
                return Err(BagError::Mismatch(i));
            }
            if e.answer.verify(&e.instrument.holder()).is_err() {
                return Err(BagError::BadAnswer(i));
            }
            if !seen.insert(e.certificate.digest()) {
                return Err(BagError::Duplicate(i));
            }
        }
        Ok(())
    }

    /// The admitted entries: the ones that changed an instrument's state.
    pub fn admissions(&self) -> impl Iterator<Item = &BagEntry> {
        self.body.entries.iter().filter(|e| e.certificate.body.outcome == Outcome::Admitted)
    }
}
