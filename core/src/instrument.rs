//! Instruments: tickets, e-money notes and coupons are one kind of object,
//! so one transfer protocol, one verifier and one reconciler serve them all.
//!
//! ```text
//! Signed<Genesis>                     issuer-signed, sequence 0
//!   [Signed<RegisteredCertificate>]   optional, registry-signed, sequence r
//!   Signed<Endorsement> × n           holder-signed, sequences r+1 … r+n
//! ```
//! Each endorsement names the digest of the link before it: the genesis, the
//! previous endorsement, or, after a registered certificate, the digest of
//! the link that certificate replaced (`RegisteredCertificate::replaces`).

use crate::clock::Timestamp;
use crate::codec::{Wire, to_vec};
use crate::crypto::{Context, Digest, PublicKey, Signature, SignatureError, Signer, SignerError};
use crate::ids::{ExchangeId, InstrumentId};
use minicbor::{Decode, Encode};

/// A structure that is signed on its own under one context.
pub trait SignedBody: Encode<()> + for<'b> Decode<'b, ()> {
    /// The context its signature covers.
    const CONTEXT: Context;
}

/// A body with the signature over its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// What was signed.
    pub body: T,
    /// The signature over `body` under `T::CONTEXT`.
    pub signature: Signature,
}

impl<T: SignedBody> Signed<T> {
    /// Signs `body`.
    pub fn sign(body: T, signer: &impl Signer) -> Result<Self, SignerError> {
        let signature = signer.sign(T::CONTEXT, &to_vec(&body))?;
        Ok(Self { body, signature })
    }
    /// Checks the signature under `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), SignatureError> {
        key.verify(T::CONTEXT, &to_vec(&self.body), &self.signature)
    }
    /// The digest that the next link (or a certificate) refers to.
    pub fn digest(&self) -> Digest {
        Digest::of(&to_vec(self))
    }
}

impl<C, T: Encode<C>> Encode<C> for Signed<T> {
    fn encode<W: minicbor::encode::Write>(
        &self,
        e: &mut minicbor::Encoder<W>,
        ctx: &mut C,
    ) -> Result<(), minicbor::encode::Error<W::Error>> {
        e.array(2)?;
        self.body.encode(e, ctx)?;
        self.signature.encode(e, ctx)
    }
}

impl<'b, C, T: Decode<'b, C>> Decode<'b, C> for Signed<T> {
    fn decode(d: &mut minicbor::Decoder<'b>, ctx: &mut C) -> Result<Self, minicbor::decode::Error> {
        if d.array()? != Some(2) {
            return Err(minicbor::decode::Error::message("a signed structure is a 2-element array"));
        }
        let body = T::decode(d, ctx)?;
        let signature = Signature::decode(d, ctx)?;
        Ok(Self { body, signature })
    }
}

/// The three kinds of instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Entry to an event (one use) or a pass (several).
    Ticket,
    /// E-money of a fixed denomination.
    Note,
    /// A coupon book or reward card with N uses.
    Coupon,
}

impl Kind {
    /// The lowercase name used in the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ticket => "ticket",
            Kind::Note => "note",
            Kind::Coupon => "coupon",
        }
    }
    /// Parses [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ticket" => Some(Kind::Ticket),
            "note" => Some(Kind::Note),
            "coupon" => Some(Kind::Coupon),
            _ => None,
        }
    }
}

/// An amount of money in minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(array)]
pub struct Amount {
    /// ISO 4217 code, e.g. `EUR`.
    #[n(0)]
    pub currency: String,
    /// Minor units.
    #[n(1)]
    pub minor: u64,
}

impl Amount {
    /// An amount.
    pub fn new(currency: &str, minor: u64) -> Self {
        Self { currency: currency.to_owned(), minor }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02} {}", self.minor / 100, self.minor % 100, self.currency)
    }
}

/// Note values allowed: 1, 2 and 5 times a power of ten minor units, so any
/// sum can be paid with few notes and no change-making at the registry.
pub fn is_denomination(minor: u64) -> bool {
    let mut v = minor;
    if v == 0 {
        return false;
    }
    while v.is_multiple_of(10) {
        v /= 10;
    }
    matches!(v, 1 | 2 | 5)
}

/// Splits `minor` into the fewest notes of allowed denominations, largest first.
pub fn denominations_for(mut minor: u64) -> Vec<u64> {
    let mut out = Vec::new();
    while minor > 0 {
        let mut unit = 1u64;
        while unit.saturating_mul(10) <= minor && unit < u64::MAX / 10 {
            unit *= 10;
        }
        let note = [5 * unit, 2 * unit, unit].into_iter().find(|n| *n <= minor).unwrap_or(unit);
        out.push(note);
        minor -= note;
    }
    out
}

/// What a ticket admits to.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct TicketAttributes {
    /// The event, as the issuer names it.
    #[n(0)]
    pub event_id: String,
    /// A title people read.
    #[n(1)]
    pub title: String,
    /// The zone or entrance it admits through.
    #[n(2)]
    pub zone: String,
    /// Seat, if any.
    #[n(3)]
    pub seat: Option<String>,
    /// Guidance shown at the gate (accessible route, nearest stairs).
    #[n(4)]
    pub guidance: Option<String>,
    /// Not valid before.
    #[n(5)]
    pub valid_from: Timestamp,
    /// Not valid after.
    #[n(6)]
    pub valid_until: Timestamp,
    /// Whether holders may pass it on.
    #[n(7)]
    pub transferable: bool,
    /// Entries it allows (1 for a single entry).
    #[n(8)]
    pub uses: u16,
    /// Price printed on it, if any.
    #[n(9)]
    pub face_price: Option<Amount>,
}

/// What a note is worth.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct NoteAttributes {
    /// Its value: always a denomination (see [`is_denomination`]).
    #[n(0)]
    pub amount: Amount,
    /// Must be refreshed or redeemed before this time.
    #[n(1)]
    pub expires_at: Timestamp,
}

/// A coupon book or reward card.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct CouponAttributes {
    /// The programme, as the issuer names it.
    #[n(0)]
    pub program: String,
    /// What it gives, for people.
    #[n(1)]
    pub title: String,
    /// Uses it allows.
    #[n(2)]
    pub uses: u16,
    /// Not valid before.
    #[n(3)]
    pub valid_from: Timestamp,
    /// Not valid after.
    #[n(4)]
    pub valid_until: Timestamp,
    /// Whether holders may pass it on.
    #[n(5)]
    pub transferable: bool,
}

/// Kind-specific attributes, fixed by the issuer at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Attributes {
    /// A ticket.
    #[n(0)]
    Ticket(#[n(0)] TicketAttributes),
    /// A note.
    #[n(1)]
    Note(#[n(0)] NoteAttributes),
    /// A coupon.
    #[n(2)]
    Coupon(#[n(0)] CouponAttributes),
}

impl Attributes {
    /// The instrument kind.
    pub fn kind(&self) -> Kind {
        match self {
            Attributes::Ticket(_) => Kind::Ticket,
            Attributes::Note(_) => Kind::Note,
            Attributes::Coupon(_) => Kind::Coupon,
        }
    }
    /// `(valid_from, valid_until)`.
    pub fn validity(&self) -> (Timestamp, Timestamp) {
        match self {
            Attributes::Ticket(t) => (t.valid_from, t.valid_until),
            Attributes::Note(n) => (0, n.expires_at),
            Attributes::Coupon(c) => (c.valid_from, c.valid_until),
        }
    }
    /// Uses allowed at issue.
    pub fn uses(&self) -> u16 {
        match self {
            Attributes::Ticket(t) => t.uses,
            Attributes::Note(_) => 1,
            Attributes::Coupon(c) => c.uses,
        }
    }
    /// Whether holders may pass it on. Notes always may.
    pub fn transferable(&self) -> bool {
        match self {
            Attributes::Ticket(t) => t.transferable,
            Attributes::Note(_) => true,
            Attributes::Coupon(c) => c.transferable,
        }
    }
    /// A one-line label for lists.
    pub fn label(&self) -> String {
        match self {
            Attributes::Ticket(t) => match &t.seat {
                Some(seat) => format!("{} — zone {}, seat {}", t.title, t.zone, seat),
                None => format!("{} — zone {}", t.title, t.zone),
            },
            Attributes::Note(n) => format!("note {}", n.amount),
            Attributes::Coupon(c) => format!("{} ({} uses)", c.title, c.uses),
        }
    }
    /// Every free-text attribute, for length checks.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let texts: Vec<&str> = match self {
            Attributes::Ticket(t) => {
                [Some(&t.event_id), Some(&t.title), Some(&t.zone), t.seat.as_ref(), t.guidance.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .chain(t.face_price.as_ref().map(|p| p.currency.as_str()))
                    .collect()
            }
            Attributes::Note(n) => vec![n.amount.currency.as_str()],
            Attributes::Coupon(c) => vec![c.program.as_str(), c.title.as_str()],
        };
        texts.into_iter()
    }

    /// The note's value, if this is a note.
    pub fn amount(&self) -> Option<&Amount> {
        match self {
            Attributes::Note(n) => Some(&n.amount),
            _ => None,
        }
    }
}

/// The issuer's act of creating an instrument for its first holder.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Genesis {
    /// Random id.
    #[n(0)]
    pub instrument_id: InstrumentId,
    /// The issuer's key; must be in the trust list with the issuer role.
    #[n(1)]
    pub issuer: PublicKey,
    /// The first holder's key, generated inside the holder's wallet.
    #[n(2)]
    pub holder: PublicKey,
    /// When it was issued.
    #[n(3)]
    pub issued_at: Timestamp,
    /// What it is.
    #[n(4)]
    pub attributes: Attributes,
}

impl SignedBody for Genesis {
    const CONTEXT: Context = Context::Genesis;
}

/// A holder passing the instrument to a new holder key.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Endorsement {
    /// The instrument.
    #[n(0)]
    pub instrument_id: InstrumentId,
    /// The previous link's sequence plus one.
    #[n(1)]
    pub sequence: u32,
    /// Digest of the previous link.
    #[n(2)]
    pub previous: Digest,
    /// The key that holds it from now on.
    #[n(3)]
    pub new_holder: PublicKey,
    /// The offer of the exchange that produced this link.
    #[n(4)]
    pub offer_id: ExchangeId,
    /// The acceptance of the exchange that produced this link.
    #[n(5)]
    pub acceptance_id: ExchangeId,
    /// When it was signed.
    #[n(6)]
    pub time: Timestamp,
}

impl SignedBody for Endorsement {
    const CONTEXT: Context = Context::Endorsement;
}

/// The life-cycle status the registry records for an instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
#[cbor(index_only)]
pub enum Status {
    /// In circulation.
    #[n(0)]
    Active,
    /// Printed on paper at a kiosk; the electronic form no longer admits.
    #[n(1)]
    Dispensed,
    /// Given back for money.
    #[n(2)]
    Refunded,
    /// Cancelled by the issuer or the registry.
    #[n(3)]
    Revoked,
    /// Replaced by a modified instrument.
    #[n(4)]
    Modified,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Dispensed => "dispensed",
            Status::Refunded => "refunded",
            Status::Revoked => "revoked",
            Status::Modified => "modified",
        }
    }
}

/// What the registry last recorded about an instrument's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct InstrumentState {
    /// Uses left.
    #[n(0)]
    pub uses_left: u16,
    /// Life-cycle status.
    #[n(1)]
    pub status: Status,
}

/// The registry's statement of who holds an instrument after reconciliation.
/// It replaces the chain up to `sequence`, so what a phone carries stays small.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct RegisteredCertificate {
    /// The instrument.
    #[n(0)]
    pub instrument_id: InstrumentId,
    /// Digest of its genesis.
    #[n(1)]
    pub genesis: Digest,
    /// The sequence of the last link it replaces.
    #[n(2)]
    pub sequence: u32,
    /// Digest of the last link it replaces (the genesis when `sequence` is 0).
    #[n(3)]
    pub replaces: Digest,
    /// The holder at `sequence`.
    #[n(4)]
    pub holder: PublicKey,
    /// State as registered.
    #[n(5)]
    pub state: InstrumentState,
    /// When it was certified.
    #[n(6)]
    pub issued_at: Timestamp,
}

impl SignedBody for RegisteredCertificate {
    const CONTEXT: Context = Context::RegisteredCertificate;
}

/// An instrument as a wallet holds and presents it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct Instrument {
    /// The issuer-signed genesis.
    #[n(0)]
    pub genesis: Signed<Genesis>,
    /// The latest registered certificate, if the chain was compacted.
    #[n(1)]
    pub registered: Option<Signed<RegisteredCertificate>>,
    /// Endorsements after the genesis or the certificate.
    #[n(2)]
    pub links: Vec<Signed<Endorsement>>,
}

impl Wire for Instrument {
    const NAME: &'static str = "instrument";
    /// Genesis ≈ 300 B, each link ≈ 190 B: 64 KiB allows the longest chains
    /// policy admits with a wide margin.
    const MAX_LEN: usize = 64 * 1024;
}

impl Wire for Signed<Endorsement> {
    const NAME: &'static str = "endorsement";
    const MAX_LEN: usize = 512;
}

impl Wire for Signed<Genesis> {
    const NAME: &'static str = "genesis";
    const MAX_LEN: usize = 4096;
}

impl Wire for Signed<RegisteredCertificate> {
    const NAME: &'static str = "registered certificate";
    const MAX_LEN: usize = 512;
}

impl Instrument {
    /// A freshly issued instrument.
    pub fn issued(genesis: Signed<Genesis>) -> Self {
        Self { genesis, registered: None, links: Vec::new() }
    }
    /// Its id.
    pub fn id(&self) -> InstrumentId {
        self.genesis.body.instrument_id
    }
    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.genesis.body.attributes.kind()
    }
    /// Its attributes.
    pub fn attributes(&self) -> &Attributes {
        &self.genesis.body.attributes
    }
    /// The current holder key, as the chain claims (not yet verified).
    pub fn holder(&self) -> PublicKey {
        if let Some(link) = self.links.last() {
            link.body.new_holder
        } else if let Some(cert) = &self.registered {
            cert.body.holder
        } else {
            self.genesis.body.holder
        }
    }
    /// The sequence of the tip.
    pub fn sequence(&self) -> u32 {
        if let Some(link) = self.links.last() {
            link.body.sequence
        } else if let Some(cert) = &self.registered {
            cert.body.sequence
        } else {
            0
        }
    }
    /// The digest the next endorsement must name as `previous`.
    pub fn tip_digest(&self) -> Digest {
        if let Some(link) = self.links.last() {
            link.digest()
        } else if let Some(cert) = &self.registered {
            cert.body.replaces
        } else {
            self.genesis.digest()
        }
    }
    /// The body of the next endorsement to `new_holder`, for the current
    /// holder to sign.
    pub fn next_endorsement(
        &self,
        new_holder: PublicKey,
        offer_id: ExchangeId,
        acceptance_id: ExchangeId,
        time: Timestamp,
    ) -> Endorsement {
        Endorsement {
            instrument_id: self.id(),
            sequence: self.sequence().saturating_add(1),
            previous: self.tip_digest(),
            new_holder,
            offer_id,
            acceptance_id,
            time,
        }
    }
    /// This instrument extended by one signed link.
    pub fn with_link(&self, link: Signed<Endorsement>) -> Self {
        let mut next = self.clone();
        next.links.push(link);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denominations() {
        for ok in [1, 2, 5, 10, 20, 50, 100, 200, 500, 10_000, 50_000] {
            assert!(is_denomination(ok), "{ok}");
        }
        for bad in [0, 3, 4, 7, 15, 25, 120, 300, 999] {
            assert!(!is_denomination(bad), "{bad}");
        }
        for total in [1u64, 3, 8, 99, 1234, 20_000, 987_654] {
            let notes = denominations_for(total);
            assert_eq!(notes.iter().sum::<u64>(), total);
            assert!(notes.iter().all(|n| is_denomination(*n)));
        }
    }
}
