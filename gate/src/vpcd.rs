//! A virtual contactless card for `vsmartcard-vpcd`: the card side of the
//! real PC/SC stack, so the real gate binary can be tested through pcscd and
//! libnfc without a phone.
//!
//! vpcd (a pcscd reader driver) listens on TCP; the card connects to it.
//! Each message is a 2-byte big-endian length and a payload. A 1-byte
//! payload is a control code (0 power off, 1 power on, 2 reset, 4 send the
//! ATR); anything longer is a command APDU, answered with one response.
//!
//! A PC/SC contactless reader answers `FF CA` (GET DATA: UID, ATS) itself;
//! with vpcd there is no reader, so the card process answers those too.
//! Nagle and delayed ACKs would add ~40 ms to every APDU: `TCP_NODELAY` is
//! set and `TCP_QUICKACK` re-armed after every read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The ATR of an ISO 14443-4 card as PC/SC part 3 builds it: `3B 8n 80 01`,
/// no historical bytes, and the check byte.
pub const CONTACTLESS_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// The default vpcd port.
pub const VPCD_PORT: u16 = 35963;

/// The largest message vpcd sends (a short APDU is far below it).
const MAX_MESSAGE: usize = 4096;

/// What the card does.
pub trait VirtualCardHandler {
    /// One command APDU (never a reader pseudo-APDU).
    fn apdu(&mut self, command: &[u8]) -> Vec<u8>;
    /// Power off or reset: the field went away.
    fn reset(&mut self);
}

/// A card connected to vpcd.
#[derive(Debug)]
pub struct VirtualCard {
    stream: TcpStream,
    uid: [u8; 4],
}

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum VpcdError {
    /// The socket failed or vpcd went away.
    #[error("vpcd connection: {0}")]
    Io(#[from] std::io::Error),
    /// vpcd sent a message over the bound.
    #[error("vpcd sent a {0}-byte message")]
    TooLarge(usize),
}

impl VirtualCard {
    /// Connects to vpcd at `addr` (loopback) and inserts the card.
    pub fn connect(addr: SocketAddr) -> Result<Self, VpcdError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        let mut uid = [0x08, 0, 0, 0];
        rand_core::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut uid[1..]);
        let card = Self { stream, uid };
        card.quickack();
        Ok(card)
    }

    fn quickack(&self) {
        // Delayed ACKs turn every APDU round trip into ~40 ms on Linux.
        #[cfg(target_os = "linux")]
        if let Err(e) = socket2::SockRef::from(&self.stream).set_tcp_quickack(true) {
            tracing::debug!(error = %e, "TCP_QUICKACK");
        }
    }

    fn read_message(&mut self) -> Result<Option<Vec<u8>>, VpcdError> {
        let mut len = [0u8; 2];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = usize::from(u16::from_be_bytes(len));
        if len > MAX_MESSAGE {
            return Err(VpcdError::TooLarge(len));
        }
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload)?;
        self.quickack();
        Ok(Some(payload))
    }

    fn write_message(&mut self, payload: &[u8]) -> Result<(), VpcdError> {
        let len = u16::try_from(payload.len()).map_err(|_| VpcdError::TooLarge(payload.len()))?;
        let mut frame = Vec::with_capacity(2 + payload.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)?;
        Ok(())
    }

    /// Serves until vpcd closes the connection or `keep_going` says stop
    /// (checked after every message). Returns the number of APDUs answered.
    pub fn serve(
        &mut self,
        handler: &mut dyn VirtualCardHandler,
        keep_going: &mut dyn FnMut() -> bool,
    ) -> Result<usize, VpcdError> {
        let mut answered = 0;
        while let Some(message) = self.read_message()? {
            match message.as_slice() {
                [0] | [2] => handler.reset(),
                [1] => {}
                [4] => self.write_message(&CONTACTLESS_ATR)?,
                [code] => tracing::debug!(code, "unknown vpcd control code"),
                command => {
                    let answer = self.reader_pseudo_apdu(command).unwrap_or_else(|| handler.apdu(command));
                    self.write_message(&answer)?;
                    answered += 1;
                }
            }
            if !keep_going() {
                break;
            }
        }
        Ok(answered)
    }

    /// `FF CA P1 00`: the reader's GET DATA, which a real contactless reader
    /// answers from the anticollision data.
    fn reader_pseudo_apdu(&self, command: &[u8]) -> Option<Vec<u8>> {
        if command.len() < 4 || command[0] != 0xFF || command[1] != 0xCA {
            return None;
        }
        let data: &[u8] = match command[2] {
            0x00 => &self.uid,
            0x02 => &[0x20],       // SAK: ISO 14443-4 compliant
            0x03 => &[0x00, 0x04], // ATQA
            _ => return Some(vec![0x6A, 0x81]),
        };
        let mut out = data.to_vec();
        out.extend_from_slice(&[0x90, 0x00]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::net::TcpListener;

    struct Echo(usize);
    impl VirtualCardHandler for Echo {
        fn apdu(&mut self, command: &[u8]) -> Vec<u8> {
            let mut out = command.to_vec();
            out.extend_from_slice(&[0x90, 0x00]);
            out
        }
        fn reset(&mut self) {
            self.0 += 1;
        }
    }

    fn send(s: &mut TcpStream, payload: &[u8]) {
        s.write_all(&(payload.len() as u16).to_be_bytes()).unwrap();
        s.write_all(payload).unwrap();
    }

    fn recv(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut out = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut out).unwrap();
        out
    }

    #[test]
    fn speaks_the_vpcd_protocol_on_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let card = std::thread::spawn(move || {
            let mut card = VirtualCard::connect(addr).unwrap();
            let mut echo = Echo(0);
            let n = card.serve(&mut echo, &mut || true).unwrap();
            (n, echo.0)
        });
        let (mut vpcd, _) = listener.accept().unwrap();
        send(&mut vpcd, &[4]);
        assert_eq!(recv(&mut vpcd), CONTACTLESS_ATR);
        send(&mut vpcd, &[1]);
        send(&mut vpcd, &[0xFF, 0xCA, 0x00, 0x00, 0x00]);
        let uid = recv(&mut vpcd);
        assert_eq!((uid.len(), uid[0], &uid[4..]), (6, 0x08, &[0x90, 0x00][..]));
        send(&mut vpcd, &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xF0]);
        assert_eq!(recv(&mut vpcd), vec![0x00, 0xA4, 0x04, 0x00, 0x01, 0xF0, 0x90, 0x00]);
        send(&mut vpcd, &[2]);
        send(&mut vpcd, &[0]);
        drop(vpcd);
        assert_eq!(card.join().unwrap(), (2, 2));
    }

    #[test]
    fn refuses_oversized_messages() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let card = std::thread::spawn(move || {
            let mut card = VirtualCard::connect(addr).unwrap();
            card.serve(&mut Echo(0), &mut || true)
        });
        let (mut vpcd, _) = listener.accept().unwrap();
        vpcd.write_all(&[0xFF, 0xFF]).unwrap();
        assert!(matches!(card.join().unwrap(), Err(VpcdError::TooLarge(65535))));
    }
}
