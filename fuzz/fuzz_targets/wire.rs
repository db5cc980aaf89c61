//! Every core wire message (`Wire::from_bytes`): the first byte picks the
//! type (`tessera_fuzz::WIRE_TYPES`), the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_fuzz::{Venue, decode_wire};

static VENUE: OnceLock<Venue> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    decode_wire(VENUE.get_or_init(Venue::new), selector, bytes);
});
