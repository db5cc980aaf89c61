//! `tessera demo`: the main job. On embedded defaults, in a temporary
//! directory, it runs the system end to end and tells what happens:
//! a service provider, an issuer with one event, wallets that receive,
//! verify and pass on tickets and money, a forgery and a double transfer
//! that are caught, and the proof that names who signed twice.

use anyhow::{Context as _, Result, anyhow};
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::sealing::PassphraseKeyProvider;
use tessera_core::store::{Holding, WalletStore};
use tessera_core::transfer::OfferTerms;
use tessera_core::{
    Amount, Attributes, Clock, DenyList, EquivocationProof, ExchangeId, Instrument, InstrumentId, InstrumentState,
    LocalSigner, NoteAttributes, Role, Signed, Status, SystemClock, TicketAttributes, TrustEntry, TrustList, Verifier,
    Wallet, WalletError, Wire,
};

const DAY: u64 = 86_400;

struct Story {
    step: usize,
}

impl Story {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n{}. {title}", self.step);
    }
    fn say(&self, line: impl AsRef<str>) {
        println!("   {}", line.as_ref());
    }
}

fn money(minor: u64) -> String {
    Amount::new("EUR", minor).to_string()
}

fn balance_of(wallet: &Wallet) -> Result<u64> {
    Ok(wallet.balance()?.iter().filter(|b| b.currency == "EUR").map(|b| b.available).sum())
}

/// Moves one instrument from `from` to a fresh holder key in `to`, the way
/// the transfer protocol will: endorse (pending out), import, confirm.
fn hand_over(from: &mut Wallet, to: &mut Wallet, id: &InstrumentId) -> Result<Instrument> {
    let key = to.new_holder_key()?;
    let (offer, acceptance) = (ExchangeId::random(&mut rand::rngs::OsRng), ExchangeId::random(&mut rand::rngs::OsRng));
    let endorsed = from.endorse(id, key, offer, acceptance)?;
    to.import(&endorsed.to_bytes())?;
    from.confirm_transferred(id)?;
    Ok(endorsed)
}

pub fn run() -> Result<()> {
    let dir = tempfile::tempdir().context("making a temporary directory")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let rng = &mut rand::rngs::OsRng;
    let mut story = Story { step: 0 };
    println!("Tessera demo: every party runs in this process; wallets are SQLite files in {}", dir.path().display());

    story.step("The service provider certifies an issuer and an e-money issuer");
    let sp = RegistryAuthority::new(LocalSigner::generate(rng));
    let theatre = Issuer::new(LocalSigner::generate(rng));
    let bank = Issuer::new(LocalSigner::generate(rng));
    let certify = |key, role, name: &str| TrustEntry { key, role, name: name.into(), not_after: now + 365 * DAY };
    let trust_list = sp.trust_list(
        1,
        vec![
            certify(theatre.public_key(), Role::Issuer, "Theatrum Marcelli"),
            certify(bank.public_key(), Role::Issuer, "Tessera Bank"),
        ],
        now,
    )?;
    story.say(format!("service provider key {}", sp.public_key()));
    story.say(format!(
        "trust list v1: Theatrum Marcelli {}, Tessera Bank {}",
        theatre.public_key().short(),
        bank.public_key().short()
    ));

    story.step("Alice, Bob and Carol create wallets and pin the service provider's key");
    let open_wallet = |name: &str| -> Result<Wallet> {
        let keys = PassphraseKeyProvider::new(format!("{name}'s passphrase"));
        let mut w = Wallet::create_at(dir.path().join(format!("{name}.db")), &keys, clock.clone())?;
        w.pin_registry(sp.public_key())?;
        w.install_trust_list(&trust_list.to_bytes())?;
        story.say(format!(
            "{name}: account key {} (private keys sealed with ChaCha20-Poly1305 under an Argon2id key)",
            w.account_key().short()
        ));
        Ok(w)
    };
    let mut alice = open_wallet("alice")?;
    let mut bob = open_wallet("bob")?;
    let mut carol = open_wallet("carol")?;

    story.step("The theatre issues Alice two tickets; the bank issues her 50.00 EUR in notes");
    let ticket = |seat: &str| {
        Attributes::Ticket(TicketAttributes {
            event_id: "ludi-romani-2026".into(),
            title: "Ludi Romani, opening night".into(),
            zone: "A".into(),
            seat: Some(seat.into()),
            guidance: Some("entrance 2, step-free route on the left".into()),
            valid_from: now - DAY,
            valid_until: now + 30 * DAY,
            transferable: true,
            uses: 1,
            face_price: Some(Amount::new("EUR", 4_000)),
        })
    };
    let mut seats = Vec::new();
    for seat in ["12", "13"] {
        let holder = alice.new_holder_key()?;
        let issued = theatre.issue(ticket(seat), holder, now, rng)?;
        let summary = alice.import(&issued.to_bytes())?;
        story.say(format!("ticket {} verified and stored: {}", summary.id, summary.label));
        seats.push(summary.id);
    }
    let mut notes = Vec::new();
    // 50.00 EUR as 20 + 20 + 10, so Alice can pay 20.00 without change.
    for value in [2_000, 2_000, 1_000] {
        let holder = alice.new_holder_key()?;
        let note = NoteAttributes { amount: Amount::new("EUR", value), expires_at: now + 365 * DAY };
        let summary = alice.import(&bank.issue(Attributes::Note(note), holder, now, rng)?.to_bytes())?;
        notes.push((summary.id, value));
    }
    story.say(format!(
        "notes verified: {}; Alice's balance {}",
        notes.iter().map(|(_, v)| money(*v)).collect::<Vec<_>>().join(" + "),
        money(balance_of(&alice)?)
    ));

    // A backup Alice keeps; she will misuse it in step 7.
    let backup = dir.path().join("alice-backup.db");
    alice.backup_to(&backup).context("backing up Alice's wallet")?;

    story.step("Alice gives Bob the ticket for seat 12");
    let seat12 = seats[0];
    let to_bob = hand_over(&mut alice, &mut bob, &seat12)?;
    let verified = bob.verify(&seat12)?;
    story.say(format!(
        "Bob's wallet made a fresh holder key; Alice's wallet endorsed the ticket to it (sequence {})",
        to_bob.sequence()
    ));
    story.say(format!(
        "Bob's wallet verified the chain: held by Bob's key {} at sequence {}",
        verified.holder.short(),
        verified.sequence
    ));
    story.say(format!(
        "Alice's copy is now {}: she can neither present it nor offer it again",
        alice.instrument(&seat12)?.holding.as_str()
    ));
    if let Err(e) = alice.endorse(&seat12, carol.new_holder_key()?, ExchangeId::NONE, ExchangeId::NONE) {
        story.say(format!("Alice's wallet refuses to endorse it a second time: {e}"));
    }

    story.step("Alice pays Bob 20.00 EUR");
    let (note, value) = notes.iter().find(|(_, v)| *v == 2_000).copied().ok_or_else(|| anyhow!("no 20 EUR note"))?;
    hand_over(&mut alice, &mut bob, &note)?;
    story.say(format!(
        "note of {} endorsed and verified; Alice has {}, Bob has {}",
        money(value),
        money(balance_of(&alice)?),
        money(balance_of(&bob)?)
    ));

    story.step("Mallory tries forgeries; every wallet's verifier rejects them");
    let mut forged = to_bob.clone();
    if let Attributes::Ticket(t) = &mut forged.genesis.body.attributes {
        t.seat = Some("1".into());
    }
    match bob.import(&forged.to_bytes()) {
        Err(WalletError::Rejected(reason)) => story.say(format!("seat 12 rewritten as seat 1: rejected, {reason}")),
        other => return Err(anyhow!("a forged seat was not rejected: {other:?}")),
    }
    let mallory = LocalSigner::generate(rng);
    let seat13 = alice.instrument(&seats[1])?.instrument;
    let mallory_key = carol.new_holder_key()?;
    let stolen = seat13.with_link(Signed::sign(
        seat13.next_endorsement(mallory_key, ExchangeId::NONE, ExchangeId::NONE, now),
        &mallory,
    )?);
    match carol.import(&stolen.to_bytes()) {
        Err(WalletError::Rejected(reason)) => {
            story.say(format!("seat 13 endorsed by a key that does not hold it: rejected, {reason}"))
        }
        other => return Err(anyhow!("a stolen ticket was not rejected: {other:?}")),
    }
    let mut truncated = to_bob.to_bytes();
    truncated.truncate(truncated.len() - 10);
    match bob.import(&truncated) {
        Err(e) => story.say(format!("a damaged transfer: rejected, {e}")),
        Ok(_) => return Err(anyhow!("damaged bytes were accepted")),
    }

    story.step("Alice sells Bob seat 13 for 20.00 EUR, phone to phone over a libp2p swarm on loopback");
    let seat13_id = seats[1];
    let price = Amount::new("EUR", 2_000);
    let (seller, buyer, elapsed) =
        crate::p2p_cmd::move_over_loopback(alice, bob, vec![seat13_id], OfferTerms::Sale(price.clone()))?;
    (alice, bob) = (seller, buyer);
    story.say(format!(
        "offer → acceptance with payment → transfer certificate → receipt took {} ms over QUIC/TCP on 127.0.0.1",
        elapsed.as_millis()
    ));
    story.say(format!(
        "Bob's wallet verified and holds seat 13 ({}); Alice has {}, Bob has {}",
        bob.instrument(&seat13_id)?.holding.as_str(),
        money(balance_of(&alice)?),
        money(balance_of(&bob)?)
    ));

    story.step("Alice cheats: she restores her backup and endorses seat 12 again, to Carol");
    let keys = PassphraseKeyProvider::new("alice's passphrase");
    let mut restored = Wallet::open_at(&backup, &keys, clock.clone())?;
    let carol_key = carol.new_holder_key()?;
    let to_carol = restored.endorse(&seat12, carol_key, ExchangeId::random(rng), ExchangeId::random(rng))?;
    carol.import(&to_carol.to_bytes())?;
    story.say("Carol's wallet, offline, verified it: offline nothing can stop a double transfer; it can be caught");

    story.step("Reconciliation with the service provider catches the double transfer");
    // The service provider keeps the first chain it registers for each
    // (instrument, sequence); a second, different one is an equivocation.
    let first = &to_bob;
    let registry_trust = TrustList::verify(trust_list.clone(), &sp.public_key())?;
    let no_denials = DenyList::empty();
    let first_verified = Verifier::new(&registry_trust, &no_denials).verify(first, now)?;
    let registered =
        sp.register(first, &first_verified, InstrumentState { uses_left: 1, status: Status::Active }, now)?;
    story.say(format!(
        "Bob's chain arrives first: registered, certificate issued to Bob's key {}",
        first_verified.holder.short()
    ));
    let proof = EquivocationProof::find(first, &to_carol).ok_or_else(|| anyhow!("no proof found"))?;
    let signer = proof.verify()?;
    story.say(format!(
        "Carol's chain is rejected: it endorses sequence {} again; equivocation proof ({} bytes) names key {}",
        proof.sequence(),
        proof.to_bytes().len(),
        signer.short()
    ));
    story.say(format!("that is the key Alice held seat 12 with: {}", signer == alice.instrument(&seat12)?.holder));
    let decoded = EquivocationProof::from_bytes(&proof.to_bytes())?;
    story.say(format!(
        "anyone can check the proof offline: {}",
        if decoded.verify().is_ok() { "it verifies" } else { "it FAILS" }
    ));
    bob.import(&registered.to_bytes())?;
    let compact = bob.instrument(&seat12)?;
    story.say(format!(
        "Bob's wallet replaces the chain with the registered certificate ({} bytes; a chain grows ~190 bytes a hop) and verified it again: {}",
        compact.instrument.to_bytes().len(),
        if bob.verify(&seat12).is_ok() { "valid" } else { "INVALID" }
    ));

    story.say(
        "Carol keeps her copy until her next sync, where the service provider tells her of the conflict and the proof",
    );

    story.step("What each wallet holds now");
    for (name, wallet) in [("Alice", &alice), ("Bob", &bob), ("Carol", &carol)] {
        let held: Vec<String> = wallet
            .instruments(Default::default())?
            .into_iter()
            .filter(|r| r.holding == Holding::Held)
            .map(|r| r.label)
            .collect();
        story.say(format!("{name}: {} ({} history lines)", held.join("; "), wallet.store().history(1000)?.len()));
    }
    println!("\ndemo complete");
    Ok(())
}
