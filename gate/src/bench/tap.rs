//! Tap-to-decision over a modelled NFC link, bytes on the air against the
//! cryptographic minimum, and the gate's decision CPU against the raw
//! signature checks of the same run.
//!
//! Link model (ISO 14443-A): 106 kbit/s is ≈ 85 µs per byte with parity and
//! framing, 424 kbit/s a quarter of that, plus 10 ms turnaround per APDU
//! (phone HCE dispatch and reader firmware). CPU is measured, not modelled:
//! both state machines (the wallet as a card, `WalletCard`, and the gate,
//! `GateExamination` + `decide`) run in this process over an in-memory
//! SQLite wallet. Tap-to-decision counts every APDU up to the one whose
//! answer the gate decides on; the CONFIRM that carries the certificate
//! back comes after.

use rand::rngs::OsRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::bench::{
    BenchContext, BenchError, Figure, Quantity, Scale, Target, Unit, ensure, median, percentile,
};
use tessera_core::presentation::on_air::{CertificateOnAir, PresentationOnAir};
use tessera_core::presentation::{
    ChallengeBody, ExaminationBody, GateContext, GateEvent, GateExamination, GatePolicy, Instruction, Outcome,
    Presentation, PriorUse, ReentryPolicy, WalletCard, decide,
};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::{
    Attributes, Clock, DenyList, ExchangeId, Instrument, InstrumentId, LocalSigner, ManualClock, Role, Signed, Signer,
    TicketAttributes, TrustEntry, TrustList, Verifier, Wallet, Wire,
};

const T0: u64 = 1_800_000_000;
const TURNAROUND: Duration = Duration::from_millis(10);
const BYTE_106: Duration = Duration::from_micros(85);
/// Fewest APDUs a decision can take: SELECT, then the challenge whose
/// answer carries the presentation.
const MIN_APDUS: u32 = 2;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Taps per case.
    pub taps: usize,
    /// Paired rounds (decisions against raw checks) per case.
    pub rounds: usize,
}

impl Params {
    /// Full: 200 taps and 1,001 paired rounds per case; quick: 30 and 101.
    pub fn for_scale(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self { taps: 200, rounds: 1001 },
            Scale::Quick => Self { taps: 30, rounds: 101 },
        }
    }
}

/// One case's measurements, for the figures and the bench binary's
/// message-size table.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// "registered ticket" or "3-hop chain".
    pub case: &'static str,
    /// The case's figures.
    pub figures: Vec<Figure>,
    /// The presentation in full (as signed and stored) and on the air, bytes.
    pub presentation_full_air: (usize, usize),
    /// The certificate in full and on the air, bytes.
    pub certificate_full_air: (usize, usize),
}

struct Setup {
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    gate: LocalSigner,
    trust: TrustList,
    trust_bytes: Vec<u8>,
}

fn setup() -> Result<Setup, BenchError> {
    let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
    let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
    let gate = LocalSigner::generate(&mut OsRng);
    let entries = vec![
        TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "Arena".into(), not_after: T0 + 99_999 },
        TrustEntry { key: gate.public_key(), role: Role::Gate, name: "North 1".into(), not_after: T0 + 99_999 },
    ];
    let signed = registry.trust_list(1, entries, T0).bench("signing the trust list")?;
    let trust = TrustList::verify(signed.clone(), &registry.public_key()).bench("verifying the trust list")?;
    Ok(Setup { clock: Arc::new(ManualClock::new(T0)), registry, issuer, gate, trust, trust_bytes: signed.to_bytes() })
}

fn wallet(s: &Setup) -> Result<Wallet<SqliteStore>, BenchError> {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([9; 32]));
    let store = SqliteStore::in_memory().bench("opening an in-memory store")?;
    let mut w = Wallet::create(store, &keys, s.clock.clone()).bench("creating a wallet")?;
    w.pin_registry(s.registry.public_key()).bench("pinning the registry")?;
    w.install_trust_list(&s.trust_bytes).bench("installing the trust list")?;
    Ok(w)
}

fn attributes() -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: "final-2026".into(),
        title: "Cup Final".into(),
        zone: "north".into(),
        seat: Some("R12 S7".into()),
        guidance: Some("lift at door 2".into()),
        valid_from: T0 - 3600,
        valid_until: T0 + 3600,
        transferable: true,
        // A season pass, so every tap of the run admits with the same work.
        uses: u16::MAX,
        face_price: None,
    })
}

/// A wallet holding a registered ticket (`hops` = 0) or a chain of `hops` links.
fn card(s: &Setup, hops: usize) -> Result<WalletCard<SqliteStore>, BenchError> {
    let mut holders = (0..=hops).map(|_| wallet(s)).collect::<Result<Vec<_>, _>>()?;
    let key = holders[0].new_holder_key().bench("making a holder key")?;
    let mut instrument = s.issuer.issue(attributes(), key, T0 - 3600, &mut OsRng).bench("issuing")?;
    if hops == 0 {
        let verified = Verifier::new(&s.trust, &DenyList::empty()).verify(&instrument, T0).bench("verifying")?;
        instrument = s.registry.register(&instrument, &verified, verified.state, T0).bench("registering")?;
    }
    let id = holders[0].import_instrument(instrument).bench("importing")?.id;
    for hop in 0..hops {
        let to = holders[hop + 1].new_holder_key().bench("making a holder key")?;
        let offer = ExchangeId::random(&mut OsRng);
        let moved = holders[hop].endorse(&id, to, offer, offer).bench("endorsing")?;
        holders[hop + 1].import_instrument(moved).bench("importing the endorsed ticket")?;
    }
    Ok(WalletCard::new(holders.pop().bench("no holder")?))
}

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: "final-2026".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    }
}

struct Tap {
    apdus: usize,
    bytes: usize,
    cpu: Duration,
}

struct Run {
    taps: Vec<Tap>,
    /// Bytes of the whole first exchange, confirmation included.
    total_bytes: usize,
    presentation: Presentation,
    certificate: Signed<ExaminationBody>,
    challenge: Signed<ChallengeBody>,
}

fn run(s: &Setup, hops: usize, taps: usize) -> Result<Run, BenchError> {
    let mut card = card(s, hops)?;
    let deny = DenyList::empty();
    // The used set holds other instruments; each tap's ticket is a season pass.
    let ledger: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
    let mut out = Vec::with_capacity(taps);
    let mut total_bytes = 0;
    let mut first = None;
    for tap in 0..taps.max(1) {
        let nonce = ExchangeId::random(&mut OsRng);
        let mut exam = GateExamination::start(&s.gate, policy(), nonce, tap as u64 + 1, s.clock.now())
            .bench("starting an examination")?;
        let (mut apdus, mut bytes, mut cpu) = (0usize, 0usize, Duration::ZERO);
        let mut decided = false;
        while let Some(command) = exam.next_command() {
            let started = Instant::now();
            let answer = card.process_apdu(&command);
            let ctx = GateContext { verifier: Verifier::new(&s.trust, &deny), ledger: &ledger, now: s.clock.now() };
            let event = exam.on_response(&answer, &s.gate, &ctx).bench("the gate's examination")?;
            let spent = started.elapsed();
            if tap == 0 {
                total_bytes += command.len() + answer.len();
            }
            if !decided {
                apdus += 1;
                bytes += command.len() + answer.len();
                cpu += spent;
            }
            match event {
                GateEvent::Decided(e) => {
                    decided = true;
                    ensure(e.outcome == Outcome::Admitted, || format!("tap {tap}: {:?}, not admitted", e.outcome))?;
                    out.push(Tap { apdus, bytes, cpu });
                    if first.is_none() {
                        first = Some((e.presentation.clone(), e.certificate.clone(), exam.challenge().clone()));
                    }
                }
                GateEvent::Finished => break,
                GateEvent::Continue => {}
            }
        }
        ensure(decided, || format!("tap {tap} ended without a decision"))?;
    }
    let (presentation, certificate, challenge) = first.bench("no tap was decided")?;
    Ok(Run { taps: out, total_bytes, presentation, certificate, challenge })
}

/// Every signature the decision depends on, checked directly.
fn raw_checks(trust: &TrustList, p: &Presentation) -> bool {
    let i = &p.instrument;
    let mut ok = i.genesis.verify(&i.genesis.body.issuer).is_ok();
    let mut holder = i.genesis.body.holder;
    if let Some(cert) = &i.registered {
        ok &= cert.verify(&trust.registry()).is_ok();
        holder = cert.body.holder;
    }
    for link in &i.links {
        ok &= link.verify(&holder).is_ok();
        holder = link.body.new_holder;
    }
    ok & p.answer.verify(&holder).is_ok()
}

const SIG: usize = 64;
const KEY: usize = 32;
const ID: usize = 16;
/// The certificate that comes back after the decision: gate key, id, signature.
const CERTIFICATE_MINIMUM: usize = KEY + ID + SIG;

/// Signatures, keys and ids that must cross the air: the challenge (gate
/// key, nonce, signature), the instrument (ids, keys and signatures of its
/// genesis, certificate and links), the answer (id, signature) and the
/// certificate (gate key, id, signature).
pub fn minimum(i: &Instrument) -> usize {
    let challenge = KEY + ID + SIG;
    let genesis = ID + KEY + KEY + SIG;
    let registered = i.registered.as_ref().map_or(0, |_| ID + KEY + SIG);
    let links = i.links.len() * (ID + KEY + ID + ID + SIG);
    let answer = ID + SIG;
    challenge + genesis + registered + links + answer + CERTIFICATE_MINIMUM
}

/// Decision CPU against the raw signature checks, paired: rounds alternate
/// four decisions and four sets of raw checks on the same presentation;
/// returns the median round's times per presentation and the median of the
/// per-round ratios (robust to a loaded machine).
fn paired(s: &Setup, r: &Run, rounds: usize) -> Result<(Duration, Duration, f64), BenchError> {
    let deny = DenyList::empty();
    let ledger: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
    let ctx = GateContext { verifier: Verifier::new(&s.trust, &deny), ledger: &ledger, now: T0 };
    let verdict = decide(&policy(), &r.challenge, &r.presentation, &ctx);
    ensure(verdict.0 == Outcome::Admitted, || format!("the paired decision is {:?}", verdict.0))?;
    ensure(raw_checks(&s.trust, &r.presentation), || "a raw signature check failed".to_owned())?;
    let (mut ratios, mut decided, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        for _ in 0..4 {
            std::hint::black_box(decide(&policy(), &r.challenge, std::hint::black_box(&r.presentation), &ctx));
        }
        let d = started.elapsed();
        let started = Instant::now();
        for _ in 0..4 {
            std::hint::black_box(raw_checks(&s.trust, std::hint::black_box(&r.presentation)));
        }
        let c = started.elapsed();
        ratios.push(d.as_secs_f64() / c.as_secs_f64().max(f64::MIN_POSITIVE));
        decided.push(d / 4);
        raw.push(c / 4);
    }
    decided.sort();
    raw.sort();
    Ok((percentile(&decided, 0.5), percentile(&raw, 0.5), median(ratios)))
}

/// Measures both cases: a registered ticket and a 3-hop chain.
pub fn measure(params: Params) -> Result<Vec<CaseReport>, BenchError> {
    let s = setup()?;
    let mut reports = Vec::new();
    for (case, hops, target_ms) in [("registered ticket", 0usize, 120.0), ("3-hop chain", 3, 200.0)] {
        let r = run(&s, hops, params.taps)?;
        let (decide_cpu, raw_cpu, ratio) = paired(&s, &r, params.rounds)?;
        let min = minimum(&r.presentation.instrument);
        let min_to_decision = min - CERTIFICATE_MINIMUM;
        let (apdus, bytes) = (r.taps[0].apdus, r.taps[0].bytes);
        let modelled = |byte: Duration| -> Vec<Duration> {
            let mut v: Vec<Duration> =
                r.taps.iter().map(|t| TURNAROUND * (t.apdus as u32) + byte * (t.bytes as u32) + t.cpu).collect();
            v.sort();
            v
        };
        let floor = |byte: Duration| Quantity::millis(TURNAROUND * MIN_APDUS + byte * (min_to_decision as u32));
        let n = r.taps.len();
        let mut figures = vec![
            Figure::new(format!("gate decision CPU per presentation, {case}"), Quantity::millis(decide_cpu))
                .against("raw Ed25519 checks", Quantity::millis(raw_cpu))
                .with_ratio(ratio)
                .target(Target::ratio_at_most(1.2))
                .note(format!("paired median of {} rounds", params.rounds.max(1))),
        ];
        for (rate, byte) in [("106", BYTE_106), ("424", BYTE_106 / 4)] {
            let taps = modelled(byte);
            figures.push(
                Figure::new(
                    format!("tap-to-decision p99 @{rate} kbit/s, {case}"),
                    Quantity::millis(percentile(&taps, 0.99)),
                )
                .against(format!("link floor: {MIN_APDUS} APDUs + minimum bytes"), floor(byte))
                .target(Target::at_most(target_ms, Unit::Millis))
                .note(format!(
                    "{n} taps, p50 {:.1} ms, {apdus} APDUs and {bytes} B to decision",
                    percentile(&taps, 0.5).as_secs_f64() * 1e3
                )),
            );
        }
        figures.push(
            Figure::new(format!("bytes on air, whole tap, {case}"), Quantity::bytes(r.total_bytes))
                .against("minimum: signatures + keys + ids", Quantity::bytes(min))
                .target(Target::ratio_at_most(1.3)),
        );
        reports.push(CaseReport {
            case,
            figures,
            presentation_full_air: (
                r.presentation.to_bytes().len(),
                PresentationOnAir::from_presentation(&r.presentation).to_bytes().len(),
            ),
            certificate_full_air: (
                r.certificate.to_bytes().len(),
                CertificateOnAir::from_certificate(&r.certificate).to_bytes().len(),
            ),
        });
    }
    Ok(reports)
}
