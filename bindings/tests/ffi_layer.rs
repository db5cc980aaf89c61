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
    assert_eq!(wallet.registry_key(), None, "a refused pin changed nothing");
    wallet.pin_registry(authority.registry.public_key().to_hex()).unwrap();
    assert_eq!(wallet.registry_key(), Some(authority.registry.public_key().to_hex()));
    wallet.install_trust_list(authority.trust_list(2)).unwrap();
    assert_eq!(wallet.trust_list_version(), Some(2));
    let stale = wallet.install_trust_list(authority.trust_list(1)).expect_err("older list");
    assert!(matches!(stale, WalletError::Trust { .. }), "{stale:?}");
    assert_eq!(wallet.trust_list_version(), Some(2));

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
