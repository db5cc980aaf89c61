//! Private keys stay private (DESIGN §4 property 5), checked end to end:
//! after a sale, a declined gift and a gate presentation between real
//! wallets on SQLite files, no private key byte (nor the storage key, nor
//! the passphrase) is in any database file (main, `-wal`, `-shm`, a
//! backup), in anything logged through `tracing` at any level, or in the
//! `Debug` output of the objects the flows handle; and every type holding
//! key material is zeroized on drop.
//!
//! `core/tests/wallet.rs` covers a single wallet's files after an
//! endorsement and the `Debug` of keys, signers, providers and key records;
//! these tests add the protocol flows, the logs, backups and zeroization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::OsRng;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tessera_core::apdu::StatusWord;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::{
    GateContext, GateEvent, GateExamination, GatePolicy, Instruction, Outcome, PriorUse, ReentryPolicy, WalletCard,
};
use tessera_core::sealing::{PassphraseKeyProvider, Sealer, StaticKeyProvider, StorageKey};
use tessera_core::store::{KeyRole, SqliteStore, WalletStore};
use tessera_core::transfer::{OfferTerms, TransferEvent};
use tessera_core::{
    Amount, Attributes, Clock, ExchangeId, InstrumentId, LocalSigner, ManualClock, NoteAttributes, Role, SecretKey,
    Signer, TicketAttributes, Timestamp, TrustEntry, TrustList, Verifier, Wallet,
};
use zeroize::{ZeroizeOnDrop, Zeroizing};

const T0: Timestamp = 1_800_000_000;
const PASSPHRASE: &str = "correct horse battery staple, secrets test";
const STORAGE_KEY: [u8; 32] = [0x5C; 32];

/// Everything logged while installed: event and span fields, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
    fn record_bytes(&mut self, field: &tracing::field::Field, value: &[u8]) {
        let _ = write!(self.0, " {}={}", field.name(), hex::encode(value));
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.0.lock().unwrap();
        let _ = write!(text, "\nspan {}", span.metadata().name());
        span.record(&mut Fields(&mut text));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.lock().unwrap();
        let _ = write!(text, "\n{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut text));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A registry, an issuer, a gate, a clock and a directory of wallet files.
struct Venue {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    gate: LocalSigner,
    trust_bytes: Vec<u8>,
    trust: TrustList,
}

impl Venue {
    fn new() -> Self {
        let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
        let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
        let gate = LocalSigner::generate(&mut OsRng);
        let entries = vec![
            TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "Arena".into(), not_after: T0 + 100_000 },
            TrustEntry { key: gate.public_key(), role: Role::Gate, name: "Gate".into(), not_after: T0 + 100_000 },
        ];
        let signed = registry.trust_list(1, entries, T0).unwrap();
        let trust = TrustList::verify(signed.clone(), &registry.public_key()).unwrap();
        use tessera_core::Wire as _;
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(T0)),
            registry,
            issuer,
            gate,
            trust_bytes: signed.to_bytes(),
            trust,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    fn wallet(&self, name: &str, keys: &dyn tessera_core::sealing::KeyProvider) -> Wallet<SqliteStore> {
        let mut w = Wallet::create_at(self.path(name), keys, self.clock.clone()).unwrap();
        w.pin_registry(self.registry.public_key()).unwrap();
        w.install_trust_list(&self.trust_bytes).unwrap();
        w
    }

    fn ticket(&self, wallet: &mut Wallet<SqliteStore>, seat: &str) -> InstrumentId {
        let holder = wallet.new_holder_key().unwrap();
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: "final".into(),
            title: "Cup final".into(),
            zone: "north".into(),
            seat: Some(seat.into()),
            guidance: None,
            valid_from: T0 - 100,
            valid_until: T0 + 10_000,
            transferable: true,
            uses: 1,
            face_price: Some(Amount::new("EUR", 4000)),
        });
        wallet.import_instrument(self.issuer.issue(attributes, holder, T0 - 10, &mut OsRng).unwrap()).unwrap().id
    }

    fn note(&self, wallet: &mut Wallet<SqliteStore>, minor: u64) -> InstrumentId {
        let holder = wallet.new_holder_key().unwrap();
        let attributes =
            Attributes::Note(NoteAttributes { amount: Amount::new("EUR", minor), expires_at: T0 + 10_000 });
        wallet.import_instrument(self.issuer.issue(attributes, holder, T0 - 10, &mut OsRng).unwrap()).unwrap().id
    }
}

/// Delivers transfer messages between `a` (side 0) and `b` (side 1) until
/// none is left, answering every offer with `accept`.
fn run_transfer(wallets: [&mut Wallet<SqliteStore>; 2], first: Vec<u8>, accept: bool) {
    let [a, b] = wallets;
    let mut queue = vec![(1usize, first)];
    let mut steps = 0;
    while let Some((to, bytes)) = queue.pop() {
        steps += 1;
        assert!(steps < 20, "the transfer does not finish");
        let wallet = if to == 0 { &mut *a } else { &mut *b };
        let step = wallet.handle_transfer(&bytes).unwrap();
        queue.extend(step.send.map(|m| (1 - to, m)));
        for event in step.events {
            if let TransferEvent::OfferReceived(summary) = event {
                let answer = if accept {
                    wallet.accept_offer(summary.offer_id)
                } else {
                    wallet.decline_offer(summary.offer_id, "no thanks")
                };
                queue.extend(answer.unwrap().send.map(|m| (1 - to, m)));
            }
        }
    }
}

/// One tap of `card` at the venue's gate; the outcome.
fn tap(venue: &Venue, card: &mut WalletCard<SqliteStore>) -> Outcome {
    let ledger: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
    let deny = tessera_core::DenyList::empty();
    let ctx = GateContext { verifier: Verifier::new(&venue.trust, &deny), ledger: &ledger, now: venue.clock.now() };
    let policy = GatePolicy {
        event_id: "final".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    };
    let mut exam =
        GateExamination::start(&venue.gate, policy, ExchangeId::random(&mut OsRng), 1, venue.clock.now()).unwrap();
    let mut outcome = None;
    while let Some(command) = exam.next_command() {
        let answer = card.process_apdu(&command);
        match exam.on_response(&answer, &venue.gate, &ctx).unwrap() {
            GateEvent::Decided(e) => outcome = Some(e.outcome),
            GateEvent::Finished => break,
            GateEvent::Continue => {}
        }
    }
    outcome.expect("the gate decided")
}

/// Every private key a wallet holds (account and holder keys), as bytes.
fn private_keys(wallet: &Wallet<SqliteStore>) -> Vec<Zeroizing<[u8; 32]>> {
    let mut keys = vec![wallet.signer(&wallet.account_key()).unwrap().secret().to_bytes()];
    for record in wallet.store().keys(KeyRole::Holder).unwrap() {
        keys.push(wallet.signer(&record.public).unwrap().secret().to_bytes());
    }
    keys
}

/// The ways a 32-byte secret could show up in text.
fn spellings(secret: &[u8]) -> Vec<String> {
    vec![hex::encode(secret), hex::encode_upper(secret), format!("{:?}", &secret[..8]).trim_end_matches(']').to_owned()]
}

/// Files of an SQLite database that exist: the file, its WAL and shared memory.
fn database_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", path.display())))
        .filter(|p| p.exists())
        .collect()
}

fn assert_no_secret_in_file(file: &Path, secrets: &[(String, Vec<u8>)]) {
    let bytes = std::fs::read(file).unwrap();
    for (name, secret) in secrets {
        let needle = &secret[..secret.len().min(16)];
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{name} found in {}", file.display());
    }
}

/// a sale (ticket for notes), a declined gift and a gate
/// presentation, with a passphrase wallet and a static-key wallet, logged
/// through a capturing subscriber; then files, logs and `Debug` searched.
#[test]
fn flows_leave_no_key_material_in_files_logs_or_debug() {
    let captured = Captured::default();
    let venue = Venue::new();
    let static_keys = StaticKeyProvider::new(StorageKey::from_bytes(STORAGE_KEY));
    let phrase_keys = PassphraseKeyProvider::new(PASSPHRASE);

    let (seller, buyer, shown) = tracing::subscriber::with_default(captured.clone(), || {
        tracing::info!(probe = "capturing works", "secrets test starts");
        let mut seller = venue.wallet("seller", &phrase_keys);
        let mut buyer = venue.wallet("buyer", &static_keys);
        let ticket = venue.ticket(&mut seller, "R1 S1");
        let gift = venue.ticket(&mut seller, "R1 S2");
        for minor in [2000, 2000, 1000] {
            venue.note(&mut buyer, minor);
        }
        let expires = venue.clock.now() + 600;
        let (_, step) = seller.offer_transfer(&[ticket], OfferTerms::Sale(Amount::new("EUR", 5000)), expires).unwrap();
        run_transfer([&mut seller, &mut buyer], step.send.unwrap(), true);
        let (_, step) = seller.offer_transfer(&[gift], OfferTerms::Gift, expires).unwrap();
        run_transfer([&mut seller, &mut buyer], step.send.unwrap(), false);
        assert_eq!(buyer.tickets().unwrap().len(), 1, "the sale went through");
        assert_eq!(seller.tickets().unwrap().len(), 1, "the declined gift came back");

        // The bought ticket at the gate, then once more (refused: used).
        let mut card = WalletCard::new(buyer);
        assert_eq!(tap(&venue, &mut card), Outcome::Admitted);
        let mut exam = GateExamination::start(
            &venue.gate,
            GatePolicy {
                event_id: "final".into(),
                zones: vec!["north".into()],
                instruction: Instruction::Enter,
                reentry: ReentryPolicy::Refuse,
            },
            ExchangeId::random(&mut OsRng),
            2,
            venue.clock.now(),
        )
        .unwrap();
        let select = exam.next_command().unwrap();
        let _ = card.process_apdu(&select);
        let refused = card.process_apdu(&[0x80, 0x50, 0, 0, 3, 1, 2, 3, 0]);
        assert_eq!(refused[refused.len() - 2..], StatusWord::WRONG_DATA.to_bytes());
        let shown = format!("{card:?} {:?} {seller:?}", card.last_result());
        let buyer = card.into_wallet();
        (seller, buyer, shown)
    });
    let logs = captured.0.lock().unwrap().clone();
    assert!(logs.contains("capturing works"), "the capturing subscriber saw nothing: {logs}");
    assert!(logs.contains("offer made") && logs.contains("receipt in"), "the flows logged nothing: {logs}");

    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    for (who, wallet) in [("seller", &seller), ("buyer", &buyer)] {
        for (i, key) in private_keys(wallet).iter().enumerate() {
            secrets.push((format!("{who} private key {i}"), key.to_vec()));
        }
    }
    assert!(secrets.len() >= 2 + 4 + 3, "every wallet made its keys");
    secrets.push(("storage key".into(), STORAGE_KEY.to_vec()));
    secrets.push(("passphrase".into(), PASSPHRASE.as_bytes().to_vec()));

    for (name, secret) in &secrets {
        for needle in spellings(secret).iter().chain(std::iter::once(&String::from_utf8_lossy(secret).into_owned())) {
            if needle.len() < 16 {
                continue;
            }
            assert!(!logs.contains(needle.as_str()), "{name} is in the logs");
            assert!(!shown.contains(needle.as_str()), "{name} is in Debug output");
        }
    }

    // Files while open (WAL in use), then a backup, then after closing.
    let paths = [venue.path("seller"), venue.path("buyer")];
    for path in &paths {
        let files = database_files(path);
        assert!(files.len() >= 2, "the WAL is in use while open: {files:?}");
        for file in files {
            assert_no_secret_in_file(&file, &secrets);
        }
    }
    let backup = venue.dir.path().join("buyer-backup.db");
    buyer.backup_to(&backup).unwrap();
    for file in database_files(&backup) {
        assert_no_secret_in_file(&file, &secrets);
    }
    drop((seller, buyer));
    for path in &paths {
        for file in database_files(path) {
            assert_no_secret_in_file(&file, &secrets);
        }
    }
}

/// Key material is wiped when dropped: the types say so (`ZeroizeOnDrop`,
/// checked at compile time), and what the public API hands out is wrapped
/// in `Zeroizing`.
#[test]
fn key_material_is_zeroized_on_drop() {
    fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
    zeroized_on_drop::<SecretKey>();
    zeroized_on_drop::<StorageKey>();
    zeroized_on_drop::<ed25519_dalek::SigningKey>();
    zeroized_on_drop::<Zeroizing<[u8; 32]>>();
    zeroized_on_drop::<Zeroizing<Vec<u8>>>();

    // Secret bytes come out only in self-wiping buffers.
    let key = SecretKey::generate(&mut OsRng);
    let bytes: Zeroizing<[u8; 32]> = key.to_bytes();
    assert_eq!(SecretKey::from_bytes(&bytes).public_key(), key.public_key());
    let sealer = Sealer::new(&StorageKey::from_bytes(STORAGE_KEY));
    let sealed = sealer.seal_key(&key, &mut OsRng);
    assert!(!sealed.windows(16).any(|w| w == &bytes[..16]), "sealing hides the key");
    let opened: SecretKey = sealer.open_key(&key.public_key(), &sealed).unwrap();
    assert_eq!(opened.public_key(), key.public_key());
    let plain: Zeroizing<Vec<u8>> = sealer.open(b"label", &sealer.seal(b"label", b"plaintext", &mut OsRng)).unwrap();
    assert_eq!(plain.as_slice(), b"plaintext");

    // Zeroizing wipes on demand too: what drop does, observed without unsafe.
    let mut copy = key.to_bytes();
    zeroize::Zeroize::zeroize(&mut *copy);
    assert_eq!(*copy, [0u8; 32]);
    assert!(format!("{sealer:?}").contains("[REDACTED]"));
}
