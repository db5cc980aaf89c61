//! Transfer between two wallets: offer → acceptance (or decline) → transfer
//! certificate → receipt (DESIGN §3.1, seed 003 [1668–1694]).
//!
//! The engine has no I/O. Each call takes the peer's bytes (and reads the
//! wallet's injected clock) and returns a [`Step`]: bytes to send, events
//! for the app and the next timeout. Every step that changes what the
//! wallet holds is written in **one** [`crate::store::WriteBatch`] — the
//! instrument changes, their history lines and the exchange's new state —
//! *before* the step's message is returned, so a crash can only lose a
//! message, never half a step. Messages are idempotent: a duplicate gets the
//! same answer again, so retrying is always safe.
//!
//! ```text
//! sender (A)                                        receiver (B)
//! offer_transfer ─┐ items → pending-out
//!                 │ [Offered]           Offer ──▶  verify → [Offered]  (event OfferReceived)
//!                 │                                  user says yes: holder keys, payment
//!                 │                                  notes endorsed to A → pending-out
//!  verify ◀────────────────────── Acceptance ──────  [Accepted]
//!  endorse items (+ change) to B, payment → held
//!  [Certified]  ──────────────── Certificate ─────▶  verify → items, change held,
//!                                                    payment gone, receipt signed
//!  items → gone ◀───────────────── Receipt ────────  [Completed]
//!  [Completed]
//!            or: Decline ─▶ A: items → held [Closed];  expiry ─▶ A: items → held [Closed]
//! ```
//!
//! ## Sender states ([`SenderState`])
//! ```text
//!   Offered ──acceptance──▶ Certified ──receipt──▶ Completed
//!      │ decline / expiry
//!      ▼
//!    Closed
//! ```
//! | state | holds in the store | recovery on reopen (`resume_transfers`) |
//! |---|---|---|
//! | *(none)* | nothing changed | the offer was never sent; nothing to do |
//! | `Offered` | items and reserved change notes pending-out (locked), payee keys stored | resend the offer; `transfer_tick` after `expires_at` puts everything back to held |
//! | `Certified` | items and change notes pending-out with the new links; payment notes held | resend the certificate until the receipt comes; never times out (reconciliation settles: the registry sees the endorsements) |
//! | `Completed` | items and change gone; receipt kept as evidence | nothing; a duplicate acceptance gets the certificate again |
//! | `Closed` | items back to held | nothing; late answers are refused |
//!
//! ## Receiver states ([`ReceiverState`])
//! ```text
//!   Offered ──accept──▶ Accepted ──certificate──▶ Completed
//!      │ decline / expiry
//!      ▼
//!   Declined / Expired
//! ```
//! | state | holds in the store | recovery on reopen |
//! |---|---|---|
//! | *(none)* | nothing | the sender resends the offer |
//! | `Offered` | the verified offer, nothing moved | ask the user again; expires at `expires_at` |
//! | `Accepted` | fresh holder and change keys; payment notes endorsed to the sender, pending-out | resend the acceptance; the payment stays pending-out until the certificate or reconciliation (the [`evidence::SaleClaim`] gets it back) |
//! | `Declined` | nothing moved | resend the decline |
//! | `Completed` | items and change held, payment gone, receipt kept | a duplicate certificate gets the receipt again |
//! | `Expired` | nothing moved | nothing |
//!
//! The sender marks items gone only after the receipt. Until then they are
//! pending-out: the wallet refuses to offer them again, and the NFC
//! presentation must refuse them too. Fairness of sales — who holds what
//! evidence after any prefix — is argued in `docs/transfer.md` and checked
//! by [`evidence`].

mod messages;
mod receiver;
mod sender;
mod state;

pub mod evidence;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use messages::{
    Acceptance, AcceptanceBody, CertificateBody, Decline, DeclineBody, MAX_CHANGE_NOTES, MAX_ITEMS, MAX_MESSAGE_LEN,
    MAX_PAYMENT_NOTES, Offer, OfferBody, Receipt, ReceiptBody, SignedPart, Terms, TransferCertificate, TransferMessage,
};
pub use state::{
    PROTOCOL_IN, PROTOCOL_OUT, ReceiverState, SenderCertified, SenderClosed, SenderCompleted, SenderOffered,
    SenderState,
};

use crate::clock::Timestamp;
use crate::codec::DecodeError;
use crate::crypto::{PublicKey, SignerError};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Amount, Instrument, Kind};
use crate::store::{StoreError, WalletStore, Write};
use crate::verify::Rejection;
use crate::wallet::{Wallet, WalletError};

const META_PEER_PREFIX: &str = "transfer-peer/";

/// Payee keys a sale offer names: the most notes a buyer may pay with.
pub const PAYEE_KEYS_PER_SALE: usize = 8;

/// Why a message or a call was refused. A refused message changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The bytes are not a well-formed message within its size bound.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The wallet (store, keys, trust list) failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The verifier refused an instrument in the message.
    #[error("instrument {id} refused: {reason}")]
    Rejected {
        /// The instrument.
        id: InstrumentId,
        /// The verifier's reason.
        reason: Rejection,
    },
    /// A signature does not verify.
    #[error("bad signature on the {0}")]
    BadSignature(SignedPart),
    /// No exchange with this id is known here.
    #[error("no exchange {0} is known here")]
    UnknownExchange(ExchangeId),
    /// A different message reuses the id of an exchange seen before.
    #[error("exchange {0} was seen before with different content: replay refused")]
    Replayed(ExchangeId),
    /// The message does not fit the exchange's current state.
    #[error("a {message} does not fit exchange {exchange} in state {state}")]
    WrongState {
        /// The exchange.
        exchange: ExchangeId,
        /// Its state.
        state: &'static str,
        /// The message received.
        message: &'static str,
    },
    /// The message is bound to another offer, acceptance or certificate.
    #[error("the message is bound to another exchange: {0}")]
    Mismatch(&'static str),
    /// An endorsement with the wrong sequence number.
    #[error("endorsement of {instrument} has sequence {found}, expected {expected}")]
    WrongSequence {
        /// The instrument.
        instrument: InstrumentId,
        /// Tip + 1.
        expected: u32,
        /// What it carries.
        found: u32,
    },
    /// An endorsement that does not follow the offered tip.
    #[error("endorsement of {0} does not follow the offered chain")]
    WrongPrevious(InstrumentId),
    /// An endorsement to a key other than the one accepted.
    #[error("endorsement of {instrument} is to {found}, not to the accepted key {expected}")]
    WrongHolderKey {
        /// The instrument.
        instrument: InstrumentId,
        /// The key named in the acceptance (or offer, for payments).
        expected: PublicKey,
        /// The key endorsed to.
        found: PublicKey,
    },
    /// An endorsement of an instrument other than the one at its position.
    #[error("endorsement {index} is of another instrument")]
    WrongInstrument {
        /// Its position.
        index: usize,
    },
    /// The offer expired.
    #[error("the offer expired at {expires_at} (now {now})")]
    Expired {
        /// Its expiry.
        expires_at: Timestamp,
        /// The time now.
        now: Timestamp,
    },
    /// An offer this wallet made itself.
    #[error("this is this wallet's own offer")]
    OwnOffer,
    /// The offer carries an instrument this wallet already holds at the
    /// same or a later point: the sender no longer holds it.
    #[error("instrument {0} was offered from a stale chain: the sender no longer holds it")]
    Stale(InstrumentId),
    /// The instrument is not held (pending-out in another exchange, or gone).
    #[error("instrument {id} is {holding}, not held")]
    NotHeld {
        /// The instrument.
        id: InstrumentId,
        /// Where it stands.
        holding: &'static str,
    },
    /// The instrument may not be passed to a person.
    #[error("instrument {0} is not transferable")]
    NotTransferable(InstrumentId),
    /// Accepting the instrument would put it past this wallet's offline
    /// policy ([`crate::Wallet::offline_policy`]): more unreconciled hops
    /// or a larger note than it takes unseen by the registry. The sender
    /// reconciles first (a registered certificate resets the hops) or pays
    /// with smaller notes.
    #[error("past this wallet's offline policy: {0}; the sender syncs with the registry first")]
    OverOfflineLimit(String),
    /// The list of instruments is empty, too long or repeats one.
    #[error("bad list of instruments: {0}")]
    BadItems(&'static str),
    /// The terms are malformed.
    #[error("bad terms: {0}")]
    BadTerms(&'static str),
    /// The payment does not pay the price as the offer asks.
    #[error("bad payment: {0}")]
    BadPayment(&'static str),
    /// The change does not make up the overpayment.
    #[error("bad change: {0}")]
    BadChange(&'static str),
    /// Not enough notes to pay.
    #[error("not enough money: {needed} needed, {available} minor units available")]
    InsufficientFunds {
        /// The price.
        needed: Amount,
        /// Held notes of that currency.
        available: u64,
    },
    /// No set of held notes pays the price with change the seller can give.
    #[error("no set of held notes pays the price with change the seller can give")]
    CannotMakeChange,
    /// Stored exchange state does not decode.
    #[error("stored exchange state is corrupt: {0}")]
    Corrupt(String),
}

impl From<StoreError> for TransferError {
    fn from(e: StoreError) -> Self {
        TransferError::Wallet(WalletError::Store(e))
    }
}

impl From<SignerError> for TransferError {
    fn from(e: SignerError) -> Self {
        TransferError::Wallet(WalletError::Signer(e))
    }
}

/// Which side of an exchange this wallet is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// It offered.
    Sender,
    /// It was offered.
    Receiver,
}

/// One instrument of an offer, for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSummary {
    /// The instrument.
    pub id: InstrumentId,
    /// Its kind.
    pub kind: Kind,
    /// A one-line label.
    pub label: String,
    /// Value, for notes.
    pub amount: Option<Amount>,
    /// Links after genesis or certificate.
    pub hops: usize,
}

/// An offer as the receiver's screen shows it, after the verifier passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The exchange.
    pub offer_id: ExchangeId,
    /// The sender's account key.
    pub sender: PublicKey,
    /// What is offered.
    pub items: Vec<ItemSummary>,
    /// The price, for a sale.
    pub price: Option<Amount>,
    /// Answer before this time.
    pub expires_at: Timestamp,
}

impl OfferSummary {
    pub(crate) fn of(offer: &Offer) -> Self {
        let items = offer
            .body
            .items
            .iter()
            .map(|i| ItemSummary {
                id: i.id(),
                kind: i.kind(),
                label: i.attributes().label(),
                amount: i.attributes().amount().cloned(),
                hops: i.links.len(),
            })
            .collect();
        Self {
            offer_id: offer.body.offer_id,
            sender: offer.body.sender,
            items,
            price: offer.body.terms.price().cloned(),
            expires_at: offer.body.expires_at,
        }
    }
}

/// What the app hears about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// A verified offer waits for the user's answer.
    OfferReceived(OfferSummary),
    /// The receiver accepted (seen from either side).
    Accepted {
        /// The exchange.
        exchange: ExchangeId,
        /// This wallet's side.
        role: Role,
    },
    /// The receiver declined (seen from either side).
    Declined {
        /// The exchange.
        exchange: ExchangeId,
        /// This wallet's side.
        role: Role,
        /// The receiver's reason.
        reason: String,
    },
    /// The exchange is complete on this side.
    Completed {
        /// The exchange.
        exchange: ExchangeId,
        /// This wallet's side.
        role: Role,
        /// Instruments now in this wallet (items or payment and change).
        received: Vec<InstrumentId>,
        /// Instruments that left this wallet.
        sent: Vec<InstrumentId>,
    },
    /// The offer expired unanswered; nothing moved.
    Expired {
        /// The exchange.
        exchange: ExchangeId,
        /// This wallet's side.
        role: Role,
    },
}

/// What one engine call asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Bytes ([`TransferMessage`]) to send to the peer, if any.
    pub send: Option<Vec<u8>>,
    /// Events for the app.
    pub events: Vec<TransferEvent>,
    /// When to call [`Wallet::transfer_tick`] next, if anything waits on time.
    pub timeout: Option<Timestamp>,
}

/// The terms a sender asks for; the wallet fills in keys and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferTerms {
    /// Nothing in return.
    Gift,
    /// A price in e-money.
    Sale(Amount),
}

/// An exchange as `tessera pending` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSummary {
    /// The exchange.
    pub exchange: ExchangeId,
    /// This wallet's side.
    pub role: Role,
    /// The state's name.
    pub state: &'static str,
    /// Whether it is over.
    pub is_final: bool,
    /// The offer.
    pub offer: OfferSummary,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A message to send again after a reopen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retransmit {
    /// The exchange.
    pub exchange: ExchangeId,
    /// This wallet's side.
    pub role: Role,
    /// The offer's sender account key (the peer when this wallet is the receiver).
    pub sender: PublicKey,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl<S: WalletStore> Wallet<S> {
    /// Remembers which transport peer (opaque bytes, at most 128) an
    /// exchange runs with, so that after a restart the transport knows where
    /// to resend what [`Wallet::resume_transfers`] returns.
    pub fn remember_transfer_peer(&mut self, exchange: ExchangeId, peer: &[u8]) -> Result<(), TransferError> {
        if peer.len() > 128 {
            return Err(TransferError::BadItems("a peer address is at most 128 bytes"));
        }
        let key = format!("{META_PEER_PREFIX}{exchange}");
        if self.store.meta(&key)?.as_deref() == Some(peer) {
            return Ok(());
        }
        self.store.apply(crate::store::WriteBatch(vec![Write::PutMeta(key, peer.to_vec())]))?;
        Ok(())
    }

    /// The transport peer remembered for an exchange.
    pub fn transfer_peer(&self, exchange: &ExchangeId) -> Result<Option<Vec<u8>>, TransferError> {
        Ok(self.store.meta(&format!("{META_PEER_PREFIX}{exchange}"))?)
    }

    /// Exchanges in this wallet, in progress first.
    pub fn transfers(&self) -> Result<Vec<TransferSummary>, TransferError> {
        let mut out = Vec::new();
        for record in self.store.all_pending()? {
            let (role, state, is_final, offer) = match record.protocol.as_str() {
                PROTOCOL_OUT => {
                    let s = sender::load(&record.state)?;
                    (Role::Sender, s.name(), s.is_final(), OfferSummary::of(s.offer()))
                }
                PROTOCOL_IN => {
                    let s = receiver::load(&record.state)?;
                    (Role::Receiver, s.name(), s.is_final(), OfferSummary::of(s.offer()))
                }
                _ => continue,
            };
            out.push(TransferSummary {
                exchange: record.id,
                role,
                state,
                is_final,
                offer,
                updated_at: record.updated_at,
            });
        }
        out.sort_by_key(|t| (t.is_final, std::cmp::Reverse(t.updated_at)));
        Ok(out)
    }

    /// Handles any transfer message from a peer, as sender or receiver.
    pub fn handle_transfer(&mut self, bytes: &[u8]) -> Result<Step, TransferError> {
        use crate::codec::Wire;
        let message = TransferMessage::from_bytes(bytes)?;
        match message {
            TransferMessage::Offer(offer) => self.receive_offer(offer),
            TransferMessage::Acceptance(a) => self.receive_acceptance(a),
            TransferMessage::Decline(d) => self.receive_decline(d),
            TransferMessage::Certificate(c) => self.receive_certificate(c),
            TransferMessage::Receipt(r) => self.receive_receipt(r),
        }
    }

    /// Expires offers whose time has passed, on either side. Call it at
    /// the timeouts the steps return (and after a reopen).
    pub fn transfer_tick(&mut self) -> Result<Vec<Step>, TransferError> {
        let now = self.now();
        let mut steps = Vec::new();
        for record in self.store.all_pending()? {
            match record.protocol.as_str() {
                PROTOCOL_OUT => {
                    if let SenderState::Offered(s) = sender::load(&record.state)?
                        && now > s.offer.body.expires_at
                    {
                        steps.push(self.close_offer(s, None)?);
                    }
                }
                PROTOCOL_IN => {
                    if let ReceiverState::Offered(offer) = receiver::load(&record.state)?
                        && now > offer.body.expires_at
                    {
                        steps.push(self.expire_incoming(offer)?);
                    }
                }
                _ => {}
            }
        }
        Ok(steps)
    }

    /// After a reopen: the messages to send again so that every exchange
    /// in progress moves on (see the recovery tables above).
    pub fn resume_transfers(&self) -> Result<Vec<Retransmit>, TransferError> {
        use crate::codec::Wire;
        let mut out = Vec::new();
        for record in self.store.all_pending()? {
            let (role, offer, message) = match record.protocol.as_str() {
                PROTOCOL_OUT => match sender::load(&record.state)? {
                    SenderState::Offered(s) => (Role::Sender, s.offer.clone(), TransferMessage::Offer(s.offer)),
                    SenderState::Certified(s) => (Role::Sender, s.offer, TransferMessage::Certificate(s.certificate)),
                    _ => continue,
                },
                PROTOCOL_IN => match receiver::load(&record.state)? {
                    ReceiverState::Accepted(o, a) => (Role::Receiver, o, TransferMessage::Acceptance(a)),
                    // A decline only matters while the sender still holds the items locked.
                    ReceiverState::Declined(o, d) if self.now() <= o.body.expires_at => {
                        (Role::Receiver, o, TransferMessage::Decline(d))
                    }
                    _ => continue,
                },
                _ => continue,
            };
            out.push(Retransmit { exchange: record.id, role, sender: offer.body.sender, bytes: message.to_bytes() });
        }
        Ok(out)
    }
}

/// Sum of the notes' values in `currency`; `None` if any is not such a note.
pub(crate) fn note_sum(notes: &[Instrument], currency: &str) -> Option<u64> {
    let mut sum = 0u64;
    for n in notes {
        let a = n.attributes().amount()?;
        if a.currency != currency {
            return None;
        }
        sum = sum.checked_add(a.minor)?;
    }
    Some(sum)
}

/// Indices of a sub-multiset of `values` summing exactly to `target`
/// with at most `max_count` elements, fewest elements first. `values` is at
/// most a few dozen long, so the search is bounded by pruning on count.
pub(crate) fn exact_subset(values: &[u64], target: u64, max_count: usize) -> Option<Vec<usize>> {
    if target == 0 {
        return Some(Vec::new());
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(values[i]));
    for limit in 1..=max_count.min(values.len()) {
        let mut chosen = Vec::new();
        if search(values, &order, 0, target, limit, &mut chosen) {
            return Some(chosen);
        }
    }
    None
}

fn search(values: &[u64], order: &[usize], from: usize, left: u64, limit: usize, chosen: &mut Vec<usize>) -> bool {
    if left == 0 {
        return true;
    }
    if chosen.len() == limit {
        return false;
    }
    let mut last_tried = None;
    for pos in from..order.len() {
        let i = order[pos];
        let v = values[i];
        // Equal values are interchangeable: trying the second is wasted work.
        if v > left || last_tried == Some(v) {
            continue;
        }
        last_tried = Some(v);
        chosen.push(i);
        if search(values, order, pos + 1, left - v, limit, chosen) {
            return true;
        }
        chosen.pop();
    }
    false
}
