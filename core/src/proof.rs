//! Proofs that a holder key cheated, each made of the key's own signed
//! statements so that anyone can check it offline with nothing else:
//!
//! - [`EquivocationProof`]: two different endorsements of the same
//!   (instrument, sequence) — a double transfer or double spend.
//! - [`UsedAfterTransferProof`]: a presentation of sequence *n* at a gate,
//!   dated after the same key's endorsement moving sequence *n* on — a
//!   stale copy presented after it was passed on.

use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::PublicKey;
use crate::ids::InstrumentId;
use crate::instrument::{Endorsement, Instrument, Signed};
use crate::presentation::{MAX_CLOCK_SKEW, PresentationBody};
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
        for la in &a.links {
            let Some(lb) = b.links.iter().find(|l| l.body.sequence == la.body.sequence) else {
                continue;
            };
            if la.body == lb.body {
                continue;
            }
            let seq = la.body.sequence;
            let signer = signer_of(a, seq)?;
            if signer_of(b, seq) != Some(signer) {
                return None;
            }
            return Self::new(signer, la.clone(), lb.clone()).ok();
        }
        None
    }
}

/// The key that signs link `seq` of `inst`: the holder at `seq - 1`, as
/// the copy itself says (its base or the link before).
fn signer_of(inst: &Instrument, seq: u32) -> Option<PublicKey> {
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
}

/// How much later than its endorsement a holder's presentation must be
/// dated, by the holder's own clock, to prove misuse: an honest wallet
/// whose clock was stepped back (say by a time sync) between presenting
/// and passing the ticket on must never be blamed.
pub const USED_AFTER_TRANSFER_MARGIN: Timestamp = MAX_CLOCK_SKEW;

/// Why a presentation and an endorsement do not make a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsedAfterTransferError {
    /// They are about different instruments.
    #[error("the presentation and the endorsement are of different instruments")]
    DifferentInstruments,
    /// The endorsement does not move on the sequence presented.
    #[error("the endorsement does not follow the sequence presented")]
    NotTheNextLink,
    /// The endorsement does not follow the tip presented.
    #[error("the endorsement does not follow the tip presented")]
    NotTheTipPresented,
    /// The presentation is not dated clearly after the endorsement.
    #[error("the presentation is not dated more than the margin after the endorsement")]
    NotAfter,
    /// The presentation is not signed by the named signer.
    #[error("the presentation is not signed by the named signer")]
    PresentationNotSigned,
    /// The endorsement is not signed by the named signer.
    #[error("the endorsement is not signed by the named signer")]
    EndorsementNotSigned,
}

/// A holder key presented sequence *n* of an instrument at a gate after it
/// had endorsed sequence *n* on to someone else: it kept a copy it gave
/// away and used it. Both statements are the key's own signatures:
///
/// - the presentation (`Signed<PresentationBody>`, context `presentation`)
///   names the instrument, the sequence and tip digest presented, and the
///   holder's clock at the tap (`time`; a gate refuses an answer whose time
///   is more than [`MAX_CLOCK_SKEW`] from its own clock, so the time a
///   cheater writes there is the tap's, give or take that skew);
/// - the endorsement (`Signed<Endorsement>`, context `endorsement`) has
///   sequence *n* + 1, names that tip as its previous link, and carries the
///   holder's clock when it signed it.
///
/// The proof holds when the presentation is dated more than
/// [`USED_AFTER_TRANSFER_MARGIN`] after the endorsement. An honest wallet
/// never signs it: once it has signed the endorsement the instrument is
/// pending-out or transferred (never held again), and a wallet signs a
/// presentation only of an instrument it holds, dated by its own clock.
/// Presenting and then passing a ticket on (a coupon with uses left) dates
/// the presentation before the endorsement and proves nothing. The
/// detection window follows: a stale copy presented within the margin plus
/// the skew of its transfer is not provable by this proof (the gates'
/// shared used set still admits only one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct UsedAfterTransferProof {
    /// The key that presented after transferring.
    #[n(0)]
    pub signer: PublicKey,
    /// Its presentation of sequence *n*.
    #[n(1)]
    pub presentation: Signed<PresentationBody>,
    /// Its endorsement of sequence *n* + 1.
    #[n(2)]
    pub endorsement: Signed<Endorsement>,
}

impl Wire for UsedAfterTransferProof {
    const NAME: &'static str = "used-after-transfer proof";
    const MAX_LEN: usize = 1024;
}

impl UsedAfterTransferProof {
    /// Builds and checks a proof.
    pub fn new(
        signer: PublicKey,
        presentation: Signed<PresentationBody>,
        endorsement: Signed<Endorsement>,
    ) -> Result<Self, UsedAfterTransferError> {
        let proof = Self { signer, presentation, endorsement };
        proof.verify()?;
        Ok(proof)
    }

    /// Checks the proof; returns the key that presented after transferring.
    pub fn verify(&self) -> Result<PublicKey, UsedAfterTransferError> {
        use UsedAfterTransferError as E;
        let (p, e) = (&self.presentation.body, &self.endorsement.body);
        if p.instrument_id != e.instrument_id {
            return Err(E::DifferentInstruments);
        }
        if p.sequence.checked_add(1) != Some(e.sequence) {
            return Err(E::NotTheNextLink);
        }
        if e.previous != p.tip {
            return Err(E::NotTheTipPresented);
        }
        if p.time <= e.time.saturating_add(USED_AFTER_TRANSFER_MARGIN) {
            return Err(E::NotAfter);
        }
        self.presentation.verify(&self.signer).map_err(|_| E::PresentationNotSigned)?;
        self.endorsement.verify(&self.signer).map_err(|_| E::EndorsementNotSigned)?;
        Ok(self.signer)
    }

    /// The instrument concerned.
    pub fn instrument_id(&self) -> InstrumentId {
        self.presentation.body.instrument_id
    }

    /// The sequence presented after it was passed on.
    pub fn sequence(&self) -> u32 {
        self.presentation.body.sequence
    }

    /// Looks for the proof in a presentation (from a gate's record or bag)
    /// and a later copy of the same instrument (the registry's chain, or
    /// the chain the next holder presented): the copy's link after the
    /// presented tip, signed by the key that presented. `None` when the
    /// copy has no such link, or the dates prove nothing. The copy must
    /// already have passed the verifier, so its links are signed by the
    /// holder before each.
    pub fn find(presentation: &Signed<PresentationBody>, later: &Instrument) -> Option<Self> {
        let p = &presentation.body;
        if later.id() != p.instrument_id {
            return None;
        }
        let next = p.sequence.checked_add(1)?;
        let link = later.links.iter().find(|l| l.body.sequence == next && l.body.previous == p.tip)?;
        let signer = signer_of(later, next)?;
        Self::new(signer, presentation.clone(), link.clone()).ok()
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

    /// Holder A passes the ticket to B, then presents its stale copy at a
    /// gate an hour later.
    fn stale_presentation(present_at: Timestamp) -> (Instrument, Signed<PresentationBody>, LocalSigner) {
        use crate::authority::Issuer;
        use crate::instrument::{Attributes, TicketAttributes};
        use crate::presentation::Instruction;
        let issuer = Issuer::new(LocalSigner::from_seed(&[0x02; 32]));
        let a = LocalSigner::from_seed(&[0x0A; 32]);
        let b = LocalSigner::from_seed(&[0x0B; 32]);
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: "final-2026".into(),
            title: "Cup Final".into(),
            zone: "north".into(),
            seat: Some("Row 12 Seat 7".into()),
            guidance: None,
            valid_from: 1_767_225_600,
            valid_until: 1_798_761_599,
            transferable: true,
            uses: 1,
            face_price: None,
        });
        let ticket =
            issuer.issue_with_id(InstrumentId([0x11; 16]), attributes, a.public_key(), 1_767_225_600).expect("signs");
        let body =
            ticket.next_endorsement(b.public_key(), ExchangeId([0x01; 16]), ExchangeId([0x81; 16]), 1_767_229_200);
        let passed_on = ticket.with_link(Signed::sign(body, &a).expect("signs"));
        let answer = PresentationBody {
            challenge: Digest([0xC4; 32]),
            instrument_id: ticket.id(),
            sequence: ticket.sequence(),
            tip: ticket.tip_digest(),
            instruction: Instruction::Enter,
            change: Instruction::Enter.apply(1),
            counter: 1,
            time: present_at,
        };
        (passed_on, Signed::sign(answer, &a).expect("signs"), a)
    }

    #[test]
    fn a_stale_copy_presented_after_the_transfer_names_its_holder() {
        let (chain, answer, a) = stale_presentation(1_767_229_200 + 3_600);
        let proof = UsedAfterTransferProof::find(&answer, &chain).expect("provable");
        assert_eq!(proof.verify(), Ok(a.public_key()));
        assert_eq!((proof.instrument_id(), proof.sequence()), (chain.id(), 0));
        assert_eq!(UsedAfterTransferProof::from_bytes(&proof.to_bytes()), Ok(proof.clone()));
        // Named as anyone else, it fails.
        let framed =
            UsedAfterTransferProof { signer: LocalSigner::from_seed(&[0x0B; 32]).public_key(), ..proof.clone() };
        assert_eq!(framed.verify(), Err(UsedAfterTransferError::PresentationNotSigned));
        // A presentation of another sequence, or another tip, proves nothing.
        let mut other = proof.clone();
        other.presentation.body.sequence = 1;
        assert_eq!(other.verify(), Err(UsedAfterTransferError::NotTheNextLink));
        let mut other = proof.clone();
        other.presentation.body.tip = Digest([0; 32]);
        assert_eq!(other.verify(), Err(UsedAfterTransferError::NotTheTipPresented));
        let mut other = proof;
        other.endorsement.body.instrument_id = InstrumentId([0x12; 16]);
        assert_eq!(other.verify(), Err(UsedAfterTransferError::DifferentInstruments));
    }

    #[test]
    fn presenting_before_passing_on_or_within_the_margin_proves_nothing() {
        // An honest coupon holder punches one use, then passes the rest on.
        let (chain, answer, _) = stale_presentation(1_767_229_200 - 60);
        assert_eq!(UsedAfterTransferProof::find(&answer, &chain), None);
        // A clock stepped back by up to the margin does not blame anyone.
        let (chain, answer, a) = stale_presentation(1_767_229_200 + USED_AFTER_TRANSFER_MARGIN);
        assert_eq!(UsedAfterTransferProof::find(&answer, &chain), None);
        let Some(link) = chain.links.first().cloned() else { panic!("a link") };
        assert_eq!(UsedAfterTransferProof::new(a.public_key(), answer, link), Err(UsedAfterTransferError::NotAfter));
    }

    /// `docs/vectors/used-after-transfer-proof.hex`: written with
    /// `TESSERA_WRITE_VECTORS` set; otherwise the stored bytes must be
    /// exactly what this build encodes, and decode to a proof naming A.
    #[test]
    fn used_after_transfer_vector() {
        let (chain, answer, a) = stale_presentation(1_767_229_200 + 3_600);
        let proof = UsedAfterTransferProof::find(&answer, &chain).expect("provable");
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/used-after-transfer-proof.hex");
        if std::env::var_os("TESSERA_WRITE_VECTORS").is_some() {
            std::fs::write(&path, format!("{}\n", hex::encode(proof.to_bytes()))).expect("write the vector");
        }
        let stored = hex::decode(std::fs::read_to_string(&path).expect("vector file").trim()).expect("hex");
        assert_eq!(stored, proof.to_bytes(), "the vector differs from what this build encodes");
        let decoded = UsedAfterTransferProof::from_bytes(&stored).expect("decodes");
        assert_eq!(decoded.to_bytes(), stored);
        assert_eq!(decoded.verify(), Ok(a.public_key()));
    }
}
