//! The trust list: which issuer, gate and merchant keys the registry
//! certifies, signed by the registry. Wallets and gates pin the registry key
//! once and then accept only trust lists it signed.

use crate::clock::Timestamp;
use crate::codec::Wire;
use crate::crypto::{Context, PublicKey};
use crate::ids::InstrumentId;
use crate::instrument::{Signed, SignedBody};
use minicbor::{Decode, Encode};
use std::collections::{BTreeMap, BTreeSet};

/// What a certified key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
#[cbor(index_only)]
pub enum Role {
    /// Signs genesis records (tickets, notes, coupons).
    #[n(0)]
    Issuer,
    /// Examines instruments at an entrance and signs examination certificates.
    #[n(1)]
    Gate,
    /// Sells tickets for notes and receives payments.
    #[n(2)]
    Merchant,
}

impl Role {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Issuer => "issuer",
            Role::Gate => "gate",
            Role::Merchant => "merchant",
        }
    }
}

/// One certified key.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct TrustEntry {
    /// The key.
    #[n(0)]
    pub key: PublicKey,
    /// What it may do.
    #[n(1)]
    pub role: Role,
    /// A name people read ("Stadium North Gate 3").
    #[n(2)]
    pub name: String,
    /// The certification lapses after this time.
    #[n(3)]
    pub not_after: Timestamp,
}

/// The registry's list of certified keys.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct TrustListBody {
    /// The registry's own key; it signs this list.
    #[n(0)]
    pub registry: PublicKey,
    /// Increases with every new list, so an old list cannot replace a newer one.
    #[n(1)]
    pub version: u64,
    /// When it was signed.
    #[n(2)]
    pub issued_at: Timestamp,
    /// The certified keys.
    #[n(3)]
    pub entries: Vec<TrustEntry>,
}

impl SignedBody for TrustListBody {
    const CONTEXT: Context = Context::TrustList;
}

impl Wire for Signed<TrustListBody> {
    const NAME: &'static str = "trust list";
    const MAX_LEN: usize = 256 * 1024;
}

/// Why a trust list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// Signed by a key other than the pinned registry key.
    #[error("the trust list is signed for registry {found}, not the pinned registry {pinned}")]
    WrongRegistry {
        /// The key the wallet or gate pinned.
        pinned: PublicKey,
        /// The key the list names.
        found: PublicKey,
    },
    /// The registry's signature does not verify.
    #[error("the trust list's signature does not verify")]
    BadSignature,
    /// The same key is listed twice, so its role would be ambiguous.
    #[error("key {0} is listed twice")]
    DuplicateKey(PublicKey),
    /// Older than the list already installed.
    #[error("trust list version {offered} is older than the installed version {installed}")]
    Stale {
        /// The installed version.
        installed: u64,
        /// The offered version.
        offered: u64,
    },
}

/// A trust list whose registry signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustList {
    signed: Signed<TrustListBody>,
    by_key: BTreeMap<PublicKey, (Role, Timestamp)>,
}

impl TrustList {
    /// Checks `signed` against the pinned registry key.
    pub fn verify(signed: Signed<TrustListBody>, pinned_registry: &PublicKey) -> Result<Self, TrustError> {
        if signed.body.registry != *pinned_registry {
            return Err(TrustError::WrongRegistry { pinned: *pinned_registry, found: signed.body.registry });
        }
        signed.verify(pinned_registry).map_err(|_| TrustError::BadSignature)?;
        let mut by_key = BTreeMap::new();
        for e in &signed.body.entries {
            if by_key.insert(e.key, (e.role, e.not_after)).is_some() {
                return Err(TrustError::DuplicateKey(e.key));
            }
        }
        Ok(Self { signed, by_key })
    }
    /// The registry key.
    pub fn registry(&self) -> PublicKey {
        self.signed.body.registry
    }
    /// The list's version.
    pub fn version(&self) -> u64 {
        self.signed.body.version
    }
    /// The signed form, to store or pass on.
    pub fn signed(&self) -> &Signed<TrustListBody> {
        &self.signed
    }
    /// The certified entries.
    pub fn entries(&self) -> &[TrustEntry] {
        &self.signed.body.entries
    }
    /// Whether `key` is certified for `role` at `now`.
    pub fn certifies(&self, key: &PublicKey, role: Role, now: Timestamp) -> bool {
        matches!(self.by_key.get(key), Some((r, not_after)) if *r == role && now <= *not_after)
    }
    /// The role `key` is certified for, ignoring expiry.
    pub fn role_of(&self, key: &PublicKey) -> Option<Role> {
        self.by_key.get(key).map(|(r, _)| *r)
    }
    /// The entry for `key`.
    pub fn entry(&self, key: &PublicKey) -> Option<&TrustEntry> {
        self.signed.body.entries.iter().find(|e| e.key == *key)
    }
}

/// Instruments nobody may accept: revoked, or caught in a double transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
#[cbor(array)]
pub struct DenyList {
    /// Increases with every change, for incremental sync.
    #[n(0)]
    pub version: u64,
    /// The denied instruments.
    #[n(1)]
    pub instruments: BTreeSet<InstrumentId>,
}

impl DenyList {
    /// An empty list.
    pub fn empty() -> Self {
        Self::default()
    }
    /// Whether `id` is denied.
    pub fn denies(&self, id: &InstrumentId) -> bool {
        self.instruments.contains(id)
    }
    /// Adds `id`.
    pub fn deny(&mut self, id: InstrumentId) {
        if self.instruments.insert(id) {
            self.version += 1;
        }
    }
}

impl SignedBody for DenyList {
    const CONTEXT: Context = Context::DenyList;
}

impl Wire for Signed<DenyList> {
    const NAME: &'static str = "deny list";
    const MAX_LEN: usize = 4 * 1024 * 1024;
}
