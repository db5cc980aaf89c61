//! The wire test vectors in `docs/vectors/`: each decodes, re-encodes byte
//! for byte, verifies, and is exactly what the generator
//! (`core/examples/vectors.rs`) produces today. A change to any encoding
//! therefore fails here until the vectors are regenerated on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../examples/vectors.rs"]
mod generator;

use generator::{CHECKED_AT, Parties, Structure, Vector};
use std::path::PathBuf;
use tessera_core::transfer::{Terms, TransferMessage};
use tessera_core::{
    DenyList, Endorsement, EquivocationProof, Genesis, Instrument, Kind, RegisteredCertificate, Signed, Signer,
    TrustList, TrustListBody, Verifier, Wire,
};

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

fn stored(name: &str) -> (String, Vec<u8>) {
    let path = vector_dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = Vector::parse_hex(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, bytes)
}

/// Decodes and re-encodes; the bytes must come back unchanged.
fn round_trip<T: Wire>(bytes: &[u8]) -> T {
    let value = T::from_bytes(bytes).unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    assert_eq!(value.to_bytes(), bytes, "{} does not re-encode byte for byte", T::NAME);
    value
}

fn trust_list() -> TrustList {
    let (_, bytes) = stored("trust-list");
    let signed: Signed<TrustListBody> = round_trip(&bytes);
    TrustList::verify(signed, &Parties::new().registry.public_key()).unwrap()
}

#[test]
fn the_generator_still_makes_the_stored_vectors() {
    // Other message families (transfer, NFC) keep their own vectors in the
    // same directory, checked by their own tests.
    for vector in &generator::vectors().unwrap() {
        let (text, bytes) = stored(vector.name);
        assert_eq!(hex::encode(&bytes), hex::encode(&vector.bytes), "{}: bytes changed", vector.name);
        assert_eq!(text, vector.file_text(), "{}: header changed", vector.name);
    }
}

#[test]
fn every_vector_round_trips_byte_for_byte() {
    for vector in generator::vectors().unwrap() {
        let (_, bytes) = stored(vector.name);
        match vector.structure {
            Structure::Genesis => drop(round_trip::<Signed<Genesis>>(&bytes)),
            Structure::Endorsement => drop(round_trip::<Signed<Endorsement>>(&bytes)),
            Structure::Instrument => drop(round_trip::<Instrument>(&bytes)),
            Structure::RegisteredCertificate => drop(round_trip::<Signed<RegisteredCertificate>>(&bytes)),
            Structure::TrustList => drop(round_trip::<Signed<TrustListBody>>(&bytes)),
            Structure::DenyList => drop(round_trip::<Signed<DenyList>>(&bytes)),
            Structure::EquivocationProof => drop(round_trip::<EquivocationProof>(&bytes)),
            Structure::TransferMessage => drop(round_trip::<TransferMessage>(&bytes)),
        }
    }
}

#[test]
fn geneses_verify_under_the_issuer() {
    let parties = Parties::new();
    let trust = trust_list();
    let deny = DenyList::empty();
    let holder_a = parties.holders[0].public_key();
    for (name, kind) in
        [("ticket-genesis", Kind::Ticket), ("note-genesis", Kind::Note), ("coupon-genesis", Kind::Coupon)]
    {
        let genesis: Signed<Genesis> = round_trip(&stored(name).1);
        assert_eq!(genesis.verify(&parties.issuer.public_key()), Ok(()), "{name}");
        let verified = Verifier::new(&trust, &deny)
            .verify_for_holder(&Instrument::issued(genesis), &holder_a, CHECKED_AT)
            .unwrap_or_else(|r| panic!("{name}: {r}"));
        assert_eq!((verified.kind, verified.sequence), (kind, 0), "{name}");
    }
}

#[test]
fn the_endorsement_is_signed_by_holder_a_for_holder_b() {
    let parties = Parties::new();
    let link: Signed<Endorsement> = round_trip(&stored("endorsement").1);
    assert_eq!(link.verify(&parties.holders[0].public_key()), Ok(()));
    assert!(link.verify(&parties.holders[1].public_key()).is_err());
    assert_eq!(link.body.new_holder, parties.holders[1].public_key());
    let ticket: Signed<Genesis> = round_trip(&stored("ticket-genesis").1);
    assert_eq!(link.body.previous, ticket.digest());
    assert_eq!(link.body.sequence, 1);
}

#[test]
fn the_instruments_verify_for_their_holders() {
    let parties = Parties::new();
    let trust = trust_list();
    let deny = DenyList::empty();
    let verifier = Verifier::new(&trust, &deny);

    let chain: Instrument = round_trip(&stored("instrument-two-links").1);
    let verified = verifier.verify_for_holder(&chain, &parties.holders[2].public_key(), CHECKED_AT).unwrap();
    assert_eq!(verified.sequence, 2);
    let endorsement: Signed<Endorsement> = round_trip(&stored("endorsement").1);
    assert_eq!(chain.links[0], endorsement);

    let cert: Signed<RegisteredCertificate> = round_trip(&stored("registered-certificate").1);
    assert_eq!(cert.verify(&parties.registry.public_key()), Ok(()));
    assert_eq!((cert.body.sequence, cert.body.replaces, cert.body.holder), (2, verified.tip, verified.holder));
    assert_eq!(cert.body.genesis, chain.genesis.digest());

    let carried: Instrument = round_trip(&stored("instrument-registered").1);
    assert_eq!(carried.registered.as_ref(), Some(&cert));
    let verified = verifier.verify_for_holder(&carried, &parties.holders[3].public_key(), CHECKED_AT).unwrap();
    assert_eq!(verified.sequence, 3);
}

#[test]
fn the_lists_are_signed_by_the_registry() {
    let trust = trust_list();
    assert_eq!(trust.version(), 1);
    assert_eq!(trust.entries().len(), 3);
    let deny: Signed<DenyList> = round_trip(&stored("deny-list").1);
    assert_eq!(deny.verify(&Parties::new().registry.public_key()), Ok(()));
    assert_eq!(deny.body.version, 2);
    let chain: Instrument = round_trip(&stored("instrument-two-links").1);
    assert!(Verifier::new(&trust, &deny.body).verify(&chain, CHECKED_AT).is_ok());
}

/// The sale vectors are one consistent exchange: every signature verifies
/// under the key the protocol names, every message binds the one before it
/// by digest, and the instruments it moves verify for their new holders.
#[test]
fn the_sale_vectors_are_one_exchange() {
    let parties = Parties::new();
    let message = |name: &str| round_trip::<TransferMessage>(&stored(name).1);
    let (
        TransferMessage::Offer(offer),
        TransferMessage::Acceptance(acceptance),
        TransferMessage::Certificate(certificate),
        TransferMessage::Receipt(receipt),
        TransferMessage::Decline(decline),
    ) = (
        message("transfer-offer"),
        message("transfer-acceptance"),
        message("transfer-certificate"),
        message("transfer-receipt"),
        message("transfer-decline"),
    )
    else {
        panic!("a transfer vector holds the wrong message");
    };
    let seller = tessera_core::LocalSigner::from_seed(&generator::SELLER_ACCOUNT_SEED).public_key();
    let buyer = tessera_core::LocalSigner::from_seed(&generator::BUYER_ACCOUNT_SEED).public_key();
    let [a, b, c, d] = parties.holders.each_ref().map(|h| h.public_key());

    assert_eq!(offer.verify_signatures(), Ok(()));
    assert_eq!((offer.body.sender, offer.body.items[0].holder()), (seller, a));
    let Terms::Sale { payee_keys, change, .. } = &offer.body.terms else { panic!("a sale") };
    assert_eq!((payee_keys.as_slice(), change.as_slice()), ([d].as_slice(), [1_000].as_slice()));

    assert_eq!(acceptance.verify(&buyer), Ok(()));
    assert_eq!(acceptance.body.offer_digest, offer.digest());
    assert_eq!(decline.verify(&buyer), Ok(()));
    assert_eq!((decline.body.offer_id, decline.body.offer_digest), (offer.id(), offer.digest()));
    // Neither answer's signature stands for the other.
    assert!(Signed { body: decline.body.clone(), signature: acceptance.signature }.verify(&buyer).is_err());

    assert_eq!(certificate.verify(&seller), Ok(()));
    assert_eq!(certificate.body.acceptance_digest, acceptance.digest());
    assert_eq!(receipt.verify(&buyer), Ok(()));
    assert_eq!(receipt.body.certificate_digest, certificate.digest());

    // What moved verifies for its new holder at the time of the exchange.
    let trust = trust_list();
    let deny = DenyList::empty();
    let verifier = Verifier::new(&trust, &deny);
    let at = acceptance.body.time + 1;
    let payment = &acceptance.body.payment[0];
    assert_eq!(payment.links[0].verify(&b), Ok(()));
    assert!(verifier.verify_for_holder(payment, &d, at).is_ok());
    let ticket = offer.body.items[0].with_link(certificate.body.endorsements[0].clone());
    let ticket_key = acceptance.body.holder_keys[0];
    assert!(verifier.verify_for_holder(&ticket, &ticket_key, at).is_ok());
    let change_note = &certificate.body.change[0];
    assert_eq!(change_note.links[0].verify(&c), Ok(()));
    assert!(verifier.verify_for_holder(change_note, &acceptance.body.change_keys[0], at).is_ok());
    // Every link is bound to this exchange.
    for link in [&payment.links[0], &certificate.body.endorsements[0], &change_note.links[0]] {
        assert_eq!((link.body.offer_id, link.body.acceptance_id), (offer.id(), acceptance.body.acceptance_id));
    }
}

#[test]
fn the_proof_names_holder_b() {
    let parties = Parties::new();
    let proof: EquivocationProof = round_trip(&stored("equivocation-proof").1);
    assert_eq!(proof.verify(), Ok(parties.holders[1].public_key()));
    assert_eq!(proof.sequence(), 2);
    let chain: Instrument = round_trip(&stored("instrument-two-links").1);
    assert_eq!(proof.instrument_id(), chain.id());
    assert!(proof.first == chain.links[1] || proof.second == chain.links[1]);
}

/// `docs/protocol.md` lists every context with its label and every core
/// message with its bound; this keeps the tables from drifting.
#[test]
fn the_protocol_document_matches_the_code() {
    use tessera_core::Context;
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md")).unwrap();
    for context in Context::ALL {
        let row = format!("| `{context:?}` | `{}` |", context.label());
        assert!(doc.contains(&row), "protocol.md lacks the context row {row}");
    }
    fn grouped(n: usize) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }
    fn bound<T: Wire>(doc: &str, rust: &str) {
        let row = format!("| `{rust}` | `{}` | {} B |", T::NAME, grouped(T::MAX_LEN));
        assert!(doc.contains(&row), "protocol.md lacks the bound row {row}");
    }
    bound::<Instrument>(&doc, "Instrument");
    bound::<Signed<Genesis>>(&doc, "Signed<Genesis>");
    bound::<Signed<Endorsement>>(&doc, "Signed<Endorsement>");
    bound::<Signed<RegisteredCertificate>>(&doc, "Signed<RegisteredCertificate>");
    bound::<Signed<TrustListBody>>(&doc, "Signed<TrustListBody>");
    bound::<Signed<DenyList>>(&doc, "Signed<DenyList>");
    bound::<EquivocationProof>(&doc, "EquivocationProof");
    assert!(doc.contains(&format!("`verify::MAX_LINKS` = {}", tessera_core::verify::MAX_LINKS)));
}

/// The signing and digest rules of protocol.md §2, checked with the raw
/// primitives rather than through `crypto.rs`, on the annotated endorsement
/// vector of §3.2.
#[test]
fn the_documented_signing_and_digest_rules_hold() {
    use sha2::Digest as _;
    let parties = Parties::new();
    let bytes = stored("endorsement").1;
    // frame [1, …], Signed = [body, sig], body = array(7), id = bstr(16).
    assert_eq!(bytes[..5], [0x82, 0x01, 0x82, 0x87, 0x50]);
    let body_len = bytes.len() - 2 - 1 - 66;
    let body = &bytes[3..3 + body_len];
    assert_eq!(bytes[3 + body_len..3 + body_len + 2], [0x58, 0x40], "signature = bstr(64)");
    let signature: [u8; 64] = bytes[bytes.len() - 64..].try_into().unwrap();

    let mut signed = b"tessera/v1/endorsement\0".to_vec();
    signed.extend_from_slice(body);
    let holder_a = ed25519_dalek::VerifyingKey::from_bytes(parties.holders[0].public_key().as_bytes()).unwrap();
    holder_a.verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&signature)).unwrap();

    // `previous` is SHA-256("tessera/v1/digest\0" ‖ unframed genesis).
    let genesis = stored("ticket-genesis").1;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"tessera/v1/digest\0");
    hasher.update(&genesis[2..]);
    let link: Signed<Endorsement> = round_trip(&bytes);
    assert_eq!(link.body.previous.0, <[u8; 32]>::from(hasher.finalize()));
}
