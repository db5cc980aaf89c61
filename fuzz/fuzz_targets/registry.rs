//! Registry request bodies, as the HTTP layer hands them on: the JSON body
//! (`serde_json::from_slice`, as `api::authenticate` does) and then the
//! service call that decodes the base64 CBOR inside it (instruments, sale
//! claims, bags, notes) and judges it, on SQLite in memory. The first byte
//! picks the endpoint (`tessera_fuzz::registry::ENDPOINTS`), the second the
//! caller (registry operator, issuer, or a stranger); the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_fuzz::registry::{Fixture, call};

static REGISTRY: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let [endpoint, caller, body @ ..] = data else { return };
    let fixture = REGISTRY.get_or_init(Fixture::new);
    call(fixture, *endpoint, *caller, body);
});
