//! The HTTP API (axum on tokio). Reads are open; every state-changing
//! request is signed (see [`tessera_core::reconcile::request`]) with these
//! headers:
//!
//! ```text
//! x-tessera-key        caller's public key, hex
//! x-tessera-time       unix seconds
//! x-tessera-nonce      16 random bytes, hex
//! x-tessera-signature  Ed25519 signature, hex
//! ```
//!
//! A request is handled as: body read under [`MAX_BODY`] (413) → headers
//! (401) → signature and freshness (401) → JSON (400) → nonce stored, a
//! replay refused (409) → the service call. Every refusal is a typed JSON
//! [`ErrorBody`](crate::wire::ErrorBody); database work runs on the
//! blocking pool.

use crate::error::ApiError;
use crate::service::Registry;
use crate::wire;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera_core::reconcile::request::{NONCE_LEN, RequestAuthError, RequestSignature};
use tessera_core::{PublicKey, Signature, Wire};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// How far a request's timestamp may be from the registry's clock.
pub const FRESHNESS: u64 = 300;

/// Header names.
pub const HEADER_KEY: &str = "x-tessera-key";
/// Header names.
pub const HEADER_TIME: &str = "x-tessera-time";
/// Header names.
pub const HEADER_NONCE: &str = "x-tessera-nonce";
/// Header names.
pub const HEADER_SIGNATURE: &str = "x-tessera-signature";

/// Shared state of the HTTP layer.
#[derive(Debug)]
pub struct AppState {
    /// The service.
    pub registry: Arc<Registry>,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

type Shared = Arc<AppState>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

/// The router.
pub fn router(registry: Arc<Registry>) -> Router {
    let state = Arc::new(AppState { registry, requests: Mutex::new(BTreeMap::new()) });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { json(&crate::openapi::document()) }))
        .route("/info", get(|State(s): State<Shared>| async move { blocking(&s, |r| r.info()).await }))
        .route("/trust-list", get(trust_list))
        .route("/deny-list", get(deny_list))
        .route("/events", get(|State(s): State<Shared>| async move { blocking(&s, |r| r.events()).await }))
        .route(
            "/instruments/{id}",
            get(|State(s): State<Shared>, Path(id): Path<String>| async move {
                blocking(&s, move |r| r.instrument_status(&id)).await
            }),
        )
        .route("/admin/parties", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.put_party(c, b))))
        .route(
            "/events",
            post(|s: State<Shared>, req: Request| {
                signed(s, req, |r, c, _, b: wire::EventJson| r.create_event(c, b).map(|()| Empty {}))
            }),
        )
        .route(
            "/issue/ticket",
            post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.issue_ticket(c, b))),
        )
        .route(
            "/instruments",
            post(|s: State<Shared>, req: Request| {
                signed(s, req, |r, c, _, b| r.register_instrument(c, b).map(|()| Empty {}))
            }),
        )
        .route("/reconcile", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.reconcile(c, b))))
        .route("/sync", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.sync(c, b))))
        .route("/money/topup", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.top_up(c, b))))
        .route(
            "/money/balance",
            post(|s: State<Shared>, req: Request| {
                signed(s, req, |r, c, _, b: BalanceRequest| r.balance(c, &b.currency))
            }),
        )
        .route(
            "/money/withdraw",
            post(|s: State<Shared>, req: Request| signed(s, req, |r, c, n, b| r.withdraw(c, n, b))),
        )
        .route("/money/redeem", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, n, b| r.redeem(c, n, b))))
        .route("/money/refresh", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, n, b| r.refresh(c, n, b))))
        .route("/buy", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, n, b| r.buy(c, n, b))))
        .route("/refund", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, n, b| r.refund(c, n, b))))
        .route("/gifts", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.create_gift(c, b))))
        .route(
            "/gifts/pending",
            post(|s: State<Shared>, req: Request| {
                signed(s, req, |r, c, _, _b: wire::PendingGiftsRequest| r.pending_gifts(c))
            }),
        )
        .route("/gifts/answer", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.answer_gift(c, b))))
        .route("/gate/bags", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.upload_bag(c, b))))
        .route(
            "/gate/settlement",
            post(|s: State<Shared>, req: Request| {
                signed(s, req, |r, c, _, _b: wire::SettlementRequest| r.settlement(c))
            }),
        )
        .route("/modifications", post(|s: State<Shared>, req: Request| signed(s, req, |r, c, _, b| r.modify(c, b))))
        .route(
            "/modifications/answer",
            post(|s: State<Shared>, req: Request| signed(s, req, |r, c, n, b| r.answer_modification(c, n, b))),
        )
        .fallback(|| async { ApiError::not_found("no_route", "no such endpoint").into_response() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// `POST /money/balance` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceRequest {
    currency: String,
}

/// An empty JSON object answer.
#[derive(Debug, Serialize)]
struct Empty {}

async fn healthz(State(s): State<Shared>) -> Response {
    match blocking(&s, |r| r.store().trust_version().map_err(ApiError::from)).await.status() {
        StatusCode::OK => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        _ => ApiError::new(503, "unhealthy", "the database does not answer").into_response(),
    }
}

async fn trust_list(State(s): State<Shared>) -> Response {
    cbor(&s, |r| Ok(r.trust_list()?.signed().to_bytes())).await
}

async fn deny_list(State(s): State<Shared>) -> Response {
    cbor(&s, |r| Ok(r.deny_list()?.to_bytes())).await
}

async fn cbor(s: &Shared, f: impl FnOnce(&Registry) -> Result<Vec<u8>, ApiError> + Send + 'static) -> Response {
    let registry = s.registry.clone();
    match tokio::task::spawn_blocking(move || f(&registry)).await {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/cbor"))], bytes).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::new(500, "internal", "the handler failed").into_response(),
    }
}

async fn blocking<T: Serialize + Send + 'static>(
    s: &Shared,
    f: impl FnOnce(&Registry) -> Result<T, ApiError> + Send + 'static,
) -> Response {
    let registry = s.registry.clone();
    match tokio::task::spawn_blocking(move || f(&registry)).await {
        Ok(Ok(v)) => json(&v),
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::new(500, "internal", "the handler failed").into_response(),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ApiError> {
    headers
        .get(name)
        .ok_or_else(|| ApiError::unauthorized("missing_auth", format!("header {name} is required")))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("bad_auth", format!("header {name} is not text")))
}

fn parse_auth(headers: &HeaderMap) -> Result<RequestSignature, ApiError> {
    let key = PublicKey::from_hex(header_str(headers, HEADER_KEY)?)
        .map_err(|_| ApiError::unauthorized("bad_auth", "the key header is not 64 hex digits"))?;
    let time = header_str(headers, HEADER_TIME)?
        .parse::<u64>()
        .map_err(|_| ApiError::unauthorized("bad_auth", "the time header is not a number"))?;
    let mut nonce = [0u8; NONCE_LEN];
    hex::decode_to_slice(header_str(headers, HEADER_NONCE)?, &mut nonce)
        .map_err(|_| ApiError::unauthorized("bad_auth", "the nonce header is not 32 hex digits"))?;
    let signature = Signature::from_hex(header_str(headers, HEADER_SIGNATURE)?)
        .map_err(|_| ApiError::unauthorized("bad_auth", "the signature header is not 128 hex digits"))?;
    Ok(RequestSignature { key, time, nonce, signature })
}

/// Authenticates and runs a state-changing request. `f` gets the caller's
/// key, a reference unique to this request (key and nonce) and the body.
async fn signed<Req, Resp, F>(State(s): State<Shared>, req: Request, f: F) -> Response
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: FnOnce(&Registry, &PublicKey, &str, Req) -> Result<Resp, ApiError> + Send + 'static,
{
    match authenticate(&s, req).await {
        Ok((auth, body)) => {
            let reference = format!("{}:{}", auth.key.to_hex(), hex::encode(auth.nonce));
            blocking(&s, move |r| {
                let now = r.now();
                if !r.store().use_nonce(&auth.key, &auth.nonce, now, now.saturating_sub(2 * FRESHNESS))? {
                    return Err(ApiError::conflict("replayed", "this request was seen before"));
                }
                f(r, &auth.key, &reference, body)
            })
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn authenticate<Req: DeserializeOwned>(s: &Shared, req: Request) -> Result<(RequestSignature, Req), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::new(413, "too_large", format!("the body is over {MAX_BODY} bytes")))?;
    let auth = parse_auth(&parts.headers)?;
    auth.verify(parts.method.as_str(), parts.uri.path(), &bytes, s.registry.now(), FRESHNESS).map_err(|e| match e {
        RequestAuthError::BadSignature => ApiError::unauthorized("bad_signature", e.to_string()),
        RequestAuthError::Stale { .. } => ApiError::unauthorized("stale_request", e.to_string()),
    })?;
    let body: Req =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
    Ok((auth, body))
}

/// Logs each request and counts it by route and status.
async fn observe(State(s): State<Shared>, req: Request<Body>, next: axum::middleware::Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    tracing::info!(%method, %route, status, micros = started.elapsed().as_micros() as u64, "request");
    let mut counts = s.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *counts.entry((method, route, status)).or_insert(0) += 1;
    response
}

async fn metrics(State(s): State<Shared>) -> Response {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP tessera_registry_requests_total HTTP requests by route and status.");
    let _ = writeln!(out, "# TYPE tessera_registry_requests_total counter");
    {
        let counts = s.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((method, route, status), n) in counts.iter() {
            let _ = writeln!(
                out,
                "tessera_registry_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
    }
    let c = &s.registry.counters;
    for (name, help, v) in [
        ("endorsements_registered_total", "Endorsements newly registered.", c.endorsements_registered.load(Relaxed)),
        ("conflicts_total", "Double transfers caught.", c.conflicts.load(Relaxed)),
        ("instruments_issued_total", "Instruments issued.", c.issued.load(Relaxed)),
    ] {
        let _ = writeln!(out, "# HELP tessera_registry_{name} {help}");
        let _ = writeln!(out, "# TYPE tessera_registry_{name} counter");
        let _ = writeln!(out, "tessera_registry_{name} {v}");
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], out).into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes
/// requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry)).with_graceful_shutdown(shutdown).await
}
