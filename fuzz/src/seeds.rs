//! Writes the seed corpora that `docs/vectors/` cannot supply: transfer
//! messages and states from a real sale, a recorded NFC tap (the gate's
//! commands for the `card` target, the card's answers for `gate`), an NFC
//! gift, and registry request bodies built from real instruments.
//!
//! Run by the `make_seeds` binary (`scripts/fuzz.sh --seeds`), which is
//! built with the fuzz targets so it costs no second build of the
//! dependencies; `scripts/fuzz.sh` adds the vectors themselves at every run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::registry::{ENDPOINTS, Fixture};
use crate::{T0, Venue, frame_all, ticket_attributes, wire_selector};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tessera_core::clock::Clock;
use tessera_core::instrument::NoteAttributes;
use tessera_core::presentation::{GateEvent, NfcTransferReader, WalletCard};
use tessera_core::store::{SqliteStore, WalletStore};
use tessera_core::transfer::evidence::{DoubleSaleProof, SaleClaim};
use tessera_core::transfer::testing::World;
use tessera_core::transfer::{OfferTerms, PROTOCOL_IN, PROTOCOL_OUT, TransferEvent, TransferMessage};
use tessera_core::{Amount, Attributes, ExchangeId, InstrumentId, Signed, Signer, Wire};
use tessera_registry::wire;

struct Out(PathBuf);

impl Out {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.0.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn wire(&self, name: &str, type_name: &str, bytes: &[u8]) {
        let mut seed = vec![wire_selector(type_name)];
        seed.extend_from_slice(bytes);
        self.put("wire", name, &seed);
    }

    fn registry(&self, name: &str, endpoint: &str, caller: u8, body: &impl serde::Serialize) {
        let index = ENDPOINTS.iter().position(|e| *e == endpoint).unwrap();
        let mut seed = vec![u8::try_from(index).unwrap(), caller];
        seed.extend_from_slice(&serde_json::to_vec(body).unwrap());
        self.put("registry", name, &seed);
    }
}

/// Writes every seed under `dir/<target>/`.
pub fn write_all(dir: PathBuf) {
    let out = Out(dir);
    transfer_seeds(&out);
    tap_seeds(&out);
    registry_seeds(&out);
}

/// A sale of a ticket for notes between two wallets: every message, both
/// exchange states, a sale claim and a double-sale proof.
fn transfer_seeds(out: &Out) {
    let dir = std::env::temp_dir().join(format!("tessera-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = World::new(&dir);
    let mut seller = world.peer("seller");
    let mut buyer = world.peer("buyer");
    let ticket = world.ticket(&mut seller, "A1");
    world.notes(&mut buyer, &[2000, 2000, 500]);

    let expires = world.clock.now() + 600;
    let (_, step) =
        seller.wallet.offer_transfer(&[ticket], OfferTerms::Sale(Amount::new("EUR", 4000)), expires).unwrap();
    let mut in_flight = vec![(1usize, step.send.unwrap())];
    let mut messages = Vec::new();
    while let Some((to, bytes)) = in_flight.pop() {
        messages.push(bytes.clone());
        let wallet = if to == 0 { &mut seller.wallet } else { &mut buyer.wallet };
        let step = wallet.handle_transfer(&bytes).unwrap();
        let mut sends: Vec<Vec<u8>> = step.send.into_iter().collect();
        for event in step.events {
            if let TransferEvent::OfferReceived(summary) = event {
                sends.extend(wallet.accept_offer(summary.offer_id).unwrap().send);
            }
        }
        in_flight.extend(sends.into_iter().map(|b| (1 - to, b)));
    }
    let mut offer = None;
    let mut acceptance = None;
    for (i, bytes) in messages.iter().enumerate() {
        out.wire(&format!("transfer-message-{i}"), "TransferMessage", bytes);
        out.put("p2p_codec", &format!("request-{i}"), &[&(bytes.len() as u32).to_be_bytes()[..], bytes].concat());
        match TransferMessage::from_bytes(bytes).unwrap() {
            TransferMessage::Offer(o) => {
                out.wire("offer", "Offer", &o.to_bytes());
                offer = Some(o);
            }
            TransferMessage::Acceptance(a) => {
                out.wire("acceptance", "Acceptance", &a.to_bytes());
                acceptance = Some(a);
            }
            TransferMessage::Decline(d) => out.wire("decline", "Decline", &d.to_bytes()),
            TransferMessage::Certificate(c) => out.wire("certificate", "TransferCertificate", &c.to_bytes()),
            TransferMessage::Receipt(r) => out.wire("receipt", "Receipt", &r.to_bytes()),
        }
    }
    for (who, peer) in [("seller", &seller), ("buyer", &buyer)] {
        for record in peer.wallet.store().all_pending().unwrap() {
            let name = if record.protocol == PROTOCOL_OUT {
                "SenderState"
            } else if record.protocol == PROTOCOL_IN {
                "ReceiverState"
            } else {
                continue;
            };
            out.wire(&format!("state-{who}"), name, &record.state);
        }
    }
    let (offer, acceptance) = (offer.unwrap(), acceptance.unwrap());
    out.wire("sale-claim", "SaleClaim", &SaleClaim { offer: offer.clone(), acceptance }.to_bytes());
    // The seller's ticket now carries its link to the buyer; the same key
    // endorsing it elsewhere while the offer was open is what the proof shows.
    let sold = buyer.wallet.instrument(&ticket).unwrap().instrument;
    let link = sold.links.last().unwrap().clone();
    out.wire("double-sale", "DoubleSaleProof", &DoubleSaleProof { offer, item: 0, endorsement: link }.to_bytes());
    out.wire("instrument-sold", "Instrument", &sold.to_bytes());
    drop((seller, buyer));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One real tap at the venue's gate, and one gift by NFC.
fn tap_seeds(out: &Out) {
    let venue = Venue::new();
    let mut card = venue.card();
    let ledger = BTreeMap::new();
    let ctx = venue.gate_context(&ledger);
    let mut exam = venue.examination();
    let (mut commands, mut answers) = (Vec::new(), Vec::new());
    while let Some(command) = exam.next_command() {
        let answer = card.process_apdu(&command);
        commands.push(command);
        answers.push(answer.clone());
        match exam.on_response(&answer, &venue.gate, &ctx).unwrap() {
            GateEvent::Decided(e) => {
                out.wire("presentation", "Presentation", &e.presentation.to_bytes());
                out.wire("examination", "Signed<ExaminationBody>", &e.certificate.to_bytes());
                out.wire("challenge", "Signed<ChallengeBody>", &exam.challenge().to_bytes());
            }
            GateEvent::Finished => break,
            GateEvent::Continue => {}
        }
    }
    let mut card_seed = vec![0u8];
    card_seed.extend(frame_all(commands.iter().map(Vec::as_slice)));
    out.put("card", "tap", &card_seed);
    out.put("gate", "tap", &frame_all(answers.iter().map(Vec::as_slice)));
    for (i, c) in commands.iter().enumerate() {
        out.put("apdu", &format!("command-{i}"), c);
    }
    out.put("apdu", "chain", &frame_all(commands.iter().map(Vec::as_slice)));

    // A gift of a second ticket, phone to phone over the APDU channel.
    let mut giver = venue.wallet_with_ticket();
    let holder = giver.new_holder_key().unwrap();
    let gift =
        venue.issuer.issue_with_id(InstrumentId([0x12; 16]), ticket_attributes("R1 S2"), holder, T0 - 7200).unwrap();
    giver.import_instrument(gift).unwrap();
    let (_, step) = giver.offer_transfer(&[InstrumentId([0x12; 16])], OfferTerms::Gift, T0 + 600).unwrap();
    let mut reader = NfcTransferReader::start(step.send.unwrap());
    let mut receiver: WalletCard<SqliteStore> = venue.card();
    receiver.accept_gifts(true);
    let mut commands = Vec::new();
    while let Some(command) = reader.next_command() {
        let answer = receiver.process_apdu(&command);
        commands.push(command);
        if reader.on_response(&answer, &mut giver).is_err() || commands.len() > 64 {
            break;
        }
    }
    let mut seed = vec![1u8];
    seed.extend(frame_all(commands.iter().map(Vec::as_slice)));
    out.put("card", "gift", &seed);
}

/// Request bodies that get deep: an event, a ticket issued to a wallet key,
/// the issuer's own registration, an endorsed chain to reconcile, notes.
fn registry_seeds(out: &Out) {
    let fixture = Fixture::new();
    let issuer =
        tessera_core::authority::Issuer::new(tessera_core::LocalSigner::from_seed(&fixture.issuer.secret().to_bytes()));
    let holder = tessera_core::LocalSigner::from_seed(&[6; 32]);
    let next = tessera_core::LocalSigner::from_seed(&[7; 32]).public_key();
    let (operator, issuer_caller, stranger) = (0u8, 1u8, 2u8);

    let event = wire::EventJson {
        event_id: "final".into(),
        title: "Cup final".into(),
        zones: vec!["north".into()],
        valid_from: T0 - 3600,
        valid_until: T0 + 3600,
        price: wire::AmountJson { currency: "EUR".into(), minor: 4000 },
        transferable: true,
        uses: 1,
    };
    out.registry("event", "/events", operator, &event);
    out.registry(
        "issue-ticket",
        "/issue/ticket",
        operator,
        &wire::IssueTicketRequest {
            event_id: "final".into(),
            zone: "north".into(),
            seat: Some("R1".into()),
            holder: holder.public_key().to_hex(),
        },
    );
    let ticket = issuer
        .issue_with_id(InstrumentId([0x21; 16]), ticket_attributes("R1 S2"), holder.public_key(), T0 - 100)
        .unwrap();
    out.registry(
        "register",
        "/instruments",
        issuer_caller,
        &wire::RegisterInstrumentRequest { instrument: wire::b64(&ticket.to_bytes()) },
    );
    let body = ticket.next_endorsement(next, ExchangeId([1; 16]), ExchangeId([2; 16]), T0 - 50);
    let chain = ticket.with_link(Signed::sign(body, &holder).unwrap());
    out.registry(
        "reconcile",
        "/reconcile",
        stranger,
        &wire::ReconcileRequest {
            items: vec![wire::UploadItemJson::Chain { instrument: wire::b64(&chain.to_bytes()) }],
        },
    );
    out.registry(
        "sync",
        "/sync",
        stranger,
        &wire::SyncRequest { holders: vec![next.to_hex()], after_notice: 0, deny_since: 0 },
    );
    out.registry(
        "topup",
        "/money/topup",
        stranger,
        &wire::TopUpRequest { amount: wire::AmountJson { currency: "EUR".into(), minor: 5000 }, payment: "p1".into() },
    );
    out.registry(
        "withdraw",
        "/money/withdraw",
        stranger,
        &wire::WithdrawRequest {
            amount: wire::AmountJson { currency: "EUR".into(), minor: 2000 },
            holders: vec![next.to_hex()],
        },
    );
    let note = issuer
        .issue_with_id(
            InstrumentId([0x22; 16]),
            Attributes::Note(NoteAttributes { amount: Amount::new("EUR", 2000), expires_at: T0 + 100_000 }),
            holder.public_key(),
            T0 - 100,
        )
        .unwrap();
    let to_issuer = note.next_endorsement(issuer.public_key(), ExchangeId([3; 16]), ExchangeId::NONE, T0 - 10);
    let returned = note.with_link(Signed::sign(to_issuer, &holder).unwrap());
    out.registry(
        "redeem",
        "/money/redeem",
        stranger,
        &wire::RedeemRequest { notes: vec![wire::b64(&returned.to_bytes())], payout: false },
    );
    out.registry(
        "buy",
        "/buy",
        stranger,
        &wire::BuyRequest {
            event_id: "final".into(),
            zone: "north".into(),
            seat: None,
            holder: next.to_hex(),
            notes: vec![wire::b64(&returned.to_bytes())],
        },
    );
    out.registry(
        "party",
        "/admin/parties",
        operator,
        &wire::PartyRequest { key: next.to_hex(), role: "gate".into(), name: "North 1".into(), not_after: T0 + 10_000 },
    );
}
