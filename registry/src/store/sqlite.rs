//! The SQLite backend: one file, WAL mode, one connection (SQLite has one
//! writer anyway), every method one `BEGIN IMMEDIATE` transaction so that
//! several registry processes sharing the file serialise on the database.

use super::logic::{self, ChainTx, Tx};
use super::{
    BagSettled, ChainOutcome, ChainUpdate, DoubleSaleRecord, EquivocationOutcome, EventRow, ExaminationReport,
    ExaminationRow, FormerHolder, GiftRow, InstrumentRow, LedgerEntry, LinkRecord, ModificationRow, MoneyTotals,
    NoteExchange, Notice, Party, ProofKind, ProofRecord, RegistryStore, SaleRefund, Settlement, StoreError,
    StoreResult, StoredPrefix, digest_from, id_from, key_from, kind_from, replayed_bag, role_from, status_from,
    status_str, to_i64, to_u32, to_u64,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use std::path::Path;
use std::sync::Mutex;
use tessera_core::verify::VerifiedLink;
use tessera_core::{Amount, Digest, ExchangeId, InstrumentId, PublicKey, Status, Timestamp};

/// Schema migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_events.sql"),
    include_str!("../../migrations/sqlite/0003_gifts.sql"),
    include_str!("../../migrations/sqlite/0004_bags.sql"),
    include_str!("../../migrations/sqlite/0005_modifications.sql"),
    include_str!("../../migrations/sqlite/0006_reported_examinations.sql"),
    include_str!("../../migrations/sqlite/0007_sales.sql"),
    include_str!("../../migrations/sqlite/0008_bag_digest.sql"),
    include_str!("../../migrations/sqlite/0009_used_after_transfer.sql"),
    include_str!("../../migrations/sqlite/0010_former_holders_from_endorsements.sql"),
];

const TABLES: &[&str] = &[
    "instruments",
    "endorsements",
    "equivocations",
    "flagged",
    "denied",
    "counters",
    "parties",
    "accounts",
    "money",
    "ledger",
    "notices",
    "events",
    "gifts",
    "bags",
    "examinations",
    "modifications",
    "reported_examinations",
    "sale_refunds",
    "double_sales",
    "used_after_transfer",
];

/// The registry on one SQLite file.
#[derive(Debug)]
pub struct SqliteRegistry {
    conn: Mutex<Connection>,
    /// A second, read-only connection to the same file for reads that
    /// must not wait for the writer (WAL lets readers run beside it):
    /// the ingest pipeline reads stored prefixes while a batch commits.
    /// `None` in memory, where a second connection would be another
    /// database.
    reader: Option<Mutex<Connection>>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_check_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl SqliteRegistry {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let mut store = Self::init(Connection::open(path.as_ref()).map_err(backend)?)?;
        let reader = Connection::open_with_flags(path.as_ref(), OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
        reader.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
        store.reader = Some(Mutex::new(reader));
        Ok(store)
    }

    /// A database in memory, for tests and the demo.
    pub fn in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(mut conn: Connection) -> StoreResult<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
        let supported = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
        if version > supported {
            return Err(StoreError::TooNew { found: version, supported });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(backend)?;
            tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(i64::MAX)).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Self { conn: Mutex::new(conn), reader: None })
    }

    /// The schema version.
    pub fn schema_version(&self) -> StoreResult<u32> {
        self.with(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        // A poisoned mutex only means another thread panicked mid-call; the
        // connection itself rolled back its transaction on drop.
        let mut guard = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    fn write<T>(&self, f: impl FnOnce(&mut SqliteTx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let mut wrapped = SqliteTx { tx };
            let out = f(&mut wrapped)?;
            wrapped.tx.commit().map_err(backend)?;
            Ok(out)
        })
    }
}

impl SqliteRegistry {
    fn events_where(&self, event_id: Option<&str>) -> StoreResult<Vec<EventRow>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT event_id, organiser, title, zones, valid_from, valid_until, currency, price_minor, \
                     transferable, uses, created_at FROM events WHERE ?1 IS NULL OR event_id = ?1 ORDER BY event_id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![event_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, bool>(8)?,
                        r.get::<_, i64>(9)?,
                        r.get::<_, i64>(10)?,
                    ))
                })
                .map_err(backend)?;
            rows.map(|r| {
                let (event_id, organiser, title, zones, from, until, currency, price, transferable, uses, created) =
                    r.map_err(backend)?;
                Ok(EventRow {
                    event_id,
                    organiser: key_from(&organiser)?,
                    title,
                    zones: zones.split('\n').filter(|z| !z.is_empty()).map(str::to_owned).collect(),
                    valid_from: to_u64(from)?,
                    valid_until: to_u64(until)?,
                    price: Amount { currency, minor: to_u64(price)? },
                    transferable,
                    uses: u16::try_from(uses).map_err(|_| StoreError::Corrupt("uses".into()))?,
                    created_at: to_u64(created)?,
                })
            })
            .collect()
        })
    }
}

impl SqliteRegistry {
    fn gifts_where(&self, condition: &str, value: &[u8]) -> StoreResult<Vec<GiftRow>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT gift_id, instrument, sender, recipient, return_holder, state, settled_to, created_at FROM \
                     gifts WHERE {condition} ORDER BY created_at, gift_id"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![value], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<Vec<u8>>>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })
                .map_err(backend)?;
            rows.map(|r| {
                let (id, inst, sender, recipient, ret, state, settled, created) = r.map_err(backend)?;
                Ok(GiftRow {
                    gift_id: id.try_into().map_err(|_| StoreError::Corrupt("gift id".into()))?,
                    instrument: id_from(&inst)?,
                    sender: key_from(&sender)?,
                    recipient: key_from(&recipient)?,
                    return_holder: key_from(&ret)?,
                    state,
                    settled_to: settled.as_deref().map(key_from).transpose()?,
                    created_at: to_u64(created)?,
                })
            })
            .collect()
        })
    }
}

struct SqliteTx<'c> {
    tx: Transaction<'c>,
}

const INSTRUMENT_COLUMNS: &str = "id, kind, issuer, genesis, holder, holder_since, sequence, tip, status, uses_left, \
                                  currency, value_minor, account, updated_at";

fn instrument_from(r: &Row<'_>) -> rusqlite::Result<StoreResult<InstrumentRow>> {
    let id: Vec<u8> = r.get(0)?;
    let kind: String = r.get(1)?;
    let issuer: Vec<u8> = r.get(2)?;
    let genesis: Vec<u8> = r.get(3)?;
    let holder: Vec<u8> = r.get(4)?;
    let holder_since: i64 = r.get(5)?;
    let sequence: i64 = r.get(6)?;
    let tip: Vec<u8> = r.get(7)?;
    let status: String = r.get(8)?;
    let uses_left: i64 = r.get(9)?;
    let currency: Option<String> = r.get(10)?;
    let value_minor: Option<i64> = r.get(11)?;
    let account: Option<Vec<u8>> = r.get(12)?;
    let updated_at: i64 = r.get(13)?;
    Ok((|| {
        Ok(InstrumentRow {
            id: id_from(&id)?,
            kind: kind_from(&kind)?,
            issuer: key_from(&issuer)?,
            genesis,
            holder: key_from(&holder)?,
            holder_since: to_u32(holder_since)?,
            sequence: to_u32(sequence)?,
            tip: digest_from(&tip)?,
            status: status_from(&status)?,
            uses_left: u16::try_from(uses_left).map_err(|_| StoreError::Corrupt("uses left".into()))?,
            value: match (currency, value_minor) {
                (Some(c), Some(v)) => Some(Amount { currency: c, minor: to_u64(v)? }),
                _ => None,
            },
            account: account.as_deref().map(key_from).transpose()?,
            updated_at: to_u64(updated_at)?,
        })
    })())
}

fn link_from(r: &Row<'_>) -> rusqlite::Result<StoreResult<LinkRecord>> {
    let instrument: Vec<u8> = r.get(0)?;
    let sequence: i64 = r.get(1)?;
    let digest: Vec<u8> = r.get(2)?;
    let previous: Vec<u8> = r.get(3)?;
    let signer: Vec<u8> = r.get(4)?;
    let new_holder: Vec<u8> = r.get(5)?;
    let bytes: Vec<u8> = r.get(6)?;
    Ok((|| {
        Ok(LinkRecord {
            instrument: id_from(&instrument)?,
            sequence: to_u32(sequence)?,
            digest: digest_from(&digest)?,
            previous: digest_from(&previous)?,
            signer: key_from(&signer)?,
            new_holder: key_from(&new_holder)?,
            bytes,
        })
    })())
}

fn insert_instrument_in(conn: &Connection, row: &InstrumentRow) -> StoreResult<bool> {
    let n = conn
        .execute(
            &format!(
                "INSERT INTO instruments ({INSTRUMENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13, ?14) ON CONFLICT (id) DO NOTHING"
            ),
            params![
                row.id.as_bytes(),
                row.kind.as_str(),
                row.issuer.as_bytes(),
                row.genesis,
                row.holder.as_bytes(),
                row.holder_since,
                row.sequence,
                row.tip.as_bytes(),
                status_str(row.status),
                row.uses_left,
                row.value.as_ref().map(|a| a.currency.clone()),
                row.value.as_ref().map(|a| to_i64(a.minor)).transpose()?,
                row.account.as_ref().map(|k| k.as_bytes().to_vec()),
                to_i64(row.updated_at)?,
            ],
        )
        .map_err(backend)?;
    Ok(n == 1)
}

fn balance_in(conn: &Connection, account: &PublicKey, currency: &str) -> StoreResult<u64> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT balance FROM accounts WHERE account = ?1 AND currency = ?2",
            params![account.as_bytes(), currency],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    to_u64(v.unwrap_or(0))
}

fn next_counter(conn: &Connection, name: &str) -> StoreResult<u64> {
    let v: i64 = conn
        .query_row("UPDATE counters SET value = value + 1 WHERE name = ?1 RETURNING value", params![name], |r| r.get(0))
        .map_err(backend)?;
    to_u64(v)
}

fn counter(conn: &Connection, name: &str) -> StoreResult<u64> {
    let v: i64 =
        conn.query_row("SELECT value FROM counters WHERE name = ?1", params![name], |r| r.get(0)).map_err(backend)?;
    to_u64(v)
}

fn deny_in(conn: &Connection, id: &InstrumentId, reason: &str, now: Timestamp) -> StoreResult<(u64, bool)> {
    let existing: Option<i64> = conn
        .query_row("SELECT version FROM denied WHERE instrument = ?1", params![id.as_bytes()], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if let Some(v) = existing {
        return Ok((to_u64(v)?, false));
    }
    let version = next_counter(conn, "deny")?;
    conn.execute(
        "INSERT INTO denied (instrument, version, reason, denied_at) VALUES (?1, ?2, ?3, ?4)",
        params![id.as_bytes(), to_i64(version)?, reason, to_i64(now)?],
    )
    .map_err(backend)?;
    Ok((version, true))
}

/// An admission's state change on the registered list: uses left only go
/// down, so applying one twice (bag and wallet report) counts it once.
fn apply_admission(conn: &Connection, r: &ExaminationRow, now: Timestamp) -> StoreResult<()> {
    conn.execute(
        "UPDATE instruments SET uses_left = MIN(uses_left, ?2), status = CASE WHEN ?3 = 'active' THEN status ELSE ?3 \
         END, updated_at = ?4 WHERE id = ?1",
        params![r.instrument.as_bytes(), r.uses_left, status_str(r.status), to_i64(now)?],
    )
    .map_err(backend)?;
    Ok(())
}

/// Flags a key (the first reason stands).
fn flag_in(conn: &Connection, key: &PublicKey, reason: &str, now: Timestamp) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO flagged (key, reason, flagged_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
        params![key.as_bytes(), reason, to_i64(now)?],
    )
    .map_err(backend)?;
    Ok(())
}

fn push_notice_in(conn: &Connection, n: &Notice) -> StoreResult<u64> {
    let id: i64 = conn
        .query_row(
            "INSERT INTO notices (recipient, kind, instrument, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             RETURNING id",
            params![
                n.recipient.as_bytes(),
                n.kind,
                n.instrument.as_ref().map(|i| i.as_bytes().to_vec()),
                n.payload,
                to_i64(n.created_at)?
            ],
            |r| r.get(0),
        )
        .map_err(backend)?;
    to_u64(id)
}

impl ChainTx for SqliteTx<'_> {
    fn lock_instrument(&mut self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        self.tx
            .prepare_cached(&format!("SELECT {INSTRUMENT_COLUMNS} FROM instruments WHERE id = ?1"))
            .map_err(backend)?
            .query_row(params![id.as_bytes()], instrument_from)
            .optional()
            .map_err(backend)?
            .transpose()
    }

    fn link_at(&mut self, id: &InstrumentId, sequence: u32) -> StoreResult<Option<LinkRecord>> {
        self.tx
            .prepare_cached(
                "SELECT instrument, sequence, digest, previous, signer, new_holder, bytes FROM endorsements WHERE \
                 instrument = ?1 AND sequence = ?2",
            )
            .map_err(backend)?
            .query_row(params![id.as_bytes(), sequence], link_from)
            .optional()
            .map_err(backend)?
            .transpose()
    }

    fn insert_link(&mut self, l: &LinkRecord, now: Timestamp) -> StoreResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
                 registered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (instrument, sequence) DO NOTHING",
            )
            .map_err(backend)?
            .execute(params![
                l.instrument.as_bytes(),
                l.sequence,
                l.digest.as_bytes(),
                l.previous.as_bytes(),
                l.signer.as_bytes(),
                l.new_holder.as_bytes(),
                l.bytes,
                to_i64(now)?
            ])
            .map_err(backend)?;
        Ok(n == 1)
    }

    fn update_instrument(&mut self, row: &InstrumentRow) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE instruments SET holder = ?2, holder_since = ?3, sequence = ?4, tip = ?5, status = ?6, \
                 uses_left = ?7, updated_at = ?8 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                row.id.as_bytes(),
                row.holder.as_bytes(),
                row.holder_since,
                row.sequence,
                row.tip.as_bytes(),
                status_str(row.status),
                row.uses_left,
                to_i64(row.updated_at)?
            ])
            .map_err(backend)?;
        Ok(())
    }

    fn sale_refunded(&mut self, offer: &ExchangeId) -> StoreResult<bool> {
        self.tx
            .prepare_cached("SELECT 1 FROM sale_refunds WHERE offer_id = ?1")
            .map_err(backend)?
            .exists(params![offer.as_bytes()])
            .map_err(backend)
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_instrument(&mut self, row: &InstrumentRow) -> StoreResult<bool> {
        insert_instrument_in(&self.tx, row)
    }

    fn push_notice(&mut self, notice: &Notice) -> StoreResult<u64> {
        push_notice_in(&self.tx, notice)
    }

    fn insert_ledger(
        &mut self,
        reference: &str,
        account: &PublicKey,
        currency: &str,
        kind: &str,
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let n = self
            .tx
            .execute(
                "INSERT INTO ledger (reference, account, currency, kind, amount, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (reference) DO NOTHING",
                params![reference, account.as_bytes(), currency, kind, amount, to_i64(now)?],
            )
            .map_err(backend)?;
        Ok(n == 1)
    }

    fn spend_note(
        &mut self,
        id: &InstrumentId,
        holder: &PublicKey,
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        let v: Option<i64> = self
            .tx
            .query_row(
                "UPDATE instruments SET status = 'refunded', uses_left = 0, updated_at = ?4 WHERE id = ?1 AND holder \
                 = ?2 AND currency = ?3 AND kind = 'note' AND status = 'active' RETURNING value_minor",
                params![id.as_bytes(), holder.as_bytes(), currency, to_i64(now)?],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        v.map(to_u64).transpose()
    }

    fn retire(&mut self, id: &InstrumentId, holder: &PublicKey, now: Timestamp) -> StoreResult<bool> {
        let n = self
            .tx
            .execute(
                "UPDATE instruments SET status = 'refunded', updated_at = ?3 WHERE id = ?1 AND holder = ?2 AND status \
                 = 'active'",
                params![id.as_bytes(), holder.as_bytes(), to_i64(now)?],
            )
            .map_err(backend)?;
        Ok(n == 1)
    }

    fn adjust_balance(&mut self, account: &PublicKey, currency: &str, delta: i64) -> StoreResult<u64> {
        // Two statements: a CHECK on an upsert would test the inserted row
        // (the bare delta), not the updated balance.
        self.tx
            .execute(
                "INSERT INTO accounts (account, currency, balance) VALUES (?1, ?2, 0) ON CONFLICT DO NOTHING",
                params![account.as_bytes(), currency],
            )
            .map_err(backend)?;
        let result = self.tx.query_row(
            "UPDATE accounts SET balance = balance + ?3 WHERE account = ?1 AND currency = ?2 RETURNING balance",
            params![account.as_bytes(), currency, delta],
            |r| r.get::<_, i64>(0),
        );
        match result {
            Ok(v) => to_u64(v),
            Err(e) if is_check_violation(&e) => Err(StoreError::InsufficientFunds { balance: 0, needed: 0 }),
            Err(e) => Err(backend(e)),
        }
    }

    fn add_totals(
        &mut self,
        currency: &str,
        issued: u64,
        redeemed: u64,
        paid_in: u64,
        paid_out: u64,
    ) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO money (currency, issued, redeemed, paid_in, paid_out) VALUES (?1, ?2, ?3, ?4, ?5) ON \
                 CONFLICT (currency) DO UPDATE SET issued = issued + excluded.issued, redeemed = redeemed + \
                 excluded.redeemed, paid_in = paid_in + excluded.paid_in, paid_out = paid_out + excluded.paid_out",
                params![currency, to_i64(issued)?, to_i64(redeemed)?, to_i64(paid_in)?, to_i64(paid_out)?],
            )
            .map_err(backend)?;
        Ok(())
    }
}

impl RegistryStore for SqliteRegistry {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn insert_instrument(&self, row: &InstrumentRow) -> StoreResult<bool> {
        self.write(|tx| tx.insert_instrument(row))
    }

    fn instrument(&self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {INSTRUMENT_COLUMNS} FROM instruments WHERE id = ?1"),
                params![id.as_bytes()],
                instrument_from,
            )
            .optional()
            .map_err(backend)?
            .transpose()
        })
    }

    fn stored_prefixes(&self, wanted: &[(InstrumentId, u32, u32)]) -> StoreResult<Vec<Option<StoredPrefix>>> {
        let read = |c: &mut Connection| -> StoreResult<Vec<Option<StoredPrefix>>> {
            // One read transaction for the batch, not one per statement.
            let tx = c.transaction().map_err(backend)?;
            let mut head =
                tx.prepare_cached("SELECT genesis, sequence FROM instruments WHERE id = ?1").map_err(backend)?;
            let mut links = tx
                .prepare_cached(
                    "SELECT sequence, digest, signer FROM endorsements WHERE instrument = ?1 AND sequence BETWEEN ?2 \
                     AND ?3 ORDER BY sequence",
                )
                .map_err(backend)?;
            let mut out = Vec::with_capacity(wanted.len());
            for (id, first, last) in wanted {
                let row = head
                    .query_row(params![id.as_bytes()], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
                    .optional()
                    .map_err(backend)?;
                let Some((genesis, registered)) = row else {
                    out.push(None);
                    continue;
                };
                let last = i64::from(*last).min(registered);
                let mut stored = Vec::new();
                // Links only where the upload re-carries registered sequences.
                if i64::from(*first) <= last {
                    let rows = links
                        .query_map(params![id.as_bytes(), first, last], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?))
                        })
                        .map_err(backend)?;
                    for r in rows {
                        let (sequence, digest, signer) = r.map_err(backend)?;
                        stored.push(VerifiedLink {
                            sequence: to_u32(sequence)?,
                            digest: digest_from(&digest)?,
                            signer: key_from(&signer)?,
                        });
                    }
                }
                // One writer at a time: the batch is applied under the
                // write lock, against the rows as they are then.
                out.push(Some(StoredPrefix { genesis, links: stored, seen: None }));
            }
            Ok(out)
        };
        match &self.reader {
            Some(reader) => read(&mut reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
            None => self.with(read),
        }
    }

    fn links(&self, id: &InstrumentId) -> StoreResult<Vec<LinkRecord>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT instrument, sequence, digest, previous, signer, new_holder, bytes FROM endorsements \
                     WHERE instrument = ?1 ORDER BY sequence",
                )
                .map_err(backend)?;
            let rows = stmt.query_map(params![id.as_bytes()], link_from).map_err(backend)?;
            rows.map(|r| r.map_err(backend)?).collect()
        })
    }

    fn former_holders(&self, id: &InstrumentId) -> StoreResult<Vec<FormerHolder>> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT holder, from_sequence, until_sequence, previous_from, recorded_at FROM former_holders \
                     WHERE instrument = ?1 ORDER BY from_sequence DESC",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![id.as_bytes()], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(backend)?;
            rows.map(|rec| {
                let rec = rec.map_err(backend)?;
                Ok(FormerHolder {
                    instrument: *id,
                    holder: key_from(&rec.0)?,
                    from_sequence: to_u32(rec.1)?,
                    until_sequence: to_u32(rec.2)?,
                    previous_from: rec.3.map(to_u32).transpose()?,
                    recorded_at: to_u64(rec.4)?,
                })
            })
            .collect()
        })
    }

    fn apply_chains(&self, updates: &[ChainUpdate], now: Timestamp) -> StoreResult<Vec<ChainOutcome>> {
        self.write(|tx| logic::apply_chains(tx, updates, now))
    }

    fn set_status(
        &self,
        id: &InstrumentId,
        holder: &PublicKey,
        from: Status,
        to: Status,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .tx
                .execute(
                    "UPDATE instruments SET status = ?4, updated_at = ?5 WHERE id = ?1 AND holder = ?2 AND status = \
                     ?3",
                    params![id.as_bytes(), holder.as_bytes(), status_str(from), status_str(to), to_i64(now)?],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn record_proof(
        &self,
        kind: ProofKind,
        record: &ProofRecord,
        deny: bool,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<EquivocationOutcome> {
        self.write(|tx| {
            let n = tx
                .tx
                .execute(
                    &format!(
                        "INSERT INTO {} (instrument, sequence, proof_digest, signer, proof, recorded_at) VALUES (?1, \
                         ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                        kind.table()
                    ),
                    params![
                        record.instrument.as_bytes(),
                        record.sequence,
                        Digest::of(&record.proof).as_bytes(),
                        record.signer.as_bytes(),
                        record.proof,
                        to_i64(now)?
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Ok(EquivocationOutcome { new: false, denied_at_version: None });
            }
            flag_in(&tx.tx, &record.signer, &kind.flag_reason(record), now)?;
            let denied_at_version = if deny {
                let (version, added) = deny_in(&tx.tx, &record.instrument, kind.deny_reason(), now)?;
                added.then_some(version)
            } else {
                None
            };
            for notice in notices {
                push_notice_in(&tx.tx, notice)?;
            }
            Ok(EquivocationOutcome { new: true, denied_at_version })
        })
    }

    fn proofs(&self, kind: ProofKind, id: &InstrumentId) -> StoreResult<Vec<ProofRecord>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT sequence, signer, proof FROM {} WHERE instrument = ?1 ORDER BY sequence, proof_digest",
                    kind.table()
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![id.as_bytes()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?))
                })
                .map_err(backend)?;
            rows.map(|r| {
                let (seq, signer, proof) = r.map_err(backend)?;
                Ok(ProofRecord { instrument: *id, sequence: to_u32(seq)?, signer: key_from(&signer)?, proof })
            })
            .collect()
        })
    }

    fn flagged(&self, key: &PublicKey) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT reason FROM flagged WHERE key = ?1", params![key.as_bytes()], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
    }

    fn deny(&self, id: &InstrumentId, reason: &str, now: Timestamp) -> StoreResult<u64> {
        self.write(|tx| Ok(deny_in(&tx.tx, id, reason, now)?.0))
    }

    fn deny_changes_since(&self, version: u64) -> StoreResult<(u64, Vec<(InstrumentId, u64)>)> {
        self.with(|c| {
            let current = counter(c, "deny")?;
            let mut stmt = c
                .prepare("SELECT instrument, version FROM denied WHERE version > ?1 ORDER BY version")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![to_i64(version)?], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
                .map_err(backend)?;
            let list = rows
                .map(|r| {
                    let (id, v) = r.map_err(backend)?;
                    Ok((id_from(&id)?, to_u64(v)?))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok((current, list))
        })
    }

    fn use_nonce(&self, key: &PublicKey, nonce: &[u8], now: Timestamp, forget_before: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            tx.tx.execute("DELETE FROM nonces WHERE seen_at < ?1", params![to_i64(forget_before)?]).map_err(backend)?;
            let n = tx
                .tx
                .execute(
                    "INSERT INTO nonces (key, nonce, seen_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![key.as_bytes(), nonce, to_i64(now)?],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn put_party(&self, p: &Party) -> StoreResult<u64> {
        self.write(|tx| {
            tx.tx
                .execute(
                    "INSERT INTO parties (key, role, name, not_after) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO \
                     UPDATE SET role = excluded.role, name = excluded.name, not_after = excluded.not_after",
                    params![p.key.as_bytes(), p.role.as_str(), p.name, to_i64(p.not_after)?],
                )
                .map_err(backend)?;
            next_counter(&tx.tx, "trust")
        })
    }

    fn parties(&self) -> StoreResult<Vec<Party>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT key, role, name, not_after FROM parties ORDER BY key").map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
                })
                .map_err(backend)?;
            rows.map(|r| {
                let (key, role, name, not_after) = r.map_err(backend)?;
                Ok(Party { key: key_from(&key)?, role: role_from(&role)?, name, not_after: to_u64(not_after)? })
            })
            .collect()
        })
    }

    fn trust_version(&self) -> StoreResult<u64> {
        self.with(|c| counter(c, "trust"))
    }

    fn top_up(&self, account: &PublicKey, amount: &Amount, reference: &str, now: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            let minor = to_i64(amount.minor)?;
            if !tx.insert_ledger(reference, account, &amount.currency, "top-up", minor, now)? {
                return Ok(false);
            }
            tx.adjust_balance(account, &amount.currency, minor)?;
            tx.add_totals(&amount.currency, 0, 0, amount.minor, 0)?;
            Ok(true)
        })
    }

    fn exchange_notes(&self, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64> {
        let before = self.balance(&exchange.account, &exchange.currency)?;
        self.write(|tx| logic::exchange_notes(tx, exchange, now, before))
    }

    fn balance(&self, account: &PublicKey, currency: &str) -> StoreResult<u64> {
        self.with(|c| balance_in(c, account, currency))
    }

    fn ledger_entry(&self, reference: &str) -> StoreResult<Option<LedgerEntry>> {
        self.with(|c| {
            let row: Option<(Vec<u8>, String, i64)> = c
                .query_row(
                    "SELECT account, currency, amount FROM ledger WHERE reference = ?1",
                    params![reference],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(account, currency, amount)| Ok(LedgerEntry { account: key_from(&account)?, currency, amount }))
                .transpose()
        })
    }

    fn money_totals(&self, currency: &str) -> StoreResult<MoneyTotals> {
        self.with(|c| {
            let row: Option<(i64, i64, i64, i64)> = c
                .query_row(
                    "SELECT issued, redeemed, paid_in, paid_out FROM money WHERE currency = ?1",
                    params![currency],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(backend)?;
            let (issued, redeemed, paid_in, paid_out) = row.unwrap_or((0, 0, 0, 0));
            let active: i64 = c
                .query_row(
                    "SELECT COALESCE(SUM(value_minor), 0) FROM instruments WHERE kind = 'note' AND currency = ?1 AND \
                     status = 'active'",
                    params![currency],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let balances: i64 = c
                .query_row(
                    "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE currency = ?1",
                    params![currency],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(MoneyTotals {
                issued: to_u64(issued)?,
                redeemed: to_u64(redeemed)?,
                paid_in: to_u64(paid_in)?,
                paid_out: to_u64(paid_out)?,
                active_notes: to_u64(active)?,
                balances: to_u64(balances)?,
            })
        })
    }

    fn put_event(&self, e: &EventRow) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .tx
                .execute(
                    "INSERT INTO events (event_id, organiser, title, zones, valid_from, valid_until, currency, \
                     price_minor, transferable, uses, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                     ?11) ON CONFLICT (event_id) DO NOTHING",
                    params![
                        e.event_id,
                        e.organiser.as_bytes(),
                        e.title,
                        e.zones.join("\n"),
                        to_i64(e.valid_from)?,
                        to_i64(e.valid_until)?,
                        e.price.currency,
                        to_i64(e.price.minor)?,
                        e.transferable,
                        e.uses,
                        to_i64(e.created_at)?
                    ],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn event(&self, event_id: &str) -> StoreResult<Option<EventRow>> {
        Ok(self.events_where(Some(event_id))?.into_iter().next())
    }

    fn events(&self) -> StoreResult<Vec<EventRow>> {
        self.events_where(None)
    }

    fn put_gift(&self, g: &GiftRow, notice: &Notice) -> StoreResult<()> {
        self.write(|tx| {
            tx.tx
                .execute(
                    "INSERT INTO gifts (gift_id, instrument, sender, recipient, return_holder, state, settled_to, \
                     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        g.gift_id.as_slice(),
                        g.instrument.as_bytes(),
                        g.sender.as_bytes(),
                        g.recipient.as_bytes(),
                        g.return_holder.as_bytes(),
                        g.state,
                        g.settled_to.map(|k| k.0.to_vec()),
                        to_i64(g.created_at)?
                    ],
                )
                .map_err(backend)?;
            push_notice_in(&tx.tx, notice)?;
            Ok(())
        })
    }

    fn gift(&self, gift_id: &[u8; 16]) -> StoreResult<Option<GiftRow>> {
        Ok(self.gifts_where("gift_id = ?1", gift_id.as_slice())?.into_iter().next())
    }

    fn pending_gifts(&self, recipient: &PublicKey) -> StoreResult<Vec<GiftRow>> {
        self.gifts_where("recipient = ?1 AND state = 'pending'", recipient.as_bytes().as_slice())
    }

    fn settle_gift(&self, gift_id: &[u8; 16], state: &str, holder: &PublicKey) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .tx
                .execute(
                    "UPDATE gifts SET state = ?2, settled_to = ?3 WHERE gift_id = ?1 AND state = 'pending'",
                    params![gift_id.as_slice(), state, holder.as_bytes()],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn settle_bag(
        &self,
        gate: &PublicKey,
        bag_number: u64,
        digest: &Digest,
        records: &[ExaminationRow],
        now: Timestamp,
    ) -> StoreResult<BagSettled> {
        self.write(|tx| {
            let admitted = records.iter().filter(|r| r.admitted).count();
            let n = tx
                .tx
                .execute(
                    "INSERT INTO bags (gate, bag_number, entries, admitted, settled_at, digest) VALUES (?1, ?2, ?3, \
                     ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    params![
                        gate.as_bytes(),
                        to_i64(bag_number)?,
                        records.len() as i64,
                        admitted as i64,
                        to_i64(now)?,
                        digest.as_bytes()
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                let (entries, admitted, stored): (i64, i64, Option<Vec<u8>>) = tx
                    .tx
                    .query_row(
                        "SELECT entries, admitted, digest FROM bags WHERE gate = ?1 AND bag_number = ?2",
                        params![gate.as_bytes(), to_i64(bag_number)?],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(backend)?;
                return replayed_bag(gate, bag_number, digest, entries, admitted, stored.as_deref());
            }
            for r in records {
                let n = tx
                    .tx
                    .execute(
                        "INSERT INTO examinations (certificate, gate, bag_number, instrument, admitted, uses_left, \
                         status, examined_at, answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                        params![
                            r.certificate.as_bytes(),
                            gate.as_bytes(),
                            to_i64(bag_number)?,
                            r.instrument.as_bytes(),
                            r.admitted,
                            r.uses_left,
                            status_str(r.status),
                            to_i64(r.examined_at)?,
                            r.answer
                        ],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::AlreadySettled(r.certificate));
                }
                if r.admitted {
                    apply_admission(&tx.tx, r, now)?;
                }
            }
            let settlement =
                Settlement { bags: 1, admitted: admitted as u64, refused: (records.len() - admitted) as u64 };
            Ok(BagSettled { settlement, replayed: false })
        })
    }

    fn admitted_answers(&self, ids: &[InstrumentId]) -> StoreResult<Vec<(InstrumentId, Vec<u8>)>> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT answer FROM examinations WHERE instrument = ?1 AND answer IS NOT NULL ORDER BY examined_at, \
                     certificate",
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for id in ids {
                for answer in stmt.query_map(params![id.as_bytes()], |r| r.get::<_, Vec<u8>>(0)).map_err(backend)? {
                    out.push((*id, answer.map_err(backend)?));
                }
            }
            Ok(out)
        })
    }

    fn settlement(&self, gate: &PublicKey) -> StoreResult<Settlement> {
        self.with(|c| {
            let (bags, entries, admitted): (i64, i64, i64) = c
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(entries), 0), COALESCE(SUM(admitted), 0) FROM bags WHERE gate = ?1",
                    params![gate.as_bytes()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(backend)?;
            Ok(Settlement { bags: to_u64(bags)?, admitted: to_u64(admitted)?, refused: to_u64(entries - admitted)? })
        })
    }

    fn report_examination(&self, report: &ExaminationReport, now: Timestamp) -> StoreResult<(bool, InstrumentRow)> {
        self.write(|tx| {
            let r = &report.record;
            if tx.lock_instrument(&r.instrument)?.is_none() {
                return Err(StoreError::UnknownInstrument(r.instrument));
            }
            let n = tx
                .tx
                .execute(
                    "INSERT INTO reported_examinations (certificate, gate, instrument, counter, admitted, uses_left, \
                     status, examined_at, reported_by, reported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT DO NOTHING",
                    params![
                        r.certificate.as_bytes(),
                        report.gate.as_bytes(),
                        r.instrument.as_bytes(),
                        report.counter,
                        r.admitted,
                        r.uses_left,
                        status_str(r.status),
                        to_i64(r.examined_at)?,
                        report.reported_by.as_bytes(),
                        to_i64(now)?
                    ],
                )
                .map_err(backend)?;
            if n == 1 && r.admitted {
                apply_admission(&tx.tx, r, now)?;
            }
            let row = tx.lock_instrument(&r.instrument)?.ok_or(StoreError::UnknownInstrument(r.instrument))?;
            Ok((n == 1, row))
        })
    }

    fn examination_reports(&self, id: &InstrumentId) -> StoreResult<Vec<ExaminationReport>> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT certificate, gate, counter, admitted, uses_left, status, examined_at, reported_by FROM \
                     reported_examinations WHERE instrument = ?1 ORDER BY counter, certificate",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![id.as_bytes()], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                    ))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (certificate, gate, counter, admitted, uses_left, status, examined_at, reported_by) =
                    row.map_err(backend)?;
                out.push(super::report_from(
                    *id,
                    (&certificate, &gate, counter, admitted, uses_left, &status, examined_at, &reported_by),
                )?);
            }
            Ok(out)
        })
    }

    fn put_modification(&self, m: &ModificationRow, notices: &[Notice]) -> StoreResult<()> {
        self.write(|tx| {
            tx.tx
                .execute(
                    "INSERT INTO modifications (modification_id, instrument, zone, seat, valid_from, valid_until, \
                     state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        m.modification_id.as_slice(),
                        m.instrument.as_bytes(),
                        m.zone,
                        m.seat,
                        to_i64(m.valid_from)?,
                        to_i64(m.valid_until)?,
                        m.state,
                        to_i64(m.created_at)?
                    ],
                )
                .map_err(backend)?;
            for n in notices {
                push_notice_in(&tx.tx, n)?;
            }
            Ok(())
        })
    }

    fn modification(&self, id: &[u8; 16]) -> StoreResult<Option<ModificationRow>> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT instrument, zone, seat, valid_from, valid_until, state, created_at FROM modifications \
                     WHERE modification_id = ?1",
                    params![id.as_slice()],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            row.map(|(inst, zone, seat, from, until, state, created)| {
                Ok(ModificationRow {
                    modification_id: *id,
                    instrument: id_from(&inst)?,
                    zone,
                    seat,
                    valid_from: to_u64(from)?,
                    valid_until: to_u64(until)?,
                    state,
                    created_at: to_u64(created)?,
                })
            })
            .transpose()
        })
    }

    fn settle_modification(&self, id: &[u8; 16], state: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .tx
                .execute(
                    "UPDATE modifications SET state = ?2 WHERE modification_id = ?1 AND state = 'pending'",
                    params![id.as_slice(), state],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn refund_sale(&self, refund: &SaleRefund, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64> {
        let before = self.balance(&exchange.account, &exchange.currency)?;
        self.write(|tx| {
            logic::check_refund(tx, refund)?;
            let n = tx
                .tx
                .execute(
                    "INSERT INTO sale_refunds (offer_id, buyer, reason, refunded_at) VALUES (?1, ?2, ?3, ?4) ON \
                     CONFLICT DO NOTHING",
                    params![refund.offer_id.as_bytes(), refund.buyer.as_bytes(), refund.reason, to_i64(now)?],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::DuplicateReference(format!("sale {}", refund.offer_id.to_hex())));
            }
            logic::exchange_notes(tx, exchange, now, before)
        })
    }

    fn refunded_sales(&self, offers: &[ExchangeId]) -> StoreResult<Vec<ExchangeId>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM sale_refunds WHERE offer_id = ?1").map_err(backend)?;
            let mut out = Vec::new();
            for offer in offers {
                if stmt.exists(params![offer.as_bytes()]).map_err(backend)? {
                    out.push(*offer);
                }
            }
            Ok(out)
        })
    }

    fn record_double_sale(&self, record: &DoubleSaleRecord, notices: &[Notice], now: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .tx
                .execute(
                    "INSERT INTO double_sales (offer_id, item, signer, proof, recorded_at) VALUES (?1, ?2, ?3, ?4, \
                     ?5) ON CONFLICT DO NOTHING",
                    params![
                        record.offer_id.as_bytes(),
                        record.item,
                        record.signer.as_bytes(),
                        record.proof,
                        to_i64(now)?
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Ok(false);
            }
            flag_in(
                &tx.tx,
                &record.signer,
                &format!("committed item {} of offer {} to another exchange", record.item, record.offer_id),
                now,
            )?;
            for notice in notices {
                push_notice_in(&tx.tx, notice)?;
            }
            Ok(true)
        })
    }

    fn double_sales(&self, offer: &ExchangeId) -> StoreResult<Vec<DoubleSaleRecord>> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT item, signer, proof FROM double_sales WHERE offer_id = ?1 ORDER BY item")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![offer.as_bytes()], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (item, signer, proof) = row.map_err(backend)?;
                out.push(DoubleSaleRecord { offer_id: *offer, item, signer: key_from(&signer)?, proof });
            }
            Ok(out)
        })
    }

    fn replace_instrument(
        &self,
        exchange: &NoteExchange,
        replaced: &InstrumentId,
        notices: &[Notice],
        now: Timestamp,
    ) -> StoreResult<()> {
        let before = self.balance(&exchange.account, &exchange.currency)?;
        self.write(|tx| {
            logic::exchange_notes(tx, exchange, now, before)?;
            tx.tx
                .execute(
                    "UPDATE instruments SET status = 'modified', updated_at = ?2 WHERE id = ?1",
                    params![replaced.as_bytes(), to_i64(now)?],
                )
                .map_err(backend)?;
            for notice in notices {
                push_notice_in(&tx.tx, notice)?;
            }
            Ok(())
        })
    }

    fn push_notice(&self, notice: &Notice) -> StoreResult<u64> {
        self.write(|tx| push_notice_in(&tx.tx, notice))
    }

    fn notices(&self, recipients: &[PublicKey], after: u64) -> StoreResult<Vec<Notice>> {
        self.with(|c| {
            let mut out = Vec::new();
            let mut stmt = c
                .prepare(
                    "SELECT id, recipient, kind, instrument, payload, created_at FROM notices WHERE recipient = ?1 \
                     AND id > ?2 ORDER BY id",
                )
                .map_err(backend)?;
            for recipient in recipients {
                let rows = stmt
                    .query_map(params![recipient.as_bytes(), to_i64(after)?], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<Vec<u8>>>(3)?,
                            r.get::<_, Vec<u8>>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })
                    .map_err(backend)?;
                for r in rows {
                    let (id, recipient, kind, instrument, payload, created_at) = r.map_err(backend)?;
                    out.push(Notice {
                        id: to_u64(id)?,
                        recipient: key_from(&recipient)?,
                        kind,
                        instrument: instrument.as_deref().map(id_from).transpose()?,
                        payload,
                        created_at: to_u64(created_at)?,
                    });
                }
            }
            out.sort_by_key(|n| n.id);
            Ok(out)
        })
    }

    fn dump(&self) -> StoreResult<String> {
        self.with(|c| {
            let mut out = String::new();
            for table in TABLES {
                out.push_str(table);
                out.push('\n');
                let mut stmt = c.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).map_err(backend)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query([]).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    for i in 0..columns {
                        let cell = match row.get_ref(i).map_err(backend)? {
                            ValueRef::Null => "NULL".to_owned(),
                            ValueRef::Integer(v) => v.to_string(),
                            ValueRef::Real(v) => v.to_string(),
                            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                            ValueRef::Blob(b) => hex::encode(b),
                        };
                        out.push_str(&cell);
                        out.push('|');
                    }
                    out.push('\n');
                }
            }
            Ok(out)
        })
    }
}
