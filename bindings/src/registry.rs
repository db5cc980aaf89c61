//! The service provider: sync (trust and deny lists, reconciliation,
//! notices), buy, refund, top-up, withdraw — `async`, because they wait on
//! the network. Each is the registry client's flow of the same name
//! (`tessera_registry::client::WalletSession`) run on the library's runtime.

use crate::error::RegistryError;
use crate::runtime;
use crate::wallet::{CoreWallet, Wallet, parse_instrument_id};
use std::sync::Arc;
use tessera_registry::client::{ClientError, RegistryClient, Retry, WalletSession};

/// Longest registry URL accepted.
const MAX_URL: usize = 2_048;

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Instruments now carried with a registered certificate.
    pub certified: Vec<String>,
    /// Instruments the registry says are held elsewhere now.
    pub gone: Vec<String>,
    /// Double transfers the registry caught (instrument ids).
    pub conflicts: Vec<String>,
    /// Items the registry refused, with its reasons.
    pub refused: Vec<String>,
    /// Trust-list version installed.
    pub trust_version: u64,
    /// Deny-list version installed.
    pub deny_version: u64,
    /// Notices received, as `kind` or `kind instrument-id`.
    pub notices: Vec<String>,
}

impl From<tessera_registry::client::SyncReport> for SyncReport {
    fn from(r: tessera_registry::client::SyncReport) -> Self {
        Self {
            certified: crate::transfer::hex_ids(r.reconcile.certified),
            gone: crate::transfer::hex_ids(r.reconcile.gone),
            conflicts: r.reconcile.conflicts.iter().map(|p| p.instrument_id().to_hex()).collect(),
            refused: r
                .reconcile
                .refused
                .into_iter()
                .map(|(id, why)| match id {
                    Some(id) => format!("{id}: {why}"),
                    None => why,
                })
                .collect(),
            trust_version: r.trust_version,
            deny_version: r.deny_version,
            notices: r
                .notices
                .into_iter()
                .map(|(kind, id)| match id {
                    Some(id) => format!("{kind} {id}"),
                    None => kind,
                })
                .collect(),
        }
    }
}

fn client(url: &str) -> Result<RegistryClient, RegistryError> {
    if url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(RegistryError::InvalidInput {
            error_message: format!("registry URL must be http(s) and at most {MAX_URL} bytes"),
        });
    }
    Ok(RegistryClient::new(url).with_retry(Retry::INTERACTIVE))
}

impl Wallet {
    /// Runs one registry flow on the runtime, with the wallet wherever it is.
    async fn session<R, F>(self: Arc<Self>, url: String, flow: F) -> Result<R, RegistryError>
    where
        R: Send + 'static,
        F: FnOnce(&mut WalletSession<'_, tessera_core::store::SqliteStore>) -> Result<R, ClientError> + Send + 'static,
    {
        let client = client(&url)?;
        runtime::spawn(async move {
            let result = self.with_async(move |w: &mut CoreWallet| flow(&mut WalletSession::new(w, client))).await?;
            result.map_err(RegistryError::from)
        })
        .await
    }
}

#[uniffi::export]
impl Wallet {
    /// Pins the registry at `url` (first time), installs its trust and deny
    /// lists, uploads chains for reconciliation, applies the answer and
    /// fetches notices.
    pub async fn sync(self: Arc<Self>, url: String) -> Result<SyncReport, RegistryError> {
        Ok(self.session(url, |s| s.sync()).await?.into())
    }

    /// Credits the account through the payment provider (`payment` is the
    /// provider's token); the new account balance.
    pub async fn top_up(
        self: Arc<Self>,
        url: String,
        currency: String,
        minor: u64,
        payment: String,
    ) -> Result<u64, RegistryError> {
        self.session(url, move |s| s.top_up(&currency, minor, &payment)).await
    }

    /// Notes worth `minor` from the account balance, to fresh holder keys.
    pub async fn withdraw(
        self: Arc<Self>,
        url: String,
        currency: String,
        minor: u64,
    ) -> Result<Vec<String>, RegistryError> {
        Ok(crate::transfer::hex_ids(self.session(url, move |s| s.withdraw(&currency, minor)).await?))
    }

    /// Buys a ticket for `event_id` in `zone`: pays with held notes (the
    /// account balance covers a shortfall and keeps any excess); the ticket's id.
    pub async fn buy(
        self: Arc<Self>,
        url: String,
        event_id: String,
        zone: String,
        seat: Option<String>,
    ) -> Result<String, RegistryError> {
        Ok(self.session(url, move |s| s.buy(&event_id, &zone, seat)).await?.to_hex())
    }

    /// Gives a ticket back for notes of its face price; the notes' ids.
    pub async fn refund(self: Arc<Self>, url: String, ticket: String) -> Result<Vec<String>, RegistryError> {
        let ticket = parse_instrument_id(&ticket)?;
        Ok(crate::transfer::hex_ids(self.session(url, move |s| s.refund(&ticket)).await?))
    }
}
