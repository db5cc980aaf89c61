//! The SQLite wallet store: WAL mode, one connection (one writer), every
//! batch in one transaction, migrations compiled in and tracked with
//! `PRAGMA user_version`.

use super::{
    Direction, ExaminationRecord, ForkEvidence, HistoryEntry, Holding, InstrumentFilter, InstrumentRecord,
    InstrumentSummary, KeyRecord, KeyRole, PendingRecord, StoreError, WalletStore, Write, WriteBatch,
};
use crate::codec::Wire;
use crate::crypto::PublicKey;
use crate::ids::{ExchangeId, InstrumentId};
use crate::instrument::{Amount, Instrument, Kind, Status};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::Path;

/// Schema migrations, applied in order; the index + 1 is the schema version.
/// The list query; index `instruments_list` (migration 0003) covers every
/// column it reads, so listing never loads the `encoded` blobs.
const LIST_INSTRUMENTS: &str =
    "SELECT id, kind, label, currency, amount, event_id, valid_until, uses_left, status, holding, sequence, updated_at
     FROM instruments
     WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR holding = ?2)
     ORDER BY updated_at DESC, id";

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_list_order_index.sql"),
    include_str!("../../migrations/0003_covering_list_index.sql"),
    include_str!("../../migrations/0004_fork_evidence.sql"),
];

/// A wallet store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
}

fn backend(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(msg.unwrap_or_else(|| f.to_string()))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn status_from(s: &str) -> Result<Status, StoreError> {
    Ok(match s {
        "active" => Status::Active,
        "dispensed" => Status::Dispensed,
        "refunded" => Status::Refunded,
        "revoked" => Status::Revoked,
        "modified" => Status::Modified,
        _ => return Err(corrupt("instrument status")),
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn)
    }

    /// A store that lives in memory until dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
        let mut store = Self { conn };
        store.migrate()?;
        Ok(store)
    }

    /// Writes a consistent copy of the database to `path` (which must not
    /// exist), including what is still in the write-ahead log. Secrets stay
    /// sealed in the copy.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<(), StoreError> {
        let target = path.as_ref().to_str().ok_or_else(|| StoreError::Backend("backup path is not UTF-8".into()))?;
        self.conn.execute("VACUUM INTO ?1", params![target]).map_err(backend)?;
        Ok(())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0)).map_err(backend)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let current = self.schema_version()?;
        let supported = MIGRATIONS.len() as u32;
        if current > supported {
            return Err(StoreError::TooNew { found: current, supported });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self.conn.transaction().map_err(backend)?;
            tx.execute_batch(sql).map_err(backend)?;
            tx.pragma_update(None, "user_version", index as u32 + 1).map_err(backend)?;
            tx.commit().map_err(backend)?;
        }
        Ok(())
    }

    fn apply_one(tx: &rusqlite::Transaction<'_>, write: Write) -> Result<(), StoreError> {
        match write {
            Write::PutMeta(key, value) => {
                tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", params![key, value])
                    .map_err(backend)?;
            }
            Write::InsertKey(k) => {
                tx.execute(
                    "INSERT INTO keys (public, role, sealed, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![k.public.as_bytes().as_slice(), k.role.as_str(), k.sealed, to_i64(k.created_at)],
                )
                .map_err(backend)?;
            }
            Write::InsertInstrument(r) => {
                Self::write_instrument(tx, &r, false)?;
            }
            Write::UpdateInstrument(r) => {
                Self::write_instrument(tx, &r, true)?;
            }
            Write::PutPending(p) => {
                tx.execute(
                    "INSERT INTO pending (id, protocol, state, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET protocol = excluded.protocol, state = excluded.state, updated_at = excluded.updated_at",
                    params![p.id.as_bytes().as_slice(), p.protocol, p.state, to_i64(p.updated_at)],
                )
                .map_err(backend)?;
            }
            Write::DeletePending(id) => {
                tx.execute("DELETE FROM pending WHERE id = ?1", params![id.as_bytes().as_slice()]).map_err(backend)?;
            }
            Write::AppendHistory(h) => {
                tx.execute(
                    "INSERT INTO history (time, direction, kind, instrument_id, currency, amount, counterparty, exchange, memo)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        to_i64(h.time),
                        h.direction.as_str(),
                        h.kind.as_str(),
                        h.instrument_id.as_bytes().as_slice(),
                        h.amount.as_ref().map(|a| a.currency.clone()),
                        h.amount.as_ref().map(|a| to_i64(a.minor)),
                        h.counterparty.map(|k| k.0.to_vec()),
                        h.exchange.map(|x| x.0.to_vec()),
                        h.memo,
                    ],
                )
                .map_err(backend)?;
            }
            Write::AppendExamination(e) => {
                tx.execute(
                    "INSERT INTO examinations (instrument_id, gate, instruction, counter, time, certificate)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        e.instrument_id.as_bytes().as_slice(),
                        e.gate.as_bytes().as_slice(),
                        e.instruction,
                        e.counter,
                        to_i64(e.time),
                        e.certificate
                    ],
                )
                .map_err(backend)?;
            }
            Write::KeepForkEvidence(f) => {
                tx.execute(
                    "INSERT INTO fork_evidence (instrument_id, tip, encoded, kept_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(instrument_id, tip) DO NOTHING",
                    params![
                        f.chain.id().as_bytes().as_slice(),
                        f.chain.tip_digest().0.to_vec(),
                        f.chain.to_bytes(),
                        to_i64(f.kept_at)
                    ],
                )
                .map_err(backend)?;
            }
            Write::DropForkEvidence(id) => {
                tx.execute("DELETE FROM fork_evidence WHERE instrument_id = ?1", params![id.as_bytes().as_slice()])
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    fn write_instrument(tx: &rusqlite::Transaction<'_>, r: &InstrumentRecord, update: bool) -> Result<(), StoreError> {
        let s = r.summary();
        let encoded = r.instrument.to_bytes();
        let values = params![
            s.id.as_bytes().as_slice(),
            s.kind.as_str(),
            r.holder.as_bytes().as_slice(),
            s.holding.as_str(),
            s.label,
            s.amount.as_ref().map(|a| a.currency.clone()),
            s.amount.as_ref().map(|a| to_i64(a.minor)),
            s.event_id,
            to_i64(s.valid_until),
            s.uses_left,
            s.status.as_str(),
            s.sequence,
            r.exam_counter,
            encoded,
            to_i64(r.updated_at),
        ];
        if update {
            let changed = tx
                .execute(
                    "UPDATE instruments SET kind = ?2, holder = ?3, holding = ?4, label = ?5, currency = ?6, amount = ?7,
                     event_id = ?8, valid_until = ?9, uses_left = ?10, status = ?11, sequence = ?12,
                     exam_counter = ?13, encoded = ?14, updated_at = ?15 WHERE id = ?1",
                    values,
                )
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!("instrument {} is not stored", s.id)));
            }
        } else {
            tx.execute(
                "INSERT INTO instruments (id, kind, holder, holding, label, currency, amount, event_id, valid_until,
                 uses_left, status, sequence, exam_counter, encoded, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                values,
            )
            .map_err(backend)?;
        }
        Ok(())
    }
}

fn blob<const N: usize>(row: &Row<'_>, idx: usize, what: &str) -> Result<[u8; N], StoreError> {
    let v: Vec<u8> = row.get(idx).map_err(backend)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| corrupt(what))
}

fn opt_blob<const N: usize>(row: &Row<'_>, idx: usize, what: &str) -> Result<Option<[u8; N]>, StoreError> {
    let v: Option<Vec<u8>> = row.get(idx).map_err(backend)?;
    v.map(|v| <[u8; N]>::try_from(v.as_slice()).map_err(|_| corrupt(what))).transpose()
}

fn amount(row: &Row<'_>, currency: usize, minor: usize) -> Result<Option<Amount>, StoreError> {
    let c: Option<String> = row.get(currency).map_err(backend)?;
    let m: Option<i64> = row.get(minor).map_err(backend)?;
    Ok(match (c, m) {
        (Some(currency), Some(m)) => Some(Amount { currency, minor: u64::try_from(m).map_err(|_| corrupt("amount"))? }),
        _ => None,
    })
}

fn u64_col(row: &Row<'_>, idx: usize) -> Result<u64, StoreError> {
    let v: i64 = row.get(idx).map_err(backend)?;
    u64::try_from(v).map_err(|_| corrupt("negative integer"))
}

fn text(row: &Row<'_>, idx: usize) -> Result<String, StoreError> {
    row.get(idx).map_err(backend)
}

fn read_instrument(row: &Row<'_>) -> Result<InstrumentRecord, StoreError> {
    let encoded: Vec<u8> = row.get(0).map_err(backend)?;
    let instrument = Instrument::from_bytes(&encoded).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(InstrumentRecord {
        instrument,
        holder: PublicKey(blob(row, 1, "holder key")?),
        holding: Holding::parse(&text(row, 2)?).ok_or_else(|| corrupt("holding"))?,
        uses_left: row.get(3).map_err(backend)?,
        status: status_from(&text(row, 4)?)?,
        exam_counter: row.get(5).map_err(backend)?,
        updated_at: u64_col(row, 6)?,
    })
}

fn read_summary(row: &Row<'_>) -> Result<InstrumentSummary, StoreError> {
    Ok(InstrumentSummary {
        id: InstrumentId(blob(row, 0, "instrument id")?),
        kind: Kind::parse(&text(row, 1)?).ok_or_else(|| corrupt("kind"))?,
        label: text(row, 2)?,
        amount: amount(row, 3, 4)?,
        event_id: row.get(5).map_err(backend)?,
        valid_until: u64_col(row, 6)?,
        uses_left: row.get(7).map_err(backend)?,
        status: status_from(&text(row, 8)?)?,
        holding: Holding::parse(&text(row, 9)?).ok_or_else(|| corrupt("holding"))?,
        sequence: row.get(10).map_err(backend)?,
        updated_at: u64_col(row, 11)?,
    })
}

fn read_key(row: &Row<'_>) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        public: PublicKey(blob(row, 0, "public key")?),
        role: KeyRole::parse(&text(row, 1)?).ok_or_else(|| corrupt("key role"))?,
        sealed: row.get(2).map_err(backend)?,
        created_at: u64_col(row, 3)?,
    })
}

fn read_pending(row: &Row<'_>) -> Result<PendingRecord, StoreError> {
    Ok(PendingRecord {
        id: ExchangeId(blob(row, 0, "exchange id")?),
        protocol: text(row, 1)?,
        state: row.get(2).map_err(backend)?,
        updated_at: u64_col(row, 3)?,
    })
}

/// Runs `sql` and maps every row with `read`, surfacing the first error.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(read(row)?);
    }
    Ok(out)
}

const INSTRUMENT_COLUMNS: &str = "encoded, holder, holding, uses_left, status, exam_counter, updated_at";

impl WalletStore for SqliteStore {
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    fn key(&self, public: &PublicKey) -> Result<Option<KeyRecord>, StoreError> {
        Ok(query_all(
            &self.conn,
            "SELECT public, role, sealed, created_at FROM keys WHERE public = ?1",
            params![public.as_bytes().as_slice()],
            read_key,
        )?
        .pop())
    }

    fn keys(&self, role: KeyRole) -> Result<Vec<KeyRecord>, StoreError> {
        query_all(
            &self.conn,
            "SELECT public, role, sealed, created_at FROM keys WHERE role = ?1 ORDER BY created_at, public",
            params![role.as_str()],
            read_key,
        )
    }

    fn instrument(&self, id: &InstrumentId) -> Result<Option<InstrumentRecord>, StoreError> {
        let sql = format!("SELECT {INSTRUMENT_COLUMNS} FROM instruments WHERE id = ?1");
        Ok(query_all(&self.conn, &sql, params![id.as_bytes().as_slice()], read_instrument)?.pop())
    }

    fn instruments(&self, filter: InstrumentFilter) -> Result<Vec<InstrumentSummary>, StoreError> {
        query_all(
            &self.conn,
            LIST_INSTRUMENTS,
            params![filter.kind.map(Kind::as_str), filter.holding.map(Holding::as_str)],
            read_summary,
        )
    }

    fn pending(&self, id: &ExchangeId) -> Result<Option<PendingRecord>, StoreError> {
        Ok(query_all(
            &self.conn,
            "SELECT id, protocol, state, updated_at FROM pending WHERE id = ?1",
            params![id.as_bytes().as_slice()],
            read_pending,
        )?
        .pop())
    }

    fn all_pending(&self) -> Result<Vec<PendingRecord>, StoreError> {
        query_all(
            &self.conn,
            "SELECT id, protocol, state, updated_at FROM pending ORDER BY updated_at, id",
            [],
            read_pending,
        )
    }

    fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        query_all(
            &self.conn,
            "SELECT seq, time, direction, kind, instrument_id, currency, amount, counterparty, exchange, memo
             FROM history ORDER BY seq DESC LIMIT ?1",
            params![i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok(HistoryEntry {
                    seq: u64_col(row, 0)?,
                    time: u64_col(row, 1)?,
                    direction: match text(row, 2)?.as_str() {
                        "in" => Direction::In,
                        "out" => Direction::Out,
                        _ => return Err(corrupt("direction")),
                    },
                    kind: Kind::parse(&text(row, 3)?).ok_or_else(|| corrupt("kind"))?,
                    instrument_id: InstrumentId(blob(row, 4, "instrument id")?),
                    amount: amount(row, 5, 6)?,
                    counterparty: opt_blob(row, 7, "counterparty")?.map(PublicKey),
                    exchange: opt_blob(row, 8, "exchange id")?.map(ExchangeId),
                    memo: text(row, 9)?,
                })
            },
        )
    }

    fn examinations(&self, instrument: Option<&InstrumentId>) -> Result<Vec<ExaminationRecord>, StoreError> {
        query_all(
            &self.conn,
            "SELECT seq, instrument_id, gate, instruction, counter, time, certificate FROM examinations
             WHERE (?1 IS NULL OR instrument_id = ?1) ORDER BY seq",
            params![instrument.map(|i| i.0.to_vec())],
            |row| {
                Ok(ExaminationRecord {
                    seq: u64_col(row, 0)?,
                    instrument_id: InstrumentId(blob(row, 1, "instrument id")?),
                    gate: PublicKey(blob(row, 2, "gate key")?),
                    instruction: text(row, 3)?,
                    counter: row.get(4).map_err(backend)?,
                    time: u64_col(row, 5)?,
                    certificate: row.get(6).map_err(backend)?,
                })
            },
        )
    }

    fn fork_evidence(&self) -> Result<Vec<ForkEvidence>, StoreError> {
        query_all(&self.conn, "SELECT seq, encoded, kept_at FROM fork_evidence ORDER BY seq", params![], |row| {
            let encoded: Vec<u8> = row.get(1).map_err(backend)?;
            Ok(ForkEvidence {
                seq: u64_col(row, 0)?,
                chain: Instrument::from_bytes(&encoded).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                kept_at: u64_col(row, 2)?,
            })
        })
    }

    fn apply(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        for write in batch.0 {
            // Dropping `tx` on error rolls the whole batch back.
            Self::apply_one(&tx, write)?;
        }
        tx.commit().map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_in_memory() {
        super::super::conformance::run_all(|| SqliteStore::in_memory().expect("opens"));
    }

    #[test]
    fn conformance_on_file_with_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wallet.db");
        super::super::conformance::run_reopen(|| SqliteStore::open(&path).expect("opens"), &path);
    }

    #[test]
    fn backup_holds_everything_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(dir.path().join("wallet.db")).expect("opens");
        let record = super::super::conformance::sample_record(1, Kind::Ticket);
        store.apply(WriteBatch(vec![Write::InsertInstrument(record.clone())])).expect("writes");
        let copy = dir.path().join("copy.db");
        store.backup_to(&copy).expect("backs up");
        let restored = SqliteStore::open(&copy).expect("opens copy");
        assert_eq!(restored.instrument(&record.instrument.id()).expect("reads"), Some(record));
        assert!(store.backup_to(&copy).is_err(), "an existing file is never overwritten");
    }

    #[test]
    fn refuses_database_from_newer_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wallet.db");
        drop(SqliteStore::open(&path).expect("creates"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        assert_eq!(
            SqliteStore::open(&path).err(),
            Some(StoreError::TooNew { found: 99, supported: MIGRATIONS.len() as u32 })
        );
    }

    #[test]
    fn listing_reads_the_covering_index_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("wallet.db")).expect("creates");
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {LIST_INSTRUMENTS}"))
            .expect("prepares")
            .query_map(params![Option::<&str>::None, Option::<&str>::None], |r| r.get::<_, String>(3))
            .expect("plans")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(plan, vec!["SCAN instruments USING COVERING INDEX instruments_list".to_string()], "{plan:?}");
    }

    #[test]
    fn opens_version_one_database_written_earlier() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wallet.db");
        {
            // What an earlier build left: schema v1 applied by hand, one meta row.
            let conn = Connection::open(&path).expect("raw open");
            conn.execute_batch(MIGRATIONS[0]).expect("v1 schema");
            conn.pragma_update(None, "user_version", 1).expect("version");
            conn.execute("INSERT INTO meta (key, value) VALUES ('salt', x'00')", []).expect("row");
        }
        let store = SqliteStore::open(&path).expect("opens");
        assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len() as u32);
        assert_eq!(store.meta("salt").expect("reads"), Some(vec![0]));
    }
}
