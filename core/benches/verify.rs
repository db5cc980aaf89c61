//! What the one verifier costs over the Ed25519 checks it cannot avoid.
//!
//! For chains of 0, 1, 3 and 8 links this measures, in the same run:
//! - `verifier`: [`Verifier::verify`] on the instrument, and
//! - `raw_ed25519`: exactly the signature checks it makes (genesis plus one
//!   per link), over the same signed bytes, done the way the verifier does
//!   them (`VerifyingKey::from_bytes` + `verify_strict`), with the signed
//!   bytes prepared beforehand.
//!
//! The difference is the verifier's own work: re-encoding each body, the
//! link digests, the trust-list look-ups and the state checks. Target: the
//! verifier costs at most 1.2× the raw checks.
//!
//! `cargo bench -p tessera-core --bench verify` first lets criterion measure
//! each function on its own, then prints a table of ratios from a paired
//! run: verifier and raw checks alternate in short batches, and the table
//! gives the median of the per-round ratios, so a neighbour's build moving
//! the machine's load does not land on one side only. Under
//! `cargo test --benches` criterion runs each function once and the paired
//! run is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use criterion::{BenchmarkId, Criterion};
use ed25519_dalek::VerifyingKey;
use std::hint::black_box;
use std::time::Instant;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::instrument::SignedBody;
use tessera_core::{
    Attributes, DenyList, ExchangeId, Instrument, LocalSigner, Role, Signed, Signer, TicketAttributes, Timestamp,
    TrustEntry, TrustList, Verifier,
};

const CHAIN_LENGTHS: [usize; 4] = [0, 1, 3, 8];
const NOW: Timestamp = 1_800_000_000;

/// One signature check as the verifier makes it, with its inputs ready.
struct RawCheck {
    key: [u8; 32],
    signed_bytes: Vec<u8>,
    signature: ed25519_dalek::Signature,
}

impl RawCheck {
    fn of<T: SignedBody>(signed: &Signed<T>, key: &tessera_core::PublicKey) -> Self {
        let body = minicbor::to_vec(&signed.body).expect("encodes");
        Self {
            key: key.0,
            signed_bytes: T::CONTEXT.signed_bytes(&body),
            signature: ed25519_dalek::Signature::from_bytes(&signed.signature.0),
        }
    }

    fn run(&self) -> bool {
        VerifyingKey::from_bytes(&self.key).is_ok_and(|k| k.verify_strict(&self.signed_bytes, &self.signature).is_ok())
    }
}

struct Fixture {
    trust: TrustList,
    deny: DenyList,
    instrument: Instrument,
    raw: Vec<RawCheck>,
}

/// A transferable ticket issued to holder 0 and endorsed `links` times.
fn fixture(links: usize) -> Fixture {
    let registry = RegistryAuthority::new(LocalSigner::from_seed(&[0xEE; 32]));
    let issuer = Issuer::new(LocalSigner::from_seed(&[0x15; 32]));
    let entries = vec![TrustEntry {
        key: issuer.public_key(),
        role: Role::Issuer,
        name: "Bench Events".into(),
        not_after: NOW + 1_000_000,
    }];
    let trust = TrustList::verify(registry.trust_list(1, entries, NOW).expect("signs"), &registry.public_key())
        .expect("trust list verifies");
    let holders: Vec<LocalSigner> = (0..=links).map(|i| LocalSigner::from_seed(&[i as u8 + 1; 32])).collect();
    let attributes = Attributes::Ticket(TicketAttributes {
        event_id: "bench-2026".into(),
        title: "Benchmark Night".into(),
        zone: "North".into(),
        seat: Some("12-7".into()),
        guidance: Some("Entrance 3, lift on the left".into()),
        valid_from: NOW - 1_000,
        valid_until: NOW + 100_000,
        transferable: true,
        uses: 1,
        face_price: None,
    });
    let mut instrument =
        issuer.issue(attributes, holders[0].public_key(), NOW - 500, &mut rand::rngs::OsRng).expect("issues");
    let mut raw = vec![RawCheck::of(&instrument.genesis, &issuer.public_key())];
    for i in 0..links {
        let body = instrument.next_endorsement(
            holders[i + 1].public_key(),
            ExchangeId([i as u8; 16]),
            ExchangeId([0x80 | i as u8; 16]),
            NOW - 400 + i as u64,
        );
        let link = Signed::sign(body, &holders[i]).expect("signs");
        raw.push(RawCheck::of(&link, &holders[i].public_key()));
        instrument = instrument.with_link(link);
    }
    Fixture { trust, deny: DenyList::empty(), instrument, raw }
}

fn bench_chains(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_chain");
    for links in CHAIN_LENGTHS {
        let f = fixture(links);
        let verifier = Verifier::new(&f.trust, &f.deny);
        // Both sides must accept, or the comparison means nothing.
        assert!(verifier.verify(&f.instrument, NOW).is_ok(), "fixture verifies");
        assert!(f.raw.iter().all(RawCheck::run), "raw checks pass");
        assert_eq!(f.raw.len(), links + 1);
        group.bench_with_input(BenchmarkId::new("verifier", links), &f.instrument, |b, instrument| {
            b.iter(|| verifier.verify(black_box(instrument), black_box(NOW)).is_ok())
        });
        group.bench_with_input(BenchmarkId::new("raw_ed25519", links), &f.raw, |b, raw| {
            b.iter(|| black_box(raw).iter().all(RawCheck::run))
        });
    }
    group.finish();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The verifier and the raw checks, measured in alternating batches so that
/// both see the same machine load; returns the median per-call cost of each
/// (ns) and the median of the per-round ratios.
fn paired(links: usize, rounds: usize) -> (f64, f64, f64) {
    let f = fixture(links);
    let verifier = Verifier::new(&f.trust, &f.deny);
    assert!(verifier.verify(&f.instrument, NOW).is_ok() && f.raw.iter().all(RawCheck::run), "both sides accept");
    let run_verifier = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(verifier.verify(black_box(&f.instrument), black_box(NOW)).is_ok());
        }
        start.elapsed().as_nanos() as u64
    };
    let run_raw = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(black_box(&f.raw).iter().all(RawCheck::run));
        }
        start.elapsed().as_nanos() as u64
    };
    // Batches of about 0.5 ms: long enough that reading the clock does not
    // count, short enough that most pairs run without being preempted (a
    // preempted batch makes an outlier ratio, which the median drops).
    let single = (run_raw(20) / 20).max(1);
    let batch = (500_000 / single).max(1) as usize;
    let (mut v_ns, mut r_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (v, r) = if round % 2 == 0 {
            let v = run_verifier(batch);
            (v, run_raw(batch))
        } else {
            let r = run_raw(batch);
            (run_verifier(batch), r)
        };
        v_ns.push(v as f64 / batch as f64);
        r_ns.push(r as f64 / batch as f64);
        ratios.push(v as f64 / r.max(1) as f64);
    }
    (median(v_ns), median(r_ns), median(ratios))
}

fn print_ratios(rounds: usize) {
    println!();
    println!("paired run: {rounds} alternating rounds of ~0.5 ms batches per chain; medians");
    println!("{:<28} {:>12} {:>14} {:>8}  target", "figure", "verifier", "raw ed25519", "ratio");
    for links in CHAIN_LENGTHS {
        let (verifier, raw, ratio) = paired(links, rounds);
        let verdict = if ratio <= 1.2 { "≤ 1.2× ok" } else { "≤ 1.2× MISSED" };
        println!(
            "{:<28} {:>9.1} µs {:>11.1} µs {:>7.3}×  {verdict}",
            format!("verify, {links} links ({} sigs)", links + 1),
            verifier / 1_000.0,
            raw / 1_000.0,
            ratio,
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_chains(&mut criterion);
    criterion.final_summary();
    // Criterion's figures above are measured one after the other; on a
    // shared machine the load moves between them, so the ratios come from a
    // paired run instead. `cargo test --benches` skips it.
    if std::env::args().any(|a| a == "--bench") {
        print_ratios(1_001);
    }
}
