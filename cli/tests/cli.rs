//! The `tessera` binary as a person uses it: real processes, a real wallet
//! file, instruments issued by a real issuer key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::{Amount, Attributes, LocalSigner, NoteAttributes, PublicKey, Role, TrustEntry, Wire};

fn tessera(wallet: &Path, passphrase: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--wallet")
        .arg(wallet)
        .args(args)
        .env("TESSERA_PASSPHRASE", passphrase)
        .env_remove("TESSERA_KEY_FILE")
        .output()
        .expect("runs tessera")
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn desktop_wallet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("w.db");
    let sp = RegistryAuthority::new(LocalSigner::from_seed(&[1; 32]));
    let bank = Issuer::new(LocalSigner::from_seed(&[2; 32]));
    let entry = TrustEntry { key: bank.public_key(), role: Role::Issuer, name: "Bank".into(), not_after: u64::MAX };
    let list = sp.trust_list(1, vec![entry], 0).unwrap();
    let list_file = dir.path().join("trust.bin");
    std::fs::write(&list_file, list.to_bytes()).unwrap();

    let out = ok(tessera(&wallet, "pw", &["init", "--registry", &sp.public_key().to_hex()]));
    assert!(out.contains("account key"), "{out}");
    assert!(!tessera(&wallet, "pw", &["init"]).status.success(), "init twice must fail");
    ok(tessera(&wallet, "pw", &["trust", "--list", list_file.to_str().unwrap()]));
    assert!(ok(tessera(&wallet, "pw", &["list"])).contains("(nothing)"));

    let key = PublicKey::from_hex(ok(tessera(&wallet, "pw", &["new-key"])).trim()).unwrap();
    let note = NoteAttributes { amount: Amount::new("EUR", 500), expires_at: u64::MAX / 2 };
    let issued = bank.issue(Attributes::Note(note), key, 1_000, &mut rand::rngs::OsRng).unwrap();
    let file = dir.path().join("note.hex");
    std::fs::write(&file, hex::encode(issued.to_bytes())).unwrap();
    let out = ok(tessera(&wallet, "pw", &["import", file.to_str().unwrap()]));
    assert!(out.contains("note 5.00 EUR"), "{out}");
    assert!(!tessera(&wallet, "pw", &["import", file.to_str().unwrap()]).status.success(), "second import refused");

    assert!(ok(tessera(&wallet, "pw", &["balance"])).contains("available 5.00 EUR"));
    assert!(ok(tessera(&wallet, "pw", &["history"])).contains("issued by Bank"));
    let id = issued.id().to_hex();
    assert!(ok(tessera(&wallet, "pw", &["show", &id])).contains("valid for this wallet"));
    assert_eq!(ok(tessera(&wallet, "pw", &["export", &id])).trim(), hex::encode(issued.to_bytes()));

    let wrong = tessera(&wallet, "not the passphrase", &["list"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not open this wallet"));
}

#[test]
fn demo_tells_the_whole_story() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).arg("demo").output().expect("runs");
    let text = ok(out);
    // One line per step of the story: a skipped step fails here (and the
    // demo itself fails when an outcome is not what it says).
    for expected in [
        "registry on embedded SQLite at http://127.0.0.1:",
        "trust list v",
        "took 40.00 EUR as notes: 20.00 EUR + 20.00 EUR",
        "bought from the service provider: Ludi Romani, opening night — zone A, seat 13",
        "receipt over 127.0.0.1 in",
        "refuses to endorse it a second time",
        "note of 20.00 EUR endorsed, verified and receipted",
        "rejected, the issuer's signature does not verify",
        "rejected, the signature of link 1 does not verify",
        "15.00 EUR moved, change 5.00 EUR",
        "Carol's wallet, offline, verified it",
        "Bob syncs first",
        "equivocation proof",
        "that is the key Alice held seat 12 with: true",
        "anyone can check the proof offline: it verifies",
        "gave Bob, its registered holder, replacement",
        "the registry lists the replacement as refunded",
        "books balance",
        "Bob: Ludi Romani, opening night — zone A, seat 13; 20.00 EUR + 10.00 EUR + 5.00 EUR",
        "demo complete",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}
