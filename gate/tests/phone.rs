#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sending phone's driver (`phone::send_tap`) over a receiving
//! `WalletCard` in the same process, and over a link that breaks mid-tap.

use tessera_core::presentation::{NfcTransferStep, WalletCard};
use tessera_core::store::{Holding, SqliteStore};
use tessera_core::transfer::OfferTerms;
use tessera_core::{Clock, SystemClock, Wallet};
use tessera_gate::Transceiver;
use tessera_gate::phone::{TapError, send_tap};

mod common;
use common::Venue;

fn wallets() -> (Wallet<SqliteStore>, Wallet<SqliteStore>, tessera_core::InstrumentId) {
    let venue = Venue::new(&[]);
    let mut sender = venue.wallet(SqliteStore::in_memory().unwrap());
    let id = venue.give_ticket(&mut sender, "north", None);
    (sender, venue.wallet(SqliteStore::in_memory().unwrap()), id)
}

/// Passes `budget` commands, then breaks (the phones moved apart).
struct Breaking<'c> {
    card: &'c mut WalletCard<SqliteStore>,
    budget: usize,
}

impl Transceiver for Breaking<'_> {
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        if self.budget == 0 {
            return Err("target lost".into());
        }
        self.budget -= 1;
        Ok(self.card.process_apdu(command))
    }
}

#[test]
fn a_gift_moves_in_one_tap() {
    let (mut sender, receiver, id) = wallets();
    let mut card = WalletCard::new(receiver);
    card.accept_gifts(true);
    let (_, step) = sender.offer_transfer(&[id], OfferTerms::Gift, SystemClock.now() + 600).unwrap();
    let tap = send_tap(&mut card, &mut sender, step.send.unwrap()).unwrap();
    assert!(matches!(tap.step, NfcTransferStep::Done(_)), "{tap:?}");
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::Gone);
    assert_eq!(card.wallet().instrument(&id).unwrap().holding, Holding::Held);
}

#[test]
fn a_broken_tap_leaves_the_ticket_pending_and_changes_nothing_else() {
    let (mut sender, receiver, id) = wallets();
    let mut card = WalletCard::new(receiver);
    card.accept_gifts(true);
    let (_, step) = sender.offer_transfer(&[id], OfferTerms::Gift, SystemClock.now() + 600).unwrap();
    // SELECT and the offer pass; the phones part before the certificate.
    let err = send_tap(&mut Breaking { card: &mut card, budget: 3 }, &mut sender, step.send.unwrap()).unwrap_err();
    assert!(matches!(err, TapError::Link(_)), "{err}");
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::PendingOut, "nothing is lost or doubled");
    card.deactivate();
    // Junk from a broken card is refused and changes nothing.
    struct Junk;
    impl Transceiver for Junk {
        fn transceive(&mut self, _: &[u8]) -> Result<Vec<u8>, String> {
            Ok(vec![0x6A])
        }
    }
    assert!(send_tap(&mut Junk, &mut sender, Vec::new()).is_err());
    assert_eq!(sender.instrument(&id).unwrap().holding, Holding::PendingOut);
    // The card never got the whole offer: a poll finds nothing to collect.
    let again = send_tap(&mut card, &mut sender, Vec::new()).unwrap();
    assert_eq!(again.step, NfcTransferStep::AwaitingPeer);
    assert!(card.wallet().instrument(&id).is_err(), "the receiver holds nothing");
}
