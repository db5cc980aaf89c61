//! Integration tests of the [`Wallet`] facade on real SQLite files, with
//! real issuers and a real registry authority, and a [`ManualClock`].
//!
//! Every refusal is checked twice: for its typed error, and for leaving the
//! wallet file exactly as it was (a snapshot of every row of every table,
//! taken through a second SQLite connection, before and after).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::OsRng;
use rusqlite::types::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::sealing::{KeyFileProvider, KeyProvider, PassphraseKeyProvider, StaticKeyProvider, StorageKey};
use tessera_core::store::{Direction, Holding, InstrumentFilter, KeyRole, WalletStore};
use tessera_core::trust::TrustError;
use tessera_core::wallet::Balance;
use tessera_core::{
    Amount, Attributes, Clock, CouponAttributes, DecodeError, ExchangeId, Instrument, Kind, LocalSigner, ManualClock,
    NoteAttributes, PublicKey, Rejection, Role, Signed, Signer, TicketAttributes, Timestamp, TrustEntry, TrustListBody,
    Wallet, WalletError, Wire,
};

const T0: Timestamp = 1_800_000_000;
const DAY: u64 = 86_400;
const ISSUER_NAME: &str = "Arena Tickets";

/// A registry, an issuer it certifies, a clock, and a directory for wallets.
struct World {
    dir: TempDir,
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
}

fn storage_keys() -> StaticKeyProvider {
    StaticKeyProvider::new(StorageKey::from_bytes([0x42; 32]))
}

impl World {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            clock: Arc::new(ManualClock::new(T0)),
            registry: RegistryAuthority::new(LocalSigner::generate(&mut OsRng)),
            issuer: Issuer::new(LocalSigner::generate(&mut OsRng)),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    fn trust_list(&self, version: u64) -> Signed<TrustListBody> {
        let entries = vec![TrustEntry {
            key: self.issuer.public_key(),
            role: Role::Issuer,
            name: ISSUER_NAME.into(),
            not_after: T0 + 365 * DAY,
        }];
        self.registry.trust_list(version, entries, self.clock.now()).expect("signs")
    }

    /// A wallet that pinned the registry and installed trust list v1.
    fn wallet(&self, name: &str) -> Wallet {
        let mut wallet = Wallet::create_at(self.path(name), &storage_keys(), self.clock.clone()).expect("creates");
        wallet.pin_registry(self.registry.public_key()).expect("pins");
        wallet.install_trust_list(&self.trust_list(1).to_bytes()).expect("installs");
        wallet
    }

    fn issue(&self, attributes: Attributes, holder: PublicKey) -> Instrument {
        self.issuer.issue(attributes, holder, self.clock.now(), &mut OsRng).expect("issues")
    }

    fn ticket(&self, holder: PublicKey, transferable: bool) -> Instrument {
        self.issue(
            Attributes::Ticket(TicketAttributes {
                event_id: "final-2027".into(),
                title: "Cup Final".into(),
                zone: "East".into(),
                seat: Some("14-22".into()),
                guidance: None,
                valid_from: T0 - DAY,
                valid_until: T0 + 30 * DAY,
                transferable,
                uses: 1,
                face_price: Some(Amount::new("EUR", 8_000)),
            }),
            holder,
        )
    }

    fn note(&self, holder: PublicKey, currency: &str, minor: u64) -> Instrument {
        self.issue(
            Attributes::Note(NoteAttributes { amount: Amount::new(currency, minor), expires_at: T0 + 90 * DAY }),
            holder,
        )
    }

    fn coupon(&self, holder: PublicKey) -> Instrument {
        self.issue(
            Attributes::Coupon(CouponAttributes {
                program: "stadium-coffee".into(),
                title: "Coffee card".into(),
                uses: 5,
                valid_from: T0 - DAY,
                valid_until: T0 + 60 * DAY,
                transferable: true,
            }),
            holder,
        )
    }
}

/// Every row of every table, read through a second connection.
type Snapshot = BTreeMap<String, Vec<Vec<Value>>>;

fn snapshot(path: &Path) -> Snapshot {
    let conn = rusqlite::Connection::open(path).expect("second connection");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("prepares")
        .query_map([], |r| r.get(0))
        .expect("lists tables")
        .collect::<Result<_, _>>()
        .expect("table names");
    let mut out = Snapshot::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1")).expect("prepares");
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..columns).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
            .expect("reads")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        out.insert(table, rows);
    }
    out
}

/// Runs `refused`, which must fail with `expected`, and checks that the
/// wallet file did not change.
#[track_caller]
fn assert_refused_unchanged<T: std::fmt::Debug>(
    path: &Path,
    expected: WalletError,
    refused: impl FnOnce() -> Result<T, WalletError>,
) {
    let before = snapshot(path);
    assert!(before.contains_key("instruments") && !before["meta"].is_empty(), "snapshot sees the wallet");
    let got = refused();
    assert_eq!(got.err(), Some(expected));
    assert_eq!(snapshot(path), before, "a refused input changed the wallet file");
}

#[test]
fn create_then_open_with_passphrase_keeps_everything() {
    let world = World::new();
    let path = world.path("alice");
    let keys = PassphraseKeyProvider::new("correct horse battery staple");
    let (account, id) = {
        let mut wallet = Wallet::create_at(&path, &keys, world.clock.clone()).expect("creates");
        wallet.pin_registry(world.registry.public_key()).expect("pins");
        wallet.install_trust_list(&world.trust_list(3).to_bytes()).expect("installs");
        let holder = wallet.new_holder_key().expect("holder key");
        let summary = wallet.import_instrument(world.ticket(holder, true)).expect("imports");
        (wallet.account_key(), summary.id)
    };
    world.clock.advance(60);
    let wallet = Wallet::open_at(&path, &keys, world.clock.clone()).expect("opens");
    assert_eq!(wallet.account_key(), account);
    assert_eq!(wallet.registry_key(), Some(world.registry.public_key()));
    assert_eq!(wallet.trust_list().map(|t| t.version()), Some(3));
    assert_eq!(wallet.tickets().expect("lists").iter().map(|s| s.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(wallet.verify(&id).expect("still valid").id, id);
    // The reopened wallet can still sign with the keys it sealed.
    let record = wallet.instrument(&id).expect("record");
    assert_eq!(wallet.signer(&record.holder).expect("unseals").public_key(), record.holder);
    assert_eq!(wallet.signer(&account).expect("unseals").public_key(), account);

    // A second wallet cannot be created over the first.
    assert_refused_unchanged(&path, WalletError::AlreadyCreated, || {
        Wallet::create_at(&path, &keys, world.clock.clone())
    });
}

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let world = World::new();
    let path = world.path("alice");
    drop(Wallet::create_at(&path, &PassphraseKeyProvider::new("right"), world.clock.clone()).expect("creates"));
    assert_refused_unchanged(&path, WalletError::WrongStorageKey, || {
        Wallet::open_at(&path, &PassphraseKeyProvider::new("wrong"), world.clock.clone())
    });
    assert_refused_unchanged(&path, WalletError::WrongStorageKey, || {
        Wallet::open_at(&path, &storage_keys(), world.clock.clone())
    });
    Wallet::open_at(&path, &PassphraseKeyProvider::new("right"), world.clock.clone()).expect("right one opens");
}

#[test]
fn key_file_provider_opens_and_a_different_file_does_not() {
    let world = World::new();
    let path = world.path("alice");
    let key_file = KeyFileProvider::create(world.dir.path().join("wallet.key"), &mut OsRng).expect("key file");
    let account = Wallet::create_at(&path, &key_file, world.clock.clone()).expect("creates").account_key();
    let reopened = Wallet::open_at(&path, &key_file, world.clock.clone()).expect("opens");
    assert_eq!(reopened.account_key(), account);
    drop(reopened);
    let other = KeyFileProvider::create(world.dir.path().join("other.key"), &mut OsRng).expect("key file");
    assert_refused_unchanged(&path, WalletError::WrongStorageKey, || {
        Wallet::open_at(&path, &other, world.clock.clone())
    });
}

#[test]
fn opening_an_empty_file_is_not_created() {
    let world = World::new();
    let result = Wallet::open_at(world.path("nobody"), &storage_keys(), world.clock.clone());
    assert_eq!(result.err(), Some(WalletError::NotCreated));
}

#[test]
fn pinned_registry_cannot_be_replaced() {
    let world = World::new();
    let path = world.path("alice");
    let mut wallet = Wallet::create_at(&path, &storage_keys(), world.clock.clone()).expect("creates");
    assert_refused_unchanged(&path, WalletError::NoRegistry, || {
        wallet.install_trust_list(&world.trust_list(1).to_bytes())
    });
    wallet.pin_registry(world.registry.public_key()).expect("pins");
    wallet.pin_registry(world.registry.public_key()).expect("pinning the same key again is fine");
    let other = LocalSigner::generate(&mut OsRng).public_key();
    assert_refused_unchanged(&path, WalletError::RegistryMismatch(world.registry.public_key()), || {
        wallet.pin_registry(other)
    });
    assert_eq!(wallet.registry_key(), Some(world.registry.public_key()));
    drop(wallet);
    let mut reopened = Wallet::open_at(&path, &storage_keys(), world.clock.clone()).expect("opens");
    assert_eq!(reopened.registry_key(), Some(world.registry.public_key()));
    assert_eq!(reopened.pin_registry(other), Err(WalletError::RegistryMismatch(world.registry.public_key())));
}

#[test]
fn trust_lists_from_elsewhere_forged_or_older_are_refused() {
    let world = World::new();
    let path = world.path("alice");
    let mut wallet = world.wallet("alice");
    wallet.install_trust_list(&world.trust_list(2).to_bytes()).expect("newer list installs");

    // Signed by another registry.
    let impostor = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
    let foreign = impostor.trust_list(9, world.trust_list(9).body.entries, T0).expect("signs");
    assert_refused_unchanged(
        &path,
        WalletError::Trust(TrustError::WrongRegistry {
            pinned: world.registry.public_key(),
            found: impostor.public_key(),
        }),
        || wallet.install_trust_list(&foreign.to_bytes()),
    );

    // Naming our registry but signed by the impostor.
    let mut body = world.trust_list(9).body;
    body.entries.push(TrustEntry {
        key: impostor.public_key(),
        role: Role::Issuer,
        name: "Impostor".into(),
        not_after: T0 + DAY,
    });
    let forged = Signed { signature: impostor.trust_list(9, body.entries.clone(), T0).expect("signs").signature, body };
    assert_refused_unchanged(&path, WalletError::Trust(TrustError::BadSignature), || {
        wallet.install_trust_list(&forged.to_bytes())
    });

    // A genuine list with one byte of its signature flipped.
    let mut flipped = world.trust_list(9);
    flipped.signature.0[10] ^= 0x01;
    assert_refused_unchanged(&path, WalletError::Trust(TrustError::BadSignature), || {
        wallet.install_trust_list(&flipped.to_bytes())
    });

    // A genuine but older list.
    assert_refused_unchanged(&path, WalletError::Trust(TrustError::Stale { installed: 2, offered: 1 }), || {
        wallet.install_trust_list(&world.trust_list(1).to_bytes())
    });

    // Not a trust list at all.
    let garbage = [0xA5u8; 40];
    let expected = Signed::<TrustListBody>::from_bytes(&garbage).expect_err("garbage");
    assert_refused_unchanged(&path, WalletError::Decode(expected), || wallet.install_trust_list(&garbage));

    assert_eq!(wallet.trust_list().map(|t| t.version()), Some(2));
    // The same version again is accepted (a re-sync), and a newer one.
    wallet.install_trust_list(&world.trust_list(2).to_bytes()).expect("same version");
    wallet.install_trust_list(&world.trust_list(4).to_bytes()).expect("newer version");
    assert_eq!(wallet.trust_list().map(|t| t.version()), Some(4));
}

#[test]
fn imports_list_by_kind_balance_and_history() {
    let world = World::new();
    let mut wallet = world.wallet("alice");
    let mut ids = Vec::new();
    let mut import = |wallet: &mut Wallet, make: &dyn Fn(PublicKey) -> Instrument| {
        let holder = wallet.new_holder_key().expect("holder key");
        world.clock.advance(10);
        let summary = wallet.import(&make(holder).to_bytes()).expect("imports");
        ids.push(summary.id);
        summary
    };
    let ticket = import(&mut wallet, &|h| world.ticket(h, true));
    let eur_500 = import(&mut wallet, &|h| world.note(h, "EUR", 500));
    let eur_200 = import(&mut wallet, &|h| world.note(h, "EUR", 200));
    let chf = import(&mut wallet, &|h| world.note(h, "CHF", 1_000));
    let coupon = import(&mut wallet, &|h| world.coupon(h));

    assert_eq!(ticket.kind, Kind::Ticket);
    assert_eq!(ticket.event_id.as_deref(), Some("final-2027"));
    assert_eq!(coupon.uses_left, 5);
    assert_eq!(wallet.tickets().expect("tickets").iter().map(|s| s.id).collect::<Vec<_>>(), vec![ticket.id]);
    assert_eq!(wallet.coupons().expect("coupons").iter().map(|s| s.id).collect::<Vec<_>>(), vec![coupon.id]);
    let mut notes: Vec<_> = wallet.notes().expect("notes").iter().map(|s| s.id).collect();
    notes.sort();
    let mut expected_notes = vec![eur_500.id, eur_200.id, chf.id];
    expected_notes.sort();
    assert_eq!(notes, expected_notes);
    let all = wallet.instruments(InstrumentFilter::default()).expect("all");
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|s| s.holding == Holding::Held && s.sequence == 0));
    // Newest change first.
    assert_eq!(all.iter().map(|s| s.id).collect::<Vec<_>>(), ids.iter().rev().copied().collect::<Vec<_>>());

    assert_eq!(
        wallet.balance().expect("balance"),
        vec![
            Balance { currency: "CHF".into(), available: 1_000, pending_out: 0 },
            Balance { currency: "EUR".into(), available: 700, pending_out: 0 },
        ]
    );

    // Endorsing a note out moves its value to pending-out.
    let bob = world.wallet("bob");
    let mut bob = bob;
    let bob_key = bob.new_holder_key().expect("bob's key");
    world.clock.advance(10);
    let sent = wallet
        .endorse(&eur_200.id, bob_key, ExchangeId::random(&mut OsRng), ExchangeId::random(&mut OsRng))
        .expect("endorses");
    assert_eq!(
        wallet.balance().expect("balance"),
        vec![
            Balance { currency: "CHF".into(), available: 1_000, pending_out: 0 },
            Balance { currency: "EUR".into(), available: 500, pending_out: 200 },
        ]
    );
    assert_eq!(
        wallet
            .instruments(InstrumentFilter { kind: Some(Kind::Note), holding: Some(Holding::PendingOut) })
            .expect("pending")
            .len(),
        1
    );
    wallet.confirm_transferred(&eur_200.id).expect("confirms");
    assert_eq!(
        wallet.balance().expect("balance")[1],
        Balance { currency: "EUR".into(), available: 500, pending_out: 0 }
    );

    // History: five issued lines in import order, then the endorsement; newest first.
    let history = wallet.history(100).expect("history");
    assert_eq!(history.len(), 6);
    assert!(history.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let out = &history[0];
    assert_eq!(
        (out.direction, out.kind, out.instrument_id, out.amount.clone(), out.counterparty),
        (Direction::Out, Kind::Note, eur_200.id, Some(Amount::new("EUR", 200)), Some(bob_key))
    );
    assert_eq!(out.memo, format!("endorsed to holder {}", bob_key.short()));
    let issued: Vec<_> = history[1..].iter().rev().collect();
    assert_eq!(issued.iter().map(|h| h.instrument_id).collect::<Vec<_>>(), ids);
    for line in &issued {
        assert_eq!(line.direction, Direction::In);
        assert_eq!(line.memo, format!("issued by {ISSUER_NAME}"));
        assert_eq!(line.counterparty, Some(world.issuer.public_key()));
    }
    assert_eq!(
        issued.iter().map(|h| h.kind).collect::<Vec<_>>(),
        [Kind::Ticket, Kind::Note, Kind::Note, Kind::Note, Kind::Coupon]
    );
    assert_eq!(issued[3].amount, Some(Amount::new("CHF", 1_000)));
    assert!(issued.windows(2).all(|w| w[0].time < w[1].time));
    assert_eq!(wallet.history(2).expect("limited").len(), 2);

    // Bob receives it: a "received" line naming Alice's holder key.
    let summary = bob.import_instrument(sent).expect("bob imports");
    assert_eq!((summary.sequence, summary.holding), (1, Holding::Held));
    let alice_holder = wallet.instrument(&eur_200.id).expect("record").holder;
    let received = &bob.history(1).expect("history")[0];
    assert_eq!(received.direction, Direction::In);
    assert_eq!(received.memo, format!("received from holder {}", alice_holder.short()));
    assert_eq!(received.counterparty, Some(alice_holder));
    assert_eq!(
        bob.balance().expect("balance"),
        vec![Balance { currency: "EUR".into(), available: 200, pending_out: 0 }]
    );
}

#[test]
fn instrument_for_a_key_we_did_not_make_is_not_ours() {
    let world = World::new();
    let path = world.path("alice");
    let mut alice = world.wallet("alice");
    let mut bob = world.wallet("bob");
    let bobs_key = bob.new_holder_key().expect("bob's key");
    let for_bob = world.ticket(bobs_key, true);
    assert_refused_unchanged(&path, WalletError::NotOurs(for_bob.id()), || alice.import_instrument(for_bob.clone()));
    // Not even the account key counts: instruments go to holder keys only.
    let for_account = world.ticket(alice.account_key(), true);
    assert_refused_unchanged(&path, WalletError::NotOurs(for_account.id()), || {
        alice.import_instrument(for_account.clone())
    });
    let stranger = world.note(LocalSigner::generate(&mut OsRng).public_key(), "EUR", 100);
    assert_refused_unchanged(&path, WalletError::NotOurs(stranger.id()), || alice.import_instrument(stranger.clone()));
    bob.import_instrument(for_bob).expect("bob's own");
}

#[test]
fn importing_twice_is_already_held() {
    let world = World::new();
    let path = world.path("alice");
    let mut wallet = world.wallet("alice");
    let holder = wallet.new_holder_key().expect("holder key");
    let bytes = world.coupon(holder).to_bytes();
    let id = wallet.import(&bytes).expect("first import").id;
    world.clock.advance(5);
    assert_refused_unchanged(&path, WalletError::AlreadyHeld(id), || wallet.import(&bytes));
    assert_eq!(wallet.history(10).expect("history").len(), 1);
}

#[test]
fn forged_or_invalid_instruments_are_rejected() {
    let world = World::new();
    let path = world.path("alice");
    let mut wallet = world.wallet("alice");
    let holder = wallet.new_holder_key().expect("holder key");

    // A note whose value was raised after the issuer signed it.
    let mut raised = world.note(holder, "EUR", 200);
    if let Attributes::Note(n) = &mut raised.genesis.body.attributes {
        n.amount.minor = 500;
    }
    assert_refused_unchanged(&path, WalletError::Rejected(Rejection::BadGenesisSignature), || {
        wallet.import(&raised.to_bytes())
    });

    // A flipped signature bit.
    let mut flipped = world.ticket(holder, true);
    flipped.genesis.signature.0[0] ^= 0x80;
    assert_refused_unchanged(&path, WalletError::Rejected(Rejection::BadGenesisSignature), || {
        wallet.import_instrument(flipped.clone())
    });

    // Issued by a key the registry does not certify.
    let rogue = Issuer::new(LocalSigner::generate(&mut OsRng));
    let counterfeit = rogue
        .issue(
            Attributes::Note(NoteAttributes { amount: Amount::new("EUR", 100), expires_at: T0 + DAY }),
            holder,
            T0,
            &mut OsRng,
        )
        .expect("issues");
    assert_refused_unchanged(&path, WalletError::Rejected(Rejection::UnknownIssuer(rogue.public_key())), || {
        wallet.import_instrument(counterfeit.clone())
    });

    // A link forged by someone who never held it.
    let ticket = world.ticket(holder, true);
    let thief = LocalSigner::generate(&mut OsRng);
    let next = ticket.next_endorsement(holder, ExchangeId::NONE, ExchangeId::NONE, T0);
    let stolen = ticket.with_link(Signed::sign(next, &thief).expect("signs"));
    assert_refused_unchanged(&path, WalletError::Rejected(Rejection::BadSignature { link: 1 }), || {
        wallet.import_instrument(stolen.clone())
    });

    // Expired by the time it arrives.
    let note = world.note(holder, "EUR", 100);
    world.clock.advance(91 * DAY);
    assert_refused_unchanged(&path, WalletError::Rejected(Rejection::Expired { valid_until: T0 + 90 * DAY }), || {
        wallet.import_instrument(note.clone())
    });

    // Bytes that are not an instrument, or too many of them.
    let mut truncated = world.ticket(holder, true).to_bytes();
    truncated.pop();
    let expected = Instrument::from_bytes(&truncated).expect_err("truncated");
    assert_refused_unchanged(&path, WalletError::Decode(expected), || wallet.import(&truncated));
    let huge = vec![0u8; Instrument::MAX_LEN + 1];
    assert_refused_unchanged(
        &path,
        WalletError::Decode(DecodeError::TooLarge { what: "instrument", len: huge.len(), max: Instrument::MAX_LEN }),
        || wallet.import(&huge),
    );
    assert!(wallet.instruments(InstrumentFilter::default()).expect("lists").is_empty());
}

#[test]
fn endorse_pending_out_confirm_and_receiver_imports() {
    let world = World::new();
    let alice_path = world.path("alice");
    let mut alice = world.wallet("alice");
    let mut bob = world.wallet("bob");
    let alice_key = alice.new_holder_key().expect("alice's key");
    let id = alice.import_instrument(world.ticket(alice_key, true)).expect("imports").id;
    let bob_key = bob.new_holder_key().expect("bob's key");

    world.clock.advance(30);
    let (offer, acceptance) = (ExchangeId::random(&mut OsRng), ExchangeId::random(&mut OsRng));
    let sent = alice.endorse(&id, bob_key, offer, acceptance).expect("endorses");
    assert_eq!(sent.holder(), bob_key);
    assert_eq!(sent.sequence(), 1);
    let link = &sent.links[0].body;
    assert_eq!((link.offer_id, link.acceptance_id, link.time), (offer, acceptance, T0 + 30));
    let record = alice.instrument(&id).expect("record");
    assert_eq!(record.holding, Holding::PendingOut);
    assert_eq!(record.holder, alice_key, "the record keeps the key that held it");
    assert_eq!(record.instrument, sent, "the link is stored before it is handed out");
    assert_eq!(alice.export(&id).expect("exports"), sent.to_bytes());

    // It cannot be offered a second time, to anyone.
    let carol = LocalSigner::generate(&mut OsRng).public_key();
    assert_refused_unchanged(&alice_path, WalletError::NotHeld { id, holding: "pending-out" }, || {
        alice.endorse(&id, carol, ExchangeId::random(&mut OsRng), ExchangeId::random(&mut OsRng))
    });
    // Alice cannot take it back by re-importing her own old copy.
    let original = Instrument { links: Vec::new(), ..sent.clone() };
    assert_refused_unchanged(&alice_path, WalletError::Stale(id), || alice.import_instrument(original.clone()));

    // Bob receives it and it verifies for his key.
    let summary = bob.import(&sent.to_bytes()).expect("bob imports");
    assert_eq!((summary.id, summary.holding, summary.sequence), (id, Holding::Held, 1));
    assert_eq!(bob.verify(&id).expect("verifies").holder, bob_key);

    // Alice's receipt comes in: gone, and no longer listed as a ticket.
    world.clock.advance(5);
    alice.confirm_transferred(&id).expect("confirms");
    assert_eq!(alice.instrument(&id).expect("kept as evidence").holding, Holding::Gone);
    alice.confirm_transferred(&id).expect("idempotent");
    assert!(alice.tickets().expect("lists").is_empty());
    assert_refused_unchanged(&alice_path, WalletError::NotHeld { id, holding: "gone" }, || {
        alice.endorse(&id, carol, ExchangeId::random(&mut OsRng), ExchangeId::random(&mut OsRng))
    });
    let unknown = tessera_core::InstrumentId::random(&mut OsRng);
    assert_refused_unchanged(&alice_path, WalletError::UnknownInstrument(unknown), || {
        alice.confirm_transferred(&unknown)
    });

    // A held instrument that was never endorsed cannot be confirmed away.
    let bob_path = world.path("bob");
    assert_refused_unchanged(&bob_path, WalletError::NotHeld { id, holding: "held, never endorsed" }, || {
        bob.confirm_transferred(&id)
    });

    // Bob passes it back to a fresh key of Alice's: she holds it again.
    let alice_again = alice.new_holder_key().expect("new key");
    let back = bob
        .endorse(&id, alice_again, ExchangeId::random(&mut OsRng), ExchangeId::random(&mut OsRng))
        .expect("endorses");
    let summary = alice.import_instrument(back).expect("alice imports it back");
    assert_eq!((summary.holding, summary.sequence), (Holding::Held, 2));
    assert_eq!(alice.tickets().expect("lists").len(), 1);
}

#[test]
fn non_transferable_ticket_refuses_endorse() {
    let world = World::new();
    let path = world.path("alice");
    let mut alice = world.wallet("alice");
    let key = alice.new_holder_key().expect("key");
    let id = alice.import_instrument(world.ticket(key, false)).expect("imports").id;
    let friend = LocalSigner::generate(&mut OsRng).public_key();
    assert_refused_unchanged(&path, WalletError::NotTransferable(id), || {
        alice.endorse(&id, friend, ExchangeId::random(&mut OsRng), ExchangeId::random(&mut OsRng))
    });
    assert_eq!(alice.instrument(&id).expect("record").holding, Holding::Held);
    // Handing it back to the certified issuer (a refund) is allowed.
    let back = alice.endorse(&id, world.issuer.public_key(), ExchangeId::NONE, ExchangeId::NONE).expect("refund");
    assert_eq!(back.holder(), world.issuer.public_key());
}

#[test]
fn database_files_hold_no_private_key_bytes() {
    let world = World::new();
    let path = world.path("alice");
    let passphrase = "a passphrase that must not be stored";
    let keys = PassphraseKeyProvider::new(passphrase);
    let mut wallet = Wallet::create_at(&path, &keys, world.clock.clone()).expect("creates");
    wallet.pin_registry(world.registry.public_key()).expect("pins");
    wallet.install_trust_list(&world.trust_list(1).to_bytes()).expect("installs");
    let mut ids = Vec::new();
    for n in 0..4u64 {
        let holder = wallet.new_holder_key().expect("key");
        ids.push(wallet.import_instrument(world.note(holder, "EUR", 100 * (n + 1).min(2))).expect("imports").id);
    }
    let bob = LocalSigner::generate(&mut OsRng).public_key();
    wallet.endorse(&ids[0], bob, ExchangeId::NONE, ExchangeId::NONE).expect("endorses");

    let mut secrets: Vec<[u8; 32]> = vec![*wallet.signer(&wallet.account_key()).expect("account").secret().to_bytes()];
    for record in wallet.store().keys(KeyRole::Holder).expect("holder keys") {
        secrets.push(*wallet.signer(&record.public).expect("holder").secret().to_bytes());
    }
    assert_eq!(secrets.len(), 5);

    let check = |label: &str| {
        let mut files = vec![path.clone()];
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        if wal.exists() {
            files.push(wal);
        }
        for file in &files {
            let bytes = std::fs::read(file).expect("reads file");
            for (i, secret) in secrets.iter().enumerate() {
                assert!(!bytes.windows(32).any(|w| w == secret), "{label}: secret {i} found in {}", file.display());
                // Neither half of it either, in case a store split it.
                assert!(
                    !bytes.windows(16).any(|w| w == &secret[..16]),
                    "{label}: half of secret {i} in {}",
                    file.display()
                );
            }
            assert!(!bytes.windows(passphrase.len()).any(|w| w == passphrase.as_bytes()), "{label}: passphrase stored");
        }
        files.len()
    };
    // While open the recent writes sit in the -wal file; check both.
    assert_eq!(check("open"), 2, "the WAL file exists while the wallet is open");
    drop(wallet);
    // After close they are checkpointed into the main file.
    check("closed");
}

#[test]
fn debug_output_redacts_every_secret() {
    let world = World::new();
    let path = world.path("alice");
    let passphrase = "hunter2-but-longer";
    let storage = [0x5Au8; 32];
    let static_keys = StaticKeyProvider::new(StorageKey::from_bytes(storage));
    let phrase_keys = PassphraseKeyProvider::new(passphrase);
    let key_file_path = world.dir.path().join("k.key");
    let key_file = KeyFileProvider::create(&key_file_path, &mut OsRng).expect("key file");
    let key_file_text = std::fs::read_to_string(&key_file_path).expect("reads");

    let mut wallet = Wallet::create_at(&path, &static_keys, world.clock.clone()).expect("creates");
    wallet.pin_registry(world.registry.public_key()).expect("pins");
    let holder = wallet.new_holder_key().expect("holder key");
    let account_signer = wallet.signer(&wallet.account_key()).expect("account signer");
    let holder_signer = wallet.signer(&holder).expect("holder signer");
    let account_record = wallet.store().key(&wallet.account_key()).expect("reads").expect("account record");
    let holder_record = wallet.store().key(&holder).expect("reads").expect("holder record");

    let shown = [
        ("wallet", format!("{wallet:?}")),
        ("account signer", format!("{account_signer:?}")),
        ("holder signer", format!("{holder_signer:?}")),
        ("secret key", format!("{:?}", holder_signer.secret())),
        ("static provider", format!("{static_keys:?}")),
        ("passphrase provider", format!("{phrase_keys:?}")),
        ("account key record", format!("{account_record:?}")),
        ("holder key record", format!("{holder_record:?}")),
        ("storage key", format!("{:?}", static_keys.storage_key(&[0; 16]).expect("key"))),
        ("alternate form", format!("{account_signer:#?} {holder_record:#?} {wallet:#?}")),
    ];
    let mut forbidden: Vec<(String, String)> = Vec::new();
    let mut forbid = |what: &str, bytes: &[u8]| {
        forbidden.push((format!("{what} (hex)"), hex::encode(bytes)));
        forbidden.push((format!("{what} (hex, upper)"), hex::encode_upper(bytes)));
        forbidden.push((format!("{what} (list)"), format!("{:?}", &bytes[..8]).trim_end_matches(']').to_owned()));
    };
    forbid("account secret", account_signer.secret().to_bytes().as_ref());
    forbid("holder secret", holder_signer.secret().to_bytes().as_ref());
    forbid("storage key", &storage);
    forbid("account sealed", &account_record.sealed);
    forbid("holder sealed", &holder_record.sealed);
    forbidden.push(("passphrase".into(), passphrase.into()));
    forbidden.push(("key file".into(), key_file_text.trim().into()));

    for (what, text) in &shown {
        if *what != "alternate form" {
            assert!(text.contains("[REDACTED]"), "{what} does not say [REDACTED]: {text}");
        }
        for (secret, needle) in &forbidden {
            assert!(!text.contains(needle.as_str()), "{what} shows the {secret}: {text}");
        }
    }
    let shown_key_file = format!("{key_file:?}");
    assert!(!shown_key_file.contains(key_file_text.trim()), "the key file provider shows its key");
    // The public halves are fine to show, and useful.
    assert!(shown[0].1.contains(&wallet.account_key().to_hex()));
    assert!(shown[7].1.contains(&holder.to_hex()));
}

#[test]
fn deny_lists_are_checked_and_denied_instruments_refused() {
    let world = World::new();
    let path = world.path("alice");
    let mut wallet = world.wallet("alice");
    let holder = wallet.new_holder_key().expect("key");
    let denied = world.ticket(holder, true);
    let mut list = tessera_core::DenyList::empty();
    list.deny(denied.id());
    list.deny(tessera_core::InstrumentId([7; 16]));
    let v2 = world.registry.deny_list(list.clone()).expect("signs");
    wallet.install_deny_list(&v2.to_bytes()).expect("installs");
    assert!(wallet.deny_list().denies(&denied.id()));
    assert_refused_unchanged(&path, WalletError::Rejected(Rejection::Denied), || {
        wallet.import_instrument(denied.clone())
    });

    let impostor = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
    let mut bigger = list.clone();
    bigger.deny(tessera_core::InstrumentId([8; 16]));
    let forged = impostor.deny_list(bigger).expect("signs");
    assert_refused_unchanged(&path, WalletError::Trust(TrustError::BadSignature), || {
        wallet.install_deny_list(&forged.to_bytes())
    });
    let mut older = tessera_core::DenyList::empty();
    older.deny(tessera_core::InstrumentId([9; 16]));
    let v1 = world.registry.deny_list(older).expect("signs");
    assert_refused_unchanged(&path, WalletError::Trust(TrustError::Stale { installed: 2, offered: 1 }), || {
        wallet.install_deny_list(&v1.to_bytes())
    });
    drop(wallet);
    // The installed list survives a reopen.
    let reopened = Wallet::open_at(&path, &storage_keys(), world.clock.clone()).expect("opens");
    assert_eq!(reopened.deny_list(), &list);
}
