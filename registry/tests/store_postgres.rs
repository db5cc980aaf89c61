//! The registry store conformance suite on a real PostgreSQL.
//!
//! These tests are `#[ignore]`d so a plain `cargo test --workspace` (no
//! database) stays green; `scripts/test.d/40-registry.sh` starts a
//! throwaway cluster, sets `TESSERA_TEST_POSTGRES_URL` and runs them with
//! `--ignored`. Without the variable they fail: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use tessera_registry::PostgresRegistry;

pub fn url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .expect("TESSERA_TEST_POSTGRES_URL must name a PostgreSQL database (scripts/test.d/40-registry.sh sets it)")
}

/// A fresh schema per case, so cases run in parallel on one database.
fn fresh() -> (PostgresRegistry, Box<dyn Fn() -> PostgresRegistry + Sync>) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "conf_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
    );
    let url = url();
    let store = PostgresRegistry::open_in_schema(&url, &schema).expect("connect to PostgreSQL");
    let open = move || PostgresRegistry::open_in_schema(&url, &schema).expect("reconnect");
    (store, Box::new(open))
}

tessera_registry::registry_conformance!(
    fresh(),
    #[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
);

/// A store migrated in a schema of its own (dropped first if a crashed
/// run left it), and a plain connection to drop it with.
fn scratch(name: &str) -> (String, PostgresRegistry, postgres::Client) {
    let schema = format!("{name}_{}", std::process::id());
    let mut admin = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).unwrap();
    let store = PostgresRegistry::open_in_schema(&url(), &schema).expect("migrate");
    (schema, store, admin)
}

/// The reference of endorsements to their instrument holds in the database
/// itself, for any writer, though it is checked once per statement rather
/// than by a foreign key per row (migration 0011): a statement with one
/// dangling row is refused whole. What it points at, and the endorsements
/// themselves with the former-holder records read from them (migration
/// 0013), can be neither deleted nor changed.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn references_are_enforced_per_statement() {
    use postgres::error::SqlState;
    let (schema, store, mut admin) = scratch("refs");
    drop(store);
    let mut db = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
    db.batch_execute(&format!("SET search_path TO {schema}")).unwrap();
    let code = |r: Result<u64, postgres::Error>| r.expect_err("refused").code().cloned();
    let count = |db: &mut postgres::Client, table: &str| -> i64 {
        db.query_one(&format!("SELECT count(*) FROM {table}"), &[]).unwrap().get(0)
    };
    db.batch_execute(
        "INSERT INTO instruments (id, kind, issuer, genesis, holder, holder_since, sequence, tip, status, uses_left, \
         updated_at) VALUES ('\\x01', 'ticket', '\\x00', '\\x00', '\\x00', 0, 0, '\\x00', 'active', 1, 0)",
    )
    .unwrap();
    let endorse = "INSERT INTO endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
                   registered_at) SELECT i, s, '\\x00', '\\x00', '\\x0a', '\\x00', '\\x00', 7 FROM unnest($1::bytea[]) i, \
                   unnest($2::bigint[]) s";
    let known: &[u8] = &[1];
    let unknown: &[u8] = &[2];

    // One dangling row among good ones: the whole statement is refused.
    assert_eq!(
        code(db.execute(endorse, &[&vec![known, unknown], &vec![1_i64]])),
        Some(SqlState::FOREIGN_KEY_VIOLATION)
    );
    assert_eq!(count(&mut db, "endorsements"), 0);
    assert_eq!(db.execute(endorse, &[&vec![known], &vec![1_i64, 2]]).unwrap(), 2);

    // Each endorsement is its signer's former-holder record, linked to the
    // one before it.
    type FormerRow = (i64, i64, Vec<u8>, Option<i64>, i64);
    let former: Vec<FormerRow> = db
        .query(
            "SELECT from_sequence, until_sequence, holder, previous_from, recorded_at FROM former_holders ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(former, vec![(0, 0, vec![10], None, 7), (1, 1, vec![10], Some(0), 7)]);

    // The rows they point at, and they themselves, stay as registered.
    for history_change in [
        "DELETE FROM instruments",
        "TRUNCATE instruments CASCADE",
        "UPDATE instruments SET id = '\\x03'",
        "UPDATE endorsements SET instrument = '\\x02'",
        "UPDATE endorsements SET signer = '\\x0b'",
        "DELETE FROM endorsements",
        "TRUNCATE endorsements",
        "DELETE FROM former_holders WHERE from_sequence = 0",
        "UPDATE former_holders SET holder = '\\x0b'",
    ] {
        assert_eq!(code(db.execute(history_change, &[])), Some(SqlState::RESTRICT_VIOLATION), "{history_change}");
    }
    // Inserted only as endorsements.
    assert_eq!(
        code(db.execute(
            "INSERT INTO former_holders (instrument, from_sequence, holder, recorded_at) VALUES ('\\x01', 5, '\\x00', 0)",
            &[]
        )),
        Some(SqlState::FEATURE_NOT_SUPPORTED)
    );
    // Columns that are not keys still change (ingest rewrites the row).
    assert_eq!(db.execute("UPDATE instruments SET sequence = 2", &[]).unwrap(), 1);
    assert_eq!(
        (count(&mut db, "instruments"), count(&mut db, "endorsements"), count(&mut db, "former_holders")),
        (1, 2, 2)
    );
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
}

/// An endorsement registered around the row locks (a writer that did not
/// lock the instrument, simulated by raw SQL) makes the set-based batch
/// fail on the endorsement key: the batch is rolled back whole and applied
/// step by step, where the link already there stands and the upload is a
/// conflict — never an error, never a second link at that sequence.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn a_link_registered_around_the_locks_sends_the_batch_step_by_step() {
    use tessera_core::Signer;
    use tessera_registry::RegistryStore;
    use tessera_registry::store::conformance::Fixture;
    use tessera_registry::store::{ChainOutcome, ChainUpdate, InstrumentRow};
    let (schema, store, mut admin) = scratch("contended");
    let mut f = Fixture::new();
    let (alice, bob, carol, dave) = (f.signer(), f.signer(), f.signer(), f.signer());
    let contended = f.ticket(&alice);
    let free = f.ticket(&alice);
    for t in [&contended, &free] {
        assert!(store.insert_instrument(&InstrumentRow::issued(t, None, 1)).unwrap());
    }
    let (_, around) = Fixture::endorse(&contended, &alice, carol.public_key());
    let mut db = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
    db.execute(
        &format!(
            "INSERT INTO {schema}.endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
             registered_at) VALUES ($1, 1, $2, $3, $4, $5, $6, 1)"
        ),
        &[
            &around.instrument.as_bytes().as_slice(),
            &around.digest.as_bytes().as_slice(),
            &around.previous.as_bytes().as_slice(),
            &around.signer.as_bytes().as_slice(),
            &around.new_holder.as_bytes().as_slice(),
            &around.bytes,
        ],
    )
    .unwrap();
    let (_, uploaded) = Fixture::endorse(&contended, &alice, bob.public_key());
    let (_, fine) = Fixture::endorse(&free, &alice, dave.public_key());
    let batch = [
        ChainUpdate { instrument: contended.id(), links: vec![uploaded], seen: None },
        ChainUpdate { instrument: free.id(), links: vec![fine], seen: None },
    ];
    let outcomes = store.apply_chains(&batch, 2).expect("a contended batch is applied step by step, not failed");
    assert!(
        matches!(&outcomes[0], ChainOutcome::Conflict { registered, .. } if registered.digest == around.digest),
        "the link registered first stands: {:?}",
        outcomes[0]
    );
    assert!(matches!(&outcomes[1], ChainOutcome::Applied { added: 1, .. }), "{:?}", outcomes[1]);
    let links = store.links(&contended.id()).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].digest, around.digest);
    assert_eq!(store.instrument(&free.id()).unwrap().unwrap().holder, dave.public_key());
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
}

/// PostgreSQL returns the row `stored_prefixes` read, with a version that
/// a write of the row changes and a read does not: what lets ingest apply a
/// batch without locking and reading its rows again. (The conformance case
/// `updates_from_rows_read_earlier_decide_as_locked` checks that the
/// decisions are those of the locked path.)
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn stored_prefixes_return_the_row_read_and_its_version() {
    use tessera_core::{Signer, Status};
    use tessera_registry::RegistryStore;
    use tessera_registry::store::InstrumentRow;
    use tessera_registry::store::conformance::Fixture;
    let (schema, store, mut admin) = scratch("seen");
    let mut f = Fixture::new();
    let alice = f.signer();
    let ticket = f.ticket(&alice);
    assert!(store.insert_instrument(&InstrumentRow::issued(&ticket, None, 1)).unwrap());
    let read = || {
        let prefix = store.stored_prefixes(&[(ticket.id(), 1, 1)]).unwrap().remove(0).expect("stored");
        prefix.seen.expect("PostgreSQL returns the row it read")
    };
    let first = read();
    assert_eq!(Some(&first.row), store.instrument(&ticket.id()).unwrap().as_ref());
    assert_eq!(read().version, first.version, "a read is not a write");
    assert!(store.set_status(&ticket.id(), &alice.public_key(), Status::Active, Status::Dispensed, 2).unwrap());
    let second = read();
    assert_ne!(second.version, first.version);
    assert_eq!(second.row.status, Status::Dispensed);
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
}

/// The migrations up to schema version 12, when former-holder records were
/// a table of their own.
const BEFORE_THE_VIEW: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_events.sql"),
    include_str!("../migrations/postgres/0003_gifts.sql"),
    include_str!("../migrations/postgres/0004_bags.sql"),
    include_str!("../migrations/postgres/0005_modifications.sql"),
    include_str!("../migrations/postgres/0006_reported_examinations.sql"),
    include_str!("../migrations/postgres/0007_sales.sql"),
    include_str!("../migrations/postgres/0008_bag_digest.sql"),
    include_str!("../migrations/postgres/0009_used_after_transfer.sql"),
    include_str!("../migrations/postgres/0010_instrument_updates.sql"),
    include_str!("../migrations/postgres/0011_set_based_references.sql"),
    include_str!("../migrations/postgres/0012_room_for_every_row.sql"),
];

/// A schema at version 12 with one ticket endorsed twice (alice → bob →
/// carol) and the two former-holder records version 12 wrote for it, the
/// second with `second_holder` as its holder; and a connection to it.
fn version_12_schema(name: &str, second_holder: u8) -> (String, postgres::Client) {
    let schema = format!("{name}_{}", std::process::id());
    let mut db = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
    ))
    .unwrap();
    let mut tx = db.transaction().unwrap();
    for sql in BEFORE_THE_VIEW {
        tx.batch_execute(sql).unwrap();
    }
    let (id, alice, bob, carol) = (vec![1_u8; 16], vec![0xa_u8; 32], vec![0xb_u8; 32], vec![0xc_u8; 32]);
    tx.execute(
        "INSERT INTO instruments (id, kind, issuer, genesis, holder, holder_since, sequence, tip, status, uses_left, \
         former_head, updated_at) VALUES ($1, 'ticket', $2, '\\x00', $3, 2, 2, '\\x02', 'active', 1, 1, 20)",
        &[&id, &vec![9_u8; 32], &carol],
    )
    .unwrap();
    for (sequence, signer, new_holder) in [(1_i64, &alice, &bob), (2, &bob, &carol)] {
        tx.execute(
            "INSERT INTO endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
             registered_at) VALUES ($1, $2, $3, '\\x00', $4, $5, '\\x00', $6)",
            &[&id, &sequence, &vec![sequence as u8; 32], signer, new_holder, &(10 * sequence)],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO former_holders VALUES ($1, 0, 0, $2, NULL, 10), ($1, 1, 1, $3, 0, 20)",
        &[&id, &alice, &vec![second_holder; 32]],
    )
    .unwrap();
    tx.batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL); INSERT INTO schema_version VALUES (12)")
        .unwrap();
    tx.commit().unwrap();
    (schema, db)
}

/// Schema version 13 reads former-holder records from the endorsements:
/// the records a version-12 database stored are the ones it reads.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn former_holders_stored_before_are_read_from_the_endorsements_after() {
    use tessera_registry::RegistryStore;
    let (schema, mut db) = version_12_schema("former_view", 0xb);
    let store = PostgresRegistry::open_in_schema(&url(), &schema).expect("migrates");
    let version: i64 = db.query_one("SELECT version FROM schema_version", &[]).unwrap().get(0);
    assert_eq!(version, 13);
    let id = tessera_core::InstrumentId::from_slice(&[1; 16]).unwrap();
    let got: Vec<_> = store
        .former_holders(&id)
        .unwrap()
        .iter()
        .map(|f| (f.holder.as_bytes()[0], f.from_sequence, f.until_sequence, f.previous_from, f.recorded_at))
        .collect();
    assert_eq!(got, vec![(0xb, 1, 1, Some(0), 20), (0xa, 0, 0, None, 10)]);
    drop(store);
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
}

/// A version-12 database whose former-holder records say something the
/// endorsements do not is left as it was, for an operator to look at.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.d/40-registry.sh"]
fn former_holders_that_differ_from_the_endorsements_stop_the_migration() {
    let (schema, mut db) = version_12_schema("former_differ", 0xd);
    let Err(err) = PostgresRegistry::open_in_schema(&url(), &schema) else { panic!("migrated") };
    let err = err.to_string();
    assert!(err.contains("former_holders has 2 record(s) that the endorsements do not imply"), "{err}");
    let version: i64 = db.query_one("SELECT version FROM schema_version", &[]).unwrap().get(0);
    let stored: i64 = db.query_one("SELECT count(*) FROM former_holders WHERE from_sequence = 1", &[]).unwrap().get(0);
    let kind: String = db
        .query_one("SELECT table_type::text FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'former_holders'", &[&schema])
        .unwrap()
        .get(0);
    assert_eq!((version, stored, kind.as_str()), (12, 1, "BASE TABLE"));
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
}
