//! `tessera-registry`: the service provider's server.
//!
//! ```text
//! tessera-registry serve --listen 127.0.0.1:7700 --database sqlite:registry.db --key-file registry.key
//! tessera-registry serve --database postgres://user@db:5432/tessera ...
//! tessera-registry certify --url http://127.0.0.1:7700 --key-file registry.key --role gate --key <hex> --name "North 1"
//! tessera-registry parties --url http://127.0.0.1:7700
//! tessera-registry openapi > docs/openapi.json
//! ```

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use tessera_core::{SystemClock, Wire as _};
use tessera_registry::client::RegistryClient;
use tessera_registry::payment::TestPaymentProvider;
use tessera_registry::{Registry, api, embedded, openapi, wire};

#[derive(Debug, Parser)]
#[command(name = "tessera-registry", version, about = "Tessera service provider (registry)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TESSERA_REGISTRY_LISTEN", default_value = "127.0.0.1:7700")]
        listen: String,
        /// `sqlite:PATH` or `postgres://user@host:port/db`.
        #[arg(long, env = "TESSERA_REGISTRY_DATABASE", default_value = "sqlite:registry.db")]
        database: String,
        /// File holding the registry key seed (64 hex digits); created when missing.
        #[arg(long, env = "TESSERA_REGISTRY_KEY_FILE", default_value = "registry.key")]
        key_file: PathBuf,
        /// Print the bound address on stdout once listening (for scripts
        /// and tests that pass port 0).
        #[arg(long)]
        print_addr: bool,
    },
    /// Certify an issuer, gate or merchant key: a `POST /admin/parties`
    /// signed with the registry key, to a running registry (any process of
    /// a PostgreSQL deployment). The key then appears in the trust list.
    Certify {
        /// The registry's base URL.
        #[arg(long, env = "TESSERA_REGISTRY_URL", default_value = "http://127.0.0.1:7700")]
        url: String,
        /// The registry key file the server runs with (it must exist).
        #[arg(long, env = "TESSERA_REGISTRY_KEY_FILE", default_value = "registry.key")]
        key_file: PathBuf,
        /// `issuer`, `gate` or `merchant`.
        #[arg(long)]
        role: String,
        /// The party's public key, 64 hex digits.
        #[arg(long)]
        key: String,
        /// A name people read (shown by gates and wallets).
        #[arg(long)]
        name: String,
        /// Certification lapses after this Unix time (seconds).
        #[arg(long, default_value_t = u64::MAX / 2)]
        not_after: u64,
    },
    /// Print the certified parties of the current trust list, verified
    /// against the registry key the server reports.
    Parties {
        /// The registry's base URL.
        #[arg(long, env = "TESSERA_REGISTRY_URL", default_value = "http://127.0.0.1:7700")]
        url: String,
    },
    /// Print the OpenAPI document.
    Openapi,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Openapi => {
            let text = serde_json::to_string_pretty(&openapi::document())?;
            #[allow(clippy::print_stdout)]
            {
                println!("{text}");
            }
            Ok(())
        }
        Command::Certify { url, key_file, role, key, name, not_after } => {
            anyhow::ensure!(
                key_file.exists(),
                "{} does not exist: give the key file the registry runs with",
                key_file.display()
            );
            let (registry_signer, _) = embedded::load_keys(&key_file).context("reading the key file")?;
            let client = RegistryClient::new(&url);
            let request = wire::PartyRequest { key, role, name, not_after };
            let answer: wire::PartyResponse =
                client.post("/admin/parties", &registry_signer, &request).map_err(|e| anyhow::anyhow!("{e}"))?;
            #[allow(clippy::print_stdout)]
            {
                println!("certified {} as {}; trust list version {}", request.key, request.role, answer.trust_version);
            }
            Ok(())
        }
        Command::Parties { url } => {
            let client = RegistryClient::new(&url);
            let info = client.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let registry_key = tessera_core::PublicKey::from_hex(&info.registry_key)
                .map_err(|_| anyhow::anyhow!("the registry reported a malformed key"))?;
            let bytes = client.get_bytes("/trust-list").map_err(|e| anyhow::anyhow!("{e}"))?;
            let list = tessera_core::TrustList::verify(tessera_core::Signed::from_bytes(&bytes)?, &registry_key)?;
            #[allow(clippy::print_stdout)]
            {
                println!("trust list version {} signed by {}", list.version(), registry_key.to_hex());
                for e in list.entries() {
                    println!("{:<8} {} {} (until {})", e.role.as_str(), e.key.to_hex(), e.name, e.not_after);
                }
            }
            Ok(())
        }
        Command::Serve { listen, database, key_file, print_addr } => {
            let store = embedded::open_store(&database).context("opening the database")?;
            let (registry_signer, issuer_signer) = embedded::load_keys(&key_file).context("reading the key file")?;
            let registry = Arc::new(Registry::new(
                store,
                registry_signer,
                issuer_signer,
                Arc::new(SystemClock),
                Arc::new(TestPaymentProvider),
            ));
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
                let addr = listener.local_addr()?;
                tracing::info!(%addr, backend = registry.store().backend_name(), registry_key = %registry.registry_key(), "serving");
                if print_addr {
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{addr}");
                    }
                }
                api::serve(listener, registry, shutdown_signal()).await?;
                tracing::info!("stopped");
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
