//! The reconciliation client against a registry played in-process by
//! `RegistryAuthority` and the verifier, with a fixed clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{ItemOutcome, UploadItem};
use crate::authority::{Issuer, RegistryAuthority};
use crate::clock::ManualClock;
use crate::instrument::{Attributes, TicketAttributes};
use crate::sealing::{StaticKeyProvider, StorageKey};
use crate::store::{Holding, SqliteStore};
use crate::trust::{DenyList, Role, TrustEntry, TrustList};
use crate::{
    EquivocationProof, ExchangeId, Instrument, LocalSigner, Signed, Signer, Verifier, Wallet, WalletError, Wire,
};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000;

struct World {
    registry: RegistryAuthority<LocalSigner>,
    issuer: Issuer<LocalSigner>,
    trust: TrustList,
}

impl World {
    fn new() -> Self {
        let registry = RegistryAuthority::new(LocalSigner::from_seed(&[1; 32]));
        let issuer = Issuer::new(LocalSigner::from_seed(&[2; 32]));
        let entry = TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "SP".into(), not_after: u64::MAX };
        let trust =
            TrustList::verify(registry.trust_list(1, vec![entry], NOW).unwrap(), &registry.public_key()).unwrap();
        Self { registry, issuer, trust }
    }
    fn wallet(&self) -> Wallet<SqliteStore> {
        let keys = StaticKeyProvider::new(StorageKey::from_bytes([3; 32]));
        let mut w = Wallet::create(SqliteStore::in_memory().unwrap(), &keys, Arc::new(ManualClock::new(NOW))).unwrap();
        w.pin_registry(self.registry.public_key()).unwrap();
        w.install_trust_list(&self.trust.signed().to_bytes()).unwrap();
        w
    }
    fn ticket(&self, holder: crate::PublicKey) -> Instrument {
        let attrs = Attributes::Ticket(TicketAttributes {
            event_id: "e".into(),
            title: "E".into(),
            zone: "A".into(),
            seat: None,
            guidance: None,
            valid_from: 0,
            valid_until: NOW * 2,
            transferable: true,
            uses: 1,
            face_price: None,
        });
        self.issuer.issue(attrs, holder, NOW, &mut rand::rngs::OsRng).unwrap()
    }
    /// Mallory's ticket, endorsed to Carol, who reconciles it into a
    /// registered certificate: Mallory's key, the ticket, Mallory's copy
    /// before the endorsement, and the chain Carol received.
    fn certified_to_carol(
        &self,
        mallory: &mut Wallet<SqliteStore>,
        carol: &mut Wallet<SqliteStore>,
    ) -> (crate::PublicKey, crate::InstrumentId, Instrument, Instrument) {
        let mk = mallory.new_holder_key().unwrap();
        let id = mallory.import_instrument(self.ticket(mk)).unwrap().id;
        let original = mallory.instrument(&id).unwrap().instrument;
        let ck = carol.new_holder_key().unwrap();
        let to_carol = mallory.endorse(&id, ck, ExchangeId([1; 16]), ExchangeId::NONE).unwrap();
        carol.import_instrument(to_carol.clone()).unwrap();
        assert_eq!(carol.apply_reconcile(vec![self.certify(&to_carol)]).unwrap().certified, vec![id]);
        (mk, id, original, to_carol)
    }
    /// What the registry answers for a chain it registers.
    fn certify(&self, chain: &Instrument) -> ItemOutcome {
        let empty = DenyList::empty();
        let verified = Verifier::new(&self.trust, &empty).verify(chain, NOW).unwrap();
        ItemOutcome::Registered(self.registry.register(chain, &verified, verified.state, NOW).unwrap())
    }
}

#[test]
fn certificates_replace_chains_and_mark_passed_on_copies_gone() {
    let world = World::new();
    let (mut alice, mut bob) = (world.wallet(), world.wallet());
    let ak = alice.new_holder_key().unwrap();
    let id = alice.import_instrument(world.ticket(ak)).unwrap().id;
    let bk = bob.new_holder_key().unwrap();
    let to_bob = alice.endorse(&id, bk, ExchangeId([1; 16]), ExchangeId([2; 16])).unwrap();
    bob.import_instrument(to_bob).unwrap();

    // Both upload the same chain; the registry certifies Bob as holder.
    let upload = bob.reconcile_upload().unwrap();
    let UploadItem::Chain(chain) = &upload.items[0];
    assert_eq!(alice.reconcile_upload().unwrap(), upload, "the sender uploads its copy too");
    let answer = world.certify(chain);

    let report = bob.apply_reconcile(vec![answer.clone()]).unwrap();
    assert_eq!(report.certified, vec![id]);
    let held = bob.instrument(&id).unwrap();
    assert!(held.instrument.links.is_empty() && held.instrument.registered.is_some());
    assert_eq!(held.holding, Holding::Held);
    assert!(bob.reconcile_upload().unwrap().items.is_empty(), "nothing left to upload");
    // Applying the same answer again changes nothing.
    assert_eq!(bob.apply_reconcile(vec![answer.clone()]).unwrap().certified, vec![]);

    let report = alice.apply_reconcile(vec![answer]).unwrap();
    assert_eq!(report.gone, vec![id]);
    assert_eq!(alice.instrument(&id).unwrap().holding, Holding::Gone);
    // The certified instrument still verifies for Bob and can move on.
    bob.verify(&id).unwrap();
}

#[test]
fn conflicts_are_recorded_once_and_bad_answers_change_nothing() {
    let world = World::new();
    let mut mallory = world.wallet();
    let mk = mallory.new_holder_key().unwrap();
    let id = mallory.import_instrument(world.ticket(mk)).unwrap().id;
    let original = mallory.instrument(&id).unwrap().instrument;
    let signer = mallory.signer(&mk).unwrap();
    let fork = |to: u8| {
        let body = original.next_endorsement(crate::PublicKey([to; 32]), ExchangeId([to; 16]), ExchangeId::NONE, NOW);
        original.with_link(Signed::sign(body, &signer).unwrap())
    };
    let proof = EquivocationProof::find(&fork(1), &fork(2)).unwrap();
    let before = mallory.history(100).unwrap().len();
    let outcome = ItemOutcome::Conflict { id, proof: proof.clone() };
    let report = mallory.apply_reconcile(vec![outcome.clone(), outcome]).unwrap();
    assert_eq!(report.conflicts.len(), 2);
    assert_eq!(mallory.history(100).unwrap().len(), before + 1, "one history line however often it is told");
    assert_eq!(proof.signer, signer.public_key());

    // A certificate not signed by the pinned registry is refused.
    let impostor = RegistryAuthority::new(LocalSigner::from_seed(&[9; 32]));
    let empty = DenyList::empty();
    let verified = Verifier::new(&world.trust, &empty).verify(&original, NOW).unwrap();
    let forged = impostor.register(&original, &verified, verified.state, NOW).unwrap();
    let store_before = mallory.instrument(&id).unwrap();
    assert!(mallory.apply_reconcile(vec![ItemOutcome::Registered(forged)]).is_err());
    assert_eq!(mallory.instrument(&id).unwrap(), store_before);
}

#[test]
fn a_fork_against_a_certificate_is_refused_kept_uploaded_once_and_forgotten_when_answered() {
    let world = World::new();
    let [mut mallory, mut carol, mut dave, mut erin, mut bob]: [Wallet<SqliteStore>; 5] =
        std::array::from_fn(|_| world.wallet());
    let mk = mallory.new_holder_key().unwrap();
    let id = mallory.import_instrument(world.ticket(mk)).unwrap().id;
    let original = mallory.instrument(&id).unwrap().instrument;
    let (ck, dk, ek) =
        (carol.new_holder_key().unwrap(), dave.new_holder_key().unwrap(), erin.new_holder_key().unwrap());
    carol.import_instrument(mallory.endorse(&id, ck, ExchangeId([1; 16]), ExchangeId::NONE).unwrap()).unwrap();
    let body = original.next_endorsement(dk, ExchangeId([2; 16]), ExchangeId::NONE, NOW);
    dave.import_instrument(original.with_link(Signed::sign(body, &mallory.signer(&mk).unwrap()).unwrap())).unwrap();
    // Bob holds Carol's branch as a certificate at sequence 2.
    let (b1, b2, b3) = (bob.new_holder_key().unwrap(), bob.new_holder_key().unwrap(), bob.new_holder_key().unwrap());
    let to_bob = carol.endorse(&id, b1, ExchangeId([3; 16]), ExchangeId::NONE).unwrap();
    bob.import_instrument(to_bob.clone()).unwrap();
    assert_eq!(bob.apply_reconcile(vec![world.certify(&to_bob)]).unwrap().certified, vec![id]);
    let held = bob.instrument(&id).unwrap();
    assert!(held.instrument.links.is_empty());

    // Dave's branch reaches Bob at the same sequence, and one hop later
    // (through Erin): both refused without a proof, both kept, nothing else changes.
    let dave_copy = dave.instrument(&id).unwrap().instrument;
    let same = dave.endorse(&id, b2, ExchangeId([4; 16]), ExchangeId::NONE).unwrap();
    let body = dave_copy.next_endorsement(ek, ExchangeId([5; 16]), ExchangeId::NONE, NOW);
    erin.import_instrument(dave_copy.with_link(Signed::sign(body, &dave.signer(&dk).unwrap()).unwrap())).unwrap();
    let longer = erin.endorse(&id, b3, ExchangeId([6; 16]), ExchangeId::NONE).unwrap();
    for fork in [&same, &longer, &same] {
        let refused = bob.import_instrument(fork.clone());
        assert!(matches!(refused, Err(WalletError::DoubleTransfer { proof: None, .. })), "{refused:?}");
    }
    assert_eq!(bob.instrument(&id).unwrap(), held, "the holder's instruments are untouched");
    let upload = bob.reconcile_upload().unwrap();
    assert_eq!(upload.items, vec![UploadItem::Chain(same.clone()), UploadItem::Chain(longer)], "each kept once");

    // A whole-upload refusal names no instrument: the evidence stays.
    let refusal = ItemOutcome::Refused { id: None, reason: "busy".into() };
    bob.apply_reconcile(vec![refusal]).unwrap();
    assert_eq!(bob.reconcile_upload().unwrap(), upload);
    // The registry's answer for the instrument: forgotten.
    let proof = EquivocationProof::find(&to_bob, &same).unwrap();
    assert_eq!(proof.signer, mk, "the fork is Mallory's, at sequence 1");
    let report = bob.apply_reconcile(vec![ItemOutcome::Conflict { id, proof }]).unwrap();
    assert_eq!(report.conflicts.len(), 1);
    assert!(bob.reconcile_upload().unwrap().items.is_empty());
    assert_eq!(bob.instrument(&id).unwrap().instrument, held.instrument);
}

/// Found by the adversarial model: the mirror of the case above. Bob holds
/// Mallory's second endorsement of sequence 1; the first, to Carol, was
/// registered, and Carol's chain from that certificate reaches Bob. Bob
/// takes the registered branch and keeps his copy for the registry, which
/// proves the double transfer with it (the import used to overwrite it).
#[test]
fn a_registered_branch_over_a_held_fork_is_taken_and_the_fork_kept_for_the_registry() {
    let world = World::new();
    let [mut mallory, mut carol, mut bob]: [Wallet<SqliteStore>; 3] = std::array::from_fn(|_| world.wallet());
    let (mk, id, original, to_carol) = world.certified_to_carol(&mut mallory, &mut carol);
    let (b1, b2) = (bob.new_holder_key().unwrap(), bob.new_holder_key().unwrap());
    let body = original.next_endorsement(b1, ExchangeId([2; 16]), ExchangeId::NONE, NOW);
    let fork = original.with_link(Signed::sign(body, &mallory.signer(&mk).unwrap()).unwrap());
    bob.import_instrument(fork.clone()).unwrap();

    let registered_branch = carol.endorse(&id, b2, ExchangeId([3; 16]), ExchangeId::NONE).unwrap();
    bob.import_instrument(registered_branch.clone()).unwrap();
    let held = bob.instrument(&id).unwrap();
    assert_eq!((held.instrument, held.holding), (registered_branch.clone(), Holding::Held));
    let upload = bob.reconcile_upload().unwrap();
    assert_eq!(upload.items, vec![UploadItem::Chain(registered_branch), UploadItem::Chain(fork.clone())]);
    // The registry compares the kept fork with its registered link.
    let proof = EquivocationProof::find(&to_carol, &fork).unwrap();
    assert_eq!((proof.signer, proof.sequence()), (mk, 1), "Mallory signed sequence 1 twice");
}

/// Found by the adversarial model: Carol held Mallory's first endorsement
/// and passed it on; Mallory's second endorsement of the same sequence,
/// passed on by Dave, reaches Carol at the same sequence as her copy. It
/// is a double transfer with a proof, not merely "stale".
#[test]
fn a_fork_reaching_a_wallet_that_passed_the_other_branch_on_is_proven() {
    let world = World::new();
    let [mut mallory, mut carol, mut dave, mut bob]: [Wallet<SqliteStore>; 4] = std::array::from_fn(|_| world.wallet());
    let mk = mallory.new_holder_key().unwrap();
    let id = mallory.import_instrument(world.ticket(mk)).unwrap().id;
    let original = mallory.instrument(&id).unwrap().instrument;
    let ck = carol.new_holder_key().unwrap();
    carol.import_instrument(mallory.endorse(&id, ck, ExchangeId([1; 16]), ExchangeId::NONE).unwrap()).unwrap();
    let bk = bob.new_holder_key().unwrap();
    bob.import_instrument(carol.endorse(&id, bk, ExchangeId([2; 16]), ExchangeId::NONE).unwrap()).unwrap();
    carol.confirm_transferred(&id).unwrap();
    let dk = dave.new_holder_key().unwrap();
    let body = original.next_endorsement(dk, ExchangeId([3; 16]), ExchangeId::NONE, NOW);
    dave.import_instrument(original.with_link(Signed::sign(body, &mallory.signer(&mk).unwrap()).unwrap())).unwrap();
    let before = carol.instrument(&id).unwrap();
    let fork = dave.endorse(&id, carol.new_holder_key().unwrap(), ExchangeId([4; 16]), ExchangeId::NONE).unwrap();
    match carol.import_instrument(fork) {
        Err(WalletError::DoubleTransfer { proof: Some(proof), .. }) => {
            assert_eq!((proof.signer, proof.sequence()), (mk, 1), "Mallory signed sequence 1 twice");
        }
        other => panic!("expected a proven double transfer, got {other:?}"),
    }
    assert_eq!(carol.instrument(&id).unwrap(), before, "nothing changed");
}

/// Found by the adversarial model (100,000 cases): Carol reconciled her
/// copy from Mallory into a registered certificate and passed it back to
/// Mallory, who then signs sequence 1 again, to Carol. Carol holds no copy,
/// but the certificate she passed on contradicts the fork: she refuses it
/// without a proof (her copy has no link 1 to build one from), keeps it,
/// and her next sync hands it to the registry, which proves it.
#[test]
fn a_fork_reaching_a_wallet_that_passed_its_certificate_on_is_kept_for_the_registry() {
    let world = World::new();
    let [mut mallory, mut carol]: [Wallet<SqliteStore>; 2] = std::array::from_fn(|_| world.wallet());
    let (mk, id, original, to_carol) = world.certified_to_carol(&mut mallory, &mut carol);
    let back = carol.endorse(&id, mallory.new_holder_key().unwrap(), ExchangeId([2; 16]), ExchangeId::NONE).unwrap();
    mallory.import_instrument(back.clone()).unwrap();
    carol.confirm_transferred(&id).unwrap();
    let before = carol.instrument(&id).unwrap();
    assert_eq!((before.holding, before.instrument.links.len()), (Holding::Gone, 1), "only the link to Mallory");

    let body = original.next_endorsement(carol.new_holder_key().unwrap(), ExchangeId([3; 16]), ExchangeId::NONE, NOW);
    let fork = original.with_link(Signed::sign(body, &mallory.signer(&mk).unwrap()).unwrap());
    let refused = carol.import_instrument(fork.clone());
    assert!(matches!(refused, Err(WalletError::DoubleTransfer { proof: None, .. })), "{refused:?}");
    assert_eq!(carol.instrument(&id).unwrap(), before, "nothing changed");
    let upload = carol.reconcile_upload().unwrap();
    assert_eq!(upload.items, vec![UploadItem::Chain(back), UploadItem::Chain(fork.clone())]);
    // The registry compares the kept fork with its registered link.
    let proof = EquivocationProof::find(&to_carol, &fork).unwrap();
    assert_eq!((proof.signer, proof.sequence()), (mk, 1), "Mallory signed sequence 1 twice");
}

/// Found by the adversarial model (100,000 cases, case ~97,260): Hana
/// passes her ticket to Mallory, who passes it to Wes and signs sequence 2
/// again, to Hana. Hana takes that fork in good faith (she had passed on
/// only sequence 1) and passes it on. Wes registers his branch and sells
/// the ticket to Hana: an honest transfer at the same sequence as her
/// passed-on copy of the other branch, which the import refused as stale.
/// Wes's certificate shows Hana's copy is off the registered branch: she
/// takes his chain and keeps hers for the registry, which proves Mallory's
/// fork with it.
#[test]
fn a_registered_branch_reaching_a_wallet_that_passed_a_fork_on_is_taken() {
    let world = World::new();
    let [mut hana, mut mallory, mut wes]: [Wallet<SqliteStore>; 3] = std::array::from_fn(|_| world.wallet());
    let hk = hana.new_holder_key().unwrap();
    let id = hana.import_instrument(world.ticket(hk)).unwrap().id;
    let mk = mallory.new_holder_key().unwrap();
    mallory.import_instrument(hana.endorse(&id, mk, ExchangeId([1; 16]), ExchangeId::NONE).unwrap()).unwrap();
    hana.confirm_transferred(&id).unwrap();
    let at_mallory = mallory.instrument(&id).unwrap().instrument;
    let to_wes = mallory.endorse(&id, wes.new_holder_key().unwrap(), ExchangeId([2; 16]), ExchangeId::NONE).unwrap();
    wes.import_instrument(to_wes.clone()).unwrap();
    let body = at_mallory.next_endorsement(hana.new_holder_key().unwrap(), ExchangeId([3; 16]), ExchangeId::NONE, NOW);
    hana.import_instrument(at_mallory.with_link(Signed::sign(body, &mallory.signer(&mk).unwrap()).unwrap())).unwrap();
    let passed_on =
        hana.endorse(&id, mallory.new_holder_key().unwrap(), ExchangeId([4; 16]), ExchangeId::NONE).unwrap();
    hana.confirm_transferred(&id).unwrap();
    assert_eq!(wes.apply_reconcile(vec![world.certify(&to_wes)]).unwrap().certified, vec![id]);

    let bought = wes.endorse(&id, hana.new_holder_key().unwrap(), ExchangeId([5; 16]), ExchangeId::NONE).unwrap();
    assert_eq!(bought.sequence(), passed_on.sequence(), "level with her passed-on copy");
    hana.import_instrument(bought.clone()).unwrap();
    let held = hana.instrument(&id).unwrap();
    assert_eq!((held.instrument, held.holding), (bought.clone(), Holding::Held));
    let upload = hana.reconcile_upload().unwrap();
    assert_eq!(upload.items, vec![UploadItem::Chain(bought), UploadItem::Chain(passed_on.clone())]);
    // The registry compares the kept copy with its registered links.
    let proof = EquivocationProof::find(&to_wes, &passed_on).unwrap();
    assert_eq!((proof.signer, proof.sequence()), (mk, 2), "Mallory signed sequence 2 twice");
}

/// Found by `registry/tests/crash.rs`: after a refund the registry's
/// certificate for the ticket the wallet gave back says `refunded`, which
/// the verifier refuses — and that used to fail the whole sync, every time.
#[test]
fn a_certificate_for_an_instrument_given_back_and_refunded_marks_it_gone() {
    let world = World::new();
    let mut alice = world.wallet();
    let ak = alice.new_holder_key().unwrap();
    let id = alice.import_instrument(world.ticket(ak)).unwrap().id;
    // Alice gives the ticket back to the issuer (a refund) and waits.
    let back = alice.endorse(&id, world.issuer.public_key(), ExchangeId::NONE, ExchangeId::NONE).unwrap();
    let empty = DenyList::empty();
    let verified = Verifier::new(&world.trust, &empty).verify(&back, NOW).unwrap();
    let refunded = crate::InstrumentState { uses_left: 1, status: crate::Status::Refunded };
    let certified = world.registry.register(&back, &verified, refunded, NOW).unwrap();
    assert!(Verifier::new(&world.trust, &empty).verify(&certified, NOW).is_err(), "a refunded ticket is void");

    let report = alice.apply_reconcile(vec![ItemOutcome::Registered(certified.clone())]).unwrap();
    assert_eq!(report.gone, vec![id]);
    assert_eq!(alice.instrument(&id).unwrap().holding, Holding::Gone);
    // Again: nothing changes, nothing fails.
    assert_eq!(alice.apply_reconcile(vec![ItemOutcome::Registered(certified)]).unwrap(), Default::default());
}
