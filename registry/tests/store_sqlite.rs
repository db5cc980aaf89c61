//! The registry store conformance suite on SQLite (a file per case, several
//! connections to it for the concurrency case).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use tessera_registry::SqliteRegistry;

fn fresh() -> (SqliteRegistry, Box<dyn Fn() -> SqliteRegistry + Sync>) {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let path = dir.path().join("registry.db");
    let store = SqliteRegistry::open(&path).expect("open");
    let open = move || {
        let _keep = &dir;
        SqliteRegistry::open(&path).expect("reopen")
    };
    (store, Box::new(open))
}

tessera_registry::registry_conformance!(fresh());

#[test]
fn schema_version_is_current_after_reopen() {
    let (store, open) = fresh();
    assert_eq!(store.schema_version().unwrap(), 10);
    drop(store);
    assert_eq!(open().schema_version().unwrap(), 10);
}

/// The migrations up to schema version 9, when former-holder records were
/// a table of their own.
const BEFORE_THE_VIEW: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_events.sql"),
    include_str!("../migrations/sqlite/0003_gifts.sql"),
    include_str!("../migrations/sqlite/0004_bags.sql"),
    include_str!("../migrations/sqlite/0005_modifications.sql"),
    include_str!("../migrations/sqlite/0006_reported_examinations.sql"),
    include_str!("../migrations/sqlite/0007_sales.sql"),
    include_str!("../migrations/sqlite/0008_bag_digest.sql"),
    include_str!("../migrations/sqlite/0009_used_after_transfer.sql"),
];

/// A version-9 database with one ticket endorsed twice (alice → bob →
/// carol) and the two former-holder records version 9 wrote for it, the
/// second with `second_holder` as its holder.
fn version_9_database(second_holder: u8) -> (tempfile::TempDir, std::path::PathBuf) {
    use rusqlite::params;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("registry.db");
    let mut db = rusqlite::Connection::open(&path).unwrap();
    let tx = db.transaction().unwrap();
    for sql in BEFORE_THE_VIEW {
        tx.execute_batch(sql).unwrap();
    }
    let (id, alice, bob, carol) = ([1_u8; 16], [0xa_u8; 32], [0xb_u8; 32], [0xc_u8; 32]);
    tx.execute(
        "INSERT INTO instruments (id, kind, issuer, genesis, holder, holder_since, sequence, tip, status, uses_left, \
         former_head, updated_at) VALUES (?1, 'ticket', ?2, x'00', ?3, 2, 2, x'02', 'active', 1, 1, 20)",
        params![id, [9_u8; 32], carol],
    )
    .unwrap();
    for (sequence, signer, new_holder) in [(1, alice, bob), (2, bob, carol)] {
        tx.execute(
            "INSERT INTO endorsements (instrument, sequence, digest, previous, signer, new_holder, bytes, \
             registered_at) VALUES (?1, ?2, ?3, x'00', ?4, ?5, x'00', ?6)",
            params![id, sequence, [sequence as u8; 32], signer, new_holder, 10 * sequence],
        )
        .unwrap();
    }
    tx.execute(
        "INSERT INTO former_holders VALUES (?1, 0, 0, ?2, NULL, 10), (?1, 1, 1, ?3, 0, 20)",
        params![id, alice, [second_holder; 32]],
    )
    .unwrap();
    tx.pragma_update(None, "user_version", 9).unwrap();
    tx.commit().unwrap();
    (dir, path)
}

/// Schema version 10 reads former-holder records from the endorsements:
/// the records a version-9 database stored are the ones it reads.
#[test]
fn former_holders_stored_before_are_read_from_the_endorsements_after() {
    use tessera_registry::RegistryStore;
    let (_dir, path) = version_9_database(0xb);
    let store = SqliteRegistry::open(&path).expect("migrates");
    assert_eq!(store.schema_version().unwrap(), 10);
    let id = tessera_core::InstrumentId::from_slice(&[1; 16]).unwrap();
    let got: Vec<_> = store
        .former_holders(&id)
        .unwrap()
        .iter()
        .map(|f| (f.holder.as_bytes()[0], f.from_sequence, f.until_sequence, f.previous_from, f.recorded_at))
        .collect();
    assert_eq!(got, vec![(0xb, 1, 1, Some(0), 20), (0xa, 0, 0, None, 10)]);
}

/// A version-9 database whose former-holder records say something the
/// endorsements do not is left as it was, for an operator to look at.
#[test]
fn former_holders_that_differ_from_the_endorsements_stop_the_migration() {
    let (_dir, path) = version_9_database(0xd);
    let err = SqliteRegistry::open(&path).expect_err("refused").to_string();
    assert!(err.contains("former_holders_match_endorsements"), "{err}");
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = db.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let stored: i64 =
        db.query_row("SELECT count(*) FROM former_holders WHERE from_sequence = 1", [], |r| r.get(0)).unwrap();
    let kind: String =
        db.query_row("SELECT type FROM sqlite_master WHERE name = 'former_holders'", [], |r| r.get(0)).unwrap();
    assert_eq!((version, stored, kind.as_str()), (9, 1, "table"));
}
