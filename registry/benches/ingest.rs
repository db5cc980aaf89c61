//! Reconciliation ingest: endorsements registered per second on SQLite and
//! (when `TESSERA_BENCH_POSTGRES_URL` is set) PostgreSQL, against the batch
//! Ed25519 verification rate measured in the same run as the ceiling.
//!
//! Each uploaded chain is a ticket with one endorsement; ingest runs the
//! real path (`Registry::ingest`: the core verifier on every core, then one
//! store transaction per batch) and ends with a registered certificate per
//! chain counted. `cargo bench -p tessera-registry --bench ingest [-- N]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;
use tessera_core::authority::Issuer;
use tessera_core::instrument::TicketAttributes;
use tessera_core::verify::VerifiedPrefix;
use tessera_core::{Attributes, Context, ExchangeId, Instrument, InstrumentId, LocalSigner, Signed, Signer};
use tessera_registry::embedded::signers_from_seed;
use tessera_registry::payment::TestPaymentProvider;
use tessera_registry::store::{InstrumentRow, RegistryStore};
use tessera_registry::{PostgresRegistry, Registry, SqliteRegistry};

const BATCH: usize = tessera_registry::service::INGEST_BATCH;

fn chains(n: usize) -> (Vec<Instrument>, LocalSigner) {
    let (_, issuer_signer) = signers_from_seed(&[1; 32]);
    let issuer_copy = LocalSigner::from_seed(&issuer_signer.secret().to_bytes());
    let issuer = Issuer::new(issuer_signer);
    let out = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[31] = 1;
            let holder = LocalSigner::from_seed(&seed);
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let attrs = Attributes::Ticket(TicketAttributes {
                event_id: "bench".into(),
                title: "Bench".into(),
                zone: "A".into(),
                seat: None,
                guidance: None,
                valid_from: 0,
                valid_until: u64::MAX / 2,
                transferable: true,
                uses: 1,
                face_price: None,
            });
            let t = issuer.issue_with_id(InstrumentId(id), attrs, holder.public_key(), 1).unwrap();
            seed[31] = 2;
            let next = LocalSigner::from_seed(&seed).public_key();
            let body = t.next_endorsement(next, ExchangeId::NONE, ExchangeId::NONE, 2);
            t.with_link(Signed::sign(body, &holder).unwrap())
        })
        .collect();
    (out, issuer_copy)
}

/// Batch Ed25519 verification, on every core, of the link of each chain
/// and, with `genesis`, of its genesis too. Ingest checks only the links:
/// the registry stored each genesis byte for byte when it was issued.
fn batch_verify_rate(chains: &[Instrument], genesis: bool) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let started = Instant::now();
    std::thread::scope(|s| {
        for part in chains.chunks(chains.len().div_ceil(threads)) {
            s.spawn(move || {
                for batch in part.chunks(64) {
                    let mut messages = Vec::new();
                    let mut sigs = Vec::new();
                    let mut keys = Vec::new();
                    for c in batch {
                        let g = &c.genesis;
                        if genesis {
                            messages.push(Context::Genesis.signed_bytes(&minicbor::to_vec(&g.body).unwrap()));
                            sigs.push(ed25519_dalek::Signature::from_bytes(&g.signature.0));
                            keys.push(ed25519_dalek::VerifyingKey::from_bytes(&g.body.issuer.0).unwrap());
                        }
                        let l = &c.links[0];
                        messages.push(Context::Endorsement.signed_bytes(&minicbor::to_vec(&l.body).unwrap()));
                        sigs.push(ed25519_dalek::Signature::from_bytes(&l.signature.0));
                        keys.push(ed25519_dalek::VerifyingKey::from_bytes(&g.body.holder.0).unwrap());
                    }
                    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                    ed25519_dalek::verify_batch(&refs, &sigs, &keys).unwrap();
                }
            });
        }
    });
    chains.len() as f64 / started.elapsed().as_secs_f64()
}

/// The core `Verifier::verify_batch` over the same chains: batch
/// verification plus every structural check the registry relies on; with
/// `stored_genesis`, `verify_batch_from` with each genesis known as
/// verified, as ingest calls it.
fn verifier_rate(chains: &[Instrument], stored_genesis: bool) -> f64 {
    let (registry_signer, issuer_signer) = signers_from_seed(&[1; 32]);
    let authority = tessera_core::authority::RegistryAuthority::new(registry_signer);
    let entry = tessera_core::TrustEntry {
        key: issuer_signer.public_key(),
        role: tessera_core::Role::Issuer,
        name: "bench".into(),
        not_after: u64::MAX,
    };
    let trust =
        tessera_core::TrustList::verify(authority.trust_list(1, vec![entry], 0).unwrap(), &authority.public_key())
            .unwrap();
    let deny = tessera_core::DenyList::empty();
    let verifier = tessera_core::Verifier::new(&trust, &deny);
    let known: Vec<VerifiedPrefix> = if stored_genesis {
        chains.iter().map(|c| VerifiedPrefix { genesis: Some(c.genesis.digest()), links: vec![] }).collect()
    } else {
        vec![]
    };
    let started = Instant::now();
    let verdicts = verifier.verify_batch_from(chains, &known, 3);
    let rate = chains.len() as f64 / started.elapsed().as_secs_f64();
    assert!(verdicts.iter().all(Result::is_ok));
    rate
}

fn ingest_rate(store: Arc<dyn RegistryStore>, chains: &[Instrument]) -> f64 {
    for c in chains {
        store.insert_instrument(&InstrumentRow::issued(&Instrument::issued(c.genesis.clone()), None, 1)).unwrap();
    }
    let (registry_signer, issuer_signer) = signers_from_seed(&[1; 32]);
    let registry = Registry::new(
        store,
        registry_signer,
        issuer_signer,
        Arc::new(tessera_core::SystemClock),
        Arc::new(TestPaymentProvider),
    );
    let caller = LocalSigner::from_seed(&[3; 32]).public_key();
    let started = Instant::now();
    let registered = registry.ingest(&caller, chains).unwrap();
    let rate = chains.len() as f64 / started.elapsed().as_secs_f64();
    assert_eq!(registered, chains.len(), "every chain registered");
    rate
}

fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20_000);
    let (chains, _issuer) = chains(n);
    let baseline = batch_verify_rate(&chains, false);
    let both = batch_verify_rate(&chains, true);
    println!("reconciliation ingest, {n} chains (1 endorsement each), batches of {BATCH}");
    println!("load average before the run: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!("{:<44} {:>14} {:>10}", "path", "endorsements/s", "vs batch");
    println!("{:<44} {:>14.0} {:>10.2}", "batch signature verification, link", baseline, 1.0);
    println!("{:<44} {:>14.0} {:>10.2}", "batch signature verification, genesis + link", both, both / baseline);
    let verifier = verifier_rate(&chains, false);
    println!("{:<44} {:>14.0} {:>10.2}", "core Verifier::verify_batch", verifier, verifier / baseline);
    let verifier = verifier_rate(&chains, true);
    println!("{:<44} {:>14.0} {:>10.2}", "core verify_batch_from (genesis stored)", verifier, verifier / baseline);
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn RegistryStore> = Arc::new(SqliteRegistry::open(dir.path().join("bench.db")).unwrap());
    let rate = ingest_rate(sqlite, &chains);
    println!("{:<44} {:>14.0} {:>10.2}", "ingest, SQLite (WAL)", rate, rate / baseline);
    if let Ok(url) = std::env::var("TESSERA_BENCH_POSTGRES_URL") {
        let schema = format!("bench_{}", std::process::id());
        let pg: Arc<dyn RegistryStore> = Arc::new(PostgresRegistry::open_in_schema(&url, &schema).unwrap());
        let rate = ingest_rate(pg, &chains);
        println!("{:<44} {:>14.0} {:>10.2}", "ingest, PostgreSQL", rate, rate / baseline);
    } else {
        println!("(set TESSERA_BENCH_POSTGRES_URL to measure PostgreSQL)");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after the run: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
}
