//! `tessera-gate`: the gate app an operator runs at an entrance with a PC/SC
//! or PN532 reader. See `docs/gate.md`.

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use libp2p::Multiaddr;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tessera_core::presentation::{GatePolicy, Instruction, ReentryPolicy};
use tessera_core::{Clock, PublicKey, SystemClock};
use tessera_gate::mesh::{MeshConfig, MeshEvent, MeshHandle};
use tessera_gate::nfc::{NfcReader, libnfc_version, list_readers};
use tessera_gate::{Gate, screen, sync};
use tessera_registry::client::RegistryClient;

#[derive(Parser, Debug)]
#[command(name = "tessera-gate", version, about = "Tessera gate: offline ticket examination over NFC")]
struct Cli {
    /// The gate's directory (database and key file).
    #[arg(long, env = "TESSERA_GATE_DIR", default_value = "gate")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum InstructionArg {
    Enter,
    Punch,
    Dispense,
    Redeem,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReentryArg {
    Refuse,
    SameHolder,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates the gate: a key file, the gate key, the policy. Prints the
    /// gate's public key for the registry to certify.
    Init {
        /// The event (or coupon programme) this gate examines.
        #[arg(long)]
        event: String,
        /// A zone this gate admits to (repeat for several).
        #[arg(long = "zone", required = true)]
        zones: Vec<String>,
        /// What the gate does with a valid instrument.
        #[arg(long, value_enum, default_value = "enter")]
        instruction: InstructionArg,
        /// Whether a used ticket may come back in.
        #[arg(long, value_enum, default_value = "refuse")]
        reentry: ReentryArg,
    },
    /// Shows the offline policy (what the gate admits without the registry,
    /// DESIGN §2) as JSON, after setting what is given. A chain with more
    /// unreconciled hops, or a note worth more, is refused with
    /// `over-offline-limit`.
    OfflinePolicy {
        /// Most endorsements after the genesis or the registered certificate
        /// (0 admits only what the registry certified; at most 64, the
        /// longest chain the verifier reads).
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=tessera_core::verify::MAX_LINKS as u64))]
        max_hops: Option<u64>,
        /// Largest note admitted, in minor units of its currency (10000 is 100.00).
        #[arg(long)]
        max_note_value: Option<u64>,
    },
    /// Pins the registry's public key (64 hex digits).
    PinRegistry {
        /// The key.
        key: PublicKey,
    },
    /// Installs a trust list file signed by the pinned registry.
    InstallTrustList {
        /// The file.
        file: PathBuf,
    },
    /// Installs a deny list file signed by the pinned registry.
    InstallDenyList {
        /// The file.
        file: PathBuf,
    },
    /// Lists the readers libnfc can see.
    Readers,
    /// The reader loop: waits for phones and examines each one.
    Run {
        /// libnfc connstring: `pcsc:<reader name>`, `pn532_uart:/dev/ttyUSB0`,
        /// `acr122_usb:`; the first reader found when absent.
        #[arg(long)]
        connstring: Option<String>,
        /// Stop after this many taps.
        #[arg(long)]
        taps: Option<usize>,
        /// Give up when no phone comes within this many seconds.
        #[arg(long)]
        wait_secs: Option<u64>,
        /// Print one JSON line per tap after the screen.
        #[arg(long)]
        json: bool,
        /// In dispense mode, write each paper ticket here as a PDF.
        #[arg(long)]
        paper_dir: Option<PathBuf>,
        /// Join the venue's gate mesh, listening on this libp2p address
        /// (e.g. `/ip4/0.0.0.0/tcp/4101`).
        #[arg(long)]
        mesh_listen: Option<Multiaddr>,
        /// Another gate of the venue to dial (repeat for several).
        #[arg(long = "mesh-peer")]
        mesh_peers: Vec<Multiaddr>,
    },
    /// Packs the records not yet uploaded into a signed bag file for the
    /// registry (single-use bag number).
    PackBag {
        /// Where to write the bag.
        #[arg(long)]
        out: PathBuf,
        /// At most this many records.
        #[arg(long, default_value_t = 512)]
        max: usize,
    },
    /// Brings the trust list, deny list (incrementally) and event up to
    /// date from the registry. The registry key must be pinned.
    Sync {
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Packs the records not yet uploaded and uploads every bag the
    /// registry has not answered; `--file` sends one bag file as it is.
    Upload {
        #[command(flatten)]
        registry: RegistryArg,
        /// Send this bag file (from `pack-bag`) instead.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// The registry's settlement totals for this gate.
    Settlement {
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Lists the bags and what the registry answered.
    Bags {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Shows the latest records.
    Log {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Where the registry is, and how to print.
#[derive(clap::Args, Debug)]
struct RegistryArg {
    /// The registry's base URL, e.g. `http://registry.example:7700`.
    #[arg(long, env = "TESSERA_REGISTRY_URL")]
    registry: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn bag_json(u: &sync::BagUpload) -> serde_json::Value {
    match &u.answer {
        sync::BagAnswer::Settled(r) => serde_json::json!({
            "bag": u.number, "entries": u.entries, "settled": true,
            "admitted": r.admitted, "refused": r.refused, "replayed": r.replayed,
        }),
        sync::BagAnswer::Refused { status, code, message } => serde_json::json!({
            "bag": u.number, "entries": u.entries, "settled": false,
            "status": status, "reason": code, "message": message,
        }),
    }
}

fn bag_text(u: &sync::BagUpload) -> String {
    match &u.answer {
        sync::BagAnswer::Settled(r) => {
            let again = if r.replayed { " (uploaded before: the original settlement)" } else { "" };
            format!(
                "bag {} ({} records): settled — {} admitted, {} refused{again}",
                u.number, u.entries, r.admitted, r.refused
            )
        }
        sync::BagAnswer::Refused { status, code, message } => {
            format!("bag {} ({} records): REFUSED {status} {code} — {message}", u.number, u.entries)
        }
    }
}

/// Merges what the mesh brought, answers joining gates with a catch-up, and
/// shows conflicts. Failures are logged: the entrance keeps working.
fn serve_mesh(gate: &mut Gate, mesh: Option<&mut MeshHandle>, out: &mut impl std::io::Write) {
    let Some(mesh) = mesh else { return };
    while let Some(event) = mesh.try_event() {
        match event {
            MeshEvent::Listening(addr) => {
                let _ = writeln!(out, "mesh: listening on {addr}/p2p/{}", mesh.peer_id());
            }
            MeshEvent::PeerJoined(peer) => {
                tracing::info!(%peer, "gate joined the mesh");
                match gate.catch_up() {
                    Ok(envelopes) => envelopes.into_iter().for_each(|e| mesh.publish(e)),
                    Err(e) => tracing::error!(error = %e, "catch-up"),
                }
            }
            MeshEvent::PeerLeft(peer) => tracing::info!(%peer, "gate left the mesh"),
            MeshEvent::Envelope(bytes) => match gate.merge_envelope(&bytes, SystemClock.now()) {
                Ok(report) => {
                    for c in report.conflicts {
                        let _ = writeln!(
                            out,
                            "CONFLICT {:?}: instrument {} used {} of {} times, also at gate {} record {}",
                            c.kind,
                            c.instrument_id,
                            c.uses_consumed,
                            c.uses_allowed,
                            c.remote_gate.short(),
                            c.remote_record
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "mesh envelope refused"),
            },
        }
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TESSERA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Init { event, zones, instruction, reentry } => {
            let policy = GatePolicy {
                event_id: event,
                zones,
                instruction: match instruction {
                    InstructionArg::Enter => Instruction::Enter,
                    InstructionArg::Punch => Instruction::Punch,
                    InstructionArg::Dispense => Instruction::Dispense,
                    InstructionArg::Redeem => Instruction::Redeem,
                },
                reentry: match reentry {
                    ReentryArg::Refuse => ReentryPolicy::Refuse,
                    ReentryArg::SameHolder => ReentryPolicy::SameHolder,
                },
            };
            let key = Gate::init(&cli.dir, &policy)?;
            writeln!(out, "{key}")?;
        }
        Command::OfflinePolicy { max_hops, max_note_value } => {
            let mut gate = Gate::open(&cli.dir)?;
            let mut policy = gate.offline_policy();
            if let Some(hops) = max_hops {
                // Bounded by the parser to MAX_LINKS, so it fits.
                policy.max_unreconciled_hops = usize::try_from(hops).context("--max-hops")?;
            }
            if let Some(value) = max_note_value {
                policy.max_note_value = value;
            }
            if max_hops.is_some() || max_note_value.is_some() {
                gate.set_offline_policy(policy)?;
            }
            let v = serde_json::json!({
                "max_hops": policy.max_unreconciled_hops,
                "max_note_value": policy.max_note_value,
            });
            writeln!(out, "{v}")?;
        }
        Command::PinRegistry { key } => Gate::open(&cli.dir)?.pin_registry(key)?,
        Command::InstallTrustList { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut gate = Gate::open(&cli.dir)?;
            gate.install_trust_list(&bytes)?;
            let certified = gate
                .trust_list()
                .is_some_and(|t| t.certifies(&gate.public_key(), tessera_core::Role::Gate, SystemClock.now()));
            if !certified {
                writeln!(out, "warning: this trust list does not certify gate {}", gate.public_key())?;
            }
        }
        Command::InstallDenyList { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            Gate::open(&cli.dir)?.install_deny_list(&bytes)?;
        }
        Command::Readers => {
            writeln!(out, "libnfc {}", libnfc_version())?;
            for r in list_readers()? {
                writeln!(out, "{r}")?;
            }
        }
        Command::Run { connstring, taps, wait_secs, json, paper_dir, mesh_listen, mesh_peers } => {
            let mut gate = Gate::open(&cli.dir)?;
            if gate.trust_list().is_none() {
                bail!("no trust list installed: run `tessera-gate install-trust-list` first");
            }
            let mut reader = NfcReader::open_when_ready(connstring.as_deref()).context("opening the NFC reader")?;
            tracing::info!(reader = %reader.name(), connstring = %reader.connstring(), "reader ready");
            let p = gate.policy();
            writeln!(
                out,
                "gate {} — event {}, zones {}, {}",
                gate.public_key().short(),
                p.event_id,
                p.zones.join(","),
                p.instruction.as_str()
            )?;
            // The mesh runs on a small runtime of its own; the reader loop
            // stays blocking and serves mesh events between polls.
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
            let _entered = runtime.enter();
            let mut mesh = match mesh_listen {
                Some(listen) => Some(MeshHandle::start(MeshConfig {
                    listen,
                    peers: mesh_peers,
                    topic: MeshConfig::topic_for(&gate.policy().event_id),
                    gossip: tessera_gate::mesh::GossipTuning::venue(),
                })?),
                None => None,
            };
            let mut done = 0usize;
            while taps.is_none_or(|n| done < n) {
                let deadline = wait_secs.map(|s| Instant::now() + Duration::from_secs(s));
                if !reader.wait_for_card(deadline, &mut || serve_mesh(&mut gate, mesh.as_mut(), &mut out)) {
                    bail!("no phone presented within {} s", wait_secs.unwrap_or(0));
                }
                let started = Instant::now();
                let report = gate.tap(&mut reader, SystemClock.now())?;
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "tap");
                writeln!(out, "{}", screen::render(&report))?;
                if json {
                    writeln!(out, "{}", screen::json(&report))?;
                }
                if let (Some(dir), tessera_gate::Decision::Decided(e)) = (&paper_dir, &report.decision)
                    && e.instruction == tessera_core::presentation::Instruction::Dispense
                    && report.admitted()
                {
                    let pdf = tessera_gate::paper::ticket_pdf(&e.guidance, &e.certificate)?;
                    let path = dir.join(format!("ticket-{}.pdf", e.certificate.body.record));
                    std::fs::create_dir_all(dir)?;
                    std::fs::write(&path, pdf)?;
                    writeln!(out, "  paper ticket: {}", path.display())?;
                }
                if let (Some(mesh), Some(envelope)) = (mesh.as_ref(), report.used_event.clone()) {
                    mesh.publish(envelope);
                }
                out.flush()?;
                done += 1;
                if taps.is_none_or(|n| done < n) {
                    reader.wait_for_removal(Duration::from_secs(10));
                }
            }
        }
        Command::PackBag { out: path, max } => match Gate::open(&cli.dir)?.pack_bag(max, SystemClock.now())? {
            Some(bag) => {
                std::fs::write(&path, tessera_core::Wire::to_bytes(&bag))?;
                writeln!(
                    out,
                    "bag {} with {} records → {}",
                    bag.body.bag_number,
                    bag.body.entries.len(),
                    path.display()
                )?;
            }
            None => writeln!(out, "nothing to pack")?,
        },
        Command::Sync { registry } => {
            let mut gate = Gate::open(&cli.dir)?;
            let r = sync::sync(&mut gate, &RegistryClient::new(&registry.registry), SystemClock.now())?;
            if registry.json {
                let v = serde_json::json!({
                    "trust_version": r.trust_version.1,
                    "trust_version_before": r.trust_version.0,
                    "deny_version": r.deny_version.1,
                    "deny_version_before": r.deny_version.0,
                    "newly_denied": r.newly_denied.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
                    "event": r.event.as_ref().map(|e| &e.event_id),
                    "warnings": r.warnings,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "trust list v{} (was {:?}), deny list v{} (was v{}, {} newly denied)",
                    r.trust_version.1,
                    r.trust_version.0,
                    r.deny_version.1,
                    r.deny_version.0,
                    r.newly_denied.len()
                )?;
                if let Some(e) = &r.event {
                    writeln!(out, "event {} — {} — zones {}", e.event_id, e.title, e.zones.join(", "))?;
                }
                for w in &r.warnings {
                    writeln!(out, "warning: {w}")?;
                }
            }
        }
        Command::Upload { registry, file } => {
            let mut gate = Gate::open(&cli.dir)?;
            let client = RegistryClient::new(&registry.registry);
            let uploads = match file {
                Some(path) => {
                    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                    vec![sync::upload_file(&mut gate, &client, &bytes, SystemClock.now())?]
                }
                None => {
                    while gate.pack_bag(tessera_core::presentation::MAX_BAG_ENTRIES, SystemClock.now())?.is_some() {}
                    sync::upload_packed(&mut gate, &client, SystemClock.now())?
                }
            };
            for u in &uploads {
                if registry.json {
                    writeln!(out, "{}", bag_json(u))?;
                } else {
                    writeln!(out, "{}", bag_text(u))?;
                }
            }
            if uploads.is_empty() && !registry.json {
                writeln!(out, "nothing to upload")?;
            }
        }
        Command::Settlement { registry } => {
            let gate = Gate::open(&cli.dir)?;
            let r = sync::settlement(&gate, &RegistryClient::new(&registry.registry))?;
            if registry.json {
                let v =
                    serde_json::json!({"gate": r.gate, "bags": r.bags, "admitted": r.admitted, "refused": r.refused});
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "gate {}: {} bags settled, {} admitted, {} refused",
                    r.gate, r.bags, r.admitted, r.refused
                )?;
            }
        }
        Command::Bags { limit } => {
            for b in Gate::open(&cli.dir)?.store().bags(limit)? {
                writeln!(
                    out,
                    "bag {:<5} {:>4} records  {:<8} {}",
                    b.number,
                    b.entries,
                    b.state,
                    b.reason.unwrap_or_default()
                )?;
            }
        }
        Command::Log { limit } => {
            for r in Gate::open(&cli.dir)?.store().records(limit)? {
                writeln!(
                    out,
                    "#{:<5} {} {} {:<8} {:<20} {} uses-left {} counter {}",
                    r.seq,
                    r.time,
                    r.instrument_id,
                    r.outcome,
                    r.reason.unwrap_or_default(),
                    r.instruction,
                    r.uses_left,
                    r.counter
                )?;
            }
        }
    }
    Ok(())
}
