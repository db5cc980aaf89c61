//! JSON bodies of the HTTP API. Signed core structures travel as base64 of
//! their canonical CBOR (`Wire::to_bytes`); keys and ids as lowercase hex.
//! Unknown fields are refused, so a typo never silently changes a request.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Base64 (standard alphabet, padded) of bytes.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes [`b64`]; `None` when it is not base64.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Every error the API returns: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable, machine-readable (`bad_signature`, `unknown_instrument`, …).
    pub error: String,
    /// For people.
    pub message: String,
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountJson {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub minor: u64,
}

/// `GET /info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoResponse {
    /// The key wallets and gates pin; it signs trust and deny lists and certificates.
    pub registry_key: String,
    /// The key the registry issues with, and the holder key to endorse
    /// payments, refunds and redemptions to.
    pub issuer_key: String,
    /// Current trust-list version.
    pub trust_version: u64,
    /// `sqlite` or `postgres`.
    pub backend: String,
}

/// `POST /admin/parties`: certify a key (signed by the registry key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRequest {
    /// The key, hex.
    pub key: String,
    /// `issuer`, `gate` or `merchant`.
    pub role: String,
    /// A name people read.
    pub name: String,
    /// Certification lapses after this time.
    pub not_after: u64,
}

/// `POST /admin/parties` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyResponse {
    /// The new trust-list version.
    pub trust_version: u64,
}

/// `POST /events`: an issuer creates an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    /// Unique id.
    pub event_id: String,
    /// Title.
    pub title: String,
    /// Zones (entrances).
    pub zones: Vec<String>,
    /// Tickets valid from.
    pub valid_from: u64,
    /// Tickets valid until.
    pub valid_until: u64,
    /// Face price.
    pub price: AmountJson,
    /// Whether tickets may be passed on.
    pub transferable: bool,
    /// Uses per ticket.
    pub uses: u16,
}

/// `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsResponse {
    /// Every event.
    pub events: Vec<EventJson>,
}

/// `POST /issue/ticket`: the event's organiser has a ticket issued to a holder key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueTicketRequest {
    /// The event.
    pub event_id: String,
    /// One of its zones.
    pub zone: String,
    /// Seat, if any.
    pub seat: Option<String>,
    /// The holder key a wallet made, hex.
    pub holder: String,
}

/// An answer carrying instruments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentsResponse {
    /// Each `Instrument`, base64 CBOR.
    pub instruments: Vec<String>,
    /// The caller's account balance after the call, when money moved.
    pub balance: Option<u64>,
}

/// `POST /instruments`: an issuer registers an instrument it issued itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstrumentRequest {
    /// The `Instrument` as issued, base64 CBOR.
    pub instrument: String,
}

/// `GET /instruments/{id}`: one row of the registered-ticket list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentStatus {
    /// Instrument id, hex.
    pub instrument_id: String,
    /// `ticket`, `note` or `coupon`.
    pub kind: String,
    /// Current holder key, hex.
    pub holder: String,
    /// Registered sequence.
    pub sequence: u32,
    /// `active`, `refunded`, …
    pub status: String,
    /// Uses left.
    pub uses_left: u16,
    /// Former holders, newest first.
    pub former_holders: Vec<FormerHolderJson>,
    /// Whether it is on the deny list.
    pub denied: bool,
    /// The proofs of misuse stored for it: double transfers, then stale
    /// copies used after transfer.
    #[serde(default)]
    pub proofs: Vec<ProofJson>,
}

/// A stored proof that a holder key cheated on an instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofJson {
    /// `double-transfer` (an `EquivocationProof`) or `used-after-transfer`
    /// (a `UsedAfterTransferProof`).
    pub kind: String,
    /// The sequence signed twice, or presented after it was passed on.
    pub sequence: u32,
    /// The key the proof names, hex.
    pub signer: String,
    /// The proof's wire bytes, base64; anyone can verify it offline.
    pub proof: String,
}

/// One former-holder record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormerHolderJson {
    /// The key, hex.
    pub holder: String,
    /// Sequence it received the instrument at.
    pub from_sequence: u32,
    /// Last sequence it held it at.
    pub until_sequence: u32,
    /// `from_sequence` of the record before.
    pub previous_from: Option<u32>,
}

/// `POST /money/topup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// What to credit.
    pub amount: AmountJson,
    /// The payment provider's token for the payment (unique per payment).
    pub payment: String,
}

/// An account balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceResponse {
    /// Currency.
    pub currency: String,
    /// Minor units.
    pub balance: u64,
}

/// `POST /money/withdraw`: notes from the account balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// How much, split with `denominations_for`.
    pub amount: AmountJson,
    /// One fresh holder key (hex) per note, largest note first.
    pub holders: Vec<String>,
}

/// `POST /money/redeem`: notes endorsed to the issuer key, back to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// Each note, base64 CBOR, its last link naming the issuer key.
    pub notes: Vec<String>,
    /// Also pay the value out of the system (to the bank account on file).
    pub payout: bool,
}

/// `POST /money/refresh`: notes for fresh notes of the same total value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Notes endorsed to the issuer key.
    pub notes: Vec<String>,
    /// The denominations wanted; they must add up to the notes' value.
    pub denominations: Vec<u64>,
    /// One fresh holder key per denomination.
    pub holders: Vec<String>,
}

/// `POST /buy`: pay with notes (and the account balance) for a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyRequest {
    /// The event.
    pub event_id: String,
    /// Zone.
    pub zone: String,
    /// Seat.
    pub seat: Option<String>,
    /// The ticket's holder key, hex.
    pub holder: String,
    /// Payment notes endorsed to the issuer key (may be empty when the
    /// balance covers the price).
    pub notes: Vec<String>,
}

/// `POST /refund`: a ticket endorsed back to the issuer key, for notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The ticket, base64 CBOR, its last link naming the issuer key.
    pub ticket: String,
    /// One holder key per refund note (`denominations_for(face price)`).
    pub holders: Vec<String>,
}

/// One typed upload item. New types join this list (gates' `examination`
/// records, the transfer protocol's `sale` evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum UploadItemJson {
    /// An `Instrument` with links, base64 CBOR.
    Chain {
        /// The instrument.
        instrument: String,
    },
    /// A buyer's fair-sale claim (`tessera_core::transfer::evidence::SaleClaim`,
    /// base64 CBOR): the seller's offer and the buyer's acceptance with its
    /// payment endorsements.
    Sale {
        /// The claim.
        claim: String,
        /// A `DoubleSaleProof` (base64 CBOR) about the claim's offer: the
        /// seller's holder key committed an item to another exchange while
        /// the offer was open. The buyer is refunded at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        double_sale: Option<String>,
    },
    /// A gate's examination certificate the wallet received at a tap
    /// (`Signed<ExaminationBody>`, base64 CBOR): the registry learns of the
    /// use before (or without) the gate's bag.
    Examination {
        /// The certificate.
        certificate: String,
    },
}

/// `POST /reconcile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The items.
    pub items: Vec<UploadItemJson>,
}

/// The answer for one upload item, in upload order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum ItemResultJson {
    /// Registered; a fresh registered certificate for the current holder.
    Registered {
        /// The compacted `Instrument`, base64 CBOR.
        instrument: String,
    },
    /// The registered list already has a later holder.
    Superseded {
        /// Instrument id, hex.
        instrument_id: String,
        /// Registered sequence.
        sequence: u32,
        /// Registered holder, hex.
        holder: String,
    },
    /// Conflicting endorsement: the first registered stands.
    Conflict {
        /// Instrument id, hex.
        instrument_id: String,
        /// The `EquivocationProof`, base64 CBOR.
        proof: String,
    },
    /// The registry's judgement of a sale claim: `delivered` (the payment
    /// stands), `refunded` (the seller passed an item elsewhere, a
    /// double-sale proof named it, or the delivery deadline passed: fresh
    /// notes of the paid value for the payer keys, in `instruments`, the
    /// first time) or `pending` (nothing registered yet; upload again
    /// later, until the deadline).
    Sale {
        /// The offer id, hex.
        offer_id: String,
        /// `delivered`, `refunded` or `pending`.
        verdict: String,
        /// Refund notes, base64 CBOR.
        instruments: Vec<String>,
    },
    /// An examination certificate recorded (`recorded: false`: it was
    /// uploaded before and nothing changed); the instrument's registered
    /// use state after it.
    Examination {
        /// Instrument id, hex.
        instrument_id: String,
        /// False when the certificate was already recorded.
        recorded: bool,
        /// Uses left on the registered list.
        uses_left: u16,
        /// Status on the registered list.
        status: String,
    },
    /// Refused.
    Refused {
        /// Instrument id, hex, when known.
        instrument_id: Option<String>,
        /// Error code.
        error: String,
        /// For people.
        message: String,
    },
}

/// `POST /reconcile` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileResponse {
    /// One result per item.
    pub results: Vec<ItemResultJson>,
}

/// `POST /sync`: what changed since the wallet's or gate's last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Holder keys whose notices to fetch (the signing key's are included).
    pub holders: Vec<String>,
    /// Notices after this id.
    pub after_notice: u64,
    /// Deny-list changes after this version.
    pub deny_since: u64,
}

/// A notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeJson {
    /// Increasing id.
    pub id: u64,
    /// The key it is for, hex.
    pub recipient: String,
    /// `conflict`, …
    pub kind: String,
    /// Instrument id, hex.
    pub instrument_id: Option<String>,
    /// Kind-specific bytes, base64.
    pub payload: String,
}

/// A deny-list change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedJson {
    /// Instrument id, hex.
    pub instrument_id: String,
    /// The version that added it.
    pub version: u64,
}

/// `POST /sync` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// Current trust-list version (fetch `GET /trust-list` when newer).
    pub trust_version: u64,
    /// Current deny-list version.
    pub deny_version: u64,
    /// Deny-list entries added after `deny_since`.
    pub denied: Vec<DeniedJson>,
    /// The full signed deny list (`Signed<DenyList>`, base64 CBOR).
    pub deny_list: String,
    /// Notices after `after_notice`.
    pub notices: Vec<NoticeJson>,
}

/// `POST /gifts`: leave an instrument at the registry for another account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftRequest {
    /// The instrument, base64 CBOR, its last link naming the issuer key.
    pub instrument: String,
    /// The recipient's account key, hex.
    pub recipient: String,
    /// A fresh holder key of the sender's, for a declined gift to return to.
    pub return_holder: String,
}

/// `POST /gifts` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftResponse {
    /// The gift's id, hex.
    pub gift_id: String,
}

/// A pending gift as the recipient sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingGift {
    /// The gift's id, hex.
    pub gift_id: String,
    /// The sender's account, hex.
    pub sender: String,
    /// The instrument's genesis (`Signed<Genesis>`, base64 CBOR), to show what it is.
    pub genesis: String,
}

/// `POST /gifts/pending` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingGifts {
    /// Gifts waiting for the signing account.
    pub gifts: Vec<PendingGift>,
}

/// `POST /gifts/pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingGiftsRequest {}

/// `POST /gifts/answer`: accept (to `holder`) or decline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftAnswer {
    /// The gift's id, hex.
    pub gift_id: String,
    /// True to accept.
    pub accept: bool,
    /// The recipient's fresh holder key, hex (required to accept).
    pub holder: Option<String>,
}

/// `POST /gate/bags`: a gate's signed bag of examination records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BagUpload {
    /// `Signed<BagBody>`, base64 CBOR.
    pub bag: String,
}

/// A settlement report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementReport {
    /// The gate, hex.
    pub gate: String,
    /// Bags settled (this bag alone in a bag answer).
    pub bags: u64,
    /// Admissions settled.
    pub admitted: u64,
    /// Refusals recorded.
    pub refused: u64,
    /// In a bag answer: this very bag (byte for byte) was settled before,
    /// and this is its original settlement; nothing changed now. Sent only
    /// when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// In a bag answer: the used-after-transfer proofs (base64) the bag's
    /// admissions gave against the registered chains — stale copies
    /// presented by keys that had passed the ticket on. Sent only when
    /// there are some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_after_transfer: Vec<String>,
}

/// `POST /gate/settlement`: the signing gate's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementRequest {}

/// `POST /modifications`: the organiser changes a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifyRequest {
    /// The ticket, hex.
    pub instrument_id: String,
    /// New zone (one of the event's).
    pub zone: String,
    /// New seat.
    pub seat: Option<String>,
    /// New validity window.
    pub valid_from: u64,
    /// New validity window.
    pub valid_until: u64,
}

/// `POST /modifications` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifyResponse {
    /// The modification's id, hex; the holder's notice carries it.
    pub modification_id: String,
}

/// `POST /modifications/answer`: the holder gives the ticket back (endorsed
/// to the issuer key) and chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModificationAnswer {
    /// The modification's id, hex.
    pub modification_id: String,
    /// `accept` (a new ticket to `holder`), `refuse` (the ticket is
    /// disabled) or `refund` (notes of its face price to `holders`).
    pub answer: String,
    /// The ticket, base64 CBOR, its last link naming the issuer key.
    pub ticket: String,
    /// For `accept`: the new ticket's holder key, hex.
    pub holder: Option<String>,
    /// For `refund`: one holder key per note.
    pub holders: Vec<String>,
}
