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
