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
use crate::instrument::{Attributes, Instrument, InstrumentState, Kind, Status, is_denomination};
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
        let genesis = &instrument.genesis.body;
        let id = genesis.instrument_id;
        if instrument.links.len() > MAX_LINKS {
            return Err(Rejection::TooManyLinks(instrument.links.len()));
        }
        if !self.trust.certifies(&genesis.issuer, Role::Issuer, now) {
            return Err(Rejection::UnknownIssuer(genesis.issuer));
        }
        instrument.genesis.verify(&genesis.issuer).map_err(|_| Rejection::BadGenesisSignature)?;
        check_attributes(&genesis.attributes)?;

        let genesis_digest = instrument.genesis.digest();
        let mut state = InstrumentState { uses_left: genesis.attributes.uses(), status: Status::Active };
        let (mut holder, mut sequence, mut tip) = (genesis.holder, 0u32, genesis_digest);
        if let Some(cert) = &instrument.registered {
            cert.verify(&self.trust.registry()).map_err(|_| Rejection::BadCertificateSignature)?;
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
            link.verify(&holder).map_err(|_| Rejection::BadSignature { link: n })?;
            if !transferable
                && !self.trust.certifies(&e.new_holder, Role::Issuer, now)
                && !self.trust.certifies(&e.new_holder, Role::Merchant, now)
            {
                return Err(Rejection::NotTransferable);
            }
            holder = e.new_holder;
            sequence = e.sequence;
            tip = link.digest();
        }

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
        Ok(VerifiedInstrument { id, kind: genesis.attributes.kind(), holder, sequence, tip, state })
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
    fn a_key_listed_twice_is_refused() {
        let sp = RegistryAuthority::new(LocalSigner::from_seed(&[2; 32]));
        let key = PublicKey([3; 32]);
        let e = |role| TrustEntry { key, role, name: "k".into(), not_after: 100 };
        let list = sp.trust_list(1, vec![e(Role::Gate), e(Role::Issuer)], 0).expect("signs");
        assert_eq!(TrustList::verify(list, &sp.public_key()), Err(TrustError::DuplicateKey(key)));
    }
}
