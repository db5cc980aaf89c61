//! Fixtures the fuzz targets share with the seed generator
//! (`examples/seeds.rs`): fixed keys, a fixed clock and fixed nonces, so a
//! seed recorded once (a real tap, a real upload) stays valid input for the
//! decoders forever and the fuzzer starts from deep inside each protocol.
//!
//! Every target checks two things beyond "no panic": a decoder accepts only
//! what re-encodes to the same bytes, and a state machine fed garbage keeps
//! answering within its bounds.

#![allow(clippy::expect_used)] // fixtures: a failure here is a broken harness, not a finding

pub mod registry;
pub mod seeds;

use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::clock::ManualClock;
use tessera_core::instrument::TicketAttributes;
use tessera_core::presentation::mesh::{MeshEnvelope, UsedEventBody};
use tessera_core::presentation::on_air::{CertificateOnAir, PresentationOnAir};
use tessera_core::proof::UsedAfterTransferProof;
use tessera_core::presentation::{
    BagBody, ChallengeBody, ExaminationBody, GateContext, GateExamination, GatePolicy, Instruction, Presentation,
    PriorUse, ReentryPolicy, WalletCard, decide,
};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::transfer::evidence::{DoubleSaleProof, SaleClaim};
use tessera_core::transfer::{
    Acceptance, Decline, Offer, Receipt, ReceiverState, SenderState, TransferCertificate, TransferMessage,
};
use tessera_core::trust::{Role, TrustEntry};
use tessera_core::{
    Amount, Attributes, DenyList, Endorsement, EquivocationProof, ExchangeId, Genesis, Instrument, InstrumentId,
    LocalSigner, RegisteredCertificate, Signed, Signer, TrustList, TrustListBody, Verifier, Wallet, Wire,
};

/// The fixed time every fixture lives at.
pub const T0: u64 = 1_800_000_000;
/// The gate's fixed challenge nonce (so recorded card answers stay valid).
pub const GATE_NONCE: ExchangeId = ExchangeId([0x47; 16]);

/// Splits fuzz input into messages: each is a big-endian `u16` length and
/// that many bytes (fewer at the end of the input).
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// The inverse of [`frames`], for writing seeds.
pub fn frame_all<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let len = u16::try_from(m.len()).expect("a seed message under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// A venue with fixed keys: registry `[1; 32]`, issuer `[2; 32]`, gate
/// `[4; 32]` (the keys of `docs/vectors/`), a trust list naming the issuer
/// and the gate, and a manual clock at [`T0`].
#[derive(Debug)]
pub struct Venue {
    /// The registry.
    pub registry: RegistryAuthority<LocalSigner>,
    /// The issuer.
    pub issuer: Issuer<LocalSigner>,
    /// The gate's key.
    pub gate: LocalSigner,
    /// The verified trust list.
    pub trust: TrustList,
    /// Its bytes, for wallets.
    pub trust_bytes: Vec<u8>,
    /// An empty deny list.
    pub deny: DenyList,
    /// The clock wallets read.
    pub clock: Arc<ManualClock>,
}

impl Default for Venue {
    fn default() -> Self {
        Self::new()
    }
}

impl Venue {
    /// The venue.
    pub fn new() -> Self {
        let registry = RegistryAuthority::new(LocalSigner::from_seed(&[1; 32]));
        let issuer = Issuer::new(LocalSigner::from_seed(&[2; 32]));
        let gate = LocalSigner::from_seed(&[4; 32]);
        let entries = vec![
            TrustEntry {
                key: issuer.public_key(),
                role: Role::Issuer,
                name: "Arena".into(),
                not_after: T0 + 1_000_000,
            },
            TrustEntry { key: gate.public_key(), role: Role::Gate, name: "North 1".into(), not_after: T0 + 1_000_000 },
        ];
        let signed = registry.trust_list(1, entries, T0 - 10).expect("sign the trust list");
        let trust = TrustList::verify(signed.clone(), &registry.public_key()).expect("our own trust list");
        Self {
            registry,
            issuer,
            gate,
            trust,
            trust_bytes: signed.to_bytes(),
            deny: DenyList::empty(),
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    /// The gate's policy: enter zone `north` of `final`.
    pub fn policy() -> GatePolicy {
        GatePolicy {
            event_id: "final".into(),
            zones: vec!["north".into()],
            instruction: Instruction::Enter,
            reentry: ReentryPolicy::Refuse,
        }
    }

    /// A fresh in-memory wallet holding one transferable ticket for the
    /// gate's zone (its holder key is the wallet's own, so random).
    pub fn wallet_with_ticket(&self) -> Wallet<SqliteStore> {
        let keys = StaticKeyProvider::new(StorageKey::from_bytes([9; 32]));
        let store = SqliteStore::in_memory().expect("an in-memory store");
        let mut wallet = Wallet::create(store, &keys, self.clock.clone()).expect("a wallet");
        wallet.pin_registry(self.registry.public_key()).expect("pin");
        wallet.install_trust_list(&self.trust_bytes).expect("trust list");
        let holder = wallet.new_holder_key().expect("holder key");
        let attributes = ticket_attributes("R1 S1");
        let ticket = self.issuer.issue_with_id(InstrumentId([0x11; 16]), attributes, holder, T0 - 7200).expect("issue");
        wallet.import_instrument(ticket).expect("import");
        wallet
    }

    /// The card (phone) side over a fresh wallet.
    pub fn card(&self) -> WalletCard<SqliteStore> {
        WalletCard::new(self.wallet_with_ticket())
    }

    /// A tap at the gate with the fixed nonce.
    pub fn examination(&self) -> GateExamination {
        GateExamination::start(&self.gate, Self::policy(), GATE_NONCE, 1, T0).expect("sign a challenge")
    }

    /// The gate's view: verifier over the venue's lists, an empty used set.
    pub fn gate_context<'a>(
        &'a self,
        ledger: &'a BTreeMap<InstrumentId, PriorUse>,
    ) -> GateContext<'a, BTreeMap<InstrumentId, PriorUse>> {
        GateContext { verifier: Verifier::new(&self.trust, &self.deny), ledger, now: T0 }
    }
}

/// A one-use transferable ticket for the gate's event and zone.
pub fn ticket_attributes(seat: &str) -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: "final".into(),
        title: "Cup final".into(),
        zone: "north".into(),
        seat: Some(seat.into()),
        guidance: None,
        valid_from: T0 - 3600,
        valid_until: T0 + 3600,
        transferable: true,
        uses: 1,
        face_price: Some(Amount::new("EUR", 4000)),
    })
}

/// Decodes `bytes` as `T`; whatever decodes must re-encode to the same
/// bytes (the canonical-encoding promise of `Wire::from_bytes`).
pub fn round_trip<T: Wire>(bytes: &[u8]) -> Option<T> {
    let value = T::from_bytes(bytes).ok()?;
    assert_eq!(value.to_bytes(), bytes, "{} decoded but re-encodes differently", T::NAME);
    Some(value)
}

/// Every top-level wire message of the core, in the order the `wire`
/// target's selector byte picks them (`selector % WIRE_TYPES.len()`).
pub const WIRE_TYPES: &[&str] = &[
    "Instrument",
    "Signed<Genesis>",
    "Signed<Endorsement>",
    "Signed<RegisteredCertificate>",
    "Signed<TrustListBody>",
    "Signed<DenyList>",
    "EquivocationProof",
    "Signed<ChallengeBody>",
    "Presentation",
    "Signed<ExaminationBody>",
    "Signed<BagBody>",
    "Signed<UsedEventBody>",
    "MeshEnvelope",
    "TransferMessage",
    "Offer",
    "Acceptance",
    "Decline",
    "TransferCertificate",
    "Receipt",
    "SenderState",
    "ReceiverState",
    "SaleClaim",
    "DoubleSaleProof",
    "PresentationOnAir",
    "CertificateOnAir",
    "UsedAfterTransferProof",
];

/// The selector byte of a type in [`WIRE_TYPES`].
pub fn wire_selector(name: &str) -> u8 {
    let i = WIRE_TYPES.iter().position(|n| *n == name).expect("a listed wire type");
    u8::try_from(i).expect("fewer than 256 wire types")
}

/// Decodes `bytes` as the type `selector` picks and, when it decodes, runs
/// the checks that consume it (verifier, proofs, bounds): none may panic.
pub fn decode_wire(venue: &Venue, selector: u8, bytes: &[u8]) {
    let verifier = Verifier::new(&venue.trust, &venue.deny);
    match usize::from(selector) % WIRE_TYPES.len() {
        0 => {
            if let Some(i) = round_trip::<Instrument>(bytes) {
                let _ = verifier.verify(&i, T0);
                let _ = verifier.verify_for_holder(&i, &i.holder(), T0);
                assert!(EquivocationProof::find(&i, &i).is_none(), "one chain cannot equivocate with itself");
            }
        }
        1 => drop(round_trip::<Signed<Genesis>>(bytes).map(|g| g.verify(&g.body.issuer))),
        2 => drop(round_trip::<Signed<Endorsement>>(bytes).map(|e| e.digest())),
        3 => drop(round_trip::<Signed<RegisteredCertificate>>(bytes).map(|c| c.verify(&venue.registry.public_key()))),
        4 => {
            drop(round_trip::<Signed<TrustListBody>>(bytes).map(|t| TrustList::verify(t, &venue.registry.public_key())))
        }
        5 => drop(round_trip::<Signed<DenyList>>(bytes).map(|d| d.verify(&venue.registry.public_key()))),
        6 => drop(round_trip::<EquivocationProof>(bytes).map(|p| p.verify())),
        7 => drop(round_trip::<Signed<ChallengeBody>>(bytes).map(|c| c.verify(&c.body.gate))),
        8 => {
            if let Some(p) = round_trip::<Presentation>(bytes) {
                let ledger = BTreeMap::new();
                let challenge = venue.examination().challenge().clone();
                let _ = decide(&Venue::policy(), &challenge, &p, &venue.gate_context(&ledger));
            }
        }
        9 => drop(round_trip::<Signed<ExaminationBody>>(bytes).map(|x| x.verify(&x.body.gate))),
        10 => drop(round_trip::<Signed<BagBody>>(bytes).map(|b| b.check())),
        11 => drop(round_trip::<Signed<UsedEventBody>>(bytes).map(|u| u.check(&venue.trust, T0))),
        12 => {
            if let Some(envelope) = round_trip::<MeshEnvelope>(bytes) {
                let _ = envelope.check_bounds();
                assert!(MeshEnvelope::decode(bytes).is_ok(), "MeshEnvelope::decode disagrees with from_bytes");
            }
        }
        13 => drop(round_trip::<TransferMessage>(bytes)),
        14 => drop(round_trip::<Offer>(bytes)),
        15 => drop(round_trip::<Acceptance>(bytes)),
        16 => drop(round_trip::<Decline>(bytes)),
        17 => drop(round_trip::<TransferCertificate>(bytes)),
        18 => drop(round_trip::<Receipt>(bytes)),
        19 => drop(round_trip::<SenderState>(bytes)),
        20 => drop(round_trip::<ReceiverState>(bytes)),
        21 => drop(round_trip::<SaleClaim>(bytes).map(|c| c.check(&verifier, T0).is_ok())),
        22 => drop(round_trip::<DoubleSaleProof>(bytes).map(|p| p.verify())),
        23 => {
            // What a gate reads off the air: expanded against its challenge,
            // then decided like any presentation.
            if let Some(p) = round_trip::<PresentationOnAir>(bytes) {
                let ledger = BTreeMap::new();
                let challenge = venue.examination().challenge().clone();
                let p = p.expand(&challenge);
                let _ = decide(&Venue::policy(), &challenge, &p, &venue.gate_context(&ledger));
            }
        }
        24 => drop(round_trip::<CertificateOnAir>(bytes)),
        _ => drop(round_trip::<UsedAfterTransferProof>(bytes).map(|p| p.verify())),
    }
}
