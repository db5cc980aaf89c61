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
    assert_eq!(store.schema_version().unwrap(), 9);
    drop(store);
    assert_eq!(open().schema_version().unwrap(), 9);
}
