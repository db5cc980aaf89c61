//! The conformance suite every [`WalletStore`] implementation runs.
//!
//! Call [`run_all`] with a constructor of fresh, empty stores, and
//! [`run_reopen`] with a constructor that reopens one persistent store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use super::*;
use crate::Signer;
use crate::authority::Issuer;
use crate::crypto::LocalSigner;
use crate::instrument::{Attributes, NoteAttributes, TicketAttributes};
use crate::sealing::{Sealer, StorageKey};

/// A real issuer-signed instrument, numbered so tests can tell them apart.
pub fn sample_instrument(n: u8, kind: Kind) -> Instrument {
    let issuer = Issuer::new(LocalSigner::from_seed(&[0xA0; 32]));
    let holder = LocalSigner::from_seed(&[n; 32]).public_key();
    let attributes = match kind {
        Kind::Note => Attributes::Note(NoteAttributes { amount: Amount::new("EUR", 500), expires_at: 2_000_000_000 }),
        Kind::Ticket | Kind::Coupon => Attributes::Ticket(TicketAttributes {
            event_id: "concert-1".into(),
            title: "Concert".into(),
            zone: "A".into(),
            seat: Some(format!("{n}")),
            guidance: None,
            valid_from: 0,
            valid_until: 2_000_000_000,
            transferable: true,
            uses: 1,
            face_price: None,
        }),
    };
    issuer.issue_with_id(InstrumentId([n; 16]), attributes, holder, 1_000 + u64::from(n)).expect("local signer signs")
}

/// A record for [`sample_instrument`].
pub fn sample_record(n: u8, kind: Kind) -> InstrumentRecord {
    let instrument = sample_instrument(n, kind);
    InstrumentRecord {
        holder: instrument.holder(),
        instrument,
        holding: Holding::Held,
        uses_left: 1,
        status: Status::Active,
        exam_counter: 0,
        updated_at: 1_000 + u64::from(n),
    }
}

fn history(n: u8) -> HistoryEntry {
    HistoryEntry {
        seq: 0,
        time: 5_000 + u64::from(n),
        direction: if n.is_multiple_of(2) { Direction::In } else { Direction::Out },
        kind: Kind::Note,
        instrument_id: InstrumentId([n; 16]),
        amount: Some(Amount::new("EUR", 100 * u64::from(n))),
        counterparty: Some(PublicKey([n; 32])),
        exchange: Some(ExchangeId([n; 16])),
        memo: format!("entry {n}"),
    }
}

fn apply(store: &mut impl WalletStore, writes: Vec<Write>) -> Result<(), StoreError> {
    store.apply(WriteBatch(writes))
}

/// Every check, each on a fresh store.
pub fn run_all<S: WalletStore>(make: impl Fn() -> S) {
    meta_round_trip(&mut make());
    keys(&mut make());
    instruments(&mut make());
    failed_batch_changes_nothing(&mut make());
    pending(&mut make());
    history_and_examinations(&mut make());
    fork_evidence(&mut make());
}

fn meta_round_trip(s: &mut impl WalletStore) {
    assert_eq!(s.meta("a").unwrap(), None);
    apply(s, vec![Write::PutMeta("a".into(), vec![1, 2])]).unwrap();
    apply(s, vec![Write::PutMeta("a".into(), vec![3])]).unwrap();
    assert_eq!(s.meta("a").unwrap(), Some(vec![3]));
}

fn keys(s: &mut impl WalletStore) {
    let k = |n: u8, role| KeyRecord { public: PublicKey([n; 32]), role, sealed: vec![n; 60], created_at: u64::from(n) };
    apply(s, vec![Write::InsertKey(k(1, KeyRole::Account)), Write::InsertKey(k(2, KeyRole::Holder))]).unwrap();
    apply(s, vec![Write::InsertKey(k(3, KeyRole::Holder))]).unwrap();
    assert_eq!(s.key(&PublicKey([2; 32])).unwrap(), Some(k(2, KeyRole::Holder)));
    assert_eq!(s.key(&PublicKey([9; 32])).unwrap(), None);
    assert_eq!(s.keys(KeyRole::Holder).unwrap(), vec![k(2, KeyRole::Holder), k(3, KeyRole::Holder)]);
    assert_eq!(s.keys(KeyRole::Account).unwrap(), vec![k(1, KeyRole::Account)]);
    assert!(matches!(apply(s, vec![Write::InsertKey(k(2, KeyRole::Holder))]), Err(StoreError::Conflict(_))));
}

fn instruments(s: &mut impl WalletStore) {
    let (t, n) = (sample_record(1, Kind::Ticket), sample_record(2, Kind::Note));
    apply(s, vec![Write::InsertInstrument(t.clone()), Write::InsertInstrument(n.clone())]).unwrap();
    assert_eq!(s.instrument(&t.instrument.id()).unwrap(), Some(t.clone()));
    let all = s.instruments(InstrumentFilter::default()).unwrap();
    assert_eq!(all.iter().map(|x| x.id).collect::<Vec<_>>(), vec![n.instrument.id(), t.instrument.id()]);
    assert_eq!(all[0], n.summary());
    let notes = s.instruments(InstrumentFilter { kind: Some(Kind::Note), holding: None }).unwrap();
    assert_eq!(notes, vec![n.summary()]);

    let mut moved = t.clone();
    moved.holding = Holding::PendingOut;
    moved.updated_at = 9_999;
    apply(s, vec![Write::UpdateInstrument(moved.clone())]).unwrap();
    assert_eq!(s.instrument(&t.instrument.id()).unwrap(), Some(moved));
    let held = s.instruments(InstrumentFilter { kind: None, holding: Some(Holding::Held) }).unwrap();
    assert_eq!(held, vec![n.summary()]);

    assert!(matches!(apply(s, vec![Write::InsertInstrument(t)]), Err(StoreError::Conflict(_))));
    let missing = sample_record(3, Kind::Ticket);
    assert!(matches!(apply(s, vec![Write::UpdateInstrument(missing)]), Err(StoreError::Conflict(_))));
}

fn failed_batch_changes_nothing(s: &mut impl WalletStore) {
    let a = sample_record(1, Kind::Ticket);
    apply(s, vec![Write::InsertInstrument(a.clone()), Write::PutMeta("k".into(), vec![1])]).unwrap();
    let before = (s.instruments(InstrumentFilter::default()).unwrap(), s.history(100).unwrap(), s.meta("k").unwrap());

    // Valid writes first, then one that conflicts: none of them may stick.
    let mut changed = a.clone();
    changed.holding = Holding::Gone;
    let result = apply(
        s,
        vec![
            Write::UpdateInstrument(changed),
            Write::AppendHistory(history(1)),
            Write::PutMeta("k".into(), vec![2]),
            Write::InsertInstrument(sample_record(2, Kind::Note)),
            Write::InsertInstrument(a.clone()),
        ],
    );
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    let after = (s.instruments(InstrumentFilter::default()).unwrap(), s.history(100).unwrap(), s.meta("k").unwrap());
    assert_eq!(before, after);
    assert_eq!(s.instrument(&a.instrument.id()).unwrap(), Some(a));
}

fn pending(s: &mut impl WalletStore) {
    let p = |n: u8, state: Vec<u8>| PendingRecord {
        id: ExchangeId([n; 16]),
        protocol: "transfer-out".into(),
        state,
        updated_at: u64::from(n),
    };
    apply(s, vec![Write::PutPending(p(1, vec![1])), Write::PutPending(p(2, vec![2]))]).unwrap();
    apply(s, vec![Write::PutPending(p(1, vec![7]))]).unwrap();
    assert_eq!(s.pending(&ExchangeId([1; 16])).unwrap(), Some(p(1, vec![7])));
    apply(s, vec![Write::DeletePending(ExchangeId([2; 16])), Write::DeletePending(ExchangeId([5; 16]))]).unwrap();
    assert_eq!(s.all_pending().unwrap(), vec![p(1, vec![7])]);
}

fn history_and_examinations(s: &mut impl WalletStore) {
    apply(s, (1..=5).map(|n| Write::AppendHistory(history(n))).collect()).unwrap();
    let newest = s.history(3).unwrap();
    assert_eq!(newest.iter().map(|h| h.memo.as_str()).collect::<Vec<_>>(), vec!["entry 5", "entry 4", "entry 3"]);
    let mut expected = history(5);
    expected.seq = newest[0].seq;
    assert_eq!(newest[0], expected);
    assert!(newest[0].seq > newest[1].seq);

    let exam = |n: u8, id: u8| ExaminationRecord {
        seq: 0,
        instrument_id: InstrumentId([id; 16]),
        gate: PublicKey([9; 32]),
        instruction: "enter".into(),
        counter: u32::from(n),
        time: u64::from(n),
        certificate: vec![n; 8],
    };
    apply(
        s,
        vec![
            Write::AppendExamination(exam(1, 1)),
            Write::AppendExamination(exam(2, 2)),
            Write::AppendExamination(exam(3, 1)),
        ],
    )
    .unwrap();
    let one = s.examinations(Some(&InstrumentId([1; 16]))).unwrap();
    assert_eq!(one.iter().map(|e| e.counter).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(s.examinations(None).unwrap().len(), 3);
}

fn fork_evidence(s: &mut impl WalletStore) {
    let kept = |n: u8| ForkEvidence { seq: 0, chain: sample_instrument(n, Kind::Ticket), kept_at: u64::from(n) };
    assert!(s.fork_evidence().unwrap().is_empty());
    // The same chain kept twice is one row; another instrument's is another.
    let writes =
        vec![Write::KeepForkEvidence(kept(1)), Write::KeepForkEvidence(kept(1)), Write::KeepForkEvidence(kept(2))];
    apply(s, writes).unwrap();
    let stored = s.fork_evidence().unwrap();
    assert_eq!(
        stored.iter().map(|f| (&f.chain, f.kept_at)).collect::<Vec<_>>(),
        vec![(&kept(1).chain, 1), (&kept(2).chain, 2)]
    );
    assert!(stored[0].seq < stored[1].seq, "oldest first");
    apply(s, vec![Write::DropForkEvidence(InstrumentId([1; 16])), Write::DropForkEvidence(InstrumentId([7; 16]))])
        .unwrap();
    assert_eq!(
        s.fork_evidence().unwrap().iter().map(|f| f.chain.id()).collect::<Vec<_>>(),
        vec![InstrumentId([2; 16])]
    );
}

/// Writes one of everything, drops the store, reopens it, and checks that
/// everything is still there and that the files hold no private key bytes.
pub fn run_reopen<S: WalletStore>(open: impl Fn() -> S, path: &std::path::Path) {
    let secret = LocalSigner::from_seed(&[0x5E; 32]);
    let sealer = Sealer::new(&StorageKey::from_bytes([0x11; 32]));
    let sealed = sealer.seal_key(secret.secret(), &mut rand::rngs::OsRng);
    let key = KeyRecord { public: secret.public_key(), role: KeyRole::Holder, sealed, created_at: 1 };
    let rec = sample_record(4, Kind::Ticket);
    {
        let mut s = open();
        apply(
            &mut s,
            vec![
                Write::InsertKey(key.clone()),
                Write::InsertInstrument(rec.clone()),
                Write::AppendHistory(history(4)),
                Write::PutMeta("m".into(), vec![4]),
                Write::PutPending(PendingRecord {
                    id: ExchangeId([4; 16]),
                    protocol: "p".into(),
                    state: vec![4],
                    updated_at: 4,
                }),
            ],
        )
        .unwrap();
    }
    let s = open();
    assert_eq!(s.key(&key.public).unwrap(), Some(key.clone()));
    assert_eq!(s.instrument(&rec.instrument.id()).unwrap(), Some(rec));
    assert_eq!(s.history(10).unwrap().len(), 1);
    assert_eq!(s.meta("m").unwrap(), Some(vec![4]));
    assert_eq!(s.all_pending().unwrap().len(), 1);
    let opened = sealer.open_key(&key.public, &key.sealed).unwrap();
    assert_eq!(opened.public_key(), key.public);
    assert_no_secret_in_files(path, secret.secret().to_bytes().as_ref());
}

/// Panics if `secret` appears in the file at `path` or its WAL and journal.
pub fn assert_no_secret_in_files(path: &std::path::Path, secret: &[u8]) {
    let mut checked = 0;
    for suffix in ["", "-wal", "-journal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(bytes) = std::fs::read(&p) {
            checked += 1;
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "private key bytes found in {}", p.display());
        }
    }
    assert!(checked > 0, "no database file at {}", path.display());
}
