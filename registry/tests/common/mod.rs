//! A `tessera-registry serve` process for tests, stopped when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

/// The running server; killed and reaped on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The registry binary built for these tests.
pub fn registry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera-registry"))
}

/// Starts `serve` on a free loopback port; returns it and its base URL.
pub fn serve(database: &str, key_file: &std::path::Path) -> (Server, String) {
    let mut child = registry()
        .args(["serve", "--listen", "127.0.0.1:0", "--print-addr", "--database", database, "--key-file"])
        .arg(key_file)
        .env("TESSERA_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tessera-registry");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(!line.trim().is_empty(), "the registry did not report its address");
    (Server(child), format!("http://{}", line.trim()))
}

pub mod crashing;

/// Certifies `organiser` as an issuer (signed by the registry's operator
/// key) and has it create the event `finals` with `zones`, one use per
/// ticket, transferable, at `price` euro cents.
pub fn open_finals(
    client: &tessera_registry::client::RegistryClient,
    operator: &tessera_core::LocalSigner,
    organiser: &tessera_core::LocalSigner,
    zones: &[&str],
    price: u64,
) {
    use tessera_core::Signer as _;
    use tessera_registry::wire;
    let _: wire::PartyResponse = client
        .post(
            "/admin/parties",
            operator,
            &wire::PartyRequest {
                key: organiser.public_key().to_hex(),
                role: "issuer".into(),
                name: "Arena".into(),
                not_after: u64::MAX / 2,
            },
        )
        .unwrap();
    let _: serde_json::Value = client
        .post(
            "/events",
            organiser,
            &wire::EventJson {
                event_id: "finals".into(),
                title: "The Finals".into(),
                zones: zones.iter().map(|z| (*z).to_owned()).collect(),
                valid_from: 0,
                valid_until: u64::MAX / 2,
                price: wire::AmountJson { currency: "EUR".into(), minor: price },
                transferable: true,
                uses: 1,
            },
        )
        .unwrap();
}

/// A database of its own on the PostgreSQL server `TESSERA_TEST_POSTGRES_URL`
/// names (`<name>_<pid>`), dropped with the value.
pub struct TestDatabase {
    admin: postgres::Client,
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates it afresh; fails without `TESSERA_TEST_POSTGRES_URL`.
    pub fn create(name: &str) -> Self {
        let base = std::env::var("TESSERA_TEST_POSTGRES_URL").expect(
            "TESSERA_TEST_POSTGRES_URL must name a PostgreSQL database (scripts/test.d/40-registry.sh sets it)",
        );
        let name = format!("{name}_{}", std::process::id());
        let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{name}");
        Self { admin, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}
