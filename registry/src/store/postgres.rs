//! The PostgreSQL backend, for several registry processes over one database.
//!
//! Each method is one transaction on a pooled connection. The chain logic
//! locks the instrument's row with `SELECT … FOR UPDATE`, or on ingest's
//! batch path writes it only if its `xmin` is still the one read; the
//! endorsement primary key, the balance `CHECK` and conditional updates are
//! what keep two processes from registering two links or spending one note
//! twice.
//! Serialisation failures and deadlocks are retried.

use super::logic::{self, ChainTx, Tx};
use super::{
    BagSettled, ChainOutcome, ChainUpdate, DoubleSaleRecord, EquivocationOutcome, EventRow, ExaminationReport,
    ExaminationRow, FormerHolder, GiftRow, InstrumentRow, LedgerEntry, LinkRecord, ModificationRow, MoneyTotals,
    NoteExchange, Notice, Party, ProofKind, ProofRecord, RegistryStore, SaleRefund, SeenRow, Settlement, StoreError,
    StoreResult, StoredPrefix, digest_from, id_from, key_from, kind_from, replayed_bag, role_from, status_from,
    status_str, to_i64, to_u32, to_u64,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Row, Statement, Transaction};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use tessera_core::verify::VerifiedLink;
use tessera_core::{Amount, Digest, ExchangeId, InstrumentId, PublicKey, Status, Timestamp};

/// Schema migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_events.sql"),
    include_str!("../../migrations/postgres/0003_gifts.sql"),
    include_str!("../../migrations/postgres/0004_bags.sql"),
    include_str!("../../migrations/postgres/0005_modifications.sql"),
    include_str!("../../migrations/postgres/0006_reported_examinations.sql"),
    include_str!("../../migrations/postgres/0007_sales.sql"),
    include_str!("../../migrations/postgres/0008_bag_digest.sql"),
    include_str!("../../migrations/postgres/0009_used_after_transfer.sql"),
    include_str!("../../migrations/postgres/0010_instrument_updates.sql"),
    include_str!("../../migrations/postgres/0011_set_based_references.sql"),
    include_str!("../../migrations/postgres/0012_room_for_every_row.sql"),
    include_str!("../../migrations/postgres/0013_former_holders_from_endorsements.sql"),
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

/// Idle connections kept for reuse.
const POOL_SIZE: usize = 8;
/// Attempts for a transaction that hits a serialisation failure or deadlock.
const ATTEMPTS: usize = 8;

/// The registry on a PostgreSQL database.
pub struct PostgresRegistry {
    config: postgres::Config,
    idle: Mutex<Vec<Connection>>,
}

/// A pooled connection and the statements prepared on it.
///
/// The batch path's statements are prepared once per connection: sent as
/// text each time, every one cost a second round trip (parse and describe)
/// and was parsed and planned again, per batch.
struct Connection {
    client: Client,
    prepared: HashMap<&'static str, Statement>,
}

impl Connection {
    fn new(client: Client) -> Self {
        Self { client, prepared: HashMap::new() }
    }

    /// A transaction that prepares its statements on this connection. (A
    /// migration by another process does not stale them: the server
    /// replans a prepared statement whose tables changed.)
    fn transaction(&mut self) -> Result<PgTx<'_>, postgres::Error> {
        Ok(PgTx { tx: self.client.transaction()?, prepared: &mut self.prepared })
    }

    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        prepare_once(&mut self.client, &mut self.prepared, sql)
    }
}

impl std::ops::Deref for Connection {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// `sql` prepared on the connection behind `client`, from `cache` when it
/// was prepared before. A statement prepared inside a transaction outlives
/// it, rolled back or not: preparing is not transactional.
fn prepare_once(
    client: &mut impl postgres::GenericClient,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql)?;
    cache.insert(sql, statement.clone());
    Ok(statement)
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config may carry a password: show only where it points.
        f.debug_struct("PostgresRegistry").field("dbname", &self.config.get_dbname()).finish_non_exhaustive()
    }
}

fn backend(e: postgres::Error) -> StoreError {
    backend_ref(&e)
}

fn retryable(raw: Option<&postgres::Error>) -> bool {
    matches!(raw.and_then(postgres::Error::code), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// An error inside a transaction, keeping the driver error for the retry test.
struct Failure {
    error: StoreError,
    raw: Option<postgres::Error>,
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self { error, raw: None }
    }
}

impl From<postgres::Error> for Failure {
    fn from(raw: postgres::Error) -> Self {
        Self { error: backend_ref(&raw), raw: Some(raw) }
    }
}

/// The driver's error with what the server or the connection said: its
/// own text is only "db error" or "error connecting to server".
fn backend_ref(e: &postgres::Error) -> StoreError {
    match std::error::Error::source(e) {
        Some(cause) => StoreError::Backend(format!("{e}: {cause}")),
        None => StoreError::Backend(e.to_string()),
    }
}

impl PostgresRegistry {
    /// Connects to `url` (`postgres://user@host:port/db`) and migrates.
    pub fn open(url: &str) -> StoreResult<Self> {
        let config: postgres::Config = url.parse().map_err(backend)?;
        Self::open_config(config, None)
    }

    /// Connects and works inside `schema` (created if missing): tests give
    /// each run its own schema in one database.
    pub fn open_in_schema(url: &str, schema: &str) -> StoreResult<Self> {
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Backend(format!("invalid schema name {schema:?}")));
        }
        let config: postgres::Config = url.parse().map_err(backend)?;
        Self::open_config(config, Some(schema))
    }

    fn open_config(mut config: postgres::Config, schema: Option<&str>) -> StoreResult<Self> {
        if let Some(schema) = schema {
            let mut client = config.connect(NoTls).map_err(backend)?;
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).map_err(backend)?;
            config.options(&format!("-c search_path={schema}"));
        }
        let store = Self { config, idle: Mutex::new(Vec::new()) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> StoreResult<()> {
        self.write(|tx| {
            // One migrator at a time across processes.
            tx.tx.execute("SELECT pg_advisory_xact_lock(7390001)", &[])?;
            tx.tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
            let version: Option<i64> =
                tx.tx.query_opt("SELECT version FROM schema_version", &[])?.map(|r| r.try_get(0)).transpose()?;
            let version = version.unwrap_or(0);
            let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
            if version > supported {
                return Err(StoreError::TooNew {
                    found: u32::try_from(version).unwrap_or(u32::MAX),
                    supported: u32::try_from(supported).unwrap_or(u32::MAX),
                }
                .into());
            }
            for sql in MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(usize::MAX)) {
                tx.tx.batch_execute(sql)?;
            }
            tx.tx.execute("DELETE FROM schema_version", &[])?;
            tx.tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&supported])?;
            Ok(())
        })
    }

    fn client(&self) -> StoreResult<Connection> {
        let pooled = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        match pooled {
            Some(c) if !c.is_closed() => Ok(c),
            _ => self.config.connect(NoTls).map(Connection::new).map_err(backend),
        }
    }

    fn give_back(&self, client: Connection) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < POOL_SIZE {
            idle.push(client);
        }
    }

    fn write<T>(&self, mut f: impl FnMut(&mut PgTx<'_>) -> Result<T, Failure>) -> StoreResult<T> {
        let mut client = self.client()?;
        let mut last = StoreError::Backend("no attempt made".into());
        for _ in 0..ATTEMPTS {
            let attempt = (|| -> Result<T, Failure> {
                let mut tx = client.transaction()?;
                let out = f(&mut tx)?;
                tx.tx.commit()?;
                Ok(out)
            })();
            match attempt {
                Ok(v) => {
                    self.give_back(client);
                    return Ok(v);
                }
                Err(Failure { error, raw }) if retryable(raw.as_ref()) => last = error,
                Err(Failure { error, .. }) => {
                    self.give_back(client);
                    return Err(error);
                }
            }
        }
        self.give_back(client);
        Err(last)
    }

    fn read<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, Failure>) -> StoreResult<T> {
        let mut client = self.client()?;
        let out = f(&mut client).map_err(|f| f.error);
        self.give_back(client);
        out
    }
}

impl PostgresRegistry {
    fn events_where(&self, event_id: Option<&str>) -> StoreResult<Vec<EventRow>> {
        self.read(|c| {
            c.query(
                "SELECT event_id, organiser, title, zones, valid_from, valid_until, currency, price_minor, \
                 transferable, uses, created_at FROM events WHERE $1::TEXT IS NULL OR event_id = $1 ORDER BY event_id",
                &[&event_id],
            )?
            .iter()
            .map(|r| {
                let organiser: Vec<u8> = r.try_get(1)?;
                let zones: String = r.try_get(3)?;
                let transferable: i64 = r.try_get(8)?;
                let uses: i64 = r.try_get(9)?;
                Ok(EventRow {
                    event_id: r.try_get(0)?,
                    organiser: key_from(&organiser)?,
                    title: r.try_get(2)?,
                    zones: zones.split('\n').filter(|z| !z.is_empty()).map(str::to_owned).collect(),
                    valid_from: to_u64(r.try_get(4)?)?,
                    valid_until: to_u64(r.try_get(5)?)?,
                    price: Amount { currency: r.try_get(6)?, minor: to_u64(r.try_get(7)?)? },
                    transferable: transferable != 0,
                    uses: u16::try_from(uses).map_err(|_| StoreError::Corrupt("uses".into()))?,
                    created_at: to_u64(r.try_get(10)?)?,
                })
            })
            .collect()
        })
    }
}

impl PostgresRegistry {
    fn gifts_where(&self, condition: &str, value: &[u8]) -> StoreResult<Vec<GiftRow>> {
        self.read(|c| {
            c.query(
                &format!(
                    "SELECT gift_id, instrument, sender, recipient, return_holder, state, settled_to, created_at FROM \
                     gifts WHERE {condition} ORDER BY created_at, gift_id"
                ),
                &[&value],
            )?
            .iter()
            .map(|r| {
                let id: Vec<u8> = r.try_get(0)?;
                let inst: Vec<u8> = r.try_get(1)?;
                let sender: Vec<u8> = r.try_get(2)?;
                let recipient: Vec<u8> = r.try_get(3)?;
                let ret: Vec<u8> = r.try_get(4)?;
                let settled: Option<Vec<u8>> = r.try_get(6)?;
                Ok(GiftRow {
                    gift_id: id.try_into().map_err(|_| StoreError::Corrupt("gift id".into()))?,
                    instrument: id_from(&inst)?,
                    sender: key_from(&sender)?,
                    recipient: key_from(&recipient)?,
                    return_holder: key_from(&ret)?,
                    state: r.try_get(5)?,
                    settled_to: settled.as_deref().map(key_from).transpose()?,
                    created_at: to_u64(r.try_get(7)?)?,
                })
            })
            .collect()
        })
    }
}

struct PgTx<'c> {
    tx: Transaction<'c>,
    prepared: &'c mut HashMap<&'static str, Statement>,
}

impl<'c> std::ops::Deref for PgTx<'c> {
    type Target = Transaction<'c>;
    fn deref(&self) -> &Transaction<'c> {
        &self.tx
    }
}

impl std::ops::DerefMut for PgTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl PgTx<'_> {
    fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        prepare_once(&mut self.tx, self.prepared, sql)
    }
}

const INSTRUMENT_COLUMNS: &str = "id, kind, issuer, genesis, holder, holder_since, sequence, tip, status, uses_left, \
                                  currency, value_minor, account, updated_at";

/// The version of a row, for [`SeenRow`]: the id of the transaction that
/// wrote it, which every write of the row changes. (Freezing may change it
/// too; that only sends a batch the locking way.)
const ROW_VERSION: &str = "xmin::text::bigint";

/// A row selected as `{INSTRUMENT_COLUMNS}, {ROW_VERSION}`.
fn seen_from(r: &Row) -> Result<SeenRow, Failure> {
    Ok(SeenRow { row: instrument_from(r)?, version: to_u64(r.try_get(14)?)? })
}

fn instrument_from(r: &Row) -> Result<InstrumentRow, Failure> {
    let id: Vec<u8> = r.try_get(0)?;
    let kind: String = r.try_get(1)?;
    let issuer: Vec<u8> = r.try_get(2)?;
    let holder: Vec<u8> = r.try_get(4)?;
    let tip: Vec<u8> = r.try_get(7)?;
    let status: String = r.try_get(8)?;
    let uses_left: i64 = r.try_get(9)?;
    let currency: Option<String> = r.try_get(10)?;
    let value_minor: Option<i64> = r.try_get(11)?;
    let account: Option<Vec<u8>> = r.try_get(12)?;
    Ok(InstrumentRow {
        id: id_from(&id)?,
        kind: kind_from(&kind)?,
        issuer: key_from(&issuer)?,
        genesis: r.try_get(3)?,
        holder: key_from(&holder)?,
        holder_since: to_u32(r.try_get(5)?)?,
        sequence: to_u32(r.try_get(6)?)?,
        tip: digest_from(&tip)?,
        status: status_from(&status)?,
        uses_left: u16::try_from(uses_left).map_err(|_| StoreError::Corrupt("uses left".into()))?,
        value: match (currency, value_minor) {
            (Some(c), Some(v)) => Some(Amount { currency: c, minor: to_u64(v)? }),
            _ => None,
        },
        account: account.as_deref().map(key_from).transpose()?,
        updated_at: to_u64(r.try_get(13)?)?,
    })
}

fn link_from(r: &Row) -> Result<LinkRecord, Failure> {
    let instrument: Vec<u8> = r.try_get(0)?;
    let digest: Vec<u8> = r.try_get(2)?;
    let previous: Vec<u8> = r.try_get(3)?;
    let signer: Vec<u8> = r.try_get(4)?;
    let new_holder: Vec<u8> = r.try_get(5)?;
    Ok(LinkRecord {
        instrument: id_from(&instrument)?,
        sequence: to_u32(r.try_get(1)?)?,
        digest: digest_from(&digest)?,
        previous: digest_from(&previous)?,
        signer: key_from(&signer)?,
        new_holder: key_from(&new_holder)?,
        bytes: r.try_get(6)?,
    })
}

fn insert_instrument_in(tx: &mut Transaction<'_>, row: &InstrumentRow) -> Result<bool, Failure> {
    let n = tx.execute(
        &format!(
            "INSERT INTO instruments ({INSTRUMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14) ON CONFLICT (id) DO NOTHING"
        ),
        &[
            &row.id.as_bytes().as_slice(),
            &row.kind.as_str(),
            &row.issuer.as_bytes().as_slice(),
            &row.genesis,
            &row.holder.as_bytes().as_slice(),
            &i64::from(row.holder_since),
            &i64::from(row.sequence),
            &row.tip.as_bytes().as_slice(),
            &status_str(row.status),
            &i64::from(row.uses_left),
            &row.value.as_ref().map(|a| a.currency.clone()),
            &row.value.as_ref().map(|a| to_i64(a.minor)).transpose()?,
            &row.account.as_ref().map(|k| k.as_bytes().to_vec()),
            &to_i64(row.updated_at)?,
        ],
    )?;
    Ok(n == 1)
}

fn next_counter(tx: &mut Transaction<'_>, name: &str) -> Result<u64, Failure> {
    let v: i64 =
        tx.query_one("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value", &[&name])?.try_get(0)?;
    Ok(to_u64(v)?)
}

fn deny_in(tx: &mut Transaction<'_>, id: &InstrumentId, reason: &str, now: Timestamp) -> Result<(u64, bool), Failure> {
    // Taking the counter row first serialises deny-list writers, so the
    // existence check below cannot race with another process's insert.
    tx.execute("SELECT value FROM counters WHERE name = 'deny' FOR UPDATE", &[])?;
    let existing = tx.query_opt("SELECT version FROM denied WHERE instrument = $1", &[&id.as_bytes().as_slice()])?;
    if let Some(row) = existing {
        return Ok((to_u64(row.try_get(0)?)?, false));
    }
    let version = next_counter(tx, "deny")?;
    tx.execute(
        "INSERT INTO denied (instrument, version, reason, denied_at) VALUES ($1, $2, $3, $4)",
        &[&id.as_bytes().as_slice(), &to_i64(version)?, &reason, &to_i64(now)?],
    )?;
    Ok((version, true))
}

/// An admission's state change on the registered list: uses left only go
/// down, so applying one twice (bag and wallet report) counts it once.
fn apply_admission(tx: &mut Transaction<'_>, r: &ExaminationRow, now: Timestamp) -> Result<(), Failure> {
    tx.execute(
        "UPDATE instruments SET uses_left = LEAST(uses_left, $2), status = CASE WHEN $3 = 'active' THEN status ELSE \
         $3 END, updated_at = $4 WHERE id = $1",
        &[&r.instrument.as_bytes().as_slice(), &i64::from(r.uses_left), &status_str(r.status), &to_i64(now)?],
    )?;
    Ok(())
}

fn push_notice_in(tx: &mut Transaction<'_>, n: &Notice) -> Result<u64, Failure> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO notices (recipient, kind, instrument, payload, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
            &[
                &n.recipient.as_bytes().as_slice(),
                &n.kind,
                &n.instrument.as_ref().map(|i| i.as_bytes().to_vec()),
                &n.payload,
                &to_i64(n.created_at)?,
            ],
        )?
        .try_get(0)?;
    Ok(to_u64(id)?)
}

/// Adapts the shared logic's `StoreResult` to this backend's `Failure`.
struct Shared<'a, 'c>(&'a mut PgTx<'c>, Option<postgres::Error>);

impl Shared<'_, '_> {
    fn run<T>(&mut self, f: impl FnOnce(&mut PgTx<'_>) -> Result<T, Failure>) -> StoreResult<T> {
        match f(self.0) {
            Ok(v) => Ok(v),
            Err(Failure { error, raw }) => {
                if raw.is_some() {
                    self.1 = raw;
                }
                Err(error)
            }
        }
    }
    fn finish<T>(self, r: StoreResult<T>) -> Result<T, Failure> {
        r.map_err(|error| Failure { error, raw: self.1 })
    }
}

impl ChainTx for Shared<'_, '_> {
    fn lock_instrument(&mut self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>> {
        self.run(|tx| {
            tx.query_opt(
                &format!("SELECT {INSTRUMENT_COLUMNS} FROM instruments WHERE id = $1 FOR UPDATE"),
                &[&id.as_bytes().as_slice()],
            )?
            .as_ref()
            .map(instrument_from)
            .transpose()
        })
    }

    fn link_at(&mut self, id: &InstrumentId, sequence: u32) -> StoreResult<Option<LinkRecord>> {
        self.run(|tx| {
            tx.query_opt(
                "SELECT instrument, sequence, digest, previous, signer, new_holder, bytes FROM endorsements WHERE \
                 instrument = $1 AND sequence = $2",
                &[&id.as_bytes().as_slice(), &i64::from(sequence)],
            )?
            .as_ref()
            .map(link_from)
            .transpose()
        })
    }

    fn insert_link(&mut self, l: &LinkRecord, now: Timestamp) -> StoreResult<bool> {
        self.run(|tx| {
            let n = tx.execute(
                "INSERT INTO endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
                 registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (instrument, sequence) DO NOTHING",
                &[
                    &l.instrument.as_bytes().as_slice(),
                    &i64::from(l.sequence),
                    &l.digest.as_bytes().as_slice(),
                    &l.previous.as_bytes().as_slice(),
                    &l.signer.as_bytes().as_slice(),
                    &l.new_holder.as_bytes().as_slice(),
                    &l.bytes,
                    &to_i64(now)?,
                ],
            )?;
            Ok(n == 1)
        })
    }

    fn update_instrument(&mut self, row: &InstrumentRow) -> StoreResult<()> {
        self.run(|tx| {
            tx.execute(
                "UPDATE instruments SET holder = $2, holder_since = $3, sequence = $4, tip = $5, status = $6, \
                 uses_left = $7, updated_at = $8 WHERE id = $1",
                &[
                    &row.id.as_bytes().as_slice(),
                    &row.holder.as_bytes().as_slice(),
                    &i64::from(row.holder_since),
                    &i64::from(row.sequence),
                    &row.tip.as_bytes().as_slice(),
                    &status_str(row.status),
                    &i64::from(row.uses_left),
                    &to_i64(row.updated_at)?,
                ],
            )?;
            Ok(())
        })
    }

    fn sale_refunded(&mut self, offer: &ExchangeId) -> StoreResult<bool> {
        self.run(|tx| {
            Ok(tx
                .query_opt("SELECT 1 FROM sale_refunds WHERE offer_id = $1", &[&offer.as_bytes().as_slice()])?
                .is_some())
        })
    }
}

impl logic::BulkChainTx for Shared<'_, '_> {
    fn lock_instruments(&mut self, ids: &[InstrumentId]) -> StoreResult<Vec<SeenRow>> {
        let ids: Vec<&[u8]> = ids.iter().map(|i| i.as_bytes().as_slice()).collect();
        self.run(|tx| {
            // LockRows sits above the sort: rows are locked in id order, the
            // same order the per-row path and every other process uses.
            static LOCK: LazyLock<String> = LazyLock::new(|| {
                format!("SELECT {INSTRUMENT_COLUMNS}, {ROW_VERSION} FROM instruments WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            });
            let statement = tx.prepared(&LOCK)?;
            tx.query(&statement, &[&ids])?.iter().map(seen_from).collect()
        })
    }

    fn links_at(&mut self, keys: &[(InstrumentId, u32)]) -> StoreResult<Vec<LinkRecord>> {
        let instruments: Vec<&[u8]> = keys.iter().map(|(i, _)| i.as_bytes().as_slice()).collect();
        let sequences: Vec<i64> = keys.iter().map(|(_, s)| i64::from(*s)).collect();
        self.run(|tx| {
            let statement = tx.prepared(
                "SELECT e.instrument, e.sequence, e.digest, e.previous, e.signer, e.new_holder, e.bytes FROM \
                 endorsements e JOIN unnest($1::bytea[], $2::bigint[]) AS k (instrument, sequence) ON \
                 e.instrument = k.instrument AND e.sequence = k.sequence",
            )?;
            tx.query(&statement, &[&instruments, &sequences])?.iter().map(link_from).collect()
        })
    }

    fn insert_links(&mut self, links: &[LinkRecord], now: Timestamp) -> StoreResult<usize> {
        let instruments: Vec<&[u8]> = links.iter().map(|l| l.instrument.as_bytes().as_slice()).collect();
        let sequences: Vec<i64> = links.iter().map(|l| i64::from(l.sequence)).collect();
        let digests: Vec<&[u8]> = links.iter().map(|l| l.digest.as_bytes().as_slice()).collect();
        let previous: Vec<&[u8]> = links.iter().map(|l| l.previous.as_bytes().as_slice()).collect();
        let signers: Vec<&[u8]> = links.iter().map(|l| l.signer.as_bytes().as_slice()).collect();
        let new_holders: Vec<&[u8]> = links.iter().map(|l| l.new_holder.as_bytes().as_slice()).collect();
        let bytes: Vec<&[u8]> = links.iter().map(|l| l.bytes.as_slice()).collect();
        let now = to_i64(now)?;
        self.run(|tx| {
            // No `ON CONFLICT`: under the row locks every key is free, and
            // speculative insertion would cost an index probe and a WAL
            // record per row for a case that only a writer going around
            // the locks can cause. That case refuses the statement, and
            // with it the transaction, which the caller then gives up.
            let statement = tx.prepared(
                "INSERT INTO endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
                 registered_at) SELECT u.*, $8 FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[], \
                 $5::bytea[], $6::bytea[], $7::bytea[]) AS u",
            )?;
            let inserted = tx.execute(
                &statement,
                &[&instruments, &sequences, &digests, &previous, &signers, &new_holders, &bytes, &now],
            );
            match inserted {
                Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(0),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn update_instruments(&mut self, seen: &[SeenRow]) -> StoreResult<usize> {
        let rows = || seen.iter().map(|s| &s.row);
        let ids: Vec<&[u8]> = rows().map(|r| r.id.as_bytes().as_slice()).collect();
        let holders: Vec<&[u8]> = rows().map(|r| r.holder.as_bytes().as_slice()).collect();
        let since: Vec<i64> = rows().map(|r| i64::from(r.holder_since)).collect();
        let sequences: Vec<i64> = rows().map(|r| i64::from(r.sequence)).collect();
        let tips: Vec<&[u8]> = rows().map(|r| r.tip.as_bytes().as_slice()).collect();
        let statuses: Vec<&str> = rows().map(|r| status_str(r.status)).collect();
        let uses: Vec<i64> = rows().map(|r| i64::from(r.uses_left)).collect();
        let updated: Vec<i64> = rows().map(|r| to_i64(r.updated_at)).collect::<StoreResult<_>>()?;
        let versions: Vec<i64> = seen.iter().map(|s| to_i64(s.version)).collect::<StoreResult<_>>()?;
        self.run(|tx| {
            // `i.id = ANY($1)` makes the planner fetch the batch's rows by
            // the primary key: joined on `i.id = u.id` alone it hashed the
            // whole table (a sequential scan per batch, the largest part of
            // the statement at 20,000 instruments, and growing with them).
            // A row written since its version was read does not match: a
            // concurrent writer's row is re-checked once it commits.
            static UPDATE: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "UPDATE instruments i SET holder = u.holder, holder_since = u.holder_since, sequence = \
                     u.sequence, tip = u.tip, status = u.status, uses_left = u.uses_left, updated_at = \
                     u.updated_at FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bytea[], \
                     $6::text[], $7::bigint[], $8::bigint[], $9::bigint[]) AS u (id, holder, holder_since, sequence, \
                     tip, status, uses_left, updated_at, version) WHERE i.id = ANY($1) AND i.id = u.id AND {ROW_VERSION} = u.version"
                )
            });
            let statement = tx.prepared(&UPDATE)?;
            let written = tx.execute(
                &statement,
                &[&ids, &holders, &since, &sequences, &tips, &statuses, &uses, &updated, &versions],
            )?;
            Ok(usize::try_from(written).unwrap_or(usize::MAX))
        })
    }

    fn refunded_sales(&mut self, offers: &[ExchangeId]) -> StoreResult<Vec<ExchangeId>> {
        let ids: Vec<&[u8]> = offers.iter().map(|o| o.as_bytes().as_slice()).collect();
        self.run(|tx| refunded_in(&mut tx.tx, &ids))
    }
}

/// The offers among `ids` whose sale was refunded.
fn refunded_in(c: &mut impl postgres::GenericClient, ids: &[&[u8]]) -> Result<Vec<ExchangeId>, Failure> {
    let mut out = Vec::new();
    for row in c.query("SELECT offer_id FROM sale_refunds WHERE offer_id = ANY($1)", &[&ids])? {
        let id: Vec<u8> = row.try_get(0)?;
        out.push(ExchangeId::from_slice(&id).ok_or_else(|| StoreError::Corrupt("offer id".into()))?);
    }
    Ok(out)
}

impl Tx for Shared<'_, '_> {
    fn insert_instrument(&mut self, row: &InstrumentRow) -> StoreResult<bool> {
        self.run(|tx| insert_instrument_in(tx, row))
    }

    fn push_notice(&mut self, notice: &Notice) -> StoreResult<u64> {
        self.run(|tx| push_notice_in(tx, notice))
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
        self.run(|tx| {
            let n = tx.execute(
                "INSERT INTO ledger (reference, account, currency, kind, amount, at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (reference) DO NOTHING",
                &[&reference, &account.as_bytes().as_slice(), &currency, &kind, &amount, &to_i64(now)?],
            )?;
            Ok(n == 1)
        })
    }

    fn spend_note(
        &mut self,
        id: &InstrumentId,
        holder: &PublicKey,
        currency: &str,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        self.run(|tx| {
            let row = tx.query_opt(
                "UPDATE instruments SET status = 'refunded', uses_left = 0, updated_at = $4 WHERE id = $1 AND holder \
                 = $2 AND currency = $3 AND kind = 'note' AND status = 'active' RETURNING value_minor",
                &[&id.as_bytes().as_slice(), &holder.as_bytes().as_slice(), &currency, &to_i64(now)?],
            )?;
            match row {
                Some(r) => Ok(Some(to_u64(r.try_get(0)?)?)),
                None => Ok(None),
            }
        })
    }

    fn retire(&mut self, id: &InstrumentId, holder: &PublicKey, now: Timestamp) -> StoreResult<bool> {
        self.run(|tx| {
            let n = tx.execute(
                "UPDATE instruments SET status = 'refunded', updated_at = $3 WHERE id = $1 AND holder = $2 AND status \
                 = 'active'",
                &[&id.as_bytes().as_slice(), &holder.as_bytes().as_slice(), &to_i64(now)?],
            )?;
            Ok(n == 1)
        })
    }

    fn adjust_balance(&mut self, account: &PublicKey, currency: &str, delta: i64) -> StoreResult<u64> {
        self.run(|tx| {
            // Two statements: the CHECK must test the updated balance, not
            // an inserted row holding the bare delta.
            tx.execute(
                "INSERT INTO accounts (account, currency, balance) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
                &[&account.as_bytes().as_slice(), &currency],
            )?;
            let result = tx.query_one(
                "UPDATE accounts SET balance = balance + $3 WHERE account = $1 AND currency = $2 RETURNING balance",
                &[&account.as_bytes().as_slice(), &currency, &delta],
            );
            match result {
                Ok(r) => Ok(to_u64(r.try_get(0)?)?),
                Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                    Err(StoreError::InsufficientFunds { balance: 0, needed: 0 }.into())
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn add_totals(
        &mut self,
        currency: &str,
        issued: u64,
        redeemed: u64,
        paid_in: u64,
        paid_out: u64,
    ) -> StoreResult<()> {
        self.run(|tx| {
            tx.execute(
                "INSERT INTO money (currency, issued, redeemed, paid_in, paid_out) VALUES ($1, $2, $3, $4, $5) ON \
                 CONFLICT (currency) DO UPDATE SET issued = money.issued + excluded.issued, redeemed = money.redeemed \
                 + excluded.redeemed, paid_in = money.paid_in + excluded.paid_in, paid_out = money.paid_out + \
                 excluded.paid_out",
                &[&currency, &to_i64(issued)?, &to_i64(redeemed)?, &to_i64(paid_in)?, &to_i64(paid_out)?],
            )?;
            Ok(())
        })
    }
}

impl RegistryStore for PostgresRegistry {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    /// Two: while one transaction waits for its commit to be flushed or
    /// for a round trip, the server runs the other's statements.
    fn writers(&self) -> usize {
        2
    }

    fn insert_instrument(&self, row: &InstrumentRow) -> StoreResult<bool> {
        self.write(|tx| insert_instrument_in(&mut tx.tx, row))
    }

    fn instrument(&self, id: &InstrumentId) -> StoreResult<Option<InstrumentRow>> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {INSTRUMENT_COLUMNS} FROM instruments WHERE id = $1"),
                &[&id.as_bytes().as_slice()],
            )?
            .as_ref()
            .map(instrument_from)
            .transpose()
        })
    }

    fn stored_prefixes(&self, wanted: &[(InstrumentId, u32, u32)]) -> StoreResult<Vec<Option<StoredPrefix>>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let ids: Vec<&[u8]> = wanted.iter().map(|(i, _, _)| i.as_bytes().as_slice()).collect();
            // The whole row: ingest applies the batch against it (`SeenRow`)
            // instead of locking and reading the rows again.
            static ROWS: LazyLock<String> = LazyLock::new(|| {
                format!("SELECT {INSTRUMENT_COLUMNS}, {ROW_VERSION} FROM instruments WHERE id = ANY($1)")
            });
            let rows = c.prepared(&ROWS)?;
            let mut seen_rows = HashMap::new();
            for r in c.query(&rows, &[&ids])? {
                let seen = seen_from(&r)?;
                seen_rows.insert(seen.row.id, seen);
            }
            // Links only where the upload re-carries registered sequences.
            let ranges: Vec<(&[u8], i64, i64)> = wanted
                .iter()
                .filter_map(|(id, first, last)| {
                    let last = (*last).min(seen_rows.get(id)?.row.sequence);
                    (*first <= last).then(|| (id.as_bytes().as_slice(), i64::from(*first), i64::from(last)))
                })
                .collect();
            let mut links: std::collections::HashMap<InstrumentId, Vec<VerifiedLink>> =
                std::collections::HashMap::new();
            if !ranges.is_empty() {
                let ids: Vec<&[u8]> = ranges.iter().map(|r| r.0).collect();
                let lo: Vec<i64> = ranges.iter().map(|r| r.1).collect();
                let hi: Vec<i64> = ranges.iter().map(|r| r.2).collect();
                for r in c.query(
                    "SELECT DISTINCT e.instrument, e.sequence, e.digest, e.signer FROM endorsements e JOIN \
                     unnest($1::bytea[], $2::bigint[], $3::bigint[]) AS w (instrument, lo, hi) ON e.instrument = \
                     w.instrument AND e.sequence BETWEEN w.lo AND w.hi ORDER BY e.instrument, e.sequence",
                    &[&ids, &lo, &hi],
                )? {
                    let id: Vec<u8> = r.try_get(0)?;
                    let digest: Vec<u8> = r.try_get(2)?;
                    let signer: Vec<u8> = r.try_get(3)?;
                    links.entry(id_from(&id)?).or_default().push(VerifiedLink {
                        sequence: to_u32(r.try_get(1)?)?,
                        digest: digest_from(&digest)?,
                        signer: key_from(&signer)?,
                    });
                }
            }
            Ok(wanted
                .iter()
                .map(|(id, first, last)| {
                    let seen = seen_rows.get(id)?;
                    let links = links
                        .get(id)
                        .map(|l| l.iter().filter(|l| (*first..=*last).contains(&l.sequence)).copied().collect())
                        .unwrap_or_default();
                    Some(StoredPrefix { genesis: seen.row.genesis.clone(), links, seen: Some(seen.clone()) })
                })
                .collect())
        })
    }

    fn links(&self, id: &InstrumentId) -> StoreResult<Vec<LinkRecord>> {
        self.read(|c| {
            c.query(
                "SELECT instrument, sequence, digest, previous, signer, new_holder, bytes FROM endorsements WHERE \
                 instrument = $1 ORDER BY sequence",
                &[&id.as_bytes().as_slice()],
            )?
            .iter()
            .map(link_from)
            .collect()
        })
    }

    fn former_holders(&self, id: &InstrumentId) -> StoreResult<Vec<FormerHolder>> {
        self.read(|c| {
            c.query(
                "SELECT holder, from_sequence, until_sequence, previous_from, recorded_at FROM former_holders WHERE \
                 instrument = $1 ORDER BY from_sequence DESC",
                &[&id.as_bytes().as_slice()],
            )?
            .iter()
            .map(|r| {
                let holder: Vec<u8> = r.try_get(0)?;
                let previous: Option<i64> = r.try_get(3)?;
                Ok(FormerHolder {
                    instrument: *id,
                    holder: key_from(&holder)?,
                    from_sequence: to_u32(r.try_get(1)?)?,
                    until_sequence: to_u32(r.try_get(2)?)?,
                    previous_from: previous.map(to_u32).transpose()?,
                    recorded_at: to_u64(r.try_get(4)?)?,
                })
            })
            .collect()
        })
    }

    fn apply_chains(&self, updates: &[ChainUpdate], now: Timestamp) -> StoreResult<Vec<ChainOutcome>> {
        const CONTENDED: &str = "what the batch was decided on changed before it was written";
        // The set-based path: a handful of statements for the whole batch.
        let bulk = |from: logic::Rows| {
            self.write(|tx| {
                let mut shared = Shared(tx, None);
                let r = logic::apply_chains_bulk(&mut shared, updates, now, from);
                match shared.finish(r)? {
                    logic::Bulk::Done(outcomes) => Ok(outcomes),
                    // An error drops the transaction: nothing of it is kept.
                    logic::Bulk::Contended => Err(StoreError::Backend(CONTENDED.into()).into()),
                }
            })
        };
        let contended = |r: &StoreResult<Vec<ChainOutcome>>| matches!(r, Err(StoreError::Backend(m)) if m == CONTENDED);
        let mut applied = bulk(logic::Rows::Seen);
        if contended(&applied) {
            tracing::debug!("rows changed since they were read; applying the batch under the row locks");
            applied = bulk(logic::Rows::Locked);
        }
        if contended(&applied) {
            tracing::warn!("bulk chain update contended; applying step by step");
            applied = self.write(|tx| {
                let mut shared = Shared(tx, None);
                let r = logic::apply_chains(&mut shared, updates, now);
                shared.finish(r)
            });
        }
        applied
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
            let n = tx.tx.execute(
                "UPDATE instruments SET status = $4, updated_at = $5 WHERE id = $1 AND holder = $2 AND status = $3",
                &[
                    &id.as_bytes().as_slice(),
                    &holder.as_bytes().as_slice(),
                    &status_str(from),
                    &status_str(to),
                    &to_i64(now)?,
                ],
            )?;
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
            let n = tx.tx.execute(
                &format!(
                    "INSERT INTO {} (instrument, sequence, proof_digest, signer, proof, recorded_at) VALUES ($1, $2, \
                     $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    kind.table()
                ),
                &[
                    &record.instrument.as_bytes().as_slice(),
                    &i64::from(record.sequence),
                    &Digest::of(&record.proof).as_bytes().as_slice(),
                    &record.signer.as_bytes().as_slice(),
                    &record.proof,
                    &to_i64(now)?,
                ],
            )?;
            if n == 0 {
                return Ok(EquivocationOutcome { new: false, denied_at_version: None });
            }
            tx.tx.execute(
                "INSERT INTO flagged (key, reason, flagged_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                &[&record.signer.as_bytes().as_slice(), &kind.flag_reason(record), &to_i64(now)?],
            )?;
            let denied_at_version = if deny {
                let (version, added) = deny_in(&mut tx.tx, &record.instrument, kind.deny_reason(), now)?;
                added.then_some(version)
            } else {
                None
            };
            for notice in notices {
                push_notice_in(&mut tx.tx, notice)?;
            }
            Ok(EquivocationOutcome { new: true, denied_at_version })
        })
    }

    fn proofs(&self, kind: ProofKind, id: &InstrumentId) -> StoreResult<Vec<ProofRecord>> {
        self.read(|c| {
            c.query(
                &format!(
                    "SELECT sequence, signer, proof FROM {} WHERE instrument = $1 ORDER BY sequence, proof_digest",
                    kind.table()
                ),
                &[&id.as_bytes().as_slice()],
            )?
            .iter()
            .map(|r| {
                let signer: Vec<u8> = r.try_get(1)?;
                Ok(ProofRecord {
                    instrument: *id,
                    sequence: to_u32(r.try_get(0)?)?,
                    signer: key_from(&signer)?,
                    proof: r.try_get(2)?,
                })
            })
            .collect()
        })
    }

    fn flagged(&self, key: &PublicKey) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.query_opt("SELECT reason FROM flagged WHERE key = $1", &[&key.as_bytes().as_slice()])?
                .map(|r| r.try_get(0))
                .transpose()?)
        })
    }

    fn deny(&self, id: &InstrumentId, reason: &str, now: Timestamp) -> StoreResult<u64> {
        self.write(|tx| Ok(deny_in(&mut tx.tx, id, reason, now)?.0))
    }

    fn deny_changes_since(&self, version: u64) -> StoreResult<(u64, Vec<(InstrumentId, u64)>)> {
        self.write(|tx| {
            let current: i64 = tx.tx.query_one("SELECT value FROM counters WHERE name = 'deny'", &[])?.try_get(0)?;
            let list = tx
                .tx
                .query(
                    "SELECT instrument, version FROM denied WHERE version > $1 ORDER BY version",
                    &[&to_i64(version)?],
                )?
                .iter()
                .map(|r| {
                    let id: Vec<u8> = r.try_get(0)?;
                    Ok((id_from(&id)?, to_u64(r.try_get(1)?)?))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            Ok((to_u64(current)?, list))
        })
    }

    fn use_nonce(&self, key: &PublicKey, nonce: &[u8], now: Timestamp, forget_before: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            tx.tx.execute("DELETE FROM nonces WHERE seen_at < $1", &[&to_i64(forget_before)?])?;
            let n = tx.tx.execute(
                "INSERT INTO nonces (key, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&key.as_bytes().as_slice(), &nonce, &to_i64(now)?],
            )?;
            Ok(n == 1)
        })
    }

    fn put_party(&self, p: &Party) -> StoreResult<u64> {
        self.write(|tx| {
            tx.tx.execute(
                "INSERT INTO parties (key, role, name, not_after) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE \
                 SET role = excluded.role, name = excluded.name, not_after = excluded.not_after",
                &[&p.key.as_bytes().as_slice(), &p.role.as_str(), &p.name, &to_i64(p.not_after)?],
            )?;
            next_counter(&mut tx.tx, "trust")
        })
    }

    fn parties(&self) -> StoreResult<Vec<Party>> {
        self.read(|c| {
            c.query("SELECT key, role, name, not_after FROM parties ORDER BY key", &[])?
                .iter()
                .map(|r| {
                    let key: Vec<u8> = r.try_get(0)?;
                    let role: String = r.try_get(1)?;
                    Ok(Party {
                        key: key_from(&key)?,
                        role: role_from(&role)?,
                        name: r.try_get(2)?,
                        not_after: to_u64(r.try_get(3)?)?,
                    })
                })
                .collect()
        })
    }

    fn trust_version(&self) -> StoreResult<u64> {
        self.read(|c| Ok(to_u64(c.query_one("SELECT value FROM counters WHERE name = 'trust'", &[])?.try_get(0)?)?))
    }

    fn top_up(&self, account: &PublicKey, amount: &Amount, reference: &str, now: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            let mut shared = Shared(tx, None);
            let r = (|| {
                let minor = to_i64(amount.minor)?;
                if !shared.insert_ledger(reference, account, &amount.currency, "top-up", minor, now)? {
                    return Ok(false);
                }
                shared.adjust_balance(account, &amount.currency, minor)?;
                shared.add_totals(&amount.currency, 0, 0, amount.minor, 0)?;
                Ok(true)
            })();
            shared.finish(r)
        })
    }

    fn exchange_notes(&self, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64> {
        let before = self.balance(&exchange.account, &exchange.currency)?;
        self.write(|tx| {
            let mut shared = Shared(tx, None);
            let r = logic::exchange_notes(&mut shared, exchange, now, before);
            shared.finish(r)
        })
    }

    fn balance(&self, account: &PublicKey, currency: &str) -> StoreResult<u64> {
        self.read(|c| {
            let v: Option<i64> = c
                .query_opt(
                    "SELECT balance FROM accounts WHERE account = $1 AND currency = $2",
                    &[&account.as_bytes().as_slice(), &currency],
                )?
                .map(|r| r.try_get(0))
                .transpose()?;
            Ok(to_u64(v.unwrap_or(0))?)
        })
    }

    fn ledger_entry(&self, reference: &str) -> StoreResult<Option<LedgerEntry>> {
        self.read(|c| {
            let Some(r) =
                c.query_opt("SELECT account, currency, amount FROM ledger WHERE reference = $1", &[&reference])?
            else {
                return Ok(None);
            };
            let account: &[u8] = r.try_get(0)?;
            Ok(Some(LedgerEntry { account: key_from(account)?, currency: r.try_get(1)?, amount: r.try_get(2)? }))
        })
    }

    fn money_totals(&self, currency: &str) -> StoreResult<MoneyTotals> {
        self.read(|c| {
            let row =
                c.query_opt("SELECT issued, redeemed, paid_in, paid_out FROM money WHERE currency = $1", &[&currency])?;
            let (issued, redeemed, paid_in, paid_out) = match row {
                Some(r) => (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
                None => (0i64, 0i64, 0i64, 0i64),
            };
            let active: i64 = c
                .query_one(
                    "SELECT COALESCE(SUM(value_minor), 0)::BIGINT FROM instruments WHERE kind = 'note' AND currency = \
                     $1 AND status = 'active'",
                    &[&currency],
                )?
                .try_get(0)?;
            let balances: i64 = c
                .query_one("SELECT COALESCE(SUM(balance), 0)::BIGINT FROM accounts WHERE currency = $1", &[&currency])?
                .try_get(0)?;
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
            let n = tx.tx.execute(
                "INSERT INTO events (event_id, organiser, title, zones, valid_from, valid_until, currency, \
                 price_minor, transferable, uses, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (event_id) DO NOTHING",
                &[
                    &e.event_id,
                    &e.organiser.as_bytes().as_slice(),
                    &e.title,
                    &e.zones.join("\n"),
                    &to_i64(e.valid_from)?,
                    &to_i64(e.valid_until)?,
                    &e.price.currency,
                    &to_i64(e.price.minor)?,
                    &i64::from(e.transferable),
                    &i64::from(e.uses),
                    &to_i64(e.created_at)?,
                ],
            )?;
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
            tx.tx.execute(
                "INSERT INTO gifts (gift_id, instrument, sender, recipient, return_holder, state, settled_to, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &g.gift_id.as_slice(),
                    &g.instrument.as_bytes().as_slice(),
                    &g.sender.as_bytes().as_slice(),
                    &g.recipient.as_bytes().as_slice(),
                    &g.return_holder.as_bytes().as_slice(),
                    &g.state,
                    &g.settled_to.map(|k| k.0.to_vec()),
                    &to_i64(g.created_at)?,
                ],
            )?;
            push_notice_in(&mut tx.tx, notice)?;
            Ok(())
        })
    }

    fn gift(&self, gift_id: &[u8; 16]) -> StoreResult<Option<GiftRow>> {
        Ok(self.gifts_where("gift_id = $1", gift_id.as_slice())?.into_iter().next())
    }

    fn pending_gifts(&self, recipient: &PublicKey) -> StoreResult<Vec<GiftRow>> {
        self.gifts_where("recipient = $1 AND state = 'pending'", recipient.as_bytes().as_slice())
    }

    fn settle_gift(&self, gift_id: &[u8; 16], state: &str, holder: &PublicKey) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.tx.execute(
                "UPDATE gifts SET state = $2, settled_to = $3 WHERE gift_id = $1 AND state = 'pending'",
                &[&gift_id.as_slice(), &state, &holder.as_bytes().as_slice()],
            )?;
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
            let admitted = records.iter().filter(|r| r.admitted).count() as i64;
            let n = tx.tx.execute(
                "INSERT INTO bags (gate, bag_number, entries, admitted, settled_at, digest) VALUES ($1, $2, $3, $4, \
                 $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &gate.as_bytes().as_slice(),
                    &to_i64(bag_number)?,
                    &(records.len() as i64),
                    &admitted,
                    &to_i64(now)?,
                    &digest.as_bytes().as_slice(),
                ],
            )?;
            if n == 0 {
                let r = tx.tx.query_one(
                    "SELECT entries, admitted, digest FROM bags WHERE gate = $1 AND bag_number = $2",
                    &[&gate.as_bytes().as_slice(), &to_i64(bag_number)?],
                )?;
                let stored: Option<Vec<u8>> = r.try_get(2)?;
                let (entries, admitted) = (r.try_get(0)?, r.try_get(1)?);
                return Ok(replayed_bag(gate, bag_number, digest, entries, admitted, stored.as_deref())?);
            }
            for r in records {
                let n = tx.tx.execute(
                    "INSERT INTO examinations (certificate, gate, bag_number, instrument, admitted, uses_left, status, \
                     examined_at, answer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    &[
                        &r.certificate.as_bytes().as_slice(),
                        &gate.as_bytes().as_slice(),
                        &to_i64(bag_number)?,
                        &r.instrument.as_bytes().as_slice(),
                        &i64::from(r.admitted),
                        &i64::from(r.uses_left),
                        &status_str(r.status),
                        &to_i64(r.examined_at)?,
                        &r.answer,
                    ],
                )?;
                if n == 0 {
                    return Err(StoreError::AlreadySettled(r.certificate).into());
                }
                if r.admitted {
                    apply_admission(&mut tx.tx, r, now)?;
                }
            }
            let settlement =
                Settlement { bags: 1, admitted: admitted as u64, refused: records.len() as u64 - admitted as u64 };
            Ok(BagSettled { settlement, replayed: false })
        })
    }

    fn admitted_answers(&self, ids: &[InstrumentId]) -> StoreResult<Vec<(InstrumentId, Vec<u8>)>> {
        let wanted: Vec<&[u8]> = ids.iter().map(|i| i.as_bytes().as_slice()).collect();
        self.read(|c| {
            c.query(
                "SELECT instrument, answer FROM examinations WHERE instrument = ANY($1) AND answer IS NOT NULL ORDER BY \
                 instrument, examined_at, certificate",
                &[&wanted],
            )?
            .iter()
            .map(|r| {
                let id: Vec<u8> = r.try_get(0)?;
                Ok((id_from(&id)?, r.try_get(1)?))
            })
            .collect()
        })
    }

    fn settlement(&self, gate: &PublicKey) -> StoreResult<Settlement> {
        self.read(|c| {
            let r = c.query_one(
                "SELECT COUNT(*)::BIGINT, COALESCE(SUM(entries), 0)::BIGINT, COALESCE(SUM(admitted), 0)::BIGINT FROM \
                 bags WHERE gate = $1",
                &[&gate.as_bytes().as_slice()],
            )?;
            let (bags, entries, admitted): (i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            Ok(Settlement { bags: to_u64(bags)?, admitted: to_u64(admitted)?, refused: to_u64(entries - admitted)? })
        })
    }

    fn report_examination(&self, report: &ExaminationReport, now: Timestamp) -> StoreResult<(bool, InstrumentRow)> {
        self.write(|tx| {
            let r = &report.record;
            let id = r.instrument.as_bytes().as_slice();
            let lock = format!("SELECT {INSTRUMENT_COLUMNS} FROM instruments WHERE id = $1 FOR UPDATE");
            if tx.tx.query_opt(&lock, &[&id])?.is_none() {
                return Err(StoreError::UnknownInstrument(r.instrument).into());
            }
            let n = tx.tx.execute(
                "INSERT INTO reported_examinations (certificate, gate, instrument, counter, admitted, uses_left, \
                 status, examined_at, reported_by, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON \
                 CONFLICT DO NOTHING",
                &[
                    &r.certificate.as_bytes().as_slice(),
                    &report.gate.as_bytes().as_slice(),
                    &id,
                    &i64::from(report.counter),
                    &i64::from(r.admitted),
                    &i64::from(r.uses_left),
                    &status_str(r.status),
                    &to_i64(r.examined_at)?,
                    &report.reported_by.as_bytes().as_slice(),
                    &to_i64(now)?,
                ],
            )?;
            if n == 1 && r.admitted {
                apply_admission(&mut tx.tx, r, now)?;
            }
            let row = tx.tx.query_one(&lock, &[&id])?;
            Ok((n == 1, instrument_from(&row)?))
        })
    }

    fn examination_reports(&self, id: &InstrumentId) -> StoreResult<Vec<ExaminationReport>> {
        self.read(|c| {
            let mut out = Vec::new();
            for row in c.query(
                "SELECT certificate, gate, counter, admitted, uses_left, status, examined_at, reported_by FROM \
                 reported_examinations WHERE instrument = $1 ORDER BY counter, certificate",
                &[&id.as_bytes().as_slice()],
            )? {
                let certificate: Vec<u8> = row.try_get(0)?;
                let gate: Vec<u8> = row.try_get(1)?;
                let admitted: i64 = row.try_get(3)?;
                let status: String = row.try_get(5)?;
                let reported_by: Vec<u8> = row.try_get(7)?;
                out.push(super::report_from(
                    *id,
                    (
                        &certificate,
                        &gate,
                        row.try_get(2)?,
                        admitted != 0,
                        row.try_get(4)?,
                        &status,
                        row.try_get(6)?,
                        &reported_by,
                    ),
                )?);
            }
            Ok(out)
        })
    }

    fn put_modification(&self, m: &ModificationRow, notices: &[Notice]) -> StoreResult<()> {
        self.write(|tx| {
            tx.tx.execute(
                "INSERT INTO modifications (modification_id, instrument, zone, seat, valid_from, valid_until, state, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &m.modification_id.as_slice(),
                    &m.instrument.as_bytes().as_slice(),
                    &m.zone,
                    &m.seat,
                    &to_i64(m.valid_from)?,
                    &to_i64(m.valid_until)?,
                    &m.state,
                    &to_i64(m.created_at)?,
                ],
            )?;
            for n in notices {
                push_notice_in(&mut tx.tx, n)?;
            }
            Ok(())
        })
    }

    fn modification(&self, id: &[u8; 16]) -> StoreResult<Option<ModificationRow>> {
        self.read(|c| {
            let Some(r) = c.query_opt(
                "SELECT instrument, zone, seat, valid_from, valid_until, state, created_at FROM modifications WHERE \
                 modification_id = $1",
                &[&id.as_slice()],
            )?
            else {
                return Ok(None);
            };
            let inst: Vec<u8> = r.try_get(0)?;
            Ok(Some(ModificationRow {
                modification_id: *id,
                instrument: id_from(&inst)?,
                zone: r.try_get(1)?,
                seat: r.try_get(2)?,
                valid_from: to_u64(r.try_get(3)?)?,
                valid_until: to_u64(r.try_get(4)?)?,
                state: r.try_get(5)?,
                created_at: to_u64(r.try_get(6)?)?,
            }))
        })
    }

    fn settle_modification(&self, id: &[u8; 16], state: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.tx.execute(
                "UPDATE modifications SET state = $2 WHERE modification_id = $1 AND state = 'pending'",
                &[&id.as_slice(), &state],
            )?;
            Ok(n == 1)
        })
    }

    fn refund_sale(&self, refund: &SaleRefund, exchange: &NoteExchange, now: Timestamp) -> StoreResult<u64> {
        let before = self.balance(&exchange.account, &exchange.currency)?;
        self.write(|tx| {
            let mut shared = Shared(tx, None);
            let checked = logic::check_refund(&mut shared, refund);
            shared.finish(checked)?;
            let n = tx.tx.execute(
                "INSERT INTO sale_refunds (offer_id, buyer, reason, refunded_at) VALUES ($1, $2, $3, $4) ON CONFLICT \
                 DO NOTHING",
                &[
                    &refund.offer_id.as_bytes().as_slice(),
                    &refund.buyer.as_bytes().as_slice(),
                    &refund.reason,
                    &to_i64(now)?,
                ],
            )?;
            if n == 0 {
                return Err(StoreError::DuplicateReference(format!("sale {}", refund.offer_id.to_hex())).into());
            }
            let mut shared = Shared(tx, None);
            let r = logic::exchange_notes(&mut shared, exchange, now, before);
            shared.finish(r)
        })
    }

    fn refunded_sales(&self, offers: &[ExchangeId]) -> StoreResult<Vec<ExchangeId>> {
        let ids: Vec<&[u8]> = offers.iter().map(|o| o.as_bytes().as_slice()).collect();
        self.read(|c| refunded_in(&mut c.client, &ids))
    }

    fn record_double_sale(&self, record: &DoubleSaleRecord, notices: &[Notice], now: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.tx.execute(
                "INSERT INTO double_sales (offer_id, item, signer, proof, recorded_at) VALUES ($1, $2, $3, $4, $5) ON \
                 CONFLICT DO NOTHING",
                &[
                    &record.offer_id.as_bytes().as_slice(),
                    &i64::from(record.item),
                    &record.signer.as_bytes().as_slice(),
                    &record.proof,
                    &to_i64(now)?,
                ],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.tx.execute(
                "INSERT INTO flagged (key, reason, flagged_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                &[
                    &record.signer.as_bytes().as_slice(),
                    &format!("committed item {} of offer {} to another exchange", record.item, record.offer_id),
                    &to_i64(now)?,
                ],
            )?;
            for notice in notices {
                push_notice_in(&mut tx.tx, notice)?;
            }
            Ok(true)
        })
    }

    fn double_sales(&self, offer: &ExchangeId) -> StoreResult<Vec<DoubleSaleRecord>> {
        self.read(|c| {
            let mut out = Vec::new();
            for row in c.query(
                "SELECT item, signer, proof FROM double_sales WHERE offer_id = $1 ORDER BY item",
                &[&offer.as_bytes().as_slice()],
            )? {
                let signer: Vec<u8> = row.try_get(1)?;
                out.push(DoubleSaleRecord {
                    offer_id: *offer,
                    item: to_u32(row.try_get(0)?)?,
                    signer: key_from(&signer)?,
                    proof: row.try_get(2)?,
                });
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
            let mut shared = Shared(tx, None);
            let r = logic::exchange_notes(&mut shared, exchange, now, before);
            shared.finish(r)?;
            tx.tx.execute(
                "UPDATE instruments SET status = 'modified', updated_at = $2 WHERE id = $1",
                &[&replaced.as_bytes().as_slice(), &to_i64(now)?],
            )?;
            for notice in notices {
                push_notice_in(&mut tx.tx, notice)?;
            }
            Ok(())
        })
    }

    fn push_notice(&self, notice: &Notice) -> StoreResult<u64> {
        self.write(|tx| push_notice_in(&mut tx.tx, notice))
    }

    fn notices(&self, recipients: &[PublicKey], after: u64) -> StoreResult<Vec<Notice>> {
        let keys: Vec<Vec<u8>> = recipients.iter().map(|k| k.as_bytes().to_vec()).collect();
        self.read(|c| {
            c.query(
                "SELECT id, recipient, kind, instrument, payload, created_at FROM notices WHERE recipient = ANY($1) AND \
                 id > $2 ORDER BY id",
                &[&keys, &to_i64(after)?],
            )?
            .iter()
            .map(|r| {
                let recipient: Vec<u8> = r.try_get(1)?;
                let instrument: Option<Vec<u8>> = r.try_get(3)?;
                Ok(Notice {
                    id: to_u64(r.try_get(0)?)?,
                    recipient: key_from(&recipient)?,
                    kind: r.try_get(2)?,
                    instrument: instrument.as_deref().map(id_from).transpose()?,
                    payload: r.try_get(4)?,
                    created_at: to_u64(r.try_get(5)?)?,
                })
            })
            .collect()
        })
    }

    fn dump(&self) -> StoreResult<String> {
        self.read(|c| {
            let mut out = String::new();
            for table in TABLES {
                out.push_str(table);
                out.push('\n');
                for r in c.query(&format!("SELECT CAST(t AS TEXT) FROM {table} t ORDER BY 1"), &[])? {
                    let line: String = r.try_get(0)?;
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            Ok(out)
        })
    }
}
