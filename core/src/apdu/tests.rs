#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

/// Echoes every message back reversed, and counts what reached it.
#[derive(Debug, Default)]
struct Echo {
    selects: usize,
    commands: Vec<(u8, Vec<u8>)>,
}

impl CardApplication for Echo {
    fn aid(&self) -> &[u8] {
        &TESSERA_AID
    }
    fn on_select(&mut self) -> Vec<u8> {
        self.selects += 1;
        b"hello".to_vec()
    }
    fn on_deselect(&mut self) {}
    fn on_command(&mut self, ins: u8, _p1: u8, _p2: u8, message: &[u8]) -> Result<Vec<u8>, StatusWord> {
        if ins == 0x7F {
            return Err(StatusWord::WRONG_DATA);
        }
        self.commands.push((ins, message.to_vec()));
        Ok(message.iter().rev().copied().collect())
    }
}

/// Drives one exchange to its end, with a bound on round trips.
fn drive(reader: &mut ReaderChannel, card: &mut CardChannel<Echo>) -> Result<ReaderEvent, ReaderError> {
    for _ in 0..10_000 {
        let command = reader.next_command().expect("a command is due");
        let answer = card.process_apdu(&command);
        match reader.on_response(&answer)? {
            ReaderEvent::Continue => continue,
            done => return Ok(done),
        }
    }
    panic!("exchange did not finish");
}

fn selected() -> (ReaderChannel, CardChannel<Echo>) {
    let mut reader = ReaderChannel::default();
    let mut card = CardChannel::new(Echo::default());
    reader.select(&TESSERA_AID);
    assert_eq!(drive(&mut reader, &mut card).unwrap(), ReaderEvent::Selected(b"hello".to_vec()));
    (reader, card)
}

fn sw(bytes: &[u8]) -> StatusWord {
    Response::parse(bytes).unwrap().status
}

#[test]
fn parses_the_four_short_cases() {
    assert_eq!(Command::parse(&[0x80, 0x50, 1, 2]).unwrap().le, None);
    let c2 = Command::parse(&[0x00, 0xC0, 0, 0, 0]).unwrap();
    assert_eq!((c2.data.len(), c2.le), (0, Some(256)));
    let c3 = Command::parse(&[0x80, 0x50, 0, 0, 2, 9, 8]).unwrap();
    assert_eq!((c3.data, c3.le), (vec![9, 8], None));
    let c4 = Command::parse(&[0x80, 0x50, 0, 0, 2, 9, 8, 0x10]).unwrap();
    assert_eq!((c4.data.clone(), c4.le), (vec![9, 8], Some(16)));
    assert_eq!(c4.to_bytes(), vec![0x80, 0x50, 0, 0, 2, 9, 8, 0x10]);
}

#[test]
fn wrong_lengths_are_refused() {
    for bad in [
        &[][..],
        &[0x80],
        &[0x80, 0x50, 0],
        &[0x80, 0x50, 0, 0, 3, 1, 2],       // Lc says 3, 2 follow
        &[0x80, 0x50, 0, 0, 1, 1, 2, 3],    // 2 bytes too many
        &[0x80, 0x50, 0, 0, 0, 0, 1, 0xAA], // extended APDU
    ] {
        assert_eq!(Command::parse(bad), Err(StatusWord::WRONG_LENGTH), "{bad:02x?}");
    }
    let mut too_long = vec![0x80, 0x50, 0, 0, 255];
    too_long.extend(std::iter::repeat_n(0, 257));
    assert_eq!(Command::parse(&too_long), Err(StatusWord::WRONG_LENGTH));
}

#[test]
fn select_answers_only_our_aid() {
    let mut card = CardChannel::new(Echo::default());
    let other = Command::select(&[0xF0, 1, 2, 3, 4, 5]).to_bytes();
    assert_eq!(sw(&card.process_apdu(&other)), StatusWord::FILE_NOT_FOUND);
    assert!(!card.is_selected());
    let ours = card.process_apdu(&Command::select(&TESSERA_AID).to_bytes());
    assert_eq!(ours, b"hello\x90\x00".to_vec());
    assert!(card.is_selected());
    // Selecting another application deselects ours.
    assert_eq!(sw(&card.process_apdu(&other)), StatusWord::FILE_NOT_FOUND);
    assert!(!card.is_selected());
}

#[test]
fn commands_before_select_are_refused_and_reach_nothing() {
    let mut card = CardChannel::new(Echo::default());
    let answer = card.process_apdu(&[0x80, INS_PRESENT, 0, 0, 1, 7, 0]);
    assert_eq!(sw(&answer), StatusWord::CONDITIONS_NOT_SATISFIED);
    assert!(card.app().commands.is_empty());
}

#[test]
fn unknown_class_and_instruction() {
    let (_, mut card) = selected();
    assert_eq!(sw(&card.process_apdu(&[0x40, 0x50, 0, 0])), StatusWord::CLA_NOT_SUPPORTED);
    assert_eq!(sw(&card.process_apdu(&[0x00, 0xB0, 0, 0])), StatusWord::INS_NOT_SUPPORTED);
    assert_eq!(sw(&card.process_apdu(&[0x00, 0xA4, 0x00, 0x00, 1, 1])), StatusWord::WRONG_P1_P2);
}

#[test]
fn get_response_with_nothing_pending() {
    let (_, mut card) = selected();
    assert_eq!(sw(&card.process_apdu(&Command::get_response(256).to_bytes())), StatusWord::CONDITIONS_NOT_SATISFIED);
}

#[test]
fn messages_of_every_size_round_trip() {
    for len in [0usize, 1, 254, 255, 256, 257, 511, 1000, 4096, Limits::DEFAULT_MAX_MESSAGE] {
        let (mut reader, mut card) = selected();
        let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        reader.send(INS_PRESENT, 0, 0, &message).unwrap();
        let answer = drive(&mut reader, &mut card).unwrap();
        let expected: Vec<u8> = message.iter().rev().copied().collect();
        assert_eq!(answer, ReaderEvent::Response(expected), "len {len}");
        assert_eq!(card.app().commands, vec![(INS_PRESENT, message)]);
        assert!(reader.is_idle());
    }
}

#[test]
fn too_many_frames_are_refused_and_reach_nothing() {
    let limits = Limits { max_message: 100_000, max_frames: 4 };
    let mut card = CardChannel::with_limits(Echo::default(), limits);
    card.process_apdu(&Command::select(&TESSERA_AID).to_bytes());
    let frame = [0x90, INS_PRESENT, 0, 0, 1, 0xAB];
    for _ in 0..3 {
        assert_eq!(sw(&card.process_apdu(&frame)), StatusWord::OK);
    }
    assert_eq!(sw(&card.process_apdu(&frame)), StatusWord::NOT_ENOUGH_MEMORY);
    // The chain was dropped: a final frame now carries only itself.
    let last = card.process_apdu(&[0x80, INS_PRESENT, 0, 0, 1, 0xCD, 0]);
    assert_eq!(last, vec![0xCD, 0x90, 0x00]);
    assert_eq!(card.app().commands, vec![(INS_PRESENT, vec![0xCD])]);
}

#[test]
fn oversized_chain_is_refused() {
    let limits = Limits { max_message: 300, max_frames: 100 };
    let mut card = CardChannel::with_limits(Echo::default(), limits);
    card.process_apdu(&Command::select(&TESSERA_AID).to_bytes());
    let mut frame = vec![0x90, INS_PRESENT, 0, 0, 200];
    frame.extend([1u8; 200]);
    assert_eq!(sw(&card.process_apdu(&frame)), StatusWord::OK);
    assert_eq!(sw(&card.process_apdu(&frame)), StatusWord::NOT_ENOUGH_MEMORY);
    assert!(card.app().commands.is_empty());
}

#[test]
fn a_chain_that_changes_instruction_is_refused() {
    let (_, mut card) = selected();
    assert_eq!(sw(&card.process_apdu(&[0x90, INS_PRESENT, 0, 0, 1, 1])), StatusWord::OK);
    assert_eq!(sw(&card.process_apdu(&[0x80, INS_CONFIRM, 0, 0, 1, 2])), StatusWord::LAST_COMMAND_EXPECTED);
    assert!(card.app().commands.is_empty());
}

#[test]
fn reader_refuses_oversized_answers() {
    let limits = Limits { max_message: 300, max_frames: 100 };
    let mut reader = ReaderChannel::new(limits);
    let mut card = CardChannel::new(Echo::default());
    reader.select(&TESSERA_AID);
    drive(&mut reader, &mut card).unwrap();
    // The card answers with as much as it got; the reader's own bound is smaller.
    let big = vec![3u8; 290];
    reader.send(INS_PRESENT, 0, 0, &big).unwrap();
    assert!(drive(&mut reader, &mut card).is_ok());
    let mut reader_small = ReaderChannel::new(Limits { max_message: 1000, max_frames: 2 });
    reader_small.select(&TESSERA_AID);
    drive(&mut reader_small, &mut card).unwrap();
    reader_small.send(INS_PRESENT, 0, 0, &[5u8; 900]).unwrap();
    assert_eq!(drive(&mut reader_small, &mut card), Err(ReaderError::TooManyFrames(2)));
    assert!(reader_small.is_idle());
    assert_eq!(reader.send(INS_PRESENT, 0, 0, &[0u8; 301]), Err(ReaderError::MessageTooLarge { len: 301, max: 300 }));
}

#[test]
fn reader_reports_status_words() {
    let (mut reader, mut card) = selected();
    reader.send(0x7F, 0, 0, b"x").unwrap();
    assert_eq!(drive(&mut reader, &mut card), Err(ReaderError::Status(StatusWord::WRONG_DATA)));
    assert_eq!(reader.on_response(&[0x90, 0x00]), Err(ReaderError::NotAwaiting));
}

#[test]
fn traffic_counts_every_byte() {
    let (mut reader, mut card) = selected();
    reader.send(INS_PRESENT, 0, 0, &[1u8; 600]).unwrap();
    drive(&mut reader, &mut card).unwrap();
    let t = reader.traffic();
    // SELECT + 3 frames + 2 GET RESPONSE.
    assert_eq!(t.commands, 6);
    assert_eq!(t.bytes_sent, (5 + 8 + 1) + (5 + 255) * 2 + (5 + 90 + 1) + 5 * 2);
    assert_eq!(t.bytes_received, (5 + 2) + 2 * 2 + (256 + 2) * 2 + (88 + 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_byte_string_makes_the_card_panic(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut card = CardChannel::with_limits(Echo::default(), Limits { max_message: 600, max_frames: 4 });
        for (i, frame) in frames.iter().enumerate() {
            if i == 1 {
                card.process_apdu(&Command::select(&TESSERA_AID).to_bytes());
            }
            let answer = card.process_apdu(frame);
            prop_assert!(answer.len() >= 2 && answer.len() <= MAX_RESPONSE_DATA + 2);
        }
    }

    #[test]
    fn no_byte_string_makes_the_reader_panic(answers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut reader = ReaderChannel::new(Limits { max_message: 600, max_frames: 4 });
        reader.select(&TESSERA_AID);
        for answer in &answers {
            if reader.next_command().is_none() {
                let _ = reader.send(INS_PRESENT, 0, 0, &[1u8; 300]);
                reader.next_command();
            }
            let _ = reader.on_response(answer);
        }
    }

    #[test]
    fn any_message_round_trips(message in prop::collection::vec(any::<u8>(), 0..2000), frame in 32usize..=255) {
        let mut reader = ReaderChannel::default().with_frame_size(frame);
        let mut card = CardChannel::new(Echo::default());
        reader.select(&TESSERA_AID);
        drive(&mut reader, &mut card).unwrap();
        reader.send(INS_PRESENT, 0, 0, &message).unwrap();
        let expected: Vec<u8> = message.iter().rev().copied().collect();
        prop_assert_eq!(drive(&mut reader, &mut card).unwrap(), ReaderEvent::Response(expected));
    }
}
