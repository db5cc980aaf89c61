//! The receiving side: check an offer, accept (paying for a sale) or
//! decline, take the certificate and sign the receipt.

use super::messages::{
    AcceptanceBody, DeclineBody, MAX_CHANGE_NOTES, MAX_ITEMS, MAX_PAYMENT_NOTES, Offer, ReceiptBody, SignedPart, Terms,
    TransferCertificate, TransferMessage, check,
};
use super::sender::history;
use super::state::{PROTOCOL_IN, ReceiverState};
use super::{OfferSummary, Role, Step, TransferError, TransferEvent, exact_subset, note_sum};
use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Kind, Signed, Status, is_denomination};
use crate::store::{
    Direction, Holding, InstrumentFilter, InstrumentRecord, PendingRecord, WalletStore, Write, WriteBatch,
};
use crate::verify::Rejection;
use crate::wallet::Wallet;
use rand::rngs::OsRng;
use std::collections::BTreeSet;

/// Held notes considered when choosing a payment.
const PAYMENT_CANDIDATES: usize = 32;

pub(super) fn load(bytes: &[u8]) -> Result<ReceiverState, TransferError> {
    ReceiverState::from_bytes(bytes).map_err(|e| TransferError::Corrupt(e.to_string()))
}

impl<S: WalletStore> Wallet<S> {
    fn receiver_state(&self, id: &ExchangeId) -> Result<Option<ReceiverState>, TransferError> {
        match self.store.pending(id)? {
            Some(r) if r.protocol == PROTOCOL_IN => Ok(Some(load(&r.state)?)),
            Some(_) => Err(TransferError::OwnOffer),
            None => Ok(None),
        }
    }

    fn put_receiver(&self, id: ExchangeId, state: &ReceiverState, now: Timestamp) -> Write {
        Write::PutPending(PendingRecord { id, protocol: PROTOCOL_IN.into(), state: state.to_bytes(), updated_at: now })
    }

    /// Checks an offer as the receiver must before showing it: signatures,
    /// every item through the verifier, terms, expiry, and that this wallet
    /// does not already hold a later state of an item.
    pub fn check_offer(&self, offer: &Offer) -> Result<OfferSummary, TransferError> {
        let now = self.now();
        let body = &offer.body;
        if body.sender == self.account {
            return Err(TransferError::OwnOffer);
        }
        if body.items.is_empty() || body.items.len() > MAX_ITEMS {
            return Err(TransferError::BadItems("an offer carries 1 to 16 instruments"));
        }
        if body.items.iter().map(|i| i.id()).collect::<BTreeSet<_>>().len() != body.items.len() {
            return Err(TransferError::BadItems("an instrument is listed twice"));
        }
        if now > body.expires_at || body.created_at > body.expires_at {
            return Err(TransferError::Expired { expires_at: body.expires_at, now });
        }
        offer.verify_signatures().map_err(TransferError::BadSignature)?;
        let verifier = self.verifier()?;
        for item in &body.items {
            let id = item.id();
            verifier.verify(item, now).map_err(|reason| TransferError::Rejected { id, reason })?;
            if !item.attributes().transferable() {
                return Err(TransferError::NotTransferable(id));
            }
            // The sender's endorsement to us is one more hop.
            if let Some(excess) = self.offline.excess(item, 1) {
                return Err(TransferError::OverOfflineLimit(excess));
            }
            if let Some(ours) = self.store.instrument(&id)?
                && ours.instrument.sequence() >= item.sequence()
            {
                return Err(TransferError::Stale(id));
            }
        }
        if let Terms::Sale { price, payee_keys, change } = &body.terms {
            if price.minor == 0 || price.currency.len() != 3 {
                return Err(TransferError::BadTerms("a price is a positive amount in a 3-letter currency"));
            }
            if payee_keys.is_empty() || payee_keys.len() > MAX_PAYMENT_NOTES {
                return Err(TransferError::BadTerms("a sale names 1 to 16 payee keys"));
            }
            if payee_keys.iter().collect::<BTreeSet<_>>().len() != payee_keys.len() {
                return Err(TransferError::BadTerms("payee keys must be distinct"));
            }
            if change.len() > MAX_CHANGE_NOTES || !change.iter().all(|c| is_denomination(*c)) {
                return Err(TransferError::BadTerms("change is at most 16 notes of allowed denominations"));
            }
        }
        Ok(OfferSummary::of(offer))
    }

    pub(super) fn receive_offer(&mut self, offer: Offer) -> Result<Step, TransferError> {
        let exchange = offer.id();
        let now = self.now();
        if let Some(state) = self.receiver_state(&exchange)? {
            if *state.offer() != offer {
                return Err(TransferError::Replayed(exchange));
            }
            // A retried offer gets the answer already given, if any.
            let send = match state {
                ReceiverState::Accepted(_, a) => Some(TransferMessage::Acceptance(a).to_bytes()),
                ReceiverState::Declined(_, d) => Some(TransferMessage::Decline(d).to_bytes()),
                _ => None,
            };
            return Ok(Step { send, events: Vec::new(), timeout: None });
        }
        let summary = self.check_offer(&offer)?;
        let expires_at = offer.body.expires_at;
        let state = ReceiverState::Offered(offer);
        self.store.apply(WriteBatch(vec![self.put_receiver(exchange, &state, now)]))?;
        tracing::info!(%exchange, items = summary.items.len(), "offer received");
        Ok(Step {
            send: None,
            events: vec![TransferEvent::OfferReceived(summary)],
            timeout: Some(expires_at.saturating_add(1)),
        })
    }

    fn offered(&self, exchange: ExchangeId) -> Result<Offer, TransferError> {
        match self.receiver_state(&exchange)?.ok_or(TransferError::UnknownExchange(exchange))? {
            ReceiverState::Offered(offer) => Ok(offer),
            other => Err(TransferError::WrongState { exchange, state: other.name(), message: "answer" }),
        }
    }

    /// The user said yes. Fresh holder keys are made for the items; for a
    /// sale, held notes are endorsed to the sender's payee keys, bound to
    /// this offer and acceptance, and become pending-out — all in one write
    /// with the exchange state, before the acceptance leaves.
    pub fn accept_offer(&mut self, exchange: ExchangeId) -> Result<Step, TransferError> {
        let offer = self.offered(exchange)?;
        let now = self.now();
        if now > offer.body.expires_at {
            return Err(TransferError::Expired { expires_at: offer.body.expires_at, now });
        }
        let acceptance_id = ExchangeId::random(&mut OsRng);
        let mut batch = WriteBatch::new();
        let mut holder_keys = Vec::new();
        for _ in &offer.body.items {
            let (key, write) = self.fresh_holder_key(now);
            holder_keys.push(key);
            batch.push(write);
        }
        let mut payment = Vec::new();
        let mut change_keys = Vec::new();
        if let Terms::Sale { price, payee_keys, change } = &offer.body.terms {
            let (notes, change_count) = self.choose_payment(price, payee_keys.len(), change, offer.body.expires_at)?;
            for _ in 0..change_count {
                let (key, write) = self.fresh_holder_key(now);
                change_keys.push(key);
                batch.push(write);
            }
            for (record, payee) in notes.into_iter().zip(payee_keys) {
                let link = self.sign_link(&record, *payee, exchange, acceptance_id, now)?;
                let mut record = record;
                record.instrument = record.instrument.with_link(link);
                record.holding = Holding::PendingOut;
                record.updated_at = now;
                batch.push(history(&record, Direction::Out, now, exchange, offer.body.sender, "payment".into()));
                payment.push(record.instrument.clone());
                batch.push(Write::UpdateInstrument(record));
            }
        }
        let body = AcceptanceBody {
            offer_id: exchange,
            offer_digest: offer.digest(),
            acceptance_id,
            receiver: self.account,
            holder_keys,
            payment,
            change_keys,
            time: now,
        };
        let acceptance = Signed::sign(body, &self.signer(&self.account)?)?;
        let state = ReceiverState::Accepted(offer, acceptance.clone());
        batch.push(self.put_receiver(exchange, &state, now));
        self.store.apply(batch)?;
        tracing::info!(%exchange, "offer accepted");
        Ok(Step {
            send: Some(TransferMessage::Acceptance(acceptance).to_bytes()),
            events: vec![TransferEvent::Accepted { exchange, role: Role::Receiver }],
            timeout: None,
        })
    }

    /// Held notes paying `price` so that the overpayment is a sum of the
    /// seller's change denominations; returns them and how many change
    /// notes to expect.
    fn choose_payment(
        &self,
        price: &crate::instrument::Amount,
        max_notes: usize,
        change: &[u64],
        expires_at: Timestamp,
    ) -> Result<(Vec<InstrumentRecord>, usize), TransferError> {
        let now = self.now();
        let verifier = self.verifier()?;
        let mut candidates = Vec::new();
        for n in self.store.instruments(InstrumentFilter { kind: Some(Kind::Note), holding: Some(Holding::Held) })? {
            if n.status != Status::Active
                || n.valid_until < expires_at
                || n.amount.as_ref().is_none_or(|a| a.currency != price.currency)
            {
                continue;
            }
            let record = self.instrument(&n.id)?;
            if verifier.verify_for_holder(&record.instrument, &record.holder, now).is_ok() {
                candidates.push(record);
            }
        }
        let value = |r: &InstrumentRecord| r.instrument.attributes().amount().map_or(0, |a| a.minor);
        let available: u64 = candidates.iter().map(value).sum();
        if available < price.minor {
            return Err(TransferError::InsufficientFunds { needed: price.clone(), available });
        }
        candidates.sort_by_key(|r| std::cmp::Reverse(value(r)));
        candidates.truncate(PAYMENT_CANDIDATES);
        let values: Vec<u64> = candidates.iter().map(value).collect();
        // Every amount of change the seller can give, smallest first, from
        // notes this wallet's offline policy takes.
        let mut change_sums: Vec<(u64, usize)> = vec![(0, 0)];
        for c in change.iter().filter(|c| **c <= self.offline.max_note_value) {
            let more: Vec<(u64, usize)> = change_sums.iter().map(|(s, k)| (s + c, k + 1)).collect();
            change_sums.extend(more);
            change_sums.sort_unstable();
            change_sums.dedup_by_key(|(s, _)| *s);
        }
        for (extra, change_count) in change_sums {
            if let Some(chosen) = exact_subset(&values, price.minor + extra, max_notes) {
                let mut chosen = chosen;
                chosen.sort_unstable();
                let notes =
                    candidates.into_iter().enumerate().filter(|(i, _)| chosen.contains(i)).map(|(_, r)| r).collect();
                return Ok((notes, change_count));
            }
        }
        Err(TransferError::CannotMakeChange)
    }

    /// The user said no. Nothing moves; the decline tells the sender to
    /// unlock the items at once instead of at expiry.
    pub fn decline_offer(&mut self, exchange: ExchangeId, reason: &str) -> Result<Step, TransferError> {
        let offer = self.offered(exchange)?;
        let now = self.now();
        let reason: String = reason.chars().take(200).collect();
        let body = DeclineBody {
            offer_id: exchange,
            offer_digest: offer.digest(),
            receiver: self.account,
            reason: reason.clone(),
            time: now,
        };
        let decline = Signed::sign(body, &self.signer(&self.account)?)?;
        let state = ReceiverState::Declined(offer, decline.clone());
        self.store.apply(WriteBatch(vec![self.put_receiver(exchange, &state, now)]))?;
        Ok(Step {
            send: Some(TransferMessage::Decline(decline).to_bytes()),
            events: vec![TransferEvent::Declined { exchange, role: Role::Receiver, reason }],
            timeout: None,
        })
    }

    pub(super) fn expire_incoming(&mut self, offer: Offer) -> Result<Step, TransferError> {
        let exchange = offer.id();
        let now = self.now();
        let state = ReceiverState::Expired(offer);
        self.store.apply(WriteBatch(vec![self.put_receiver(exchange, &state, now)]))?;
        Ok(Step { send: None, events: vec![TransferEvent::Expired { exchange, role: Role::Receiver }], timeout: None })
    }

    pub(super) fn receive_certificate(&mut self, certificate: TransferCertificate) -> Result<Step, TransferError> {
        let exchange = certificate.body.offer_id;
        let now = self.now();
        let state = self.receiver_state(&exchange)?.ok_or(TransferError::UnknownExchange(exchange))?;
        let (offer, acceptance) = match state {
            ReceiverState::Accepted(o, a) => (o, a),
            // A retried certificate gets the same receipt.
            ReceiverState::Completed(_, _, c, receipt) if c == certificate => {
                return Ok(Step {
                    send: Some(TransferMessage::Receipt(receipt).to_bytes()),
                    events: Vec::new(),
                    timeout: None,
                });
            }
            ReceiverState::Completed(..) => return Err(TransferError::Replayed(exchange)),
            other => return Err(TransferError::WrongState { exchange, state: other.name(), message: "certificate" }),
        };
        let c = &certificate.body;
        let a = &acceptance.body;
        if c.acceptance_id != a.acceptance_id || c.acceptance_digest != acceptance.digest() {
            return Err(TransferError::Mismatch("the certificate answers another acceptance"));
        }
        check(&certificate, &offer.body.sender, SignedPart::Certificate).map_err(TransferError::BadSignature)?;
        let items = &offer.body.items;
        if c.endorsements.len() != items.len() {
            return Err(TransferError::Mismatch("one endorsement per offered instrument is needed"));
        }
        let verifier = self.verifier()?;
        let mut records = Vec::new();
        for (index, ((item, link), key)) in items.iter().zip(&c.endorsements).zip(&a.holder_keys).enumerate() {
            let e = &link.body;
            let id = item.id();
            if e.instrument_id != id {
                return Err(TransferError::WrongInstrument { index });
            }
            let expected = item.sequence().saturating_add(1);
            if e.sequence != expected {
                return Err(TransferError::WrongSequence { instrument: id, expected, found: e.sequence });
            }
            if e.previous != item.tip_digest() {
                return Err(TransferError::WrongPrevious(id));
            }
            if e.new_holder != *key {
                return Err(TransferError::WrongHolderKey { instrument: id, expected: *key, found: e.new_holder });
            }
            if e.offer_id != exchange || e.acceptance_id != a.acceptance_id {
                return Err(TransferError::Mismatch("an endorsement is bound to another exchange"));
            }
            // The verifier checks the new link's signature with the rest of
            // the chain (checking it here first too cost one more Ed25519
            // verification per item); its refusal of that link is reported
            // as the certificate's bad endorsement.
            let instrument = item.with_link(link.clone());
            let new_link = instrument.links.len();
            let verified = verifier.verify_for_holder(&instrument, key, now).map_err(|reason| match reason {
                Rejection::BadSignature { link } if link == new_link => {
                    TransferError::BadSignature(SignedPart::Endorsement(index))
                }
                reason => TransferError::Rejected { id, reason },
            })?;
            records.push((instrument, *key, verified.state));
        }
        match &offer.body.terms {
            Terms::Gift => {
                if !c.change.is_empty() {
                    return Err(TransferError::BadChange("a gift has no change"));
                }
            }
            Terms::Sale { price, .. } => {
                if c.change.len() > a.change_keys.len() {
                    return Err(TransferError::BadChange("more change notes than change keys"));
                }
                let mut seen = BTreeSet::new();
                for (note, key) in c.change.iter().zip(&a.change_keys) {
                    let id = note.id();
                    if !seen.insert(id) || note.kind() != Kind::Note {
                        return Err(TransferError::BadChange("change is distinct notes"));
                    }
                    let bound = note
                        .links
                        .last()
                        .is_some_and(|l| l.body.offer_id == exchange && l.body.acceptance_id == a.acceptance_id);
                    if !bound {
                        return Err(TransferError::Mismatch("a change endorsement is bound to another exchange"));
                    }
                    let verified = verifier
                        .verify_for_holder(note, key, now)
                        .map_err(|reason| TransferError::Rejected { id, reason })?;
                    // No offline-policy check here: the buyer has paid, and
                    // refusing the certificate would leave it without the
                    // items. `choose_payment` overpaid only by sums of change
                    // notes within the policy, so the risk is what it chose.
                    records.push((note.clone(), *key, verified.state));
                }
                let paid = note_sum(&a.payment, &price.currency).unwrap_or(0);
                let returned = note_sum(&c.change, &price.currency)
                    .ok_or(TransferError::BadChange("change is not in the price's currency"))?;
                if paid.checked_sub(price.minor) != Some(returned) {
                    return Err(TransferError::BadChange("the change does not make up the overpayment"));
                }
            }
        }

        let mut batch = WriteBatch::new();
        let mut received = Vec::new();
        for (instrument, key, state) in records {
            let id = instrument.id();
            let existing = self.store.instrument(&id)?;
            if existing.as_ref().is_some_and(|r| r.instrument.sequence() >= instrument.sequence()) {
                return Err(TransferError::Stale(id));
            }
            let record = InstrumentRecord {
                instrument,
                holder: key,
                holding: Holding::Held,
                uses_left: state.uses_left,
                status: state.status,
                exam_counter: existing.as_ref().map_or(0, |r| r.exam_counter),
                updated_at: now,
            };
            let memo = format!("received from {}", offer.body.sender.short());
            batch.push(history(&record, Direction::In, now, exchange, offer.body.sender, memo));
            batch.push(if existing.is_some() {
                Write::UpdateInstrument(record)
            } else {
                Write::InsertInstrument(record)
            });
            received.push(id);
        }
        let mut sent = Vec::new();
        for note in &a.payment {
            let mut record = self.instrument(&note.id())?;
            if record.holding == Holding::PendingOut {
                record.holding = Holding::Gone;
                record.updated_at = now;
                sent.push(note.id());
                batch.push(Write::UpdateInstrument(record));
            }
        }
        let item_ids: Vec<InstrumentId> = items.iter().map(|i| i.id()).collect();
        let body = ReceiptBody {
            offer_id: exchange,
            acceptance_id: a.acceptance_id,
            certificate_digest: certificate.digest(),
            receiver: self.account,
            instruments: item_ids,
            time: now,
        };
        let receipt = Signed::sign(body, &self.signer(&self.account)?)?;
        let state = ReceiverState::Completed(offer, acceptance, certificate, receipt.clone());
        batch.push(self.put_receiver(exchange, &state, now));
        self.store.apply(batch)?;
        tracing::info!(%exchange, "certificate stored, receipt signed");
        Ok(Step {
            send: Some(TransferMessage::Receipt(receipt).to_bytes()),
            events: vec![TransferEvent::Completed { exchange, role: Role::Receiver, received, sent }],
            timeout: None,
        })
    }
}
