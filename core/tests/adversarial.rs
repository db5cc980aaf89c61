//! The adversarial model (issue 7, item 3): random populations of honest and
//! cheating wallets moving tickets between them, presenting them at gates
//! that are online (sharing their used sets, as the mesh does) or offline,
//! and reconciling in random order with a reference registry.
//!
//! Everything runs on the real core: `Wallet` on SQLite in memory (endorse,
//! import, answer a gate challenge, record the examination, the reconcile
//! client's upload and apply), the one `Verifier`, the gate's `decide`, and
//! `EquivocationProof`. The cheats are what a modified wallet can do with
//! its own keys: endorse one sequence twice (double transfer), present a
//! ticket it has endorsed away (its stale copy), and replay a presentation
//! it saw. The registry is a reference model of DESIGN §3.3: the first
//! chain registered stands, a later consistent chain advances it, a stale
//! one is superseded, a fork is answered with the proof `find` builds.
//!
//! Invariants, checked after every case:
//! 1. every double transfer that reached two wallets is detected (by the
//!    receiving wallet, a gate or the registry) with a proof naming the
//!    cheater's key (or, for one made on a branch an earlier double
//!    transfer started, by the proof of that one: see `Equivocation`); a
//!    fork refused without a proof is kept for the registry, and one
//!    refused as stale is one the wallet cannot see;
//! 2. no proof ever names a key of an honest wallet, and every refusal of
//!    an honest holder at a gate is explained by a cheat on that ticket;
//! 3. no honest party loses value: a ticket whose history has no cheat is,
//!    after reconciliation, held (and admitted while it has uses) by
//!    exactly the wallet the model says, and by no other;
//! 4. a replayed presentation is never admitted;
//! 5. reconciliation is idempotent: a second round changes nothing;
//! 6. every presentation of a copy its holder key had already endorsed
//!    away, once the registry holds that (earlier) endorsement, is proven with a
//!    `UsedAfterTransferProof` naming that key, and no such proof built
//!    from any admitted presentation names an honest key.
//!
//! `ADVERSARIAL_CASES` sets the number of cases: 256 by default (the debug
//! build `cargo test --workspace` runs), 10,000 in CI's proof section
//! (`scripts/test.d/70-proof.sh`, release build).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rand::rngs::OsRng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tessera_core::authority::{Issuer, RegistryAuthority};
use tessera_core::presentation::{
    ChallengeBody, GateContext, GatePolicy, Instruction, Outcome, Presentation, PresentationBody, PriorUse,
    ReentryPolicy, Refusal, decide,
};
use tessera_core::proof::UsedAfterTransferProof;
use tessera_core::reconcile::{ItemOutcome, UploadItem};
use tessera_core::sealing::{StaticKeyProvider, StorageKey};
use tessera_core::store::{Holding, SqliteStore, WalletStore};
use tessera_core::{
    Attributes, Clock, DenyList, EquivocationProof, ExchangeId, Instrument, InstrumentId, InstrumentState, LocalSigner,
    ManualClock, PublicKey, Role, Signed, Signer, Status, TicketAttributes, Timestamp, TrustEntry, TrustList, Verifier,
    Wallet, WalletError,
};

const T0: Timestamp = 1_800_000_000;
const GATES: usize = 2;
/// Seconds between actions: longer than the used-after-transfer margin, so
/// a stale copy presented after its transfer is provable.
const STEP: u64 = tessera_core::proof::USED_AFTER_TRANSFER_MARGIN + 100;

/// What one step of a case does. Indices are taken modulo the population.
#[derive(Debug, Clone)]
enum Action {
    /// `from` endorses `ticket` to a fresh key of `to`, which imports it.
    Transfer { from: usize, to: usize, ticket: usize },
    /// A cheater endorses a sequence it already endorsed away, to `to`.
    DoubleTransfer { cheater: usize, to: usize, ticket: usize },
    /// `wallet` presents `ticket` at `gate` (a cheater may use a stale copy).
    Present { wallet: usize, ticket: usize, gate: usize },
    /// Someone replays the last presentation any gate saw to `gate`.
    Replay { gate: usize },
    /// A gate goes offline, or comes back and merges used sets.
    ToggleGate { gate: usize },
    /// `wallet` reconciles with the registry.
    Reconcile { wallet: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..8usize, 0..8usize, 0..4usize).prop_map(|(from, to, ticket)| Action::Transfer { from, to, ticket }),
        2 => (0..8usize, 0..8usize, 0..4usize)
            .prop_map(|(cheater, to, ticket)| Action::DoubleTransfer { cheater, to, ticket }),
        3 => (0..8usize, 0..4usize, 0..GATES).prop_map(|(wallet, ticket, gate)| Action::Present { wallet, ticket, gate }),
        1 => (0..GATES).prop_map(|gate| Action::Replay { gate }),
        1 => (0..GATES).prop_map(|gate| Action::ToggleGate { gate }),
        1 => (0..8usize).prop_map(|wallet| Action::Reconcile { wallet }),
    ]
}

/// One case: who cheats, who gets which ticket, which gates start online,
/// what happens, and the order of the final reconciliation.
#[derive(Debug, Clone)]
struct Case {
    cheaters: Vec<bool>,
    tickets: Vec<(usize, u16)>,
    online: [bool; GATES],
    actions: Vec<Action>,
    order_seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (2..=4usize, 1..=3usize).prop_flat_map(|(wallets, tickets)| {
        (
            // Wallet 0 is always honest; the others cheat one time in three.
            proptest::collection::vec(prop::bool::weighted(0.35), wallets - 1),
            proptest::collection::vec((0..wallets, 1..=2u16), tickets),
            [any::<bool>(), any::<bool>()],
            proptest::collection::vec(action(), 1..=10),
            any::<u64>(),
        )
            .prop_map(|(cheat, tickets, online, actions, order_seed)| Case {
                cheaters: std::iter::once(false).chain(cheat).collect(),
                tickets,
                online,
                actions,
                order_seed,
            })
    })
}

/// A gate: its key, its used set, and whether it is on the mesh.
struct Gate {
    signer: LocalSigner,
    used: BTreeMap<InstrumentId, PriorUse>,
    online: bool,
}

/// The reference registry: per ticket, the full chain first registered and
/// advanced since; and every proof it produced.
#[derive(Default)]
struct RegistryModel {
    chains: BTreeMap<InstrumentId, Instrument>,
    proofs: Vec<EquivocationProof>,
}

/// Links by sequence, whatever the chain's base (genesis or certificate).
fn links(inst: &Instrument) -> BTreeMap<u32, &Signed<tessera_core::Endorsement>> {
    inst.links.iter().map(|l| (l.body.sequence, l)).collect()
}

impl RegistryModel {
    fn answer(
        &mut self,
        authority: &RegistryAuthority<LocalSigner>,
        verifier: &Verifier<'_>,
        chain: &Instrument,
        now: Timestamp,
    ) -> ItemOutcome {
        let id = chain.id();
        let Ok(verified) = verifier.verify(chain, now) else {
            return ItemOutcome::Refused { id: Some(id), reason: "does not verify".into() };
        };
        let merged = match self.chains.get(&id) {
            None => chain.clone(),
            Some(known) => {
                let (old, new) = (links(known), links(chain));
                let fork = new.iter().any(|(seq, l)| old.get(seq).is_some_and(|o| o != l));
                if fork {
                    let proof = EquivocationProof::find(known, chain).expect("a fork of two valid chains is provable");
                    self.proofs.push(proof.clone());
                    return ItemOutcome::Conflict { id, proof };
                }
                if chain.sequence() < known.sequence() {
                    return ItemOutcome::Superseded { id, sequence: known.sequence(), holder: known.holder() };
                }
                let mut merged = known.clone();
                for link in chain.links.iter().filter(|l| l.body.sequence > known.sequence()) {
                    merged = merged.with_link(link.clone());
                }
                merged
            }
        };
        self.chains.insert(id, merged);
        let state = InstrumentState { uses_left: verified.state.uses_left, status: Status::Active };
        ItemOutcome::Registered(authority.register(chain, &verified, state, now).expect("sign a certificate"))
    }
}

/// A double transfer delivered: `cheater` endorsed `sequence` of `id` a
/// second time, extending `copy`.
#[derive(Debug, Clone)]
struct Equivocation {
    id: InstrumentId,
    sequence: u32,
    cheater: PublicKey,
    copy: Instrument,
    /// The sequence the receiving wallet's proof names when it is below
    /// `sequence`: `copy` is itself on a branch an earlier double transfer
    /// started, and the first place the wallet sees the two differ is there.
    upstream: Option<u32>,
}

/// The first sequence at which `a` and `b` carry different links.
fn first_divergence(a: &Instrument, b: &Instrument) -> Option<u32> {
    let theirs = links(b);
    a.links.iter().find(|l| theirs.get(&l.body.sequence).is_some_and(|o| *o != *l)).map(|l| l.body.sequence)
}

/// What the model knows about one ticket.
#[derive(Debug, Clone)]
struct TicketModel {
    id: InstrumentId,
    /// The wallet the honest history says holds it.
    owner: usize,
    uses: u16,
    /// A cheat touched it (double transfer or use of a stale copy): the
    /// honest-value invariant no longer applies, the evidence one does.
    cheated: bool,
    /// Uses the gates admitted.
    admitted: u16,
}

struct World {
    clock: Arc<ManualClock>,
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    trust: TrustList,
    deny: DenyList,
    wallets: Vec<Wallet<SqliteStore>>,
    cheaters: Vec<bool>,
    /// Every chain a cheater held, kept as its "backup".
    stale: Vec<BTreeMap<InstrumentId, Vec<Instrument>>>,
    gates: Vec<Gate>,
    tickets: Vec<TicketModel>,
    model: RegistryModel,
    /// Double transfers delivered.
    equivocations: Vec<Equivocation>,
    /// Every proof anyone found.
    proofs: Vec<EquivocationProof>,
    last_presentation: Option<(Presentation, Signed<ChallengeBody>)>,
    /// Every admitted presentation, with whether it was of a stale copy.
    admitted: Vec<(Signed<PresentationBody>, bool)>,
    /// What each cheater has endorsed: (wallet, ticket, sequence, tip). A
    /// double transfer is a second endorsement of one of these.
    endorsed: BTreeSet<(usize, InstrumentId, u32, [u8; 32])>,
}

fn policy() -> GatePolicy {
    GatePolicy {
        event_id: "final".into(),
        zones: vec!["north".into()],
        instruction: Instruction::Enter,
        reentry: ReentryPolicy::Refuse,
    }
}

fn challenge(gate: &LocalSigner, now: Timestamp) -> Signed<ChallengeBody> {
    let p = policy();
    let body = ChallengeBody {
        gate: gate.public_key(),
        nonce: ExchangeId::random(&mut OsRng),
        event_id: p.event_id,
        zones: p.zones,
        instruction: p.instruction,
        time: now,
    };
    Signed::sign(body, gate).unwrap()
}

impl World {
    fn new(case: &Case) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = RegistryAuthority::new(LocalSigner::generate(&mut OsRng));
        let issuer = Issuer::new(LocalSigner::generate(&mut OsRng));
        let gates: Vec<Gate> = (0..GATES)
            .map(|g| Gate { signer: LocalSigner::generate(&mut OsRng), used: BTreeMap::new(), online: case.online[g] })
            .collect();
        let mut entries = vec![TrustEntry {
            key: issuer.public_key(),
            role: Role::Issuer,
            name: "Arena".into(),
            not_after: T0 + DAY,
        }];
        for (i, g) in gates.iter().enumerate() {
            entries.push(TrustEntry {
                key: g.signer.public_key(),
                role: Role::Gate,
                name: format!("gate {i}"),
                not_after: T0 + DAY,
            });
        }
        let signed = registry.trust_list(1, entries, T0).unwrap();
        let trust_bytes = tessera_core::Wire::to_bytes(&signed);
        let trust = TrustList::verify(signed, &registry.public_key()).unwrap();
        let keys = StaticKeyProvider::new(StorageKey::from_bytes([7; 32]));
        let wallets: Vec<Wallet<SqliteStore>> = case
            .cheaters
            .iter()
            .map(|_| {
                let mut w = Wallet::create(SqliteStore::in_memory().unwrap(), &keys, clock.clone()).unwrap();
                w.pin_registry(registry.public_key()).unwrap();
                w.install_trust_list(&trust_bytes).unwrap();
                w
            })
            .collect();
        let mut world = Self {
            clock,
            registry,
            issuer,
            trust,
            deny: DenyList::empty(),
            stale: vec![BTreeMap::new(); wallets.len()],
            wallets,
            cheaters: case.cheaters.clone(),
            gates,
            tickets: Vec::new(),
            model: RegistryModel::default(),
            equivocations: Vec::new(),
            proofs: Vec::new(),
            last_presentation: None,
            admitted: Vec::new(),
            endorsed: BTreeSet::new(),
        };
        for (i, &(owner, uses)) in case.tickets.iter().enumerate() {
            let holder = world.wallets[owner].new_holder_key().unwrap();
            let attributes = Attributes::Ticket(TicketAttributes {
                event_id: "final".into(),
                title: "Cup final".into(),
                zone: "north".into(),
                seat: Some(format!("S{i}")),
                guidance: None,
                valid_from: T0 - 100,
                valid_until: T0 + DAY,
                transferable: true,
                uses,
                face_price: None,
            });
            let ticket = world.issuer.issue(attributes, holder, T0 - 50, &mut OsRng).unwrap();
            let id = world.wallets[owner].import_instrument(ticket).unwrap().id;
            world.tickets.push(TicketModel { id, owner, uses, cheated: false, admitted: 0 });
        }
        world
    }

    fn honest_keys(&self) -> BTreeSet<PublicKey> {
        let mut keys = BTreeSet::new();
        for (w, wallet) in self.wallets.iter().enumerate() {
            if !self.cheaters[w] {
                keys.insert(wallet.account_key());
                for k in wallet.store().keys(tessera_core::store::KeyRole::Holder).unwrap() {
                    keys.insert(k.public);
                }
            }
        }
        keys
    }

    fn held(&self, w: usize, id: &InstrumentId) -> Option<tessera_core::store::InstrumentRecord> {
        self.wallets[w].store().instrument(id).unwrap().filter(|r| r.holding == Holding::Held)
    }

    fn remember_stale(&mut self, w: usize, chain: &Instrument) {
        if self.cheaters[w] {
            self.stale[w].entry(chain.id()).or_default().push(chain.clone());
        }
    }

    /// A wallet that refused `fork` without a proof kept it, so its next
    /// sync hands it to the registry: the evidence is never lost.
    fn assert_kept_for_the_registry(&self, w: usize, fork: &Instrument) {
        let kept = self.wallets[w].store().fork_evidence().unwrap();
        assert!(kept.iter().any(|f| f.chain == *fork), "a fork refused without a proof was not kept for the registry");
    }

    /// `w` signs the link after `copy`'s tip.
    fn endorses(&mut self, w: usize, copy: &Instrument) {
        self.endorsed.insert((w, copy.id(), copy.sequence(), copy.tip_digest().0));
    }

    fn run(&mut self, action: &Action) {
        let n = self.wallets.len();
        self.clock.advance(STEP);
        match *action {
            Action::Transfer { from, to, ticket } => {
                let (from, to, t) = (from % n, to % n, ticket % self.tickets.len());
                let id = self.tickets[t].id;
                if from == to {
                    return;
                }
                let Some(record) = self.held(from, &id) else { return };
                if record.uses_left < self.tickets[t].uses {
                    // Passing on a used ticket is a cheat an honest wallet does not commit.
                    if !self.cheaters[from] {
                        return;
                    }
                    self.tickets[t].cheated = true;
                }
                self.remember_stale(from, &record.instrument);
                self.endorses(from, &record.instrument);
                let key = self.wallets[to].new_holder_key().unwrap();
                let exchange = ExchangeId::random(&mut OsRng);
                let chain = self.wallets[from].endorse(&id, key, exchange, exchange).unwrap();
                match self.wallets[to].import_instrument(chain.clone()) {
                    Ok(_) => {
                        self.wallets[from].confirm_transferred(&id).unwrap();
                        if self.tickets[t].owner == from {
                            self.tickets[t].owner = to;
                        }
                    }
                    Err(WalletError::DoubleTransfer { proof, .. }) => {
                        // `to` already holds a fork at this sequence: a cheat upstream.
                        assert!(self.tickets[t].cheated, "an honest transfer was taken for a double transfer");
                        match proof {
                            Some(p) => self.proofs.push(*p),
                            None => self.assert_kept_for_the_registry(to, &chain),
                        }
                    }
                    Err(e) => panic!("an honest transfer was refused: {e}"),
                }
            }
            Action::DoubleTransfer { cheater, to, ticket } => {
                let (cheater, to, t) = (cheater % n, to % n, ticket % self.tickets.len());
                let id = self.tickets[t].id;
                if !self.cheaters[cheater] || cheater == to {
                    return;
                }
                // A copy the cheater held and has since endorsed away (a fork
                // it received and still holds is not one: passing that on is
                // its first endorsement of the branch, and the proof a
                // receiver finds names whoever forked it upstream).
                let Some(copy) = self.stale[cheater].get(&id).and_then(|v| v.last()).cloned() else { return };
                if !self.endorsed.contains(&(cheater, id, copy.sequence(), copy.tip_digest().0)) {
                    return;
                }
                let signer = self.wallets[cheater].signer(&copy.holder()).unwrap();
                let key = self.wallets[to].new_holder_key().unwrap();
                let exchange = ExchangeId::random(&mut OsRng);
                let body = copy.next_endorsement(key, exchange, exchange, self.clock.now());
                let fork = copy.with_link(Signed::sign(body, &signer).unwrap());
                self.tickets[t].cheated = true;
                match self.wallets[to].import_instrument(fork.clone()) {
                    Ok(_) => {
                        self.equivocations.push(Equivocation::of(&fork, &copy, None));
                        self.remember_stale(to, &fork);
                    }
                    Err(WalletError::DoubleTransfer { proof: Some(proof), .. }) => {
                        // The wallet proves the first place its copy and the
                        // fork differ: the cheater's second endorsement, or,
                        // when the cheater's copy is itself on a branch an
                        // earlier double transfer started, that one.
                        // (Invariant 2: no proof names an honest key.)
                        let upstream = (proof.sequence() < fork.sequence()).then(|| proof.sequence());
                        if upstream.is_none() {
                            assert_eq!(proof.verify(), Ok(copy.holder()), "the wallet names the cheater");
                        }
                        self.equivocations.push(Equivocation::of(&fork, &copy, upstream));
                        self.proofs.push(*proof);
                    }
                    Err(WalletError::DoubleTransfer { proof: None, .. }) => {
                        // A wallet whose copy is a registered certificate has
                        // no link to compare, so it refuses the fork without a
                        // proof and keeps it for the registry, which proves it
                        // at the wallet's next sync (invariant 1). The copy
                        // need not be held: a wallet that passed its
                        // certificate on refuses the fork the same way (found
                        // by the 100,000-case run; docs/security.md).
                        let theirs =
                            self.wallets[to].store().instrument(&id).unwrap().expect("refused for a copy it has");
                        assert!(
                            !theirs.instrument.links.iter().any(|l| l.body.sequence == fork.sequence()),
                            "the wallet had the link to prove the double transfer with"
                        );
                        self.assert_kept_for_the_registry(to, &fork);
                        self.equivocations.push(Equivocation::of(&fork, &copy, None));
                    }
                    // `to` is further along this ticket already: the fork is
                    // stale to it. That is right only where `to` cannot see
                    // the fork (no link and no certificate at its sequence);
                    // otherwise the refusal would lose the evidence.
                    Err(WalletError::Stale(_) | WalletError::AlreadyHeld(_)) => {
                        let theirs = self.wallets[to].store().instrument(&id).unwrap().expect("stale to a copy it has");
                        let at = fork.sequence();
                        assert!(
                            !theirs.instrument.links.iter().any(|l| l.body.sequence == at)
                                && theirs.instrument.registered.as_ref().is_none_or(|c| c.body.sequence != at),
                            "a fork the wallet could see was refused as stale"
                        );
                    }
                    Err(e) => panic!("unexpected refusal of a fork: {e}"),
                }
            }
            Action::Present { wallet, ticket, gate } => {
                let (w, t, g) = (wallet % n, ticket % self.tickets.len(), gate % GATES);
                self.present(w, t, g);
            }
            Action::Replay { gate } => {
                let g = gate % GATES;
                let Some((presentation, _)) = self.last_presentation.clone() else { return };
                let fresh = challenge(&self.gates[g].signer, self.clock.now());
                let outcome = self.decide(g, &fresh, &presentation).0;
                assert_ne!(outcome, Outcome::Admitted, "a replayed presentation was admitted");
            }
            Action::ToggleGate { gate } => {
                let g = gate % GATES;
                self.gates[g].online = !self.gates[g].online;
                if self.gates[g].online {
                    self.merge_used_sets();
                }
            }
            Action::Reconcile { wallet } => {
                self.reconcile(wallet % n);
            }
        }
    }

    fn decide(
        &self,
        g: usize,
        challenge: &Signed<ChallengeBody>,
        presentation: &Presentation,
    ) -> (Outcome, u16, Option<EquivocationProof>) {
        let ctx = GateContext {
            verifier: Verifier::new(&self.trust, &self.deny),
            ledger: &self.gates[g].used,
            now: self.clock.now(),
        };
        let (outcome, _, uses_left, _, proof) = decide(&policy(), challenge, presentation, &ctx);
        (outcome, uses_left, proof)
    }

    /// Online gates share what they admit, as the mesh gossips used events.
    fn merge_used_sets(&mut self) {
        let mut merged: BTreeMap<InstrumentId, PriorUse> = BTreeMap::new();
        for gate in self.gates.iter().filter(|g| g.online) {
            for (id, prior) in &gate.used {
                let entry = merged.entry(*id).or_insert_with(|| prior.clone());
                if prior.uses_consumed > entry.uses_consumed {
                    *entry = prior.clone();
                }
            }
        }
        for gate in self.gates.iter_mut().filter(|g| g.online) {
            gate.used = merged.clone();
        }
    }

    fn present(&mut self, w: usize, t: usize, g: usize) {
        let id = self.tickets[t].id;
        let ch = challenge(&self.gates[g].signer, self.clock.now());
        let (presentation, pending) = if let Some(record) = self.held(w, &id) {
            let pending = self.wallets[w].answer_challenge(&ch, Some(&id)).unwrap();
            (Presentation { instrument: record.instrument, answer: pending.answer.clone() }, Some(pending))
        } else if let Some(copy) = self.stale[w].get(&id).and_then(|v| v.first()).cloned() {
            // A cheater presents a ticket it endorsed away, from its backup.
            let signer = self.wallets[w].signer(&copy.holder()).unwrap();
            let uses = self.verifier().verify(&copy, self.clock.now()).unwrap().state.uses_left;
            let body = PresentationBody {
                challenge: ch.digest(),
                instrument_id: id,
                sequence: copy.sequence(),
                tip: copy.tip_digest(),
                instruction: Instruction::Enter,
                change: Instruction::Enter.apply(uses),
                counter: 1,
                time: self.clock.now(),
            };
            self.tickets[t].cheated = true;
            (Presentation { instrument: copy, answer: Signed::sign(body, &signer).unwrap() }, None)
        } else {
            return;
        };
        let (outcome, uses_left, proof) = self.decide(g, &ch, &presentation);
        if let Some(p) = proof {
            self.proofs.push(p);
        }
        let honest_owner = !self.cheaters[w] && self.tickets[t].owner == w;
        let model = &self.tickets[t];
        if honest_owner && !model.cheated && model.admitted < model.uses {
            assert_eq!(outcome, Outcome::Admitted, "an honest holder of an untouched ticket was refused");
        }
        if outcome == Outcome::Admitted {
            self.admitted.push((presentation.answer.clone(), pending.is_none()));
            self.tickets[t].admitted += 1;
            assert!(
                self.tickets[t].cheated || self.tickets[t].admitted <= self.tickets[t].uses,
                "a gate admitted more uses than an honest ticket has"
            );
            let gate = &mut self.gates[g];
            let consumed = presentation.answer.body.change.uses_before.saturating_sub(uses_left);
            let entry = gate.used.entry(id).or_insert(PriorUse {
                uses_consumed: 0,
                holder: presentation.instrument.holder(),
                instrument: presentation.instrument.clone(),
            });
            entry.uses_consumed += consumed;
            entry.holder = presentation.instrument.holder();
            entry.instrument = presentation.instrument.clone();
            if gate.online {
                self.merge_used_sets();
            }
            if let Some(pending) = pending {
                self.record(w, g, &pending, &ch, &presentation, uses_left);
            }
        } else if let Outcome::Refused(reason) = outcome {
            assert!(
                !honest_owner || self.tickets[t].cheated || self.tickets[t].admitted >= self.tickets[t].uses,
                "an honest holder was refused ({reason:?}) on a ticket no one cheated with"
            );
            assert_ne!(reason, Refusal::Forged, "a real ticket was taken for a forgery");
        }
        self.last_presentation = Some((presentation, ch));
    }

    /// The wallet logs the gate's examination certificate.
    fn record(
        &mut self,
        w: usize,
        g: usize,
        pending: &tessera_core::presentation::PendingPresentation,
        ch: &Signed<ChallengeBody>,
        presentation: &Presentation,
        uses_left: u16,
    ) {
        let gate = &self.gates[g].signer;
        let body = tessera_core::presentation::ExaminationBody {
            gate: gate.public_key(),
            challenge: ch.digest(),
            presentation: presentation.answer.digest(),
            instrument_id: presentation.answer.body.instrument_id,
            instruction: Instruction::Enter,
            counter: presentation.answer.body.counter,
            uses_left,
            status: Status::Active,
            outcome: Outcome::Admitted,
            record: 1,
            time: self.clock.now(),
        };
        let certificate = Signed::sign(body, gate).unwrap();
        self.wallets[w].record_examination(pending, &certificate).unwrap();
    }

    fn verifier(&self) -> Verifier<'_> {
        Verifier::new(&self.trust, &self.deny)
    }

    /// One wallet's reconciliation: upload every chain, apply the answers.
    /// Returns whether applying changed the wallet.
    fn reconcile(&mut self, w: usize) -> bool {
        let upload = self.wallets[w].reconcile_upload().unwrap();
        let now = self.clock.now();
        let verifier = Verifier::new(&self.trust, &self.deny);
        let outcomes: Vec<ItemOutcome> = upload
            .items
            .iter()
            .map(|UploadItem::Chain(chain)| self.model.answer(&self.registry, &verifier, chain, now))
            .collect();
        let report = self.wallets[w].apply_reconcile(outcomes).unwrap();
        for proof in &report.conflicts {
            assert!(proof.verify().is_ok(), "the wallet accepted an invalid proof");
        }
        !(report.certified.is_empty() && report.gone.is_empty())
    }
}

const DAY: u64 = 86_400;

impl Equivocation {
    /// `fork` is `copy` with the cheater's second endorsement.
    fn of(fork: &Instrument, copy: &Instrument, upstream: Option<u32>) -> Self {
        Self { id: fork.id(), sequence: fork.sequence(), cheater: copy.holder(), copy: copy.clone(), upstream }
    }
}

impl Case {
    /// A scripted case: both gates offline, final reconciliation order
    /// from seed 0.
    fn scripted(cheaters: &[bool], tickets: &[(usize, u16)], actions: Vec<Action>) -> Self {
        Self { cheaters: cheaters.to_vec(), tickets: tickets.to_vec(), online: [false, false], actions, order_seed: 0 }
    }
}

fn check_case(case: &Case) {
    let mut world = World::new(case);
    for action in &case.actions {
        world.run(action);
    }
    // Final reconciliation: every wallet, in an order the case picks.
    let n = world.wallets.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed = case.order_seed;
    for i in (1..n).rev() {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (seed >> 33) as usize % (i + 1));
    }
    for &w in &order {
        world.reconcile(w);
    }
    // 5. Idempotent: a second round certifies and removes nothing new.
    let proofs_before = world.model.proofs.len();
    for &w in &order {
        assert!(!world.reconcile(w), "a second reconciliation changed wallet {w}");
    }
    let all_proofs: Vec<EquivocationProof> =
        world.proofs.iter().chain(world.model.proofs.iter().take(proofs_before)).cloned().collect();

    // 2. No proof names an honest key.
    let honest = world.honest_keys();
    for proof in world.proofs.iter().chain(world.model.proofs.iter()) {
        let signer = proof.verify().expect("every proof found verifies");
        assert!(!honest.contains(&signer), "a proof blames an honest wallet's key");
    }
    // 1. Every delivered double transfer is proven, naming the cheater —
    // unless it was made on a branch an earlier double transfer started and
    // that one is proven: the receiving wallet proved the earlier one, or
    // the branch is not the registered one (the registry keeps only the
    // registered links, so it answers every chain of that branch with the
    // proof of where the branch left them).
    for e in &world.equivocations {
        let proven = |sequence: u32, signer: Option<PublicKey>| {
            all_proofs
                .iter()
                .any(|p| p.instrument_id() == e.id && p.sequence() == sequence && signer.is_none_or(|k| p.signer == k))
        };
        let off_the_registered_branch = world.model.chains.get(&e.id).and_then(|r| first_divergence(&e.copy, r));
        let upstream = e.upstream.or(off_the_registered_branch).filter(|&s| s < e.sequence);
        assert!(
            proven(e.sequence, Some(e.cheater)) || upstream.is_some_and(|s| proven(s, None)),
            "the double transfer of sequence {} was not caught",
            e.sequence
        );
    }
    // 6. Presented after transferring: proven from the registry's chain,
    // naming the presenting key, whenever that chain holds the endorsement
    // that moved the presented sequence on; never naming an honest key.
    for (answer, stale) in &world.admitted {
        let Some(chain) = world.model.chains.get(&answer.body.instrument_id) else { continue };
        // (A fork the cheater signed after presenting, registered first,
        // dates the presentation before the endorsement: nothing to prove
        // with that link; the equivocation proof covers the fork.)
        let passed_on = chain.links.iter().any(|l| {
            l.body.sequence == answer.body.sequence + 1
                && l.body.previous == answer.body.tip
                && l.body.time + tessera_core::proof::USED_AFTER_TRANSFER_MARGIN < answer.body.time
        });
        match UsedAfterTransferProof::find(answer, chain) {
            Some(proof) => {
                let signer = proof.verify().expect("a found proof verifies");
                assert!(answer.verify(&signer).is_ok(), "the proof names the key that presented");
                assert!(!honest.contains(&signer), "a used-after-transfer proof blames an honest key");
                assert!(*stale, "an honest wallet's own presentation was taken for use after transfer");
            }
            None => assert!(!(*stale && passed_on), "a stale copy presented after its transfer was not proven"),
        }
    }
    // 3. Untouched tickets: with their rightful honest owner, and only there.
    for ticket in world.tickets.iter().filter(|t| !t.cheated) {
        let holders: Vec<usize> = (0..n).filter(|&w| world.held(w, &ticket.id).is_some()).collect();
        assert_eq!(holders, vec![ticket.owner], "ticket held by {holders:?}, the model says {}", ticket.owner);
        let record = world.held(ticket.owner, &ticket.id).unwrap();
        assert!(record.uses_left >= ticket.uses - ticket.admitted.min(ticket.uses), "the wallet lost uses");
        world.verifier().verify_for_holder(&record.instrument, &record.holder, world.clock.now()).unwrap();
    }
}

fn cases() -> u32 {
    std::env::var("ADVERSARIAL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn honest_wallets_never_lose_and_cheaters_are_always_named(case in case()) {
        check_case(&case);
    }
}

/// A double transfer to two honest wallets, both reconciling: the registry
/// keeps the first and proves the second, naming the cheater.
#[test]
fn a_scripted_double_transfer_is_caught_at_reconciliation() {
    let case = Case {
        cheaters: vec![false, true, false],
        tickets: vec![(1, 1)],
        online: [true, true],
        actions: vec![
            Action::Transfer { from: 1, to: 0, ticket: 0 },
            Action::DoubleTransfer { cheater: 1, to: 2, ticket: 0 },
        ],
        order_seed: 3,
    };
    let mut world = World::new(&case);
    for action in &case.actions {
        world.run(action);
    }
    assert_eq!(world.equivocations.len(), 1);
    world.reconcile(0);
    world.reconcile(2);
    assert_eq!(world.model.proofs.len(), 1, "the second branch is a conflict");
    let cheater_key = world.equivocations[0].cheater;
    assert_eq!(world.model.proofs[0].verify(), Ok(cheater_key));
    check_case(&case);
}

/// Found by the model: a registered certificate (whose registry has not yet
/// heard of an offline gate's admission) must not give the holder back the
/// use it spent there, or a second offline gate admits it again.
#[test]
fn reconciling_does_not_restore_a_use_spent_offline() {
    let case = Case::scripted(
        &[false, false],
        &[(0, 1)],
        vec![
            Action::Transfer { from: 0, to: 1, ticket: 0 },
            Action::Present { wallet: 1, ticket: 0, gate: 1 },
            Action::Reconcile { wallet: 1 },
            Action::Present { wallet: 1, ticket: 0, gate: 0 },
        ],
    );
    check_case(&case);
}

/// A cheater passes a ticket on, then presents its stale copy first: the
/// gate admits it (it cannot know), and once the new holder reconciles, the
/// registry's chain and the gate's record of the presentation prove the
/// misuse and name the cheater's key, not the honest holder's.
#[test]
fn a_stale_copy_presented_after_transferring_names_the_cheater() {
    let case = Case::scripted(
        &[false, true],
        &[(1, 1)],
        vec![
            Action::Transfer { from: 1, to: 0, ticket: 0 },
            Action::Present { wallet: 1, ticket: 0, gate: 0 },
            Action::Reconcile { wallet: 0 },
        ],
    );
    let mut world = World::new(&case);
    let cheater_key = world.tickets.first().map(|t| world.held(1, &t.id).unwrap().holder).unwrap();
    for action in &case.actions {
        world.run(action);
    }
    let (answer, stale) = world.admitted.first().cloned().expect("the stale copy was admitted");
    assert!(stale);
    let chain = world.model.chains.get(&answer.body.instrument_id).expect("registered");
    let proof = UsedAfterTransferProof::find(&answer, chain).expect("provable");
    assert_eq!(proof.verify(), Ok(cheater_key));
    assert!(!world.honest_keys().contains(&cheater_key));
    check_case(&case);
}

/// Found by the 10,000-case run: a cheater that received a fork and still
/// holds it passes it on. That is its first endorsement of the branch, not
/// a double transfer; the receiving wallet's proof rightly names the key
/// that forked the ticket upstream, and the model must not expect the
/// forwarder's key.
#[test]
fn passing_on_a_received_fork_is_not_a_second_double_transfer() {
    let case = Case::scripted(
        &[false, false, true, true],
        &[(3, 1), (0, 1)],
        vec![
            Action::Transfer { from: 3, to: 4, ticket: 2 },
            Action::DoubleTransfer { cheater: 3, to: 6, ticket: 2 },
            Action::DoubleTransfer { cheater: 6, to: 0, ticket: 2 },
        ],
    );
    check_case(&case);
}

/// Found by the 100,000-case run: the cheater passes the ticket to wallet
/// 0, which reconciles (its copy becomes a registered certificate) and
/// passes it back; the cheater then signs sequence 1 again, to wallet 0.
/// Wallet 0 holds no copy, but the certificate it passed on contradicts the
/// fork, so it refuses it without a proof (it has no link to build one
/// from) and keeps it: its next sync hands it to the registry, which proves
/// the double transfer and names the cheater.
#[test]
fn a_fork_refused_by_a_wallet_that_passed_its_certificate_on_is_proven_by_the_registry() {
    let case = Case::scripted(
        &[false, true],
        &[(1, 1)],
        vec![
            Action::Transfer { from: 1, to: 0, ticket: 0 },
            Action::Reconcile { wallet: 0 },
            Action::Transfer { from: 0, to: 1, ticket: 0 },
            Action::DoubleTransfer { cheater: 1, to: 0, ticket: 0 },
        ],
    );
    let mut world = World::new(&case);
    for action in &case.actions {
        world.run(action);
    }
    let Equivocation { id, sequence, cheater, .. } =
        world.equivocations.first().cloned().expect("the double transfer is recorded");
    assert_eq!(sequence, 1);
    assert!(world.held(0, &id).is_none() && world.proofs.is_empty(), "wallet 0 holds nothing and proved nothing");
    world.reconcile(0);
    let proof = world.model.proofs.iter().find(|p| p.instrument_id() == id).expect("the registry proves the kept fork");
    assert_eq!((proof.verify(), proof.sequence()), (Ok(cheater), 1));
    check_case(&case);
}

/// A double transfer made on a branch an earlier one started: Mallory
/// (wallet 1) endorses sequence 1 to wallet 0, which registers it, and again
/// to Carol (wallet 2, cheating too), who passes that branch on to wallet 3
/// and then endorses sequence 2 of it again, to wallet 0. Wallet 0's
/// certificate contradicts the chain at sequence 1: it refuses it and keeps
/// it, and the registry proves Mallory's fork. Carol's second endorsement
/// is on a branch the registry never registered (it keeps only registered
/// links), so no one can prove it; the branch's holders are answered with
/// the proof of Mallory's fork. (The model wanted Carol's proof once it
/// recorded refusals without a proof as delivered double transfers.)
#[test]
fn a_double_transfer_on_an_unregistered_branch_is_answered_by_the_upstream_proof() {
    let case = Case::scripted(
        &[false, true, true, false],
        &[(1, 1)],
        vec![
            Action::Transfer { from: 1, to: 0, ticket: 0 },
            Action::Reconcile { wallet: 0 },
            Action::DoubleTransfer { cheater: 1, to: 2, ticket: 0 },
            Action::Transfer { from: 2, to: 3, ticket: 0 },
            Action::DoubleTransfer { cheater: 2, to: 0, ticket: 0 },
        ],
    );
    check_case(&case);
}

/// The same without the registration: Carol's second endorsement of
/// sequence 2 reaches Mallory, whose copy has Mallory's first endorsement
/// of sequence 1. The first place the two chains differ is sequence 1, so
/// Mallory's wallet refuses it with the proof of Mallory's fork, not
/// Carol's (the model used to insist on Carol's).
#[test]
fn a_fork_of_a_forked_branch_is_refused_with_the_first_proof() {
    let case = Case::scripted(
        &[false, true, true, false],
        &[(1, 1)],
        vec![
            Action::Transfer { from: 1, to: 0, ticket: 0 },
            Action::DoubleTransfer { cheater: 1, to: 2, ticket: 0 },
            Action::Transfer { from: 2, to: 3, ticket: 0 },
            Action::DoubleTransfer { cheater: 2, to: 1, ticket: 0 },
        ],
    );
    check_case(&case);
}
