//! Transfer offers between two wallets, transport-agnostic: the app carries
//! the bytes (over NFC with [`crate::Wallet::nfc_transfer`], over libp2p
//! with [`crate::P2pNode`], or any other way) and shows the events.
//!
//! ```text
//!  sender                                    receiver
//!  offer_transfer ── step.send (offer) ──▶   handle_transfer → OfferReceived
//!                                            accept_offer / decline_offer
//!  handle_transfer ◀── step.send ─────────   (acceptance or decline)
//!  → certificate  ──────────────────────▶    handle_transfer → Completed + receipt
//!  handle_transfer(receipt) → Completed
//! ```
//! Every step is persisted before its bytes are returned; sending a step's
//! bytes twice is harmless. `transfers()` lists exchanges with their state
//! (the progress screen), `transfer_tick()` expires offers at the steps'
//! timeouts, `resume_transfers()` gives the messages to resend after a restart.

use crate::error::{TransferError, WalletError};
use crate::types::{Amount, Kind};
use crate::wallet::{Wallet, parse_instrument_id};
use tessera_core::ExchangeId;
use tessera_core::transfer as core;

/// Which side of an exchange this wallet is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// It offered.
    Sender,
    /// It was offered.
    Receiver,
}

impl From<core::Role> for Role {
    fn from(role: core::Role) -> Self {
        match role {
            core::Role::Sender => Self::Sender,
            core::Role::Receiver => Self::Receiver,
        }
    }
}

/// One instrument of an offer, for the screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ItemSummary {
    pub id: String,
    pub kind: Kind,
    pub label: String,
    pub amount: Option<Amount>,
    /// Links after genesis or the registered certificate.
    pub hops: u32,
}

/// An offer as the receiver's screen shows it, after the verifier passed it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OfferSummary {
    pub offer_id: String,
    /// The sender's account key.
    pub sender: String,
    pub items: Vec<ItemSummary>,
    /// The price, for a sale.
    pub price: Option<Amount>,
    /// Answer before this time.
    pub expires_at: u64,
}

impl From<core::OfferSummary> for OfferSummary {
    fn from(o: core::OfferSummary) -> Self {
        Self {
            offer_id: o.offer_id.to_hex(),
            sender: o.sender.to_hex(),
            items: o
                .items
                .into_iter()
                .map(|i| ItemSummary {
                    id: i.id.to_hex(),
                    kind: i.kind.into(),
                    label: i.label,
                    amount: i.amount.map(Into::into),
                    hops: u32::try_from(i.hops).unwrap_or(u32::MAX),
                })
                .collect(),
            price: o.price.map(Into::into),
            expires_at: o.expires_at,
        }
    }
}

/// What the app hears about an exchange.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TransferEvent {
    /// A verified offer waits for the user's answer.
    OfferReceived { offer: OfferSummary },
    /// The receiver accepted (seen from either side).
    Accepted { exchange: String, role: Role },
    /// The receiver declined (seen from either side).
    Declined { exchange: String, role: Role, reason: String },
    /// The exchange is complete on this side.
    Completed { exchange: String, role: Role, received: Vec<String>, sent: Vec<String> },
    /// The offer expired unanswered; nothing moved.
    Expired { exchange: String, role: Role },
}

pub(crate) fn hex_ids(ids: Vec<tessera_core::InstrumentId>) -> Vec<String> {
    ids.iter().map(|i| i.to_hex()).collect()
}

impl From<core::TransferEvent> for TransferEvent {
    fn from(event: core::TransferEvent) -> Self {
        use core::TransferEvent as E;
        match event {
            E::OfferReceived(offer) => Self::OfferReceived { offer: offer.into() },
            E::Accepted { exchange, role } => Self::Accepted { exchange: exchange.to_hex(), role: role.into() },
            E::Declined { exchange, role, reason } => {
                Self::Declined { exchange: exchange.to_hex(), role: role.into(), reason }
            }
            E::Completed { exchange, role, received, sent } => Self::Completed {
                exchange: exchange.to_hex(),
                role: role.into(),
                received: hex_ids(received),
                sent: hex_ids(sent),
            },
            E::Expired { exchange, role } => Self::Expired { exchange: exchange.to_hex(), role: role.into() },
        }
    }
}

/// What one engine call asks the app to do.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransferStep {
    /// Bytes to send to the peer, if any.
    pub send: Option<Vec<u8>>,
    /// Events for the screen.
    pub events: Vec<TransferEvent>,
    /// When to call `transfer_tick` next (Unix seconds), if anything waits on time.
    pub timeout: Option<u64>,
}

impl From<core::Step> for TransferStep {
    fn from(step: core::Step) -> Self {
        Self { send: step.send, events: step.events.into_iter().map(Into::into).collect(), timeout: step.timeout }
    }
}

/// What a sender asks in return.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum OfferTerms {
    /// Nothing.
    Gift,
    /// A price in e-money; the wallet picks the payee keys and change.
    Sale { price: Amount },
}

impl From<OfferTerms> for core::OfferTerms {
    fn from(terms: OfferTerms) -> Self {
        match terms {
            OfferTerms::Gift => Self::Gift,
            OfferTerms::Sale { price } => {
                Self::Sale(tessera_core::instrument::Amount::new(&price.currency, price.minor))
            }
        }
    }
}

/// An exchange as the progress screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransferSummary {
    pub exchange: String,
    pub role: Role,
    /// The state's name (`offered`, `accepted`, `certified`, `completed`, …).
    pub state: String,
    /// Whether it is over.
    pub is_final: bool,
    pub offer: OfferSummary,
    pub updated_at: u64,
}

/// A message to send again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Retransmit {
    pub exchange: String,
    pub role: Role,
    /// The offer's sender account key (the peer when this wallet received it).
    pub sender: String,
    pub bytes: Vec<u8>,
}

/// An offer just made: its exchange id and the bytes to send.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OfferMade {
    pub exchange: String,
    pub step: TransferStep,
}

pub(crate) fn parse_exchange_id(hex: &str) -> Result<ExchangeId, WalletError> {
    ExchangeId::from_hex(hex).map_err(|e| WalletError::invalid_input(format!("exchange id {hex:?}: {e}")))
}

pub(crate) fn parse_items(items: &[String]) -> Result<Vec<tessera_core::InstrumentId>, WalletError> {
    items.iter().map(|i| parse_instrument_id(i)).collect()
}

#[uniffi::export]
impl Wallet {
    /// Offers `items` (ids in hex) on `terms`, open for `ttl_seconds`. The
    /// items become pending-out before the offer's bytes are returned.
    pub fn offer_transfer(
        &self,
        items: Vec<String>,
        terms: OfferTerms,
        ttl_seconds: u64,
    ) -> Result<OfferMade, TransferError> {
        let items = parse_items(&items)?;
        let (exchange, step) = self.with(move |w| {
            let expires_at = w.now().saturating_add(ttl_seconds);
            w.offer_transfer(&items, terms.into(), expires_at)
        })??;
        Ok(OfferMade { exchange: exchange.to_hex(), step: step.into() })
    }

    /// Handles any transfer message from a peer, as sender or receiver.
    pub fn handle_transfer(&self, bytes: Vec<u8>) -> Result<TransferStep, TransferError> {
        Ok(self.with(move |w| w.handle_transfer(&bytes))??.into())
    }

    /// The user said yes to an offer received.
    pub fn accept_offer(&self, exchange: String) -> Result<TransferStep, TransferError> {
        let exchange = parse_exchange_id(&exchange)?;
        Ok(self.with(move |w| w.accept_offer(exchange))??.into())
    }

    /// The user said no; `reason` goes to the sender.
    pub fn decline_offer(&self, exchange: String, reason: String) -> Result<TransferStep, TransferError> {
        let exchange = parse_exchange_id(&exchange)?;
        Ok(self.with(move |w| w.decline_offer(exchange, &reason))??.into())
    }

    /// Exchanges in this wallet, in progress first.
    pub fn transfers(&self) -> Result<Vec<TransferSummary>, TransferError> {
        let list = self.with(|w| w.transfers())??;
        Ok(list
            .into_iter()
            .map(|t| TransferSummary {
                exchange: t.exchange.to_hex(),
                role: t.role.into(),
                state: t.state.to_owned(),
                is_final: t.is_final,
                offer: t.offer.into(),
                updated_at: t.updated_at,
            })
            .collect())
    }

    /// Expires offers whose time has passed; call it at the steps' timeouts.
    pub fn transfer_tick(&self) -> Result<Vec<TransferStep>, TransferError> {
        Ok(self.with(|w| w.transfer_tick())??.into_iter().map(Into::into).collect())
    }

    /// After a restart: the messages to send again so exchanges move on.
    pub fn resume_transfers(&self) -> Result<Vec<Retransmit>, TransferError> {
        let list = self.with(|w| w.resume_transfers())??;
        Ok(list
            .into_iter()
            .map(|r| Retransmit {
                exchange: r.exchange.to_hex(),
                role: r.role.into(),
                sender: r.sender.to_hex(),
                bytes: r.bytes,
            })
            .collect())
    }
}
