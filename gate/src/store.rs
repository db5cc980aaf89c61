//! The gate's SQLite store: configuration, the used set and every record.
//! WAL mode, one connection, each decision written in one transaction
//! before its certificate leaves the gate.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use tessera_core::codec::Wire;
use tessera_core::presentation::mesh::{ConflictKind, MeshConflict, UsedEventBody};
use tessera_core::presentation::{Examination, Ledger, Outcome, PriorUse};
use tessera_core::{Instrument, InstrumentId, PublicKey, Signed, Timestamp};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_gate.sql"),
    include_str!("../migrations/0002_mesh.sql"),
    include_str!("../migrations/0003_bags.sql"),
];

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("gate database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Stored bytes do not decode.
    #[error("gate database is corrupt: {0}")]
    Corrupt(String),
    /// Written by a newer build.
    #[error("gate database schema {0} is newer than this build")]
    TooNew(u32),
}

/// One line of the gate's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Record number (also in the certificate).
    pub seq: u64,
    /// When.
    pub time: Timestamp,
    /// The instrument.
    pub instrument_id: InstrumentId,
    /// `admitted` or `refused`.
    pub outcome: String,
    /// Refusal reason.
    pub reason: Option<String>,
    /// What was carried out.
    pub instruction: String,
    /// Uses left after.
    pub uses_left: u16,
    /// The wallet's examination counter.
    pub counter: u32,
    /// The encoded certificate.
    pub certificate: Vec<u8>,
}

/// A bag as the gate keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagRow {
    /// Its single-use number.
    pub number: u64,
    /// The signed bag (`Signed<BagBody>`).
    pub bag: Vec<u8>,
    /// Records in it.
    pub entries: u64,
    /// `packed`, `settled` or `refused`.
    pub state: String,
    /// The registry's reason for a refusal.
    pub reason: Option<String>,
}

/// A record waiting for a bag: `(seq, encoded presentation, encoded certificate)`.
pub type Unbagged = (u64, Vec<u8>, Vec<u8>);

/// The gate database.
#[derive(Debug)]
pub struct GateStore {
    conn: Connection,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl GateStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// A database in memory, for tests and simulations.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError::TooNew(version));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as u32)?;
            tx.commit()?;
        }
        Ok(Self { conn })
    }

    /// A configuration value.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Sets a configuration value.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// The number the next record will get.
    pub fn next_record(&self) -> Result<u64, StoreError> {
        let last: Option<i64> = self.conn.query_row("SELECT max(seq) FROM records", [], |r| r.get(0))?;
        Ok(last.map_or(1, |n| n as u64 + 1))
    }

    /// Writes a decision: the record, and for an admission the used set,
    /// in one transaction. Returns the record number.
    pub fn record(&mut self, e: &Examination, source: &PublicKey, now: Timestamp) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let (outcome, reason) = match e.outcome {
            Outcome::Admitted => ("admitted", None),
            Outcome::Refused(r) => ("refused", Some(r.as_str())),
        };
        tx.execute(
            "INSERT INTO records (seq, time, instrument_id, holder, outcome, reason, instruction, uses_left, counter,
                                  certificate, presentation, proof)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                to_i64(e.certificate.body.record),
                to_i64(now),
                e.instrument_id.0.as_slice(),
                e.holder.0.as_slice(),
                outcome,
                reason,
                e.instruction.as_str(),
                e.uses_left,
                e.presentation.answer.body.counter,
                e.certificate.to_bytes(),
                e.presentation.to_bytes(),
                e.proof.as_ref().map(Wire::to_bytes),
            ],
        )?;
        if e.outcome == Outcome::Admitted {
            let consumed = consumed_by(e);
            upsert_used(&tx, &e.instrument_id, consumed, &e.holder, &e.presentation.instrument, source, now)?;
        }
        tx.commit()?;
        Ok(e.certificate.body.record)
    }

    /// Adds a use seen elsewhere (a gate of the mesh).
    pub fn merge_use(
        &mut self,
        id: &InstrumentId,
        consumed: u16,
        holder: &PublicKey,
        instrument: &Instrument,
        source: &PublicKey,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        upsert_used(&tx, id, consumed, holder, instrument, source, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` records, newest first.
    pub fn records(&self, limit: usize) -> Result<Vec<RecordRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, time, instrument_id, outcome, reason, instruction, uses_left, counter, certificate
             FROM records ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([to_i64(limit as u64)], |r| {
            let id: Vec<u8> = r.get(2)?;
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                id,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, u16>(6)?,
                r.get::<_, u32>(7)?,
                r.get::<_, Vec<u8>>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, time, id, outcome, reason, instruction, uses_left, counter, certificate) = row?;
            let instrument_id =
                InstrumentId::from_slice(&id).ok_or_else(|| StoreError::Corrupt("record instrument id".into()))?;
            out.push(RecordRow {
                seq: seq as u64,
                time: time as u64,
                instrument_id,
                outcome,
                reason,
                instruction,
                uses_left,
                counter,
                certificate,
            });
        }
        Ok(out)
    }

    /// Records not yet packed into a bag, oldest first.
    pub fn unbagged(&self, limit: usize) -> Result<Vec<Unbagged>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, presentation, certificate FROM records WHERE bag IS NULL ORDER BY seq LIMIT ?1")?;
        let rows =
            stmt.query_map([to_i64(limit as u64)], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Packs `seqs` into the next bag: takes the number, marks the records
    /// packed and stores the bag `seal(number)` returns (the signed bag's
    /// bytes), all in one transaction, so a number never names two bags and
    /// a packed record is never lost before its upload.
    pub fn pack_bag<E: From<StoreError>>(
        &mut self,
        seqs: &[u64],
        packed_at: Timestamp,
        seal: impl FnOnce(u64) -> Result<Vec<u8>, E>,
    ) -> Result<(u64, Vec<u8>), E> {
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        let next: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM meta WHERE key = 'next-bag'", [], |r| r.get(0))
            .optional()
            .map_err(StoreError::from)?;
        let number = match next {
            Some(b) => u64::from_be_bytes(b.try_into().map_err(|_| StoreError::Corrupt("next-bag".into()))?),
            None => 1,
        };
        let bag = seal(number)?;
        let write = || -> Result<(), rusqlite::Error> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('next-bag', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(number + 1).to_be_bytes().to_vec()],
            )?;
            for seq in seqs {
                tx.execute("UPDATE records SET bag = ?1 WHERE seq = ?2", params![to_i64(number), to_i64(*seq)])?;
            }
            tx.execute(
                "INSERT INTO bags (number, bag, entries, packed_at, state) VALUES (?1, ?2, ?3, ?4, 'packed')",
                params![to_i64(number), bag, to_i64(seqs.len() as u64), to_i64(packed_at)],
            )?;
            Ok(())
        };
        write().map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok((number, bag))
    }

    /// Bags the registry has not answered yet, oldest first: `(number, bytes)`.
    pub fn packed_bags(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT number, bag FROM bags WHERE state = 'packed' ORDER BY number")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every bag, newest first (without its bytes).
    pub fn bags(&self, limit: usize) -> Result<Vec<BagRow>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT number, entries, state, reason FROM bags ORDER BY number DESC LIMIT ?1")?;
        let rows = stmt.query_map([to_i64(limit as u64)], |r| {
            Ok(BagRow {
                number: r.get::<_, i64>(0)? as u64,
                bag: Vec::new(),
                entries: r.get::<_, i64>(1)? as u64,
                state: r.get(2)?,
                reason: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stored bytes of bag `number`.
    pub fn bag(&self, number: u64) -> Result<Option<BagRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT number, bag, entries, state, reason FROM bags WHERE number = ?1",
                [to_i64(number)],
                |r| {
                    Ok(BagRow {
                        number: r.get::<_, i64>(0)? as u64,
                        bag: r.get(1)?,
                        entries: r.get::<_, i64>(2)? as u64,
                        state: r.get(3)?,
                        reason: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records the registry's answer to bag `number`: settled, or refused
    /// with `reason`. Only a packed bag changes.
    pub fn answer_bag(&mut self, number: u64, refused: Option<&str>, now: Timestamp) -> Result<(), StoreError> {
        let state = if refused.is_some() { "refused" } else { "settled" };
        self.conn.execute(
            "UPDATE bags SET state = ?2, reason = ?3, answered_at = ?4 WHERE number = ?1 AND state = 'packed'",
            params![to_i64(number), state, refused, to_i64(now)],
        )?;
        Ok(())
    }

    /// Whether the mesh event `(gate, record)` is already stored.
    pub fn has_event(&self, gate: &PublicKey, record: u64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM mesh_events WHERE gate = ?1 AND record = ?2",
                params![gate.0.as_slice(), to_i64(record)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Stores this gate's own event (the used set already holds the use).
    pub fn put_own_event(&mut self, event: &Signed<UsedEventBody>, now: Timestamp) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO mesh_events (gate, record, event, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![event.body.gate.0.as_slice(), to_i64(event.body.record), event.to_bytes(), to_i64(now)],
        )?;
        Ok(())
    }

    /// Merges another gate's event: the event, the use, and a conflict if
    /// any, in one transaction.
    pub fn merge_event(
        &mut self,
        event: &Signed<UsedEventBody>,
        conflict: Option<&MeshConflict>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let e = &event.body;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO mesh_events (gate, record, event, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![e.gate.0.as_slice(), to_i64(e.record), event.to_bytes(), to_i64(now)],
        )?;
        upsert_used(&tx, &e.instrument_id, e.uses_consumed, &e.holder, &e.instrument, &e.gate, now)?;
        if let Some(c) = conflict {
            let kind = match c.kind {
                ConflictKind::DoubleEntry => "double-entry",
                ConflictKind::DoubleTransfer => "double-transfer",
            };
            tx.execute(
                "INSERT INTO conflicts (time, instrument_id, kind, remote_gate, remote_record, uses_consumed,
                                        uses_allowed, proof) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    to_i64(now),
                    c.instrument_id.0.as_slice(),
                    kind,
                    c.remote_gate.0.as_slice(),
                    to_i64(c.remote_record),
                    c.uses_consumed,
                    c.uses_allowed,
                    c.proof.as_ref().map(Wire::to_bytes),
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored mesh event, for a catch-up after a partition.
    pub fn events(&self) -> Result<Vec<Signed<UsedEventBody>>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT event FROM mesh_events ORDER BY received_at, gate, record")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(Signed::<UsedEventBody>::from_bytes(&row?).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Conflicts found so far: `(instrument, kind, remote gate, remote record)`.
    pub fn conflicts(&self) -> Result<Vec<(InstrumentId, String, PublicKey, u64)>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT instrument_id, kind, remote_gate, remote_record FROM conflicts ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, gate, record) = row?;
            let id = InstrumentId::from_slice(&id).ok_or_else(|| StoreError::Corrupt("conflict id".into()))?;
            let gate = PublicKey::from_slice(&gate).ok_or_else(|| StoreError::Corrupt("conflict gate".into()))?;
            out.push((id, kind, gate, record as u64));
        }
        Ok(out)
    }

    /// What the used set holds about `id`.
    pub fn prior_use(&self, id: &InstrumentId) -> Result<Option<PriorUse>, StoreError> {
        self.prior_row(id)
    }

    fn prior_row(&self, id: &InstrumentId) -> Result<Option<PriorUse>, StoreError> {
        let row: Option<(u16, Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT uses_consumed, holder, instrument FROM used WHERE instrument_id = ?1",
                [id.0.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((uses_consumed, holder, instrument)) = row else { return Ok(None) };
        let holder = PublicKey::from_slice(&holder).ok_or_else(|| StoreError::Corrupt("used holder".into()))?;
        let instrument = Instrument::from_bytes(&instrument).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(PriorUse { uses_consumed, holder, instrument }))
    }
}

/// Uses an admission consumed; a dispense voids the e-ticket entirely
/// (its paper copy carries on).
pub fn consumed_by(e: &Examination) -> u16 {
    let before = e.presentation.answer.body.change.uses_before;
    if e.instruction == tessera_core::presentation::Instruction::Dispense {
        before
    } else {
        before.saturating_sub(e.uses_left)
    }
}

fn upsert_used(
    tx: &rusqlite::Transaction<'_>,
    id: &InstrumentId,
    consumed: u16,
    holder: &PublicKey,
    instrument: &Instrument,
    source: &PublicKey,
    now: Timestamp,
) -> Result<(), StoreError> {
    // The first chain seen is kept: a later fork is compared against it.
    tx.execute(
        "INSERT INTO used (instrument_id, uses_consumed, holder, instrument, source, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (instrument_id) DO UPDATE SET
             uses_consumed = uses_consumed + excluded.uses_consumed,
             holder = excluded.holder,
             last_seen = excluded.last_seen",
        params![
            id.0.as_slice(),
            consumed,
            holder.0.as_slice(),
            instrument.to_bytes(),
            source.0.as_slice(),
            to_i64(now)
        ],
    )?;
    Ok(())
}

impl Ledger for GateStore {
    fn prior(&self, id: &InstrumentId) -> Result<Option<PriorUse>, String> {
        self.prior_row(id).map_err(|e| e.to_string())
    }
}
