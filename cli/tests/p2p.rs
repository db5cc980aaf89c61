//! Two `tessera` processes on 127.0.0.1, the way two people with two
//! terminals use them: `tessera listen` in one answers its prompt, `tessera
//! offer … --to <tessera: URI>` in the other follows the exchange; then
//! both wallets are checked with `list`, `balance` and `pending`. And the
//! same through a `tessera relay` process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::{
    Amount, Attributes, LocalSigner, NoteAttributes, PublicKey, Role, TicketAttributes, TrustEntry, Wire,
};

const LOOPBACK_TCP: &str = "/ip4/127.0.0.1/tcp/0";
const LOOPBACK_QUIC: &str = "/ip4/127.0.0.1/udp/0/quic-v1";
/// Generous: debug builds on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(90);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A wallet file opened with a key file (no Argon2 run per command).
struct Person {
    wallet: PathBuf,
    key: PathBuf,
}

impl Person {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.arg("--wallet").arg(&self.wallet).arg("--key-file").arg(&self.key).args(args);
        c.env_remove("TESSERA_PASSPHRASE").env_remove("TESSERA_KEY_FILE").env_remove("TESSERA_WALLET");
        c
    }

    fn run(&self, args: &[&str]) -> String {
        ok(self.command(args).output().expect("runs tessera"))
    }
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The service provider, the theatre and the bank, and wallets trusting them.
struct World {
    dir: tempfile::TempDir,
    theatre: Issuer<LocalSigner>,
    bank: Issuer<LocalSigner>,
    trust_file: PathBuf,
    registry: PublicKey,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sp = RegistryAuthority::new(LocalSigner::from_seed(&[1; 32]));
        let theatre = Issuer::new(LocalSigner::from_seed(&[2; 32]));
        let bank = Issuer::new(LocalSigner::from_seed(&[3; 32]));
        let entry =
            |key, name: &str| TrustEntry { key, role: Role::Issuer, name: name.into(), not_after: now() + 86_400 };
        let list = sp
            .trust_list(1, vec![entry(theatre.public_key(), "Theatre"), entry(bank.public_key(), "Bank")], now())
            .unwrap();
        let trust_file = dir.path().join("trust.bin");
        std::fs::write(&trust_file, list.to_bytes()).unwrap();
        Self { dir, theatre, bank, trust_file, registry: sp.public_key() }
    }

    fn person(&self, name: &str) -> Person {
        let person = Person {
            wallet: self.dir.path().join(format!("{name}.db")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        person.run(&["init", "--registry", &self.registry.to_hex()]);
        person.run(&["trust", "--list", self.trust_file.to_str().unwrap()]);
        person
    }

    /// Issues to a fresh holder key of `person` and imports it with the CLI; the id in hex.
    fn give(&self, person: &Person, issuer: &Issuer<LocalSigner>, attributes: Attributes) -> String {
        let key = PublicKey::from_hex(person.run(&["new-key"]).trim()).unwrap();
        let issued = issuer.issue(attributes, key, now(), &mut rand::rngs::OsRng).unwrap();
        let file = self.dir.path().join(format!("{}.hex", issued.id().to_hex()));
        std::fs::write(&file, hex::encode(issued.to_bytes())).unwrap();
        person.run(&["import", file.to_str().unwrap()]);
        issued.id().to_hex()
    }

    fn ticket(&self, person: &Person, seat: &str) -> String {
        let attributes = Attributes::Ticket(TicketAttributes {
            event_id: "ludi".into(),
            title: "Ludi Romani".into(),
            zone: "A".into(),
            seat: Some(seat.into()),
            guidance: None,
            valid_from: now() - 3600,
            valid_until: now() + 86_400,
            transferable: true,
            uses: 1,
            face_price: None,
        });
        self.give(person, &self.theatre, attributes)
    }

    fn note(&self, person: &Person, minor: u64) -> String {
        let note = NoteAttributes { amount: Amount::new("EUR", minor), expires_at: now() + 86_400 };
        self.give(person, &self.bank, Attributes::Note(note))
    }
}

/// A running `tessera` process whose standard output is collected as it comes.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts tessera");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, stdin, output }
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until `needle` was printed `times` times.
    fn wait_for(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if text.matches(needle).count() >= times {
                return text;
            }
            assert!(Instant::now() < deadline, "no {needle:?} (×{times}) in\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types a line at the process's prompt.
    fn answer(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the exit; its status and everything it printed.
    fn finish(mut self) -> (bool, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(100));
                return (status.success(), self.text());
            }
            assert!(Instant::now() < deadline, "did not exit:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The rest of the line after `prefix` once it was printed.
    fn value_after(&self, prefix: &str) -> String {
        let text = self.wait_for(prefix, 1);
        let start = text.find(prefix).unwrap() + prefix.len();
        text[start..].lines().next().unwrap().trim().to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn offer(sender: &Person, id: &str, to: &str, price: Option<&str>) -> Running {
    let mut args = vec!["offer", id, "--to", to, "--no-mdns", "--listen", LOOPBACK_TCP, "--ttl", "120"];
    if let Some(price) = price {
        args.extend(["--price", price]);
    }
    Running::start(sender.command(&args))
}

fn listed(person: &Person, args: &[&str], id: &str) -> Option<String> {
    person.run(args).lines().find(|l| l.starts_with(id)).map(str::to_string)
}

#[test]
fn two_processes_decline_gift_and_sale_with_change() {
    let world = World::new();
    let alice = world.person("alice");
    let bob = world.person("bob");
    let seat12 = world.ticket(&alice, "12");
    let seat13 = world.ticket(&alice, "13");
    // Alice keeps a 5.00 note to give change with; Bob pays 25.00 with 20 + 10.
    world.note(&alice, 500);
    world.note(&bob, 2_000);
    world.note(&bob, 1_000);

    let mut listener = Running::start(bob.command(&[
        "listen",
        "--no-mdns",
        "--listen",
        LOOPBACK_QUIC,
        "--listen",
        LOOPBACK_TCP,
        "--count",
        "2",
    ]));
    let uri = listener.value_after("listening as ");
    assert!(uri.starts_with("tessera:12D3KooW") && uri.contains("127.0.0.1"), "{uri}");

    // 1. Bob says no: nothing moves.
    let declined = offer(&alice, &seat12, &uri, None);
    let text = listener.wait_for("accept? [y/N] ", 1);
    assert!(text.contains("Ludi Romani — zone A, seat 12") && text.contains("a gift"), "{text}");
    listener.answer("n");
    let (success, out) = declined.finish();
    assert!(!success, "a declined offer is a failure for the sender: {out}");
    listener.wait_for("declined: nothing moved", 1);
    assert!(listed(&alice, &["list"], &seat12).unwrap().contains("held"));

    // 2. A gift.
    let gift = offer(&alice, &seat12, &uri, None);
    listener.wait_for("accept? [y/N] ", 2);
    listener.answer("y");
    let (success, out) = gift.finish();
    assert!(success, "{out}");
    assert!(out.contains("accepted: transfer certificate sent") && out.contains("done: receipt in"), "{out}");
    assert!(out.contains("gave") && out.contains("seat 12"), "{out}");

    // 3. A sale for 25.00 EUR, paid 30.00 with 5.00 change.
    let sale = offer(&alice, &seat13, &uri, Some("25.00 EUR"));
    let text = listener.wait_for("accept? [y/N] ", 3);
    assert!(text.contains("price  25.00 EUR"), "{text}");
    listener.answer("y");
    let (success, out) = sale.finish();
    assert!(success, "{out}");
    assert!(out.contains("received note 20.00 EUR") && out.contains("received note 10.00 EUR"), "{out}");
    assert!(out.contains("gave     note 5.00 EUR"), "the change went back: {out}");
    let (success, heard) = listener.finish();
    assert!(success, "the listener stops after --count 2 exchanges: {heard}");
    assert!(heard.contains("received Ludi Romani — zone A, seat 13"), "{heard}");
    assert!(heard.contains("received note 5.00 EUR"), "change arrived: {heard}");
    assert!(heard.contains("balance  5.00 EUR"), "{heard}");

    // Both wallets, as the CLI shows them afterwards.
    for seat in [&seat12, &seat13] {
        assert!(listed(&bob, &["list"], seat).unwrap().contains("held"), "Bob holds {seat}");
        assert!(listed(&alice, &["list"], seat).is_none(), "Alice no longer lists {seat}");
        assert!(listed(&alice, &["list", "--all"], seat).unwrap().contains("gone"));
    }
    assert!(alice.run(&["balance"]).contains("EUR  available 30.00 EUR  pending out 0.00 EUR"));
    assert!(bob.run(&["balance"]).contains("EUR  available 5.00 EUR  pending out 0.00 EUR"));
    for person in [&alice, &bob] {
        let pending = person.run(&["pending"]);
        assert!(!pending.lines().any(|l| l.starts_with('*')), "nothing left in progress:\n{pending}");
        assert_eq!(pending.matches("completed").count(), 2, "{pending}");
        assert_eq!(pending.matches("declined").count(), 1, "{pending}");
    }
}

#[test]
fn gift_through_a_relay_process() {
    let world = World::new();
    let alice = world.person("alice");
    let bob = world.person("bob");
    let seat = world.ticket(&alice, "7");

    let relay = Running::start({
        let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.args(["relay", "--listen", LOOPBACK_TCP]);
        c
    });
    let relay_address = relay.value_after("relay at ");
    let listener = Running::start(bob.command(&[
        "listen",
        "--no-mdns",
        "--relay",
        &relay_address,
        "--relay-only",
        "--yes",
        "--count",
        "1",
    ]));
    let uri = listener.value_after("listening as ");
    assert!(uri.contains("/p2p-circuit") && !uri.contains("/tcp/0"), "only a relayed address: {uri}");

    let (success, out) = offer(&alice, &seat, &uri, None).finish();
    assert!(success, "{out}");
    assert!(out.contains("through a relay") && out.contains("done: receipt in"), "{out}");
    let (success, heard) = listener.finish();
    assert!(success && heard.contains("accepting (--yes)"), "{heard}");
    assert!(listed(&bob, &["list"], &seat).unwrap().contains("held"));
    assert!(listed(&alice, &["list", "--all"], &seat).unwrap().contains("gone"));
    drop(relay);
}
