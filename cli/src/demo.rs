//! `tessera demo`: the main job. On embedded defaults, in a temporary
//! directory, it runs the system end to end through its real parts and
//! tells what happens: a service provider (the registry on embedded SQLite,
//! served over HTTP on a loopback port), wallets that top up, buy, verify
//! and pass on tickets and money phone to phone over a libp2p swarm on
//! 127.0.0.1, a forgery and a double transfer that are caught, the proof
//! that names who signed twice, and a refund.

use anyhow::{Context as _, Result, anyhow, bail};
use std::sync::Arc;
use tessera_core::sealing::PassphraseKeyProvider;
use tessera_core::store::{Holding, WalletStore};
use tessera_core::transfer::OfferTerms;
use tessera_core::{
    Amount, Attributes, Clock, EquivocationProof, ExchangeId, InstrumentId, Kind, LocalSigner, Signed, Signer,
    SystemClock, Wallet, WalletError, Wire,
};
use tessera_registry::client::{RegistryClient, WalletSession};
use tessera_registry::embedded::{signers_from_seed, start_embedded};
use tessera_registry::wire;

const DAY: u64 = 86_400;
const EVENT: &str = "ludi-romani-2026";

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

/// Held notes in EUR, as `20.00 EUR + 5.00 EUR`.
fn notes_of(wallet: &Wallet) -> Result<String> {
    let mut values: Vec<u64> = wallet
        .notes()?
        .into_iter()
        .filter(|n| n.holding == Holding::Held)
        .filter_map(|n| n.amount.map(|a| a.minor))
        .collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    Ok(if values.is_empty() {
        "no notes".into()
    } else {
        values.into_iter().map(money).collect::<Vec<_>>().join(" + ")
    })
}

fn held_note(wallet: &Wallet, minor: u64) -> Result<InstrumentId> {
    wallet
        .notes()?
        .into_iter()
        .find(|n| n.holding == Holding::Held && n.amount.as_ref().is_some_and(|a| a.minor == minor))
        .map(|n| n.id)
        .ok_or_else(|| anyhow!("no held note of {}", money(minor)))
}

fn expect(what: &str, ok: bool) -> Result<()> {
    if ok { Ok(()) } else { bail!("the demo went wrong: {what}") }
}

pub fn run() -> Result<()> {
    let dir = tempfile::tempdir().context("making a temporary directory")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let rng = &mut rand::rngs::OsRng;
    let mut story = Story { step: 0 };
    println!("Tessera demo: every party runs in this process; files live in {}", dir.path().display());

    story.step("The service provider starts its registry; it certifies a theatre, which puts an event on sale");
    let seed: [u8; 32] = rand::random();
    let registry = start_embedded(&dir.path().join("registry.db"), &seed)?;
    let client = RegistryClient::new(&registry.url());
    let (operator, _) = signers_from_seed(&seed);
    let theatre = LocalSigner::generate(rng);
    let _: wire::PartyResponse = client.post(
        "/admin/parties",
        &operator,
        &wire::PartyRequest {
            key: theatre.public_key().to_hex(),
            role: "issuer".into(),
            name: "Theatrum Marcelli".into(),
            not_after: now + 365 * DAY,
        },
    )?;
    // The answer is an empty JSON object.
    let _: std::collections::BTreeMap<String, String> = client.post(
        "/events",
        &theatre,
        &wire::EventJson {
            event_id: EVENT.into(),
            title: "Ludi Romani, opening night".into(),
            zones: vec!["A".into()],
            valid_from: now - DAY,
            valid_until: now + 30 * DAY,
            price: wire::AmountJson { currency: "EUR".into(), minor: 2_000 },
            transferable: true,
            uses: 1,
        },
    )?;
    story.say(format!(
        "registry on embedded SQLite at {}; its key {}, its ticket and e-money issuer key {}",
        registry.url(),
        registry.registry_key.short(),
        registry.issuer_key.short()
    ));
    story.say(format!(
        "Theatrum Marcelli ({}) certified; event {EVENT} on sale at {}",
        theatre.public_key().short(),
        money(2_000)
    ));

    story.step("Alice, Bob and Carol create wallets and sync: the registry's key is pinned, its trust list installed");
    let open_wallet = |name: &str| -> Result<Wallet> {
        let keys = PassphraseKeyProvider::new(format!("{name}'s passphrase"));
        let mut w = Wallet::create_at(dir.path().join(format!("{name}.db")), &keys, clock.clone())?;
        let report = WalletSession::new(&mut w, client.clone()).sync()?;
        story.say(format!(
            "{name}: account key {} (private keys sealed with ChaCha20-Poly1305 under an Argon2id key), trust list v{}",
            w.account_key().short(),
            report.trust_version
        ));
        Ok(w)
    };
    let mut alice = open_wallet("alice")?;
    let mut bob = open_wallet("bob")?;
    let mut carol = open_wallet("carol")?;

    story.step("Money in: Alice and Bob top up through the payment provider and take notes");
    let mut session = WalletSession::new(&mut alice, client.clone());
    let left = session.top_up("EUR", 10_000, "demo-card-alice")?;
    session.withdraw("EUR", 4_000)?;
    story.say(format!("Alice paid in {}, took {} as notes: {}", money(left), money(4_000), notes_of(&alice)?));
    let mut session = WalletSession::new(&mut bob, client.clone());
    session.top_up("EUR", 1_000, "demo-card-bob")?;
    session.withdraw("EUR", 1_000)?;
    story.say(format!("Bob paid in {} and took it as notes: {}", money(1_000), notes_of(&bob)?));

    story.step("Alice buys two tickets from the service provider, paying with notes");
    let mut seats = Vec::new();
    for seat in ["12", "13"] {
        let id = WalletSession::new(&mut alice, client.clone()).buy(EVENT, "A", Some(seat.into()))?;
        let record = alice.instrument(&id)?;
        story.say(format!(
            "bought from the service provider: {} — issued to a fresh holder key, verified and stored",
            record.instrument.attributes().label()
        ));
        seats.push(id);
    }
    let mut session = WalletSession::new(&mut alice, client.clone());
    session.withdraw("EUR", 2_500)?;
    let account = registry.registry.store().balance(&alice.account_key(), "EUR")?;
    story.say(format!("Alice's notes now: {} ({} left on her account)", notes_of(&alice)?, money(account)));

    // A backup Alice keeps; she will misuse it later.
    let backup = dir.path().join("alice-backup.db");
    alice.backup_to(&backup).context("backing up Alice's wallet")?;

    story.step("Alice gives Bob the ticket for seat 12, phone to phone over a libp2p swarm on loopback");
    let seat12 = seats[0];
    let (sender, receiver, elapsed) = crate::p2p_cmd::move_over_loopback(alice, bob, vec![seat12], OfferTerms::Gift)?;
    (alice, bob) = (sender, receiver);
    let verified = bob.verify(&seat12)?;
    story.say(format!(
        "offer → acceptance (a fresh holder key) → transfer certificate → receipt over 127.0.0.1 in {} ms",
        elapsed.as_millis()
    ));
    story.say(format!(
        "Bob's wallet verified the chain: held by Bob's key {} at sequence {}",
        verified.holder.short(),
        verified.sequence
    ));
    let alice_copy = alice.instrument(&seat12)?;
    expect("Alice's seat 12 is gone after the receipt", alice_copy.holding == Holding::Gone)?;
    story.say(format!(
        "Alice's copy is now {}: she can neither present it nor offer it again",
        alice_copy.holding.as_str()
    ));
    if let Err(e) = alice.endorse(&seat12, carol.new_holder_key()?, ExchangeId::NONE, ExchangeId::NONE) {
        story.say(format!("Alice's wallet refuses to endorse it a second time: {e}"));
    }

    story.step("Alice pays Bob 20.00 EUR over the same kind of swarm: a note passes like a ticket");
    let note = held_note(&alice, 2_000)?;
    let (sender, receiver, elapsed) = crate::p2p_cmd::move_over_loopback(alice, bob, vec![note], OfferTerms::Gift)?;
    (alice, bob) = (sender, receiver);
    expect("Bob holds the 20.00 EUR note", bob.instrument(&note)?.holding == Holding::Held)?;
    story.say(format!(
        "note of {} endorsed, verified and receipted in {} ms; Alice has {}, Bob has {}",
        money(2_000),
        elapsed.as_millis(),
        money(balance_of(&alice)?),
        money(balance_of(&bob)?)
    ));

    story.step("Mallory tries forgeries; every wallet's verifier rejects them");
    let to_bob = bob.instrument(&seat12)?.instrument;
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

    story.step(
        "Alice sells Bob seat 13 for 15.00 EUR over libp2p; Bob pays 20.00, the change comes back in the same exchange",
    );
    let seat13_id = seats[1];
    let (alice_before, bob_before) = (balance_of(&alice)?, balance_of(&bob)?);
    let (seller, buyer, elapsed) =
        crate::p2p_cmd::move_over_loopback(alice, bob, vec![seat13_id], OfferTerms::Sale(Amount::new("EUR", 1_500)))?;
    (alice, bob) = (seller, buyer);
    story.say(format!(
        "offer (price, payee keys, Alice's 5.00 EUR set aside for change) → acceptance with Bob's 20.00 EUR note → \
         transfer certificate (the ticket and the change) → receipt: {} ms",
        elapsed.as_millis()
    ));
    expect("Bob holds seat 13", bob.instrument(&seat13_id)?.holding == Holding::Held)?;
    expect(
        "the sale moved exactly 15.00 EUR",
        balance_of(&alice)? == alice_before + 1_500 && balance_of(&bob)? + 1_500 == bob_before,
    )?;
    story.say(format!(
        "Bob's wallet verified and holds seat 13; Alice's notes {} ({}), Bob's notes {} ({}): 15.00 EUR moved, change 5.00 EUR",
        notes_of(&alice)?,
        money(balance_of(&alice)?),
        notes_of(&bob)?,
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
    let report = WalletSession::new(&mut bob, client.clone()).sync()?;
    expect("Bob's seat 12 registered", report.reconcile.certified.contains(&seat12))?;
    story.say(format!(
        "Bob syncs first: {} chains registered; seat 12 is now held on a registered certificate ({} bytes; a chain grows ~190 bytes a hop), verified again: {}",
        report.reconcile.certified.len(),
        bob.instrument(&seat12)?.instrument.to_bytes().len(),
        if bob.verify(&seat12).is_ok() { "valid" } else { "INVALID" }
    ));
    let report = WalletSession::new(&mut carol, client.clone()).sync()?;
    let proof = report.reconcile.conflicts.first().ok_or_else(|| anyhow!("the registry caught no double transfer"))?;
    story.say(format!(
        "Carol syncs: her chain endorses sequence {} again; the registry answers with an equivocation proof ({} bytes) naming key {}",
        proof.sequence(),
        proof.to_bytes().len(),
        proof.signer.short()
    ));
    let alice_key = alice.instrument(&seat12)?.holder;
    expect("the proof names Alice's key", proof.signer == alice_key)?;
    story.say(format!("that is the key Alice held seat 12 with: {}", proof.signer == alice_key));
    let decoded = EquivocationProof::from_bytes(&proof.to_bytes())?;
    story.say(format!(
        "anyone can check the proof offline: {}",
        if decoded.verify().is_ok() { "it verifies" } else { "it FAILS" }
    ));

    story.say(
        "Carol's copy is refuted: the registry and the gates go by Bob's registered chain, and the proof is what Carol claims against Alice with",
    );

    story.step(
        "Bob syncs again: seat 12 was signed away twice, so he gets a replacement, which he gives back for a refund",
    );
    WalletSession::new(&mut bob, client.clone()).sync()?;
    let old: wire::InstrumentStatus = client.get(&format!("/instruments/{}", seat12.to_hex()))?;
    let replacement = bob
        .tickets()?
        .into_iter()
        .find(|t| t.id != seat12 && t.holding == Holding::Held && t.label.ends_with("seat 12"))
        .map(|t| t.id)
        .ok_or_else(|| anyhow!("Bob got no replacement for seat 12"))?;
    story.say(format!(
        "the registry lists the double-transferred seat 12 as {} (on the deny list: {}) and gave Bob, its registered holder, replacement {}",
        old.status,
        if bob.verify(&seat12).is_err() { "Bob's wallet refuses the old one now" } else { "NOT DENIED" },
        replacement.to_hex()
    ));
    let refund = WalletSession::new(&mut bob, client.clone()).refund(&replacement)?;
    let status: wire::InstrumentStatus = client.get(&format!("/instruments/{}", replacement.to_hex()))?;
    expect("the registry lists the replacement as refunded", status.status == "refunded")?;
    story.say(format!(
        "refunded at its face price: {} new note(s); the registry lists the replacement as {}; Bob's notes {}",
        refund.len(),
        status.status,
        notes_of(&bob)?
    ));
    let totals = registry.registry.store().money_totals("EUR")?;
    expect(
        "the service provider's books balance",
        totals.issued - totals.redeemed == totals.active_notes
            && totals.paid_in - totals.paid_out == totals.balances + totals.active_notes,
    )?;
    story.say(format!(
        "the service provider's books balance: money it holds for customers {} = account balances {} + notes in circulation {}",
        money(totals.paid_in - totals.paid_out),
        money(totals.balances),
        money(totals.active_notes)
    ));

    story.step("What each wallet holds now");
    for (name, wallet) in [("Alice", &alice), ("Bob", &bob), ("Carol", &carol)] {
        let tickets: Vec<String> = wallet
            .instruments(Default::default())?
            .into_iter()
            // What its verifier still passes: a denied ticket is kept but worthless.
            .filter(|r| r.holding == Holding::Held && r.kind == Kind::Ticket && wallet.verify(&r.id).is_ok())
            .map(|r| r.label)
            .collect();
        let tickets = if tickets.is_empty() { "no valid tickets".into() } else { tickets.join("; ") };
        story.say(format!(
            "{name}: {tickets}; {} ({} history lines)",
            notes_of(wallet)?,
            wallet.store().history(1000)?.len()
        ));
    }
    drop(registry);
    println!("\ndemo complete");
    Ok(())
}
