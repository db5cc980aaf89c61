//! The wallet side of reconciliation with the registry (DESIGN §3.3), with
//! no I/O: what to upload, and how to apply the registry's answer. An HTTP
//! adapter (the registry crate's client) carries the bytes.
//!
//! ```text
//!            reconcile_upload()                      (adapter: POST /reconcile)
//!  Wallet ──────────────────────▶ Upload { items } ─────────────────────────▶ registry
//!    ▲                                                                           │
//!    │   apply_reconcile(outcomes)                                               │
//!    └────────────────────────── Vec<ItemOutcome> ◀──────────────────────────────┘
//!
//!  per instrument:   Registered(cert) ─▶ chain replaced by the certificate (held), or
//!                                        Gone when the certificate names another holder
//!                    Superseded        ─▶ Gone (the registry's list has a later holder)
//!                    Conflict(proof)   ─▶ recorded in the history; the first registered stands
//!                    Refused(reason)   ─▶ nothing changes
//! ```
//!
//! The upload also carries the fork evidence `import_instrument` keeps: a
//! chain it refused as a fork against a registered certificate its copy
//! has (held or passed on), which it cannot prove, and its own copy of an
//! unregistered branch that a chain from the registered one replaced: the
//! registry answers `Conflict(proof)` for them, and each is forgotten once
//! the registry has answered for its instrument.
//!
//! Both steps are safe to repeat: the registry is idempotent, and applying
//! the same answer twice changes nothing the second time. A crash between
//! upload and apply loses nothing: the next sync uploads the same chains.

pub mod request;

use crate::instrument::Instrument;
use crate::proof::EquivocationProof;
use crate::store::{Direction, HistoryEntry, Holding, InstrumentFilter, WalletStore, Write, WriteBatch};
use crate::wallet::{Wallet, WalletError};
use crate::{InstrumentId, PublicKey};

/// One typed item of an upload. The list is open: gates add examination
/// records, the transfer protocol adds sale evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadItem {
    /// An instrument with the links not yet registered.
    Chain(Instrument),
}

/// What to send to the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upload {
    /// The items, in the order the answer will follow.
    pub items: Vec<UploadItem>,
}

/// The registry's answer for one uploaded item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Registered: the instrument compacted under a fresh registered
    /// certificate for its current holder.
    Registered(Instrument),
    /// The registry's list already has a later holder than this chain's tip.
    Superseded {
        /// The instrument.
        id: InstrumentId,
        /// The registered sequence.
        sequence: u32,
        /// The registered holder.
        holder: PublicKey,
    },
    /// The chain conflicts with the registered one: the first registered
    /// stands and this proof names who signed twice.
    Conflict {
        /// The instrument.
        id: InstrumentId,
        /// The proof.
        proof: EquivocationProof,
    },
    /// The registry refused the item.
    Refused {
        /// The instrument, when known.
        id: Option<InstrumentId>,
        /// Why.
        reason: String,
    },
}

impl ItemOutcome {
    /// The instrument the answer is about, when it names one.
    pub fn instrument_id(&self) -> Option<InstrumentId> {
        match self {
            ItemOutcome::Registered(instrument) => Some(instrument.id()),
            ItemOutcome::Superseded { id, .. } | ItemOutcome::Conflict { id, .. } => Some(*id),
            ItemOutcome::Refused { id, .. } => *id,
        }
    }
}

/// What applying an answer did to the wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Instruments now carried as registered certificates.
    pub certified: Vec<InstrumentId>,
    /// Instruments the registry says are held elsewhere now.
    pub gone: Vec<InstrumentId>,
    /// Double transfers the registry caught.
    pub conflicts: Vec<EquivocationProof>,
    /// Items the registry refused, with its reasons.
    pub refused: Vec<(Option<InstrumentId>, String)>,
}

impl<S: WalletStore> Wallet<S> {
    /// The chains this wallet should upload: every instrument it holds,
    /// has pending out or passed on whose chain still carries links.
    pub fn reconcile_upload(&self) -> Result<Upload, WalletError> {
        let mut items = Vec::new();
        for summary in self.store.instruments(InstrumentFilter::default())? {
            let Some(record) = self.store.instrument(&summary.id)? else { continue };
            if !record.instrument.links.is_empty() {
                items.push(UploadItem::Chain(record.instrument));
            }
        }
        // Forks this wallet refused but could not prove: the registry
        // compares them with the registered links and names who signed twice.
        for kept in self.store.fork_evidence()? {
            items.push(UploadItem::Chain(kept.chain));
        }
        Ok(Upload { items })
    }

    /// Applies the registry's answer. Certificates are verified with the
    /// wallet's verifier before they replace anything.
    pub fn apply_reconcile(&mut self, outcomes: Vec<ItemOutcome>) -> Result<ReconcileReport, WalletError> {
        let mut report = ReconcileReport::default();
        let now = self.now();
        // Kept forks the registry has now answered for are uploaded: forget
        // them (a whole-upload refusal names no instrument, so they stay).
        let kept: std::collections::BTreeSet<InstrumentId> =
            self.store.fork_evidence()?.iter().map(|f| f.chain.id()).collect();
        let answered: std::collections::BTreeSet<InstrumentId> =
            outcomes.iter().filter_map(ItemOutcome::instrument_id).filter(|id| kept.contains(id)).collect();
        if !answered.is_empty() {
            self.store.apply(WriteBatch(answered.into_iter().map(Write::DropForkEvidence).collect()))?;
        }
        for outcome in outcomes {
            match outcome {
                ItemOutcome::Registered(certified) => {
                    // A certificate for an instrument no longer usable (a
                    // ticket this wallet gave back for a refund, a note it
                    // redeemed) still says who holds it: checked without the
                    // usability rules, it marks a copy passed on gone, and a
                    // copy still held takes its state. Before, it failed the
                    // whole sync, so a wallet could never sync again after
                    // its first refund (found by registry/tests/crash.rs).
                    let verified = {
                        let verifier = self.verifier()?;
                        match verifier.verify(&certified, now) {
                            Ok(v) => v,
                            Err(_) => verifier.verify_chain(&certified, now)?,
                        }
                    };
                    let Some(mut record) = self.store.instrument(&verified.id)? else { continue };
                    if record.instrument.sequence() > verified.sequence {
                        // Our copy is ahead (we endorsed it on since); keep it.
                        continue;
                    }
                    if verified.holder == record.holder {
                        if record.instrument == certified {
                            continue;
                        }
                        record.instrument = certified;
                        // Uses this wallet spent at gates the registry has not
                        // heard of yet stay spent (found by the adversarial model).
                        record.uses_left = verified.state.uses_left.min(record.uses_left);
                        record.status = verified.state.status;
                        record.updated_at = now;
                        self.store.apply(WriteBatch(vec![Write::UpdateInstrument(record)]))?;
                        report.certified.push(verified.id);
                    } else if record.holding != Holding::Gone {
                        record.holding = Holding::Gone;
                        record.updated_at = now;
                        self.store.apply(WriteBatch(vec![Write::UpdateInstrument(record)]))?;
                        report.gone.push(verified.id);
                    }
                }
                ItemOutcome::Superseded { id, sequence, holder } => {
                    let Some(mut record) = self.store.instrument(&id)? else { continue };
                    if record.holder != holder
                        && record.instrument.sequence() <= sequence
                        && record.holding != Holding::Gone
                    {
                        record.holding = Holding::Gone;
                        record.updated_at = now;
                        self.store.apply(WriteBatch(vec![Write::UpdateInstrument(record)]))?;
                        report.gone.push(id);
                    }
                }
                ItemOutcome::Conflict { id, proof } => {
                    if proof.verify().is_err() || proof.instrument_id() != id {
                        report.refused.push((Some(id), "the registry sent an invalid conflict proof".into()));
                        continue;
                    }
                    if let Some(record) = self.store.instrument(&id)? {
                        let memo = format!(
                            "double transfer of sequence {} caught by the registry: signed twice by {}",
                            proof.sequence(),
                            proof.signer.short()
                        );
                        let already = self.store.history(1000)?.iter().any(|h| h.instrument_id == id && h.memo == memo);
                        if !already {
                            let entry = HistoryEntry {
                                seq: 0,
                                time: now,
                                direction: Direction::In,
                                kind: record.instrument.kind(),
                                instrument_id: id,
                                amount: None,
                                counterparty: Some(proof.signer),
                                exchange: None,
                                memo,
                            };
                            self.store.apply(WriteBatch(vec![Write::AppendHistory(entry)]))?;
                        }
                    }
                    report.conflicts.push(proof);
                }
                ItemOutcome::Refused { id, reason } => report.refused.push((id, reason)),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
