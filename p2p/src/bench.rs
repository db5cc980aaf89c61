//! Offer → receipt latency over an established loopback connection, with
//! the signature work of one transfer and the engine alone (no network)
//! measured in the same run as baselines. Shared by `tessera bench` and
//! this crate's `cargo bench --bench transfer`.
//!
//! Each transfer is a gift of one freshly issued ticket from wallet A to
//! wallet B, each wallet in its own SQLite file, over one established
//! libp2p connection on 127.0.0.1, the receiver accepting at once. Latency
//! is from [`NodeHandle::offer`](crate::NodeHandle::offer) to the sender's
//! `Completed` event (the receipt is in and stored); the first transfer,
//! which opens the connection, is not counted.

use crate::loopback::wait_for_uri;
use crate::{NodeConfig, NodeEvent, spawn};
use rand::rngs::OsRng;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::bench::{BenchContext, BenchError, Figure, Quantity, Scale, ScratchDir, Target, Unit, percentile};
use tessera_core::crypto::{Context, LocalSigner, Signer};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::transfer::{OfferTerms, Role};
use tessera_core::{
    Attributes, Clock, InstrumentId, ManualClock, TicketAttributes, TrustEntry, Wallet, Wire, trust::Role as TrustRole,
};

const T0: u64 = 1_800_000_000;
const TARGET_MEDIAN_MS: f64 = 5.0;

/// Signature work per gift of one freshly issued ticket. Signatures: the
/// offer (account and holder), the acceptance, the endorsement, the
/// certificate and the receipt, so 6. Verifications: the sender's check of
/// its own item (genesis), the offer's two signatures, the genesis at the
/// offer check, the acceptance, the certificate, the chain with its new link
/// (genesis and endorsement), the receipt, so 9.
pub const SIGNS_PER_TRANSFER: u32 = 6;
/// See [`SIGNS_PER_TRANSFER`].
pub const VERIFIES_PER_TRANSFER: u32 = 9;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Gifts timed over loopback (and in-process for the engine baseline).
    pub transfers: usize,
}

impl Params {
    /// Full: 200 gifts; quick: 20.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self { transfers: 200 },
            Scale::Quick => Self { transfers: 20 },
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// One Ed25519 signature.
    pub sign: Duration,
    /// One Ed25519 verification.
    pub verify: Duration,
    /// Both wallets driven in-process, sorted.
    pub engine: Vec<Duration>,
    /// Over loopback, sorted.
    pub loopback: Vec<Duration>,
    /// Wall time of the whole loopback run.
    pub loopback_total: Duration,
}

impl Measured {
    /// The signature work of one transfer.
    pub fn signature_work(&self) -> Duration {
        self.sign * SIGNS_PER_TRANSFER + self.verify * VERIFIES_PER_TRANSFER
    }

    /// The figures: loopback median (the target) and the engine alone, both
    /// against the signature work.
    pub fn figures(&self) -> Vec<Figure> {
        let work = Quantity::millis(self.signature_work());
        let label = format!("signature work ({SIGNS_PER_TRANSFER} sign + {VERIFIES_PER_TRANSFER} verify)");
        let n = self.loopback.len();
        vec![
            Figure::new(
                "transfer offer → receipt over loopback libp2p, median",
                Quantity::millis(percentile(&self.loopback, 0.5)),
            )
            .against(label.clone(), work)
            .target(Target::at_most(TARGET_MEDIAN_MS, Unit::Millis))
            .note(format!(
                "{n} gifts, p99 {:.2} ms, {:.0} transfers/s",
                percentile(&self.loopback, 0.99).as_secs_f64() * 1e3,
                n as f64 / self.loopback_total.as_secs_f64().max(f64::MIN_POSITIVE)
            )),
            Figure::new(
                "transfer, engine only (both wallets in-process), median",
                Quantity::millis(percentile(&self.engine, 0.5)),
            )
            .against(label, work),
        ]
    }
}

struct World {
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    clock: Arc<ManualClock>,
    trust_list: Vec<u8>,
}

impl World {
    fn new() -> Result<Self, BenchError> {
        let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
        let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
        let entries = vec![TrustEntry {
            key: issuer.public_key(),
            role: TrustRole::Issuer,
            name: "Issuer".into(),
            not_after: T0 + 10_000_000,
        }];
        let trust_list = registry.trust_list(1, entries, T0).bench("signing the trust list")?.to_bytes();
        Ok(Self { registry, issuer, clock: Arc::new(ManualClock::new(T0)), trust_list })
    }

    fn wallet(&self, path: &Path) -> Result<Wallet, BenchError> {
        let provider = StaticKeyProvider::new(StorageKey::generate(&mut OsRng));
        let clock: Arc<dyn Clock> = self.clock.clone();
        let mut wallet = Wallet::create_at(path, &provider, clock).bench("creating a wallet")?;
        wallet.pin_registry(self.registry.public_key()).bench("pinning the registry")?;
        wallet.install_trust_list(&self.trust_list).bench("installing the trust list")?;
        Ok(wallet)
    }

    fn tickets(&self, wallet: &mut Wallet, n: usize) -> Result<Vec<InstrumentId>, BenchError> {
        (0..n)
            .map(|i| {
                let holder = wallet.new_holder_key().bench("making a holder key")?;
                let attributes = Attributes::Ticket(TicketAttributes {
                    event_id: "final".into(),
                    title: "Cup final".into(),
                    zone: "B".into(),
                    seat: Some(i.to_string()),
                    guidance: None,
                    valid_from: T0 - 1000,
                    valid_until: T0 + 1_000_000,
                    transferable: true,
                    uses: 1,
                    face_price: None,
                });
                let instrument =
                    self.issuer.issue(attributes, holder, self.clock.now(), &mut OsRng).bench("issuing a ticket")?;
                Ok(wallet.import_instrument(instrument).bench("importing a ticket")?.id)
            })
            .collect()
    }
}

fn signature_costs() -> Result<(Duration, Duration), BenchError> {
    let signer = LocalSigner::generate(&mut OsRng);
    let message = [7u8; 200];
    let n = 2000;
    let mut sig = signer.sign(Context::Endorsement, &message).bench("signing")?;
    let start = Instant::now();
    for _ in 0..n {
        sig = signer.sign(Context::Endorsement, std::hint::black_box(&message)).bench("signing")?;
    }
    let sign = start.elapsed() / n;
    let public = signer.public_key();
    let start = Instant::now();
    for _ in 0..n {
        public.verify(Context::Endorsement, std::hint::black_box(&message), &sig).bench("verifying")?;
    }
    Ok((sign, start.elapsed() / n))
}

fn engine_only(dir: &Path, n: usize) -> Result<Vec<Duration>, BenchError> {
    let world = World::new()?;
    let mut a = world.wallet(&dir.join("engine-a.sqlite"))?;
    let mut b = world.wallet(&dir.join("engine-b.sqlite"))?;
    let tickets = world.tickets(&mut a, n)?;
    let mut out = Vec::with_capacity(n);
    let step = |s: tessera_core::transfer::Step, what: &str| s.send.bench(&format!("{what}: nothing to send"));
    for t in tickets {
        let start = Instant::now();
        let (id, offer) = a.offer_transfer(&[t], OfferTerms::Gift, world.clock.now() + 600).bench("offering")?;
        b.handle_transfer(&step(offer, "offer")?).bench("receiving the offer")?;
        let acceptance = step(b.accept_offer(id).bench("accepting")?, "acceptance")?;
        let certificate = step(a.handle_transfer(&acceptance).bench("receiving the acceptance")?, "certificate")?;
        let receipt = step(b.handle_transfer(&certificate).bench("receiving the certificate")?, "receipt")?;
        a.handle_transfer(&receipt).bench("receiving the receipt")?;
        out.push(start.elapsed());
    }
    out.sort();
    Ok(out)
}

async fn over_loopback(dir: &Path, n: usize) -> Result<(Vec<Duration>, Duration), BenchError> {
    let world = World::new()?;
    let mut a = world.wallet(&dir.join("net-a.sqlite"))?;
    let b = world.wallet(&dir.join("net-b.sqlite"))?;
    // One more than counted: the first transfer also establishes the connection.
    let tickets = world.tickets(&mut a, n + 1)?;
    let (na, mut ea) = spawn(a, NodeConfig::loopback()).await.bench("starting node A")?;
    let (nb, mut eb) = spawn(b, NodeConfig::loopback()).await.bench("starting node B")?;
    na.dial(wait_for_uri(&nb).await.bench("node B's address")?).await.bench("dialling node B")?;
    // The receiver's user says yes at once.
    let acceptor = nb.clone();
    let accepting = tokio::spawn(async move {
        while let Some(event) = eb.next_event().await {
            if let NodeEvent::OfferReceived { offer, .. } = event {
                acceptor.accept(offer.offer_id).await.bench("accepting")?;
            }
        }
        Ok::<(), BenchError>(())
    });
    let mut latencies = Vec::with_capacity(n);
    let total = Instant::now();
    let mut counted_from = total;
    for (i, t) in tickets.into_iter().enumerate() {
        let start = Instant::now();
        if i == 1 {
            counted_from = start;
        }
        let exchange = na.offer(nb.peer_id(), vec![t], OfferTerms::Gift, 600).await.bench("offering")?;
        loop {
            match ea.next_event().await {
                Some(NodeEvent::Completed { exchange: e, role: Role::Sender, .. }) if e == exchange => break,
                Some(NodeEvent::Failed { reason, .. }) => return Err(BenchError(format!("transfer failed: {reason}"))),
                Some(_) => {}
                None => return Err(BenchError("node A stopped".into())),
            }
        }
        if i > 0 {
            latencies.push(start.elapsed());
        }
    }
    let elapsed = counted_from.elapsed();
    accepting.abort();
    latencies.sort();
    Ok((latencies, elapsed))
}

/// Measures the signature costs, the engine alone and the loopback run.
/// Runs its own two-thread runtime: call it outside any async context.
pub fn measure(params: Params) -> Result<Measured, BenchError> {
    let n = params.transfers.max(1);
    let dir = ScratchDir::new("transfer")?;
    let (sign, verify) = signature_costs()?;
    let engine = engine_only(dir.path(), n)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .bench("starting the runtime")?;
    let (loopback, loopback_total) = runtime.block_on(over_loopback(dir.path(), n))?;
    Ok(Measured { sign, verify, engine, loopback, loopback_total })
}
