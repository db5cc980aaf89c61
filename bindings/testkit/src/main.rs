//! `tessera-ffi-testkit`: the issuer and registry side of the bindings' JVM
//! suite, until the suite can talk to a real `tessera-registry` process.
//!
//! It keeps a registry key and an issuer key in a directory (random seeds
//! made by `init`) and prints what they sign as hex on stdout, so the Kotlin
//! tests get real, verifiable instruments from a separate process, the way
//! a phone gets them from the service provider.
//!
//! ```text
//! tessera-ffi-testkit init         DIR                              → registry key
//! tessera-ffi-testkit trust-list   DIR VERSION                      → signed trust list
//! tessera-ffi-testkit issue-ticket DIR HOLDER EVENT_ID TITLE        → instrument
//! tessera-ffi-testkit issue-note   DIR HOLDER CURRENCY MINOR        → instrument
//! tessera-ffi-testkit forge-ticket DIR HOLDER                       → instrument by an
//!                                                                     uncertified issuer
//! ```

use anyhow::{Context as _, bail};
use rand::RngCore;
use rand::rngs::OsRng;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::instrument::{Amount, Attributes, NoteAttributes, TicketAttributes};
use tessera_core::{LocalSigner, PublicKey, Role, Signer as _, Timestamp, TrustEntry, Wire as _};

const YEAR: u64 = 365 * 24 * 3600;

fn now() -> anyhow::Result<Timestamp> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?.as_secs())
}

fn seed_path(dir: &Path, who: &str) -> PathBuf {
    dir.join(format!("{who}.seed"))
}

fn load(dir: &Path, who: &str) -> anyhow::Result<LocalSigner> {
    let path = seed_path(dir, who);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).with_context(|| format!("{} is not 64 hex digits", path.display()))?;
    Ok(LocalSigner::from_seed(&seed))
}

fn init(dir: &Path) -> anyhow::Result<PublicKey> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for who in ["registry", "issuer"] {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        std::fs::write(seed_path(dir, who), hex::encode(seed))?;
    }
    Ok(load(dir, "registry")?.public_key())
}

fn holder(arg: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_hex(arg).map_err(|e| anyhow::anyhow!("holder key: {e}"))
}

fn ticket(event_id: &str, title: &str, now: Timestamp) -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: event_id.into(),
        title: title.into(),
        zone: "A".into(),
        seat: None,
        guidance: None,
        valid_from: now.saturating_sub(3600),
        valid_until: now + YEAR,
        transferable: true,
        uses: 1,
        face_price: Some(Amount::new("EUR", 2_500)),
    })
}

fn run(args: &[String]) -> anyhow::Result<Vec<u8>> {
    let arg = |i: usize| args.get(i).map(String::as_str).context("missing argument (see the module docs)");
    let dir = Path::new(arg(1)?);
    let now = now()?;
    match arg(0)? {
        "init" => Ok(init(dir)?.0.to_vec()),
        "trust-list" => {
            let version: u64 = arg(2)?.parse().context("version")?;
            let registry = RegistryAuthority::new(load(dir, "registry")?);
            let issuer = load(dir, "issuer")?.public_key();
            let entry =
                TrustEntry { key: issuer, role: Role::Issuer, name: "Testkit Arena".into(), not_after: now + YEAR };
            Ok(registry.trust_list(version, vec![entry], now)?.to_bytes())
        }
        "issue-ticket" => {
            let issuer = Issuer::new(load(dir, "issuer")?);
            Ok(issuer.issue(ticket(arg(3)?, arg(4)?, now), holder(arg(2)?)?, now, &mut OsRng)?.to_bytes())
        }
        "issue-note" => {
            let issuer = Issuer::new(load(dir, "issuer")?);
            let minor: u64 = arg(4)?.parse().context("minor units")?;
            let note = Attributes::Note(NoteAttributes { amount: Amount::new(arg(3)?, minor), expires_at: now + YEAR });
            Ok(issuer.issue(note, holder(arg(2)?)?, now, &mut OsRng)?.to_bytes())
        }
        "forge-ticket" => {
            // A well-formed, properly signed ticket from a key the registry
            // never certified: what a forger can make.
            let forger = Issuer::new(LocalSigner::generate(&mut OsRng));
            Ok(forger.issue(ticket("forged", "Forged", now), holder(arg(2)?)?, now, &mut OsRng)?.to_bytes())
        }
        other => bail!("unknown command {other:?} (see the module docs)"),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bytes = run(&args)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", hex::encode(bytes))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tessera_core::instrument::Instrument;
    use tessera_core::trust::{TrustList, TrustListBody};
    use tessera_core::{Signed, Verifier};

    fn cmd(args: &[&str]) -> anyhow::Result<Vec<u8>> {
        run(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn issued_instruments_verify_and_forged_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let registry = PublicKey::from_slice(&cmd(&["init", d]).unwrap()).unwrap();
        let list = Signed::<TrustListBody>::from_bytes(&cmd(&["trust-list", d, "1"]).unwrap()).unwrap();
        let trust = TrustList::verify(list, &registry).unwrap();
        let deny = tessera_core::DenyList::empty();
        let verifier = Verifier::new(&trust, &deny);
        let holder = LocalSigner::generate(&mut OsRng).public_key().to_hex();
        let now = now().unwrap();
        for args in [["issue-ticket", d, &holder, "e1", "Show"], ["issue-note", d, &holder, "EUR", "500"]] {
            let instrument = Instrument::from_bytes(&cmd(&args).unwrap()).unwrap();
            verifier.verify(&instrument, now).expect("issued instruments verify");
        }
        let forged = Instrument::from_bytes(&cmd(&["forge-ticket", d, &holder]).unwrap()).unwrap();
        assert!(verifier.verify(&forged, now).is_err());
        assert!(cmd(&["issue-note", d, "not-hex", "EUR", "500"]).is_err());
        assert!(cmd(&["nonsense", d]).is_err());
    }
}
