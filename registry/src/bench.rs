//! Reconciliation ingest: endorsements registered per second on SQLite and
//! (given a URL) PostgreSQL, against batch Ed25519 verification of the
//! signatures ingest must check, measured in the same run as the ceiling.
//! Shared by `tessera bench` and `cargo bench -p tessera-registry --bench
//! ingest`.
//!
//! Each uploaded chain is a ticket the registry issued (its genesis is
//! stored) with one new endorsement. Ingest runs the real path,
//! [`Registry::ingest`]: the stored prefix of each chain is read, the core
//! verifier checks what is new on every core, and one store transaction per
//! batch of [`INGEST_BATCH`] chains runs on a storage thread while the next
//! batch is verified. Every chain must end registered to its uploaded tip.

use crate::embedded::signers_from_seed;
use crate::payment::TestPaymentProvider;
use crate::service::INGEST_BATCH;
use crate::store::{ChainOutcome, ChainUpdate, InstrumentRow, LinkRecord, RegistryStore};
use crate::{PostgresRegistry, Registry, SqliteRegistry};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::bench::{BenchContext, BenchError, Figure, Quantity, Scale, ScratchDir, Target, Unit, ensure};
use tessera_core::instrument::TicketAttributes;
use tessera_core::verify::VerifiedPrefix;
use tessera_core::{
    Attributes, Context, DenyList, ExchangeId, Instrument, InstrumentId, LocalSigner, Role, Signed, Signer, TrustEntry,
    TrustList, Verifier,
};

/// Ingest target on SQLite, endorsements per second.
pub const TARGET_SQLITE: f64 = 20_000.0;
/// Ingest target on PostgreSQL, endorsements per second.
pub const TARGET_POSTGRES: f64 = 30_000.0;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Uploaded chains (one endorsement each).
    pub chains: usize,
}

impl Params {
    /// Full: 60,000 chains, 60 store batches, so the rate is the one ingest
    /// keeps up (the first batch verified with nothing stored yet, and the
    /// last stored with nothing left to verify, are 1/30 of the run, not
    /// 1/10 as at 20,000); quick: 2,000.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self { chains: 60_000 },
            Scale::Quick => Self { chains: 2_000 },
        }
    }
}

const CEILING: &str = "batch Ed25519 verification of the new links";

/// Runs the measurement: the ceiling, the core verifier, ingest on SQLite
/// and, with `postgres_url`, on PostgreSQL (in a schema of its own, dropped
/// afterwards).
pub fn measure(params: Params, postgres_url: Option<&str>) -> Result<Vec<Figure>, BenchError> {
    let n = params.chains.max(1);
    let chains = chains(n)?;
    let ceiling = Quantity::per_second(n, batch_verify(&chains, false)?);
    let both = Quantity::per_second(n, batch_verify(&chains, true)?);
    let every = Quantity::per_second(n, verifier(&chains, false)?);
    let from = Quantity::per_second(n, verifier(&chains, true)?);
    let dir = ScratchDir::new("ingest")?;
    let sqlite_at = |name: &str| -> Result<Arc<dyn RegistryStore>, BenchError> {
        Ok(Arc::new(SqliteRegistry::open(dir.path().join(name)).bench("opening SQLite")?))
    };
    let sqlite_store = Quantity::per_second(n, store_alone(sqlite_at("store.db")?, &chains)?);
    let sqlite = Quantity::per_second(n, ingest(sqlite_at("ingest.db")?, &chains)?);
    let postgres = match postgres_url {
        Some(url) => {
            let run = |schema: String, f: Run| {
                let store = PostgresRegistry::open_in_schema(url, &schema).bench("opening PostgreSQL")?;
                let took = f(Arc::new(store), &chains);
                drop_schema(url, &schema);
                took.map(|d| Quantity::per_second(n, d))
            };
            let pid = std::process::id();
            Some((run(format!("bench_store_{pid}"), store_alone)?, run(format!("bench_{pid}"), ingest)?))
        }
        None => None,
    };
    let note = format!("{n} chains of one new endorsement, batches of {INGEST_BATCH}, both cores");
    let mut figures = vec![
        Figure::new(format!("{CEILING} (1 signature per endorsement)"), ceiling).note(note),
        Figure::new("batch Ed25519 verification, genesis + link (2 signatures)", both).against(CEILING, ceiling),
        Figure::new("core Verifier::verify_batch, every signature", every).against(CEILING, ceiling),
        Figure::new("core Verifier::verify_batch_from, genesis stored", from).against(CEILING, ceiling),
        Figure::new("store transactions alone, SQLite (no verification)", sqlite_store).against(CEILING, ceiling),
        Figure::new("reconciliation ingest, SQLite (WAL)", sqlite)
            .against(CEILING, ceiling)
            .target(Target::at_least(TARGET_SQLITE, Unit::PerSecond)),
    ];
    let pg_target = Target::at_least(TARGET_POSTGRES, Unit::PerSecond);
    match postgres {
        Some((store, rate)) => {
            let alone = Figure::new("store transactions alone, PostgreSQL (no verification)", store);
            figures.push(alone.against(CEILING, ceiling));
            let ingest = Figure::new("reconciliation ingest, PostgreSQL", rate);
            figures.push(ingest.against(CEILING, ceiling).target(pg_target));
        }
        None => {
            let why = "no PostgreSQL URL";
            figures.push(Figure::not_measured("reconciliation ingest, PostgreSQL", Some(pg_target), why));
        }
    }
    Ok(figures)
}

/// The key that holds ticket `i` of [`chains`] after `step` endorsements.
pub(crate) fn holder_key(i: usize, step: u8) -> LocalSigner {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    seed[31] = step + 1;
    LocalSigner::from_seed(&seed)
}

/// `n` tickets issued by the registry's issuer key, each with one link.
pub(crate) fn chains(n: usize) -> Result<Vec<Instrument>, BenchError> {
    let (_, issuer_signer) = signers_from_seed(&[1; 32]);
    let issuer = Issuer::new(issuer_signer);
    (0..n)
        .map(|i| {
            let holder = holder_key(i, 0);
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
            let t = issuer.issue_with_id(InstrumentId(id), attrs, holder.public_key(), 1).bench("issuing")?;
            let next = holder_key(i, 1).public_key();
            let body = t.next_endorsement(next, ExchangeId::NONE, ExchangeId::NONE, 2);
            Ok(t.with_link(Signed::sign(body, &holder).bench("endorsing")?))
        })
        .collect()
}

/// Bare batch Ed25519 verification, on every core, of each chain's link
/// and, with `genesis`, its genesis: the equation alone, no other check,
/// in batches the size the core verifier uses.
fn batch_verify(chains: &[Instrument], genesis: bool) -> Result<Duration, BenchError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let part = |part: &[Instrument]| -> Result<(), BenchError> {
        for batch in part.chunks(tessera_core::verify::BATCH_INSTRUMENTS) {
            let (mut messages, mut sigs, mut keys) = (Vec::new(), Vec::new(), Vec::new());
            for c in batch {
                let g = &c.genesis;
                if genesis {
                    let body = minicbor::to_vec(&g.body).bench("encoding")?;
                    messages.push(Context::Genesis.signed_bytes(&body));
                    sigs.push(ed25519_dalek::Signature::from_bytes(&g.signature.0));
                    keys.push(ed25519_dalek::VerifyingKey::from_bytes(&g.body.issuer.0).bench("issuer key")?);
                }
                let l = c.links.first().bench("a chain without a link")?;
                messages.push(Context::Endorsement.signed_bytes(&minicbor::to_vec(&l.body).bench("encoding")?));
                sigs.push(ed25519_dalek::Signature::from_bytes(&l.signature.0));
                keys.push(ed25519_dalek::VerifyingKey::from_bytes(&g.body.holder.0).bench("holder key")?);
            }
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&refs, &sigs, &keys).bench("batch verification")?;
        }
        Ok(())
    };
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> =
            chains.chunks(chains.len().div_ceil(threads).max(1)).map(|p| s.spawn(move || part(p))).collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| BenchError("a thread panicked".into()))?)
    })?;
    Ok(started.elapsed())
}

/// The core verifier over the same chains: `verify_batch` (every
/// signature), or `verify_batch_from` with each genesis known as stored,
/// as ingest calls it.
fn verifier(chains: &[Instrument], stored_genesis: bool) -> Result<Duration, BenchError> {
    let (registry_signer, issuer_signer) = signers_from_seed(&[1; 32]);
    let authority = RegistryAuthority::new(registry_signer);
    let entry =
        TrustEntry { key: issuer_signer.public_key(), role: Role::Issuer, name: "bench".into(), not_after: u64::MAX };
    let list = authority.trust_list(1, vec![entry], 0).bench("signing the trust list")?;
    let trust = TrustList::verify(list, &authority.public_key()).bench("the trust list")?;
    let deny = DenyList::empty();
    let verifier = Verifier::new(&trust, &deny);
    let known: Vec<VerifiedPrefix> = if stored_genesis {
        chains.iter().map(|c| VerifiedPrefix { genesis: Some(c.genesis.digest()), links: vec![] }).collect()
    } else {
        vec![]
    };
    let started = Instant::now();
    let verdicts = verifier.verify_batch_from(chains, &known, 3);
    let took = started.elapsed();
    ensure(verdicts.iter().all(Result::is_ok), || "a chain did not verify".into())?;
    Ok(took)
}

/// A timed run over a fresh store.
type Run = fn(Arc<dyn RegistryStore>, &[Instrument]) -> Result<Duration, BenchError>;

/// Stores every chain's genesis, as issued.
/// Four threads at once: each insert is a transaction of its own, which
/// waits for its commit; the set-up is not what is measured.
pub(crate) fn issue_all(store: &dyn RegistryStore, chains: &[Instrument]) -> Result<(), BenchError> {
    const THREADS: usize = 4;
    std::thread::scope(|scope| {
        let parts: Vec<_> = chains
            .chunks(chains.len().div_ceil(THREADS).max(1))
            .map(|part| {
                scope.spawn(move || -> Result<(), BenchError> {
                    for c in part {
                        let row = InstrumentRow::issued(&Instrument::issued(c.genesis.clone()), None, 1);
                        store.insert_instrument(&row).bench("storing a genesis")?;
                    }
                    Ok(())
                })
            })
            .collect();
        parts.into_iter().try_for_each(|p| p.join().map_err(|_| BenchError("a set-up thread panicked".into()))?)
    })
}

/// The store half of ingest alone, on one thread and without verifying:
/// per batch of the same links, the read of what is stored of each chain
/// (`stored_prefixes`) and the transaction that applies them
/// (`apply_chains`). The store's own limit.
fn store_alone(store: Arc<dyn RegistryStore>, chains: &[Instrument]) -> Result<Duration, BenchError> {
    issue_all(&*store, chains)?;
    let mut updates: Vec<ChainUpdate> = chains
        .iter()
        .map(|c| {
            let links = c.links.iter().map(|l| LinkRecord::of(l, c.genesis.body.holder)).collect();
            ChainUpdate { instrument: c.id(), links, seen: None }
        })
        .collect();
    let started = Instant::now();
    for batch in updates.chunks_mut(INGEST_BATCH) {
        let wanted: Vec<(InstrumentId, u32, u32)> = batch.iter().map(|u| (u.instrument, 1, 1)).collect();
        let prefixes = store.stored_prefixes(&wanted).bench("stored_prefixes")?;
        for (update, prefix) in batch.iter_mut().zip(prefixes) {
            update.seen = prefix.and_then(|p| p.seen);
        }
        let outcomes = store.apply_chains(batch, 3).bench("apply_chains")?;
        let all = outcomes.iter().all(|o| matches!(o, ChainOutcome::Applied { added: 1, .. }));
        ensure(all, || "a link was not registered".into())?;
    }
    Ok(started.elapsed())
}

/// [`Registry::ingest`] of every chain into `store`, where their geneses
/// were stored first, as issued.
fn ingest(store: Arc<dyn RegistryStore>, chains: &[Instrument]) -> Result<Duration, BenchError> {
    issue_all(&*store, chains)?;
    let registry = registry_over(store);
    let caller = LocalSigner::from_seed(&[3; 32]).public_key();
    let started = Instant::now();
    let registered = registry.ingest(&caller, chains).bench("ingest")?;
    let took = started.elapsed();
    ensure(registered == chains.len(), || format!("{registered} of {} chains registered", chains.len()))?;
    Ok(took)
}

/// A registry over `store` whose issuer key issued [`chains`].
pub(crate) fn registry_over(store: Arc<dyn RegistryStore>) -> Registry {
    let (registry_signer, issuer_signer) = signers_from_seed(&[1; 32]);
    Registry::new(
        store,
        registry_signer,
        issuer_signer,
        Arc::new(tessera_core::SystemClock),
        Arc::new(TestPaymentProvider),
    )
}

/// Drops the bench's schema (best effort: a leftover schema is harmless).
fn drop_schema(url: &str, schema: &str) {
    if let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}
