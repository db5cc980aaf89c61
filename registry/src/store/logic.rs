//! The rules both backends share, written once over the few primitive
//! operations each backend provides inside its transaction.

use super::{
    ChainOutcome, ChainUpdate, InstrumentRow, LinkRecord, NoteExchange, Notice, SaleRefund, SeenRow, StoreError,
    StoreResult,
};
use std::collections::{BTreeMap, BTreeSet};
use tessera_core::{Endorsement, ExchangeId, InstrumentId, PublicKey, Signed, Timestamp, Wire as _};

/// The primitive operations the chain rules need inside one transaction.
pub(crate) trait ChainTx {
    /// Reads an instrument row and locks it until the transaction ends.
    fn lock_instrument(&mut self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>>;
    /// The stored link at a sequence.
    fn link_at(&mut self, id: &InstrumentId, sequence: u32) -> StoreResult<Option<LinkRecord>>;
    /// Inserts a link unless one exists at its (instrument, sequence). The
    /// link is also the former-holder record of its signer (a view over the
    /// links in both schemas).
    fn insert_link(&mut self, link: &LinkRecord, now: Timestamp) -> StoreResult<bool>;
    /// Writes the mutable columns of a row.
    fn update_instrument(&mut self, row: &InstrumentRow) -> StoreResult<()>;
    /// Whether the sale of `offer` was refunded (read after the row lock).
    fn sale_refunded(&mut self, offer: &ExchangeId) -> StoreResult<bool>;
    /// False when no sale can be refunded here (the batch path read none),
    /// so links need not be decoded for their offer.
    fn may_have_refunds(&self) -> bool {
        true
    }
}

/// Primitive operations inside one open transaction.
pub(crate) trait Tx: ChainTx {
    /// Inserts an instrument unless it exists.
    fn insert_instrument(&mut self, row: &InstrumentRow) -> StoreResult<bool>;
    /// Inserts a ledger line unless its reference exists.
    fn insert_ledger(
        &mut self,
        reference: &str,
        account: &PublicKey,
        currency: &str,
        kind: &str,
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Marks an active note of `currency` registered to `holder` as spent
    /// (refunded); returns its value, or `None` when no such note exists.
    fn spend_note(
        &mut self,
        id: &InstrumentId,
        holder: &PublicKey,
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<Option<u64>>;
    /// Marks an active instrument registered to `holder` as refunded.
    fn retire(&mut self, id: &InstrumentId, holder: &PublicKey, now: Timestamp) -> StoreResult<bool>;
    /// Adds `delta` to a balance; the database refuses a negative result.
    fn adjust_balance(&mut self, account: &PublicKey, currency: &str, delta: i64) -> StoreResult<u64>;
    /// Leaves a notice; returns its id.
    fn push_notice(&mut self, notice: &Notice) -> StoreResult<u64>;
    /// Adds to the money totals of a currency.
    fn add_totals(
        &mut self,
        currency: &str,
        issued: u64,
        redeemed: u64,
        paid_in: u64,
        paid_out: u64,
    ) -> StoreResult<()>;
}

/// Applies chain updates in instrument-id order (a fixed lock order, so two
/// processes applying overlapping batches cannot deadlock).
pub(crate) fn apply_chains(
    tx: &mut impl ChainTx,
    updates: &[ChainUpdate],
    now: Timestamp,
) -> StoreResult<Vec<ChainOutcome>> {
    let mut order: Vec<usize> = (0..updates.len()).collect();
    order.sort_by_key(|i| updates[*i].instrument);
    let mut outcomes: Vec<Option<ChainOutcome>> = vec![None; updates.len()];
    for i in order {
        outcomes[i] = Some(apply_chain(tx, &updates[i], now)?);
    }
    Ok(outcomes.into_iter().map(|o| o.unwrap_or(ChainOutcome::Unknown)).collect())
}

fn apply_chain(tx: &mut impl ChainTx, update: &ChainUpdate, now: Timestamp) -> StoreResult<ChainOutcome> {
    let Some(mut row) = tx.lock_instrument(&update.instrument)? else {
        return Ok(ChainOutcome::Unknown);
    };
    let mut added = 0u32;
    let mut changed = false;
    for link in &update.links {
        if link.instrument != update.instrument {
            return Ok(ChainOutcome::Disconnected { sequence: link.sequence });
        }
        if link.sequence <= row.sequence {
            // Already past this step: it must be the very link registered.
            match tx.link_at(&row.id, link.sequence)? {
                Some(registered) if registered.digest == link.digest => continue,
                Some(registered) => {
                    if changed {
                        tx.update_instrument(&row)?;
                    }
                    return Ok(ChainOutcome::Conflict { registered, uploaded: link.clone(), row });
                }
                None => return Ok(ChainOutcome::Disconnected { sequence: link.sequence }),
            }
        }
        if link.sequence != row.sequence.saturating_add(1) || link.previous != row.tip || link.signer != row.holder {
            if changed {
                tx.update_instrument(&row)?;
            }
            return Ok(ChainOutcome::Disconnected { sequence: link.sequence });
        }
        if tx.may_have_refunds()
            && let Some(offer) = offer_of(link)?
            && tx.sale_refunded(&offer)?
        {
            if changed {
                tx.update_instrument(&row)?;
            }
            return Ok(ChainOutcome::SaleRefunded { sequence: link.sequence, offer });
        }
        if !tx.insert_link(link, now)? {
            // The row lock makes this unreachable unless another writer
            // bypassed it; the primary key still refused the second link.
            let registered = tx
                .link_at(&row.id, link.sequence)?
                .ok_or_else(|| StoreError::Backend("endorsement vanished inside a transaction".into()))?;
            if registered.digest != link.digest {
                if changed {
                    tx.update_instrument(&row)?;
                }
                return Ok(ChainOutcome::Conflict { registered, uploaded: link.clone(), row });
            }
            continue;
        }
        // The signer is now a former holder: the record is the link itself
        // (`former_holders`, a view over the endorsements).
        row.holder = link.new_holder;
        row.holder_since = link.sequence;
        row.sequence = link.sequence;
        row.tip = link.digest;
        row.updated_at = now;
        added += 1;
        changed = true;
    }
    if changed {
        tx.update_instrument(&row)?;
    }
    Ok(ChainOutcome::Applied { added, row })
}

/// The offer a link is bound to, if any (the record's bytes are a
/// verified endorsement).
fn offer_of(link: &LinkRecord) -> StoreResult<Option<ExchangeId>> {
    let e = Signed::<Endorsement>::from_bytes(&link.bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(e.body.offer_id).filter(|o| *o != ExchangeId::NONE))
}

/// The check a sale's refund makes in its transaction before it is
/// recorded: each item it is awaiting has its row locked (in id order, as
/// `apply_chains` locks) and still no link at the delivering sequence. A
/// delivery that committed first is seen here; one that comes later waits
/// for the row and then sees the refund ([`ChainTx::sale_refunded`]).
pub(crate) fn check_refund(tx: &mut impl ChainTx, refund: &SaleRefund) -> StoreResult<()> {
    let awaiting: BTreeSet<(InstrumentId, u32)> = refund.awaiting.iter().copied().collect();
    for (id, sequence) in awaiting {
        tx.lock_instrument(&id)?;
        if tx.link_at(&id, sequence)?.is_some() {
            return Err(StoreError::SaleChanged(refund.offer_id));
        }
    }
    Ok(())
}

/// Applies a note exchange: spend, issue, pay out, adjust the balance.
pub(crate) fn exchange_notes(
    tx: &mut impl Tx,
    exchange: &NoteExchange,
    now: Timestamp,
    current_balance: u64,
) -> StoreResult<u64> {
    let currency = exchange.currency.as_str();
    let mut spent: u64 = 0;
    for note in &exchange.spend {
        let value =
            tx.spend_note(&note.id, &note.holder, currency, now)?.ok_or(StoreError::NoteNotSpendable(note.id))?;
        spent = spent.checked_add(value).ok_or_else(|| StoreError::Backend("overflow".into()))?;
    }
    for item in &exchange.retire {
        if !tx.retire(&item.id, &item.holder, now)? {
            return Err(StoreError::NotActive(item.id));
        }
    }
    let mut issued: u64 = 0;
    for row in &exchange.issue {
        let value = match &row.value {
            Some(a) if a.currency == currency => a.minor,
            Some(_) => return Err(StoreError::Backend("a note to issue is in another currency".into())),
            None => 0,
        };
        if !tx.insert_instrument(row)? {
            return Err(StoreError::Backend(format!("instrument {} already exists", row.id)));
        }
        issued = issued.checked_add(value).ok_or_else(|| StoreError::Backend("overflow".into()))?;
    }
    let outflow = issued.checked_add(exchange.payout).ok_or_else(|| StoreError::Backend("overflow".into()))?;
    let inflow = spent.checked_add(exchange.paid_in).ok_or_else(|| StoreError::Backend("overflow".into()))?;
    let delta = i128::from(inflow) - i128::from(outflow);
    let delta = i64::try_from(delta).map_err(|_| StoreError::Backend("amount out of range".into()))?;
    if !tx.insert_ledger(&exchange.reference, &exchange.account, currency, "exchange", delta, now)? {
        return Err(StoreError::DuplicateReference(exchange.reference.clone()));
    }
    let balance = match tx.adjust_balance(&exchange.account, currency, delta) {
        Err(StoreError::InsufficientFunds { .. }) => {
            return Err(StoreError::InsufficientFunds {
                balance: current_balance,
                needed: outflow.saturating_sub(inflow),
            });
        }
        other => other?,
    };
    tx.add_totals(currency, issued, spent, exchange.paid_in, exchange.payout)?;
    for notice in &exchange.notices {
        tx.push_notice(notice)?;
    }
    Ok(balance)
}

/// Set-based operations for a whole batch of chain updates, in one
/// transaction: a backend where each statement is a round trip (PostgreSQL)
/// runs a batch in a few statements instead of three per endorsement.
pub(crate) trait BulkChainTx {
    /// Reads and locks the rows of `ids` (sorted, distinct), locking in id
    /// order; unknown ids are left out.
    fn lock_instruments(&mut self, ids: &[InstrumentId]) -> StoreResult<Vec<SeenRow>>;
    /// The stored links at the given (instrument, sequence) keys.
    fn links_at(&mut self, keys: &[(InstrumentId, u32)]) -> StoreResult<Vec<LinkRecord>>;
    /// Inserts links and returns how many were inserted. When any
    /// (instrument, sequence) is taken it inserts fewer, or none at all and
    /// leaves the transaction unusable: the caller gives the batch up.
    fn insert_links(&mut self, links: &[LinkRecord], now: Timestamp) -> StoreResult<usize>;
    /// Writes the mutable columns of each row whose stored version is
    /// still the one given, locking it; returns how many were written.
    fn update_instruments(&mut self, rows: &[SeenRow]) -> StoreResult<usize>;
    /// The offers among `offers` whose sale was refunded.
    fn refunded_sales(&mut self, offers: &[ExchangeId]) -> StoreResult<Vec<ExchangeId>>;
}

/// What [`apply_chains_bulk`] gave.
pub(crate) enum Bulk {
    /// Applied; the outcomes in update order.
    Done(Vec<ChainOutcome>),
    /// What the batch was decided on changed before it was written: a row
    /// read without its lock was written since, or the endorsement key
    /// refused a link the rows said was free (a writer went around the row
    /// locks). Nothing may be kept — roll back and apply the batch again,
    /// under the row locks, or step by step.
    Contended,
}

/// Where [`apply_chains_bulk`] takes the rows from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Locked and read in the transaction.
    Locked,
    /// [`ChainUpdate::seen`], when every update carries it; locked when
    /// written, and the batch is [`Bulk::Contended`] if any changed since.
    Seen,
}

/// [`apply_chains`] with every read done up front and every write done
/// at the end, set-based. The rules are the same code: they run over
/// [`Staged`], an in-memory view of the rows and the links read.
///
/// With [`Rows::Seen`] the rows come from a read made before the
/// transaction and are not locked until they are written. The decision
/// is still that of the locked path, or the batch is given up:
/// - every row written is written only if unchanged since it was read;
/// - a link registered since is refused by the endorsement key;
/// - a refund takes the row locks but writes no row, so refunds are read
///   after the rows are written, and locked; any among the batch's new
///   links gives the batch up, for the locked path to decide;
/// - a row left unwritten was only read: the outcome is the one it had
///   when read, as if this batch had run just before whatever changed it.
pub(crate) fn apply_chains_bulk(
    tx: &mut impl BulkChainTx,
    updates: &[ChainUpdate],
    now: Timestamp,
    from: Rows,
) -> StoreResult<Bulk> {
    let seen: Option<BTreeMap<InstrumentId, SeenRow>> = match from {
        Rows::Seen => updates.iter().map(|u| u.seen.clone().map(|s| (u.instrument, s))).collect(),
        Rows::Locked => None,
    };
    let optimistic = seen.is_some();
    let seen = match seen {
        Some(seen) => seen,
        None => {
            let ids: Vec<InstrumentId> =
                updates.iter().map(|u| u.instrument).collect::<BTreeSet<_>>().into_iter().collect();
            tx.lock_instruments(&ids)?.into_iter().map(|s| (s.row.id, s)).collect()
        }
    };
    let versions: BTreeMap<InstrumentId, u64> = seen.iter().map(|(id, s)| (*id, s.version)).collect();
    let rows: BTreeMap<InstrumentId, InstrumentRow> = seen.into_iter().map(|(id, s)| (id, s.row)).collect();
    // Links at or below a row's registered sequence are compared with the
    // stored ones; everything above it is new to the database.
    let keys: Vec<(InstrumentId, u32)> = updates
        .iter()
        .flat_map(|u| {
            let registered = rows.get(&u.instrument).map_or(0, |r| r.sequence);
            u.links.iter().filter(move |l| l.sequence <= registered).map(|l| (l.instrument, l.sequence))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known = if keys.is_empty() { Vec::new() } else { tx.links_at(&keys)? };
    let mut offers = BTreeSet::new();
    for u in updates {
        let registered = rows.get(&u.instrument).map_or(0, |r| r.sequence);
        for l in u.links.iter().filter(|l| l.sequence > registered) {
            offers.extend(offer_of(l)?);
        }
    }
    let offers: Vec<ExchangeId> = offers.into_iter().collect();
    // Locked: read after the row locks, so a refund committed before them
    // is seen and one after them waits for the rows (`check_refund`).
    let refunded = if offers.is_empty() || optimistic {
        BTreeSet::new()
    } else {
        tx.refunded_sales(&offers)?.into_iter().collect()
    };
    let mut staged = Staged {
        rows,
        links: known.into_iter().map(|l| ((l.instrument, l.sequence), l)).collect(),
        new_links: Vec::new(),
        dirty: BTreeSet::new(),
        refunded,
    };
    let outcomes = apply_chains(&mut staged, updates, now)?;
    // The rows first: writing them takes their locks.
    let dirty: Vec<SeenRow> = staged
        .dirty
        .iter()
        .filter_map(|id| Some(SeenRow { row: staged.rows.get(id)?.clone(), version: *versions.get(id)? }))
        .collect();
    if !dirty.is_empty() && tx.update_instruments(&dirty)? != dirty.len() {
        return Ok(Bulk::Contended);
    }
    if !staged.new_links.is_empty() {
        let links: Vec<LinkRecord> = staged.new_links.iter().filter_map(|k| staged.links.get(k).cloned()).collect();
        if tx.insert_links(&links, now)? != links.len() {
            return Ok(Bulk::Contended);
        }
    }
    if optimistic && !offers.is_empty() && !tx.refunded_sales(&offers)?.is_empty() {
        return Ok(Bulk::Contended);
    }
    Ok(Bulk::Done(outcomes))
}

/// The locked rows and known links of a batch, with the writes queued.
struct Staged {
    rows: BTreeMap<InstrumentId, InstrumentRow>,
    links: BTreeMap<(InstrumentId, u32), LinkRecord>,
    /// Keys of `links` added by this batch, in insertion order.
    new_links: Vec<(InstrumentId, u32)>,
    dirty: BTreeSet<InstrumentId>,
    /// Refunded offers among the new links'.
    refunded: BTreeSet<ExchangeId>,
}

impl ChainTx for Staged {
    fn lock_instrument(&mut self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>> {
        Ok(self.rows.get(id).cloned())
    }
    fn link_at(&mut self, id: &InstrumentId, sequence: u32) -> StoreResult<Option<LinkRecord>> {
        Ok(self.links.get(&(*id, sequence)).cloned())
    }
    fn insert_link(&mut self, link: &LinkRecord, _now: Timestamp) -> StoreResult<bool> {
        let key = (link.instrument, link.sequence);
        if self.links.contains_key(&key) {
            return Ok(false);
        }
        self.links.insert(key, link.clone());
        self.new_links.push(key);
        Ok(true)
    }
    fn update_instrument(&mut self, row: &InstrumentRow) -> StoreResult<()> {
        self.dirty.insert(row.id);
        self.rows.insert(row.id, row.clone());
        Ok(())
    }
    fn sale_refunded(&mut self, offer: &ExchangeId) -> StoreResult<bool> {
        Ok(self.refunded.contains(offer))
    }
    fn may_have_refunds(&self) -> bool {
        !self.refunded.is_empty()
    }
}
