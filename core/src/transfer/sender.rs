//! The sending side: offer, answer an acceptance with the certificate,
//! close on the receipt, a decline or expiry.

use super::messages::{
    Acceptance, CertificateBody, Decline, MAX_ITEMS, Offer, OfferBody, Receipt, SignedPart, Terms, TransferCertificate,
    TransferMessage, check,
};
use super::state::{PROTOCOL_OUT, SenderCertified, SenderClosed, SenderCompleted, SenderOffered, SenderState};
use super::{OfferTerms, PAYEE_KEYS_PER_SALE, Role, Step, TransferError, TransferEvent, exact_subset, note_sum};
use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::{LocalSigner, Signer};
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Kind, Signed, Status};
use crate::store::{
    Direction, HistoryEntry, Holding, InstrumentFilter, InstrumentRecord, PendingRecord, WalletStore, Write, WriteBatch,
};
use crate::wallet::Wallet;
use rand::rngs::OsRng;
use std::collections::BTreeSet;

/// Most notes a sale offer sets aside for change.
const CHANGE_RESERVE: usize = 8;

pub(super) fn load(bytes: &[u8]) -> Result<SenderState, TransferError> {
    SenderState::from_bytes(bytes).map_err(|e| TransferError::Corrupt(e.to_string()))
}

pub(super) fn history(
    record: &InstrumentRecord,
    direction: Direction,
    now: Timestamp,
    exchange: ExchangeId,
    counterparty: crate::crypto::PublicKey,
    memo: String,
) -> Write {
    Write::AppendHistory(HistoryEntry {
        seq: 0,
        time: now,
        direction,
        kind: record.instrument.kind(),
        instrument_id: record.instrument.id(),
        amount: record.instrument.attributes().amount().cloned(),
        counterparty: Some(counterparty),
        exchange: Some(exchange),
        memo,
    })
}

impl<S: WalletStore> Wallet<S> {
    fn sender_state(&self, id: &ExchangeId) -> Result<Option<SenderState>, TransferError> {
        match self.store.pending(id)? {
            Some(r) if r.protocol == PROTOCOL_OUT => Ok(Some(load(&r.state)?)),
            _ => Ok(None),
        }
    }

    fn put_sender(&self, id: ExchangeId, state: &SenderState, now: Timestamp) -> Write {
        Write::PutPending(PendingRecord { id, protocol: PROTOCOL_OUT.into(), state: state.to_bytes(), updated_at: now })
    }

    /// A held, active record of ours, or the reason it cannot be offered.
    fn held_record(&self, id: &InstrumentId) -> Result<InstrumentRecord, TransferError> {
        let record = self.instrument(id)?;
        if record.holding != Holding::Held {
            return Err(TransferError::NotHeld { id: *id, holding: record.holding.as_str() });
        }
        Ok(record)
    }

    /// Offers `items` to whoever receives the returned bytes. The items
    /// (and, for a sale, the notes set aside for change) become pending-out
    /// in the same write as the exchange state, before the offer exists
    /// outside this wallet; they return to held on decline or expiry.
    pub fn offer_transfer(
        &mut self,
        items: &[InstrumentId],
        terms: OfferTerms,
        expires_at: Timestamp,
    ) -> Result<(ExchangeId, Step), TransferError> {
        let now = self.now();
        if items.is_empty() || items.len() > MAX_ITEMS {
            return Err(TransferError::BadItems("an offer carries 1 to 16 instruments"));
        }
        if items.iter().collect::<BTreeSet<_>>().len() != items.len() {
            return Err(TransferError::BadItems("an instrument is listed twice"));
        }
        if expires_at <= now {
            return Err(TransferError::Expired { expires_at, now });
        }
        let verifier = self.verifier()?;
        let mut records = Vec::with_capacity(items.len());
        for id in items {
            let record = self.held_record(id)?;
            verifier
                .verify_for_holder(&record.instrument, &record.holder, now)
                .map_err(|reason| TransferError::Rejected { id: *id, reason })?;
            if !record.instrument.attributes().transferable() {
                return Err(TransferError::NotTransferable(*id));
            }
            records.push(record);
        }
        let mut batch = WriteBatch::new();
        let mut change_reserved = Vec::new();
        let terms = match terms {
            OfferTerms::Gift => Terms::Gift,
            OfferTerms::Sale(price) => {
                if price.minor == 0 || price.currency.len() != 3 {
                    return Err(TransferError::BadTerms("a price is a positive amount in a 3-letter currency"));
                }
                let mut payee_keys = Vec::with_capacity(PAYEE_KEYS_PER_SALE);
                for _ in 0..PAYEE_KEYS_PER_SALE {
                    let (key, write) = self.fresh_holder_key(now);
                    payee_keys.push(key);
                    batch.push(write);
                }
                // Small notes below the price are what change is made of.
                let mut candidates: Vec<_> = self
                    .store
                    .instruments(InstrumentFilter { kind: Some(Kind::Note), holding: Some(Holding::Held) })?
                    .into_iter()
                    .filter(|n| {
                        n.status == Status::Active
                            && !items.contains(&n.id)
                            && n.valid_until >= expires_at
                            && n.amount.as_ref().is_some_and(|a| a.currency == price.currency && a.minor < price.minor)
                    })
                    .collect();
                candidates.sort_by_key(|n| n.amount.as_ref().map_or(0, |a| a.minor));
                candidates.truncate(CHANGE_RESERVE);
                let mut change = Vec::new();
                for n in candidates {
                    let mut record = self.held_record(&n.id)?;
                    change.push(n.amount.as_ref().map_or(0, |a| a.minor));
                    change_reserved.push(n.id);
                    record.holding = Holding::PendingOut;
                    record.updated_at = now;
                    batch.push(Write::UpdateInstrument(record));
                }
                Terms::Sale { price, payee_keys, change }
            }
        };
        let offer_id = ExchangeId::random(&mut OsRng);
        let body = OfferBody {
            offer_id,
            sender: self.account,
            items: records.iter().map(|r| r.instrument.clone()).collect(),
            terms,
            created_at: now,
            expires_at,
        };
        let account = self.signer(&self.account)?;
        let holders = records.iter().map(|r| self.signer(&r.holder)).collect::<Result<Vec<LocalSigner>, _>>()?;
        let holder_refs: Vec<&dyn Signer> = holders.iter().map(|h| h as &dyn Signer).collect();
        let offer = Offer::sign(body, &account, &holder_refs)?;
        for mut record in records {
            record.holding = Holding::PendingOut;
            record.updated_at = now;
            batch.push(Write::UpdateInstrument(record));
        }
        let state = SenderState::Offered(SenderOffered { offer: offer.clone(), change_reserved });
        batch.push(self.put_sender(offer_id, &state, now));
        self.store.apply(batch)?;
        tracing::info!(exchange = %offer_id, items = items.len(), "offer made");
        let bytes = TransferMessage::Offer(offer).to_bytes();
        Ok((offer_id, Step { send: Some(bytes), events: Vec::new(), timeout: Some(expires_at.saturating_add(1)) }))
    }

    pub(super) fn receive_acceptance(&mut self, acceptance: Acceptance) -> Result<Step, TransferError> {
        let exchange = acceptance.body.offer_id;
        let now = self.now();
        let state = self.sender_state(&exchange)?.ok_or(TransferError::UnknownExchange(exchange))?;
        let offered = match state {
            SenderState::Offered(s) => s,
            // A retry of the acceptance already answered gets the same certificate.
            SenderState::Certified(s) if s.acceptance == acceptance => {
                return Ok(resend_certificate(s.certificate));
            }
            SenderState::Completed(s) if s.certified.acceptance == acceptance => {
                return Ok(resend_certificate(s.certified.certificate));
            }
            SenderState::Certified(_) | SenderState::Completed(_) => return Err(TransferError::Replayed(exchange)),
            other => {
                return Err(TransferError::WrongState { exchange, state: other.name(), message: "acceptance" });
            }
        };
        let offer = &offered.offer;
        let a = &acceptance.body;
        if a.offer_digest != offer.digest() {
            return Err(TransferError::Mismatch("the acceptance answers another offer"));
        }
        check(&acceptance, &a.receiver, SignedPart::Acceptance).map_err(TransferError::BadSignature)?;
        if now > offer.body.expires_at {
            return Err(TransferError::Expired { expires_at: offer.body.expires_at, now });
        }
        if a.receiver == self.account {
            return Err(TransferError::OwnOffer);
        }
        let items = &offer.body.items;
        if a.holder_keys.len() != items.len() {
            return Err(TransferError::Mismatch("one holder key per offered instrument is needed"));
        }
        if a.holder_keys.iter().collect::<BTreeSet<_>>().len() != a.holder_keys.len() {
            return Err(TransferError::Mismatch("holder keys must be distinct"));
        }

        let mut batch = WriteBatch::new();
        let events = vec![TransferEvent::Accepted { exchange, role: Role::Sender }];
        let mut received = Vec::new();
        let mut change_sent = Vec::new();
        let mut change_links = Vec::new();
        match &offer.body.terms {
            Terms::Gift => {
                if !a.payment.is_empty() || !a.change_keys.is_empty() {
                    return Err(TransferError::BadPayment("a gift takes no payment"));
                }
            }
            Terms::Sale { price, payee_keys, .. } => {
                if a.payment.is_empty() || a.payment.len() > payee_keys.len() {
                    return Err(TransferError::BadPayment("the payment must use 1 to as many notes as payee keys"));
                }
                let verifier = self.verifier()?;
                let mut seen = BTreeSet::new();
                for (note, payee) in a.payment.iter().zip(payee_keys) {
                    let id = note.id();
                    if !seen.insert(id) || items.iter().any(|i| i.id() == id) {
                        return Err(TransferError::BadPayment("a note is listed twice"));
                    }
                    if note.kind() != Kind::Note {
                        return Err(TransferError::BadPayment("only notes pay"));
                    }
                    let Some(link) = note.links.last() else {
                        return Err(TransferError::BadPayment("a payment note must be endorsed to the payee"));
                    };
                    if link.body.offer_id != exchange || link.body.acceptance_id != a.acceptance_id {
                        return Err(TransferError::Mismatch("a payment endorsement is bound to another exchange"));
                    }
                    if link.body.new_holder != *payee {
                        return Err(TransferError::WrongHolderKey {
                            instrument: id,
                            expected: *payee,
                            found: link.body.new_holder,
                        });
                    }
                    let verified = verifier
                        .verify_for_holder(note, payee, now)
                        .map_err(|reason| TransferError::Rejected { id, reason })?;
                    // No offline-policy check: the buyer committed its notes
                    // in the acceptance, so refusing them now would lock its
                    // money until the registry refunds it. The seller's risk
                    // on them is at most the price it asked.
                    let existing = self.store.instrument(&id)?;
                    if existing.as_ref().is_some_and(|r| r.instrument.sequence() >= note.sequence()) {
                        return Err(TransferError::Stale(id));
                    }
                    let record = InstrumentRecord {
                        instrument: note.clone(),
                        holder: *payee,
                        holding: Holding::Held,
                        uses_left: verified.state.uses_left,
                        status: verified.state.status,
                        exam_counter: existing.as_ref().map_or(0, |r| r.exam_counter),
                        updated_at: now,
                    };
                    batch.push(history(&record, Direction::In, now, exchange, a.receiver, "payment received".into()));
                    batch.push(if existing.is_some() {
                        Write::UpdateInstrument(record)
                    } else {
                        Write::InsertInstrument(record)
                    });
                    received.push(id);
                }
                let paid = note_sum(&a.payment, &price.currency)
                    .ok_or(TransferError::BadPayment("the payment is not in the price's currency"))?;
                if paid < price.minor {
                    return Err(TransferError::BadPayment("the payment is less than the price"));
                }
                let mut reserved = Vec::new();
                for id in &offered.change_reserved {
                    reserved.push(self.instrument(id)?);
                }
                let values: Vec<u64> =
                    reserved.iter().map(|r| r.instrument.attributes().amount().map_or(0, |x| x.minor)).collect();
                let chosen = exact_subset(&values, paid - price.minor, a.change_keys.len())
                    .ok_or(TransferError::BadChange("the reserved notes cannot make this change"))?;
                let mut chosen_records = Vec::new();
                for (index, record) in reserved.into_iter().enumerate() {
                    if chosen.contains(&index) {
                        chosen_records.push(record);
                    } else {
                        let mut record = record;
                        record.holding = Holding::Held;
                        record.updated_at = now;
                        batch.push(Write::UpdateInstrument(record));
                    }
                }
                for (record, key) in chosen_records.into_iter().zip(&a.change_keys) {
                    let link = self.sign_link(&record, *key, exchange, a.acceptance_id, now)?;
                    let mut record = record;
                    record.instrument = record.instrument.with_link(link);
                    record.updated_at = now;
                    batch.push(history(&record, Direction::Out, now, exchange, a.receiver, "change given".into()));
                    change_sent.push(record.instrument.id());
                    change_links.push(record.instrument.clone());
                    batch.push(Write::UpdateInstrument(record));
                }
            }
        }

        let mut endorsements = Vec::with_capacity(items.len());
        for (item, key) in items.iter().zip(&a.holder_keys) {
            let mut record = self.instrument(&item.id())?;
            if record.instrument != *item || record.holding != Holding::PendingOut {
                return Err(TransferError::Corrupt(format!("offered instrument {} changed", item.id())));
            }
            let link = self.sign_link(&record, *key, exchange, a.acceptance_id, now)?;
            record.instrument = record.instrument.with_link(link.clone());
            record.updated_at = now;
            let memo = format!("sent to holder {}", key.short());
            batch.push(history(&record, Direction::Out, now, exchange, a.receiver, memo));
            batch.push(Write::UpdateInstrument(record));
            endorsements.push(link);
        }
        let body = CertificateBody {
            offer_id: exchange,
            acceptance_id: a.acceptance_id,
            acceptance_digest: acceptance.digest(),
            endorsements,
            change: change_links,
        };
        let certificate = Signed::sign(body, &self.signer(&self.account)?)?;
        let state = SenderState::Certified(SenderCertified {
            offer: offered.offer.clone(),
            acceptance: acceptance.clone(),
            certificate: certificate.clone(),
            change_sent,
        });
        batch.push(self.put_sender(exchange, &state, now));
        self.store.apply(batch)?;
        tracing::info!(%exchange, payment_notes = received.len(), "acceptance answered with a certificate");
        Ok(Step { send: Some(TransferMessage::Certificate(certificate).to_bytes()), events, timeout: None })
    }

    /// Signs the next link of `record` (held by one of our keys) to `new_holder`.
    pub(crate) fn sign_link(
        &self,
        record: &InstrumentRecord,
        new_holder: crate::crypto::PublicKey,
        offer_id: ExchangeId,
        acceptance_id: ExchangeId,
        now: Timestamp,
    ) -> Result<Signed<crate::instrument::Endorsement>, TransferError> {
        Ok(self.sign_next_link(record, new_holder, offer_id, acceptance_id, now)?)
    }

    pub(super) fn receive_decline(&mut self, decline: Decline) -> Result<Step, TransferError> {
        let exchange = decline.body.offer_id;
        let state = self.sender_state(&exchange)?.ok_or(TransferError::UnknownExchange(exchange))?;
        match state {
            SenderState::Offered(s) => {
                if decline.body.offer_digest != s.offer.digest() {
                    return Err(TransferError::Mismatch("the decline answers another offer"));
                }
                check(&decline, &decline.body.receiver, SignedPart::Decline).map_err(TransferError::BadSignature)?;
                self.close_offer(s, Some(decline))
            }
            SenderState::Closed(s) if s.decline.as_ref() == Some(&decline) => Ok(Step::default()),
            other => Err(TransferError::WrongState { exchange, state: other.name(), message: "decline" }),
        }
    }

    /// Declined or expired: everything locked by the offer goes back to held.
    pub(super) fn close_offer(
        &mut self,
        offered: SenderOffered,
        decline: Option<Decline>,
    ) -> Result<Step, TransferError> {
        let now = self.now();
        let exchange = offered.offer.id();
        let mut batch = WriteBatch::new();
        let ids = offered.offer.body.items.iter().map(|i| i.id()).chain(offered.change_reserved.iter().copied());
        for id in ids {
            let mut record = self.instrument(&id)?;
            if record.holding == Holding::PendingOut {
                record.holding = Holding::Held;
                record.updated_at = now;
                batch.push(Write::UpdateInstrument(record));
            }
        }
        let event = match &decline {
            Some(d) => TransferEvent::Declined { exchange, role: Role::Sender, reason: d.body.reason.clone() },
            None => TransferEvent::Expired { exchange, role: Role::Sender },
        };
        let state = SenderState::Closed(SenderClosed { offer: offered.offer, decline });
        batch.push(self.put_sender(exchange, &state, now));
        self.store.apply(batch)?;
        tracing::info!(%exchange, state = state.name(), "offer closed, instruments held again");
        Ok(Step { send: None, events: vec![event], timeout: None })
    }

    pub(super) fn receive_receipt(&mut self, receipt: Receipt) -> Result<Step, TransferError> {
        let exchange = receipt.body.offer_id;
        let now = self.now();
        let state = self.sender_state(&exchange)?.ok_or(TransferError::UnknownExchange(exchange))?;
        let certified = match state {
            SenderState::Certified(s) => s,
            SenderState::Completed(s) if s.receipt == receipt => return Ok(Step::default()),
            other => return Err(TransferError::WrongState { exchange, state: other.name(), message: "receipt" }),
        };
        let r = &receipt.body;
        if r.acceptance_id != certified.acceptance.body.acceptance_id
            || r.certificate_digest != certified.certificate.digest()
        {
            return Err(TransferError::Mismatch("the receipt is for another certificate"));
        }
        let receiver = certified.acceptance.body.receiver;
        if r.receiver != receiver {
            return Err(TransferError::Mismatch("the receipt is from another receiver"));
        }
        check(&receipt, &receiver, SignedPart::Receipt).map_err(TransferError::BadSignature)?;
        let mut batch = WriteBatch::new();
        let sent: Vec<InstrumentId> =
            certified.offer.body.items.iter().map(|i| i.id()).chain(certified.change_sent.iter().copied()).collect();
        for id in &sent {
            let mut record = self.instrument(id)?;
            if record.holding == Holding::PendingOut {
                record.holding = Holding::Gone;
                record.updated_at = now;
                batch.push(Write::UpdateInstrument(record));
            }
        }
        let received = certified.acceptance.body.payment.iter().map(|n| n.id()).collect();
        let state = SenderState::Completed(SenderCompleted { certified, receipt });
        batch.push(self.put_sender(exchange, &state, now));
        self.store.apply(batch)?;
        tracing::info!(%exchange, "receipt in: transfer complete");
        Ok(Step {
            send: None,
            events: vec![TransferEvent::Completed { exchange, role: Role::Sender, received, sent }],
            timeout: None,
        })
    }
}

fn resend_certificate(certificate: TransferCertificate) -> Step {
    Step { send: Some(TransferMessage::Certificate(certificate).to_bytes()), events: Vec::new(), timeout: None }
}
