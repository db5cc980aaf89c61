//! The operator's `tessera-registry certify` and `parties` commands against
//! a `tessera-registry serve` process on SQLite (loopback): a certified key
//! appears in the signed trust list; a bad role, a bad key or the wrong key
//! file is refused with the registry's typed error and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{registry, serve};
use tessera_core::{LocalSigner, Role, Signer, TrustList, Wire};
use tessera_registry::client::RegistryClient;

fn certify(url: &str, key_file: &std::path::Path, role: &str, key: &str) -> std::process::Output {
    registry()
        .args(["certify", "--url", url, "--role", role, "--key", key, "--name", "North 1", "--key-file"])
        .arg(key_file)
        .env("TESSERA_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn operator_certifies_parties_that_appear_in_the_trust_list() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("registry.key");
    std::fs::write(&key_file, hex::encode([12u8; 32])).unwrap();
    let database = format!("sqlite:{}", dir.path().join("registry.db").display());
    let (_server, url) = serve(&database, &key_file);
    let client = RegistryClient::new(&url);
    let trust = || {
        let info = client.info().unwrap();
        let key = tessera_core::PublicKey::from_hex(&info.registry_key).unwrap();
        TrustList::verify(tessera_core::Signed::from_bytes(&client.get_bytes("/trust-list").unwrap()).unwrap(), &key)
            .unwrap()
    };

    let gate = LocalSigner::from_seed(&[13; 32]).public_key();
    let out = certify(&url, &key_file, "gate", &gate.to_hex());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = trust();
    assert_eq!(list.role_of(&gate), Some(Role::Gate));
    assert!(list.entries().iter().any(|e| e.key == gate && e.name == "North 1"));

    let parties = registry().args(["parties", "--url", &url]).output().unwrap();
    assert!(parties.status.success());
    let text = String::from_utf8_lossy(&parties.stdout);
    assert!(text.contains(&gate.to_hex()) && text.contains("gate"), "{text}");

    // Refusals carry the registry's typed error and change nothing.
    let version = list.version();
    let refused = |out: std::process::Output, code: &str| {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(code), "{stderr}");
    };
    refused(certify(&url, &key_file, "janitor", &gate.to_hex()), "bad_role");
    refused(certify(&url, &key_file, "issuer", "zz"), "bad_key");
    let stranger = dir.path().join("stranger.key");
    std::fs::write(&stranger, hex::encode([14u8; 32])).unwrap();
    refused(certify(&url, &stranger, "issuer", &gate.to_hex()), "not_operator");
    refused(certify(&url, &dir.path().join("missing.key"), "issuer", &gate.to_hex()), "does not exist");
    assert!(!dir.path().join("missing.key").exists(), "certify never creates a key file");
    assert_eq!(trust().version(), version, "refusals change nothing");
    assert_eq!(trust().role_of(&gate), Some(Role::Gate));
}
