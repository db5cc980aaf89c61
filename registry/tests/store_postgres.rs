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

/// The references of endorsements and former-holder records hold in the
/// database itself, for any writer, though they are checked once per
/// statement rather than by a foreign key per row (migration 0011): a
/// statement with one dangling row is refused whole, and the rows they
/// point at can be neither deleted nor re-keyed.
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
                   registered_at) SELECT i, 1, '\\x00', '\\x00', '\\x00', '\\x00', '\\x00', 0 FROM unnest($1::bytea[]) i";
    let known: &[u8] = &[1];
    let unknown: &[u8] = &[2];

    // One dangling row among good ones: the whole statement is refused.
    assert_eq!(code(db.execute(endorse, &[&vec![known, unknown]])), Some(SqlState::FOREIGN_KEY_VIOLATION));
    assert_eq!(count(&mut db, "endorsements"), 0);
    assert_eq!(db.execute(endorse, &[&vec![known]]).unwrap(), 1);
    let repoint = "UPDATE endorsements SET instrument = '\\x02'";
    assert_eq!(code(db.execute(repoint, &[])), Some(SqlState::FOREIGN_KEY_VIOLATION));

    // A former-holder record needs its instrument and its previous record,
    // which may come in the same statement.
    let former = "INSERT INTO former_holders (instrument, from_sequence, until_sequence, holder, previous_from, \
                  recorded_at) SELECT $1, f, f + 1, '\\x00', p, 0 FROM unnest($2::bigint[], $3::bigint[]) AS u (f, p)";
    let (from, previous): (Vec<i64>, Vec<Option<i64>>) = (vec![0, 1], vec![None, Some(0)]);
    assert_eq!(
        code(db.execute(former, &[&unknown, &vec![0_i64], &vec![None::<i64>]])),
        Some(SqlState::FOREIGN_KEY_VIOLATION)
    );
    assert_eq!(
        code(db.execute(former, &[&known, &vec![1_i64], &vec![Some(0_i64)]])),
        Some(SqlState::FOREIGN_KEY_VIOLATION)
    );
    assert_eq!(count(&mut db, "former_holders"), 0);
    assert_eq!(db.execute(former, &[&known, &from, &previous]).unwrap(), 2);

    // The rows they point at stay.
    for history_change in [
        "DELETE FROM instruments",
        "TRUNCATE instruments CASCADE",
        "UPDATE instruments SET id = '\\x03'",
        "DELETE FROM former_holders WHERE from_sequence = 0",
        "UPDATE former_holders SET from_sequence = from_sequence + 10",
    ] {
        assert_eq!(code(db.execute(history_change, &[])), Some(SqlState::RESTRICT_VIOLATION), "{history_change}");
    }
    // Columns that are not keys still change (ingest rewrites the row).
    assert_eq!(db.execute("UPDATE instruments SET sequence = 1", &[]).unwrap(), 1);
    assert_eq!(
        (count(&mut db, "instruments"), count(&mut db, "endorsements"), count(&mut db, "former_holders")),
        (1, 1, 2)
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
