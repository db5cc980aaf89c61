//! The libp2p `/tessera/transfer/1` stream codec (`TransferCodec`): reads a
//! request and a response frame from arbitrary bytes; whatever it reads
//! respects the bound and writes back to the same bytes; a request it
//! accepts goes on to `TransferMessage::from_bytes`.
#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use libp2p::request_response::Codec;
use tessera_core::Wire;
use tessera_core::transfer::TransferMessage;
use tessera_p2p::codec::{MAX_REQUEST, MAX_RESPONSE, PROTOCOL, TransferCodec};

fuzz_target!(|data: &[u8]| {
    let mut codec = TransferCodec;
    if let Ok(request) = block_on(codec.read_request(&PROTOCOL, &mut Cursor::new(data))) {
        assert!(request.len() <= MAX_REQUEST);
        assert_eq!(&data[4..4 + request.len()], request.as_slice());
        let mut written = Cursor::new(Vec::new());
        block_on(codec.write_request(&PROTOCOL, &mut written, request.clone())).expect("a bounded request writes");
        assert_eq!(written.into_inner(), data[..4 + request.len()]);
        let _ = TransferMessage::from_bytes(&request);
    }
    if let Ok(response) = block_on(codec.read_response(&PROTOCOL, &mut Cursor::new(data))) {
        assert!(response.len() <= MAX_RESPONSE);
    }
});
