//! `tessera-ffi-testkit`: the operator's and the gate's side of the
//! bindings' JVM suite, against a real `tessera-registry serve` process.
//!
//! ```text
//! tessera-ffi-testkit setup    URL KEY_FILE GATE_DIR EVENT_ID  → gate key (hex)
//!     as the registry operator (KEY_FILE is the registry's key file):
//!     creates a gate in GATE_DIR, certifies its key as a gate, creates
//!     EVENT_ID (zone A, 25.00 EUR, transferable, one use)
//! tessera-ffi-testkit gate-tap URL GATE_DIR                     → APDU dialogue
//!     the real gate engine (tessera-gate): pins the registry, installs its
//!     trust and deny lists, then runs one tap whose APDUs travel over
//!     stdio: it prints `C <command hex>`, reads one line with the response
//!     hex, …, and ends with `RESULT <reason> <instrument id or ->`
//! tessera-ffi-testkit forge-ticket HOLDER                       → instrument (hex)
//!     a well-formed, signed ticket from a key no registry certified
//! ```

use anyhow::{Context as _, bail};
use rand::rngs::OsRng;
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_core::authority::Issuer;
use tessera_core::instrument::{Amount, Attributes, TicketAttributes};
use tessera_core::presentation::{GatePolicy, Instruction, ReentryPolicy};
use tessera_core::{LocalSigner, PublicKey, Timestamp, Wire as _};
use tessera_gate::{Decision, Gate, Transceiver};
use tessera_registry::client::RegistryClient;
use tessera_registry::wire;

const YEAR: u64 = 365 * 24 * 3600;
/// The zone every test event has.
const ZONE: &str = "A";
/// The price of every test event's tickets, in euro cents.
const PRICE: u64 = 2_500;
/// Longest response line the gate reads from the suite.
const MAX_LINE: usize = 4 * 1024;

fn now() -> anyhow::Result<Timestamp> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?.as_secs())
}

fn setup(url: &str, key_file: &Path, gate_dir: &Path, event_id: &str) -> anyhow::Result<String> {
    let now = now()?;
    let (operator, _issuer) = tessera_registry::embedded::load_keys(key_file)?;
    let policy = GatePolicy {
        event_id: event_id.into(),
        zones: vec![ZONE.into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    };
    let gate_key = Gate::init(gate_dir, &policy)?;
    let client = RegistryClient::new(url);
    let _: wire::PartyResponse = client.post(
        "/admin/parties",
        &operator,
        &wire::PartyRequest {
            key: gate_key.to_hex(),
            role: "gate".into(),
            name: "Testkit Gate A".into(),
            not_after: now + YEAR,
        },
    )?;
    let event = wire::EventJson {
        event_id: event_id.into(),
        title: format!("Concert {event_id}"),
        zones: vec![ZONE.into()],
        valid_from: now.saturating_sub(3600),
        valid_until: now + YEAR,
        price: wire::AmountJson { currency: "EUR".into(), minor: PRICE },
        transferable: true,
        uses: 1,
    };
    let _: serde_json::Value = client.post("/events", &operator, &event)?;
    Ok(gate_key.to_hex())
}

/// The gate's NFC field, as lines on stdio: the suite forwards each command
/// to the wallet's `process_apdu` and writes the answer back.
struct StdioField {
    lines: std::io::StdinLock<'static>,
}

impl Transceiver for StdioField {
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "C {}", hex::encode(command)).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        let read = (&mut self.lines).take(MAX_LINE as u64).read_line(&mut line).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the field closed (end of input)".into());
        }
        hex::decode(line.trim()).map_err(|e| format!("response is not hex: {e}"))
    }
}

fn gate_tap(url: &str, gate_dir: &Path) -> anyhow::Result<String> {
    let now = now()?;
    let mut gate = Gate::open(gate_dir)?;
    // What a gate does before the doors open: pin the registry, take its
    // trust and deny lists; from here on it decides offline.
    let client = RegistryClient::new(url);
    let key = PublicKey::from_hex(&client.info()?.registry_key).map_err(|e| anyhow::anyhow!("registry key: {e}"))?;
    gate.pin_registry(key)?;
    gate.install_trust_list(&client.get_bytes("/trust-list")?)?;
    gate.install_deny_list(&client.get_bytes("/deny-list")?)?;
    let mut field = StdioField { lines: std::io::stdin().lock() };
    let report = gate.tap(&mut field, now)?;
    let instrument = match &report.decision {
        Decision::Decided(e) => e.instrument_id.to_hex(),
        _ => "-".into(),
    };
    Ok(format!("RESULT {} {instrument}", report.reason()))
}

fn forge_ticket(holder: &str) -> anyhow::Result<String> {
    let now = now()?;
    let holder = PublicKey::from_hex(holder).map_err(|e| anyhow::anyhow!("holder key: {e}"))?;
    let forger = Issuer::new(LocalSigner::generate(&mut OsRng));
    let ticket = Attributes::Ticket(TicketAttributes {
        event_id: "forged".into(),
        title: "Forged".into(),
        zone: ZONE.into(),
        seat: None,
        guidance: None,
        valid_from: now.saturating_sub(3600),
        valid_until: now + YEAR,
        transferable: true,
        uses: 1,
        face_price: Some(Amount::new("EUR", PRICE)),
    });
    Ok(hex::encode(forger.issue(ticket, holder, now, &mut OsRng)?.to_bytes()))
}

fn run(args: &[String]) -> anyhow::Result<String> {
    let arg = |i: usize| args.get(i).map(String::as_str).context("missing argument (see the module docs)");
    match arg(0)? {
        "setup" => setup(arg(1)?, Path::new(arg(2)?), Path::new(arg(3)?), arg(4)?),
        "gate-tap" => gate_tap(arg(1)?, Path::new(arg(2)?)),
        "forge-ticket" => forge_ticket(arg(1)?),
        other => bail!("unknown command {other:?} (see the module docs)"),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = run(&args)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tessera_core::Signer as _;
    use tessera_core::instrument::Instrument;

    #[test]
    fn forged_tickets_decode_and_bad_arguments_fail() {
        let holder = LocalSigner::generate(&mut OsRng).public_key().to_hex();
        let forged = hex::decode(run(&["forge-ticket".into(), holder]).unwrap()).unwrap();
        assert!(Instrument::from_bytes(&forged).unwrap().attributes().label().contains("Forged"));
        assert!(run(&["forge-ticket".into(), "not-hex".into()]).is_err());
        assert!(run(&["nonsense".into()]).is_err());
        assert!(run(&[]).is_err());
    }
}
