//! Tap-to-decision over a modelled NFC link, bytes on the air against the
//! cryptographic minimum, and the gate's decision CPU against the raw
//! signature checks of the same run. Prints a Markdown table.
//!
//! Link model (ISO 14443-A): 106 kbit/s is ≈ 85 µs per byte with parity and
//! framing, 424 kbit/s a quarter of that, plus 10 ms turnaround per APDU
//! (phone HCE dispatch and reader firmware). CPU is measured, not modelled:
//! both state machines run in this process.
//!
//! `cargo bench -p tessera-gate --bench tap`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use rand::rngs::OsRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::on_air::{CertificateOnAir, PresentationOnAir};
use tessera_core::presentation::{
    GateContext, GateEvent, GateExamination, GatePolicy, Instruction, Presentation, PriorUse, ReentryPolicy,
    WalletCard, decide,
};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::{
    Attributes, Clock, Context, DenyList, ExchangeId, Instrument, InstrumentId, LocalSigner, ManualClock, Role, Signer,
    TicketAttributes, TrustEntry, TrustList, Verifier, Wallet, Wire,
};

const T0: u64 = 1_800_000_000;
const TAPS: usize = 200;
const TURNAROUND: Duration = Duration::from_millis(10);
const BYTE_106: Duration = Duration::from_micros(85);

struct Setup {
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    gate: LocalSigner,
    trust: TrustList,
    trust_bytes: Vec<u8>,
}

fn setup() -> Setup {
    let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
    let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
    let gate = LocalSigner::generate(&mut OsRng);
    let entries = vec![
        TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "Arena".into(), not_after: T0 + 99_999 },
        TrustEntry { key: gate.public_key(), role: Role::Gate, name: "North 1".into(), not_after: T0 + 99_999 },
    ];
    let signed = registry.trust_list(1, entries, T0).unwrap();
    let trust = TrustList::verify(signed.clone(), &registry.public_key()).unwrap();
    Setup { clock: Arc::new(ManualClock::new(T0)), registry, issuer, gate, trust, trust_bytes: signed.to_bytes() }
}

fn wallet(s: &Setup) -> Wallet<SqliteStore> {
    let keys = StaticKeyProvider::new(StorageKey::from_bytes([9; 32]));
    let mut w = Wallet::create(SqliteStore::in_memory().unwrap(), &keys, s.clock.clone()).unwrap();
    w.pin_registry(s.registry.public_key()).unwrap();
    w.install_trust_list(&s.trust_bytes).unwrap();
    w
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
fn card(s: &Setup, hops: usize) -> (WalletCard<SqliteStore>, InstrumentId) {
    let mut holders: Vec<Wallet<SqliteStore>> = (0..=hops).map(|_| wallet(s)).collect();
    let key = holders[0].new_holder_key().unwrap();
    let mut instrument = s.issuer.issue(attributes(), key, T0 - 3600, &mut OsRng).unwrap();
    if hops == 0 {
        let verified = Verifier::new(&s.trust, &DenyList::empty()).verify(&instrument, T0).unwrap();
        instrument = s.registry.register(&instrument, &verified, verified.state, T0).unwrap();
    }
    let id = holders[0].import_instrument(instrument).unwrap().id;
    for hop in 0..hops {
        let to = holders[hop + 1].new_holder_key().unwrap();
        let offer = ExchangeId::random(&mut OsRng);
        let moved = holders[hop].endorse(&id, to, offer, offer).unwrap();
        holders[hop + 1].import_instrument(moved).unwrap();
    }
    (WalletCard::new(holders.pop().unwrap()), id)
}

#[derive(Default)]
struct Run {
    /// Per tap: (APDU count to the decision, bytes to the decision, CPU to the decision).
    to_decision: Vec<(usize, usize, Duration)>,
    /// Bytes of the whole first exchange, confirmation included.
    total_bytes: usize,
    decide_cpu: Duration,
    raw_cpu: Duration,
    presentation: Option<Presentation>,
    certificate: Option<tessera_core::Signed<tessera_core::presentation::ExaminationBody>>,
    challenge: Option<tessera_core::Signed<tessera_core::presentation::ChallengeBody>>,
}

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: "final-2026".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    }
}

fn run(s: &Setup, hops: usize) -> Run {
    let (mut card, _) = card(s, hops);
    let deny = DenyList::empty();
    // The used set holds other instruments; each tap's ticket is a season pass.
    let ledger: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
    let mut out = Run::default();
    for tap in 0..TAPS {
        let nonce = ExchangeId::random(&mut OsRng);
        let mut exam = GateExamination::start(&s.gate, policy(), nonce, tap as u64 + 1, s.clock.now()).unwrap();
        let (mut apdus, mut bytes, mut cpu) = (0usize, 0usize, Duration::ZERO);
        let mut decided = false;
        while let Some(command) = exam.next_command() {
            let started = Instant::now();
            let answer = card.process_apdu(&command);
            let ctx = GateContext { verifier: Verifier::new(&s.trust, &deny), ledger: &ledger, now: s.clock.now() };
            let event = exam.on_response(&answer, &s.gate, &ctx).unwrap();
            let spent = started.elapsed();
            if tap == 0 {
                out.total_bytes += command.len() + answer.len();
            }
            if !decided {
                apdus += 1;
                bytes += command.len() + answer.len();
                cpu += spent;
            }
            match event {
                GateEvent::Decided(e) => {
                    decided = true;
                    out.to_decision.push((apdus, bytes, cpu));
                    if out.presentation.is_none() {
                        out.presentation = Some(e.presentation.clone());
                        out.certificate = Some(e.certificate.clone());
                        out.challenge = Some(exam.challenge().clone());
                    }
                    // The decision alone, and the raw checks of the same signatures.
                    let started = Instant::now();
                    let verdict = decide(&policy(), exam.challenge(), &e.presentation, &ctx);
                    out.decide_cpu += started.elapsed();
                    assert_eq!(verdict.0, tessera_core::presentation::Outcome::Admitted);
                    let started = Instant::now();
                    raw_checks(&s.trust, &e.presentation);
                    out.raw_cpu += started.elapsed();
                }
                GateEvent::Finished => break,
                GateEvent::Continue => {}
            }
        }
        assert!(decided);
    }
    out
}

/// Every signature the decision depends on, checked directly.
fn raw_checks(trust: &TrustList, p: &Presentation) {
    let i = &p.instrument;
    assert!(i.genesis.verify(&i.genesis.body.issuer).is_ok());
    let mut holder = i.genesis.body.holder;
    if let Some(cert) = &i.registered {
        assert!(cert.verify(&trust.registry()).is_ok());
        holder = cert.body.holder;
    }
    for link in &i.links {
        assert!(link.verify(&holder).is_ok());
        holder = link.body.new_holder;
    }
    assert!(p.answer.verify(&holder).is_ok());
}

/// Signatures, keys and ids that must cross the air: the challenge (gate
/// key, nonce, signature), the instrument (ids, keys and signatures of its
/// genesis, certificate and links), the answer (id, signature) and the
/// certificate (gate key, id, signature).
fn minimum(i: &Instrument) -> usize {
    let (sig, key, id) = (64, 32, 16);
    let challenge = key + id + sig;
    let genesis = id + key + key + sig;
    let registered = i.registered.as_ref().map_or(0, |_| id + key + sig);
    let links = i.links.len() * (id + key + id + id + sig);
    let answer = id + sig;
    let certificate = key + id + sig;
    challenge + genesis + registered + links + answer + certificate
}

/// Decision CPU against the raw signature checks, paired: rounds alternate
/// one decision and one set of raw checks on the same presentation, and the
/// median of the per-round ratios is reported (robust to a loaded machine).
fn paired_ratio(s: &Setup, r: &Run) -> f64 {
    let (p, challenge) = (r.presentation.as_ref().unwrap(), r.challenge.as_ref().unwrap());
    let deny = DenyList::empty();
    let ledger: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
    let ctx = GateContext { verifier: Verifier::new(&s.trust, &deny), ledger: &ledger, now: T0 };
    let mut ratios = Vec::with_capacity(1001);
    for _ in 0..1001 {
        let started = Instant::now();
        for _ in 0..4 {
            std::hint::black_box(decide(&policy(), challenge, p, &ctx));
        }
        let decided = started.elapsed();
        let started = Instant::now();
        for _ in 0..4 {
            raw_checks(&s.trust, std::hint::black_box(p));
        }
        let raw = started.elapsed();
        ratios.push(decided.as_secs_f64() / raw.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let s = setup();
    // Sanity: the gate key is certified and signing works.
    assert!(s.gate.sign(Context::GateChallenge, b"x").is_ok());
    println!("### NFC presentation (tessera-gate bench `tap`, {TAPS} taps per case)\n");
    println!("Link model: 85 µs/byte at 106 kbit/s, 21 µs/byte at 424 kbit/s, 10 ms turnaround per APDU;");
    println!("CPU measured in process (wallet card + gate state machines, in-memory SQLite).\n");
    println!(
        "| case | APDUs to decision | bytes on air to decision | minimum (sigs+keys+ids) | ratio | CPU p50 | tap-to-decision p50 @106 | p99 @106 | p50 @424 | decide CPU / raw sig checks |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut forms = Vec::new();
    for (name, hops) in [("registered ticket", 0usize), ("3-hop chain", 3)] {
        let r = run(&s, hops);
        let (p, c) = (r.presentation.as_ref().unwrap(), r.certificate.as_ref().unwrap());
        forms.push((
            name,
            p.to_bytes().len(),
            PresentationOnAir::from_presentation(p).to_bytes().len(),
            c.to_bytes().len(),
            CertificateOnAir::from_certificate(c).to_bytes().len(),
        ));
        let p = r.presentation.as_ref().unwrap();
        let (apdus, bytes, _) = r.to_decision[0];
        // The confirmation adds a round trip after the decision; bytes on the
        // air below count the whole exchange for the ratio.
        let full = r.total_bytes;
        let min = minimum(&p.instrument);
        let modelled = |byte: Duration| -> Vec<Duration> {
            r.to_decision.iter().map(|(n, b, cpu)| TURNAROUND * (*n as u32) + byte * (*b as u32) + *cpu).collect()
        };
        let cpu: Vec<Duration> = r.to_decision.iter().map(|t| t.2).collect();
        let at106 = modelled(BYTE_106);
        let at424 = modelled(BYTE_106 / 4);
        println!(
            "| {name} | {apdus} (+1 confirm) | {bytes} ({full} with confirm) | {min} | {:.2}× | {:.2} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
            full as f64 / min as f64,
            percentile(cpu, 0.5).as_secs_f64() * 1e3,
            percentile(at106.clone(), 0.5).as_secs_f64() * 1e3,
            percentile(at106, 0.99).as_secs_f64() * 1e3,
            percentile(at424, 0.5).as_secs_f64() * 1e3,
            paired_ratio(&s, &r),
        );
        let _ = (r.decide_cpu, r.raw_cpu);
    }
    println!("\nThe same run's messages in full (as signed, stored and bagged) and on the air:\n");
    println!("| case | presentation full → on air | certificate full → on air | both: on air / full |");
    println!("|---|---|---|---|");
    for (name, p_full, p_air, c_full, c_air) in forms {
        println!(
            "| {name} | {p_full} → {p_air} B | {c_full} → {c_air} B | {:.2}× |",
            (p_air + c_air) as f64 / (p_full + c_full) as f64
        );
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("\nload average: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    }
}
