//! The persisted state of each side of an exchange: one type per step.
//! Each is stored (as a [`crate::store::PendingRecord`]) in the same batch as
//! the instrument changes of that step, before the step's message leaves.
//! The recovery of each state is in the module docs of [`crate::transfer`].

use super::messages::{Acceptance, Decline, Offer, Receipt, TransferCertificate};
use crate::codec::Wire;
use crate::ids::InstrumentId;
use minicbor::{Decode, Encode};

/// `PendingRecord::protocol` of the sending side.
pub const PROTOCOL_OUT: &str = "transfer-out";
/// `PendingRecord::protocol` of the receiving side.
pub const PROTOCOL_IN: &str = "transfer-in";

/// The sender has offered; items (and the notes set aside for change) are
/// pending-out, nothing is endorsed yet.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct SenderOffered {
    /// The offer sent.
    #[n(0)]
    pub offer: Offer,
    /// Notes set aside for change, locked as pending-out.
    #[n(1)]
    pub change_reserved: Vec<InstrumentId>,
}

/// The sender has endorsed the items (and change) to the receiver and
/// holds the payment; it waits for the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct SenderCertified {
    /// The offer.
    #[n(0)]
    pub offer: Offer,
    /// The acceptance answered.
    #[n(1)]
    pub acceptance: Acceptance,
    /// The certificate sent.
    #[n(2)]
    pub certificate: TransferCertificate,
    /// Change notes endorsed back.
    #[n(3)]
    pub change_sent: Vec<InstrumentId>,
}

/// The receipt is in: items and change are gone from this wallet.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct SenderCompleted {
    /// Everything up to the certificate.
    #[n(0)]
    pub certified: SenderCertified,
    /// The receipt: evidence the receiver has the items.
    #[n(1)]
    pub receipt: Receipt,
}

/// The offer was declined or expired before an acceptance: everything went
/// back to held.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct SenderClosed {
    /// The offer.
    #[n(0)]
    pub offer: Offer,
    /// The decline, if the receiver sent one (else it expired).
    #[n(1)]
    pub decline: Option<Decline>,
}

/// The sending side's state.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum SenderState {
    /// See [`SenderOffered`].
    #[n(0)]
    Offered(#[n(0)] SenderOffered),
    /// See [`SenderCertified`].
    #[n(1)]
    Certified(#[n(0)] SenderCertified),
    /// See [`SenderCompleted`].
    #[n(2)]
    Completed(#[n(0)] SenderCompleted),
    /// See [`SenderClosed`].
    #[n(3)]
    Closed(#[n(0)] SenderClosed),
}

impl SenderState {
    /// The state's name.
    pub fn name(&self) -> &'static str {
        match self {
            SenderState::Offered(_) => "offered",
            SenderState::Certified(_) => "certified",
            SenderState::Completed(_) => "completed",
            SenderState::Closed(s) if s.decline.is_some() => "declined",
            SenderState::Closed(_) => "expired",
        }
    }
    /// The offer.
    pub fn offer(&self) -> &Offer {
        match self {
            SenderState::Offered(s) => &s.offer,
            SenderState::Certified(s) => &s.offer,
            SenderState::Completed(s) => &s.certified.offer,
            SenderState::Closed(s) => &s.offer,
        }
    }
    /// Whether the exchange is over.
    pub fn is_final(&self) -> bool {
        matches!(self, SenderState::Completed(_) | SenderState::Closed(_))
    }
}

/// The receiving side's state.
// States are decoded once per step and never held in bulk, so their size
// difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ReceiverState {
    /// A verified offer waits for the user; nothing moved.
    #[n(0)]
    Offered(#[n(0)] Offer),
    /// Accepted: fresh holder keys stored, payment notes endorsed to the
    /// sender and pending-out; waiting for the certificate.
    #[n(1)]
    Accepted(#[n(0)] Offer, #[n(1)] Acceptance),
    /// Declined: nothing moved.
    #[n(2)]
    Declined(#[n(0)] Offer, #[n(1)] Decline),
    /// The certificate is stored, the items and change are held, the
    /// payment is gone, the receipt was signed.
    #[n(3)]
    Completed(#[n(0)] Offer, #[n(1)] Acceptance, #[n(2)] TransferCertificate, #[n(3)] Receipt),
    /// The user did not answer before the offer expired: nothing moved.
    #[n(4)]
    Expired(#[n(0)] Offer),
}

impl ReceiverState {
    /// The state's name.
    pub fn name(&self) -> &'static str {
        match self {
            ReceiverState::Offered(_) => "offered",
            ReceiverState::Accepted(..) => "accepted",
            ReceiverState::Declined(..) => "declined",
            ReceiverState::Completed(..) => "completed",
            ReceiverState::Expired(_) => "expired",
        }
    }
    /// The offer.
    pub fn offer(&self) -> &Offer {
        match self {
            ReceiverState::Offered(o)
            | ReceiverState::Accepted(o, _)
            | ReceiverState::Declined(o, _)
            | ReceiverState::Completed(o, ..)
            | ReceiverState::Expired(o) => o,
        }
    }
    /// Whether the exchange is over.
    pub fn is_final(&self) -> bool {
        matches!(self, ReceiverState::Declined(..) | ReceiverState::Completed(..) | ReceiverState::Expired(_))
    }
}

/// States come from this wallet's own store, but are still decoded strictly.
impl Wire for SenderState {
    const NAME: &'static str = "transfer sender state";
    const MAX_LEN: usize = 4 * super::messages::MAX_MESSAGE_LEN;
}

impl Wire for ReceiverState {
    const NAME: &'static str = "transfer receiver state";
    const MAX_LEN: usize = 4 * super::messages::MAX_MESSAGE_LEN;
}
