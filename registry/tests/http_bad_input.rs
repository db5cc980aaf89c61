//! Bad input on every state-changing endpoint: oversized body, malformed
//! JSON and CBOR, missing or bad signature, stale and replayed requests,
//! unknown instrument, wrong issuer. Each must be a 4xx with a typed JSON
//! error — never a 5xx — and leave the database as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera_core::reconcile::request::sign_request;
use tessera_core::{Clock, LocalSigner, Signer, SystemClock, Wire};
use tessera_registry::api::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME, MAX_BODY};
use tessera_registry::embedded::start_embedded;
use tessera_registry::wire::{self, ErrorBody};

const SIGNED: &[&str] = &[
    "/admin/parties",
    "/events",
    "/issue/ticket",
    "/instruments",
    "/reconcile",
    "/sync",
    "/money/topup",
    "/money/balance",
    "/money/withdraw",
    "/money/redeem",
    "/money/refresh",
    "/buy",
    "/refund",
    "/gifts",
    "/gifts/pending",
    "/gifts/answer",
    "/gate/bags",
    "/gate/settlement",
    "/modifications",
    "/modifications/answer",
];

struct Sent {
    status: u16,
    error: ErrorBody,
}

fn send(url: &str, path: &str, body: &[u8], headers: &[(&str, String)]) -> Sent {
    let mut req = ureq::post(&format!("{url}{path}")).set("content-type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req.send_bytes(body) {
        Ok(r) => panic!("{path} accepted bad input: {}", r.status()),
        Err(ureq::Error::Status(status, r)) => {
            let text = r.into_string().unwrap();
            let error: ErrorBody =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: untyped error {text:?}: {e}"));
            Sent { status, error }
        }
        Err(e) => panic!("{path}: transport {e}"),
    }
}

fn auth(signer: &LocalSigner, path: &str, body: &[u8], time: u64) -> Vec<(&'static str, String)> {
    let a = sign_request(signer, "POST", path, body, time, &mut rand::rngs::OsRng).unwrap();
    vec![
        (HEADER_KEY, a.key.to_hex()),
        (HEADER_TIME, a.time.to_string()),
        (HEADER_NONCE, hex::encode(a.nonce)),
        (HEADER_SIGNATURE, a.signature.to_hex()),
    ]
}

fn check(sent: &Sent, path: &str, what: &str, status: u16, code: &str) {
    assert!((400..500).contains(&sent.status), "{path} {what}: {} {}", sent.status, sent.error.message);
    assert_eq!((sent.status, sent.error.error.as_str()), (status, code), "{path} {what}: {}", sent.error.message);
}

#[test]
fn every_endpoint_refuses_bad_input_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_embedded(&dir.path().join("r.db"), &[9; 32]).unwrap();
    let url = reg.url();
    let store = reg.registry.store().clone();
    let caller = LocalSigner::from_seed(&[5; 32]);
    let now = SystemClock.now();
    let before = store.dump().unwrap();

    for path in SIGNED {
        // Oversized: refused before anything is parsed.
        let big = vec![b' '; MAX_BODY + 1];
        check(&send(&url, path, &big, &auth(&caller, path, &big, now)), path, "oversized", 413, "too_large");
        // Missing authentication.
        check(&send(&url, path, b"{}", &[]), path, "unsigned", 401, "missing_auth");
        // Signature over another body.
        let mut headers = auth(&caller, path, b"{}", now);
        check(&send(&url, path, b"{ }", &headers), path, "bad signature", 401, "bad_signature");
        // Garbage in a header.
        headers[3].1 = "zz".into();
        check(&send(&url, path, b"{}", &headers), path, "bad header", 401, "bad_auth");
        // Stale.
        check(&send(&url, path, b"{}", &auth(&caller, path, b"{}", now - 3600)), path, "stale", 401, "stale_request");
        // Malformed JSON, correctly signed.
        let junk = b"{\"items\": [";
        check(&send(&url, path, junk, &auth(&caller, path, junk, now)), path, "malformed json", 400, "malformed_json");
        let unknown_field = b"{\"surprise\": 1}";
        check(
            &send(&url, path, unknown_field, &auth(&caller, path, unknown_field, now)),
            path,
            "unknown field",
            400,
            "malformed_json",
        );
        assert_eq!(store.dump().unwrap(), before, "{path} changed the database");
    }

    // Malformed CBOR where instruments are carried.
    let bad_cbor = wire::b64(&[0x82, 0x01, 0xff]);
    let cases: Vec<(&str, String)> = vec![
        (
            "/reconcile",
            serde_json::to_string(&serde_json::json!({"items": [{"type": "chain", "instrument": bad_cbor}]})).unwrap(),
        ),
        ("/money/redeem", serde_json::to_string(&serde_json::json!({"notes": [bad_cbor], "payout": false})).unwrap()),
        ("/refund", serde_json::to_string(&serde_json::json!({"ticket": bad_cbor, "holders": []})).unwrap()),
        ("/instruments", serde_json::to_string(&serde_json::json!({"instrument": bad_cbor})).unwrap()),
        (
            "/reconcile",
            serde_json::to_string(&serde_json::json!({"items": [{"type": "chain", "instrument": "%%%"}]})).unwrap(),
        ),
        (
            "/reconcile",
            serde_json::to_string(&serde_json::json!({"items": [{"type": "examination", "certificate": bad_cbor}]}))
                .unwrap(),
        ),
        (
            "/reconcile",
            serde_json::to_string(&serde_json::json!({"items": [{"type": "examination", "certificate": "%%%"}]}))
                .unwrap(),
        ),
        (
            "/reconcile",
            serde_json::to_string(
                &serde_json::json!({"items": [{"type": "sale", "claim": bad_cbor, "double_sale": bad_cbor}]}),
            )
            .unwrap(),
        ),
    ];
    for (path, body) in &cases {
        let sent = send(&url, path, body.as_bytes(), &auth(&caller, path, body.as_bytes(), now));
        assert_eq!(sent.status, 400, "{path}: {}", sent.error.message);
        assert!(["malformed_cbor", "bad_base64"].contains(&sent.error.error.as_str()), "{path}: {}", sent.error.error);
    }
    // An examination certificate too large for its wire bound.
    let oversized = wire::b64(&vec![0u8; 4096]);
    let body =
        serde_json::to_vec(&serde_json::json!({"items": [{"type": "examination", "certificate": oversized}]})).unwrap();
    check(
        &send(&url, "/reconcile", &body, &auth(&caller, "/reconcile", &body, now)),
        "/reconcile",
        "big",
        413,
        "too_large",
    );
    assert_eq!(store.dump().unwrap(), before, "malformed upload items changed the database");
    // An unknown upload type is malformed JSON for this version.
    let body = br#"{"items": [{"type": "teleport", "instrument": ""}]}"#;
    check(
        &send(&url, "/reconcile", body, &auth(&caller, "/reconcile", body, now)),
        "/reconcile",
        "unknown type",
        400,
        "malformed_json",
    );

    // Replay: the second copy of a request is refused.
    let body = br#"{"currency": "EUR"}"#;
    let headers = auth(&caller, "/money/balance", body, now);
    let mut first = ureq::post(&format!("{url}/money/balance"));
    for (k, v) in &headers {
        first = first.set(k, v);
    }
    first.send_bytes(body).unwrap();
    check(&send(&url, "/money/balance", body, &headers), "/money/balance", "replay", 409, "replayed");
    let before = store.dump().unwrap();

    // Unknown instrument: signed by a certified issuer key (the registry's
    // own), yet never registered.
    let (_, registry_issuer) = tessera_registry::embedded::signers_from_seed(&[9; 32]);
    let stranger = tessera_core::authority::Issuer::new(registry_issuer);
    let holder = LocalSigner::from_seed(&[6; 32]);
    let ticket = stranger
        .issue(
            tessera_core::Attributes::Coupon(tessera_core::CouponAttributes {
                program: "p".into(),
                title: "t".into(),
                uses: 3,
                valid_from: 0,
                valid_until: now + 1000,
                transferable: true,
            }),
            holder.public_key(),
            now,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
    let link = tessera_core::Signed::sign(
        ticket.next_endorsement(
            caller.public_key(),
            tessera_core::ExchangeId::NONE,
            tessera_core::ExchangeId::NONE,
            now,
        ),
        &holder,
    )
    .unwrap();
    let chain = wire::b64(&ticket.with_link(link).to_bytes());
    let body = serde_json::to_vec(&serde_json::json!({"items": [{"type": "chain", "instrument": chain}]})).unwrap();
    check(
        &send(&url, "/reconcile", &body, &auth(&caller, "/reconcile", &body, now)),
        "/reconcile",
        "unknown",
        404,
        "unknown_instrument",
    );
    let unknown = ureq::get(&format!("{url}/instruments/{}", ticket.id().to_hex())).call().unwrap_err();
    assert!(matches!(unknown, ureq::Error::Status(404, _)));

    // Wrong issuer: registering someone else's instrument.
    let body = serde_json::to_vec(&serde_json::json!({"instrument": wire::b64(&ticket.to_bytes())})).unwrap();
    check(
        &send(&url, "/instruments", &body, &auth(&caller, "/instruments", &body, now)),
        "/instruments",
        "wrong issuer",
        403,
        "wrong_issuer",
    );
    // Only the registry key certifies parties.
    let body = serde_json::to_vec(&wire::PartyRequest {
        key: caller.public_key().to_hex(),
        role: "issuer".into(),
        name: "me".into(),
        not_after: now + 10,
    })
    .unwrap();
    check(
        &send(&url, "/admin/parties", &body, &auth(&caller, "/admin/parties", &body, now)),
        "/admin/parties",
        "not operator",
        403,
        "not_operator",
    );
    // Only a certified issuer creates events.
    let body = serde_json::to_vec(&wire::EventJson {
        event_id: "e".into(),
        title: "t".into(),
        zones: vec!["a".into()],
        valid_from: 0,
        valid_until: 1,
        price: wire::AmountJson { currency: "EUR".into(), minor: 1 },
        transferable: true,
        uses: 1,
    })
    .unwrap();
    check(
        &send(&url, "/events", &body, &auth(&caller, "/events", &body, now)),
        "/events",
        "not issuer",
        403,
        "not_issuer",
    );
    // Unknown event.
    let body = serde_json::to_vec(&wire::IssueTicketRequest {
        event_id: "nope".into(),
        zone: "a".into(),
        seat: None,
        holder: caller.public_key().to_hex(),
    })
    .unwrap();
    check(
        &send(&url, "/issue/ticket", &body, &auth(&caller, "/issue/ticket", &body, now)),
        "/issue/ticket",
        "unknown event",
        404,
        "unknown_event",
    );
    // Withdrawing without funds, and a bad currency.
    let body = serde_json::to_vec(&wire::WithdrawRequest {
        amount: wire::AmountJson { currency: "EUR".into(), minor: 100 },
        holders: vec![caller.public_key().to_hex()],
    })
    .unwrap();
    check(
        &send(&url, "/money/withdraw", &body, &auth(&caller, "/money/withdraw", &body, now)),
        "/money/withdraw",
        "no funds",
        402,
        "insufficient_funds",
    );
    let body = br#"{"amount": {"currency": "eur", "minor": 5}, "payment": "x"}"#;
    check(
        &send(&url, "/money/topup", body, &auth(&caller, "/money/topup", body, now)),
        "/money/topup",
        "bad currency",
        400,
        "bad_currency",
    );
    let body = br#"{"amount": {"currency": "EUR", "minor": 5}, "payment": "decline-me"}"#;
    check(
        &send(&url, "/money/topup", body, &auth(&caller, "/money/topup", body, now)),
        "/money/topup",
        "declined",
        402,
        "payment_declined",
    );
    assert_eq!(store.dump().unwrap(), before, "a refused request changed the database");

    // Unknown routes are typed too.
    let r = ureq::get(&format!("{url}/nowhere")).call().unwrap_err();
    match r {
        ureq::Error::Status(404, r) => assert_eq!(r.into_json::<ErrorBody>().unwrap().error, "no_route"),
        other => panic!("{other:?}"),
    }
}
