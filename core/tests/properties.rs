//! Property tests of the instrument core: chains, the verifier, the codec,
//! domain separation and equivocation proofs.
//!
//! Each property names the rejection it expects, so a verifier that refuses
//! for the wrong reason fails as surely as one that accepts. Where the input
//! space is small enough (every bit of a structure's encoding) the test is
//! exhaustive rather than sampled.
//!
//! Time budget: the whole file runs in well under a minute in a debug build
//! on two cores (the crypto crates are optimised even in dev builds).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::sync::OnceLock;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::instrument::SignedBody;
use tessera_core::trust::TrustError;
use tessera_core::verify::{MAX_LINKS, VerifiedLink, VerifiedPrefix};
use tessera_core::{
    Amount, Attributes, Context, CouponAttributes, DecodeError, DenyList, Endorsement, EquivocationProof, ExchangeId,
    Genesis, Instrument, InstrumentId, InstrumentState, LocalSigner, NoteAttributes, ProofError, PublicKey,
    RegisteredCertificate, Rejection, Role, Signed, Signer, Status, TicketAttributes, Timestamp, TrustEntry, TrustList,
    TrustListBody, Verifier, Wire,
};

/// The time every check runs at, unless a test moves it.
const NOW: Timestamp = 1_800_000_000;
const DAY: Timestamp = 86_400;
/// Holder keys available to chains: a registered prefix plus a full chain.
const HOLDERS: usize = MAX_LINKS + 16;

/// Fixed keys and the trust list that certifies the issuer and the merchant.
struct World {
    registry: RegistryAuthority<LocalSigner>,
    registry_key: PublicKey,
    issuer: Issuer<LocalSigner>,
    merchant: LocalSigner,
    /// Certified, but only as a gate: must not be able to issue.
    gate: LocalSigner,
    /// Certified as an issuer until yesterday.
    lapsed_issuer: LocalSigner,
    trust: TrustList,
    holders: Vec<LocalSigner>,
}

fn seeded(tag: u8, n: usize) -> LocalSigner {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
    LocalSigner::from_seed(&seed)
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let registry = RegistryAuthority::new(seeded(0xA0, 0));
        let issuer = Issuer::new(seeded(0xA1, 0));
        let merchant = seeded(0xA2, 0);
        let gate = seeded(0xA3, 0);
        let lapsed_issuer = seeded(0xA4, 0);
        let entry =
            |key: PublicKey, role, name: &str, not_after| TrustEntry { key, role, name: name.into(), not_after };
        let entries = vec![
            entry(issuer.public_key(), Role::Issuer, "Issuer", NOW + 365 * DAY),
            entry(merchant.public_key(), Role::Merchant, "Merchant", NOW + 365 * DAY),
            entry(gate.public_key(), Role::Gate, "Gate", NOW + 365 * DAY),
            entry(lapsed_issuer.public_key(), Role::Issuer, "Lapsed", NOW - DAY),
        ];
        let signed = registry.trust_list(1, entries, NOW - DAY).unwrap();
        let registry_key = registry.public_key();
        let trust = TrustList::verify(signed, &registry_key).unwrap();
        let holders = (0..HOLDERS).map(|i| seeded(0xB0, i)).collect();
        World { registry, registry_key, issuer, merchant, gate, lapsed_issuer, trust, holders }
    })
}

fn no_denials() -> &'static DenyList {
    static EMPTY: DenyList = DenyList { version: 0, instruments: std::collections::BTreeSet::new() };
    &EMPTY
}

fn verifier() -> Verifier<'static> {
    Verifier::new(&world().trust, no_denials())
}

fn ticket_attributes(transferable: bool, uses: u16) -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: "evt-1".into(),
        title: "Concert".into(),
        zone: "A".into(),
        seat: Some("12".into()),
        guidance: None,
        valid_from: NOW - DAY,
        valid_until: NOW + DAY,
        transferable,
        uses,
        face_price: Some(Amount::new("EUR", 4_500)),
    })
}

fn note_attributes(minor: u64) -> Attributes {
    Attributes::Note(NoteAttributes { amount: Amount::new("EUR", minor), expires_at: NOW + 30 * DAY })
}

fn id(n: u8) -> InstrumentId {
    InstrumentId([n; 16])
}

/// An instrument issued to holder 0.
fn issue(instrument: InstrumentId, attributes: Attributes) -> Instrument {
    world().issuer.issue_with_id(instrument, attributes, world().holders[0].public_key(), NOW - DAY).unwrap()
}

/// Holder `from` endorses `inst` to `to`, as a wallet would.
fn endorse_to(inst: &Instrument, from: &LocalSigner, to: PublicKey, tag: u8) -> Instrument {
    let body = inst.next_endorsement(to, ExchangeId([tag; 16]), ExchangeId([tag ^ 0xFF; 16]), NOW - DAY / 2);
    inst.with_link(Signed::sign(body, from).unwrap())
}

/// Extends `inst`, whose tip is holder `at`, by `n` links: holder `at` →
/// `at + 1` → … → `at + n`.
fn extend(mut inst: Instrument, at: usize, n: usize) -> Instrument {
    let holders = &world().holders;
    for k in at..at + n {
        inst = endorse_to(&inst, &holders[k], holders[k + 1].public_key(), k as u8);
    }
    inst
}

/// A ticket with `before` links compacted into a registered certificate
/// (when `registered`) followed by `after` carried links. Its tip is holder
/// `before + after`.
fn chained(instrument: InstrumentId, registered: bool, before: usize, after: usize) -> Instrument {
    chained_with(instrument, registered, before, after, InstrumentState { uses_left: 1, status: Status::Active })
}

fn chained_with(
    instrument: InstrumentId,
    registered: bool,
    before: usize,
    after: usize,
    state: InstrumentState,
) -> Instrument {
    let mut inst = extend(issue(instrument, ticket_attributes(true, 1)), 0, before);
    if registered {
        let verified = verifier().verify(&inst, NOW).unwrap();
        inst = world().registry.register(&inst, &verified, state, NOW - DAY / 4).unwrap();
    }
    extend(inst, before, after)
}

/// Encodes a body the way `Signed` does, to sign it under another context.
fn body_bytes<T: minicbor::Encode<()>>(body: &T) -> Vec<u8> {
    minicbor::to_vec(body).unwrap()
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

// ---------------------------------------------------------------------------
// Chains of random length

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any honest chain of 0..=MAX_LINKS links verifies and names its tip.
    #[test]
    fn honest_chains_verify_and_name_the_holder(links in 0..=MAX_LINKS) {
        let inst = chained(id(1), false, 0, links);
        let tip = world().holders[links].public_key();
        let verified = verifier().verify_for_holder(&inst, &tip, NOW).unwrap();
        prop_assert_eq!(verified.holder, tip);
        prop_assert_eq!(verified.sequence as usize, links);
        prop_assert_eq!(verified.tip, inst.tip_digest());
        prop_assert_eq!(inst.holder(), tip);
        // What verifies also survives the wire.
        let bytes = inst.to_bytes();
        prop_assert!(bytes.len() <= Instrument::MAX_LEN);
        prop_assert_eq!(Instrument::from_bytes(&bytes).unwrap(), inst);
    }

    /// The same after a registered certificate compacted `before` links.
    #[test]
    fn chains_after_a_registered_certificate_verify(before in 0usize..8, after in 0..=MAX_LINKS) {
        let inst = chained(id(2), true, before, after);
        prop_assert!(inst.links.len() == after);
        let tip = world().holders[before + after].public_key();
        let verified = verifier().verify_for_holder(&inst, &tip, NOW).unwrap();
        prop_assert_eq!(verified.sequence as usize, before + after);
        prop_assert_eq!(Instrument::from_bytes(&inst.to_bytes()).unwrap(), inst);
    }

    /// The previous holder is not the holder any more.
    #[test]
    fn earlier_holders_are_wrong_holders(links in 1..=16usize, earlier in 0..16usize) {
        let earlier = earlier % links;
        let inst = chained(id(3), false, 0, links);
        let old = world().holders[earlier].public_key();
        let tip = world().holders[links].public_key();
        prop_assert_eq!(
            verifier().verify_for_holder(&inst, &old, NOW),
            Err(Rejection::WrongHolder { expected: old, found: tip })
        );
    }
}

// ---------------------------------------------------------------------------
// Verification from parts verified before (the registry's stored prefix)

/// What a registry keeps of a chain it verified and stored: the genesis
/// and each link with the key it verified under.
fn stored_prefix(stored: &Instrument, signer_of_links: Option<PublicKey>) -> VerifiedPrefix {
    let mut signer = stored.genesis.body.holder;
    let links = stored
        .links
        .iter()
        .map(|l| {
            let v = VerifiedLink {
                sequence: l.body.sequence,
                digest: l.digest(),
                signer: signer_of_links.unwrap_or(signer),
            };
            signer = l.body.new_holder;
            v
        })
        .collect();
    VerifiedPrefix { genesis: Some(stored.genesis.digest()), links }
}

/// An upload that shares the first `shared` links with `stored` (or
/// forks right after them), optionally compacted there under a registered
/// certificate, then carries `more` links of its own; with one fault.
fn upload(
    stored: &Instrument,
    shared: usize,
    registered: bool,
    forks: bool,
    more: usize,
    fault: u8,
    at: usize,
) -> Instrument {
    let holders = &world().holders;
    let mut up =
        Instrument { genesis: stored.genesis.clone(), registered: None, links: stored.links[..shared].to_vec() };
    if registered {
        let verified = verifier().verify(&up, NOW).unwrap();
        up = world()
            .registry
            .register(&up, &verified, InstrumentState { uses_left: 1, status: Status::Active }, NOW - DAY / 4)
            .unwrap();
    }
    for k in shared..shared + more {
        // `extend` uses tag k: the same tag makes the same link as stored.
        let tag = if forks && k == shared { 0xEE } else { k as u8 };
        up = endorse_to(&up, &holders[k], holders[k + 1].public_key(), tag);
    }
    let n = up.links.len();
    match fault {
        1 if n > 0 => up.links[at % n].signature.0[at % 64] ^= 1 << (at % 8),
        2 => up.genesis.signature.0[at % 64] ^= 1,
        3 if n > 0 => {
            let link = &mut up.links[at % n];
            *link = Signed::sign(link.body.clone(), &holders[HOLDERS - 1]).unwrap();
        }
        4 if n > 0 => up.links[at % n].body.sequence += 1,
        _ => {}
    }
    up
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// With the parts a registry stored after verifying them, the batch
    /// and the single check answer exactly as `verify` does: identical
    /// prefixes, forks after any link, a registered certificate, links
    /// known under another key, and every fault in the uploaded part.
    #[test]
    fn verification_from_a_stored_prefix_answers_as_verify(
        stored_len in 0usize..6,
        shared in 0usize..6,
        registered: bool,
        forks: bool,
        more in 0usize..5,
        fault in 0u8..5,
        at in 0usize..64,
        other_key: bool,
    ) {
        let stored = chained(id(40), false, 0, stored_len);
        let shared = shared.min(stored_len);
        let other = other_key.then(|| world().holders[HOLDERS - 2].public_key());
        let known = stored_prefix(&stored, other);
        let uploads: Vec<Instrument> = (0..4u8)
            .map(|i| upload(&stored, shared, registered && i % 2 == 0, forks, more + usize::from(i), fault, at + usize::from(i)))
            .collect();
        let prefixes = vec![known.clone(); uploads.len()];
        let single: Vec<_> = uploads.iter().map(|u| verifier().verify(u, NOW)).collect();
        prop_assert_eq!(&verifier().verify_batch_from(&uploads, &prefixes, NOW), &single);
        for (u, s) in uploads.iter().zip(&single) {
            prop_assert_eq!(&verifier().verify_from(u, &known, NOW), s);
        }
    }
}

#[test]
fn one_link_over_the_limit_is_refused() {
    let inst = chained(id(4), false, 0, MAX_LINKS + 1);
    assert_eq!(verifier().verify(&inst, NOW), Err(Rejection::TooManyLinks(MAX_LINKS + 1)));
}

// ---------------------------------------------------------------------------
// Broken chains: each with its own rejection

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Two links swapped: the first out-of-place link has the wrong sequence.
    #[test]
    fn reordered_links_are_a_sequence_gap(links in 2..=20usize, i in 0..20usize, j in 0..20usize, registered: bool) {
        let (i, j) = (i % links, j % links);
        prop_assume!(i != j);
        let (i, j) = (i.min(j), i.max(j));
        let before = if registered { 3 } else { 0 };
        let mut inst = chained(id(5), registered, before, links);
        inst.links.swap(i, j);
        let base = before as u32;
        prop_assert_eq!(
            verifier().verify(&inst, NOW),
            Err(Rejection::SequenceGap { link: i + 1, expected: base + i as u32 + 1, found: base + j as u32 + 1 })
        );
    }

    /// A link dropped from the middle leaves a gap; dropping the tip leaves
    /// a valid but older chain whose holder is not the current one.
    #[test]
    fn dropped_links_are_refused(links in 1..=20usize, drop in 0..20usize, registered: bool) {
        let drop = drop % links;
        let before = if registered { 2 } else { 0 };
        let mut inst = chained(id(6), registered, before, links);
        inst.links.remove(drop);
        let base = before as u32;
        let tip = world().holders[before + links].public_key();
        if drop + 1 < links {
            prop_assert_eq!(
                verifier().verify(&inst, NOW),
                Err(Rejection::SequenceGap { link: drop + 1, expected: base + drop as u32 + 1, found: base + drop as u32 + 2 })
            );
        } else {
            let previous = world().holders[before + links - 1].public_key();
            prop_assert_eq!(
                verifier().verify_for_holder(&inst, &tip, NOW),
                Err(Rejection::WrongHolder { expected: tip, found: previous })
            );
        }
    }

    /// A link that skips a sequence number, even when correctly signed and
    /// naming the right previous digest.
    #[test]
    fn sequence_gaps_are_refused(links in 0..=16usize, skip in 2u32..1000, registered: bool) {
        let before = if registered { 1 } else { 0 };
        let inst = chained(id(7), registered, before, links);
        let holders = &world().holders;
        let mut body = inst.next_endorsement(holders[before + links + 1].public_key(), ExchangeId([9; 16]), ExchangeId([8; 16]), NOW);
        let expected = body.sequence;
        body.sequence += skip - 1;
        let bad = inst.with_link(Signed::sign(body.clone(), &holders[before + links]).unwrap());
        prop_assert_eq!(
            verifier().verify(&bad, NOW),
            Err(Rejection::SequenceGap { link: links + 1, expected, found: body.sequence })
        );
        // A repeated sequence number is a gap too.
        body.sequence = expected - 1;
        let repeated = inst.with_link(Signed::sign(body.clone(), &holders[before + links]).unwrap());
        prop_assert_eq!(
            verifier().verify(&repeated, NOW),
            Err(Rejection::SequenceGap { link: links + 1, expected, found: expected - 1 })
        );
    }

    /// A link lifted from another instrument held by the same keys.
    #[test]
    fn links_from_another_instrument_are_refused(links in 1..=12usize, at in 0..12usize) {
        let at = at % links;
        let mut mine = chained(id(8), false, 0, links);
        let theirs = chained(id(9), false, 0, links);
        mine.links[at] = theirs.links[at].clone();
        prop_assert_eq!(verifier().verify(&mine, NOW), Err(Rejection::WrongInstrument { link: at + 1 }));
    }

    /// A link naming the wrong previous digest, even correctly signed.
    #[test]
    fn wrong_previous_digest_is_refused(links in 0..=12usize, byte in 0usize..32, registered: bool) {
        let before = if registered { 2 } else { 0 };
        let inst = chained(id(10), registered, before, links);
        let holders = &world().holders;
        let mut body = inst.next_endorsement(holders[before + links + 1].public_key(), ExchangeId([1; 16]), ExchangeId([2; 16]), NOW);
        body.previous.0[byte] ^= 0x01;
        let bad = inst.with_link(Signed::sign(body, &holders[before + links]).unwrap());
        prop_assert_eq!(verifier().verify(&bad, NOW), Err(Rejection::BrokenPreviousDigest { link: links + 1 }));
    }

    /// A link signed by anyone but the holder before it.
    #[test]
    fn links_signed_by_another_key_are_refused(links in 0..=12usize, signer in 0..HOLDERS) {
        let inst = chained(id(11), false, 0, links);
        prop_assume!(signer != links);
        let holders = &world().holders;
        let body = inst.next_endorsement(holders[links + 1].public_key(), ExchangeId([1; 16]), ExchangeId([2; 16]), NOW);
        let bad = inst.with_link(Signed::sign(body, &holders[signer]).unwrap());
        prop_assert_eq!(verifier().verify(&bad, NOW), Err(Rejection::BadSignature { link: links + 1 }));
    }
}

#[test]
fn certificates_of_another_instrument_or_signer_are_refused() {
    let mine = chained(id(12), true, 2, 1);
    let theirs = chained(id(13), true, 2, 1);
    let mut grafted = mine.clone();
    grafted.registered = theirs.registered.clone();
    assert_eq!(verifier().verify(&grafted, NOW), Err(Rejection::CertificateMismatch));

    // A certificate of sequence 0 must replace exactly the genesis.
    let mut cert = mine.registered.clone().unwrap().body;
    cert.sequence = 0;
    cert.replaces.0[0] ^= 1;
    let registry_signer = seeded(0xA0, 0);
    let mut wrong_start = mine.clone();
    wrong_start.registered = Some(Signed::sign(cert.clone(), &registry_signer).unwrap());
    wrong_start.links.clear();
    assert_eq!(verifier().verify(&wrong_start, NOW), Err(Rejection::CertificateMismatch));

    // Signed by the issuer rather than the registry.
    let mut forged = mine.clone();
    forged.registered = Some(Signed::sign(mine.registered.clone().unwrap().body, &seeded(0xA1, 0)).unwrap());
    assert_eq!(verifier().verify(&forged, NOW), Err(Rejection::BadCertificateSignature));
}

// ---------------------------------------------------------------------------
// Life-cycle and policy rejections

fn at_state(status: Status, uses_left: u16) -> Instrument {
    chained_with(id(20), true, 1, 1, InstrumentState { uses_left, status })
}

#[test]
fn registered_status_is_enforced() {
    let cases = [
        (Status::Revoked, Rejection::Revoked),
        (Status::Refunded, Rejection::Refunded),
        (Status::Dispensed, Rejection::Dispensed),
        (Status::Modified, Rejection::Modified),
    ];
    for (status, rejection) in cases {
        assert_eq!(verifier().verify(&at_state(status, 1), NOW), Err(rejection), "{status:?}");
    }
    assert_eq!(verifier().verify(&at_state(Status::Active, 0), NOW), Err(Rejection::UsedUp));
    let verified = verifier().verify(&at_state(Status::Active, 3), NOW).unwrap();
    assert_eq!(verified.state, InstrumentState { uses_left: 3, status: Status::Active });
}

#[test]
fn denied_instruments_are_refused() {
    let inst = chained(id(21), false, 0, 2);
    let mut deny = DenyList::empty();
    deny.deny(id(99));
    assert!(Verifier::new(&world().trust, &deny).verify(&inst, NOW).is_ok());
    deny.deny(id(21));
    assert_eq!(Verifier::new(&world().trust, &deny).verify(&inst, NOW), Err(Rejection::Denied));
}

#[test]
fn issuers_must_be_certified_issuers_now() {
    let holder = world().holders[0].public_key();
    let by = |signer: &LocalSigner| {
        Issuer::new(LocalSigner::from_seed(&signer.secret().to_bytes()))
            .issue_with_id(id(22), ticket_attributes(true, 1), holder, NOW - DAY)
            .unwrap()
    };
    let stranger = seeded(0xEE, 0);
    for signer in [&stranger, &world().gate, &world().merchant, &world().lapsed_issuer] {
        assert_eq!(
            verifier().verify(&by(signer), NOW),
            Err(Rejection::UnknownIssuer(signer.public_key())),
            "{}",
            signer.public_key()
        );
    }
    // A genesis naming the certified issuer but signed by someone else.
    let mut forged = by(&stranger);
    forged.genesis.body.issuer = world().issuer.public_key();
    assert_eq!(verifier().verify(&forged, NOW), Err(Rejection::BadGenesisSignature));
}

#[test]
fn non_transferable_instruments_only_go_back_to_issuers_and_merchants() {
    let inst = issue(id(23), ticket_attributes(false, 1));
    let holder = &world().holders[0];
    let to_friend = endorse_to(&inst, holder, world().holders[1].public_key(), 1);
    assert_eq!(verifier().verify(&to_friend, NOW), Err(Rejection::NotTransferable));
    for back_to in [world().merchant.public_key(), world().issuer.public_key()] {
        assert!(verifier().verify(&endorse_to(&inst, holder, back_to, 1), NOW).is_ok());
    }
    // A gate key is certified, but not to take tickets back.
    let to_gate = endorse_to(&inst, holder, world().gate.public_key(), 1);
    assert_eq!(verifier().verify(&to_gate, NOW), Err(Rejection::NotTransferable));
}

#[test]
fn attributes_are_checked() {
    for bad in [0u64, 3, 4, 7, 15, 25, 120, 999, u64::MAX] {
        assert_eq!(
            verifier().verify(&issue(id(24), note_attributes(bad)), NOW),
            Err(Rejection::InvalidDenomination(bad))
        );
    }
    for good in [1u64, 2, 5, 10, 20, 50, 100, 500, 10_000] {
        assert!(verifier().verify(&issue(id(24), note_attributes(good)), NOW).is_ok(), "{good}");
    }
    let odd_currency = Attributes::Note(NoteAttributes { amount: Amount::new("EURO", 100), expires_at: NOW + DAY });
    assert!(matches!(verifier().verify(&issue(id(25), odd_currency), NOW), Err(Rejection::InvalidAttributes(_))));
    assert!(matches!(
        verifier().verify(&issue(id(25), ticket_attributes(true, 0)), NOW),
        Err(Rejection::InvalidAttributes(_))
    ));
    let backwards = Attributes::Coupon(CouponAttributes {
        program: "p".into(),
        title: "t".into(),
        uses: 3,
        valid_from: NOW + DAY,
        valid_until: NOW - DAY,
        transferable: true,
    });
    assert!(matches!(verifier().verify(&issue(id(25), backwards), NOW), Err(Rejection::InvalidAttributes(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The validity window is inclusive at both ends, whatever the kind.
    #[test]
    fn validity_windows_are_enforced(offset in -3i64 * DAY as i64..3 * DAY as i64, kind in 0u8..3) {
        let (from, until) = (NOW - DAY, NOW + DAY);
        let attributes = match kind {
            0 => ticket_attributes(true, 1),
            1 => Attributes::Note(NoteAttributes { amount: Amount::new("EUR", 200), expires_at: until }),
            _ => Attributes::Coupon(CouponAttributes {
                program: "p".into(), title: "t".into(), uses: 5, valid_from: from, valid_until: until, transferable: true,
            }),
        };
        let inst = extend(issue(id(26), attributes), 0, 1);
        let now = NOW.checked_add_signed(offset).unwrap();
        let result = verifier().verify(&inst, now);
        let starts = if kind == 1 { 0 } else { from };
        if now < starts {
            prop_assert_eq!(result, Err(Rejection::NotYetValid { valid_from: starts }));
        } else if now > until {
            prop_assert_eq!(result, Err(Rejection::Expired { valid_until: until }));
        } else {
            prop_assert!(result.is_ok(), "{:?}", result);
        }
    }
}

// ---------------------------------------------------------------------------
// Domain separation

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A signature under one context verifies under that context only.
    #[test]
    fn signatures_bind_their_context(seed: [u8; 32], message in proptest::collection::vec(any::<u8>(), 0..300)) {
        let signer = LocalSigner::from_seed(&seed);
        let key = signer.public_key();
        for made in Context::ALL {
            let signature = signer.sign(made, &message).unwrap();
            for checked in Context::ALL {
                prop_assert_eq!(key.verify(checked, &message, &signature).is_ok(), made == checked, "{:?} vs {:?}", made, checked);
            }
        }
    }
}

/// Every signed structure, re-signed under each wrong context over the very
/// same body bytes, is refused by the check that applies to it.
#[test]
fn structures_signed_under_another_context_are_refused() {
    let inst = chained(id(30), true, 1, 2);
    let registry_signer = seeded(0xA0, 0);
    let issuer_signer = seeded(0xA1, 0);
    for context in Context::ALL {
        if context != Genesis::CONTEXT {
            let mut bad = inst.clone();
            bad.genesis.signature = issuer_signer.sign(context, &body_bytes(&bad.genesis.body)).unwrap();
            assert_eq!(verifier().verify(&bad, NOW), Err(Rejection::BadGenesisSignature), "{context:?}");
        }
        if context != RegisteredCertificate::CONTEXT {
            let mut bad = inst.clone();
            let cert = bad.registered.as_mut().unwrap();
            cert.signature = registry_signer.sign(context, &body_bytes(&cert.body)).unwrap();
            assert_eq!(verifier().verify(&bad, NOW), Err(Rejection::BadCertificateSignature), "{context:?}");
        }
        if context != Endorsement::CONTEXT {
            let mut bad = inst.clone();
            let link = &mut bad.links[1];
            link.signature = world().holders[2].sign(context, &body_bytes(&link.body)).unwrap();
            assert_eq!(verifier().verify(&bad, NOW), Err(Rejection::BadSignature { link: 2 }), "{context:?}");
        }
        if context != TrustListBody::CONTEXT {
            let mut list = world().trust.signed().clone();
            list.signature = registry_signer.sign(context, &body_bytes(&list.body)).unwrap();
            assert_eq!(TrustList::verify(list, &world().registry_key), Err(TrustError::BadSignature), "{context:?}");
        }
        if context != DenyList::CONTEXT {
            let deny = world().registry.deny_list(DenyList::empty()).unwrap();
            let resigned =
                Signed { signature: registry_signer.sign(context, &body_bytes(&deny.body)).unwrap(), ..deny };
            assert!(resigned.verify(&world().registry_key).is_err(), "{context:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Equivocation

/// Two different endorsements of the tip of `base` by its holder `at`.
fn fork(base: &Instrument, at: usize, how: u8) -> (Signed<Endorsement>, Signed<Endorsement>) {
    let holders = &world().holders;
    let next = |to: usize, offer: u8, time: Timestamp| {
        let body = base.next_endorsement(holders[to].public_key(), ExchangeId([offer; 16]), ExchangeId([7; 16]), time);
        Signed::sign(body, &holders[at]).unwrap()
    };
    match how % 3 {
        // To two different people: a double transfer.
        0 => (next(at + 1, 1, NOW), next(at + 2, 1, NOW)),
        // To the same key in two exchanges.
        1 => (next(at + 1, 1, NOW), next(at + 1, 2, NOW)),
        // The same exchange signed again later: still two different links.
        _ => (next(at + 1, 1, NOW), next(at + 1, 1, NOW + 1)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn conflicting_endorsements_always_make_a_proof(
        prefix in 0usize..10,
        registered: bool,
        how in 0u8..3,
        tail_a in 0usize..4,
        tail_b in 0usize..4,
    ) {
        let before = if registered { 2 } else { 0 };
        let base = chained(id(40), registered, before, prefix);
        let at = before + prefix;
        let cheater = world().holders[at].public_key();
        let (a, b) = fork(&base, at, how);

        let proof = EquivocationProof::new(cheater, a.clone(), b.clone()).unwrap();
        prop_assert_eq!(proof.verify(), Ok(cheater));
        prop_assert_eq!(proof.instrument_id(), id(40));
        prop_assert_eq!(proof.sequence() as usize, at + 1);
        prop_assert!(proof.first.digest() < proof.second.digest(), "ordered by digest");
        let swapped = EquivocationProof::new(cheater, b.clone(), a.clone()).unwrap();
        prop_assert_eq!(&swapped, &proof);
        prop_assert_eq!(swapped.to_bytes(), proof.to_bytes());
        prop_assert_eq!(EquivocationProof::from_bytes(&proof.to_bytes()).unwrap(), proof.clone());

        // Nobody else can be named.
        let innocent = world().holders[at + 3].public_key();
        prop_assert_eq!(EquivocationProof::new(innocent, a.clone(), b.clone()), Err(ProofError::NotSignedBy(1)));

        // Both branches, each carried on for a while, are valid on their own;
        // put side by side they give the same proof in either order.
        let fork_a = base.with_link(a.clone());
        let fork_b = base.with_link(b.clone());
        let to_a = a.body.new_holder;
        let to_b = b.body.new_holder;
        let idx = |key: PublicKey| world().holders.iter().position(|h| h.public_key() == key).unwrap();
        let fork_a = extend(fork_a, idx(to_a), tail_a);
        let fork_b = extend(fork_b, idx(to_b), tail_b);
        prop_assert!(verifier().verify(&fork_a, NOW).is_ok());
        prop_assert!(verifier().verify(&fork_b, NOW).is_ok());
        prop_assert_eq!(EquivocationProof::find(&fork_a, &fork_b), Some(proof.clone()));
        prop_assert_eq!(EquivocationProof::find(&fork_b, &fork_a), Some(proof.clone()));
        // No fork, no proof.
        prop_assert_eq!(EquivocationProof::find(&fork_a, &fork_a), None);
        prop_assert_eq!(EquivocationProof::find(&base, &fork_a), None);
    }
}

#[test]
fn non_conflicting_pairs_are_not_proofs() {
    let base = chained(id(41), false, 0, 2);
    let (a, b) = fork(&base, 2, 0);
    let cheater = world().holders[2].public_key();
    assert_eq!(EquivocationProof::new(cheater, a.clone(), a.clone()), Err(ProofError::Identical));

    let other = chained(id(42), false, 0, 2);
    let (c, _) = fork(&other, 2, 0);
    assert_eq!(EquivocationProof::new(cheater, a.clone(), c), Err(ProofError::DifferentInstruments));

    let longer = base.with_link(a.clone());
    let (d, _) = fork(&longer, 3, 0);
    assert_eq!(EquivocationProof::new(cheater, b.clone(), d), Err(ProofError::DifferentSequences));

    // A proof whose second link was signed by someone else.
    let mut forged = EquivocationProof::new(cheater, a, b).unwrap();
    forged.second.signature = world().holders[5].sign(Context::Endorsement, &body_bytes(&forged.second.body)).unwrap();
    assert_eq!(forged.verify(), Err(ProofError::NotSignedBy(2)));
}

/// Ed25519 as specified is deterministic, but a platform signer may add
/// randomness to its nonce (CryptoKit does). Signing the *same* endorsement
/// twice then gives two different signatures over one body: that is not a
/// double transfer, and must not be turned into a proof against its signer.
#[test]
fn one_body_signed_twice_is_not_equivocation() {
    use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
    use sha2::Digest as _;

    let base = chained(id(43), false, 0, 1);
    let holder = &world().holders[1];
    let body = base.next_endorsement(world().holders[2].public_key(), ExchangeId([1; 16]), ExchangeId([2; 16]), NOW);
    let honest = Signed::sign(body.clone(), holder).unwrap();

    let secret = holder.secret().to_bytes();
    let mut expanded = ExpandedSecretKey::from(&*secret);
    expanded.hash_prefix = sha2::Sha256::digest(b"a randomised nonce").into();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(holder.public_key().as_bytes()).unwrap();
    let message = Context::Endorsement.signed_bytes(&body_bytes(&body));
    let randomised = raw_sign::<sha2::Sha512>(&expanded, &message, &verifying);
    let again = Signed { body, signature: tessera_core::Signature(randomised.to_bytes()) };
    assert!(again.verify(&holder.public_key()).is_ok(), "the second signature is valid");
    assert_ne!(again, honest, "and different from the first");

    assert_eq!(EquivocationProof::new(holder.public_key(), honest.clone(), again.clone()), Err(ProofError::Identical));
    assert_eq!(EquivocationProof::find(&base.with_link(honest), &base.with_link(again)), None);
}

// ---------------------------------------------------------------------------
// Every bit of every structure

/// Flips every bit of `bytes` in turn; `accepts` decodes and checks the
/// result, returning whether the flipped value was accepted.
fn no_flip_is_accepted(what: &str, bytes: &[u8], accepts: impl Fn(&[u8]) -> bool) {
    assert!(accepts(bytes), "the unflipped {what} must be accepted");
    for bit in 0..bytes.len() * 8 {
        assert!(!accepts(&flip(bytes, bit)), "{what}: flipping bit {bit} was accepted");
    }
}

fn instrument_accepted(bytes: &[u8]) -> bool {
    Instrument::from_bytes(bytes).is_ok_and(|inst| verifier().verify(&inst, NOW).is_ok())
}

#[test]
fn every_bit_of_an_instrument_matters() {
    no_flip_is_accepted("plain instrument", &chained(id(50), false, 0, 2).to_bytes(), instrument_accepted);
    no_flip_is_accepted("registered instrument", &chained(id(51), true, 2, 1).to_bytes(), instrument_accepted);
    let note = extend(issue(id(52), note_attributes(500)), 0, 1);
    no_flip_is_accepted("note", &note.to_bytes(), instrument_accepted);
}

#[test]
fn every_bit_of_a_genesis_endorsement_and_certificate_matters() {
    let inst = chained(id(53), true, 1, 1);
    no_flip_is_accepted("genesis", &inst.genesis.to_bytes(), |b| {
        Signed::<Genesis>::from_bytes(b).is_ok_and(|g| verifier().verify(&Instrument::issued(g), NOW).is_ok())
    });
    no_flip_is_accepted("endorsement", &inst.links[0].to_bytes(), |b| {
        Signed::<Endorsement>::from_bytes(b).is_ok_and(|link| {
            let mut candidate = inst.clone();
            candidate.links[0] = link;
            verifier().verify(&candidate, NOW).is_ok()
        })
    });
    no_flip_is_accepted("registered certificate", &inst.registered.clone().unwrap().to_bytes(), |b| {
        Signed::<RegisteredCertificate>::from_bytes(b).is_ok_and(|cert| {
            let mut candidate = inst.clone();
            candidate.registered = Some(cert);
            verifier().verify(&candidate, NOW).is_ok()
        })
    });
}

#[test]
fn every_bit_of_the_trust_and_deny_lists_matters() {
    no_flip_is_accepted("trust list", &world().trust.signed().to_bytes(), |b| {
        Signed::<TrustListBody>::from_bytes(b).is_ok_and(|l| TrustList::verify(l, &world().registry_key).is_ok())
    });
    let mut deny = DenyList::empty();
    deny.deny(id(1));
    deny.deny(id(2));
    let signed = world().registry.deny_list(deny).unwrap();
    no_flip_is_accepted("deny list", &signed.to_bytes(), |b| {
        Signed::<DenyList>::from_bytes(b).is_ok_and(|d| d.verify(&world().registry_key).is_ok())
    });
}

#[test]
fn every_bit_of_an_equivocation_proof_matters() {
    let base = chained(id(54), false, 0, 1);
    let (a, b) = fork(&base, 1, 0);
    let proof = EquivocationProof::new(world().holders[1].public_key(), a, b).unwrap();
    no_flip_is_accepted("equivocation proof", &proof.to_bytes(), |b| {
        EquivocationProof::from_bytes(b).is_ok_and(|p| p.verify().is_ok())
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same for chains of any shape, one random bit at a time.
    #[test]
    fn a_flipped_bit_in_any_chain_is_refused(links in 0usize..12, registered: bool, bit: proptest::sample::Index) {
        let bytes = chained(id(55), registered, 1, links).to_bytes();
        prop_assert!(!instrument_accepted(&flip(&bytes, bit.index(bytes.len() * 8))));
    }
}

// ---------------------------------------------------------------------------
// Decoders facing arbitrary bytes

/// Runs `bytes` through every top-level decoder the core has and returns
/// what each decoded value re-encodes to. None may panic; the caller says
/// what each must return.
fn decode_all(bytes: &[u8]) -> [Result<Vec<u8>, DecodeError>; 7] {
    fn again<T: Wire>(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        T::from_bytes(bytes).map(|value| value.to_bytes())
    }
    [
        again::<Instrument>(bytes),
        again::<Signed<Genesis>>(bytes),
        again::<Signed<Endorsement>>(bytes),
        again::<Signed<RegisteredCertificate>>(bytes),
        again::<Signed<TrustListBody>>(bytes),
        again::<Signed<DenyList>>(bytes),
        again::<EquivocationProof>(bytes),
    ]
}

/// Valid encodings of every structure, to mutate.
fn valid_encodings() -> &'static [Vec<u8>] {
    static ENCODINGS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let inst = chained(id(60), true, 1, 2);
        let base = chained(id(61), false, 0, 1);
        let (a, b) = fork(&base, 1, 0);
        let proof = EquivocationProof::new(world().holders[1].public_key(), a, b).unwrap();
        let mut deny = DenyList::empty();
        deny.deny(id(3));
        vec![
            inst.to_bytes(),
            inst.genesis.to_bytes(),
            inst.links[0].to_bytes(),
            inst.registered.clone().unwrap().to_bytes(),
            world().trust.signed().to_bytes(),
            world().registry.deny_list(deny).unwrap().to_bytes(),
            proof.to_bytes(),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes never decode as anything.
    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for result in decode_all(&bytes) {
            prop_assert!(result.is_err());
        }
    }

    /// Random bytes behind a valid frame header reach the message decoders.
    #[test]
    fn arbitrary_framed_bytes_are_refused(tail in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut bytes = vec![0x82, 0x01];
        bytes.extend_from_slice(&tail);
        for result in decode_all(&bytes) {
            prop_assert!(result.is_err());
        }
    }

    /// Valid encodings cut short, spliced, overwritten or stretched: whatever
    /// still decodes re-encodes to exactly the input (there is one encoding
    /// of every value), and nothing panics.
    #[test]
    fn mutated_encodings_never_panic(
        which in 0usize..7,
        at: proptest::sample::Index,
        edit in 0u8..4,
        junk in proptest::collection::vec(any::<u8>(), 1..9),
    ) {
        let mut bytes = valid_encodings()[which].clone();
        let at = at.index(bytes.len());
        match edit {
            0 => bytes.truncate(at),
            1 => { bytes.splice(at..at, junk.iter().copied()); }
            2 => { let end = (at + junk.len()).min(bytes.len()); bytes.splice(at..end, junk.iter().copied()); }
            _ => { bytes.drain(at..(at + junk.len()).min(bytes.len())); }
        }
        for reencoded in decode_all(&bytes).into_iter().flatten() {
            prop_assert_eq!(&reencoded, &bytes);
        }
    }
}

#[test]
fn inputs_over_the_bound_are_refused_before_parsing() {
    fn over<T: Wire>() {
        // Garbage that would be Malformed if it were parsed at all.
        let garbage = vec![0xFF; T::MAX_LEN + 1];
        assert_eq!(
            T::from_bytes(&garbage).err(),
            Some(DecodeError::TooLarge { what: T::NAME, len: T::MAX_LEN + 1, max: T::MAX_LEN })
        );
        // At the bound the same garbage is parsed, and refused as malformed.
        assert!(matches!(T::from_bytes(&garbage[..T::MAX_LEN]), Err(DecodeError::Malformed { .. })));
    }
    over::<Instrument>();
    over::<Signed<Genesis>>();
    over::<Signed<Endorsement>>();
    over::<Signed<RegisteredCertificate>>();
    over::<Signed<TrustListBody>>();
    over::<Signed<DenyList>>();
    over::<EquivocationProof>();

    // A valid message padded past the bound is TooLarge, not TrailingBytes.
    let mut padded = chained(id(62), false, 0, 1).to_bytes();
    padded.resize(Instrument::MAX_LEN + 1, 0);
    assert!(matches!(Instrument::from_bytes(&padded), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn the_longest_chain_fits_its_bound() {
    let longest = chained(id(63), true, 3, MAX_LINKS);
    assert!(longest.to_bytes().len() <= Instrument::MAX_LEN);
    assert!(verifier().verify(&longest, NOW).is_ok());
}

#[test]
fn framing_errors_are_typed() {
    let good = chained(id(64), false, 0, 1).to_bytes();
    assert_eq!(good[..2], [0x82, 0x01], "frame = [1, message]");

    let mut version_two = good.clone();
    version_two[1] = 0x02;
    assert_eq!(
        Instrument::from_bytes(&version_two).err(),
        Some(DecodeError::UnsupportedVersion { what: Instrument::NAME, found: 2 })
    );

    let mut trailing = good.clone();
    trailing.push(0x00);
    assert_eq!(
        Instrument::from_bytes(&trailing).err(),
        Some(DecodeError::TrailingBytes { what: Instrument::NAME, extra: 1 })
    );

    // The version written in two bytes instead of one: same value, not canonical.
    let mut long_version = vec![0x82, 0x18, 0x01];
    long_version.extend_from_slice(&good[2..]);
    assert_eq!(Instrument::from_bytes(&long_version).err(), Some(DecodeError::NonCanonical { what: Instrument::NAME }));

    // The instrument's array written with indefinite length.
    assert_eq!(good[2], 0x83);
    let mut indefinite = vec![0x82, 0x01, 0x9F];
    indefinite.extend_from_slice(&good[3..]);
    indefinite.push(0xFF);
    assert!(Instrument::from_bytes(&indefinite).is_err());

    // An absurd declared length must fail without trying to allocate it.
    let inst = chained(id(65), false, 0, 0);
    let mut huge = vec![0x82, 0x01, 0x83];
    huge.extend_from_slice(&minicbor::to_vec(&inst.genesis).unwrap());
    huge.push(0xF6);
    huge.extend_from_slice(&[0x9B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(Instrument::from_bytes(&huge), Err(DecodeError::Malformed { .. })));
}

/// `find` is documented for verified copies, but it is handed instruments
/// straight off the wire by callers in a hurry: sequence numbers at the top
/// of the range must not overflow.
#[test]
fn find_survives_sequences_at_the_end_of_the_range() {
    let base = chained(id(66), false, 0, 1);
    let (mut a, mut b) = fork(&base, 1, 0);
    a.body.sequence = u32::MAX;
    b.body.sequence = u32::MAX;
    let (mut left, mut right) = (base.clone(), base);
    left.links[0].body.sequence = u32::MAX;
    right.links[0].body.sequence = u32::MAX;
    left.links.push(a);
    right.links.push(b);
    // Unsigned garbage: no proof, and no panic.
    assert_eq!(EquivocationProof::find(&left, &right), None);
}

/// Trailing absent options are left out of their array (minicbor's array
/// encoding): writing them as explicit nulls is another encoding of the
/// same value, and is refused.
#[test]
fn trailing_absent_fields_have_one_encoding() {
    let mut attributes = ticket_attributes(true, 1);
    if let Attributes::Ticket(t) = &mut attributes {
        t.face_price = None;
    }
    let genesis = issue(id(67), attributes).genesis;
    let framed = genesis.to_bytes();
    let Attributes::Ticket(ticket) = &genesis.body.attributes else { unreachable!() };
    let short = minicbor::to_vec(ticket).unwrap();
    assert_eq!(short[0], 0x89, "nine fields: face_price is left out");
    let mut long = short.clone();
    long[0] = 0x8A;
    long.push(0xF6);
    let at = framed.windows(short.len()).position(|w| w == short).unwrap();
    let mut padded = framed.clone();
    padded.splice(at..at + short.len(), long);
    assert_eq!(
        Signed::<Genesis>::from_bytes(&padded).err(),
        Some(DecodeError::NonCanonical { what: Signed::<Genesis>::NAME })
    );
    assert_eq!(Signed::<Genesis>::from_bytes(&framed).unwrap(), genesis);
}

/// The registry is trusted, but a certificate at the very end of the
/// sequence range must not let links repeat a sequence number: (instrument,
/// sequence) is what names a link in equivocation proofs.
#[test]
fn sequences_never_repeat_at_the_end_of_the_range() {
    let base = chained(id(68), false, 0, 1);
    let holders = &world().holders;
    let cert = RegisteredCertificate {
        instrument_id: id(68),
        genesis: base.genesis.digest(),
        sequence: u32::MAX,
        replaces: base.tip_digest(),
        holder: holders[1].public_key(),
        state: InstrumentState { uses_left: 1, status: Status::Active },
        issued_at: NOW - 60,
    };
    let registered = Instrument {
        genesis: base.genesis.clone(),
        registered: Some(Signed::sign(cert, &seeded(0xA0, 0)).unwrap()),
        links: Vec::new(),
    };
    assert!(verifier().verify(&registered, NOW).is_ok());
    let next = endorse_to(&registered, &holders[1], holders[2].public_key(), 1);
    assert_eq!(next.links[0].body.sequence, u32::MAX);
    assert_eq!(verifier().verify(&next, NOW), Err(Rejection::SequenceExhausted { link: 1 }));
}

/// A wallet handed a flipped instrument refuses it and stays as it was.
#[test]
fn a_wallet_refuses_every_flipped_instrument_and_changes_nothing() {
    use std::sync::Arc;
    use tessera_core::sealing::{StaticKeyProvider, StorageKey};
    use tessera_core::store::{InstrumentFilter, SqliteStore};
    use tessera_core::{ManualClock, Wallet};

    let keys = StaticKeyProvider::new(StorageKey::from_bytes([5; 32]));
    let clock = Arc::new(ManualClock::new(NOW));
    let mut wallet = Wallet::create(SqliteStore::in_memory().unwrap(), &keys, clock).unwrap();
    wallet.pin_registry(world().registry_key).unwrap();
    wallet.install_trust_list(&world().trust.signed().to_bytes()).unwrap();
    let holder = wallet.new_holder_key().unwrap();
    let first = world().issuer.issue_with_id(id(69), ticket_attributes(true, 1), holder, NOW - DAY).unwrap();
    wallet.import_instrument(first).unwrap();
    let before = (wallet.instruments(InstrumentFilter::default()).unwrap(), wallet.history(100).unwrap());

    let second = world().issuer.issue_with_id(id(70), note_attributes(200), holder, NOW - DAY).unwrap();
    let bytes = second.to_bytes();
    for bit in 0..bytes.len() * 8 {
        assert!(wallet.import(&flip(&bytes, bit)).is_err(), "bit {bit} was imported");
    }
    let after = (wallet.instruments(InstrumentFilter::default()).unwrap(), wallet.history(100).unwrap());
    assert_eq!(before, after);
    wallet.import(&bytes).unwrap();
}

/// The registry may compact one branch of a fork before the other branch
/// turns up. As long as the conflicting link is still carried on both
/// sides, `find` sees through the certificate; once a side has compacted
/// the conflicting link itself away, only the registry's own records can
/// tell (see docs/protocol.md §6).
#[test]
fn find_sees_a_fork_across_a_registered_certificate() {
    let base = chained(id(71), false, 0, 2);
    let (a, b) = fork(&base, 2, 0);
    let proof = EquivocationProof::new(world().holders[2].public_key(), a.clone(), b.clone()).unwrap();
    let branch_a = extend(base.with_link(a.clone()), 3, 2);
    let verified = verifier().verify(&base, NOW).unwrap();
    let active = InstrumentState { uses_left: 1, status: Status::Active };
    let compacted = world().registry.register(&base, &verified, active, NOW).unwrap().with_link(b.clone());
    assert!(verifier().verify(&compacted, NOW).is_ok());
    assert_eq!(EquivocationProof::find(&branch_a, &compacted), Some(proof.clone()));
    assert_eq!(EquivocationProof::find(&compacted, &branch_a), Some(proof));

    let fully = verifier().verify(&branch_a, NOW).unwrap();
    let past_the_fork = world().registry.register(&branch_a, &fully, active, NOW).unwrap();
    assert_eq!(EquivocationProof::find(&past_the_fork, &base.with_link(b)), None);
}
