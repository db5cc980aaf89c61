//! Writes the wire test vectors in `docs/vectors/`.
//!
//! Every key comes from a fixed seed (`LocalSigner::from_seed`), every id and
//! time is fixed, and Ed25519 signing is deterministic, so the output is the
//! same on every run and every machine. `core/tests/vectors.rs` checks that
//! the files in the tree are exactly what this produces; after a deliberate
//! encoding change, regenerate them with
//!
//! ```text
//! cargo run -p tessera-core --example vectors            # writes docs/vectors/
//! cargo run -p tessera-core --example vectors -- OUT_DIR # writes elsewhere
//! ```
//!
//! and say in the commit why the bytes changed.

use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::transfer::{
    AcceptanceBody, CertificateBody, DeclineBody, Offer, OfferBody, ReceiptBody, Terms, TransferMessage,
};
use tessera_core::{
    Amount, Attributes, CouponAttributes, DenyList, EquivocationProof, ExchangeId, Instrument, InstrumentId,
    LocalSigner, NoteAttributes, PublicKey, Role, Signed, Signer, SignerError, TicketAttributes, Timestamp, TrustEntry,
    TrustList, Verifier, Wire,
};

/// 2026-01-01T00:00:00Z: when the vectors' instruments were issued.
pub const ISSUED_AT: Timestamp = 1_767_225_600;
/// 2027-01-01T00:00:00Z: when they and the certifications lapse.
pub const VALID_UNTIL: Timestamp = 1_798_761_600;
/// 2026-01-02T00:00:00Z: a time at which every vector verifies.
pub const CHECKED_AT: Timestamp = 1_767_312_000;

/// Seeds of the parties' keys (never use such keys for anything real).
pub const REGISTRY_SEED: [u8; 32] = [0x01; 32];
/// The issuer.
pub const ISSUER_SEED: [u8; 32] = [0x02; 32];
/// A merchant certified in the trust list.
pub const MERCHANT_SEED: [u8; 32] = [0x03; 32];
/// A gate certified in the trust list.
pub const GATE_SEED: [u8; 32] = [0x04; 32];
/// Holder keys A, B, C and D.
pub const HOLDER_SEEDS: [[u8; 32]; 4] = [[0x0A; 32], [0x0B; 32], [0x0C; 32], [0x0D; 32]];

/// Instrument ids.
pub const TICKET_ID: InstrumentId = InstrumentId([0x11; 16]);
/// The note's id.
pub const NOTE_ID: InstrumentId = InstrumentId([0x22; 16]);
/// The coupon's id.
pub const COUPON_ID: InstrumentId = InstrumentId([0x33; 16]);

/// The structure a vector holds, which says how to decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// `Signed<Genesis>`
    Genesis,
    /// `Signed<Endorsement>`
    Endorsement,
    /// `Instrument`
    Instrument,
    /// `Signed<RegisteredCertificate>`
    RegisteredCertificate,
    /// `Signed<TrustListBody>`
    TrustList,
    /// `Signed<DenyList>`
    DenyList,
    /// `EquivocationProof`
    EquivocationProof,
    /// `TransferMessage` (what the p2p and NFC transports carry)
    TransferMessage,
}

impl Structure {
    /// The Rust type, as the header names it.
    pub fn type_name(self) -> &'static str {
        match self {
            Structure::Genesis => "Signed<Genesis>",
            Structure::Endorsement => "Signed<Endorsement>",
            Structure::Instrument => "Instrument",
            Structure::RegisteredCertificate => "Signed<RegisteredCertificate>",
            Structure::TrustList => "Signed<TrustListBody>",
            Structure::DenyList => "Signed<DenyList>",
            Structure::EquivocationProof => "EquivocationProof",
            Structure::TransferMessage => "TransferMessage",
        }
    }
}

/// One test vector: a file `docs/vectors/<name>.hex`.
#[derive(Debug, Clone)]
pub struct Vector {
    /// File stem.
    pub name: &'static str,
    /// How to decode it.
    pub structure: Structure,
    /// What it is and how it was made, for the header.
    pub about: &'static str,
    /// The framed encoding.
    pub bytes: Vec<u8>,
}

impl Vector {
    fn new(name: &'static str, structure: Structure, about: &'static str, bytes: Vec<u8>) -> Self {
        Self { name, structure, about, bytes }
    }

    /// The file's text: a `#` header, then the hex, 64 digits a line.
    pub fn file_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("# Tessera test vector: {}\n", self.name));
        out.push_str(&format!("# type: {} (framed [1, message], see docs/protocol.md)\n", self.structure.type_name()));
        for line in self.about.lines() {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str("# keys: LocalSigner::from_seed([b; 32]) with b = 01 registry, 02 issuer, 03 merchant,\n");
        out.push_str("#       04 gate, 0a/0b/0c/0d holders A/B/C/D; ids [11; 16] ticket, [22; 16] note,\n");
        out.push_str("#       [33; 16] coupon; times are fixed (core/examples/vectors.rs)\n");
        out.push_str("# regenerate: cargo run -p tessera-core --example vectors\n");
        out.push_str(&format!("# length: {} bytes\n", self.bytes.len()));
        let hex = hex::encode(&self.bytes);
        for chunk in hex.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out
    }

    /// Reads the bytes back from [`Vector::file_text`]'s format.
    pub fn parse_hex(text: &str) -> Result<Vec<u8>, hex::FromHexError> {
        let digits: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect();
        hex::decode(digits)
    }
}

/// The parties, rebuilt from their seeds.
#[derive(Debug)]
pub struct Parties {
    /// The service provider.
    pub registry: RegistryAuthority<LocalSigner>,
    /// The issuer.
    pub issuer: Issuer<LocalSigner>,
    /// A merchant.
    pub merchant: PublicKey,
    /// A gate.
    pub gate: PublicKey,
    /// Holders A, B, C, D.
    pub holders: [LocalSigner; 4],
}

impl Parties {
    /// Rebuilds every key from its seed.
    pub fn new() -> Self {
        Self {
            registry: RegistryAuthority::new(LocalSigner::from_seed(&REGISTRY_SEED)),
            issuer: Issuer::new(LocalSigner::from_seed(&ISSUER_SEED)),
            merchant: LocalSigner::from_seed(&MERCHANT_SEED).public_key(),
            gate: LocalSigner::from_seed(&GATE_SEED).public_key(),
            holders: HOLDER_SEEDS.map(|seed| LocalSigner::from_seed(&seed)),
        }
    }
}

impl Default for Parties {
    fn default() -> Self {
        Self::new()
    }
}

fn ticket() -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: "festival-2026".into(),
        title: "Summer Festival 2026".into(),
        zone: "north".into(),
        seat: Some("B-14".into()),
        guidance: Some("stairs 3".into()),
        valid_from: ISSUED_AT,
        valid_until: VALID_UNTIL,
        transferable: true,
        uses: 1,
        face_price: Some(Amount::new("EUR", 4_500)),
    })
}

fn note() -> Attributes {
    Attributes::Note(NoteAttributes { amount: Amount::new("EUR", 1_000), expires_at: VALID_UNTIL })
}

fn coupon() -> Attributes {
    Attributes::Coupon(CouponAttributes {
        program: "coffee-card".into(),
        title: "Ten coffees".into(),
        uses: 10,
        valid_from: ISSUED_AT,
        valid_until: VALID_UNTIL,
        transferable: false,
    })
}

/// Endorses `inst` from holder `from` to holder `to`, in exchange `exchange`.
fn endorse(
    inst: &Instrument,
    parties: &Parties,
    from: usize,
    to: usize,
    exchange: u8,
    time: Timestamp,
) -> Result<Instrument, SignerError> {
    let body = inst.next_endorsement(
        parties.holders[to].public_key(),
        ExchangeId([exchange; 16]),
        ExchangeId([exchange | 0x80; 16]),
        time,
    );
    Ok(inst.with_link(Signed::sign(body, &parties.holders[from])?))
}

/// Seeds of the two wallets' account keys in the transfer vectors: the
/// seller S and the buyer R.
pub const SELLER_ACCOUNT_SEED: [u8; 32] = [0x0E; 32];
/// The buyer's account.
pub const BUYER_ACCOUNT_SEED: [u8; 32] = [0x0F; 32];
/// Fresh holder keys of the buyer: for the ticket (E) and for the change (F).
pub const BUYER_FRESH_SEEDS: [[u8; 32]; 2] = [[0x1E; 32], [0x1F; 32]];
/// The buyer's 20.00 EUR note.
pub const BUYER_NOTE_ID: InstrumentId = InstrumentId([0x44; 16]);
/// The sale's offer and acceptance ids.
pub const SALE_OFFER_ID: ExchangeId = ExchangeId([0x05; 16]);
/// The acceptance id.
pub const SALE_ACCEPTANCE_ID: ExchangeId = ExchangeId([0x85; 16]);

/// One whole sale (DESIGN §3.1, docs/transfer.md): seller S offers the
/// ticket (held by A) for 10.00 EUR with a 10.00 EUR change note (held by C)
/// set aside; buyer R accepts with fresh keys E (ticket) and F (change) and
/// pays with a 20.00 EUR note (held by B) endorsed to the payee key D; S
/// answers with the certificate (ticket A → E, change C → F); R signs the
/// receipt. And R's decline of the same offer, the other possible answer.
pub fn sale_messages(p: &Parties) -> Result<[TransferMessage; 5], Box<dyn std::error::Error>> {
    let seller = LocalSigner::from_seed(&SELLER_ACCOUNT_SEED);
    let buyer = LocalSigner::from_seed(&BUYER_ACCOUNT_SEED);
    let [ticket_key, change_key] = BUYER_FRESH_SEEDS.map(|seed| LocalSigner::from_seed(&seed).public_key());
    let [a, b, c, d] = &p.holders;
    let offered_at = ISSUED_AT + 20_000;

    let ticket = p.issuer.issue_with_id(TICKET_ID, ticket(), a.public_key(), ISSUED_AT)?;
    let change_note = p.issuer.issue_with_id(NOTE_ID, note(), c.public_key(), ISSUED_AT)?;
    let twenty = Attributes::Note(NoteAttributes { amount: Amount::new("EUR", 2_000), expires_at: VALID_UNTIL });
    let buyer_note = p.issuer.issue_with_id(BUYER_NOTE_ID, twenty, b.public_key(), ISSUED_AT)?;

    let offer = Offer::sign(
        OfferBody {
            offer_id: SALE_OFFER_ID,
            sender: seller.public_key(),
            items: vec![ticket.clone()],
            terms: Terms::Sale {
                price: Amount::new("EUR", 1_000),
                payee_keys: vec![d.public_key()],
                change: vec![1_000],
            },
            created_at: offered_at,
            expires_at: offered_at + 300,
        },
        &seller,
        &[a],
    )?;
    let link = |inst: &Instrument, to: PublicKey, from: &LocalSigner, time| -> Result<Instrument, SignerError> {
        let body = inst.next_endorsement(to, SALE_OFFER_ID, SALE_ACCEPTANCE_ID, time);
        Ok(inst.with_link(Signed::sign(body, from)?))
    };
    let acceptance = Signed::sign(
        AcceptanceBody {
            offer_id: SALE_OFFER_ID,
            offer_digest: offer.digest(),
            acceptance_id: SALE_ACCEPTANCE_ID,
            receiver: buyer.public_key(),
            holder_keys: vec![ticket_key],
            payment: vec![link(&buyer_note, d.public_key(), b, offered_at + 10)?],
            change_keys: vec![change_key],
            time: offered_at + 10,
        },
        &buyer,
    )?;
    let endorsed = link(&ticket, ticket_key, a, offered_at + 11)?;
    let Some(ticket_link) = endorsed.links.last().cloned() else {
        return Err("endorsement without a link".into());
    };
    let certificate = Signed::sign(
        CertificateBody {
            offer_id: SALE_OFFER_ID,
            acceptance_id: SALE_ACCEPTANCE_ID,
            acceptance_digest: acceptance.digest(),
            endorsements: vec![ticket_link],
            change: vec![link(&change_note, change_key, c, offered_at + 11)?],
        },
        &seller,
    )?;
    let receipt = Signed::sign(
        ReceiptBody {
            offer_id: SALE_OFFER_ID,
            acceptance_id: SALE_ACCEPTANCE_ID,
            certificate_digest: certificate.digest(),
            receiver: buyer.public_key(),
            instruments: vec![TICKET_ID],
            time: offered_at + 12,
        },
        &buyer,
    )?;
    let decline = Signed::sign(
        DeclineBody {
            offer_id: SALE_OFFER_ID,
            offer_digest: offer.digest(),
            receiver: buyer.public_key(),
            reason: "declined on screen".into(),
            time: offered_at + 10,
        },
        &buyer,
    )?;
    Ok([
        TransferMessage::Offer(offer),
        TransferMessage::Acceptance(acceptance),
        TransferMessage::Certificate(certificate),
        TransferMessage::Receipt(receipt),
        TransferMessage::Decline(decline),
    ])
}

/// Every vector, in a fixed order.
pub fn vectors() -> Result<Vec<Vector>, Box<dyn std::error::Error>> {
    use Structure as S;
    let p = Parties::new();
    let holder_a = p.holders[0].public_key();

    let ticket = p.issuer.issue_with_id(TICKET_ID, ticket(), holder_a, ISSUED_AT)?;
    let note = p.issuer.issue_with_id(NOTE_ID, note(), holder_a, ISSUED_AT)?;
    let coupon = p.issuer.issue_with_id(COUPON_ID, coupon(), holder_a, ISSUED_AT)?;

    // A → B (exchange 01), then B → C (exchange 02).
    let one_link = endorse(&ticket, &p, 0, 1, 0x01, ISSUED_AT + 3_600)?;
    let two_links = endorse(&one_link, &p, 1, 2, 0x02, ISSUED_AT + 7_200)?;

    let entry = |key, role, name: &str| TrustEntry { key, role, name: name.into(), not_after: VALID_UNTIL };
    let trust = p.registry.trust_list(
        1,
        vec![
            entry(p.issuer.public_key(), Role::Issuer, "Festival Tickets Ltd"),
            entry(p.merchant, Role::Merchant, "Festival Shop"),
            entry(p.gate, Role::Gate, "North Gate 1"),
        ],
        ISSUED_AT - 86_400,
    )?;

    // The registry compacts what the verifier established: C holds the
    // ticket at sequence 2.
    let checked = TrustList::verify(trust.clone(), &p.registry.public_key())?;
    let verified = Verifier::new(&checked, &DenyList::empty()).verify(&two_links, CHECKED_AT)?;
    let registered = p.registry.register(&two_links, &verified, verified.state, ISSUED_AT + 10_800)?;
    // C → D (exchange 03) after the certificate.
    let after_cert = endorse(&registered, &p, 2, 3, 0x03, ISSUED_AT + 14_400)?;

    // B also endorsed sequence 2 to D (exchange 04): a double transfer.
    let double = endorse(&one_link, &p, 1, 3, 0x04, ISSUED_AT + 7_300)?;
    let (Some(honest_link), Some(double_link)) = (two_links.links.last(), double.links.last()) else {
        return Err("chain without links".into());
    };
    let proof = EquivocationProof::new(p.holders[1].public_key(), honest_link.clone(), double_link.clone())?;

    let mut deny = DenyList::empty();
    deny.deny(InstrumentId([0x99; 16]));
    deny.deny(InstrumentId([0x98; 16]));
    let deny = p.registry.deny_list(deny)?;

    let Some(cert) = registered.registered.clone() else {
        return Err("register gave no certificate".into());
    };
    let [offer, acceptance, certificate, receipt, decline] = sale_messages(&p)?;
    Ok(vec![
        Vector::new(
            "ticket-genesis",
            S::Genesis,
            "A ticket issued by the issuer to holder A at 2026-01-01T00:00:00Z, valid for 2026.",
            ticket.genesis.to_bytes(),
        ),
        Vector::new(
            "note-genesis",
            S::Genesis,
            "A 10.00 EUR note issued to holder A, expiring 2027-01-01.",
            note.genesis.to_bytes(),
        ),
        Vector::new(
            "coupon-genesis",
            S::Genesis,
            "A non-transferable ten-use coupon issued to holder A.",
            coupon.genesis.to_bytes(),
        ),
        Vector::new(
            "endorsement",
            S::Endorsement,
            "Holder A endorses the ticket to holder B (sequence 1, offer [01; 16],\nacceptance [81; 16]).",
            one_link.links[0].to_bytes(),
        ),
        Vector::new(
            "instrument-two-links",
            S::Instrument,
            "The ticket with its chain A -> B -> C (sequences 1 and 2); holder C.",
            two_links.to_bytes(),
        ),
        Vector::new(
            "registered-certificate",
            S::RegisteredCertificate,
            "The registry compacts instrument-two-links: holder C at sequence 2, active,\none use left.",
            cert.to_bytes(),
        ),
        Vector::new(
            "instrument-registered",
            S::Instrument,
            "The ticket carried from the registered certificate, then C -> D (sequence 3);\nholder D.",
            after_cert.to_bytes(),
        ),
        Vector::new(
            "trust-list",
            S::TrustList,
            "Trust list version 1 signed by the registry: the issuer, a merchant and a gate.",
            trust.to_bytes(),
        ),
        Vector::new(
            "deny-list",
            S::DenyList,
            "Deny list version 2 signed by the registry: instruments [98; 16] and [99; 16].",
            deny.to_bytes(),
        ),
        Vector::new(
            "equivocation-proof",
            S::EquivocationProof,
            "Holder B endorsed sequence 2 of the ticket twice: to C (exchange 02) and\nto D (exchange 04). The proof names B.",
            proof.to_bytes(),
        ),
        Vector::new(
            "transfer-offer",
            S::TransferMessage,
            "Seller S (account key seed 0e) offers the ticket, held by A, for 10.00 EUR:\n\
             payee key D, a 10.00 EUR change note set aside; offer [05; 16], valid 5 minutes.\n\
             Signed by S's account key and by A (the ticket's holder key).",
            offer.to_bytes(),
        ),
        Vector::new(
            "transfer-acceptance",
            S::TransferMessage,
            "Buyer R (account key seed 0f) accepts transfer-offer: fresh key E (seed 1e) for\n\
             the ticket, F (seed 1f) for the change; pays with a 20.00 EUR note [44; 16]\n\
             endorsed B -> D inside the exchange (acceptance [85; 16]).",
            acceptance.to_bytes(),
        ),
        Vector::new(
            "transfer-certificate",
            S::TransferMessage,
            "S hands over: the ticket endorsed A -> E and the change note [22; 16] endorsed\n\
             C -> F, both bound to offer [05; 16] and acceptance [85; 16]; signed by S.",
            certificate.to_bytes(),
        ),
        Vector::new(
            "transfer-receipt",
            S::TransferMessage,
            "R's receipt for transfer-certificate (names its digest and the ticket).",
            receipt.to_bytes(),
        ),
        Vector::new(
            "transfer-decline",
            S::TransferMessage,
            "R declines transfer-offer instead (names the offer's digest).",
            decline.to_bytes(),
        ),
    ])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors"), Into::into);
    std::fs::create_dir_all(&dir)?;
    for vector in vectors()? {
        std::fs::write(dir.join(format!("{}.hex", vector.name)), vector.file_text())?;
    }
    Ok(())
}
