//! One conformance suite for every [`RegistryStore`] backend.
//!
//! Each case takes a fresh, empty store and an opener for further handles
//! to the same database (separate connections, as separate registry
//! processes would have). [`registry_conformance!`](crate::registry_conformance)
//! turns the cases into `#[test]`s for one backend.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use super::{
    ChainOutcome, ChainUpdate, EquivocationRecord, InstrumentRow, LedgerEntry, LinkRecord, NoteExchange, NoteSpend,
    Notice, Party, ProofRecord, RegistryStore, SaleRefund, SeenRow, StoreError,
};
use tessera_core::authority::Issuer;
use tessera_core::instrument::{NoteAttributes, TicketAttributes};
use tessera_core::{
    Amount, Attributes, Endorsement, ExchangeId, Instrument, InstrumentId, LocalSigner, PublicKey, Role, Signed,
    Signer, Status, Wire,
};

/// Opens another handle to the database a case works on.
pub type Opener<'a, S> = &'a (dyn Fn() -> S + Sync);

const NOW: u64 = 1_700_000_000;

/// Instruments and the holder keys that sign their links.
#[derive(Debug)]
pub struct Fixture {
    issuer: Issuer<LocalSigner>,
    seed: u8,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        Self { issuer: Issuer::new(LocalSigner::from_seed(&[200; 32])), seed: 0 }
    }
    pub fn signer(&mut self) -> LocalSigner {
        self.seed = self.seed.wrapping_add(1);
        let mut s = [self.seed; 32];
        s[31] = 77;
        LocalSigner::from_seed(&s)
    }
    pub fn ticket(&mut self, holder: &LocalSigner) -> Instrument {
        self.seed = self.seed.wrapping_add(1);
        let attrs = Attributes::Ticket(TicketAttributes {
            event_id: "ev".into(),
            title: "Concert".into(),
            zone: "A".into(),
            seat: None,
            guidance: None,
            valid_from: 0,
            valid_until: NOW * 2,
            transferable: true,
            uses: 1,
            face_price: None,
        });
        self.issuer.issue_with_id(InstrumentId([self.seed; 16]), attrs, holder.public_key(), NOW).unwrap()
    }
    pub fn note(&mut self, holder: PublicKey, minor: u64) -> Instrument {
        self.seed = self.seed.wrapping_add(1);
        let mut id = [self.seed; 16];
        id[0] = 0xee;
        let attrs = Attributes::Note(NoteAttributes { amount: Amount::new("EUR", minor), expires_at: NOW * 2 });
        self.issuer.issue_with_id(InstrumentId(id), attrs, holder, NOW).unwrap()
    }
    /// Endorses `inst` from `from` to `to`.
    pub fn endorse(inst: &Instrument, from: &LocalSigner, to: PublicKey) -> (Instrument, LinkRecord) {
        let body: Endorsement = inst.next_endorsement(to, ExchangeId([1; 16]), ExchangeId([2; 16]), NOW);
        let link = Signed::sign(body, from).unwrap();
        let record = LinkRecord::of(&link, from.public_key());
        (inst.with_link(link), record)
    }
}

fn update(links: &[LinkRecord]) -> ChainUpdate {
    ChainUpdate { instrument: links[0].instrument, links: links.to_vec(), seen: None }
}

fn applied(outcome: &ChainOutcome) -> (u32, InstrumentRow) {
    match outcome {
        ChainOutcome::Applied { added, row } => (*added, row.clone()),
        other => panic!("expected Applied, got {other:?}"),
    }
}

pub fn instrument_round_trip<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let alice = f.signer();
    let t = f.ticket(&alice);
    let row = InstrumentRow::issued(&t, Some(alice.public_key()), NOW);
    assert!(store.insert_instrument(&row).unwrap());
    let before = store.dump().unwrap();
    let mut other = row.clone();
    other.holder = f.signer().public_key();
    assert!(!store.insert_instrument(&other).unwrap(), "a second insert must not replace the first");
    assert_eq!(store.dump().unwrap(), before);
    assert_eq!(store.instrument(&t.id()).unwrap(), Some(row));
    assert_eq!(store.instrument(&InstrumentId([0xab; 16])).unwrap(), None);
    let g =
        tessera_core::Signed::<tessera_core::Genesis>::from_bytes(&store.instrument(&t.id()).unwrap().unwrap().genesis);
    assert_eq!(g.unwrap(), t.genesis);
}

pub fn chain_keeps_former_holder_chain<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b, c, d) = (f.signer(), f.signer(), f.signer(), f.signer());
    let t0 = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    let (t1, l1) = Fixture::endorse(&t0, &a, b.public_key());
    let (t2, l2) = Fixture::endorse(&t1, &b, c.public_key());
    let (_t3, l3) = Fixture::endorse(&t2, &c, d.public_key());
    // First two links in one upload, the third in another.
    let out = store.apply_chains(&[update(&[l1.clone(), l2.clone()])], NOW + 1).unwrap();
    let (added, row) = applied(&out[0]);
    assert_eq!((added, row.holder, row.sequence, row.tip), (2, c.public_key(), 2, l2.digest));
    let out = store.apply_chains(&[update(&[l1.clone(), l2.clone(), l3.clone()])], NOW + 2).unwrap();
    let (added, row) = applied(&out[0]);
    assert_eq!((added, row.holder, row.holder_since, row.sequence), (1, d.public_key(), 3, 3));
    assert_eq!(store.instrument(&t0.id()).unwrap().unwrap(), row);

    let former = store.former_holders(&t0.id()).unwrap();
    let got: Vec<_> = former.iter().map(|r| (r.holder, r.from_sequence, r.until_sequence, r.previous_from)).collect();
    assert_eq!(
        got,
        vec![(c.public_key(), 2, 2, Some(1)), (b.public_key(), 1, 1, Some(0)), (a.public_key(), 0, 0, None),]
    );
    let links = store.links(&t0.id()).unwrap();
    assert_eq!(links, vec![l1, l2, l3]);
}

pub fn stored_prefixes_name_what_is_stored<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    use tessera_core::verify::VerifiedLink;
    let mut f = Fixture::new();
    let (a, b, c) = (f.signer(), f.signer(), f.signer());
    let t0 = f.ticket(&a);
    let other = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    store.insert_instrument(&InstrumentRow::issued(&other, None, NOW)).unwrap();
    let (t1, l1) = Fixture::endorse(&t0, &a, b.public_key());
    let (_t2, l2) = Fixture::endorse(&t1, &b, c.public_key());
    store.apply_chains(&[update(&[l1.clone(), l2.clone()])], NOW + 1).unwrap();
    let v = |l: &LinkRecord| VerifiedLink { sequence: l.sequence, digest: l.digest, signer: l.signer };
    let id = t0.id();
    let got = store
        .stored_prefixes(&[
            (id, 1, 2),
            (id, 2, 9),
            (id, 3, 3),
            (id, 1, 0),
            (InstrumentId([0xEE; 16]), 1, 1),
            (other.id(), 1, 4),
        ])
        .unwrap();
    // The backend decides whether it returns the row it read.
    let got: Vec<_> = got.into_iter().map(|p| p.map(|p| (p.genesis, p.links))).collect();
    let genesis = t0.genesis.to_bytes();
    let prefix = |links: Vec<VerifiedLink>| Some((genesis.clone(), links));
    assert_eq!(got[0], prefix(vec![v(&l1), v(&l2)]));
    assert_eq!(got[1], prefix(vec![v(&l2)]));
    assert_eq!(got[2], prefix(vec![]));
    assert_eq!(got[3], prefix(vec![]));
    assert_eq!(got[4], None);
    assert_eq!(got[5], Some((other.genesis.to_bytes(), vec![])));
    assert!(store.stored_prefixes(&[]).unwrap().is_empty());
}

pub fn reupload_changes_nothing<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b) = (f.signer(), f.signer());
    let t0 = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    let (_t1, l1) = Fixture::endorse(&t0, &a, b.public_key());
    store.apply_chains(&[update(std::slice::from_ref(&l1))], NOW).unwrap();
    let before = store.dump().unwrap();
    let out = store.apply_chains(&[update(&[l1])], NOW + 50).unwrap();
    assert_eq!(applied(&out[0]).0, 0);
    assert_eq!(store.dump().unwrap(), before, "a second upload must change nothing");
}

pub fn first_registered_link_stands<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b, x) = (f.signer(), f.signer(), f.signer());
    let t0 = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    let (_tb, lb) = Fixture::endorse(&t0, &a, b.public_key());
    let (_tx, lx) = Fixture::endorse(&t0, &a, x.public_key());
    store.apply_chains(&[update(std::slice::from_ref(&lb))], NOW).unwrap();
    let before = store.dump().unwrap();
    let out = store.apply_chains(&[update(std::slice::from_ref(&lx))], NOW + 1).unwrap();
    match &out[0] {
        ChainOutcome::Conflict { registered, uploaded, row } => {
            assert_eq!(registered, &lb);
            assert_eq!(uploaded, &lx);
            assert_eq!(row.holder, b.public_key());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.dump().unwrap(), before);
}

pub fn disconnected_and_unknown_uploads<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b, c) = (f.signer(), f.signer(), f.signer());
    let t0 = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    let (t1, _l1) = Fixture::endorse(&t0, &a, b.public_key());
    let (_t2, l2) = Fixture::endorse(&t1, &b, c.public_key());
    let before = store.dump().unwrap();
    let out = store.apply_chains(&[update(std::slice::from_ref(&l2))], NOW).unwrap();
    assert_eq!(out[0], ChainOutcome::Disconnected { sequence: 2 });
    let stranger = f.ticket(&a);
    let (_s1, ls) = Fixture::endorse(&stranger, &a, b.public_key());
    let out = store.apply_chains(&[update(&[ls])], NOW).unwrap();
    assert_eq!(out[0], ChainOutcome::Unknown);
    assert_eq!(store.dump().unwrap(), before);
}

pub fn batch_applies_each_update<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let mut updates = Vec::new();
    let mut holders = Vec::new();
    for _ in 0..20 {
        let (a, b) = (f.signer(), f.signer());
        let t = f.ticket(&a);
        store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
        let (_t1, l) = Fixture::endorse(&t, &a, b.public_key());
        updates.push(update(&[l]));
        holders.push(b.public_key());
    }
    let out = store.apply_chains(&updates, NOW).unwrap();
    for (o, h) in out.iter().zip(&holders) {
        let (added, row) = applied(o);
        assert_eq!((added, row.holder), (1, *h));
    }
}

/// One batch mixing every outcome, including two updates of one
/// instrument (the second continues the first): each update is judged
/// after the ones before it, as if applied one by one.
pub fn mixed_batch_matches_step_by_step<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b, c, x) = (f.signer(), f.signer(), f.signer(), f.signer());
    // t: a → b → c, uploaded as two updates in one batch.
    let t = f.ticket(&a);
    // u: a → b registered before; the batch re-uploads it and then a → x.
    let u = f.ticket(&a);
    // v: a link at sequence 2 with nothing at 1.
    let v = f.ticket(&a);
    let unknown = f.ticket(&a);
    for i in [&t, &u, &v] {
        store.insert_instrument(&InstrumentRow::issued(i, None, NOW)).unwrap();
    }
    let (t1, lt1) = Fixture::endorse(&t, &a, b.public_key());
    let (_, lt2) = Fixture::endorse(&t1, &b, c.public_key());
    let (_, lu1) = Fixture::endorse(&u, &a, b.public_key());
    let (_, lux) = Fixture::endorse(&u, &a, x.public_key());
    store.apply_chains(&[update(std::slice::from_ref(&lu1))], NOW).unwrap();
    let (v1, _) = Fixture::endorse(&v, &a, b.public_key());
    let (_, lv2) = Fixture::endorse(&v1, &b, c.public_key());
    let (_, lk) = Fixture::endorse(&unknown, &a, b.public_key());
    let updates = vec![
        update(std::slice::from_ref(&lt2)),
        update(std::slice::from_ref(&lu1)),
        update(std::slice::from_ref(&lux)),
        update(std::slice::from_ref(&lv2)),
        update(&[lk]),
    ];
    // The first update of t comes after its second in the batch: it is
    // disconnected then, so give t's first link its own update before.
    let mut all = vec![update(std::slice::from_ref(&lt1))];
    all.extend(updates);
    let out = store.apply_chains(&all, NOW + 1).unwrap();
    assert_eq!(applied(&out[0]).0, 1);
    let (added, row) = applied(&out[1]);
    assert_eq!((added, row.holder, row.sequence), (1, c.public_key(), 2));
    assert_eq!(applied(&out[2]).0, 0);
    match &out[3] {
        ChainOutcome::Conflict { registered, uploaded, row } => {
            assert_eq!((registered.digest, uploaded.digest, row.holder), (lu1.digest, lux.digest, b.public_key()));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(out[4], ChainOutcome::Disconnected { sequence: 2 });
    assert_eq!(out[5], ChainOutcome::Unknown);
    let former = store.former_holders(&t.id()).unwrap();
    assert_eq!(former.iter().map(|r| r.holder).collect::<Vec<_>>(), vec![b.public_key(), a.public_key()]);
    assert_eq!(store.links(&t.id()).unwrap().len(), 2);
    assert_eq!(store.links(&u.id()).unwrap(), vec![lu1]);
    assert!(store.links(&v.id()).unwrap().is_empty());
    assert_eq!(store.instrument(&v.id()).unwrap().unwrap().sequence, 0);
}

pub fn examination_reports_apply_once<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    use super::{ExaminationReport, ExaminationRow};
    let mut f = Fixture::new();
    let a = f.signer();
    let t = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
    let report = |digest: u8, admitted: bool, counter: u32| ExaminationReport {
        record: ExaminationRow {
            certificate: tessera_core::Digest([digest; 32]),
            instrument: t.id(),
            admitted,
            uses_left: 0,
            status: Status::Active,
            examined_at: NOW,
            answer: None,
        },
        gate: PublicKey([9; 32]),
        counter,
        reported_by: a.public_key(),
    };
    // A refusal is recorded and changes no state.
    let (new, row) = store.report_examination(&report(1, false, 1), NOW).unwrap();
    assert_eq!((new, row.uses_left), (true, 1));
    let (new, row) = store.report_examination(&report(2, true, 2), NOW).unwrap();
    assert_eq!((new, row.uses_left), (true, 0));
    let before = store.dump().unwrap();
    let (new, row) = store.report_examination(&report(2, true, 2), NOW + 5).unwrap();
    assert_eq!((new, row.uses_left), (false, 0));
    let mut unknown = report(3, true, 3);
    unknown.record.instrument = InstrumentId([0xfe; 16]);
    assert_eq!(store.report_examination(&unknown, NOW), Err(StoreError::UnknownInstrument(InstrumentId([0xfe; 16]))));
    assert_eq!(store.dump().unwrap(), before, "a repeat or an unknown instrument changes nothing");
    let reports = store.examination_reports(&t.id()).unwrap();
    assert_eq!(reports, vec![report(1, false, 1), report(2, true, 2)]);
}

pub fn sale_refunds_and_double_sales_once<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    use super::DoubleSaleRecord;
    let mut f = Fixture::new();
    let (buyer, payee) = (PublicKey([8; 32]), f.signer().public_key());
    // The buyer's payment note, registered to the seller's payee key.
    let paid = note_rows(&mut f, payee, &[500], buyer);
    assert!(store.top_up(&buyer, &Amount::new("EUR", 500), "pay", NOW).unwrap());
    let issue = NoteExchange {
        account: buyer,
        currency: "EUR".into(),
        spend: vec![],
        retire: vec![],
        issue: paid.clone(),
        payout: 0,
        paid_in: 0,
        reference: "withdraw".into(),
        notices: vec![],
    };
    store.exchange_notes(&issue, NOW).unwrap();
    let offer = ExchangeId([0x31; 16]);
    assert!(store.refunded_sales(&[offer]).unwrap().is_empty());
    let refund = SaleRefund { offer_id: offer, buyer, reason: "deadline".into(), awaiting: vec![] };
    let fresh = note_rows(&mut f, PublicKey([7; 32]), &[500], buyer);
    // The notes issued are announced in the same transaction.
    let issued = Notice {
        id: 0,
        recipient: PublicKey([7; 32]),
        kind: "issued".into(),
        instrument: Some(fresh[0].id),
        payload: vec![9],
        created_at: NOW,
    };
    let exchange = NoteExchange {
        spend: vec![NoteSpend { id: paid[0].id, holder: payee }],
        issue: fresh,
        reference: "sale-refund".into(),
        notices: vec![issued.clone()],
        ..issue.clone()
    };
    store.refund_sale(&refund, &exchange, NOW).unwrap();
    supply_holds(&store);
    let left = store.notices(&[PublicKey([7; 32])], 0).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].kind.as_str(), left[0].instrument, &left[0].payload), ("issued", issued.instrument, &vec![9]));
    assert_eq!(store.refunded_sales(&[ExchangeId([1; 16]), offer]).unwrap(), vec![offer]);
    let before = store.dump().unwrap();
    let again = NoteExchange { issue: note_rows(&mut f, PublicKey([7; 32]), &[500], buyer), ..exchange.clone() };
    assert!(matches!(store.refund_sale(&refund, &again, NOW), Err(StoreError::DuplicateReference(_))));
    assert_eq!(store.dump().unwrap(), before, "a sale is refunded once");

    let record = DoubleSaleRecord { offer_id: offer, item: 0, signer: payee, proof: vec![1, 2, 3] };
    let notice = Notice {
        id: 0,
        recipient: payee,
        kind: "double-sale".into(),
        instrument: None,
        payload: vec![1, 2, 3],
        created_at: NOW,
    };
    assert!(store.record_double_sale(&record, std::slice::from_ref(&notice), NOW).unwrap());
    let before = store.dump().unwrap();
    assert!(!store.record_double_sale(&record, &[notice], NOW + 1).unwrap());
    assert_eq!(store.dump().unwrap(), before);
    assert_eq!(store.double_sales(&offer).unwrap(), vec![record]);
    assert!(store.flagged(&payee).unwrap().is_some());
}

pub fn replacement_keeps_value_and_happens_once<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (account, holder) = (PublicKey([6; 32]), f.signer().public_key());
    assert!(store.top_up(&account, &Amount::new("EUR", 500), "pay", NOW).unwrap());
    let old = note_rows(&mut f, holder, &[500], account);
    let withdraw = NoteExchange {
        account,
        currency: "EUR".into(),
        spend: vec![],
        retire: vec![],
        issue: old.clone(),
        payout: 0,
        paid_in: 0,
        reference: "withdraw".into(),
        notices: vec![],
    };
    store.exchange_notes(&withdraw, NOW).unwrap();
    let notice = Notice {
        id: 0,
        recipient: holder,
        kind: "replacement".into(),
        instrument: Some(old[0].id),
        payload: vec![7],
        created_at: NOW,
    };
    let replace = NoteExchange {
        spend: vec![NoteSpend { id: old[0].id, holder }],
        issue: note_rows(&mut f, holder, &[500], account),
        reference: format!("replace:{}", old[0].id),
        ..withdraw.clone()
    };
    store.replace_instrument(&replace, &old[0].id, std::slice::from_ref(&notice), NOW).unwrap();
    supply_holds(&store);
    assert_eq!(store.balance(&account, "EUR").unwrap(), 0, "the replacement is paid by the note it replaces");
    assert_eq!(store.instrument(&old[0].id).unwrap().unwrap().status, Status::Modified);
    assert_eq!(store.notices(&[holder], 0).unwrap().len(), 1);
    let before = store.dump().unwrap();
    let again = NoteExchange { issue: note_rows(&mut f, holder, &[500], account), ..replace.clone() };
    assert!(store.replace_instrument(&again, &old[0].id, &[notice], NOW).is_err());
    assert_eq!(store.dump().unwrap(), before, "replaced once");
}

pub fn equivocation_is_recorded_once<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b, x) = (f.signer(), f.signer(), f.signer());
    let t0 = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    let (tb, _) = Fixture::endorse(&t0, &a, b.public_key());
    let (tx, _) = Fixture::endorse(&t0, &a, x.public_key());
    let proof = tessera_core::EquivocationProof::find(&tb, &tx).unwrap();
    let record =
        EquivocationRecord { instrument: t0.id(), sequence: 1, signer: a.public_key(), proof: proof.to_bytes() };
    proof_is_recorded_once(&store, &record, &[b.public_key(), x.public_key()], |s, r, n, now| {
        s.record_equivocation(r, true, n, now)
    });
    assert_eq!(store.equivocations(&t0.id()).unwrap(), vec![record]);
    assert_eq!(store.used_after_transfers(&t0.id()).unwrap(), vec![], "kept apart from used-after-transfer proofs");
}

pub fn used_after_transfer_is_recorded_once<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (a, b) = (f.signer(), f.signer());
    let t0 = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t0, None, NOW)).unwrap();
    // The store keeps what the registry verified; the bytes are opaque here.
    let record = ProofRecord { instrument: t0.id(), sequence: 0, signer: a.public_key(), proof: vec![0x83, 1, 2, 3] };
    proof_is_recorded_once(&store, &record, &[a.public_key(), b.public_key()], |s, r, n, now| {
        s.record_used_after_transfer(r, true, n, now)
    });
    assert_eq!(store.used_after_transfers(&t0.id()).unwrap(), vec![record.clone()]);
    assert_eq!(store.equivocations(&t0.id()).unwrap(), vec![], "kept apart from double transfers");
    assert!(store.flagged(&a.public_key()).unwrap().unwrap().contains("after passing it on"));
    // Another proof against the same key and instrument (a second gate's
    // admission) is stored too; the flag and the denial stand as they were.
    let other = ProofRecord { proof: vec![0x83, 4, 5, 6], ..record };
    let out = store.record_used_after_transfer(&other, true, &[], NOW + 1).unwrap();
    assert_eq!((out.new, out.denied_at_version), (true, None));
    assert_eq!(store.used_after_transfers(&t0.id()).unwrap().len(), 2);
}

type RecordProof<S> = fn(&S, &ProofRecord, &[Notice], u64) -> Result<super::EquivocationOutcome, StoreError>;

/// A proof of either kind: stored, its signer flagged, the instrument
/// denied and the notices left — once; the second time changes nothing.
fn proof_is_recorded_once<S: RegistryStore>(
    store: &S,
    record: &ProofRecord,
    recipients: &[PublicKey],
    record_proof: RecordProof<S>,
) {
    let notices: Vec<Notice> = recipients
        .iter()
        .map(|k| Notice {
            id: 0,
            recipient: *k,
            kind: "proof".into(),
            instrument: Some(record.instrument),
            payload: record.proof.clone(),
            created_at: NOW,
        })
        .collect();
    assert_eq!(store.flagged(&record.signer).unwrap(), None);
    let out = record_proof(store, record, &notices, NOW).unwrap();
    assert!(out.new);
    assert_eq!(out.denied_at_version, Some(1));
    assert!(store.flagged(&record.signer).unwrap().is_some());
    assert_eq!(store.deny_changes_since(0).unwrap(), (1, vec![(record.instrument, 1)]));
    let got = store.notices(recipients, 0).unwrap();
    assert_eq!(got.len(), recipients.len());
    assert!(got[0].id < got[1].id);
    let before = store.dump().unwrap();
    let again = record_proof(store, record, &notices, NOW + 9).unwrap();
    assert!(!again.new);
    assert_eq!(store.dump().unwrap(), before, "recording the same proof twice must change nothing");
}

/// `inst`'s next link, from `from` to `to`, bound to `offer` (a sale's delivery).
fn sold(inst: &Instrument, from: &LocalSigner, to: PublicKey, offer: ExchangeId) -> LinkRecord {
    let body = inst.next_endorsement(to, offer, ExchangeId([2; 16]), NOW);
    LinkRecord::of(&Signed::sign(body, from).unwrap(), from.public_key())
}

/// The refund of `offer` to buyer `[9; 32]`, awaiting `awaiting`; no notes
/// move (the ledger line is the refund's reference).
fn refund_of(offer: ExchangeId, awaiting: Vec<(InstrumentId, u32)>) -> (SaleRefund, NoteExchange) {
    let buyer = PublicKey([9; 32]);
    let exchange = NoteExchange {
        account: buyer,
        currency: "EUR".into(),
        spend: vec![],
        retire: vec![],
        issue: vec![],
        payout: 0,
        paid_in: 0,
        reference: format!("sale-refund:{}", offer.to_hex()),
        notices: vec![],
    };
    (SaleRefund { offer_id: offer, buyer, reason: "deadline".into(), awaiting }, exchange)
}

pub fn refund_and_delivery_exclude_each_other<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (seller, buyer) = (f.signer(), PublicKey([9; 32]));
    let tickets: Vec<Instrument> = (0..3).map(|_| f.ticket(&seller)).collect();
    for t in &tickets {
        store.insert_instrument(&InstrumentRow::issued(t, None, NOW)).unwrap();
    }
    let offers = [0x50u8, 0x51, 0x52].map(|b| ExchangeId([b; 16]));
    // Refunded first: the delivery that comes later is refused and changes nothing.
    let (refund, exchange) = refund_of(offers[0], vec![(tickets[0].id(), 1)]);
    store.refund_sale(&refund, &exchange, NOW).unwrap();
    let before = store.dump().unwrap();
    let out = store.apply_chains(&[update(&[sold(&tickets[0], &seller, buyer, offers[0])])], NOW).unwrap();
    assert_eq!(out, vec![ChainOutcome::SaleRefunded { sequence: 1, offer: offers[0] }]);
    assert_eq!(store.dump().unwrap(), before, "a refused delivery changes nothing");
    // Delivered first: the refund judged before it is refused and changes nothing.
    applied(&store.apply_chains(&[update(&[sold(&tickets[1], &seller, buyer, offers[1])])], NOW).unwrap()[0]);
    let before = store.dump().unwrap();
    let (refund, exchange) = refund_of(offers[1], vec![(tickets[1].id(), 1)]);
    assert_eq!(store.refund_sale(&refund, &exchange, NOW), Err(StoreError::SaleChanged(offers[1])));
    assert_eq!(store.dump().unwrap(), before, "a refused refund changes nothing");
    // A link registered before the refund (a payment uploaded again with
    // its claim) still passes: only new links are deliveries.
    let link = sold(&tickets[2], &seller, buyer, offers[2]);
    applied(&store.apply_chains(&[update(std::slice::from_ref(&link))], NOW).unwrap()[0]);
    let (refund, exchange) = refund_of(offers[2], vec![]);
    store.refund_sale(&refund, &exchange, NOW).unwrap();
    let before = store.dump().unwrap();
    assert_eq!(applied(&store.apply_chains(&[update(&[link])], NOW).unwrap()[0]).0, 0);
    assert_eq!(store.dump().unwrap(), before);
}

/// Updates applied against rows `stored_prefixes` read before something
/// else changed them ([`ChainUpdate::seen`]) are decided as under the row
/// locks, each change in a batch of its own: a status set since is kept,
/// not written back over; a link registered since stands; a refund
/// recorded since voids its delivery, though it wrote no row. An update
/// whose row nothing changed is applied.
pub fn updates_from_rows_read_earlier_decide_as_locked<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let (alice, bob, carol) = (f.signer(), f.signer(), f.signer());
    let tickets: Vec<Instrument> = (0..4).map(|_| f.ticket(&alice)).collect();
    for t in &tickets {
        store.insert_instrument(&InstrumentRow::issued(t, None, NOW)).unwrap();
    }
    let wanted: Vec<(InstrumentId, u32, u32)> = tickets.iter().map(|t| (t.id(), 1, 1)).collect();
    let seen: Vec<Option<SeenRow>> =
        store.stored_prefixes(&wanted).unwrap().into_iter().map(|p| p.expect("stored").seen).collect();
    // What changes after the read.
    assert!(store.set_status(&tickets[0].id(), &alice.public_key(), Status::Active, Status::Dispensed, NOW).unwrap());
    let (_, first) = Fixture::endorse(&tickets[1], &alice, carol.public_key());
    applied(&store.apply_chains(&[update(std::slice::from_ref(&first))], NOW).unwrap()[0]);
    let offer = ExchangeId([0x61; 16]);
    let (refund, exchange) = refund_of(offer, vec![(tickets[2].id(), 1)]);
    store.refund_sale(&refund, &exchange, NOW).unwrap();
    let links = [
        Fixture::endorse(&tickets[0], &alice, bob.public_key()).1,
        Fixture::endorse(&tickets[1], &alice, bob.public_key()).1,
        sold(&tickets[2], &alice, bob.public_key(), offer),
        Fixture::endorse(&tickets[3], &alice, bob.public_key()).1,
    ];
    let mut out = Vec::new();
    for (link, seen) in links.iter().zip(seen) {
        let update = ChainUpdate { instrument: link.instrument, links: vec![link.clone()], seen };
        out.extend(store.apply_chains(&[update], NOW).unwrap());
    }
    let (added, row) = applied(&out[0]);
    assert_eq!((added, row.holder, row.status), (1, bob.public_key(), Status::Dispensed));
    assert_eq!(store.instrument(&tickets[0].id()).unwrap().unwrap().status, Status::Dispensed);
    assert!(
        matches!(&out[1], ChainOutcome::Conflict { registered, .. } if registered.digest == first.digest),
        "{:?}",
        out[1]
    );
    assert_eq!(store.links(&tickets[1].id()).unwrap(), vec![first]);
    assert_eq!(out[2], ChainOutcome::SaleRefunded { sequence: 1, offer });
    assert!(store.links(&tickets[2].id()).unwrap().is_empty());
    assert_eq!(applied(&out[3]).1.holder, bob.public_key());
}

/// Two handles (two registry processes): one refunds sales while the
/// other registers their deliveries. For each sale exactly one wins.
pub fn refund_races_delivery<S: RegistryStore>(store: S, open: Opener<'_, S>) {
    const SALES: u8 = 24;
    let mut f = Fixture::new();
    let (seller, buyer) = (f.signer(), PublicKey([9; 32]));
    let mut sales = Vec::new();
    for i in 0..SALES {
        let t = f.ticket(&seller);
        store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
        let offer = ExchangeId([0x60 + i; 16]);
        sales.push((t.id(), offer, sold(&t, &seller, buyer, offer)));
    }
    let (refunded, delivered) = std::thread::scope(|scope| {
        let refunds = scope.spawn(|| {
            let handle = open();
            sales
                .iter()
                .map(|(id, offer, _)| {
                    let (refund, exchange) = refund_of(*offer, vec![(*id, 1)]);
                    match handle.refund_sale(&refund, &exchange, NOW) {
                        Ok(_) => true,
                        Err(StoreError::SaleChanged(o)) if o == *offer => false,
                        Err(e) => panic!("unexpected {e}"),
                    }
                })
                .collect::<Vec<_>>()
        });
        let deliveries = scope.spawn(|| {
            let handle = open();
            sales
                .iter()
                .map(|(_, offer, link)| match handle.apply_chains(&[update(std::slice::from_ref(link))], NOW) {
                    Ok(out) => match &out[0] {
                        ChainOutcome::Applied { added: 1, .. } => true,
                        ChainOutcome::SaleRefunded { offer: o, .. } if o == offer => false,
                        other => panic!("unexpected {other:?}"),
                    },
                    Err(e) => panic!("unexpected {e}"),
                })
                .collect::<Vec<_>>()
        });
        (refunds.join().unwrap(), deliveries.join().unwrap())
    });
    for (i, (id, offer, _)) in sales.iter().enumerate() {
        assert!(refunded[i] != delivered[i], "sale {i}: refunded {} delivered {}", refunded[i], delivered[i]);
        assert_eq!(store.links(id).unwrap().len(), usize::from(delivered[i]));
        assert_eq!(store.refunded_sales(&[*offer]).unwrap().len(), usize::from(refunded[i]));
    }
}

pub fn deny_list_is_incremental<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let ids: Vec<InstrumentId> = (1..=3u8).map(|i| InstrumentId([i; 16])).collect();
    assert_eq!(store.deny_changes_since(0).unwrap(), (0, vec![]));
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(store.deny(id, "revoked", NOW).unwrap(), n as u64 + 1);
    }
    assert_eq!(store.deny(&ids[0], "again", NOW).unwrap(), 1, "denying twice keeps the first version");
    assert_eq!(store.deny_changes_since(1).unwrap(), (3, vec![(ids[1], 2), (ids[2], 3)]));
    assert_eq!(store.deny_changes_since(3).unwrap(), (3, vec![]));
}

pub fn nonces_refuse_replay<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let key = PublicKey([5; 32]);
    assert!(store.use_nonce(&key, &[1; 16], NOW, NOW - 300).unwrap());
    assert!(!store.use_nonce(&key, &[1; 16], NOW + 1, NOW - 299).unwrap());
    assert!(store.use_nonce(&PublicKey([6; 32]), &[1; 16], NOW, NOW - 300).unwrap());
    // Forgotten once outside the window (the timestamp check refuses those).
    assert!(store.use_nonce(&key, &[1; 16], NOW + 1000, NOW + 700).unwrap());
}

pub fn parties_bump_trust_version<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    assert_eq!(store.trust_version().unwrap(), 0);
    let p = Party { key: PublicKey([1; 32]), role: Role::Issuer, name: "Org".into(), not_after: NOW * 2 };
    assert_eq!(store.put_party(&p).unwrap(), 1);
    let g = Party { key: PublicKey([2; 32]), role: Role::Gate, name: "Gate 3".into(), not_after: NOW * 2 };
    assert_eq!(store.put_party(&g).unwrap(), 2);
    let renamed = Party { name: "Organiser".into(), ..p.clone() };
    assert_eq!(store.put_party(&renamed).unwrap(), 3);
    assert_eq!(store.parties().unwrap(), vec![renamed, g]);
    assert_eq!(store.trust_version().unwrap(), 3);
}

fn supply_holds<S: RegistryStore>(store: &S) {
    let t = store.money_totals("EUR").unwrap();
    assert_eq!(t.issued - t.redeemed, t.active_notes, "{t:?}");
    assert_eq!(t.paid_in - t.paid_out, t.balances + t.active_notes, "{t:?}");
}

fn note_rows(f: &mut Fixture, holder: PublicKey, values: &[u64], account: PublicKey) -> Vec<InstrumentRow> {
    values.iter().map(|v| InstrumentRow::issued(&f.note(holder, *v), Some(account), NOW)).collect()
}

pub fn ledger_moves_value_exactly<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let account = PublicKey([9; 32]);
    let holder = f.signer().public_key();
    assert!(store.top_up(&account, &Amount::new("EUR", 1000), "pay-1", NOW).unwrap());
    let before = store.dump().unwrap();
    assert!(!store.top_up(&account, &Amount::new("EUR", 1000), "pay-1", NOW).unwrap(), "top-up is idempotent");
    assert_eq!(store.dump().unwrap(), before);
    assert_eq!(store.balance(&account, "EUR").unwrap(), 1000);

    let notes = note_rows(&mut f, holder, &[500, 200, 200], account);
    let ex = NoteExchange {
        account,
        currency: "EUR".into(),
        spend: vec![],
        issue: notes.clone(),
        payout: 0,
        paid_in: 0,
        retire: vec![],
        reference: "issue-1".into(),
        notices: vec![],
    };
    assert_eq!(store.exchange_notes(&ex, NOW).unwrap(), 100);
    supply_holds(&store);

    // Too much: refused, nothing changes.
    let before = store.dump().unwrap();
    let big = note_rows(&mut f, holder, &[200], account);
    let ex2 = NoteExchange { issue: big, reference: "issue-2".into(), ..ex.clone() };
    assert!(matches!(store.exchange_notes(&ex2, NOW), Err(StoreError::InsufficientFunds { .. })));
    assert_eq!(store.dump().unwrap(), before);
    // A reused reference: refused, nothing changes.
    let ex3 = NoteExchange { issue: note_rows(&mut f, holder, &[10], account), ..ex.clone() };
    assert!(matches!(store.exchange_notes(&ex3, NOW), Err(StoreError::DuplicateReference(_))));
    assert_eq!(store.dump().unwrap(), before);

    // Refresh: 500 → 200 + 200 + 100, value preserved.
    let fresh = note_rows(&mut f, holder, &[200, 200, 100], account);
    let refresh = NoteExchange {
        account,
        currency: "EUR".into(),
        spend: vec![NoteSpend { id: notes[0].id, holder }],
        issue: fresh,
        payout: 0,
        paid_in: 0,
        retire: vec![],
        reference: "refresh-1".into(),
        notices: vec![],
    };
    assert_eq!(store.exchange_notes(&refresh, NOW).unwrap(), 100);
    supply_holds(&store);
    // Spending the same note again: refused, nothing changes.
    let before = store.dump().unwrap();
    let again = NoteExchange { reference: "refresh-2".into(), issue: vec![], ..refresh.clone() };
    assert_eq!(store.exchange_notes(&again, NOW), Err(StoreError::NoteNotSpendable(notes[0].id)));
    // A note held by another key: refused.
    let wrong = NoteExchange {
        spend: vec![NoteSpend { id: notes[1].id, holder: PublicKey([1; 32]) }],
        issue: vec![],
        reference: "wrong".into(),
        ..refresh.clone()
    };
    assert_eq!(store.exchange_notes(&wrong, NOW), Err(StoreError::NoteNotSpendable(notes[1].id)));
    assert_eq!(store.dump().unwrap(), before);

    // Redeem 200 to the account and pay 300 out.
    let redeem = NoteExchange {
        account,
        currency: "EUR".into(),
        spend: vec![NoteSpend { id: notes[1].id, holder }],
        issue: vec![],
        payout: 300,
        paid_in: 0,
        retire: vec![],
        reference: "redeem-1".into(),
        notices: vec![],
    };
    assert_eq!(store.exchange_notes(&redeem, NOW).unwrap(), 0);
    supply_holds(&store);
    let t = store.money_totals("EUR").unwrap();
    assert_eq!((t.paid_in, t.paid_out, t.issued, t.redeemed, t.active_notes), (1000, 300, 1400, 700, 700));
    assert_eq!(store.instrument(&notes[1].id).unwrap().unwrap().status, Status::Refunded);
    // Its ledger line, which a retried redemption looks up.
    let line = LedgerEntry { account, currency: "EUR".into(), amount: 200 - 300 };
    assert_eq!(store.ledger_entry("redeem-1").unwrap(), Some(line));
    assert_eq!(store.ledger_entry("pay-1").unwrap().map(|l| l.amount), Some(1000));
    assert_eq!(store.ledger_entry("redeem-2").unwrap(), None);
}

pub fn status_changes_are_conditional<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let a = f.signer();
    let t = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
    assert!(!store.set_status(&t.id(), &PublicKey([1; 32]), Status::Active, Status::Refunded, NOW).unwrap());
    assert!(store.set_status(&t.id(), &a.public_key(), Status::Active, Status::Refunded, NOW).unwrap());
    assert!(!store.set_status(&t.id(), &a.public_key(), Status::Active, Status::Refunded, NOW).unwrap());
    assert_eq!(store.instrument(&t.id()).unwrap().unwrap().status, Status::Refunded);
}

pub fn events_and_ticket_sales<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let event = super::EventRow {
        event_id: "ev".into(),
        organiser: PublicKey([4; 32]),
        title: "Concert".into(),
        zones: vec!["A".into(), "B".into()],
        valid_from: 0,
        valid_until: NOW * 2,
        price: Amount::new("EUR", 300),
        transferable: true,
        uses: 1,
        created_at: NOW,
    };
    assert!(store.put_event(&event).unwrap());
    assert!(!store.put_event(&super::EventRow { title: "Other".into(), ..event.clone() }).unwrap());
    assert_eq!(store.event("ev").unwrap(), Some(event.clone()));
    assert_eq!(store.event("nope").unwrap(), None);
    assert_eq!(store.events().unwrap(), vec![event]);

    // Buy: the account pays 300 out to the organiser and gets a ticket.
    let account = PublicKey([8; 32]);
    let buyer = f.signer();
    store.top_up(&account, &Amount::new("EUR", 500), "pay", NOW).unwrap();
    let ticket = InstrumentRow::issued(&f.ticket(&buyer), Some(account), NOW);
    let buy = NoteExchange {
        account,
        currency: "EUR".into(),
        spend: vec![],
        retire: vec![],
        issue: vec![ticket.clone()],
        payout: 300,
        paid_in: 0,
        reference: "buy".into(),
        notices: vec![],
    };
    assert_eq!(store.exchange_notes(&buy, NOW).unwrap(), 200);
    // Refund: the ticket is retired (only under its holder), 300 comes back as a note.
    let before = store.dump().unwrap();
    let wrong = NoteExchange {
        retire: vec![NoteSpend { id: ticket.id, holder: PublicKey([1; 32]) }],
        issue: vec![],
        payout: 0,
        paid_in: 300,
        reference: "refund-wrong".into(),
        ..buy.clone()
    };
    assert_eq!(store.exchange_notes(&wrong, NOW), Err(StoreError::NotActive(ticket.id)));
    assert_eq!(store.dump().unwrap(), before);
    let refund = NoteExchange {
        retire: vec![NoteSpend { id: ticket.id, holder: buyer.public_key() }],
        issue: note_rows(&mut f, buyer.public_key(), &[200, 100], account),
        payout: 0,
        paid_in: 300,
        reference: "refund".into(),
        ..buy.clone()
    };
    assert_eq!(store.exchange_notes(&refund, NOW).unwrap(), 200);
    assert_eq!(store.instrument(&ticket.id).unwrap().unwrap().status, Status::Refunded);
    supply_holds(&store);
}

pub fn gifts_settle_once<S: RegistryStore>(store: S, open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let a = f.signer();
    let t = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
    let gift = super::GiftRow {
        gift_id: [7; 16],
        instrument: t.id(),
        sender: PublicKey([1; 32]),
        recipient: PublicKey([2; 32]),
        return_holder: PublicKey([3; 32]),
        state: "pending".into(),
        settled_to: None,
        created_at: NOW,
    };
    let notice = Notice {
        id: 0,
        recipient: gift.recipient,
        kind: "gift".into(),
        instrument: Some(t.id()),
        payload: gift.gift_id.to_vec(),
        created_at: NOW,
    };
    store.put_gift(&gift, &notice).unwrap();
    assert_eq!(store.gift(&[7; 16]).unwrap(), Some(gift.clone()));
    assert_eq!(store.pending_gifts(&PublicKey([2; 32])).unwrap(), vec![gift.clone()]);
    assert_eq!(store.notices(&[gift.recipient], 0).unwrap().len(), 1);
    // Two handles race to settle it: exactly one wins.
    let wins = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for holder in [PublicKey([4; 32]), PublicKey([5; 32])] {
            let wins = &wins;
            s.spawn(move || {
                if open().settle_gift(&[7; 16], "accepted", &holder).unwrap() {
                    wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(wins.load(std::sync::atomic::Ordering::SeqCst), 1);
    let settled = store.gift(&[7; 16]).unwrap().unwrap();
    assert_eq!(settled.state, "accepted");
    assert!(settled.settled_to.is_some());
    assert!(store.pending_gifts(&PublicKey([2; 32])).unwrap().is_empty());
    let before = store.dump().unwrap();
    assert!(!store.settle_gift(&[7; 16], "declined", &PublicKey([3; 32])).unwrap());
    assert_eq!(store.dump().unwrap(), before);
}

pub fn bags_settle_once<S: RegistryStore>(store: S, _open: Opener<'_, S>) {
    let mut f = Fixture::new();
    let a = f.signer();
    let t = f.ticket(&a);
    store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
    let gate = PublicKey([30; 32]);
    let record = |n: u8, admitted: bool| super::ExaminationRow {
        certificate: tessera_core::Digest([n; 32]),
        instrument: t.id(),
        admitted,
        uses_left: 0,
        status: Status::Active,
        examined_at: NOW,
        // An admission keeps the holder's answer (opaque bytes here).
        answer: admitted.then(|| vec![0xA0, n]),
    };
    let bag1 = tessera_core::Digest([0xB1; 32]);
    let s1 = store.settle_bag(&gate, 1, &bag1, &[record(1, true), record(2, false)], NOW).unwrap();
    assert!(!s1.replayed);
    let s1 = s1.settlement;
    assert_eq!((s1.bags, s1.admitted, s1.refused), (1, 1, 1));
    assert_eq!(store.instrument(&t.id()).unwrap().unwrap().uses_left, 0);
    let before = store.dump().unwrap();
    // The same bag again (its answer was lost): the original settlement,
    // and nothing changes.
    let again = store.settle_bag(&gate, 1, &bag1, &[record(1, true), record(2, false)], NOW + 5).unwrap();
    assert_eq!(again, super::BagSettled { settlement: s1, replayed: true });
    assert_eq!(store.dump().unwrap(), before, "a replayed bag changes nothing");
    // Another bag under a used number, with new or the same records.
    let other = tessera_core::Digest([0xB2; 32]);
    assert!(matches!(store.settle_bag(&gate, 1, &other, &[record(3, true)], NOW), Err(StoreError::BagReused { .. })));
    assert!(matches!(
        store.settle_bag(&gate, 1, &other, &[record(1, true), record(2, false)], NOW),
        Err(StoreError::BagReused { .. })
    ));
    assert_eq!(
        store.settle_bag(&gate, 2, &other, &[record(4, true), record(1, true)], NOW),
        Err(StoreError::AlreadySettled(tessera_core::Digest([1; 32])))
    );
    assert_eq!(store.dump().unwrap(), before, "a refused bag changes nothing");
    // Another gate's number 1 is its own.
    store.settle_bag(&PublicKey([31; 32]), 1, &bag1, &[record(5, true)], NOW).unwrap();
    let total = store.settlement(&gate).unwrap();
    assert_eq!((total.bags, total.admitted, total.refused), (1, 1, 1));
    assert_eq!(
        store.admitted_answers(&[t.id(), InstrumentId([0xEE; 16])]).unwrap(),
        vec![(t.id(), vec![0xA0, 1]), (t.id(), vec![0xA0, 5])],
        "the admissions' answers, refusals left out"
    );
}

/// Several handles (connections, as separate processes would have) race to
/// register conflicting endorsements and to spend the same notes: exactly
/// one link per (instrument, sequence), each note spent once, and the money
/// supply still adds up.
pub fn concurrent_writers_never_double_register<S: RegistryStore>(store: S, open: Opener<'_, S>) {
    const INSTRUMENTS: usize = 12;
    const WRITERS: usize = 4;
    let mut f = Fixture::new();
    let account = PublicKey([3; 32]);
    let mut per_writer: Vec<Vec<ChainUpdate>> = vec![Vec::new(); WRITERS];
    let mut ids = Vec::new();
    for _ in 0..INSTRUMENTS {
        let a = f.signer();
        let t = f.ticket(&a);
        store.insert_instrument(&InstrumentRow::issued(&t, None, NOW)).unwrap();
        ids.push(t.id());
        for w in per_writer.iter_mut() {
            let (_ti, l) = Fixture::endorse(&t, &a, f.signer().public_key());
            w.push(update(&[l]));
        }
    }
    store.top_up(&account, &Amount::new("EUR", 10_000), "pay", NOW).unwrap();
    let holder = f.signer().public_key();
    let notes = note_rows(&mut f, holder, &[1000; 5], account);
    store
        .exchange_notes(
            &NoteExchange {
                account,
                currency: "EUR".into(),
                spend: vec![],
                issue: notes.clone(),
                payout: 0,
                paid_in: 0,
                retire: vec![],
                reference: "n".into(),
                notices: vec![],
            },
            NOW,
        )
        .unwrap();
    let spent = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (w, updates) in per_writer.iter().enumerate() {
            let notes = &notes;
            let spent = &spent;
            scope.spawn(move || {
                let handle = open();
                for chunk in updates.chunks(3) {
                    handle.apply_chains(chunk, NOW).unwrap();
                }
                for (i, n) in notes.iter().enumerate() {
                    let ex = NoteExchange {
                        account,
                        currency: "EUR".into(),
                        spend: vec![NoteSpend { id: n.id, holder }],
                        issue: vec![],
                        payout: 0,
                        paid_in: 0,
                        retire: vec![],
                        reference: format!("spend-{w}-{i}"),
                        notices: vec![],
                    };
                    match handle.exchange_notes(&ex, NOW) {
                        Ok(_) => {
                            spent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(StoreError::NoteNotSpendable(_)) => {}
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            });
        }
    });
    for id in &ids {
        let links = store.links(id).unwrap();
        assert_eq!(links.len(), 1, "exactly one registered link for {id}");
        let row = store.instrument(id).unwrap().unwrap();
        assert_eq!((row.sequence, row.holder), (1, links[0].new_holder));
    }
    assert_eq!(spent.load(std::sync::atomic::Ordering::SeqCst), notes.len());
    assert_eq!(store.balance(&account, "EUR").unwrap(), 10_000);
    supply_holds(&store);
}

/// Declares the suite's `#[test]`s for one backend: `$make` returns
/// `(store, opener)`; attributes after it (such as `#[ignore]`) apply to each.
#[macro_export]
macro_rules! registry_conformance {
    ($make:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::registry_conformance!(@cases [$(#[$attr])*] $make;
            instrument_round_trip, chain_keeps_former_holder_chain, stored_prefixes_name_what_is_stored,
            reupload_changes_nothing,
            first_registered_link_stands, disconnected_and_unknown_uploads, batch_applies_each_update,
            mixed_batch_matches_step_by_step, examination_reports_apply_once, sale_refunds_and_double_sales_once,
            replacement_keeps_value_and_happens_once,
            equivocation_is_recorded_once, used_after_transfer_is_recorded_once, refund_and_delivery_exclude_each_other,
            updates_from_rows_read_earlier_decide_as_locked,
            refund_races_delivery, deny_list_is_incremental, nonces_refuse_replay,
            parties_bump_trust_version, ledger_moves_value_exactly, events_and_ticket_sales, gifts_settle_once, bags_settle_once, status_changes_are_conditional,
            concurrent_writers_never_double_register);
    };
    (@cases [$($attrs:tt)*] $make:expr; $case:ident $(, $rest:ident)*) => {
        #[test]
        $($attrs)*
        fn $case() {
            let (store, open) = $make;
            $crate::store::conformance::$case(store, &*open);
        }
        $crate::registry_conformance!(@cases [$($attrs)*] $make; $($rest),*);
    };
    (@cases [$($attrs:tt)*] $make:expr;) => {};
}
