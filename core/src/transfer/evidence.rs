//! Evidence for fair sales, checked by the registry acting as an optimistic
//! arbiter at reconciliation (argument in `docs/transfer.md`).
//!
//! * A buyer who paid and did not get the items uploads a [`SaleClaim`]:
//!   the seller-signed offer and the buyer-signed acceptance carrying the
//!   payment endorsements. Unless the registry holds (or the seller
//!   produces) the delivery — an endorsement of every offered item, bound to
//!   the same offer and acceptance ids, to the key the acceptance named —
//!   the payment notes go back to the keys that paid them.
//! * A seller who committed an instrument to two exchanges at once is named
//!   by a [`DoubleSaleProof`]: its holder key signed an offer for the
//!   instrument at sequence n and, while that offer was open, an
//!   endorsement of sequence n + 1 bound to another exchange. If it signed
//!   two endorsements of sequence n + 1, the plain
//!   [`crate::EquivocationProof`] names it. A signed decline of the open
//!   offer by the claimant excuses the seller.

use super::messages::{Acceptance, Decline, Offer, SignedPart, Terms};
use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::PublicKey;
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Amount, Endorsement, Signed};
use crate::verify::{Rejection, Verifier};
use minicbor::{Decode, Encode};

/// Why evidence does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// A signature does not verify.
    #[error("bad signature on the {0}")]
    BadSignature(SignedPart),
    /// The acceptance does not answer this offer.
    #[error("the acceptance does not answer this offer")]
    NotAnAnswer,
    /// The offer is a gift: there is no payment to reclaim.
    #[error("the offer is not a sale")]
    NotASale,
    /// A payment note is not bound to this exchange or not to the payee key.
    #[error("payment note {0} is not endorsed to the seller for this exchange")]
    PaymentNotBound(InstrumentId),
    /// A payment note's chain does not verify.
    #[error("payment note {id} refused: {reason}")]
    PaymentRejected {
        /// The note.
        id: InstrumentId,
        /// Why.
        reason: Rejection,
    },
    /// The notes do not pay the price.
    #[error("the payment does not pay the price")]
    Underpaid,
    /// The proof's endorsement is not of the offered instrument at the next sequence after the offered tip.
    #[error("the endorsement does not continue the offered chain")]
    NotTheSameBranchPoint,
    /// The endorsement belongs to the offer's own exchange.
    #[error("the endorsement belongs to the same exchange")]
    SameExchange,
    /// The endorsement was signed outside the offer's open window.
    #[error("the endorsement was signed while the offer was not open")]
    OutsideWindow,
    /// The item index is out of range.
    #[error("no item {0} in the offer")]
    NoSuchItem(u32),
}

/// One payment note of a checked claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLine {
    /// The note.
    pub instrument_id: InstrumentId,
    /// Sequence of the payment link.
    pub sequence: u32,
    /// The buyer's key that signed the payment link: the note goes back to it.
    pub payer: PublicKey,
    /// The seller's payee key.
    pub payee: PublicKey,
}

/// One offered item of a checked claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedItem {
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// Sequence the delivery endorsement must have.
    pub sequence: u32,
    /// The seller's holder key that must sign it.
    pub seller_key: PublicKey,
    /// The buyer's key it must name.
    pub buyer_key: PublicKey,
}

/// What a valid claim establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedClaim {
    /// The exchange.
    pub offer_id: ExchangeId,
    /// The buyer's acceptance.
    pub acceptance_id: ExchangeId,
    /// The seller's account key.
    pub seller: PublicKey,
    /// The buyer's account key.
    pub buyer: PublicKey,
    /// The price.
    pub price: Amount,
    /// What was paid, in minor units.
    pub paid: u64,
    /// What delivery means, item by item.
    pub items: Vec<ClaimedItem>,
    /// The payment, note by note.
    pub payment: Vec<PaymentLine>,
}

/// A buyer's claim: "I paid in this exchange for what this offer promised".
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct SaleClaim {
    /// The seller-signed offer.
    #[n(0)]
    pub offer: Offer,
    /// The buyer-signed acceptance with the payment endorsements.
    #[n(1)]
    pub acceptance: Acceptance,
}

impl Wire for SaleClaim {
    const NAME: &'static str = "sale claim";
    const MAX_LEN: usize = 2 * super::messages::MAX_MESSAGE_LEN;
}

impl SaleClaim {
    /// Checks the claim: every signature, the binding of acceptance to
    /// offer and of every payment link to both ids and to the payee key of
    /// its position, each payment chain through the verifier at
    /// `at` (the acceptance time is the natural choice), and that the
    /// notes pay the price.
    pub fn check(&self, verifier: &Verifier<'_>, at: Timestamp) -> Result<CheckedClaim, EvidenceError> {
        let offer = &self.offer;
        offer.verify_signatures().map_err(EvidenceError::BadSignature)?;
        let a = &self.acceptance.body;
        self.acceptance.verify(&a.receiver).map_err(|_| EvidenceError::BadSignature(SignedPart::Acceptance))?;
        if a.offer_id != offer.id() || a.offer_digest != offer.digest() || a.holder_keys.len() != offer.body.items.len()
        {
            return Err(EvidenceError::NotAnAnswer);
        }
        let Terms::Sale { price, payee_keys, .. } = &offer.body.terms else {
            return Err(EvidenceError::NotASale);
        };
        if a.payment.is_empty() || a.payment.len() > payee_keys.len() {
            return Err(EvidenceError::Underpaid);
        }
        let mut payment = Vec::new();
        for (note, payee) in a.payment.iter().zip(payee_keys) {
            let id = note.id();
            let link = note.links.last().ok_or(EvidenceError::PaymentNotBound(id))?;
            if link.body.offer_id != offer.id()
                || link.body.acceptance_id != a.acceptance_id
                || link.body.new_holder != *payee
            {
                return Err(EvidenceError::PaymentNotBound(id));
            }
            verifier.verify(note, at).map_err(|reason| EvidenceError::PaymentRejected { id, reason })?;
            let mut before = note.clone();
            before.links.pop();
            payment.push(PaymentLine {
                instrument_id: id,
                sequence: link.body.sequence,
                payer: before.holder(),
                payee: *payee,
            });
        }
        let paid = super::note_sum(&a.payment, &price.currency).ok_or(EvidenceError::Underpaid)?;
        if paid < price.minor {
            return Err(EvidenceError::Underpaid);
        }
        let items = offer
            .body
            .items
            .iter()
            .zip(&a.holder_keys)
            .map(|(item, key)| ClaimedItem {
                instrument_id: item.id(),
                sequence: item.sequence().saturating_add(1),
                seller_key: item.holder(),
                buyer_key: *key,
            })
            .collect();
        Ok(CheckedClaim {
            offer_id: offer.id(),
            acceptance_id: a.acceptance_id,
            seller: offer.body.sender,
            buyer: a.receiver,
            price: price.clone(),
            paid,
            items,
            payment,
        })
    }
}

impl CheckedClaim {
    /// Whether `links` (endorsements the registry holds or the seller
    /// produced) deliver every item of this exchange to the buyer: for each
    /// item, a link of that instrument at the expected sequence, bound to
    /// this offer and acceptance, naming the accepted key and signed by the
    /// seller's holder key. When they do, the payment stands; when they do
    /// not, the buyer's claim wins and the payment goes back.
    pub fn is_delivered_by(&self, links: &[Signed<Endorsement>]) -> bool {
        self.items.iter().all(|item| {
            links.iter().any(|l| {
                let e = &l.body;
                e.instrument_id == item.instrument_id
                    && e.sequence == item.sequence
                    && e.offer_id == self.offer_id
                    && e.acceptance_id == self.acceptance_id
                    && e.new_holder == item.buyer_key
                    && l.verify(&item.seller_key).is_ok()
            })
        })
    }
}

/// The seller's holder key committed one instrument, at one point of its
/// chain, to two exchanges at once.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct DoubleSaleProof {
    /// An offer signed by the holder key, open from `created_at` to `expires_at`.
    #[n(0)]
    pub offer: Offer,
    /// Which of its items.
    #[n(1)]
    pub item: u32,
    /// An endorsement of that item at the next sequence, by the same key,
    /// for another exchange, signed while the offer was open.
    #[n(2)]
    pub endorsement: Signed<Endorsement>,
}

impl Wire for DoubleSaleProof {
    const NAME: &'static str = "double sale proof";
    const MAX_LEN: usize = super::messages::MAX_MESSAGE_LEN + 1024;
}

impl DoubleSaleProof {
    /// Checks the proof; returns the holder key that committed twice.
    pub fn verify(&self) -> Result<PublicKey, EvidenceError> {
        self.offer.verify_signatures().map_err(EvidenceError::BadSignature)?;
        let index = usize::try_from(self.item).map_err(|_| EvidenceError::NoSuchItem(self.item))?;
        let item = self.offer.body.items.get(index).ok_or(EvidenceError::NoSuchItem(self.item))?;
        let e = &self.endorsement.body;
        if e.instrument_id != item.id()
            || e.sequence != item.sequence().saturating_add(1)
            || e.previous != item.tip_digest()
        {
            return Err(EvidenceError::NotTheSameBranchPoint);
        }
        let signer = item.holder();
        self.endorsement.verify(&signer).map_err(|_| EvidenceError::BadSignature(SignedPart::Endorsement(index)))?;
        if e.offer_id == self.offer.id() {
            return Err(EvidenceError::SameExchange);
        }
        if e.time < self.offer.body.created_at || e.time > self.offer.body.expires_at {
            return Err(EvidenceError::OutsideWindow);
        }
        Ok(signer)
    }

    /// Whether `decline`, signed by `claimant` (the buyer's account key of
    /// the claim), answers this proof's offer: then the seller was free to
    /// sell elsewhere before the expiry and is not to blame.
    pub fn excused_by(&self, decline: &Decline, claimant: &PublicKey) -> bool {
        decline.body.receiver == *claimant
            && decline.body.offer_id == self.offer.id()
            && decline.body.offer_digest == self.offer.digest()
            && decline.verify(claimant).is_ok()
    }
}

/// What a wallet uploads at reconciliation about its transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferEvidence {
    /// Sales this wallet paid for and has not received: claims for the registry.
    pub claims: Vec<SaleClaim>,
    /// Certificates this wallet sent (items endorsed away), with the
    /// receipt when it came: the deliveries the registry registers.
    pub deliveries: Vec<(super::TransferCertificate, Option<super::Receipt>)>,
}

impl<S: crate::store::WalletStore> crate::Wallet<S> {
    /// The evidence to upload at reconciliation: a [`SaleClaim`] for every
    /// sale accepted and paid but not yet delivered, and every certificate
    /// sent. Reading only; uploading twice changes nothing at the registry.
    pub fn transfer_evidence(&self) -> Result<TransferEvidence, super::TransferError> {
        use super::state::{PROTOCOL_IN, PROTOCOL_OUT, ReceiverState, SenderState};
        let mut out = TransferEvidence { claims: Vec::new(), deliveries: Vec::new() };
        for record in self.store.all_pending()? {
            match record.protocol.as_str() {
                PROTOCOL_IN => {
                    if let ReceiverState::Accepted(offer, acceptance) = super::receiver::load(&record.state)?
                        && matches!(offer.body.terms, Terms::Sale { .. })
                    {
                        out.claims.push(SaleClaim { offer, acceptance });
                    }
                }
                PROTOCOL_OUT => match super::sender::load(&record.state)? {
                    SenderState::Certified(s) => out.deliveries.push((s.certificate, None)),
                    SenderState::Completed(s) => out.deliveries.push((s.certified.certificate, Some(s.receipt))),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(out)
    }
}
