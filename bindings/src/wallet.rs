//! The wallet object apps hold: one per wallet file, safe to share across
//! threads.
//!
//! The core wallet lives in one of two places, and calls follow it:
//!
//! ```text
//!            start_node()                      P2pNode.stop() / drop
//!   Here ─────────────────▶ Moving ─▶ InNode ─────────────────▶ Moving ─▶ Here
//!   (a WalletCard: calls      (calls fail    (the node task owns it: calls run
//!    lock a mutex; an HCE      Unavailable)   as jobs inside the node task;
//!    service taps any time)                   process_apdu answers 6985)
//! ```
//! Each call is a short SQLite transaction; a failed call changed nothing.

use crate::error::WalletError;
use crate::keystore::{Keystore, KeystoreKeyProvider};
use crate::runtime::{self, Unavailable};
use crate::types::{Balance, HistoryEntry, InstrumentSummary, OfflinePolicy, VerifiedInstrument};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tessera_core::clock::SystemClock;
use tessera_core::presentation::WalletCard;
use tessera_core::store::SqliteStore;
use tessera_core::{InstrumentId, PublicKey};
use tessera_p2p::NodeHandle;

/// Most history lines one call returns.
const MAX_HISTORY: u32 = 10_000;

/// The core wallet as this crate holds it.
pub(crate) type CoreWallet = tessera_core::Wallet<SqliteStore>;

/// Where the core wallet is now.
pub(crate) enum Slot {
    /// Here, inside the card application an HCE service drives.
    Here(Box<WalletCard<SqliteStore>>),
    /// Owned by a running p2p node.
    InNode(NodeHandle<SqliteStore>),
    /// A node is starting or stopping.
    Moving,
}

/// A Tessera wallet stored in one SQLite file.
#[derive(uniffi::Object)]
pub struct Wallet {
    slot: Mutex<Slot>,
    /// Never changes; kept so that reading it never waits on a node.
    account: String,
    /// Kept to reopen the file if a node fails to start after taking the wallet.
    path: String,
    keystore: Arc<dyn Keystore>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The core wallet's Debug shows only public facts (account key,
        // registry, trust list version); its sealer prints as redacted. The
        // keystore is the app's object: never printed.
        match self.slot.try_lock().as_deref() {
            Ok(Slot::Here(card)) => f.debug_tuple("Wallet").field(card.wallet()).finish(),
            Ok(Slot::InNode(node)) => f.debug_tuple("Wallet").field(node).finish(),
            Ok(Slot::Moving) => f.write_str("Wallet(<moving>)"),
            Err(_) => f.write_str("Wallet(<in use>)"),
        }
    }
}

pub(crate) fn parse_public_key(hex: &str) -> Result<PublicKey, WalletError> {
    PublicKey::from_hex(hex).map_err(|e| WalletError::invalid_input(format!("key {hex:?}: {e}")))
}

pub(crate) fn parse_instrument_id(hex: &str) -> Result<InstrumentId, WalletError> {
    InstrumentId::from_hex(hex).map_err(|e| WalletError::invalid_input(format!("instrument id {hex:?}: {e}")))
}

impl Wallet {
    fn wrap(inner: CoreWallet, path: String, keystore: Arc<dyn Keystore>) -> Arc<Self> {
        let account = inner.account_key().to_hex();
        Arc::new(Self { slot: Mutex::new(Slot::Here(Box::new(WalletCard::new(inner)))), account, path, keystore })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Slot> {
        // Every change is one atomic store batch, so a panic in another call
        // cannot have left the wallet half-changed: carry on with it.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core wallet wherever it is, from a foreign thread.
    pub(crate) fn with<R, F>(&self, f: F) -> Result<R, Unavailable>
    where
        R: Send + 'static,
        F: FnOnce(&mut CoreWallet) -> R + Send + 'static,
    {
        let mut slot = self.lock();
        match &mut *slot {
            Slot::Here(card) => Ok(f(card.wallet_mut())),
            Slot::InNode(node) => {
                let node = node.clone();
                drop(slot);
                runtime::block_on(node.with_wallet(f))?.map_err(|e| Unavailable(e.to_string()))
            }
            Slot::Moving => Err(moving()),
        }
    }

    /// Runs blocking `f` on the core wallet wherever it is, from a task on
    /// the library's runtime (registry calls wait on the network).
    pub(crate) async fn with_async<R, F>(self: Arc<Self>, f: F) -> Result<R, Unavailable>
    where
        R: Send + 'static,
        F: FnOnce(&mut CoreWallet) -> R + Send + 'static,
    {
        let node = match &*self.lock() {
            Slot::Here(_) => None,
            Slot::InNode(node) => Some(node.clone()),
            Slot::Moving => return Err(moving()),
        };
        match node {
            Some(node) => node.with_wallet(f).await.map_err(|e| Unavailable(e.to_string())),
            None => tokio::task::spawn_blocking(move || match &mut *self.lock() {
                Slot::Here(card) => Ok(f(card.wallet_mut())),
                _ => Err(moving()),
            })
            .await
            .map_err(|e| Unavailable(format!("the task failed: {e}")))?,
        }
    }

    /// Takes the core wallet out for a node; `None` when it is not here.
    pub(crate) fn take_for_node(&self) -> Option<CoreWallet> {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, Slot::Moving) {
            Slot::Here(card) => Some(card.into_wallet()),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Puts the core wallet back (after a node stopped).
    pub(crate) fn put_back(&self, wallet: CoreWallet) {
        *self.lock() = Slot::Here(Box::new(WalletCard::new(wallet)));
    }

    /// A node holding the wallet is stopping.
    pub(crate) fn mark_moving(&self) {
        let mut slot = self.lock();
        if matches!(*slot, Slot::InNode(_)) {
            *slot = Slot::Moving;
        }
    }

    pub(crate) fn set_node(&self, node: NodeHandle<SqliteStore>) {
        *self.lock() = Slot::InNode(node);
    }

    /// After a node failed to start, having consumed the wallet: reopen the file.
    pub(crate) fn reopen(&self) -> Result<(), WalletError> {
        let keys = KeystoreKeyProvider::new(self.keystore.clone());
        let wallet = tessera_core::Wallet::open_at(&self.path, &keys, Arc::new(SystemClock))?;
        self.put_back(wallet);
        Ok(())
    }
}

fn moving() -> Unavailable {
    Unavailable("a p2p node is starting or stopping with this wallet: try again in a moment".into())
}

#[uniffi::export]
impl Wallet {
    /// Creates a wallet in a new file at `path`; `keystore` supplies the key
    /// that seals its private keys.
    #[uniffi::constructor]
    pub fn create(path: String, keystore: Arc<dyn Keystore>) -> Result<Arc<Self>, WalletError> {
        let keys = KeystoreKeyProvider::new(keystore.clone());
        let wallet = tessera_core::Wallet::create_at(&path, &keys, Arc::new(SystemClock))?;
        Ok(Self::wrap(wallet, path, keystore))
    }

    /// Opens the wallet at `path`. A storage key that does not open it is
    /// `WrongStorageKey`, and nothing is changed.
    #[uniffi::constructor]
    pub fn open(path: String, keystore: Arc<dyn Keystore>) -> Result<Arc<Self>, WalletError> {
        let keys = KeystoreKeyProvider::new(keystore.clone());
        let wallet = tessera_core::Wallet::open_at(&path, &keys, Arc::new(SystemClock))?;
        Ok(Self::wrap(wallet, path, keystore))
    }

    /// The account key (hex): this wallet's identity at the registry.
    pub fn account_key(&self) -> String {
        self.account.clone()
    }

    /// The pinned registry key (hex), if any.
    pub fn registry_key(&self) -> Result<Option<String>, WalletError> {
        Ok(self.with(|w| w.registry_key().map(|k| k.to_hex()))?)
    }

    /// The installed trust list's version, if any.
    pub fn trust_list_version(&self) -> Result<Option<u64>, WalletError> {
        Ok(self.with(|w| w.trust_list().map(|t| t.version()))?)
    }

    /// Pins the service provider's key (hex). Once pinned it cannot change.
    pub fn pin_registry(&self, key: String) -> Result<(), WalletError> {
        let key = parse_public_key(&key)?;
        Ok(self.with(move |w| w.pin_registry(key))??)
    }

    /// Installs a trust list signed by the pinned registry.
    pub fn install_trust_list(&self, bytes: Vec<u8>) -> Result<(), WalletError> {
        Ok(self.with(move |w| w.install_trust_list(&bytes))??)
    }

    /// Installs a deny list signed by the pinned registry.
    pub fn install_deny_list(&self, bytes: Vec<u8>) -> Result<(), WalletError> {
        Ok(self.with(move |w| w.install_deny_list(&bytes))??)
    }

    /// What this wallet takes from a peer while nothing is reconciled:
    /// 8 hops and notes up to 100.00 until the app sets another.
    pub fn offline_policy(&self) -> Result<OfflinePolicy, WalletError> {
        Ok(self.with(|w| w.offline_policy())?.into())
    }

    /// Sets and stores the offline policy; more than 64 hops is
    /// `InvalidInput` and changes nothing.
    pub fn set_offline_policy(&self, policy: OfflinePolicy) -> Result<(), WalletError> {
        let policy = tessera_core::presentation::OfflinePolicy {
            max_unreconciled_hops: usize::try_from(policy.max_unreconciled_hops).unwrap_or(usize::MAX),
            max_note_value: policy.max_note_value,
        };
        Ok(self.with(move |w| w.set_offline_policy(policy))??)
    }

    /// Makes a fresh holder key (hex) for an issuer or sender to endorse an
    /// instrument to. Its private half never leaves the wallet.
    pub fn new_holder_key(&self) -> Result<String, WalletError> {
        Ok(self.with(|w| w.new_holder_key())??.to_hex())
    }

    /// Imports an encoded instrument issued or endorsed to one of this
    /// wallet's holder keys; it must pass the verifier.
    pub fn import(&self, bytes: Vec<u8>) -> Result<InstrumentSummary, WalletError> {
        Ok(self.with(move |w| w.import(&bytes))??.into())
    }

    /// Tickets held or pending out.
    pub fn tickets(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.with(|w| w.tickets())??.into_iter().map(Into::into).collect())
    }

    /// Notes held or pending out.
    pub fn notes(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.with(|w| w.notes())??.into_iter().map(Into::into).collect())
    }

    /// Coupons held or pending out.
    pub fn coupons(&self) -> Result<Vec<InstrumentSummary>, WalletError> {
        Ok(self.with(|w| w.coupons())??.into_iter().map(Into::into).collect())
    }

    /// Money per currency.
    pub fn balance(&self) -> Result<Vec<Balance>, WalletError> {
        Ok(self.with(|w| w.balance())??.into_iter().map(Into::into).collect())
    }

    /// The newest `limit` history lines (at most 10 000), newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<HistoryEntry>, WalletError> {
        let limit = usize::try_from(limit.min(MAX_HISTORY)).unwrap_or(usize::MAX);
        Ok(self.with(move |w| w.history(limit))??.into_iter().map(Into::into).collect())
    }

    /// Runs the verifier on a held instrument (id in hex), for this wallet's key.
    pub fn verify(&self, id: String) -> Result<VerifiedInstrument, WalletError> {
        let id = parse_instrument_id(&id)?;
        Ok(self.with(move |w| w.verify(&id))??.into())
    }

    /// The encoded instrument (id in hex), to save or hand to another party.
    pub fn export(&self, id: String) -> Result<Vec<u8>, WalletError> {
        let id = parse_instrument_id(&id)?;
        Ok(self.with(move |w| w.export(&id))??)
    }
}
