//! The verifier: one routine that wallets, gates and the registry all use to
//! decide whether an instrument is valid for a holder at a time.
//!
//! An instrument is valid for holder H when the genesis verifies under a
//! certified issuer; a registered certificate, if present, verifies under
//! the registry and matches the genesis; each link is signed by the holder
//! before it, has sequence previous + 1 and names the previous digest; the
//! tip key is H; and it is neither expired, revoked, used up nor denied.
//! Possession (H signing a fresh challenge) is checked by the protocol that
//! issued the challenge, with [`verify_possession`].

use crate::clock::Timestamp;
use crate::crypto::{Context, Digest, PublicKey, Signature};
use crate::ids::InstrumentId;
use crate::instrument::{Attributes, Instrument, InstrumentState, Kind, Signed, SignedBody, Status, is_denomination};
use crate::trust::{DenyList, Role, TrustList};

/// Longest chain accepted after the genesis or the last registered
/// certificate. Policy bounds offline risk; this bounds work per check.
pub const MAX_LINKS: usize = 64;

/// Why an instrument was refused. Link numbers count from 1 after the
/// genesis or certificate, in the order carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The issuer key is not certified as an issuer.
    #[error("issuer {0} is not in the trust list")]
    UnknownIssuer(PublicKey),
    /// The issuer's signature over the genesis does not verify.
    #[error("the issuer's signature does not verify")]
    BadGenesisSignature,
    /// The registered certificate is not signed by the trusted registry.
    #[error("the registered certificate is not signed by the registry")]
    BadCertificateSignature,
    /// The registered certificate belongs to another instrument or genesis.
    #[error("the registered certificate does not match this instrument")]
    CertificateMismatch,
    /// A link's signature does not verify under the previous holder key.
    #[error("the signature of link {link} does not verify under the previous holder's key")]
    BadSignature {
        /// The link.
        link: usize,
    },
    /// A link's sequence is not the previous one plus one.
    #[error("link {link} has sequence {found}, expected {expected}")]
    SequenceGap {
        /// The link.
        link: usize,
        /// The sequence it should have.
        expected: u32,
        /// The sequence it has.
        found: u32,
    },
    /// A link follows sequence `u32::MAX`, where numbering ends.
    #[error("link {link} follows the last possible sequence number")]
    SequenceExhausted {
        /// The link.
        link: usize,
    },
    /// A link names the wrong previous digest.
    #[error("link {link} does not follow from the link before it")]
    BrokenPreviousDigest {
        /// The link.
        link: usize,
    },
    /// A link belongs to another instrument.
    #[error("link {link} endorses another instrument")]
    WrongInstrument {
        /// The link.
        link: usize,
    },
    /// More links than [`MAX_LINKS`].
    #[error("the chain has {0} links, over the limit of {MAX_LINKS}")]
    TooManyLinks(usize),
    /// A non-transferable instrument was passed to someone other than a
    /// certified issuer or merchant.
    #[error("this instrument is not transferable")]
    NotTransferable,
    /// A note whose value is not an allowed denomination.
    #[error("a note of {0} minor units is not an allowed denomination")]
    InvalidDenomination(u64),
    /// The attributes contradict themselves (ends before it starts, zero uses).
    #[error("the attributes are inconsistent: {0}")]
    InvalidAttributes(&'static str),
    /// Before its validity window.
    #[error("not valid before {valid_from}")]
    NotYetValid {
        /// The start of the window.
        valid_from: Timestamp,
    },
    /// After its validity window.
    #[error("expired at {valid_until}")]
    Expired {
        /// The end of the window.
        valid_until: Timestamp,
    },
    /// Revoked by the registry.
    #[error("revoked")]
    Revoked,
    /// Refunded: the money went back, the instrument is void.
    #[error("refunded")]
    Refunded,
    /// Printed on paper: the electronic form is void.
    #[error("dispensed as a paper ticket")]
    Dispensed,
    /// Replaced by a modified instrument.
    #[error("replaced by a modified instrument")]
    Modified,
    /// No uses left.
    #[error("no uses left")]
    UsedUp,
    /// On the deny list.
    #[error("on the deny list")]
    Denied,
    /// The tip key is not the expected holder.
    #[error("held by {found}, not by {expected}")]
    WrongHolder {
        /// The holder the caller expected.
        expected: PublicKey,
        /// The chain's tip.
        found: PublicKey,
    },
}

/// What the verifier established about a valid instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedInstrument {
    /// The instrument.
    pub id: InstrumentId,
    /// Its kind.
    pub kind: Kind,
    /// The current holder key.
    pub holder: PublicKey,
    /// Sequence of the tip.
    pub sequence: u32,
    /// Digest of the tip.
    pub tip: Digest,
    /// State as last registered (or as issued).
    pub state: InstrumentState,
}

/// Signed parts of one instrument that the caller verified before, with
/// this verifier, and kept byte for byte: in the registry, the genesis and
/// the endorsements it stored (each verified before it was stored, or
/// signed by the registry itself). [`Verifier::verify_from`] and
/// [`Verifier::verify_batch_from`] do not check their signatures again;
/// every other check runs as in [`Verifier::verify`].
///
/// A part is named by its digest ([`Signed::digest`]), which covers the
/// canonical encoding of the body *and* the signature: an uploaded part
/// with the same digest is the same signed bytes, so its signature is the
/// one that verified (SHA-256 collision resistance). A signature's
/// validity depends on nothing else than the key, the bytes and the
/// signature, so the earlier answer stands — under the same key: a
/// genesis names its issuer key in its body, and a link is known together
/// with the key its signature verified under, which must be the holder
/// key the uploaded chain names for it, or the signature is checked.
///
/// The caller vouches for this: a digest it did not verify (or sign) must
/// never be put here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedPrefix {
    /// Digest of a genesis whose issuer signature verified.
    pub genesis: Option<Digest>,
    /// Links whose signature verified, in increasing sequence order.
    pub links: Vec<VerifiedLink>,
}

/// One link of a [`VerifiedPrefix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedLink {
    /// Its sequence.
    pub sequence: u32,
    /// Its digest ([`Signed::digest`]).
    pub digest: Digest,
    /// The key its signature verified under.
    pub signer: PublicKey,
}

impl VerifiedPrefix {
    /// Nothing verified before: every signature is checked.
    pub const NONE: Self = Self { genesis: None, links: Vec::new() };

    fn knows_genesis(&self, digest: &Digest) -> bool {
        self.genesis.as_ref() == Some(digest)
    }

    fn knows_link(&self, sequence: u32, digest: &Digest, signer: &PublicKey) -> bool {
        self.links
            .binary_search_by_key(&sequence, |l| l.sequence)
            .ok()
            .and_then(|i| self.links.get(i))
            .is_some_and(|l| l.digest == *digest && l.signer == *signer)
    }
}

/// Checks instruments against one trust list and deny list.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    trust: &'a TrustList,
    deny: &'a DenyList,
}

impl<'a> Verifier<'a> {
    /// A verifier for `trust` and `deny`.
    pub fn new(trust: &'a TrustList, deny: &'a DenyList) -> Self {
        Self { trust, deny }
    }

    /// Checks everything but the holder.
    pub fn verify(&self, instrument: &Instrument, now: Timestamp) -> Result<VerifiedInstrument, Rejection> {
        self.check(instrument, &VerifiedPrefix::NONE, now, &mut CheckNow)
    }

    /// [`Verifier::verify`], without checking again the signatures of the
    /// parts `known` names (see [`VerifiedPrefix`]). For a `known` that
    /// holds only parts that verified, the answer is the one `verify` gives.
    pub fn verify_from(
        &self,
        instrument: &Instrument,
        known: &VerifiedPrefix,
        now: Timestamp,
    ) -> Result<VerifiedInstrument, Rejection> {
        self.check(instrument, known, now, &mut CheckNow)
    }

    /// [`Verifier::verify`] for many instruments at once, with the same
    /// answer for each: the structure of every instrument is checked first
    /// while its signatures are set aside, then the signatures are checked
    /// together with Ed25519 batch verification, spread over every core.
    /// A batch that fails is checked again one instrument at a time, so a
    /// bad signature still gets its own typed [`Rejection`], and so does any
    /// instrument the structural pass refused.
    ///
    /// Batch verification answers a different equation than the strict
    /// single check, so every set-aside signature first passes the checks
    /// `verify_strict` makes besides its equation (a valid key that is not
    /// of small order; a canonically encoded `R` that is not of small
    /// order) — one that does not is checked on its own. What remains is
    /// a signature with a mixed-order `R` or key: only the key's owner can
    /// make one, and no honest signer does.
    pub fn verify_batch(
        &self,
        instruments: &[Instrument],
        now: Timestamp,
    ) -> Vec<Result<VerifiedInstrument, Rejection>> {
        self.verify_batch_from(instruments, &[], now)
    }

    /// [`Verifier::verify_batch`] with, for the instrument at each index,
    /// the parts already verified at the same index of `known` (see
    /// [`VerifiedPrefix`]; missing entries are [`VerifiedPrefix::NONE`]).
    /// The answer for each is the one [`Verifier::verify_from`] gives.
    pub fn verify_batch_from(
        &self,
        instruments: &[Instrument],
        known: &[VerifiedPrefix],
        now: Timestamp,
    ) -> Vec<Result<VerifiedInstrument, Rejection>> {
        static NONE: VerifiedPrefix = VerifiedPrefix::NONE;
        let items: Vec<(&Instrument, &VerifiedPrefix)> =
            instruments.iter().enumerate().map(|(i, inst)| (inst, known.get(i).unwrap_or(&NONE))).collect();
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        if threads < 2 || items.len() < PARALLEL_FROM {
            return self.verify_batch_here(&items, now);
        }
        let chunk = items.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = items
                .chunks(chunk)
                .map(|part| (part, scope.spawn(move || self.verify_batch_here(part, now))))
                .collect();
            parts
                .into_iter()
                .flat_map(|(part, handle)| {
                    // A panicking thread is a bug; its instruments are
                    // still answered, one by one, here.
                    handle.join().unwrap_or_else(|_| part.iter().map(|(i, k)| self.verify_from(i, k, now)).collect())
                })
                .collect()
        })
    }

    /// The batch path on the current thread.
    fn verify_batch_here(
        &self,
        items: &[(&Instrument, &VerifiedPrefix)],
        now: Timestamp,
    ) -> Vec<Result<VerifiedInstrument, Rejection>> {
        let mut out = Vec::with_capacity(items.len());
        for group in items.chunks(BATCH_INSTRUMENTS) {
            let mut deferred = Deferred::default();
            // Instruments whose structure passed, with the range of their
            // signatures in `deferred` (consecutive, in order).
            let mut batched: Vec<(usize, VerifiedInstrument, std::ops::Range<usize>)> = Vec::new();
            let mut verdicts: Vec<Option<Result<VerifiedInstrument, Rejection>>> = vec![None; group.len()];
            for (index, (instrument, known)) in group.iter().enumerate() {
                let mark = deferred.len();
                deferred.unfit = false;
                match self.check(instrument, known, now, &mut deferred) {
                    Ok(v) if !deferred.unfit => batched.push((index, v, mark..deferred.len())),
                    // A structural rejection or a signature unfit for the
                    // batch: the single path names the exact rejection.
                    _ => {
                        deferred.truncate(mark);
                        verdicts[index] = Some(self.verify_from(instrument, known, now));
                    }
                }
            }
            self.settle(group, &deferred, &mut batched, &mut verdicts, now);
            out.extend(
                verdicts.into_iter().zip(group).map(|(v, (i, k))| v.unwrap_or_else(|| self.verify_from(i, k, now))),
            );
        }
        out
    }

    /// Batch-checks the signatures of `batched`; when the batch fails,
    /// halves it until the bad signatures are found, and checks those
    /// instruments one by one.
    fn settle(
        &self,
        group: &[(&Instrument, &VerifiedPrefix)],
        deferred: &Deferred,
        batched: &mut [(usize, VerifiedInstrument, std::ops::Range<usize>)],
        verdicts: &mut [Option<Result<VerifiedInstrument, Rejection>>],
        now: Timestamp,
    ) {
        let (Some(first), Some(last)) = (batched.first(), batched.last()) else {
            return;
        };
        if deferred.verify(first.2.start..last.2.end) {
            for (index, verified, _) in batched.iter() {
                verdicts[*index] = Some(Ok(verified.clone()));
            }
        } else if batched.len() == 1 {
            let (instrument, known) = group[first.0];
            verdicts[first.0] = Some(self.verify_from(instrument, known, now));
        } else {
            let (left, right) = batched.split_at_mut(batched.len() / 2);
            self.settle(group, deferred, left, verdicts, now);
            self.settle(group, deferred, right, verdicts, now);
        }
    }

    fn check(
        &self,
        instrument: &Instrument,
        known: &VerifiedPrefix,
        now: Timestamp,
        signatures: &mut impl SignatureCheck,
    ) -> Result<VerifiedInstrument, Rejection> {
        let verified = self.chain(instrument, known, now, signatures)?;
        self.usable(instrument, verified, now)
    }

    /// Checks the signatures and the structure of a chain (and of its
    /// registered certificate) but not whether it is usable now: a
    /// refunded, revoked, denied, expired or used-up instrument passes, with
    /// its state. What a wallet needs to learn from the registry's
    /// certificate that an instrument it gave back was refunded; never
    /// enough to admit or accept one.
    pub fn verify_chain(&self, instrument: &Instrument, now: Timestamp) -> Result<VerifiedInstrument, Rejection> {
        self.chain(instrument, &VerifiedPrefix::NONE, now, &mut CheckNow)
    }

    fn chain(
        &self,
        instrument: &Instrument,
        known: &VerifiedPrefix,
        now: Timestamp,
        signatures: &mut impl SignatureCheck,
    ) -> Result<VerifiedInstrument, Rejection> {
        let genesis = &instrument.genesis.body;
        let id = genesis.instrument_id;
        if instrument.links.len() > MAX_LINKS {
            return Err(Rejection::TooManyLinks(instrument.links.len()));
        }
        if !self.trust.certifies(&genesis.issuer, Role::Issuer, now) {
            return Err(Rejection::UnknownIssuer(genesis.issuer));
        }
        let genesis_digest = instrument.genesis.digest();
        if !known.knows_genesis(&genesis_digest) && !signatures.check(&genesis.issuer, &instrument.genesis) {
            return Err(Rejection::BadGenesisSignature);
        }
        check_attributes(&genesis.attributes)?;

        let mut state = InstrumentState { uses_left: genesis.attributes.uses(), status: Status::Active };
        let (mut holder, mut sequence, mut tip) = (genesis.holder, 0u32, genesis_digest);
        if let Some(cert) = &instrument.registered {
            if !signatures.check(&self.trust.registry(), cert) {
                return Err(Rejection::BadCertificateSignature);
            }
            let c = &cert.body;
            if c.instrument_id != id || c.genesis != genesis_digest || (c.sequence == 0 && c.replaces != genesis_digest)
            {
                return Err(Rejection::CertificateMismatch);
            }
            (holder, sequence, tip, state) = (c.holder, c.sequence, c.replaces, c.state);
        }

        let transferable = genesis.attributes.transferable();
        for (index, link) in instrument.links.iter().enumerate() {
            let n = index + 1;
            let e = &link.body;
            if e.instrument_id != id {
                return Err(Rejection::WrongInstrument { link: n });
            }
            // Checked, not saturating: past u32::MAX a link would repeat the
            // sequence number that names it in equivocation proofs.
            let Some(expected) = sequence.checked_add(1) else {
                return Err(Rejection::SequenceExhausted { link: n });
            };
            if e.sequence != expected {
                return Err(Rejection::SequenceGap { link: n, expected, found: e.sequence });
            }
            if e.previous != tip {
                return Err(Rejection::BrokenPreviousDigest { link: n });
            }
            let digest = link.digest();
            if !known.knows_link(e.sequence, &digest, &holder) && !signatures.check(&holder, link) {
                return Err(Rejection::BadSignature { link: n });
            }
            if !transferable
                && !self.trust.certifies(&e.new_holder, Role::Issuer, now)
                && !self.trust.certifies(&e.new_holder, Role::Merchant, now)
            {
                return Err(Rejection::NotTransferable);
            }
            holder = e.new_holder;
            sequence = e.sequence;
            tip = digest;
        }

        Ok(VerifiedInstrument { id, kind: genesis.attributes.kind(), holder, sequence, tip, state })
    }

    /// Whether a chain that verified is usable now: its status, the deny
    /// list, its validity window and its uses left.
    fn usable(
        &self,
        instrument: &Instrument,
        verified: VerifiedInstrument,
        now: Timestamp,
    ) -> Result<VerifiedInstrument, Rejection> {
        let genesis = &instrument.genesis.body;
        let (id, state) = (verified.id, verified.state);
        match state.status {
            Status::Active => {}
            Status::Revoked => return Err(Rejection::Revoked),
            Status::Refunded => return Err(Rejection::Refunded),
            Status::Dispensed => return Err(Rejection::Dispensed),
            Status::Modified => return Err(Rejection::Modified),
        }
        if self.deny.denies(&id) {
            return Err(Rejection::Denied);
        }
        let (valid_from, valid_until) = genesis.attributes.validity();
        if now < valid_from {
            return Err(Rejection::NotYetValid { valid_from });
        }
        if now > valid_until {
            return Err(Rejection::Expired { valid_until });
        }
        if state.uses_left == 0 {
            return Err(Rejection::UsedUp);
        }
        Ok(verified)
    }

    /// Checks everything, and that `holder` is the tip key.
    pub fn verify_for_holder(
        &self,
        instrument: &Instrument,
        holder: &PublicKey,
        now: Timestamp,
    ) -> Result<VerifiedInstrument, Rejection> {
        let verified = self.verify(instrument, now)?;
        if verified.holder != *holder {
            return Err(Rejection::WrongHolder { expected: *holder, found: verified.holder });
        }
        Ok(verified)
    }
}

/// Instruments whose signatures are checked in one batch equation. From
/// about 190 points (a signature adds two) the multiscalar multiplication
/// switches from Straus to Pippenger, whose cost per point keeps falling
/// as the batch grows (wider windows). On the 2-core CI machine a signature
/// cost 15-16 µs in batches of 256 against 17-24 µs in batches of 64; and
/// for the 500 signatures each of two threads gets from a 1,000-chain
/// ingest batch, the bare equation took 13.1 µs a signature as one batch
/// against 13.9 µs as 256 + 244 and 14.9 µs in batches of 128 (medians of
/// 15 alternated rounds in one process, keys decoded beforehand). A failed
/// batch is halved until the bad signatures are found, so one bad
/// signature costs about two batches more.
pub const BATCH_INSTRUMENTS: usize = 512;

/// From this many instruments [`Verifier::verify_batch_from`] spreads the
/// work over every core (each part still batched up to
/// [`BATCH_INSTRUMENTS`]).
const PARALLEL_FROM: usize = 128;

/// How the structural pass has a signature checked.
trait SignatureCheck {
    /// `false` when `signed` is known not to verify under `key`.
    fn check<T: SignedBody>(&mut self, key: &PublicKey, signed: &Signed<T>) -> bool;
}

/// Checks each signature at once, strictly.
struct CheckNow;

impl SignatureCheck for CheckNow {
    fn check<T: SignedBody>(&mut self, key: &PublicKey, signed: &Signed<T>) -> bool {
        signed.verify(key).is_ok()
    }
}

/// Sets signatures aside for batch checks.
#[derive(Default)]
struct Deferred {
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
    /// A signature of the current instrument failed the strict pre-checks.
    unfit: bool,
}

impl Deferred {
    fn len(&self) -> usize {
        self.messages.len()
    }

    fn truncate(&mut self, len: usize) {
        self.messages.truncate(len);
        self.signatures.truncate(len);
        self.keys.truncate(len);
    }

    /// One batch equation over the signatures in `range`.
    fn verify(&self, range: std::ops::Range<usize>) -> bool {
        let (Some(messages), Some(signatures), Some(keys)) =
            (self.messages.get(range.clone()), self.signatures.get(range.clone()), self.keys.get(range))
        else {
            return false;
        };
        if messages.is_empty() {
            return true;
        }
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&messages, signatures, keys).is_ok()
    }
}

impl SignatureCheck for Deferred {
    fn check<T: SignedBody>(&mut self, key: &PublicKey, signed: &Signed<T>) -> bool {
        match strict_prechecks(key, &signed.signature) {
            Some(verifying_key) => {
                self.messages.push(T::CONTEXT.signed_bytes(&crate::codec::to_vec(&signed.body)));
                self.signatures.push(ed25519_dalek::Signature::from_bytes(&signed.signature.0));
                self.keys.push(verifying_key);
            }
            // Not rejected here: the single check decides, so the rejection
            // named is the one `verify` names.
            None => self.unfit = true,
        }
        true
    }
}

/// What `verify_strict` requires besides its equation: a key that decodes
/// and is not of small order, and an `R` that decodes canonically and is
/// not of small order. Returns the key when all hold.
fn strict_prechecks(key: &PublicKey, signature: &Signature) -> Option<ed25519_dalek::VerifyingKey> {
    let verifying_key = ed25519_dalek::VerifyingKey::from_bytes(&key.0).ok()?;
    if verifying_key.is_weak() {
        return None;
    }
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature.0[..32]);
    // `verify_strict` compares R byte for byte with a canonical encoding,
    // so an R whose y is not below p = 2^255 - 19 never verifies.
    let y_not_canonical = r[31] & 0x7f == 0x7f && r[1..31].iter().all(|b| *b == 0xff) && r[0] >= 0xed;
    // Small order is read off the encoding instead of decompressing R (a
    // field exponentiation per signature): with y canonical, R is of small
    // order exactly when y is one of SMALL_ORDER_Y, whatever the sign bit.
    // An R that is not on the curve at all passes here and fails the batch
    // equation, whose failure sends the instrument to the single check.
    r[31] &= 0x7f;
    if y_not_canonical || SMALL_ORDER_Y.contains(&r) {
        return None;
    }
    Some(verifying_key)
}

/// The y coordinates (little-endian, sign bit clear) of the 8 points of
/// small order: 1 (the identity), p − 1 (order 2), 0 (order 4, two points)
/// and the two order-8 values (two points each). The test
/// `small_order_encodings_are_exactly_the_eight_torsion_points` checks the
/// list against the curve.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [0; 32],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
];

/// Longest text attribute, in bytes: keeps every genesis within its own
/// wire bound (4 KiB) and gate screens readable.
pub const MAX_TEXT_LEN: usize = 256;

fn check_attributes(attributes: &Attributes) -> Result<(), Rejection> {
    if attributes.texts().any(|t| t.len() > MAX_TEXT_LEN) {
        return Err(Rejection::InvalidAttributes("a text attribute is longer than 256 bytes"));
    }
    match attributes {
        Attributes::Note(n) if !is_denomination(n.amount.minor) => Err(Rejection::InvalidDenomination(n.amount.minor)),
        Attributes::Note(n) if n.amount.currency.len() != 3 => {
            Err(Rejection::InvalidAttributes("currency must be 3 letters"))
        }
        Attributes::Ticket(t) if t.uses == 0 => Err(Rejection::InvalidAttributes("a ticket needs at least one use")),
        Attributes::Coupon(c) if c.uses == 0 => Err(Rejection::InvalidAttributes("a coupon needs at least one use")),
        _ => {
            let (from, until) = attributes.validity();
            if until < from {
                return Err(Rejection::InvalidAttributes("validity ends before it starts"));
            }
            Ok(())
        }
    }
}

/// Checks that `holder` signed `challenge` under `context`: possession of
/// the key, so a copied chain is worthless without it.
pub fn verify_possession(holder: &PublicKey, context: Context, challenge: &[u8], signature: &Signature) -> bool {
    holder.verify(context, challenge, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::{Issuer, RegistryAuthority};
    use crate::crypto::LocalSigner;
    use crate::instrument::CouponAttributes;
    use crate::trust::{TrustEntry, TrustError};

    #[test]
    fn overlong_text_attributes_are_rejected() {
        let issuer = Issuer::new(LocalSigner::from_seed(&[1; 32]));
        let sp = RegistryAuthority::new(LocalSigner::from_seed(&[2; 32]));
        let entry = TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "i".into(), not_after: 100 };
        let trust = TrustList::verify(sp.trust_list(1, vec![entry], 0).expect("signs"), &sp.public_key()).expect("ok");
        let coupon = |title: String| {
            Attributes::Coupon(CouponAttributes {
                program: "p".into(),
                title,
                uses: 1,
                valid_from: 0,
                valid_until: 100,
                transferable: true,
            })
        };
        let deny = DenyList::empty();
        let verifier = Verifier::new(&trust, &deny);
        let holder = PublicKey([9; 32]);
        let fits = issuer.issue_with_id(InstrumentId([1; 16]), coupon("x".repeat(256)), holder, 0).expect("signs");
        assert!(verifier.verify(&fits, 1).is_ok());
        let long = issuer.issue_with_id(InstrumentId([1; 16]), coupon("x".repeat(257)), holder, 0).expect("signs");
        assert!(matches!(verifier.verify(&long, 1), Err(Rejection::InvalidAttributes(_))));
    }

    #[test]
    fn small_order_encodings_are_exactly_the_eight_torsion_points() {
        use crate::crypto::Signer as _;
        // Each listed y, with either sign bit, decodes to a point of small
        // order; together they are 8 distinct points, the whole 8-torsion
        // subgroup, so no other encoding is of small order.
        let mut points = std::collections::BTreeSet::new();
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut bytes = y;
                bytes[31] |= sign;
                let point = ed25519_dalek::VerifyingKey::from_bytes(&bytes).expect("on the curve");
                assert!(point.is_weak(), "{bytes:?}");
                // The canonical encoding names the point (x = 0 has one).
                points.insert(point.to_edwards().compress().to_bytes());
            }
        }
        assert_eq!(points.len(), 8);
        // And the precheck refuses exactly these as R (and any y >= p).
        let key = LocalSigner::from_seed(&[3; 32]).public_key();
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&y);
                sig[31] |= sign;
                assert!(strict_prechecks(&key, &Signature(sig)).is_none());
            }
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&LocalSigner::from_seed(&[4; 32]).public_key().0);
        assert!(strict_prechecks(&key, &Signature(sig)).is_some(), "a point of large order passes");
    }

    #[test]
    fn a_key_listed_twice_is_refused() {
        let sp = RegistryAuthority::new(LocalSigner::from_seed(&[2; 32]));
        let key = PublicKey([3; 32]);
        let e = |role| TrustEntry { key, role, name: "k".into(), not_after: 100 };
        let list = sp.trust_list(1, vec![e(Role::Gate), e(Role::Issuer)], 0).expect("signs");
        assert_eq!(TrustList::verify(list, &sp.public_key()), Err(TrustError::DuplicateKey(key)));
    }

    #[test]
    fn batch_verification_answers_exactly_as_single_verification() {
        use crate::crypto::Signer as _;
        use crate::ids::ExchangeId;
        let issuer = Issuer::new(LocalSigner::from_seed(&[1; 32]));
        let stranger = Issuer::new(LocalSigner::from_seed(&[4; 32]));
        let sp = RegistryAuthority::new(LocalSigner::from_seed(&[2; 32]));
        let entry = TrustEntry { key: issuer.public_key(), role: Role::Issuer, name: "i".into(), not_after: 100 };
        let trust = TrustList::verify(sp.trust_list(1, vec![entry], 0).expect("signs"), &sp.public_key()).expect("ok");
        let deny = DenyList::empty();
        let verifier = Verifier::new(&trust, &deny);
        let coupon = Attributes::Coupon(CouponAttributes {
            program: "p".into(),
            title: "t".into(),
            uses: 1,
            valid_from: 0,
            valid_until: 100,
            transferable: true,
        });
        let mut chains = Vec::new();
        let mut honest = Vec::new();
        for n in 0..300u32 {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            let holder = LocalSigner::from_seed(&seed);
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_le_bytes());
            let who = if n == 77 { &stranger } else { &issuer };
            let t = who.issue_with_id(InstrumentId(id), coupon.clone(), holder.public_key(), 1).expect("signs");
            let body = t.next_endorsement(PublicKey([n as u8; 32]), ExchangeId::NONE, ExchangeId::NONE, 2);
            let mut chain = t.with_link(Signed::sign(body, &holder).expect("signs"));
            honest.push(chain.clone());
            match n {
                // A bad link signature, a bad genesis signature.
                3 | 150 => chain.links[0].signature.0[40] ^= 1,
                5 => chain.genesis.signature.0[50] ^= 1,
                // An R of small order (the identity), and a non-canonical R.
                9 => {
                    chain.links[0].signature.0[..32].copy_from_slice(&[0; 32]);
                    chain.links[0].signature.0[0] = 1;
                }
                200 => {
                    chain.links[0].signature.0[..32].fill(0xff);
                    chain.links[0].signature.0[31] = 0x7f;
                }
                // A structural fault after a good signature.
                250 => chain.links[0].body.sequence = 5,
                _ => {}
            }
            chains.push(chain);
        }
        let batch = verifier.verify_batch(&chains, 10);
        let single: Vec<_> = chains.iter().map(|c| verifier.verify(c, 10)).collect();
        assert_eq!(batch, single);
        assert_eq!(single.iter().filter(|r| r.is_err()).count(), 7);
        assert!(matches!(single[3], Err(Rejection::BadSignature { link: 1 })));
        assert!(matches!(single[5], Err(Rejection::BadGenesisSignature)));
        assert!(matches!(single[77], Err(Rejection::UnknownIssuer(_))));
        // Small inputs take the one-thread path.
        assert_eq!(verifier.verify_batch(&chains[..10], 10), single[..10].to_vec());
        assert!(verifier.verify_batch(&[], 10).is_empty());

        // From parts verified before (the honest genesis and link of each
        // chain, as a registry stores them): the same answers, faults in
        // the uploaded parts included, since a changed part has another
        // digest. A link known under another key is checked again.
        let known: Vec<VerifiedPrefix> = honest
            .iter()
            .enumerate()
            .map(|(n, h)| {
                let link = VerifiedLink {
                    sequence: 1,
                    digest: h.links[0].digest(),
                    signer: if n % 7 == 3 { PublicKey([1; 32]) } else { h.genesis.body.holder },
                };
                match n % 3 {
                    0 => VerifiedPrefix { genesis: Some(h.genesis.digest()), links: vec![link] },
                    1 => VerifiedPrefix { genesis: Some(h.genesis.digest()), links: vec![] },
                    _ => VerifiedPrefix { genesis: None, links: vec![link] },
                }
            })
            .collect();
        assert_eq!(verifier.verify_batch_from(&chains, &known, 10), single);
        assert_eq!(verifier.verify_batch_from(&chains[..10], &known[..10], 10), single[..10].to_vec());
        let one_by_one: Vec<_> = chains.iter().zip(&known).map(|(c, k)| verifier.verify_from(c, k, 10)).collect();
        assert_eq!(one_by_one, single);
        // A missing entry checks everything.
        assert_eq!(verifier.verify_batch_from(&chains, &known[..100], 10), single);

        // The signatures of known parts are not checked again: known as
        // verified, a bad signature passes. This is why only parts that
        // verified may be named.
        let lie = |c: &Instrument| VerifiedPrefix {
            genesis: Some(c.genesis.digest()),
            links: vec![VerifiedLink { sequence: 1, digest: c.links[0].digest(), signer: c.genesis.body.holder }],
        };
        for n in [3, 150] {
            assert_eq!(verifier.verify_from(&chains[n], &lie(&chains[n]), 10).map(|_| ()), Ok(()), "{n}");
            let batch = verifier.verify_batch_from(&chains[n..=n], &[lie(&chains[n])], 10);
            assert!(batch[0].is_ok());
        }
        // A bad genesis known as verified passes its signature check, and
        // the link naming the honest genesis then does not follow from it.
        assert_eq!(
            verifier.verify_from(&chains[5], &lie(&chains[5]), 10),
            Err(Rejection::BrokenPreviousDigest { link: 1 })
        );
        // Structure is still checked for known parts.
        assert_eq!(verifier.verify_from(&chains[250], &lie(&chains[250]), 10), single[250]);
    }
}
