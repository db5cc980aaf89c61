//! The offline event (issue 7, item 6): gates of one venue admit an event's
//! ticket holders with the registry unreachable the whole time, their mesh
//! splits and heals, some holders cheat; afterwards every gate's records are
//! reconciled with the registry. Shared by the `offline_event` example (the
//! full run) and `gate/tests/offline_event.rs` (a CI-sized run).
//!
//! Real parts: each gate is a [`Gate`] (its SQLite file, its key, the core
//! decision, its used set, mesh merging and catch-up semantics, bags); each
//! honest holder is a [`Wallet`] on SQLite behind a [`WalletCard`] speaking
//! the APDU protocol; the registry is [`Registry`] on an SQLite file, called
//! in process (the HTTP layer adds nothing to what is measured). Modelled:
//! the mesh transport (an envelope reaches every gate of the sender's
//! connected part at once; libp2p's own delivery is measured in
//! `gate/benches/mesh.rs`, p99 14 ms across 10 gates, well under the time
//! between two taps), intermediate holders of resold tickets (bare keys
//! signing endorsements, as a wallet does), and cheaters (a modified wallet:
//! a copied key and chain answering gates itself, [`CopyCard`]).
//!
//! ```text
//!  day before: issue ─▶ honest resales (1–3 hops) ─▶ cheats set up
//!  event (registry unreachable):  arrivals in time order ─▶ Gate::tap
//!        admitted ─▶ used event ─▶ every gate of the same part merges it
//!        partition ──▶ parts admit independently ──▶ heal: catch-up
//!  after: every gate packs bags ─▶ Registry::upload_bag
//!         every record's chain + certificate ─▶ Registry::reconcile
//!         presentations vs registered links ─▶ UsedAfterTransferProof
//! ```

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tessera_core::apdu::{CardApplication, CardChannel, INS_CONFIRM, INS_PRESENT, StatusWord, TESSERA_AID};
use tessera_core::authority::Issuer;
use tessera_core::presentation::mesh::ConflictKind;
use tessera_core::presentation::on_air::PresentationOnAir;
use tessera_core::presentation::{
    ChallengeBody, GatePolicy, HELLO, Instruction, MAX_BAG_ENTRIES, OfflinePolicy, Outcome, Presentation,
    PresentationBody, ReentryPolicy, Refusal, WalletCard,
};
use tessera_core::proof::UsedAfterTransferProof;
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::SqliteStore;
use tessera_core::{
    Amount, Attributes, Endorsement, ExchangeId, Instrument, InstrumentId, LocalSigner, ManualClock, PublicKey, Signed,
    Signer, TicketAttributes, Timestamp, Wallet, Wire,
};
use tessera_gate::{Decision, Gate, Transceiver};
use tessera_registry::payment::TestPaymentProvider;
use tessera_registry::store::InstrumentRow;
use tessera_registry::{Registry, SqliteRegistry, wire};

/// Doors open.
pub const T0: Timestamp = 1_800_000_000;
/// Resales and cheats happen the day before.
const T_SALE: Timestamp = T0 - 86_400;
/// Arrivals spread over two hours.
const WINDOW: u64 = 7_200;
/// Reconciliation, after the event.
const T_RECONCILE: Timestamp = T0 + 4 * 3_600;
/// What one ticket costs: the value an extra entry takes.
pub const FACE_PRICE: u64 = 4_500;
const EVENT: &str = "final-2026";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tickets; each honest holder enters once.
    pub entries: usize,
    /// Gates on the mesh.
    pub gates: usize,
    /// Tickets per phone (a party arriving together).
    pub party: usize,
    /// Per mille of tickets resold honestly 1–3 times before the event.
    pub resold: u32,
    /// Per mille of tickets passed through more hands than the policy allows.
    pub over_limit: u32,
    /// Per mille of tickets whose holder's phone is cloned: the same ticket
    /// presented at two gates.
    pub cloned: u32,
    /// Per mille of tickets a cheater endorses to two people.
    pub double_transferred: u32,
    /// Per mille of tickets a cheater sells, then presents its stale copy.
    pub stale: u32,
    /// Per mille of those cheats whose two presentations are placed while
    /// the mesh is split in halves, at gates on opposite sides (the others
    /// fall anywhere in the event, as for a cheater who cannot see the mesh).
    pub split_cheats: u32,
    /// The gates' offline policy.
    pub policy: OfflinePolicy,
    /// Seed of every random choice (keys are derived from it too).
    pub seed: u64,
    /// Where the SQLite files go (a tmpfs keeps fsync out of the figures).
    pub dir: PathBuf,
}

impl Config {
    /// The issue's event: 10 gates, 50,000 entries, 1 % of tickets in each
    /// kind of cheat.
    pub fn event(entries: usize, dir: PathBuf) -> Self {
        Self {
            entries,
            gates: 10,
            party: 4,
            resold: 100,
            over_limit: 1,
            cloned: 10,
            double_transferred: 10,
            stale: 10,
            split_cheats: 0,
            policy: OfflinePolicy::DEFAULT,
            seed: 2026,
            dir,
        }
    }
}

/// What happened, for the table and the assertions.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Taps made.
    pub taps: usize,
    /// Admissions.
    pub admitted: usize,
    /// Admissions of a ticket already admitted at a gate whose used event
    /// had reached the admitting gate (target 0).
    pub double_entries_connected: usize,
    /// Admissions of a ticket already admitted in another part of the mesh
    /// (an offline double spend that worked).
    pub double_entries_across: usize,
    /// Refusals by reason (honest holders and cheaters together).
    pub refusals: BTreeMap<String, usize>,
    /// Real phones (not cheaters' copies) refused, by reason: their ticket
    /// was cheated with (a cloned phone is its cheater's), or over the policy.
    pub honest_refused: BTreeMap<String, usize>,
    /// Honest holders of untouched tickets refused (target 0).
    pub honest_untouched_refused: usize,
    /// Cheats set up, by kind.
    pub cheats: BTreeMap<&'static str, usize>,
    /// Mesh conflicts reported at heals, unique per (instrument, kind).
    pub mesh_double_entries: usize,
    /// Mesh conflicts that were two forks, with a proof.
    pub mesh_double_transfers: usize,
    /// Double transfers refused at a gate, with the proof.
    pub gate_double_transfer_proofs: usize,
    /// Registry: chains registered, superseded, conflicts, refused.
    pub registered: usize,
    /// Chains the registry found stale (a later holder is registered).
    pub superseded: usize,
    /// Double transfers the registry proved, unique per instrument.
    pub registry_conflicts: usize,
    /// Chains the registry refused.
    pub registry_refused: BTreeMap<String, usize>,
    /// Examination certificates recorded.
    pub examinations_recorded: usize,
    /// Bags settled.
    pub bags: usize,
    /// Used-after-transfer proofs built from the records and the registry.
    pub used_after_transfer: usize,
    /// Proofs (of any kind) naming a key that did not cheat (target 0).
    pub wrongly_named: usize,
    /// Double transfers that reached two wallets without any proof (target 0).
    pub double_transfers_unproven: usize,
    /// Stale copies admitted after the transfer without a proof (target 0).
    pub stale_unproven: usize,
    /// Stale copies proven here that the registry itself did not store a
    /// used-after-transfer proof for and act on (target 0).
    pub stale_unflagged_by_registry: usize,
    /// Most parts the mesh was in at once.
    pub max_parts: usize,
    /// Wall time of each phase, seconds.
    pub setup_secs: f64,
    /// The event.
    pub event_secs: f64,
    /// Reconciliation.
    pub reconcile_secs: f64,
}

impl Report {
    /// Value taken by offline double spends: each extra entry is a ticket's price.
    pub fn value_at_risk(&self) -> u64 {
        (self.double_entries_connected + self.double_entries_across) as u64 * FACE_PRICE
    }

    /// The policy's bound for one ticket of `uses` uses: it can be admitted
    /// once per part of the mesh that cannot hear the others, so the extra
    /// entries are at most (parts − 1) × uses, whatever the hops.
    pub fn bound_per_ticket(&self, uses: u64) -> u64 {
        (self.max_parts.saturating_sub(1) as u64) * uses * FACE_PRICE
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn permille(&mut self, p: u32) -> bool {
        self.below(1000) < u64::from(p)
    }
    fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        for chunk in s.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        s
    }
    fn key(&mut self) -> LocalSigner {
        LocalSigner::from_seed(&self.seed())
    }
    fn id(&mut self) -> ExchangeId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        ExchangeId(b)
    }
}

/// A modified wallet: answers a gate with a chain and a key it should no
/// longer use (a cloned phone, or the seller's copy of a ticket it sold).
#[derive(Debug)]
pub struct CopyApp {
    chain: Instrument,
    signer: LocalSigner,
    now: Timestamp,
}

impl CardApplication for CopyApp {
    fn aid(&self) -> &[u8] {
        &TESSERA_AID
    }
    fn on_select(&mut self) -> Vec<u8> {
        HELLO.to_vec()
    }
    fn on_deselect(&mut self) {}
    fn on_command(&mut self, ins: u8, _p1: u8, _p2: u8, message: &[u8]) -> Result<Vec<u8>, StatusWord> {
        match ins {
            INS_PRESENT => {
                let challenge = Signed::<ChallengeBody>::from_bytes(message).map_err(|_| StatusWord::WRONG_DATA)?;
                let uses = self.chain.attributes().uses();
                let body = PresentationBody {
                    challenge: challenge.digest(),
                    instrument_id: self.chain.id(),
                    sequence: self.chain.sequence(),
                    tip: self.chain.tip_digest(),
                    instruction: challenge.body.instruction,
                    change: challenge.body.instruction.apply(uses),
                    counter: 1,
                    time: self.now,
                };
                let answer = Signed::sign(body, &self.signer).map_err(|_| StatusWord::WRONG_DATA)?;
                let p = Presentation { instrument: self.chain.clone(), answer };
                Ok(PresentationOnAir::from_presentation(&p).to_bytes())
            }
            INS_CONFIRM => Ok(Vec::new()),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// [`CopyApp`] behind the card channel, as a gate reads it.
#[derive(Debug)]
pub struct CopyCard(CardChannel<CopyApp>);

impl Transceiver for CopyCard {
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.0.process_apdu(command))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Plain,
    Resold,
    OverLimit,
    Cloned,
    DoubleTransferred,
    Stale,
}

struct Ticket {
    id: InstrumentId,
    scenario: Scenario,
    /// The key that cheated with it, if any.
    cheater: Option<PublicKey>,
    /// Admissions so far: gate, used event (index in the mesh), and
    /// whether a cheater's copy got in.
    admissions: Vec<(usize, usize, bool)>,
}

/// Who shows up at a gate.
enum Presenter {
    /// An honest party's phone, made at arrival: tickets with the hops each
    /// went through before reaching it.
    Party(Vec<(usize, usize)>),
    /// An honest phone made the day before (a cheat's victim or the
    /// original of a clone), kept in a file.
    Phone(PathBuf, usize),
    /// A modified wallet presenting a copy.
    Copy(Box<(Instrument, LocalSigner)>, usize),
}

struct Arrival {
    time: Timestamp,
    gate: usize,
    who: Presenter,
}

struct Mesh {
    /// Part of each gate.
    part: Vec<usize>,
    /// Every used event: its bytes and the gates it reached (bit mask).
    envelopes: Vec<(Vec<u8>, u64)>,
    /// Envelopes not yet at every gate.
    incomplete: BTreeSet<usize>,
    conflicts: BTreeSet<(InstrumentId, bool)>,
    /// Double-transfer proofs found during the event (heals and gates).
    fork_proofs: Vec<tessera_core::EquivocationProof>,
}

impl Mesh {
    fn all(&self) -> u64 {
        (1u64 << self.part.len()) - 1
    }

    /// Delivers envelope `e` to every gate of `part` it has not reached.
    fn spread(&mut self, gates: &mut [Gate], e: usize, now: Timestamp) -> anyhow::Result<()> {
        let reached = self.envelopes[e].1;
        let parts: BTreeSet<usize> =
            (0..gates.len()).filter(|g| reached & (1 << g) != 0).map(|g| self.part[g]).collect();
        for (g, gate) in gates.iter_mut().enumerate() {
            if reached & (1 << g) != 0 || !parts.contains(&self.part[g]) {
                continue;
            }
            let report = gate.merge_envelope(&self.envelopes[e].0, now)?;
            for c in report.conflicts {
                let fork = c.kind == ConflictKind::DoubleTransfer;
                if self.conflicts.insert((c.instrument_id, fork))
                    && let Some(p) = c.proof
                {
                    self.fork_proofs.push(p);
                }
            }
            self.envelopes[e].1 |= 1 << g;
        }
        if self.envelopes[e].1 == self.all() {
            self.incomplete.remove(&e);
        }
        Ok(())
    }

    /// The mesh changes shape; what one gate of a part knows, all learn
    /// (the catch-up every gate sends a peer that joins).
    fn reshape(&mut self, gates: &mut [Gate], part: Vec<usize>, now: Timestamp) -> anyhow::Result<()> {
        self.part = part;
        for e in self.incomplete.clone() {
            self.spread(gates, e, now)?;
        }
        Ok(())
    }
}

/// The mesh's shape over the event: (start of the window, as a fraction, and
/// the part of each gate). Ends whole.
fn schedule(gates: usize) -> Vec<(f64, Vec<usize>)> {
    let whole = vec![0; gates];
    let halves = (0..gates).map(|g| usize::from(g >= gates / 2)).collect();
    let one_out = (0..gates).map(|g| usize::from(g != 0)).collect();
    let thirds = (0..gates).map(|g| g * 3 / gates.max(1)).collect();
    vec![
        (0.0, whole.clone()),
        (0.15, halves),
        (0.35, whole.clone()),
        (0.50, one_out),
        (0.60, whole.clone()),
        (0.70, thirds),
        (0.85, whole),
    ]
}

fn ticket_attributes() -> Attributes {
    Attributes::Ticket(TicketAttributes {
        event_id: EVENT.into(),
        title: "Cup Final".into(),
        zone: "north".into(),
        seat: None,
        guidance: None,
        valid_from: T0 - 2 * 86_400,
        valid_until: T0 + 86_400,
        transferable: true,
        uses: 1,
        face_price: Some(Amount::new("EUR", FACE_PRICE)),
    })
}

fn endorse(
    chain: &Instrument,
    from: &LocalSigner,
    to: PublicKey,
    rng: &mut Rng,
    time: Timestamp,
) -> anyhow::Result<Instrument> {
    let (offer, acceptance) = (rng.id(), rng.id());
    let body = chain.next_endorsement(to, offer, acceptance, time);
    Ok(chain.with_link(Signed::sign(body, from)?))
}

/// The whole venue.
struct Venue {
    registry: Registry,
    registry_clock: Arc<ManualClock>,
    issuer: Issuer<LocalSigner>,
    trust: Vec<u8>,
    keys: StaticKeyProvider,
}

impl Venue {
    fn wallet_in_memory(&self, now: Timestamp) -> anyhow::Result<Wallet<SqliteStore>> {
        let mut w = Wallet::create(SqliteStore::in_memory()?, &self.keys, Arc::new(ManualClock::new(now)))?;
        w.pin_registry(self.registry.registry_key())?;
        w.install_trust_list(&self.trust)?;
        Ok(w)
    }

    fn wallet_file(&self, path: &Path, now: Timestamp) -> anyhow::Result<Wallet<SqliteStore>> {
        let mut w = Wallet::create_at(path, &self.keys, Arc::new(ManualClock::new(now)))?;
        w.pin_registry(self.registry.registry_key())?;
        w.install_trust_list(&self.trust)?;
        Ok(w)
    }

    /// Issues a ticket to `holder` and registers it (before the event).
    fn issue(&self, holder: PublicKey, rng: &mut Rng) -> anyhow::Result<Instrument> {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&rng.next().to_le_bytes());
        id[8..].copy_from_slice(&rng.next().to_le_bytes());
        let ticket = self.issuer.issue_with_id(InstrumentId(id), ticket_attributes(), holder, T_SALE - 3_600)?;
        self.registry.store().insert_instrument(&InstrumentRow::issued(&ticket, None, T_SALE - 3_600))?;
        Ok(ticket)
    }
}

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: EVENT.into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    }
}

/// Runs the event; the report holds every figure. Fails on an error of a
/// real part (a store, a signer), never on a cheat.
pub fn run(config: &Config) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let started = Instant::now();
    let mut rng = Rng(config.seed);
    std::fs::create_dir_all(&config.dir)?;
    let registry_clock = Arc::new(ManualClock::new(T_SALE - 7_200));
    let (registry_signer, issuer_signer) = tessera_registry::embedded::signers_from_seed(&rng.seed());
    let issuer = Issuer::new(LocalSigner::from_seed(&issuer_signer.secret().to_bytes()));
    let registry = Registry::new(
        Arc::new(SqliteRegistry::open(config.dir.join("registry.db"))?),
        registry_signer,
        issuer_signer,
        registry_clock.clone(),
        Arc::new(TestPaymentProvider),
    );
    let operator = registry.registry_key();
    let mut gate_keys = Vec::new();
    for g in 0..config.gates {
        let key = Gate::init(&config.dir.join(format!("gate-{g}")), &policy())?;
        registry
            .put_party(
                &operator,
                wire::PartyRequest {
                    key: key.to_hex(),
                    role: "gate".into(),
                    name: format!("gate {g}"),
                    not_after: u64::MAX / 2,
                },
            )
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        gate_keys.push(key);
    }
    let trust = registry.trust_list().map_err(|e| anyhow::anyhow!("{e:?}"))?.signed().to_bytes();
    let mut gates = Vec::new();
    for g in 0..config.gates {
        let mut gate = Gate::open(&config.dir.join(format!("gate-{g}")))?;
        gate.pin_registry(operator)?;
        gate.install_trust_list(&trust)?;
        gate.set_offline_policy(config.policy)?;
        gates.push(gate);
    }
    let venue = Venue {
        registry,
        registry_clock,
        issuer,
        trust,
        keys: StaticKeyProvider::new(StorageKey::from_bytes([7; 32])),
    };

    // The day before: tickets, resales and cheats; the arrivals they lead to.
    let mut tickets: Vec<Ticket> = Vec::with_capacity(config.entries);
    let mut arrivals: Vec<Arrival> = Vec::new();
    let mut party: Vec<(usize, usize)> = Vec::new();
    let phones = config.dir.join("phones");
    std::fs::create_dir_all(&phones)?;
    let mut cheater_keys: BTreeSet<PublicKey> = BTreeSet::new();
    let when = |rng: &mut Rng| T0 + rng.below(WINDOW);
    let gate_of = |rng: &mut Rng| rng.below(config.gates as u64) as usize;
    let other_gate = |rng: &mut Rng, g: usize| (g + 1 + rng.below(config.gates as u64 - 1) as usize) % config.gates;
    // Where and when a cheat's two presentations happen.
    let split = schedule(config.gates)[1].0..schedule(config.gates)[2].0;
    let two_taps = |rng: &mut Rng| -> [(Timestamp, usize); 2] {
        if config.split_cheats > 0 && rng.permille(config.split_cheats) {
            let half = (config.gates / 2) as u64;
            let at = |rng: &mut Rng| {
                let f = split.start + (split.end - split.start) * (rng.below(1000) as f64 / 1000.0);
                T0 + (f * WINDOW as f64) as u64
            };
            let a = rng.below(half) as usize;
            let b = (half + rng.below(config.gates as u64 - half)) as usize;
            [(at(rng), a), (at(rng), b)]
        } else {
            let a = gate_of(rng);
            let b = other_gate(rng, a);
            [(when(rng), a), (when(rng), b)]
        }
    };
    // Fork recipients and stale-copy victims must hold the ticket before
    // the cheater's second act, so their phones are files made now.
    let mut expected_double_transfers: Vec<(InstrumentId, PublicKey)> = Vec::new();
    for t in 0..config.entries {
        let r = rng.below(1000) as u32;
        let mut acc = 0;
        let mut pick = |p: u32| {
            acc += p;
            r < acc
        };
        let scenario = if pick(config.cloned) {
            Scenario::Cloned
        } else if pick(config.double_transferred) {
            Scenario::DoubleTransferred
        } else if pick(config.stale) {
            Scenario::Stale
        } else if pick(config.over_limit) {
            Scenario::OverLimit
        } else if pick(config.resold) {
            Scenario::Resold
        } else {
            Scenario::Plain
        };
        let mut cheater = None;
        let id;
        match scenario {
            Scenario::Plain | Scenario::Resold | Scenario::OverLimit => {
                let hops = match scenario {
                    Scenario::Plain => 0,
                    Scenario::Resold => 1 + rng.below(3) as usize,
                    _ => config.policy.max_unreconciled_hops + 1 + rng.below(2) as usize,
                };
                // Issued when the party's phone is made; the id comes then.
                id = InstrumentId([0; 16]);
                party.push((t, hops));
                if party.len() >= config.party {
                    let (time, gate) = (when(&mut rng), gate_of(&mut rng));
                    arrivals.push(Arrival { time, gate, who: Presenter::Party(std::mem::take(&mut party)) });
                }
            }
            Scenario::Cloned => {
                let path = phones.join(format!("{t}.db"));
                let mut w = venue.wallet_file(&path, T_SALE)?;
                let holder = w.new_holder_key()?;
                let ticket = venue.issue(holder, &mut rng)?;
                id = w.import_instrument(ticket.clone())?.id;
                let signer = w.signer(&holder)?;
                drop(w);
                cheater = Some(holder);
                let [(ta, a), (tb, b)] = two_taps(&mut rng);
                arrivals.push(Arrival { time: ta, gate: a, who: Presenter::Phone(path, t) });
                arrivals.push(Arrival { time: tb, gate: b, who: Presenter::Copy(Box::new((ticket, signer)), t) });
            }
            Scenario::DoubleTransferred => {
                let seller = rng.key();
                let ticket = venue.issue(seller.public_key(), &mut rng)?;
                id = ticket.id();
                let mut recipients = Vec::new();
                for side in 0..2 {
                    let path = phones.join(format!("{t}-{side}.db"));
                    let mut w = venue.wallet_file(&path, T_SALE + 600)?;
                    let key = w.new_holder_key()?;
                    let chain = endorse(&ticket, &seller, key, &mut rng, T_SALE + 60 + side * 300)?;
                    w.import_instrument(chain)?;
                    recipients.push(path);
                }
                cheater = Some(seller.public_key());
                expected_double_transfers.push((id, seller.public_key()));
                for (path, (time, gate)) in recipients.into_iter().zip(two_taps(&mut rng)) {
                    arrivals.push(Arrival { time, gate, who: Presenter::Phone(path, t) });
                }
            }
            Scenario::Stale => {
                let seller = rng.key();
                let ticket = venue.issue(seller.public_key(), &mut rng)?;
                id = ticket.id();
                let path = phones.join(format!("{t}.db"));
                let mut w = venue.wallet_file(&path, T_SALE + 600)?;
                let key = w.new_holder_key()?;
                w.import_instrument(endorse(&ticket, &seller, key, &mut rng, T_SALE + 60)?)?;
                drop(w);
                cheater = Some(seller.public_key());
                let [(ta, a), (tb, b)] = two_taps(&mut rng);
                arrivals.push(Arrival { time: ta, gate: a, who: Presenter::Phone(path, t) });
                arrivals.push(Arrival { time: tb, gate: b, who: Presenter::Copy(Box::new((ticket, seller)), t) });
            }
        }
        if let Some(k) = cheater {
            cheater_keys.insert(k);
            *report.cheats.entry(scenario_name(scenario)).or_default() += 1;
        }
        tickets.push(Ticket { id, scenario, cheater, admissions: Vec::new() });
    }
    if !party.is_empty() {
        let (time, gate) = (when(&mut rng), gate_of(&mut rng));
        arrivals.push(Arrival { time, gate, who: Presenter::Party(party) });
    }
    arrivals.sort_by_key(|a| a.time);
    report.setup_secs = started.elapsed().as_secs_f64();

    // The event: the registry is out of reach; only the gates and the mesh.
    let started = Instant::now();
    let shape = schedule(config.gates);
    let mut mesh = Mesh {
        part: vec![0; config.gates],
        envelopes: Vec::new(),
        incomplete: BTreeSet::new(),
        conflicts: BTreeSet::new(),
        fork_proofs: Vec::new(),
    };
    let mut next_shape = 1;
    for arrival in arrivals {
        while next_shape < shape.len() && arrival.time >= T0 + (shape[next_shape].0 * WINDOW as f64) as u64 {
            let part = shape[next_shape].1.clone();
            report.max_parts = report.max_parts.max(part.iter().collect::<BTreeSet<_>>().len());
            mesh.reshape(&mut gates, part, arrival.time)?;
            next_shape += 1;
        }
        let now = arrival.time;
        let g = arrival.gate;
        match arrival.who {
            Presenter::Party(members) => {
                // The party's phone: tickets bought (and resold) the day before.
                let mut w = venue.wallet_in_memory(now)?;
                let mut ids = Vec::new();
                for (t, hops) in members {
                    let key = w.new_holder_key()?;
                    let mut holders: Vec<LocalSigner> = (0..hops).map(|_| rng.key()).collect();
                    let first = holders.first().map_or(key, LocalSigner::public_key);
                    let mut chain = venue.issue(first, &mut rng)?;
                    for h in 0..hops {
                        let to = holders.get(h + 1).map_or(key, LocalSigner::public_key);
                        chain = endorse(&chain, &holders[h], to, &mut rng, T_SALE + 60 * h as u64)?;
                    }
                    holders.clear();
                    tickets[t].id = chain.id();
                    w.import_instrument(chain)?;
                    ids.push(t);
                }
                let mut card = WalletCard::new(w);
                for t in ids {
                    card.choose(Some(tickets[t].id));
                    let tap = gates[g].tap(&mut card, now)?;
                    record(&mut report, &mut tickets, &mut mesh, &mut gates, g, t, true, &tap, now)?;
                }
            }
            Presenter::Phone(path, t) => {
                let w = Wallet::open_at(&path, &venue.keys, Arc::new(ManualClock::new(now)))?;
                let mut card = WalletCard::new(w);
                card.choose(Some(tickets[t].id));
                let tap = gates[g].tap(&mut card, now)?;
                record(&mut report, &mut tickets, &mut mesh, &mut gates, g, t, true, &tap, now)?;
            }
            Presenter::Copy(copy, t) => {
                let (chain, signer) = *copy;
                let mut card = CopyCard(CardChannel::new(CopyApp { chain, signer, now }));
                let tap = gates[g].tap(&mut card, now)?;
                record(&mut report, &mut tickets, &mut mesh, &mut gates, g, t, false, &tap, now)?;
            }
        }
    }
    // The mesh ends whole.
    mesh.reshape(&mut gates, vec![0; config.gates], T0 + WINDOW)?;
    report.event_secs = started.elapsed().as_secs_f64();
    for (_, fork) in &mesh.conflicts {
        if *fork {
            report.mesh_double_transfers += 1;
        } else {
            report.mesh_double_entries += 1;
        }
    }
    let mut proven_forks: BTreeSet<(InstrumentId, PublicKey)> = BTreeSet::new();
    let check_signer = |report: &mut Report, key: PublicKey| {
        if !cheater_keys.contains(&key) {
            report.wrongly_named += 1;
        }
    };
    for p in &mesh.fork_proofs {
        if let Ok(k) = p.verify() {
            check_signer(&mut report, k);
            proven_forks.insert((p.instrument_id(), k));
        }
    }

    // After the event: every gate's records to the registry.
    let started = Instant::now();
    venue.registry_clock.set(T_RECONCILE);
    let mut presented: Vec<Signed<PresentationBody>> = Vec::new();
    let mut registry_conflicts: BTreeSet<InstrumentId> = BTreeSet::new();
    for (g, gate) in gates.iter_mut().enumerate() {
        let key = gate_keys[g];
        while let Some(bag) = gate.pack_bag(MAX_BAG_ENTRIES, T_RECONCILE)? {
            let entries = bag.body.entries.clone();
            venue
                .registry
                .upload_bag(&key, wire::BagUpload { bag: wire::b64(&bag.to_bytes()) })
                .map_err(|e| anyhow::anyhow!("bag refused: {e:?}"))?;
            report.bags += 1;
            for chunk in entries.chunks(tessera_registry::service::MAX_ITEMS / 2) {
                let mut items = Vec::new();
                for e in chunk {
                    items.push(wire::UploadItemJson::Chain { instrument: wire::b64(&e.instrument.to_bytes()) });
                    items.push(wire::UploadItemJson::Examination { certificate: wire::b64(&e.certificate.to_bytes()) });
                    if e.certificate.body.outcome == Outcome::Admitted {
                        presented.push(e.answer.clone());
                    }
                }
                let answer = venue
                    .registry
                    .reconcile(&key, wire::ReconcileRequest { items })
                    .map_err(|e| anyhow::anyhow!("reconcile refused: {e:?}"))?;
                for r in answer.results {
                    match r {
                        wire::ItemResultJson::Registered { .. } => report.registered += 1,
                        wire::ItemResultJson::Superseded { .. } => report.superseded += 1,
                        wire::ItemResultJson::Conflict { instrument_id, proof } => {
                            let proof = wire::unb64(&proof)
                                .and_then(|b| tessera_core::EquivocationProof::from_bytes(&b).ok())
                                .ok_or_else(|| anyhow::anyhow!("the registry's proof does not decode"))?;
                            let signer = proof.verify().map_err(|e| anyhow::anyhow!("registry proof: {e}"))?;
                            check_signer(&mut report, signer);
                            proven_forks.insert((proof.instrument_id(), signer));
                            registry_conflicts.insert(InstrumentId::from_hex(&instrument_id)?);
                        }
                        wire::ItemResultJson::Examination { recorded, .. } => {
                            report.examinations_recorded += usize::from(recorded);
                        }
                        wire::ItemResultJson::Refused { error, .. } => {
                            *report.registry_refused.entry(error).or_default() += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    report.registry_conflicts = registry_conflicts.len();
    // Presentations against the registered links: used after transfer.
    let mut proven_stale: BTreeSet<InstrumentId> = BTreeSet::new();
    for answer in &presented {
        let id = answer.body.instrument_id;
        let next = answer.body.sequence + 1;
        for link in venue.registry.store().links(&id)? {
            if link.sequence != next {
                continue;
            }
            let Ok(endorsement) = Signed::<Endorsement>::from_bytes(&link.bytes) else { continue };
            if let Ok(proof) = UsedAfterTransferProof::new(link.signer, answer.clone(), endorsement) {
                check_signer(&mut report, proof.signer);
                if proven_stale.insert(id) {
                    report.used_after_transfer += 1;
                }
            }
        }
    }
    // The registry builds the same proofs itself (at bag upload, or when
    // the buyer's link is registered after the bag) and acts on them.
    for id in &proven_stale {
        if venue.registry.store().used_after_transfers(id)?.is_empty() {
            report.stale_unflagged_by_registry += 1;
        }
    }
    for (id, key) in &expected_double_transfers {
        if !proven_forks.contains(&(*id, *key)) {
            report.double_transfers_unproven += 1;
        }
    }
    for t in tickets.iter().filter(|t| t.scenario == Scenario::Stale) {
        // The copy was presented a day after the sale: if a gate admitted
        // it, the proof must exist.
        if t.admissions.iter().any(|a| a.2) && !proven_stale.contains(&t.id) {
            report.stale_unproven += 1;
        }
    }
    report.reconcile_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Plain => "plain",
        Scenario::Resold => "resold",
        Scenario::OverLimit => "over the hop limit",
        Scenario::Cloned => "cloned phone (same ticket at two gates)",
        Scenario::DoubleTransferred => "double transfer",
        Scenario::Stale => "stale copy presented after selling",
    }
}

/// Books one tap: refusals, admissions, double entries, and the used event
/// spread over the admitting gate's part of the mesh.
#[allow(clippy::too_many_arguments)]
fn record(
    report: &mut Report,
    tickets: &mut [Ticket],
    mesh: &mut Mesh,
    gates: &mut [Gate],
    g: usize,
    t: usize,
    honest: bool,
    tap: &tessera_gate::TapReport,
    now: Timestamp,
) -> anyhow::Result<()> {
    report.taps += 1;
    let ticket = &mut tickets[t];
    match &tap.decision {
        Decision::Decided(e) if e.outcome == Outcome::Admitted => {
            report.admitted += 1;
            let known = ticket
                .admissions
                .iter()
                .any(|(_, env, _)| mesh.envelopes.get(*env).is_some_and(|(_, reached)| reached & (1 << g) != 0));
            if known {
                report.double_entries_connected += 1;
            } else if !ticket.admissions.is_empty() {
                report.double_entries_across += 1;
            }
            let bytes = tap.used_event.clone().ok_or_else(|| anyhow::anyhow!("an admission without a used event"))?;
            let index = mesh.envelopes.len();
            mesh.envelopes.push((bytes, 1 << g));
            mesh.incomplete.insert(index);
            ticket.admissions.push((g, index, !honest));
            mesh.spread(gates, index, now)?;
        }
        Decision::Decided(e) => {
            let Outcome::Refused(reason) = e.outcome else { return Ok(()) };
            if reason == Refusal::DoubleTransfer
                && let Some(p) = &e.proof
            {
                report.gate_double_transfer_proofs += 1;
                mesh.fork_proofs.push(p.clone());
            }
            refused(report, ticket.scenario, honest, reason.as_str().to_owned());
        }
        other => {
            let reason = match other {
                Decision::CardRefused(sw) => format!("card {sw:?}"),
                _ => "no decision".to_owned(),
            };
            refused(report, ticket.scenario, honest, reason);
        }
    }
    Ok(())
}

fn refused(report: &mut Report, scenario: Scenario, honest: bool, reason: String) {
    *report.refusals.entry(reason.clone()).or_default() += 1;
    if honest {
        *report.honest_refused.entry(reason).or_default() += 1;
        if matches!(scenario, Scenario::Plain | Scenario::Resold) {
            report.honest_untouched_refused += 1;
        }
    }
}

fn counts(map: &BTreeMap<String, usize>) -> String {
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// The report as a table.
pub fn table(config: &Config, report: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let eur = |v: u64| format!("{}.{:02} EUR", v / 100, v % 100);
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "| {k} | {v} |");
    };
    row(
        "entries (tickets) / gates / tickets per phone",
        format!("{} / {} / {}", config.entries, config.gates, config.party),
    );
    row(
        "offline policy (max unreconciled hops, max note value)",
        format!("{}, {}", config.policy.max_unreconciled_hops, eur(config.policy.max_note_value)),
    );
    row("registry reachable during the event", "never".into());
    row("mesh: most parts at once (partitions healed)", format!("{}", report.max_parts));
    for (k, v) in &report.cheats {
        row(&format!("cheat set up: {k}"), v.to_string());
    }
    row("taps / admitted", format!("{} / {}", report.taps, report.admitted));
    row("**double entries inside a connected part** (target 0)", format!("**{}**", report.double_entries_connected));
    row("double entries across parts (offline double spends that worked)", report.double_entries_across.to_string());
    row("**value at risk taken offline** (extra entries × face price)", format!("**{}**", eur(report.value_at_risk())));
    let touched: usize = report.cheats.values().sum();
    row(
        "bound under the policy: tickets cheated with × (parts − 1) × uses × price",
        format!(
            "{touched} × {} × 1 × {} = {}",
            report.max_parts.saturating_sub(1),
            eur(FACE_PRICE),
            eur(touched as u64 * report.bound_per_ticket(1))
        ),
    );
    row("refusals by reason", counts(&report.refusals));
    row(
        "phones refused (not the copies; a cheat touched their ticket, or over the policy)",
        counts(&report.honest_refused),
    );
    let victims: usize = report
        .honest_refused
        .iter()
        .filter(|(k, _)| k.as_str() == "already-used" || k.as_str() == "double-transfer")
        .map(|(_, v)| v)
        .sum();
    row(
        "phones turned away because a copy or fork got in first (a cloned phone is its cheater's own)",
        format!("{victims} ({})", eur(victims as u64 * FACE_PRICE)),
    );
    row("honest holders of untouched tickets refused (target 0)", report.honest_untouched_refused.to_string());
    row("conflicts at heal: double entries (both gates named)", report.mesh_double_entries.to_string());
    row("conflicts at heal: double transfers (with proof)", report.mesh_double_transfers.to_string());
    row("double transfers refused at a gate with the proof", report.gate_double_transfer_proofs.to_string());
    row(
        "registry: bags settled / examinations recorded",
        format!("{} / {}", report.bags, report.examinations_recorded),
    );
    row("registry: chains registered / superseded", format!("{} / {}", report.registered, report.superseded));
    row(
        "registry: chains refused",
        if report.registry_refused.is_empty() { "0".into() } else { counts(&report.registry_refused) },
    );
    row("registry: double transfers proven (instruments)", report.registry_conflicts.to_string());
    row("used-after-transfer proofs (records × registered links)", report.used_after_transfer.to_string());
    row("double transfers left unproven (target 0)", report.double_transfers_unproven.to_string());
    row("stale copies admitted and left unproven (target 0)", report.stale_unproven.to_string());
    row(
        "stale copies proven but not acted on by the registry (target 0)",
        report.stale_unflagged_by_registry.to_string(),
    );
    row("proofs naming a key that did not cheat (target 0)", report.wrongly_named.to_string());
    row(
        "wall time: setup / event / reconciliation",
        format!("{:.1} s / {:.1} s / {:.1} s", report.setup_secs, report.event_secs, report.reconcile_secs),
    );
    row(
        &format!("taps per second (event phase, all {} gates in one process)", config.gates),
        format!("{:.0}", report.taps as f64 / report.event_secs.max(1e-9)),
    );
    format!("| figure | value |\n|---|---|\n{s}")
}
