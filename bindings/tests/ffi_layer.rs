//! The FFI layer from Rust: error conversions, the keystore bridge, `Debug`
//! redaction, and one pass through every exported wallet call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::OsRng;
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::codec::DecodeError;
use tessera_core::instrument::{Amount as CoreAmount, Attributes, NoteAttributes, TicketAttributes};
use tessera_core::sealing::{KeyProvider, KeyProviderError};
use tessera_core::store::StoreError;
use tessera_core::trust::TrustError;
use tessera_core::{InstrumentId, LocalSigner, PublicKey, Rejection, Role, TrustEntry, Wire};
use tessera_ffi::{
    Direction, Holding, Keystore, KeystoreError, KeystoreKeyProvider, Kind, Wallet, WalletError, generate_storage_key,
};

type CoreError = tessera_core::WalletError;
/// Whether an FFI error is the variant a core error should become.
type VariantCheck = fn(&WalletError) -> bool;

#[derive(Debug)]
struct FixedKeystore(Vec<u8>);

impl Keystore for FixedKeystore {
    fn storage_key(&self, wallet_salt: Vec<u8>) -> Result<Vec<u8>, KeystoreError> {
        assert_eq!(wallet_salt.len(), 16, "the salt the core passes");
        Ok(self.0.clone())
    }
}

#[derive(Debug)]
struct LockedKeystore;

impl Keystore for LockedKeystore {
    fn storage_key(&self, _wallet_salt: Vec<u8>) -> Result<Vec<u8>, KeystoreError> {
        Err(KeystoreError::Unavailable { error_message: "user not authenticated".into() })
    }
}

fn keystore(key: &[u8]) -> Arc<dyn Keystore> {
    Arc::new(FixedKeystore(key.to_vec()))
}

#[test]
fn core_errors_keep_their_variant_and_their_text() {
    let id = InstrumentId([7; 16]);
    let key = PublicKey([9; 32]);
    let cases: Vec<(CoreError, VariantCheck)> = vec![
        (StoreError::Backend("disk full".into()).into(), |e| matches!(e, WalletError::Storage { .. })),
        (DecodeError::TooLarge { what: "instrument", len: 9, max: 1 }.into(), |e| {
            matches!(e, WalletError::Decode { .. })
        }),
        (Rejection::Revoked.into(), |e| matches!(e, WalletError::Rejected { .. })),
        (TrustError::BadSignature.into(), |e| matches!(e, WalletError::Trust { .. })),
        (KeyProviderError::Unavailable("locked".into()).into(), |e| matches!(e, WalletError::Keystore { .. })),
        (CoreError::WrongStorageKey, |e| matches!(e, WalletError::WrongStorageKey { .. })),
        (CoreError::NotCreated, |e| matches!(e, WalletError::NotCreated { .. })),
        (CoreError::AlreadyCreated, |e| matches!(e, WalletError::AlreadyCreated { .. })),
        (CoreError::NoRegistry, |e| matches!(e, WalletError::NoRegistry { .. })),
        (CoreError::RegistryMismatch(key), |e| matches!(e, WalletError::RegistryMismatch { .. })),
        (CoreError::NoTrustList, |e| matches!(e, WalletError::NoTrustList { .. })),
        (CoreError::UnknownInstrument(id), |e| matches!(e, WalletError::UnknownInstrument { .. })),
        (CoreError::NotOurs(id), |e| matches!(e, WalletError::NotOurs { .. })),
        (CoreError::AlreadyHeld(id), |e| matches!(e, WalletError::AlreadyHeld { .. })),
        (CoreError::Stale(id), |e| matches!(e, WalletError::Stale { .. })),
        (CoreError::NotHeld { id, holding: "gone" }, |e| matches!(e, WalletError::NotHeld { .. })),
        (CoreError::NotTransferable(id), |e| matches!(e, WalletError::NotTransferable { .. })),
        (CoreError::Inconsistent("salt".into()), |e| matches!(e, WalletError::Inconsistent { .. })),
    ];
    for (core, is_expected_variant) in cases {
        let text = core.to_string();
        let ffi = WalletError::from(core);
        assert!(is_expected_variant(&ffi), "{text} became {ffi:?}");
        assert_eq!(ffi.error_message(), text, "the app sees the core's explanation");
        assert_eq!(ffi.to_string(), text);
    }
}

#[test]
fn an_undeclared_callback_error_becomes_unexpected_instead_of_a_panic() {
    let error =
        KeystoreError::from(uniffi::UnexpectedUniFFICallbackError::new("java.lang.IllegalStateException: boom"));
    assert_eq!(error, KeystoreError::Unexpected { error_message: "java.lang.IllegalStateException: boom".into() });
    assert!(error.to_string().contains("boom"));
}

#[test]
fn keystore_bridge_refuses_a_key_of_the_wrong_length_without_echoing_it() {
    let provider = KeystoreKeyProvider::new(keystore(&[0xAB; 31]));
    let error = provider.storage_key(&[1; 16]).expect_err("31 bytes is not a storage key");
    let text = error.to_string();
    assert!(text.contains("31 bytes"), "{text}");
    assert!(!text.to_lowercase().contains("abab"), "the key material stays out of the message: {text}");

    let locked = KeystoreKeyProvider::new(Arc::new(LockedKeystore));
    let text = locked.storage_key(&[1; 16]).expect_err("locked").to_string();
    assert!(text.contains("user not authenticated"), "{text}");
}

#[test]
fn debug_output_redacts_the_storage_key() {
    let key = generate_storage_key();
    assert_eq!(key.len(), 32);
    assert_ne!(key, generate_storage_key(), "fresh keys differ");
    let hex_key = hex::encode(&key);

    let provider = KeystoreKeyProvider::new(keystore(&key));
    let shown = format!("{provider:?}");
    assert_eq!(shown, "KeystoreKeyProvider([REDACTED])");

    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::create(dir.path().join("w.db").to_str().unwrap().into(), keystore(&key)).unwrap();
    let shown = format!("{wallet:?}");
    assert!(shown.contains(&wallet.account_key()), "Debug shows public facts: {shown}");
    assert!(!shown.contains(&hex_key), "Debug never shows the storage key: {shown}");
    assert!(!shown.contains(&format!("{:?}", &key[..8])), "nor its bytes: {shown}");
}

#[test]
fn a_failing_keystore_is_a_typed_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db").to_str().unwrap().to_string();
    let error = Wallet::create(path.clone(), Arc::new(LockedKeystore)).expect_err("no key, no wallet");
    assert!(matches!(error, WalletError::Keystore { .. }), "{error:?}");
    assert!(error.error_message().contains("user not authenticated"), "{error}");
    // Nothing was created: a later attempt with a working keystore succeeds.
    let key = generate_storage_key();
    Wallet::create(path.clone(), keystore(&key)).expect("create after a failed attempt");
    let error = Wallet::create(path.clone(), keystore(&key)).expect_err("only once");
    assert!(matches!(error, WalletError::AlreadyCreated { .. }), "{error:?}");
}

#[test]
fn a_wrong_storage_key_is_refused_and_the_right_one_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db").to_str().unwrap().to_string();
    let key = generate_storage_key();
    let account = Wallet::create(path.clone(), keystore(&key)).unwrap().account_key();
    let error = Wallet::open(path.clone(), keystore(&generate_storage_key())).expect_err("wrong key");
    assert!(matches!(error, WalletError::WrongStorageKey { .. }), "{error:?}");
    assert!(error.error_message().contains("storage key"), "{error}");
    assert_eq!(Wallet::open(path, keystore(&key)).unwrap().account_key(), account);
}

struct Authority {
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
}

impl Authority {
    fn new() -> Self {
        Self {
            registry: RegistryAuthority::new(LocalSigner::generate(&mut OsRng)),
            issuer: Issuer::new(LocalSigner::generate(&mut OsRng)),
        }
    }
    fn trust_list(&self, version: u64) -> Vec<u8> {
        let entry = TrustEntry {
            key: self.issuer.public_key(),
            role: Role::Issuer,
            name: "Arena".into(),
            not_after: now() + 86_400,
        };
        self.registry.trust_list(version, vec![entry], now()).unwrap().to_bytes()
    }
    fn ticket(&self, holder: &str) -> Vec<u8> {
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: "concert-1".into(),
            title: "Concert".into(),
            zone: "A".into(),
            seat: None,
            guidance: None,
            valid_from: now() - 60,
            valid_until: now() + 86_400,
            transferable: true,
            uses: 1,
            face_price: None,
        });
        self.issuer.issue(attributes, PublicKey::from_hex(holder).unwrap(), now(), &mut OsRng).unwrap().to_bytes()
    }
    fn note(&self, holder: &str, minor: u64) -> Vec<u8> {
        let attributes =
            Attributes::Note(NoteAttributes { amount: CoreAmount::new("EUR", minor), expires_at: now() + 86_400 });
        self.issuer.issue(attributes, PublicKey::from_hex(holder).unwrap(), now(), &mut OsRng).unwrap().to_bytes()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn every_exported_wallet_call_works_and_rejects_bad_input_without_change() {
    let authority = Authority::new();
    let dir = tempfile::tempdir().unwrap();
    let key = generate_storage_key();
    let wallet = Wallet::create(dir.path().join("w.db").to_str().unwrap().into(), keystore(&key)).unwrap();

    assert!(matches!(wallet.install_trust_list(authority.trust_list(1)), Err(WalletError::NoRegistry { .. })));
    assert!(matches!(wallet.pin_registry("zz".into()), Err(WalletError::InvalidInput { .. })));
    assert_eq!(wallet.registry_key().unwrap(), None, "a refused pin changed nothing");
    wallet.pin_registry(authority.registry.public_key().to_hex()).unwrap();
    assert_eq!(wallet.registry_key().unwrap(), Some(authority.registry.public_key().to_hex()));
    wallet.install_trust_list(authority.trust_list(2)).unwrap();
    assert_eq!(wallet.trust_list_version().unwrap(), Some(2));
    let stale = wallet.install_trust_list(authority.trust_list(1)).expect_err("older list");
    assert!(matches!(stale, WalletError::Trust { .. }), "{stale:?}");
    assert_eq!(wallet.trust_list_version().unwrap(), Some(2));

    let holder = wallet.new_holder_key().unwrap();
    let ticket = wallet.import(authority.ticket(&holder)).unwrap();
    assert_eq!(ticket.kind, Kind::Ticket);
    assert_eq!(ticket.holding, Holding::Held);
    assert_eq!(ticket.event_id.as_deref(), Some("concert-1"));
    for minor in [500, 200] {
        let holder = wallet.new_holder_key().unwrap();
        wallet.import(authority.note(&holder, minor)).unwrap();
    }

    assert_eq!(wallet.tickets().unwrap(), vec![ticket.clone()]);
    assert_eq!(wallet.notes().unwrap().len(), 2);
    assert!(wallet.coupons().unwrap().is_empty());
    let balance = wallet.balance().unwrap();
    assert_eq!(balance.len(), 1);
    assert_eq!((balance[0].currency.as_str(), balance[0].available, balance[0].pending_out), ("EUR", 700, 0));
    let history = wallet.history(10).unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|h| h.direction == Direction::In && h.memo.contains("Arena")), "{history:?}");

    let verified = wallet.verify(ticket.id.clone()).unwrap();
    assert_eq!(
        (verified.id.as_str(), verified.holder.as_str(), verified.sequence),
        (ticket.id.as_str(), holder.as_str(), 0)
    );
    let exported = wallet.export(ticket.id.clone()).unwrap();
    assert_eq!(exported, authority.ticket_bytes_roundtrip(&exported));

    let again = wallet.import(exported).expect_err("same instrument twice");
    assert!(matches!(again, WalletError::AlreadyHeld { .. }), "{again:?}");
    let forged = Authority::new().ticket(&wallet.new_holder_key().unwrap());
    let error = wallet.import(forged).expect_err("an uncertified issuer");
    assert!(matches!(error, WalletError::Rejected { .. }), "{error:?}");
    assert!(error.error_message().contains("not in the trust list"), "{error}");
    let error = wallet.import(vec![0xFF; 40]).expect_err("garbage");
    assert!(matches!(error, WalletError::Decode { .. }), "{error:?}");
    let error = wallet.verify("00".into()).expect_err("short id");
    assert!(matches!(error, WalletError::InvalidInput { .. }), "{error:?}");
    let error = wallet.export(hex::encode([3u8; 16])).expect_err("unknown id");
    assert!(matches!(error, WalletError::UnknownInstrument { .. }), "{error:?}");
    assert_eq!(wallet.tickets().unwrap().len(), 1, "refused imports changed nothing");
    assert_eq!(wallet.history(10).unwrap().len(), 3);
}

impl Authority {
    /// Decodes and re-encodes, proving the export is a canonical instrument.
    fn ticket_bytes_roundtrip(&self, bytes: &[u8]) -> Vec<u8> {
        tessera_core::Instrument::from_bytes(bytes).unwrap().to_bytes()
    }
}

// ---- transfer, NFC, p2p and registry errors and flows -------------------------

use tessera_core::transfer::{SignedPart, TransferError as CoreTransferError};
use tessera_ffi::{
    NfcChannel, NfcChannelError, NfcTransferError, NfcTransferStep, OfferTerms, P2pError, RegistryError, TransferError,
    TransferEvent,
};

/// Whether an FFI transfer error is the variant a core error should become.
type TransferCheck = fn(&TransferError) -> bool;

#[test]
fn transfer_errors_keep_their_kind_and_their_text() {
    let id = InstrumentId([3; 16]);
    let exchange = tessera_core::ExchangeId([4; 16]);
    let cases: Vec<(CoreTransferError, TransferCheck)> = vec![
        (DecodeError::TooLarge { what: "offer", len: 9, max: 1 }.into(), |e| matches!(e, TransferError::Decode { .. })),
        (CoreError::NoTrustList.into(), |e| matches!(e, TransferError::Wallet { .. })),
        (CoreTransferError::Rejected { id, reason: Rejection::Revoked }, |e| {
            matches!(e, TransferError::Rejected { .. })
        }),
        (CoreTransferError::BadSignature(SignedPart::OfferSender), |e| matches!(e, TransferError::Refused { .. })),
        (CoreTransferError::Replayed(exchange), |e| matches!(e, TransferError::Refused { .. })),
        (CoreTransferError::OwnOffer, |e| matches!(e, TransferError::Refused { .. })),
        (CoreTransferError::BadPayment("short"), |e| matches!(e, TransferError::Refused { .. })),
        (CoreTransferError::UnknownExchange(exchange), |e| matches!(e, TransferError::UnknownExchange { .. })),
        (CoreTransferError::Expired { expires_at: 1, now: 2 }, |e| matches!(e, TransferError::Expired { .. })),
        (CoreTransferError::Stale(id), |e| matches!(e, TransferError::Stale { .. })),
        (CoreTransferError::NotHeld { id, holding: "gone" }, |e| matches!(e, TransferError::NotHeld { .. })),
        (CoreTransferError::NotTransferable(id), |e| matches!(e, TransferError::NotTransferable { .. })),
        (CoreTransferError::BadItems("none"), |e| matches!(e, TransferError::BadOffer { .. })),
        (CoreTransferError::InsufficientFunds { needed: CoreAmount::new("EUR", 5), available: 1 }, |e| {
            matches!(e, TransferError::InsufficientFunds { .. })
        }),
        (CoreTransferError::CannotMakeChange, |e| matches!(e, TransferError::CannotMakeChange { .. })),
        (CoreTransferError::Corrupt("x".into()), |e| matches!(e, TransferError::Corrupt { .. })),
    ];
    for (core, is_expected_variant) in cases {
        let text = core.to_string();
        let ffi = TransferError::from(core);
        assert!(is_expected_variant(&ffi), "{text} became {ffi:?}");
        assert_eq!(ffi.to_string(), text, "the app sees the core's explanation");
    }
    // Wallet-level argument errors keep their meaning through the transfer API.
    let bad = TransferError::from(WalletError::InvalidInput { error_message: "not hex".into() });
    assert_eq!(bad, TransferError::InvalidInput { error_message: "not hex".into() });
}

#[test]
fn p2p_nfc_and_registry_errors_keep_their_kind_and_their_text() {
    let stopped = P2pError::from(tessera_p2p::P2pError::Stopped);
    assert!(matches!(&stopped, P2pError::Stopped { error_message } if error_message.contains("stopped")));
    let transport = P2pError::from(tessera_p2p::P2pError::Transport("no route".into()));
    assert!(matches!(&transport, P2pError::Transport { error_message } if error_message.contains("no route")));

    let card = NfcTransferError::from(tessera_core::presentation::NfcTransferError::Channel(
        tessera_core::apdu::ReaderError::Status(tessera_core::apdu::StatusWord::CONDITIONS_NOT_SATISFIED),
    ));
    assert!(matches!(&card, NfcTransferError::Card { error_message } if error_message.contains("6985")), "{card:?}");
    let channel = NfcTransferError::from(NfcChannelError::TagLost { error_message: "moved".into() });
    assert!(matches!(&channel, NfcTransferError::Channel { error_message } if error_message.contains("moved")));

    let refused = RegistryError::from(tessera_registry::client::ClientError::Refused {
        status: 402,
        body: tessera_registry::wire::ErrorBody { error: "insufficient_funds".into(), message: "short by 5".into() },
    });
    match refused {
        RegistryError::Refused { status, code, error_message } => {
            assert_eq!((status, code.as_str()), (402, "insufficient_funds"));
            assert!(error_message.contains("short by 5"), "{error_message}");
        }
        other => panic!("became {other:?}"),
    }
    let transport = RegistryError::from(tessera_registry::client::ClientError::Transport("refused".into()));
    assert!(matches!(transport, RegistryError::Transport { .. }));
}

#[test]
fn an_undeclared_nfc_channel_error_becomes_unexpected_instead_of_a_panic() {
    let error =
        NfcChannelError::from(uniffi::UnexpectedUniFFICallbackError::new("java.lang.IllegalStateException: bug"));
    assert_eq!(error, NfcChannelError::Unexpected { error_message: "java.lang.IllegalStateException: bug".into() });
    assert!(NfcTransferError::from(error).to_string().contains("IllegalStateException"));
}

/// Two phones in one process: the reader's transceive is the card's process_apdu.
struct Tap(Arc<Wallet>);

impl NfcChannel for Tap {
    fn transceive(&self, command: Vec<u8>) -> Result<Vec<u8>, NfcChannelError> {
        Ok(self.0.process_apdu(command))
    }
}

struct Lost;

impl NfcChannel for Lost {
    fn transceive(&self, _command: Vec<u8>) -> Result<Vec<u8>, NfcChannelError> {
        Err(NfcChannelError::TagLost { error_message: "moved away".into() })
    }
}

fn trusting_wallet(authority: &Authority, dir: &std::path::Path, name: &str) -> Arc<Wallet> {
    let wallet = Wallet::create(dir.join(name).to_str().unwrap().into(), keystore(&generate_storage_key())).unwrap();
    wallet.pin_registry(authority.registry.public_key().to_hex()).unwrap();
    wallet.install_trust_list(authority.trust_list(1)).unwrap();
    wallet
}

#[test]
fn a_gift_by_nfc_tap_completes_on_both_phones_and_a_lost_tag_changes_nothing() {
    let authority = Authority::new();
    let dir = tempfile::tempdir().unwrap();
    let alice = trusting_wallet(&authority, dir.path(), "alice.db");
    let bob = trusting_wallet(&authority, dir.path(), "bob.db");
    let note = alice.import(authority.note(&alice.new_holder_key().unwrap(), 500)).unwrap();

    let lost = alice.nfc_transfer(Arc::new(Lost), Vec::new()).expect_err("lost tag");
    assert!(matches!(&lost, NfcTransferError::Channel { error_message } if error_message.contains("moved away")));

    let offer = alice.offer_transfer(vec![note.id.clone()], OfferTerms::Gift, 60).unwrap();
    assert_eq!(alice.notes().unwrap()[0].holding, Holding::PendingOut);
    bob.accept_gifts(true);
    let step = alice.nfc_transfer(Arc::new(Tap(bob.clone())), offer.step.send.unwrap()).unwrap();
    let NfcTransferStep::Done { events } = step else { panic!("one tap completes a gift: {step:?}") };
    assert!(
        events.iter().any(|e| matches!(e, TransferEvent::Completed { sent, .. } if sent == &vec![note.id.clone()]))
    );
    assert!(bob.take_transfer_events().iter().any(|e| matches!(e, TransferEvent::Completed { .. })));
    assert_eq!(bob.balance().unwrap()[0].available, 500);
    assert_eq!(alice.balance().unwrap().iter().map(|b| b.available).sum::<u64>(), 0);
    assert!(alice.transfers().unwrap().iter().all(|t| t.is_final));
}

#[test]
fn a_running_node_holds_the_wallet_and_gives_it_back_on_stop_or_drop() {
    let authority = Authority::new();
    let dir = tempfile::tempdir().unwrap();
    let key = generate_storage_key();
    let wallet = Wallet::create(dir.path().join("w.db").to_str().unwrap().into(), keystore(&key)).unwrap();
    wallet.pin_registry(authority.registry.public_key().to_hex()).unwrap();
    let select = tessera_core::apdu::Command::select(&tessera_core::apdu::TESSERA_AID).to_bytes();
    let executor = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let node = executor.block_on(wallet.clone().start_node(tessera_ffi::loopback_node_config())).unwrap();
    // Calls still work, as jobs inside the node; the card side waits.
    assert_eq!(wallet.registry_key().unwrap(), Some(authority.registry.public_key().to_hex()));
    assert_eq!(wallet.process_apdu(select.clone()), vec![0x69, 0x85]);
    let second = executor.block_on(wallet.clone().start_node(tessera_ffi::loopback_node_config()));
    assert!(matches!(second, Err(P2pError::AlreadyRunning { .. })), "{second:?}");
    let bad = executor.block_on(node.offer("not a peer".into(), vec![], OfferTerms::Gift, 60));
    assert!(matches!(bad, Err(P2pError::InvalidInput { .. })), "{bad:?}");
    let shown = format!("{wallet:?} {node:?}");
    assert!(!shown.contains(&hex::encode(&key)), "Debug never shows the storage key: {shown}");
    assert!(shown.contains("peer_id"), "Debug shows the node's public facts: {shown}");

    executor.block_on(node.stop()).unwrap();
    assert!(wallet.process_apdu(select.clone()).ends_with(&[0x90, 0x00]), "the card side is back");
    drop(node);

    // Dropping a running node (Kotlin close()) stops it and gives the wallet back too.
    let node = executor.block_on(wallet.clone().start_node(tessera_ffi::loopback_node_config())).unwrap();
    drop(node);
    let back = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        wallet.process_apdu(select.clone()).ends_with(&[0x90, 0x00])
    });
    assert!(back, "the wallet came back after the node was dropped");
    assert_eq!(wallet.registry_key().unwrap(), Some(authority.registry.public_key().to_hex()));
}
