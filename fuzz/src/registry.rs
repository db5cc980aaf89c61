//! The registry's request bodies, decoded and served in process.

use serde::de::DeserializeOwned;
use std::sync::Arc;
use tessera_core::clock::ManualClock;
use tessera_core::{LocalSigner, PublicKey, Signer};
use tessera_registry::embedded::signers_from_seed;
use tessera_registry::payment::TestPaymentProvider;
use tessera_registry::{ApiError, Registry, SqliteRegistry, wire};

/// The seed of the registry's keys (`signers_from_seed`).
pub const REGISTRY_SEED: [u8; 32] = [1; 32];

/// Endpoints the `registry` target's first byte picks, in order.
pub const ENDPOINTS: &[&str] = &[
    "/reconcile",
    "/instruments",
    "/sync",
    "/gate/bags",
    "/modifications",
    "/modifications/answer",
    "/gifts",
    "/gifts/answer",
    "/buy",
    "/refund",
    "/money/withdraw",
    "/money/redeem",
    "/money/refresh",
    "/money/topup",
    "/admin/parties",
    "/events",
    "/issue/ticket",
];

/// A registry on SQLite in memory with a manual clock.
#[derive(Debug)]
pub struct Fixture {
    /// The service.
    pub registry: Registry,
    /// Callers the second byte picks: operator, issuer, stranger.
    pub callers: [PublicKey; 3],
    /// The registry's issuer, to make seeds with.
    pub issuer: LocalSigner,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// The fixture.
    pub fn new() -> Self {
        let (registry_signer, issuer_signer) = signers_from_seed(&REGISTRY_SEED);
        let issuer = LocalSigner::from_seed(&issuer_signer.secret().to_bytes());
        let callers =
            [registry_signer.public_key(), issuer_signer.public_key(), LocalSigner::from_seed(&[5; 32]).public_key()];
        let store = Arc::new(SqliteRegistry::in_memory().expect("an in-memory registry"));
        let registry = Registry::new(
            store,
            registry_signer,
            issuer_signer,
            Arc::new(ManualClock::new(crate::T0)),
            Arc::new(TestPaymentProvider),
        );
        Self { registry, callers, issuer }
    }
}

fn body<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// Decodes `json` as the body of the endpoint `endpoint` picks and serves
/// it as `caller`. Refusals are fine; only a panic or a 5xx is a finding
/// (a 5xx means bytes from outside reached a path that fails internally).
pub fn call(fixture: &Fixture, endpoint: u8, caller: u8, json: &[u8]) {
    let r = &fixture.registry;
    let c = &fixture.callers[usize::from(caller) % fixture.callers.len()];
    let n = "fuzz";
    fn done<T>(result: Result<T, ApiError>) {
        if let Err(e) = result {
            assert!(e.status != 500, "internal error from a request body: {} {:?}", e.status, e.body());
        }
    }
    match usize::from(endpoint) % ENDPOINTS.len() {
        0 => body(json).map(|b| done(r.reconcile(c, b))),
        1 => body(json).map(|b| done(r.register_instrument(c, b))),
        2 => body(json).map(|b| done(r.sync(c, b))),
        3 => body(json).map(|b| done(r.upload_bag(c, b))),
        4 => body(json).map(|b| done(r.modify(c, b))),
        5 => body(json).map(|b| done(r.answer_modification(c, n, b))),
        6 => body(json).map(|b| done(r.create_gift(c, b))),
        7 => body(json).map(|b| done(r.answer_gift(c, b))),
        8 => body(json).map(|b| done(r.buy(c, n, b))),
        9 => body(json).map(|b| done(r.refund(c, n, b))),
        10 => body(json).map(|b| done(r.withdraw(c, n, b))),
        11 => body(json).map(|b| done(r.redeem(c, n, b))),
        12 => body(json).map(|b| done(r.refresh(c, n, b))),
        13 => body(json).map(|b| done(r.top_up(c, b))),
        14 => body(json).map(|b| done(r.put_party(c, b))),
        15 => body::<wire::EventJson>(json).map(|b| done(r.create_event(c, b))),
        _ => body(json).map(|b| done(r.issue_ticket(c, b))),
    };
}
