//! One venue for the gate's integration tests: a registry authority, an
//! issuer, a trust list certifying the issuer and the venue's gates, gates
//! opened on it and wallets holding its tickets. Each test binary uses the
//! parts it needs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::OsRng;
use std::path::Path;
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::{GatePolicy, Instruction, ReentryPolicy, WalletCard};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::{SqliteStore, WalletStore};
use tessera_core::{
    Attributes, Clock, InstrumentId, LocalSigner, PublicKey, Role, SystemClock, TicketAttributes, TrustEntry, Wallet,
    Wire,
};
use tessera_gate::Gate;

/// The event every test ticket is for.
pub const EVENT: &str = "final-2026";

/// Every wallet file of these tests is sealed under this key.
fn storage_keys() -> StaticKeyProvider {
    StaticKeyProvider::new(StorageKey::from_bytes([3; 32]))
}

/// The gate policy of the venue: enter the north zone once.
pub fn policy() -> GatePolicy {
    GatePolicy {
        event_id: EVENT.into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    }
}

/// The venue's authorities and its signed trust list.
pub struct Venue {
    pub registry: RegistryAuthority<LocalSigner>,
    pub issuer: Issuer<LocalSigner>,
    pub trust: Vec<u8>,
}

impl Venue {
    /// A venue whose trust list certifies the issuer and `gates` for a day.
    pub fn new(gates: &[PublicKey]) -> Self {
        let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
        let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
        let far = SystemClock.now() + 86_400;
        let mut entries =
            vec![TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "issuer".into(), not_after: far }];
        entries.extend(gates.iter().map(|g| TrustEntry {
            key: *g,
            role: Role::Gate,
            name: "gate".into(),
            not_after: far,
        }));
        let trust = registry.trust_list(1, entries, SystemClock.now()).unwrap().to_bytes();
        Self { registry, issuer, trust }
    }

    /// Gates initialised under `root/<name>` with [`policy`], certified by a
    /// new venue and opened on it.
    pub fn with_gates(root: &Path, names: &[&str]) -> (Self, Vec<Gate>) {
        let keys: Vec<PublicKey> = names.iter().map(|n| Gate::init(&root.join(n), &policy()).unwrap()).collect();
        let venue = Self::new(&keys);
        let gates = names.iter().map(|n| venue.open_gate(&root.join(n))).collect();
        (venue, gates)
    }

    /// An initialised gate opened with this venue's registry and trust list.
    pub fn open_gate(&self, dir: &Path) -> Gate {
        let mut gate = Gate::open(dir).unwrap();
        gate.pin_registry(self.registry.public_key()).unwrap();
        gate.install_trust_list(&self.trust).unwrap();
        gate
    }

    /// A wallet on `store` that trusts this venue.
    pub fn wallet<S: WalletStore>(&self, store: S) -> Wallet<S> {
        let mut w = Wallet::create(store, &storage_keys(), Arc::new(SystemClock)).unwrap();
        w.pin_registry(self.registry.public_key()).unwrap();
        w.install_trust_list(&self.trust).unwrap();
        w
    }

    /// Issues a one-entry ticket for `zone` to a fresh key of `wallet`; a
    /// seated ticket also carries the guidance "lift at door 2".
    pub fn give_ticket<S: WalletStore>(&self, wallet: &mut Wallet<S>, zone: &str, seat: Option<&str>) -> InstrumentId {
        let holder = wallet.new_holder_key().unwrap();
        let now = SystemClock.now();
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: EVENT.into(),
            title: "Cup Final".into(),
            zone: zone.into(),
            seat: seat.map(Into::into),
            guidance: seat.map(|_| "lift at door 2".into()),
            valid_from: now - 60,
            valid_until: now + 3600,
            transferable: true,
            uses: 1,
            face_price: None,
        });
        wallet.import_instrument(self.issuer.issue(attributes, holder, now - 60, &mut OsRng).unwrap()).unwrap().id
    }

    /// A wallet in memory holding one ticket for `zone`, as a card.
    pub fn card_with_ticket(&self, zone: &str) -> WalletCard<SqliteStore> {
        let mut w = self.wallet(SqliteStore::in_memory().unwrap());
        self.give_ticket(&mut w, zone, Some("A1"));
        WalletCard::new(w)
    }

    /// A wallet file at `path` holding one north ticket; returns its id.
    pub fn wallet_file(&self, path: &Path) -> InstrumentId {
        let mut w = self.wallet(SqliteStore::open(path).unwrap());
        self.give_ticket(&mut w, "north", None)
    }
}

/// The wallet file at `path` (see [`Venue::wallet_file`]) as a card.
pub fn card(path: &Path) -> WalletCard<SqliteStore> {
    WalletCard::new(Wallet::open_at(path, &storage_keys(), Arc::new(SystemClock)).unwrap())
}
