//! The gate's reader side: `GateExamination::on_response` fed the card's
//! answers from the fuzzer (length-prefixed, `tessera_fuzz::frames`), with a
//! fixed challenge so recorded taps stay valid seeds. A decision is only
//! ever an admission of an instrument the verifier accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use tessera_core::presentation::{GateEvent, Outcome};
use tessera_core::{Signer, Verifier};
use tessera_fuzz::{T0, Venue, frames};

static VENUE: OnceLock<Venue> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let venue = VENUE.get_or_init(Venue::new);
    let ledger = BTreeMap::new();
    let ctx = venue.gate_context(&ledger);
    let mut exam = venue.examination();
    for answer in frames(data) {
        if exam.next_command().is_none() {
            break;
        }
        match exam.on_response(answer, &venue.gate, &ctx) {
            Ok(GateEvent::Decided(e)) => {
                if e.outcome == Outcome::Admitted {
                    let verifier = Verifier::new(&venue.trust, &venue.deny);
                    assert!(
                        verifier.verify(&e.presentation.instrument, T0).is_ok(),
                        "admitted an unverifiable instrument"
                    );
                }
                e.certificate.verify(&venue.gate.public_key()).expect("the gate signs what it decides");
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
});
