//! Opening a registry from operator configuration, and an embedded
//! registry on a free loopback port for the demo and tests.

use crate::api;
use crate::payment::TestPaymentProvider;
use crate::service::Registry;
use crate::store::{PostgresRegistry, RegistryStore, SqliteRegistry};
use rand::RngCore as _;
use sha2::Digest as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tessera_core::{LocalSigner, PublicKey, SystemClock};

/// Opens `sqlite:PATH` or `postgres://…`.
pub fn open_store(spec: &str) -> anyhow::Result<Arc<dyn RegistryStore>> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        Ok(Arc::new(PostgresRegistry::open(spec)?))
    } else if let Some(path) = spec.strip_prefix("sqlite:") {
        Ok(Arc::new(SqliteRegistry::open(path)?))
    } else {
        anyhow::bail!("--database must be sqlite:PATH or postgres://...")
    }
}

/// The registry and issuer signers from a key file holding a 32-byte
/// seed in hex; the file is created (mode 0600) when missing. The issuer
/// key is derived from the same seed under its own label.
pub fn load_keys(path: &Path) -> anyhow::Result<(LocalSigner, LocalSigner)> {
    let seed = if path.exists() {
        let text = std::fs::read_to_string(path)?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed)
            .map_err(|_| anyhow::anyhow!("{} must hold 64 hex digits", path.display()))?;
        seed
    } else {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        write_private(path, &hex::encode(seed))?;
        tracing::info!(path = %path.display(), "created a new registry key file");
        seed
    };
    Ok(signers_from_seed(&seed))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}

/// The registry and issuer signers for a seed.
pub fn signers_from_seed(seed: &[u8; 32]) -> (LocalSigner, LocalSigner) {
    let mut h = sha2::Sha256::new();
    h.update(b"tessera/v1/registry-issuer\0");
    h.update(seed);
    let issuer_seed: [u8; 32] = h.finalize().into();
    (LocalSigner::from_seed(seed), LocalSigner::from_seed(&issuer_seed))
}

/// A registry serving on a loopback port in its own thread; dropped, it
/// shuts down gracefully.
#[derive(Debug)]
pub struct EmbeddedRegistry {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The key to pin.
    pub registry_key: PublicKey,
    /// The issuer key (payments and refunds are endorsed to it).
    pub issuer_key: PublicKey,
    /// The service itself, for direct inspection.
    pub registry: Arc<Registry>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedRegistry {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a registry on SQLite at `db` on a free loopback port, with the
/// registry key from `seed` and the test payment provider.
pub fn start_embedded(db: &Path, seed: &[u8; 32]) -> anyhow::Result<EmbeddedRegistry> {
    let store: Arc<dyn RegistryStore> = Arc::new(SqliteRegistry::open(db)?);
    start_with(store, seed)
}

/// Starts a registry over any store on a free loopback port.
pub fn start_with(store: Arc<dyn RegistryStore>, seed: &[u8; 32]) -> anyhow::Result<EmbeddedRegistry> {
    start_on(store, seed, SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Starts a registry over any store on `addr` (port 0: a free one). A
/// registry restarted on the address of one that stopped keeps its URL, so
/// clients retrying a request reach it again.
pub fn start_on(store: Arc<dyn RegistryStore>, seed: &[u8; 32], addr: SocketAddr) -> anyhow::Result<EmbeddedRegistry> {
    let (registry_signer, issuer_signer) = signers_from_seed(seed);
    let registry = Arc::new(Registry::new(
        store,
        registry_signer,
        issuer_signer,
        Arc::new(SystemClock),
        Arc::new(TestPaymentProvider),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = registry.clone();
    let thread = std::thread::Builder::new().name("tessera-registry".into()).spawn(move || {
        runtime.block_on(async move {
            if let Err(e) = api::serve(listener, served, async move {
                let _ = rx.await;
            })
            .await
            {
                tracing::error!(error = %e, "embedded registry stopped");
            }
        });
    })?;
    Ok(EmbeddedRegistry {
        addr,
        registry_key: registry.registry_key(),
        issuer_key: registry.issuer_key(),
        registry,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}
