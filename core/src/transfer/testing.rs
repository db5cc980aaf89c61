//! A small world for transfer tests: a registry, an issuer, a shared
//! manual clock and wallets in SQLite files that can be dropped and
//! reopened. Used by this crate's tests and by `tessera-p2p`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::authority::{Issuer, RegistryAuthority};
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::codec::Wire;
use crate::crypto::LocalSigner;
use crate::ids::InstrumentId;
use crate::instrument::{Amount, Attributes, NoteAttributes, TicketAttributes};
use crate::sealing::{StaticKeyProvider, StorageKey};
use crate::store::{HistoryEntry, InstrumentFilter, InstrumentSummary, PendingRecord, SqliteStore, WalletStore};
use crate::trust::{Role, TrustEntry};
use crate::wallet::Wallet;
use rand::rngs::OsRng;
use std::path::PathBuf;
use std::sync::Arc;

/// The time the world starts at.
pub const T0: Timestamp = 1_800_000_000;

/// A registry, an issuer and a clock.
#[derive(Debug)]
pub struct World {
    /// The registry.
    pub registry: RegistryAuthority<LocalSigner>,
    /// The one issuer of tickets and notes.
    pub issuer: Issuer<LocalSigner>,
    /// The shared clock.
    pub clock: Arc<ManualClock>,
    /// The encoded trust list.
    pub trust_list: Vec<u8>,
    /// Where the wallets live.
    pub dir: PathBuf,
}

impl World {
    /// A fresh world at [`T0`] whose wallets live in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
        let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
        let entries = vec![TrustEntry {
            key: issuer.public_key(),
            role: Role::Issuer,
            name: "Issuer".into(),
            not_after: T0 + 10_000_000,
        }];
        let trust_list = registry.trust_list(1, entries, T0).unwrap().to_bytes();
        Self { registry, issuer, clock: Arc::new(ManualClock::new(T0)), trust_list, dir: dir.into() }
    }

    /// A wallet in its own SQLite file, trusting this world's registry.
    pub fn peer(&self, name: &str) -> Peer {
        let path = self.dir.join(format!("{name}.sqlite"));
        let key = StorageKey::generate(&mut OsRng);
        let provider = StaticKeyProvider::new(key);
        let clock: Arc<dyn Clock> = self.clock.clone();
        let mut wallet = Wallet::create_at(&path, &provider, clock).unwrap();
        wallet.pin_registry(self.registry.public_key()).unwrap();
        wallet.install_trust_list(&self.trust_list).unwrap();
        Peer { wallet, path, provider, clock: self.clock.clone() }
    }

    /// Issues a transferable ticket into `peer`.
    pub fn ticket(&self, peer: &mut Peer, seat: &str) -> InstrumentId {
        let holder = peer.wallet.new_holder_key().unwrap();
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: "final".into(),
            title: "Cup final".into(),
            zone: "B".into(),
            seat: Some(seat.into()),
            guidance: None,
            valid_from: T0 - 1000,
            valid_until: T0 + 1_000_000,
            transferable: true,
            uses: 1,
            face_price: Some(Amount::new("EUR", 4000)),
        });
        let instrument = self.issuer.issue(attributes, holder, self.clock.now(), &mut OsRng).unwrap();
        peer.wallet.import_instrument(instrument).unwrap().id
    }

    /// Issues notes of the given values (EUR cents) into `peer`.
    pub fn notes(&self, peer: &mut Peer, values: &[u64]) -> Vec<InstrumentId> {
        values
            .iter()
            .map(|v| {
                let holder = peer.wallet.new_holder_key().unwrap();
                let attributes =
                    Attributes::Note(NoteAttributes { amount: Amount::new("EUR", *v), expires_at: T0 + 2_000_000 });
                let instrument = self.issuer.issue(attributes, holder, self.clock.now(), &mut OsRng).unwrap();
                peer.wallet.import_instrument(instrument).unwrap().id
            })
            .collect()
    }
}

/// A wallet that can crash and come back.
#[derive(Debug)]
pub struct Peer {
    /// The wallet.
    pub wallet: Wallet<SqliteStore>,
    /// Its file.
    pub path: PathBuf,
    provider: StaticKeyProvider,
    clock: Arc<ManualClock>,
}

/// Everything a store holds that a transfer may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Instruments.
    pub instruments: Vec<InstrumentSummary>,
    /// Exchanges.
    pub pending: Vec<PendingRecord>,
    /// History.
    pub history: Vec<HistoryEntry>,
}

impl Peer {
    /// Drops the wallet (as a crash would) and opens its file again.
    pub fn reopen(&mut self) {
        let clock: Arc<dyn Clock> = self.clock.clone();
        self.wallet = Wallet::open_at(&self.path, &self.provider, clock).unwrap();
    }

    /// What the store holds now.
    pub fn snapshot(&self) -> Snapshot {
        let store = self.wallet.store();
        let mut instruments = store.instruments(InstrumentFilter::default()).unwrap();
        instruments.sort_by_key(|i| i.id);
        Snapshot { instruments, pending: store.all_pending().unwrap(), history: store.history(10_000).unwrap() }
    }
}
