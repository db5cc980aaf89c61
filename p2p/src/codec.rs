//! The `/tessera/transfer/1` stream format: one length-prefixed frame each
//! way. A request is a `TransferMessage` as the engine encoded it; the
//! response is an acknowledgement: empty when the peer's engine took the
//! message, else the engine's typed refusal as text. Answers to a message
//! (an acceptance answering an offer) travel as new requests, so no
//! request waits on a person.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;
use std::io;
use tessera_core::Wire;
use tessera_core::transfer::TransferMessage;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/tessera/transfer/1");
/// Largest request: the engine's own bound on a transfer message.
pub const MAX_REQUEST: usize = TransferMessage::MAX_LEN;
/// Largest acknowledgement.
pub const MAX_RESPONSE: usize = 1024;

/// Reads and writes the frames, refusing any over its bound before reading it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransferCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the {max}-byte bound"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8], max: usize) -> io::Result<()> {
    if bytes.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame over its bound"));
    }
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for TransferCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, MAX_REQUEST).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io, MAX_RESPONSE).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &req, MAX_REQUEST).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &res, MAX_RESPONSE).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::io::Cursor;

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused_unread() {
        futures::executor::block_on(async {
            let mut buf = Cursor::new(Vec::new());
            write_frame(&mut buf, b"hello", 16).await.unwrap();
            let mut read = Cursor::new(buf.into_inner());
            assert_eq!(read_frame(&mut read, 16).await.unwrap(), b"hello");
            let mut big = Cursor::new(((MAX_REQUEST + 1) as u32).to_be_bytes().to_vec());
            let err = read_frame(&mut big, MAX_REQUEST).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }
}
