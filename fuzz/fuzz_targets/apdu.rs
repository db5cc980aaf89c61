//! The APDU codec and both channel engines: `Command::parse`,
//! `Response::parse`, the card channel (chaining, GET RESPONSE, bounds)
//! behind an echo application, and the reader channel fed arbitrary answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::apdu::{
    CardApplication, CardChannel, Command, Limits, ReaderChannel, Response, StatusWord, TESSERA_AID,
};
use tessera_fuzz::frames;

/// Answers every command with its own message, reversed.
struct Echo;

impl CardApplication for Echo {
    fn aid(&self) -> &[u8] {
        &TESSERA_AID
    }
    fn on_select(&mut self) -> Vec<u8> {
        b"hello".to_vec()
    }
    fn on_deselect(&mut self) {}
    fn on_command(&mut self, ins: u8, _p1: u8, _p2: u8, message: &[u8]) -> Result<Vec<u8>, StatusWord> {
        if ins == 0x00 {
            return Err(StatusWord::WRONG_DATA);
        }
        Ok(message.iter().rev().copied().collect())
    }
}

fuzz_target!(|data: &[u8]| {
    // The codec: whatever parses re-encodes to an APDU that parses the same.
    if let Ok(command) = Command::parse(data) {
        assert!(command.data.len() <= 255);
        assert_eq!(Command::parse(&command.to_bytes()), Ok(command));
    }
    if let Some(response) = Response::parse(data) {
        assert_eq!(response.to_bytes(), data);
    }

    let limits = Limits { max_message: 2048, max_frames: 10 };
    let messages = frames(data);

    // The card side: every answer ends with a status word, and no answer
    // exceeds a short response.
    let mut card = CardChannel::with_limits(Echo, limits);
    for apdu in &messages {
        let answer = card.process_apdu(apdu);
        assert!(answer.len() >= 2 && answer.len() <= 256 + 2, "answer of {} bytes", answer.len());
    }

    // The reader side: sends a message, then digests the fuzzer's answers;
    // its reassembled answer never exceeds the bound.
    let mut reader = ReaderChannel::new(limits).with_frame_size(usize::from(data.first().copied().unwrap_or(255)));
    reader.select(&TESSERA_AID);
    for answer in &messages {
        if reader.next_command().is_none() {
            let _ = reader.send(0x50, 0, 0, answer);
            continue;
        }
        match reader.on_response(answer) {
            Ok(tessera_core::apdu::ReaderEvent::Response(m) | tessera_core::apdu::ReaderEvent::Selected(m)) => {
                assert!(m.len() <= limits.max_message);
            }
            Ok(_) | Err(_) => {}
        }
    }
});
