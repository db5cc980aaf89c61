//! The transfer messages and their canonical encodings.
//!
//! Every message is bound to its exchange: the offer names its `offer_id`,
//! the acceptance or decline names the offer id *and* the digest of the
//! exact offer it answers, the certificate names the offer id, the
//! acceptance id and the acceptance digest, and the receipt names all three
//! plus the certificate digest. Every endorsement inside carries the offer
//! and acceptance ids. So nothing signed for one exchange verifies in another.

use crate::clock::Timestamp;
use crate::codec::{Wire, to_vec};
use crate::crypto::{Context, Digest, PublicKey, Signature, SignatureError, Signer, SignerError};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Amount, Endorsement, Instrument, Signed, SignedBody};
use minicbor::{Decode, Encode};

/// Most instruments one offer may carry.
pub const MAX_ITEMS: usize = 16;
/// Most notes one payment may carry, and so most payee keys an offer names.
pub const MAX_PAYMENT_NOTES: usize = 16;
/// Most notes the sender may return as change.
pub const MAX_CHANGE_NOTES: usize = 16;
/// Bound on offers, acceptances and certificates. Instruments with long
/// chains should be compacted by the registry before they are offered.
pub const MAX_MESSAGE_LEN: usize = 128 * 1024;

/// What the receiver gives for the instruments.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Terms {
    /// Nothing.
    #[n(0)]
    Gift,
    /// A price in e-money.
    #[n(1)]
    Sale {
        /// The price.
        #[n(0)]
        price: Amount,
        /// Fresh keys of the sender for the payment notes, used in order.
        #[n(1)]
        payee_keys: Vec<PublicKey>,
        /// Denominations (minor units) of the notes the sender has set aside
        /// to return as change. The receiver pays so that the overpayment is
        /// a sum of some of them.
        #[n(2)]
        change: Vec<u64>,
    },
}

impl Terms {
    /// The price, for a sale.
    pub fn price(&self) -> Option<&Amount> {
        match self {
            Terms::Gift => None,
            Terms::Sale { price, .. } => Some(price),
        }
    }
}

/// What the sender signs when offering.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct OfferBody {
    /// Random; names the exchange.
    #[n(0)]
    pub offer_id: ExchangeId,
    /// The sender's account key.
    #[n(1)]
    pub sender: PublicKey,
    /// The instruments, with their chains; each tip is a sender's holder key.
    #[n(2)]
    pub items: Vec<Instrument>,
    /// Gift or sale.
    #[n(3)]
    pub terms: Terms,
    /// When it was made.
    #[n(4)]
    pub created_at: Timestamp,
    /// An acceptance arriving after this time is refused.
    #[n(5)]
    pub expires_at: Timestamp,
}

/// An offer, signed by the sender's account key and by the holder key of
/// every item: the holder signatures are what makes a double sale
/// attributable (see `evidence`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Offer {
    /// What was signed.
    #[n(0)]
    pub body: OfferBody,
    /// The account key's signature under [`Context::Offer`].
    #[n(1)]
    pub sender_signature: Signature,
    /// One signature per item, by that item's tip key, under [`Context::Offer`].
    #[n(2)]
    pub holder_signatures: Vec<Signature>,
}

/// Which part of a message a bad signature was found on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedPart {
    /// The sender's signature over an offer.
    OfferSender,
    /// An item holder's signature over an offer.
    OfferHolder(usize),
    /// The receiver's signature over an acceptance.
    Acceptance,
    /// The receiver's signature over a decline.
    Decline,
    /// The sender's signature over a transfer certificate.
    Certificate,
    /// An endorsement inside a certificate.
    Endorsement(usize),
    /// The receiver's signature over a receipt.
    Receipt,
}

impl std::fmt::Display for SignedPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignedPart::OfferSender => f.write_str("offer (sender)"),
            SignedPart::OfferHolder(i) => write!(f, "offer (holder of item {i})"),
            SignedPart::Acceptance => f.write_str("acceptance"),
            SignedPart::Decline => f.write_str("decline"),
            SignedPart::Certificate => f.write_str("transfer certificate"),
            SignedPart::Endorsement(i) => write!(f, "endorsement {i}"),
            SignedPart::Receipt => f.write_str("receipt"),
        }
    }
}

impl Offer {
    /// Signs `body` with the account signer and one signer per item, in item order.
    pub fn sign(body: OfferBody, account: &impl Signer, holders: &[&dyn Signer]) -> Result<Self, SignerError> {
        let bytes = to_vec(&body);
        let sender_signature = account.sign(Context::Offer, &bytes)?;
        let holder_signatures =
            holders.iter().map(|h| h.sign(Context::Offer, &bytes)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { body, sender_signature, holder_signatures })
    }

    /// Checks every signature: the account key and each item's tip key.
    pub fn verify_signatures(&self) -> Result<(), SignedPart> {
        let bytes = to_vec(&self.body);
        self.body.sender.verify(Context::Offer, &bytes, &self.sender_signature).map_err(|_| SignedPart::OfferSender)?;
        if self.holder_signatures.len() != self.body.items.len() {
            return Err(SignedPart::OfferHolder(self.holder_signatures.len().min(self.body.items.len())));
        }
        for (i, (item, sig)) in self.body.items.iter().zip(&self.holder_signatures).enumerate() {
            item.holder().verify(Context::Offer, &bytes, sig).map_err(|_| SignedPart::OfferHolder(i))?;
        }
        Ok(())
    }

    /// The digest acceptances and declines name.
    pub fn digest(&self) -> Digest {
        Digest::of(&to_vec(self))
    }

    /// The exchange id.
    pub fn id(&self) -> ExchangeId {
        self.body.offer_id
    }
}

/// What the receiver signs when accepting.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct AcceptanceBody {
    /// The offer answered.
    #[n(0)]
    pub offer_id: ExchangeId,
    /// Digest of the exact offer answered.
    #[n(1)]
    pub offer_digest: Digest,
    /// Random; names the receiver's side of the exchange.
    #[n(2)]
    pub acceptance_id: ExchangeId,
    /// The receiver's account key.
    #[n(3)]
    pub receiver: PublicKey,
    /// A fresh holder key per offered item, in item order.
    #[n(4)]
    pub holder_keys: Vec<PublicKey>,
    /// For a sale: the payment notes, each ending in an endorsement to the
    /// offer's payee key of the same index, bound to this offer and acceptance.
    #[n(5)]
    pub payment: Vec<Instrument>,
    /// For a sale: fresh keys for the change notes, used in order.
    #[n(6)]
    pub change_keys: Vec<PublicKey>,
    /// When it was signed.
    #[n(7)]
    pub time: Timestamp,
}

impl SignedBody for AcceptanceBody {
    const CONTEXT: Context = Context::Acceptance;
}

/// An acceptance, signed by the receiver's account key.
pub type Acceptance = Signed<AcceptanceBody>;

/// Why the receiver said no.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct DeclineBody {
    /// The offer answered.
    #[n(0)]
    pub offer_id: ExchangeId,
    /// Digest of the exact offer answered.
    #[n(1)]
    pub offer_digest: Digest,
    /// The receiver's account key.
    #[n(2)]
    pub receiver: PublicKey,
    /// For people.
    #[n(3)]
    pub reason: String,
    /// When it was signed.
    #[n(4)]
    pub time: Timestamp,
}

/// A decline has its own context: no signature made for an acceptance can
/// ever stand for a decline, or the other way round.
impl SignedBody for DeclineBody {
    const CONTEXT: Context = Context::Decline;
}

/// A decline, signed by the receiver's account key.
pub type Decline = Signed<DeclineBody>;

/// What the sender signs to hand the instruments over.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct CertificateBody {
    /// The exchange.
    #[n(0)]
    pub offer_id: ExchangeId,
    /// The acceptance it answers.
    #[n(1)]
    pub acceptance_id: ExchangeId,
    /// Digest of that acceptance.
    #[n(2)]
    pub acceptance_digest: Digest,
    /// One endorsement per offered item, in item order, to the accepted keys.
    #[n(3)]
    pub endorsements: Vec<Signed<Endorsement>>,
    /// Change notes with their chains, each ending in an endorsement to the
    /// acceptance's change key of the same index.
    #[n(4)]
    pub change: Vec<Instrument>,
}

/// The certificate has its own context, apart from the endorsements it
/// carries: a holder-key signature over an endorsement can never stand for
/// a certificate, or the other way round.
impl SignedBody for CertificateBody {
    const CONTEXT: Context = Context::TransferCertificate;
}

/// A transfer certificate, signed by the sender's account key.
pub type TransferCertificate = Signed<CertificateBody>;

/// What the receiver signs when the certificate is safely stored.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct ReceiptBody {
    /// The exchange.
    #[n(0)]
    pub offer_id: ExchangeId,
    /// The acceptance.
    #[n(1)]
    pub acceptance_id: ExchangeId,
    /// Digest of the certificate received.
    #[n(2)]
    pub certificate_digest: Digest,
    /// The receiver's account key.
    #[n(3)]
    pub receiver: PublicKey,
    /// The instruments received, in item order.
    #[n(4)]
    pub instruments: Vec<InstrumentId>,
    /// When it was signed.
    #[n(5)]
    pub time: Timestamp,
}

impl SignedBody for ReceiptBody {
    const CONTEXT: Context = Context::Receipt;
}

/// A receipt, signed by the receiver's account key.
pub type Receipt = Signed<ReceiptBody>;

/// One message on the wire: what the transports carry.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum TransferMessage {
    /// Sender → receiver.
    #[n(0)]
    Offer(#[n(0)] Offer),
    /// Receiver → sender.
    #[n(1)]
    Acceptance(#[n(0)] Acceptance),
    /// Receiver → sender.
    #[n(2)]
    Decline(#[n(0)] Decline),
    /// Sender → receiver.
    #[n(3)]
    Certificate(#[n(0)] TransferCertificate),
    /// Receiver → sender.
    #[n(4)]
    Receipt(#[n(0)] Receipt),
}

impl TransferMessage {
    /// The exchange this message belongs to.
    pub fn offer_id(&self) -> ExchangeId {
        match self {
            TransferMessage::Offer(o) => o.body.offer_id,
            TransferMessage::Acceptance(a) => a.body.offer_id,
            TransferMessage::Decline(d) => d.body.offer_id,
            TransferMessage::Certificate(c) => c.body.offer_id,
            TransferMessage::Receipt(r) => r.body.offer_id,
        }
    }
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            TransferMessage::Offer(_) => "offer",
            TransferMessage::Acceptance(_) => "acceptance",
            TransferMessage::Decline(_) => "decline",
            TransferMessage::Certificate(_) => "certificate",
            TransferMessage::Receipt(_) => "receipt",
        }
    }
}

impl Wire for TransferMessage {
    const NAME: &'static str = "transfer message";
    const MAX_LEN: usize = MAX_MESSAGE_LEN + 16;
}

impl Wire for Offer {
    const NAME: &'static str = "offer";
    const MAX_LEN: usize = MAX_MESSAGE_LEN;
}

impl Wire for Acceptance {
    const NAME: &'static str = "acceptance";
    const MAX_LEN: usize = MAX_MESSAGE_LEN;
}

impl Wire for Decline {
    const NAME: &'static str = "decline";
    const MAX_LEN: usize = 1024;
}

impl Wire for TransferCertificate {
    const NAME: &'static str = "transfer certificate";
    const MAX_LEN: usize = MAX_MESSAGE_LEN;
}

impl Wire for Receipt {
    const NAME: &'static str = "receipt";
    const MAX_LEN: usize = 1024;
}

/// Checks a signed body under `key`, naming the part on failure.
pub(crate) fn check<T: SignedBody>(signed: &Signed<T>, key: &PublicKey, part: SignedPart) -> Result<(), SignedPart> {
    signed.verify(key).map_err(|_: SignatureError| part)
}
