//! `tessera-vcard`: a wallet as a virtual contactless card on
//! `vsmartcard-vpcd`, so a gate can be tried through the real PC/SC stack
//! without a phone; and `setup`, which builds a test venue (registry,
//! issuer, trust and deny lists, wallets holding good and bad tickets).

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use rand::rngs::OsRng;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::WalletCard;
use tessera_core::sealing::KeyFileProvider;
use tessera_core::store::{SqliteStore, WalletStore, Write, WriteBatch};
use tessera_core::transfer::TransferEvent;
use tessera_core::{
    Amount, Attributes, Clock, CouponAttributes, DenyList, ExchangeId, InstrumentId, LocalSigner, ManualClock,
    PublicKey, Role, Signed, SystemClock, TicketAttributes, TrustEntry, Wallet, Wire,
};
use tessera_gate::vpcd::{VPCD_PORT, VirtualCard, VirtualCardHandler};

#[derive(Parser, Debug)]
#[command(name = "tessera-vcard", about = "A Tessera wallet as a virtual NFC card on vpcd")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The user's answer to an offer shown on screen.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OnScreen {
    /// Take it.
    Accept,
    /// Say no.
    Decline,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Builds a test venue in DIR: registry and issuer keys, a trust list
    /// certifying the given gates, a deny list, and one wallet per case.
    Setup {
        /// Where to write it.
        #[arg(long)]
        dir: PathBuf,
        /// A gate key to certify (repeat for several gates).
        #[arg(long = "gate-key", required = true)]
        gate_keys: Vec<PublicKey>,
        /// The event.
        #[arg(long, default_value = "final-2026")]
        event: String,
    },
    /// Sets a venue up at a running registry (feature `registry`): as its
    /// operator certifies an organiser and the gates, creates the event,
    /// and makes wallets synced with it: `valid` holds a ticket; `revoked`
    /// holds a ticket whose copy on another phone the organiser revoked
    /// afterwards (a cloned phone: the registry deny-lists it).
    #[cfg(feature = "registry")]
    Enrol {
        /// The registry's base URL.
        #[arg(long)]
        registry: String,
        /// The registry's key file (64 hex digits), to act as its operator.
        #[arg(long)]
        operator_key_file: PathBuf,
        /// Where to write the wallets and `ids.json`.
        #[arg(long)]
        dir: PathBuf,
        /// A gate key to certify (repeat for several gates).
        #[arg(long = "gate-key", required = true)]
        gate_keys: Vec<PublicKey>,
        /// The event.
        #[arg(long, default_value = "final-2026")]
        event: String,
    },
    /// Connects WALLET to vpcd as a card and answers the reader until vpcd
    /// closes the connection.
    Serve {
        /// The wallet directory.
        #[arg(long)]
        wallet: PathBuf,
        /// Present this instrument (hex id) rather than letting the wallet pick.
        #[arg(long)]
        choose: Option<InstrumentId>,
        /// vpcd's port on 127.0.0.1.
        #[arg(long, default_value_t = VPCD_PORT)]
        port: u16,
        /// The receive screen is open: accept gifts at once (phone to phone).
        #[arg(long)]
        accept_gifts: bool,
        /// What the user answers on screen to an offer that waits for them
        /// (a gift without the receive screen open): the answer is queued
        /// for the sender's next tap (`tessera-phone collect`).
        #[arg(long, value_enum, conflicts_with = "accept_gifts")]
        on_screen: Option<OnScreen>,
    },
    /// Prints one instrument's state and examination log as JSON.
    Show {
        /// The wallet directory.
        #[arg(long)]
        wallet: PathBuf,
        /// The instrument (hex id).
        #[arg(long)]
        id: InstrumentId,
    },
}

fn open_wallet(dir: &Path) -> anyhow::Result<Wallet<SqliteStore>> {
    Ok(tessera_gate::phone::open_wallet(dir)?)
}

fn new_wallet(dir: &Path, registry: PublicKey, trust: &[u8]) -> anyhow::Result<Wallet<SqliteStore>> {
    new_wallet_at(dir, registry, trust, Arc::new(SystemClock))
}

/// A wallet whose clock is `clock` while it is set up (an expired ticket
/// can only be imported while it was still valid).
fn new_wallet_at(
    dir: &Path,
    registry: PublicKey,
    trust: &[u8],
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Wallet<SqliteStore>> {
    std::fs::create_dir_all(dir)?;
    let keys = KeyFileProvider::create(dir.join("wallet.key"), &mut OsRng)?;
    let mut wallet = Wallet::create_at(dir.join("wallet.db"), &keys, clock)?;
    wallet.pin_registry(registry)?;
    wallet.install_trust_list(trust)?;
    Ok(wallet)
}

fn ticket(event: &str, zone: &str, from: u64, until: u64) -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: event.into(),
        title: "Cup Final".into(),
        zone: zone.into(),
        seat: Some("Row 12 Seat 7".into()),
        guidance: Some("step-free route: lift at door 2".into()),
        valid_from: from,
        valid_until: until,
        transferable: true,
        uses: 1,
        face_price: Some(Amount::new("EUR", 4500)),
    })
}

fn setup(dir: &Path, gate_keys: &[PublicKey], event: &str) -> anyhow::Result<()> {
    if dir.join("ids.json").exists() {
        bail!("{} already holds a venue", dir.display());
    }
    std::fs::create_dir_all(dir)?;
    let now = SystemClock.now();
    let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
    let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
    let far = now + 30 * 24 * 3600;
    let mut entries =
        vec![TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "Arena tickets".into(), not_after: far }];
    for (i, key) in gate_keys.iter().enumerate() {
        entries.push(TrustEntry { key: *key, role: Role::Gate, name: format!("gate {}", i + 1), not_after: far });
    }
    let trust = registry.trust_list(1, entries, now)?.to_bytes();
    std::fs::write(dir.join("trust-list.bin"), &trust)?;
    std::fs::write(dir.join("registry.pub"), registry.public_key().to_hex())?;

    let mut ids = BTreeMap::new();
    let mut issue = |name: &str, attributes: Attributes| -> anyhow::Result<(Wallet<SqliteStore>, InstrumentId)> {
        let at = attributes.validity().0.max(now - 3600);
        let mut wallet = new_wallet_at(&dir.join(name), registry.public_key(), &trust, Arc::new(ManualClock::new(at)))?;
        let holder = wallet.new_holder_key()?;
        let instrument = issuer.issue(attributes, holder, now - 3600, &mut OsRng)?;
        let id = wallet.import_instrument(instrument)?.id;
        ids.insert(name.to_owned(), id.to_hex());
        Ok((wallet, id))
    };
    let day = (now - 3600, now + 24 * 3600);
    issue("valid", ticket(event, "north", day.0, day.1))?;
    issue("zone", ticket(event, "south", day.0, day.1))?;
    issue("expired", ticket(event, "north", now - 7200, now - 60))?;
    let (_, revoked) = issue("revoked", ticket(event, "north", day.0, day.1))?;
    let (forged_wallet, forged) = issue("forged", ticket(event, "south", day.0, day.1))?;
    issue(
        "coupon",
        Attributes::Coupon(CouponAttributes {
            program: event.into(),
            title: "Half-time drink".into(),
            uses: 3,
            valid_from: day.0,
            valid_until: day.1,
            transferable: false,
        }),
    )?;
    let (mut alice, shared) = issue("alice", ticket(event, "north", day.0, day.1))?;

    // Forged: the stored genesis is rewritten from zone south to north, so
    // the issuer's signature no longer covers it.
    let mut record = forged_wallet.instrument(&forged)?;
    drop(forged_wallet);
    if let Attributes::Ticket(t) = &mut record.instrument.genesis.body.attributes {
        t.zone = "north".into();
    }
    SqliteStore::open(dir.join("forged/wallet.db"))?.apply(WriteBatch(vec![Write::UpdateInstrument(record)]))?;

    // Double transfer: Alice endorses one ticket to Bob, then signs the
    // same sequence again to Carol.
    let before = alice.instrument(&shared)?;
    let mut bob = new_wallet(&dir.join("bob"), registry.public_key(), &trust)?;
    let mut carol = new_wallet(&dir.join("carol"), registry.public_key(), &trust)?;
    let offer = ExchangeId::random(&mut OsRng);
    let bob_key = bob.new_holder_key()?;
    bob.import_instrument(alice.endorse(&shared, bob_key, offer, offer)?)?;
    let body = before.instrument.next_endorsement(carol.new_holder_key()?, offer, offer, now);
    let link = Signed::sign(body, &alice.signer(&before.holder)?)?;
    carol.import_instrument(before.instrument.with_link(link))?;
    // Phone to phone: a giver holding a ticket, a receiver with none; and
    // a second pair whose receiver answers on screen, between two taps.
    let (_, gift) = issue("giver", ticket(event, "north", day.0, day.1))?;
    let (_, later) = issue("giver2", ticket(event, "north", day.0, day.1))?;
    new_wallet(&dir.join("receiver"), registry.public_key(), &trust)?;
    new_wallet(&dir.join("receiver2"), registry.public_key(), &trust)?;
    ids.insert("receiver".into(), gift.to_hex());
    ids.insert("receiver2".into(), later.to_hex());
    ids.insert("bob".into(), shared.to_hex());
    ids.insert("carol".into(), shared.to_hex());

    let mut deny = DenyList::empty();
    deny.deny(revoked);
    std::fs::write(dir.join("deny-list.bin"), registry.deny_list(deny)?.to_bytes())?;
    std::fs::write(dir.join("ids.json"), serde_json::to_string_pretty(&ids)?)?;
    Ok(())
}

#[cfg(feature = "registry")]
fn enrol(url: &str, operator_key_file: &Path, dir: &Path, gate_keys: &[PublicKey], event: &str) -> anyhow::Result<()> {
    use tessera_core::Signer as _;
    use tessera_registry::client::{RegistryClient, WalletSession};
    use tessera_registry::wire;
    if dir.join("ids.json").exists() {
        bail!("{} already holds a venue", dir.display());
    }
    std::fs::create_dir_all(dir)?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(std::fs::read_to_string(operator_key_file)?.trim(), &mut seed)
        .context("the operator key file must hold 64 hex digits")?;
    let (operator, _) = tessera_registry::embedded::signers_from_seed(&seed);
    let client = RegistryClient::new(url);
    let now = SystemClock.now();
    let organiser = LocalSigner::generate(&mut OsRng);
    let certify = |key: PublicKey, role: &str, name: String| -> anyhow::Result<()> {
        let _: wire::PartyResponse = client.post(
            "/admin/parties",
            &operator,
            &wire::PartyRequest { key: key.to_hex(), role: role.into(), name, not_after: now + 30 * 24 * 3600 },
        )?;
        Ok(())
    };
    certify(organiser.public_key(), "issuer", "Arena tickets".into())?;
    for (i, key) in gate_keys.iter().enumerate() {
        certify(*key, "gate", format!("gate {}", i + 1))?;
    }
    let _: serde_json::Value = client.post(
        "/events",
        &organiser,
        &wire::EventJson {
            event_id: event.into(),
            title: "Cup Final".into(),
            zones: vec!["north".into(), "south".into()],
            valid_from: now - 3600,
            valid_until: now + 24 * 3600,
            price: wire::AmountJson { currency: "EUR".into(), minor: 4500 },
            transferable: true,
            uses: 1,
        },
    )?;
    let mut ids = BTreeMap::new();
    let mut wallet_with_ticket = |name: &str| -> anyhow::Result<InstrumentId> {
        let wdir = dir.join(name);
        std::fs::create_dir_all(&wdir)?;
        let keys = KeyFileProvider::create(wdir.join("wallet.key"), &mut OsRng)?;
        let mut wallet = Wallet::create_at(wdir.join("wallet.db"), &keys, Arc::new(SystemClock))?;
        WalletSession::new(&mut wallet, client.clone()).sync()?;
        let holder = wallet.new_holder_key()?;
        let issued: wire::InstrumentsResponse = client.post(
            "/issue/ticket",
            &organiser,
            &wire::IssueTicketRequest {
                event_id: event.into(),
                zone: "north".into(),
                seat: Some("Row 3 Seat 9".into()),
                holder: holder.to_hex(),
            },
        )?;
        let bytes = issued.instruments.first().and_then(|b| wire::unb64(b)).context("no ticket issued")?;
        let id = wallet.import(&bytes)?.id;
        ids.insert(name.to_owned(), id.to_hex());
        Ok(id)
    };
    wallet_with_ticket("valid")?;
    let revoked = wallet_with_ticket("revoked-original")?;
    // The phone is cloned while it holds the ticket; then the original
    // refuses the organiser's change, which revokes and deny-lists it.
    copy_dir(&dir.join("revoked-original"), &dir.join("revoked"))?;
    ids.insert("revoked".into(), revoked.to_hex());
    let change: wire::ModifyResponse = client.post(
        "/modifications",
        &organiser,
        &wire::ModifyRequest {
            instrument_id: revoked.to_hex(),
            zone: "south".into(),
            seat: None,
            valid_from: now - 3600,
            valid_until: now + 24 * 3600,
        },
    )?;
    let keys = KeyFileProvider::new(dir.join("revoked-original/wallet.key"));
    let mut original = Wallet::open_at(dir.join("revoked-original/wallet.db"), &keys, Arc::new(SystemClock))?;
    WalletSession::new(&mut original, client.clone()).answer_modification(
        &revoked,
        &change.modification_id,
        "refuse",
    )?;
    std::fs::write(dir.join("registry.pub"), client.info()?.registry_key)?;
    std::fs::write(dir.join("ids.json"), serde_json::to_string_pretty(&ids)?)?;
    Ok(())
}

#[cfg(feature = "registry")]
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

struct Handler {
    card: WalletCard<SqliteStore>,
    on_screen: Option<OnScreen>,
}

impl Handler {
    /// The user's on-screen answer to offers that wait for one; the reply
    /// is queued for the sender's next tap. Errors are logged: the card
    /// keeps answering the reader.
    fn answer_on_screen(&mut self) {
        let Some(answer) = self.on_screen else { return };
        for event in self.card.take_transfer_events() {
            let TransferEvent::OfferReceived(offer) = event else { continue };
            let wallet = self.card.wallet_mut();
            let step = match answer {
                OnScreen::Accept => wallet.accept_offer(offer.offer_id),
                OnScreen::Decline => wallet.decline_offer(offer.offer_id, "declined on screen"),
            };
            match step {
                Ok(step) => {
                    tracing::info!(exchange = %offer.offer_id, ?answer, "answered on screen");
                    if let Some(reply) = step.send {
                        self.card.queue_transfer_reply(reply);
                    }
                }
                Err(e) => tracing::warn!(exchange = %offer.offer_id, error = %e, "on-screen answer failed"),
            }
        }
    }
}

impl VirtualCardHandler for Handler {
    fn apdu(&mut self, command: &[u8]) -> Vec<u8> {
        let answer = self.card.process_apdu(command);
        tracing::debug!(command = %hex::encode(command), answer = %hex::encode(&answer), "apdu");
        self.answer_on_screen();
        answer
    }
    fn reset(&mut self) {
        self.card.deactivate();
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TESSERA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let mut out = std::io::stdout().lock();
    match Cli::parse().command {
        Command::Setup { dir, gate_keys, event } => setup(&dir, &gate_keys, &event)?,
        #[cfg(feature = "registry")]
        Command::Enrol { registry, operator_key_file, dir, gate_keys, event } => {
            enrol(&registry, &operator_key_file, &dir, &gate_keys, &event)?;
        }
        Command::Serve { wallet, choose, port, accept_gifts, on_screen } => {
            let mut card = WalletCard::new(open_wallet(&wallet)?);
            card.choose(choose);
            card.accept_gifts(accept_gifts);
            let mut handler = Handler { card, on_screen };
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut vcard = VirtualCard::connect(addr).with_context(|| format!("connecting to vpcd at {addr}"))?;
            writeln!(out, "card inserted")?;
            out.flush()?;
            let answered = vcard.serve(&mut handler, &mut || true)?;
            tracing::info!(answered, "vpcd closed the connection");
        }
        Command::Show { wallet, id } => {
            let wallet = open_wallet(&wallet)?;
            let record = wallet.instrument(&id)?;
            let log = wallet.store().examinations(Some(&id))?;
            let v = serde_json::json!({
                "uses_left": record.uses_left,
                "exam_counter": record.exam_counter,
                "status": record.status.as_str(),
                "holding": record.holding.as_str(),
                "sequence": record.instrument.sequence(),
                "examinations": log.len(),
                "counters": log.iter().map(|l| l.counter).collect::<Vec<_>>(),
                "instructions": log.iter().map(|l| l.instruction.clone()).collect::<Vec<_>>(),
            });
            writeln!(out, "{v}")?;
        }
    }
    Ok(())
}
