//! The OpenAPI 3.1 document of the HTTP API, built from one table so the
//! served document and `docs/openapi.json` (checked by a test) cannot drift
//! from each other.

use serde_json::{Value, json};

/// `(method, path, summary, signed, request schema, response schema)`.
type Endpoint = (&'static str, &'static str, &'static str, bool, Option<&'static str>, &'static str);

const ENDPOINTS: &[Endpoint] = &[
    ("get", "/healthz", "Liveness: the database answers.", false, None, "Health"),
    ("get", "/metrics", "Prometheus text exposition.", false, None, "Metrics"),
    ("get", "/openapi.json", "This document.", false, None, "OpenApi"),
    ("get", "/info", "Registry and issuer keys, trust-list version, backend.", false, None, "InfoResponse"),
    (
        "get",
        "/trust-list",
        "The registry-signed trust list (application/cbor, Signed<TrustListBody>).",
        false,
        None,
        "Cbor",
    ),
    ("get", "/deny-list", "The registry-signed deny list (application/cbor, Signed<DenyList>).", false, None, "Cbor"),
    ("get", "/events", "Every event.", false, None, "EventsResponse"),
    (
        "get",
        "/instruments/{id}",
        "One row of the registered-ticket list with its former-holder chain and the misuse proofs stored for it \
         (double transfer, used after transfer).",
        false,
        None,
        "InstrumentStatus",
    ),
    (
        "post",
        "/admin/parties",
        "Certify an issuer, gate or merchant key (registry key only).",
        true,
        Some("PartyRequest"),
        "PartyResponse",
    ),
    ("post", "/events", "Create an event (certified issuer).", true, Some("EventJson"), "Empty"),
    (
        "post",
        "/issue/ticket",
        "The organiser has a ticket issued to a wallet's holder key.",
        true,
        Some("IssueTicketRequest"),
        "InstrumentsResponse",
    ),
    (
        "post",
        "/instruments",
        "An issuer registers an instrument it issued itself.",
        true,
        Some("RegisterInstrumentRequest"),
        "Empty",
    ),
    (
        "post",
        "/reconcile",
        "Upload typed items (chain, sale claim, gate examination certificate); per item: registered certificate, \
         superseded, conflict proof, sale verdict, examination recorded, or refusal (409 sale_refunded: a delivery \
         of a sale already refunded to its buyer, decided in the same transaction as the registration).",
        true,
        Some("ReconcileRequest"),
        "ReconcileResponse",
    ),
    ("post", "/sync", "Notices, incremental deny list, trust-list version.", true, Some("SyncRequest"), "SyncResponse"),
    (
        "post",
        "/money/topup",
        "Credit the account through the payment provider.",
        true,
        Some("TopUpRequest"),
        "BalanceResponse",
    ),
    ("post", "/money/balance", "The signing account's balance.", true, Some("BalanceRequest"), "BalanceResponse"),
    (
        "post",
        "/money/withdraw",
        "Notes in fixed denominations from the balance.",
        true,
        Some("WithdrawRequest"),
        "InstrumentsResponse",
    ),
    (
        "post",
        "/money/redeem",
        "Notes endorsed to the issuer key back to the balance (optionally paid out). A retry after the first \
         attempt committed answers the balance again.",
        true,
        Some("RedeemRequest"),
        "BalanceResponse",
    ),
    (
        "post",
        "/money/refresh",
        "Notes for fresh notes of exactly the same value (split or merge).",
        true,
        Some("RefreshRequest"),
        "InstrumentsResponse",
    ),
    (
        "post",
        "/buy",
        "Pay with notes and balance; a ticket to a fresh holder key.",
        true,
        Some("BuyRequest"),
        "InstrumentsResponse",
    ),
    (
        "post",
        "/refund",
        "A ticket endorsed back for notes of its face price.",
        true,
        Some("RefundRequest"),
        "InstrumentsResponse",
    ),
    (
        "post",
        "/gifts",
        "Leave an instrument (endorsed to the issuer key) for a recipient's account.",
        true,
        Some("GiftRequest"),
        "GiftResponse",
    ),
    (
        "post",
        "/gifts/pending",
        "Gifts waiting for the signing account.",
        true,
        Some("PendingGiftsRequest"),
        "PendingGifts",
    ),
    (
        "post",
        "/gifts/answer",
        "Accept (to a fresh holder key) or decline (back to the sender) a gift.",
        true,
        Some("GiftAnswer"),
        "InstrumentsResponse",
    ),
    (
        "post",
        "/gate/bags",
        "Settle a gate's signed bag of examination records. A byte-identical bag uploaded again gets its original \
         settlement with replayed: true; another bag under a used number is refused (409 bag_reused). An admitted \
         stale copy (presented by a key that had already passed the ticket on) gives a used-after-transfer proof: \
         stored, its key flagged, the ticket denied and replaced for its registered holder; the proofs are listed \
         in used_after_transfer.",
        true,
        Some("BagUpload"),
        "SettlementReport",
    ),
    ("post", "/gate/settlement", "The signing gate's totals.", true, Some("SettlementRequest"), "SettlementReport"),
    (
        "post",
        "/modifications",
        "The event's organiser changes a ticket; its holder is notified.",
        true,
        Some("ModifyRequest"),
        "ModifyResponse",
    ),
    (
        "post",
        "/modifications/answer",
        "The holder accepts (new ticket), refuses (ticket disabled) or asks a refund (notes).",
        true,
        Some("ModificationAnswer"),
        "InstrumentsResponse",
    ),
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    schemas.insert(
        "ErrorBody".into(),
        json!({"type": "object", "required": ["error", "message"],
               "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}),
    );
    for (method, path, summary, signed, request, response) in ENDPOINTS {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {content_type(response): {"schema": reference(response)}}},
                "4XX": {"description": "Refused input: a typed error", "content": {"application/json": {"schema": reference("ErrorBody")}}},
                "503": {"description": "The database failed", "content": {"application/json": {"schema": reference("ErrorBody")}}}
            }
        });
        if *signed {
            op["security"] = json!([{"TesseraRequestSignature": []}]);
        }
        if let Some(req) = request {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": reference(req)}}});
            schemas.entry((*req).to_owned()).or_insert_with(
                || json!({"type": "object", "description": format!("See tessera_registry::wire::{req}.")}),
            );
        }
        schemas.entry((*response).to_owned()).or_insert_with(
            || json!({"type": "object", "description": format!("See tessera_registry::wire::{response}.")}),
        );
        if path.contains('{') {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Tessera registry (service provider)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"TesseraRequestSignature": {
                "type": "apiKey", "in": "header", "name": "x-tessera-signature",
                "description": "Ed25519 under context registry-request over method, path, body digest, x-tessera-time and x-tessera-nonce, by the key in x-tessera-key."
            }}
        }
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn content_type(schema: &str) -> &'static str {
    match schema {
        "Cbor" => "application/cbor",
        "Metrics" => "text/plain",
        _ => "application/json",
    }
}
