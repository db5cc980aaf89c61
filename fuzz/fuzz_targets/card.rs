//! The phone as a card: `WalletCard::process_apdu` on a real wallet (SQLite
//! in memory, one ticket), fed a sequence of command APDUs. The first byte's
//! low bit sets "accept gifts by tap"; the rest is length-prefixed APDUs
//! (`tessera_fuzz::frames`). Seeds are recorded real taps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_fuzz::{Venue, frames};

static VENUE: OnceLock<Venue> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let venue = VENUE.get_or_init(Venue::new);
    let mut card = venue.card();
    card.accept_gifts(flags & 1 == 1);
    for apdu in frames(rest) {
        let answer = card.process_apdu(apdu);
        assert!(answer.len() >= 2 && answer.len() <= 256 + 2, "answer of {} bytes", answer.len());
    }
    // The wallet still reads every record it lists.
    for ticket in card.wallet().tickets().expect("the wallet reads after any APDUs") {
        card.wallet().instrument(&ticket.id).expect("a listed ticket reads");
    }
});
