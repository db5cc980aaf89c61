//! The HTTP adapter wallets (the CLI, tests, the demo) use to talk to the
//! registry: it signs requests with the wallet's account key, carries the
//! core reconciliation state machine's bytes, and runs the wallet flows
//! (sync, top-up, withdraw, buy, refund, redeem) against a [`Wallet`].

use crate::api::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
use crate::wire::{self, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::reconcile::request::sign_request;
use tessera_core::reconcile::{ItemOutcome, ReconcileReport, UploadItem};
use tessera_core::store::{KeyRole, WalletStore};
use tessera_core::{
    Attributes, Clock, EquivocationProof, ExchangeId, Instrument, InstrumentId, PublicKey, Signer, SystemClock, Wallet,
    WalletError, Wire,
};

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry refused the request with a typed error.
    #[error("the registry refused ({status} {}): {}", .body.error, .body.message)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The registry could not be reached or answered something unreadable.
    #[error("transport: {0}")]
    Transport(String),
    /// The wallet refused or failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The answer was not what the protocol allows.
    #[error("bad answer from the registry: {0}")]
    BadAnswer(String),
}

/// A registry at a base URL.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    agent: ureq::Agent,
    retry: Retry,
}

/// How a client retries a request the registry did not answer: a transport
/// failure (it is down or restarting) or a 503 (its database failed, "retry
/// later"). Each attempt of a signed request is signed again with a fresh
/// nonce, so a registry that stored the first nonce before it failed does
/// not refuse the retry as a replay. A retry sends the same body: the
/// registry's handlers are idempotent for it (`registry/tests/crash.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (1: no retry).
    pub attempts: u32,
    /// Wait before the first retry; each later wait doubles, up to `max_delay`.
    pub first_delay: std::time::Duration,
    /// Longest wait between attempts.
    pub max_delay: std::time::Duration,
}

impl Retry {
    /// One attempt.
    pub const NONE: Self =
        Self { attempts: 1, first_delay: std::time::Duration::ZERO, max_delay: std::time::Duration::ZERO };

    /// What a person waiting on a phone or a terminal gets: four attempts
    /// over about three seconds (0.4, 0.8, 1.6 s apart), enough to ride out
    /// a dropped connection or a registry restarting.
    pub const INTERACTIVE: Self = Self {
        attempts: 4,
        first_delay: std::time::Duration::from_millis(400),
        max_delay: std::time::Duration::from_millis(1600),
    };

    fn delay(&self, attempt: u32) -> std::time::Duration {
        self.first_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay)
    }

    /// Runs `f` until it succeeds, fails for a reason a retry cannot fix,
    /// or the attempts are spent.
    fn run<T>(&self, mut f: impl FnMut() -> Result<T, ClientError>) -> Result<T, ClientError> {
        let mut attempt = 0;
        loop {
            match f() {
                Err(e) if attempt + 1 < self.attempts && e.is_transient() => {
                    tracing::warn!(error = %e, attempt, "registry request failed; retrying");
                    std::thread::sleep(self.delay(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl ClientError {
    /// The registry did not answer, or answered that it failed and the
    /// request may be retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport(_) | Self::Refused { status: 503, .. })
    }
}

const MAX_ANSWER: u64 = 16 * 1024 * 1024;

impl RegistryClient {
    /// A client for `base` (`http://127.0.0.1:7700`).
    pub fn new(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).build();
        Self { base: base.trim_end_matches('/').to_owned(), agent, retry: Retry::NONE }
    }

    /// The same client, retrying as `retry` says.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    fn answer(result: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, ClientError> {
        match result {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(status, r)) => {
                let body = r
                    .into_json::<ErrorBody>()
                    .unwrap_or_else(|e| ErrorBody { error: "unreadable".into(), message: e.to_string() });
                Err(ClientError::Refused { status, body })
            }
            Err(e) => Err(ClientError::Transport(e.to_string())),
        }
    }

    /// `GET` a JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.retry.run(|| {
            let r = Self::answer(self.agent.get(&format!("{}{path}", self.base)).call())?;
            r.into_json().map_err(|e| ClientError::Transport(e.to_string()))
        })
    }

    /// `GET` bytes (`/trust-list`, `/deny-list`).
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        use std::io::Read as _;
        self.retry.run(|| {
            let r = Self::answer(self.agent.get(&format!("{}{path}", self.base)).call())?;
            let mut out = Vec::new();
            r.into_reader()
                .take(MAX_ANSWER)
                .read_to_end(&mut out)
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            Ok(out)
        })
    }

    /// `POST` a JSON body signed by `signer`.
    pub fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        signer: &impl Signer,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Transport(e.to_string()))?;
        self.retry.run(|| {
            let auth = sign_request(signer, "POST", path, &bytes, SystemClock.now(), &mut rand::rngs::OsRng)
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let r = Self::answer(
                self.agent
                    .post(&format!("{}{path}", self.base))
                    .set("content-type", "application/json")
                    .set(HEADER_KEY, &auth.key.to_hex())
                    .set(HEADER_TIME, &auth.time.to_string())
                    .set(HEADER_NONCE, &hex::encode(auth.nonce))
                    .set(HEADER_SIGNATURE, &auth.signature.to_hex())
                    .send_bytes(&bytes),
            )?;
            r.into_json().map_err(|e| ClientError::Transport(e.to_string()))
        })
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<wire::InfoResponse, ClientError> {
        self.get("/info")
    }
}

/// Converts the registry's per-item answers into the core's outcomes.
/// Answers about examination certificates change nothing in the wallet
/// and are left out.
pub fn outcomes(results: Vec<wire::ItemResultJson>) -> Result<Vec<ItemOutcome>, ClientError> {
    let bad = |what: &str| ClientError::BadAnswer(what.to_owned());
    results
        .into_iter()
        .filter(|r| !matches!(r, wire::ItemResultJson::Examination { .. }))
        .map(|r| {
            Ok(match r {
                wire::ItemResultJson::Registered { instrument } => ItemOutcome::Registered(
                    Instrument::from_bytes(&wire::unb64(&instrument).ok_or_else(|| bad("base64"))?)
                        .map_err(|e| bad(&e.to_string()))?,
                ),
                wire::ItemResultJson::Superseded { instrument_id, sequence, holder } => ItemOutcome::Superseded {
                    id: InstrumentId::from_hex(&instrument_id).map_err(|_| bad("id"))?,
                    sequence,
                    holder: PublicKey::from_hex(&holder).map_err(|_| bad("holder"))?,
                },
                wire::ItemResultJson::Conflict { instrument_id, proof } => ItemOutcome::Conflict {
                    id: InstrumentId::from_hex(&instrument_id).map_err(|_| bad("id"))?,
                    proof: EquivocationProof::from_bytes(&wire::unb64(&proof).ok_or_else(|| bad("base64"))?)
                        .map_err(|e| bad(&e.to_string()))?,
                },
                wire::ItemResultJson::Sale { offer_id, verdict, .. } => ItemOutcome::Refused {
                    id: None,
                    reason: format!("sale {offer_id}: {verdict} (sale claims are judged, not applied here)"),
                },
                wire::ItemResultJson::Refused { instrument_id, error, message } => ItemOutcome::Refused {
                    id: instrument_id.and_then(|i| InstrumentId::from_hex(&i).ok()),
                    reason: format!("{error}: {message}"),
                },
                wire::ItemResultJson::Examination { .. } => return Err(bad("examination answer")),
            })
        })
        .collect()
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The reconciliation result.
    pub reconcile: ReconcileReport,
    /// Trust-list version installed.
    pub trust_version: u64,
    /// Deny-list version installed.
    pub deny_version: u64,
    /// Notices received (kind, instrument).
    pub notices: Vec<(String, Option<String>)>,
    /// Modification notices: (ticket, modification id), to answer.
    pub modifications: Vec<(InstrumentId, String)>,
    /// Examination certificates the registry recorded for the first time.
    pub examinations_recorded: usize,
}

/// Wallet flows over a [`RegistryClient`].
#[derive(Debug)]
pub struct WalletSession<'w, S: WalletStore> {
    /// The wallet.
    pub wallet: &'w mut Wallet<S>,
    /// The registry.
    pub client: RegistryClient,
}

impl<'w, S: WalletStore> WalletSession<'w, S> {
    /// A session.
    pub fn new(wallet: &'w mut Wallet<S>, client: RegistryClient) -> Self {
        Self { wallet, client }
    }

    fn account(&self) -> Result<tessera_core::LocalSigner, ClientError> {
        Ok(self.wallet.signer(&self.wallet.account_key())?)
    }

    /// Pins the registry (first time), installs the trust and deny lists,
    /// uploads chains, applies the answer, fetches notices.
    pub fn sync(&mut self) -> Result<SyncReport, ClientError> {
        let info = self.client.info()?;
        let registry_key = PublicKey::from_hex(&info.registry_key).map_err(|_| ClientError::BadAnswer("key".into()))?;
        self.wallet.pin_registry(registry_key)?;
        if self.wallet.trust_list().map(|t| t.version()) != Some(info.trust_version) {
            let bytes = self.client.get_bytes("/trust-list")?;
            self.wallet.install_trust_list(&bytes)?;
        }
        let upload = self.wallet.reconcile_upload()?;
        let mut report = SyncReport::default();
        // The gates' certificates of this wallet's taps: the registry
        // learns of each use even before the gate's bag arrives.
        let examinations = self.wallet.store().examinations(None).map_err(WalletError::from)?;
        if !upload.items.is_empty() || !examinations.is_empty() {
            let mut items: Vec<wire::UploadItemJson> = upload
                .items
                .iter()
                .map(|UploadItem::Chain(i)| wire::UploadItemJson::Chain { instrument: wire::b64(&i.to_bytes()) })
                .collect();
            let room = crate::service::MAX_ITEMS.saturating_sub(items.len());
            items.extend(
                examinations
                    .iter()
                    .rev()
                    .take(room)
                    .map(|e| wire::UploadItemJson::Examination { certificate: wire::b64(&e.certificate) }),
            );
            let account = self.account()?;
            let answer: Result<wire::ReconcileResponse, _> =
                self.client.post("/reconcile", &account, &wire::ReconcileRequest { items });
            let results = match answer {
                Ok(a) => {
                    report.examinations_recorded = a
                        .results
                        .iter()
                        .filter(|r| matches!(r, wire::ItemResultJson::Examination { recorded: true, .. }))
                        .count();
                    outcomes(a.results)?
                }
                // A whole-upload refusal: nothing to apply, report why.
                Err(ClientError::Refused { body, .. }) => {
                    vec![ItemOutcome::Refused { id: None, reason: format!("{}: {}", body.error, body.message) }]
                }
                Err(e) => return Err(e),
            };
            report.reconcile = self.wallet.apply_reconcile(results)?;
        }
        let holders = self.wallet.store().keys(KeyRole::Holder).map_err(WalletError::from)?;
        let account = self.account()?;
        let answer: wire::SyncResponse = self.client.post(
            "/sync",
            &account,
            &wire::SyncRequest {
                holders: holders.iter().take(crate::service::MAX_ITEMS).map(|k| k.public.to_hex()).collect(),
                after_notice: 0,
                deny_since: 0,
            },
        )?;
        let deny = wire::unb64(&answer.deny_list).ok_or_else(|| ClientError::BadAnswer("deny list".into()))?;
        if answer.deny_version >= self.wallet.deny_list().version {
            self.wallet.install_deny_list(&deny)?;
        }
        report.trust_version = info.trust_version;
        report.deny_version = answer.deny_version;
        for n in &answer.notices {
            // A declined gift comes back as a certified instrument for the
            // return key this wallet made; importing it twice is refused
            // harmlessly.
            // A replacement for an instrument denied after someone else's
            // double transfer or used-after-transfer comes the same way, for
            // a key this wallet holds — or, sent to the account that first
            // bought the instrument, for a key of whoever holds it now.
            if (n.kind == "gift-returned" || n.kind == "replacement")
                && let Some(bytes) = wire::unb64(&n.payload)
            {
                match self.wallet.import(&bytes) {
                    Ok(_)
                    | Err(WalletError::AlreadyHeld(_))
                    | Err(WalletError::Stale(_))
                    | Err(WalletError::NotOurs(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // What the registry issued to this wallet's keys (notes of a
            // withdrawal or refund, a ticket bought): usually imported from
            // the answer already; this is how one whose answer was lost
            // arrives. One spent since, expired or not ours is passed over.
            if n.kind == "issued"
                && let Some(bytes) = wire::unb64(&n.payload)
            {
                match self.wallet.import(&bytes) {
                    Ok(_)
                    | Err(WalletError::AlreadyHeld(_))
                    | Err(WalletError::Stale(_))
                    | Err(WalletError::Rejected(_))
                    | Err(WalletError::NotOurs(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        report.modifications = answer
            .notices
            .iter()
            .filter(|n| n.kind == "modification")
            .filter_map(|n| {
                let id = InstrumentId::from_hex(n.instrument_id.as_deref()?).ok()?;
                Some((id, hex::encode(wire::unb64(&n.payload)?)))
            })
            .collect();
        report.notices = answer.notices.into_iter().map(|n| (n.kind, n.instrument_id)).collect();
        Ok(report)
    }

    fn import_all(&mut self, encoded: &[String]) -> Result<Vec<InstrumentId>, ClientError> {
        let mut ids = Vec::new();
        for e in encoded {
            let bytes = wire::unb64(e).ok_or_else(|| ClientError::BadAnswer("base64".into()))?;
            ids.push(self.wallet.import(&bytes)?.id);
        }
        Ok(ids)
    }

    /// Credits the account through the payment provider.
    pub fn top_up(&mut self, currency: &str, minor: u64, payment: &str) -> Result<u64, ClientError> {
        let account = self.account()?;
        let r: wire::BalanceResponse = self.client.post(
            "/money/topup",
            &account,
            &wire::TopUpRequest {
                amount: wire::AmountJson { currency: currency.into(), minor },
                payment: payment.into(),
            },
        )?;
        Ok(r.balance)
    }

    /// Notes worth `minor` from the account balance, to fresh holder keys.
    pub fn withdraw(&mut self, currency: &str, minor: u64) -> Result<Vec<InstrumentId>, ClientError> {
        let mut holders = Vec::new();
        for _ in tessera_core::instrument::denominations_for(minor) {
            holders.push(self.wallet.new_holder_key()?.to_hex());
        }
        let account = self.account()?;
        let r: wire::InstrumentsResponse = self.client.post(
            "/money/withdraw",
            &account,
            &wire::WithdrawRequest { amount: wire::AmountJson { currency: currency.into(), minor }, holders },
        )?;
        self.import_all(&r.instruments)
    }

    fn issuer_key(&self) -> Result<PublicKey, ClientError> {
        PublicKey::from_hex(&self.client.info()?.issuer_key).map_err(|_| ClientError::BadAnswer("issuer key".into()))
    }

    /// Endorses instruments to the registry's issuer key (payment, refund,
    /// redemption). They stay pending-out until the registry answers; one
    /// pending out to the registry already is sent as it is.
    fn endorse_to_registry(&mut self, ids: &[InstrumentId]) -> Result<Vec<String>, ClientError> {
        let to = self.issuer_key()?;
        let mut out = Vec::new();
        for id in ids {
            // Endorsed to the registry already by a call whose request never
            // got an answer (the registry was down past the client's
            // retries): send that endorsement again, so calling the flow
            // again resumes it. The registry is idempotent for it.
            let record = self.wallet.instrument(id)?;
            let inst = if record.holding == tessera_core::store::Holding::PendingOut && record.instrument.holder() == to
            {
                record.instrument
            } else {
                let bound = ExchangeId::returned_by(&self.wallet.account_key());
                self.wallet.endorse(id, to, bound, ExchangeId::NONE)?
            };
            out.push(wire::b64(&inst.to_bytes()));
        }
        Ok(out)
    }

    fn confirm(&mut self, ids: &[InstrumentId]) -> Result<(), ClientError> {
        for id in ids {
            self.wallet.confirm_transferred(id)?;
        }
        Ok(())
    }

    /// Notes held, largest first, enough to cover `minor` (all of them if
    /// they are not enough; the balance pays the rest).
    fn notes_covering(&self, currency: &str, minor: u64) -> Result<Vec<InstrumentId>, ClientError> {
        let mut notes: Vec<_> = self
            .wallet
            .notes()?
            .into_iter()
            .filter(|n| n.holding == tessera_core::store::Holding::Held)
            .filter_map(|n| n.amount.filter(|a| a.currency == currency).map(|a| (a.minor, n.id)))
            .collect();
        notes.sort_by_key(|n| std::cmp::Reverse(n.0));
        let mut picked = Vec::new();
        let mut sum = 0;
        for (v, id) in notes {
            if sum >= minor {
                break;
            }
            sum += v;
            picked.push(id);
        }
        Ok(picked)
    }

    /// Buys a ticket: pays with held notes (the account balance covers any
    /// shortfall and keeps any excess), receives it on a fresh holder key.
    pub fn buy(&mut self, event_id: &str, zone: &str, seat: Option<String>) -> Result<InstrumentId, ClientError> {
        let events: wire::EventsResponse = self.client.get("/events")?;
        let event = events
            .events
            .into_iter()
            .find(|e| e.event_id == event_id)
            .ok_or_else(|| ClientError::BadAnswer(format!("no event {event_id}")))?;
        let paying = self.notes_covering(&event.price.currency, event.price.minor)?;
        let notes = self.endorse_to_registry(&paying)?;
        let holder = self.wallet.new_holder_key()?;
        let account = self.account()?;
        let r: wire::InstrumentsResponse = self.client.post(
            "/buy",
            &account,
            &wire::BuyRequest { event_id: event_id.into(), zone: zone.into(), seat, holder: holder.to_hex(), notes },
        )?;
        self.confirm(&paying)?;
        self.import_all(&r.instruments)?.pop().ok_or_else(|| ClientError::BadAnswer("no ticket".into()))
    }

    /// Gives a ticket back for notes of its face price.
    pub fn refund(&mut self, ticket: &InstrumentId) -> Result<Vec<InstrumentId>, ClientError> {
        let record = self.wallet.instrument(ticket)?;
        let price = match record.instrument.attributes() {
            Attributes::Ticket(t) => t.face_price.clone(),
            _ => None,
        }
        .ok_or_else(|| ClientError::BadAnswer("the ticket has no face price".into()))?;
        let mut holders = Vec::new();
        for _ in tessera_core::instrument::denominations_for(price.minor) {
            holders.push(self.wallet.new_holder_key()?.to_hex());
        }
        let encoded = self.endorse_to_registry(std::slice::from_ref(ticket))?;
        let account = self.account()?;
        let r: wire::InstrumentsResponse = self.client.post(
            "/refund",
            &account,
            &wire::RefundRequest { ticket: encoded.into_iter().next().unwrap_or_default(), holders },
        )?;
        self.confirm(std::slice::from_ref(ticket))?;
        self.import_all(&r.instruments)
    }

    /// Leaves an instrument at the registry for `recipient`'s account. It
    /// stays pending-out here until the recipient answers; a declined gift
    /// comes back at a later sync.
    pub fn gift(&mut self, id: &InstrumentId, recipient: &PublicKey) -> Result<String, ClientError> {
        let return_holder = self.wallet.new_holder_key()?;
        let encoded = self.endorse_to_registry(std::slice::from_ref(id))?;
        let account = self.account()?;
        let r: wire::GiftResponse = self.client.post(
            "/gifts",
            &account,
            &wire::GiftRequest {
                instrument: encoded.into_iter().next().unwrap_or_default(),
                recipient: recipient.to_hex(),
                return_holder: return_holder.to_hex(),
            },
        )?;
        Ok(r.gift_id)
    }

    /// Gifts waiting for this wallet's account.
    pub fn pending_gifts(&mut self) -> Result<Vec<wire::PendingGift>, ClientError> {
        let account = self.account()?;
        let r: wire::PendingGifts = self.client.post("/gifts/pending", &account, &wire::PendingGiftsRequest {})?;
        Ok(r.gifts)
    }

    /// Accepts (to a fresh holder key, imported here) or declines a gift.
    pub fn answer_gift(&mut self, gift_id: &str, accept: bool) -> Result<Option<InstrumentId>, ClientError> {
        let holder = if accept { Some(self.wallet.new_holder_key()?.to_hex()) } else { None };
        let account = self.account()?;
        let r: wire::InstrumentsResponse = self.client.post(
            "/gifts/answer",
            &account,
            &wire::GiftAnswer { gift_id: gift_id.into(), accept, holder },
        )?;
        if accept { Ok(self.import_all(&r.instruments)?.pop()) } else { Ok(None) }
    }

    /// Answers a modification notice for a held ticket: `accept` (the new
    /// ticket is imported), `refuse` (the ticket is disabled) or `refund`
    /// (notes imported). The old ticket goes back to the registry.
    pub fn answer_modification(
        &mut self,
        ticket: &InstrumentId,
        modification_id: &str,
        answer: &str,
    ) -> Result<Vec<InstrumentId>, ClientError> {
        let record = self.wallet.instrument(ticket)?;
        let price = match record.instrument.attributes() {
            Attributes::Ticket(t) => t.face_price.clone(),
            _ => None,
        };
        let holder = if answer == "accept" { Some(self.wallet.new_holder_key()?.to_hex()) } else { None };
        let mut holders = Vec::new();
        if answer == "refund" {
            let minor = price.map(|p| p.minor).unwrap_or(0);
            for _ in tessera_core::instrument::denominations_for(minor) {
                holders.push(self.wallet.new_holder_key()?.to_hex());
            }
        }
        let encoded = self.endorse_to_registry(std::slice::from_ref(ticket))?;
        let account = self.account()?;
        let r: wire::InstrumentsResponse = self.client.post(
            "/modifications/answer",
            &account,
            &wire::ModificationAnswer {
                modification_id: modification_id.into(),
                answer: answer.into(),
                ticket: encoded.into_iter().next().unwrap_or_default(),
                holder,
                holders,
            },
        )?;
        self.confirm(std::slice::from_ref(ticket))?;
        self.import_all(&r.instruments)
    }

    /// Exchanges notes for fresh ones of the same total value in
    /// `denominations` (to split a note for exact payment, or merge small
    /// ones), each to a fresh holder key.
    pub fn refresh(&mut self, notes: &[InstrumentId], denominations: &[u64]) -> Result<Vec<InstrumentId>, ClientError> {
        let mut holders = Vec::new();
        for _ in denominations {
            holders.push(self.wallet.new_holder_key()?.to_hex());
        }
        let encoded = self.endorse_to_registry(notes)?;
        let account = self.account()?;
        let r: wire::InstrumentsResponse = self.client.post(
            "/money/refresh",
            &account,
            &wire::RefreshRequest { notes: encoded, denominations: denominations.to_vec(), holders },
        )?;
        self.confirm(notes)?;
        self.import_all(&r.instruments)
    }

    /// Redeems notes to the account (and out of the system with `payout`).
    pub fn redeem(&mut self, notes: &[InstrumentId], payout: bool) -> Result<u64, ClientError> {
        let encoded = self.endorse_to_registry(notes)?;
        let account = self.account()?;
        let r: wire::BalanceResponse =
            self.client.post("/money/redeem", &account, &wire::RedeemRequest { notes: encoded, payout })?;
        self.confirm(notes)?;
        Ok(r.balance)
    }
}
