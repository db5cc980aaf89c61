//! ISO 7816-4 APDUs: the channel between a gate (the reader) and a phone
//! (the card, Android host card emulation) over NFC. No I/O: the card side
//! turns one command's bytes into one response's bytes, and the reader side
//! says which command to transmit next and digests each response.
//!
//! Only short APDUs are used (Lc ≤ 255, Le ≤ 256), because every NFC stack
//! supports them. Messages longer than one frame travel with **command
//! chaining** (CLA bit 0x10 on every frame but the last) and **response
//! chaining** (`61xx`, then `GET RESPONSE`). Both directions are bounded:
//! [`Limits::max_message`] bytes and [`Limits::max_frames`] frames.
//!
//! ```text
//!  reader (gate)                                   card (phone)
//!  ── 00 A4 04 00 Lc AID 00 ──────────────────────▶ SELECT           ─┐
//!  ◀───────────────────────────── hello ‖ 90 00 ──                    │ Idle → Selected
//!  ── 90 INS P1 P2 Lc frame₁ ─────────────────────▶ chained frame     │
//!  ◀─────────────────────────────────── 90 00 ───   (… up to the bound)
//!  ── 80 INS P1 P2 Lc frameₙ 00 ──────────────────▶ last frame: handle│
//!  ◀──────────────────────── chunk₁ ‖ 61 xx ─────   more to read      │
//!  ── 00 C0 00 00 xx ─────────────────────────────▶ GET RESPONSE      │
//!  ◀──────────────────────── chunkₖ ‖ 90 00 ─────                    ─┘
//! ```
//!
//! Every refusal is a status word from [`StatusWord`]; a refused command
//! leaves the card as it was, except that a broken chain is dropped.

mod card;
mod reader;

pub use card::{CardApplication, CardChannel};
pub use reader::{ReaderChannel, ReaderError, ReaderEvent, Traffic};

/// The project's application identifier: `F0` (proprietary, not registered
/// with ISO) followed by "TESSERA".
pub const TESSERA_AID: [u8; 8] = [0xF0, b'T', b'E', b'S', b'S', b'E', b'R', b'A'];

/// Inter-industry class, for SELECT and GET RESPONSE.
pub const CLA_ISO: u8 = 0x00;
/// Proprietary class, for Tessera's own commands.
pub const CLA_PROPRIETARY: u8 = 0x80;
/// The command-chaining bit of the class byte: "more frames follow".
pub const CLA_CHAINING: u8 = 0x10;

/// SELECT.
pub const INS_SELECT: u8 = 0xA4;
/// GET RESPONSE.
pub const INS_GET_RESPONSE: u8 = 0xC0;
/// Tessera: present an instrument in answer to a gate challenge.
pub const INS_PRESENT: u8 = 0x50;
/// Tessera: deliver the gate's examination certificate to the wallet.
pub const INS_CONFIRM: u8 = 0x52;
/// Tessera: carry one message of the transfer protocol (phone to phone).
pub const INS_TRANSFER: u8 = 0x60;

/// The most data one short command APDU carries.
pub const MAX_FRAME_DATA: usize = 255;
/// The most data one short response APDU carries (Le = 00).
pub const MAX_RESPONSE_DATA: usize = 256;
/// The longest short command APDU: header, Lc, 255 bytes, Le.
pub const MAX_COMMAND_APDU: usize = 4 + 1 + MAX_FRAME_DATA + 1;

/// A two-byte status word (SW1 SW2) ending every response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// 90 00: done.
    pub const OK: Self = Self(0x9000);
    /// 67 00: the length (Lc, Le, or the APDU itself) is wrong.
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// 68 83: the last command of a chain was expected (the chain changed
    /// instruction midway).
    pub const LAST_COMMAND_EXPECTED: Self = Self(0x6883);
    /// 69 82: security status not satisfied (the gate is not certified).
    pub const SECURITY_NOT_SATISFIED: Self = Self(0x6982);
    /// 69 84: reference data not usable (a replayed or stale challenge).
    pub const REFERENCE_DATA_NOT_USABLE: Self = Self(0x6984);
    /// 69 85: conditions of use not satisfied (nothing selected, nothing to
    /// confirm, the instrument cannot be presented).
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// 6A 80: the data field does not decode.
    pub const WRONG_DATA: Self = Self(0x6A80);
    /// 6A 82: no application with that AID.
    pub const FILE_NOT_FOUND: Self = Self(0x6A82);
    /// 6A 84: the message exceeds the size or frame bound.
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    /// 6A 86: wrong P1 or P2.
    pub const WRONG_P1_P2: Self = Self(0x6A86);
    /// 6A 88: referenced data not found (no instrument matches).
    pub const DATA_NOT_FOUND: Self = Self(0x6A88);
    /// 6D 00: unknown instruction.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// 6E 00: unknown class.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    /// 6F 00: the card failed internally (storage, keystore).
    pub const UNKNOWN: Self = Self(0x6F00);

    /// SW1.
    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// SW2.
    pub fn sw2(self) -> u8 {
        (self.0 & 0xFF) as u8
    }
    /// `61 xx`: `xx` more bytes (00 means 256 or more) wait for GET RESPONSE.
    pub fn more_data(remaining: usize) -> Self {
        let xx = if remaining >= MAX_RESPONSE_DATA { 0 } else { remaining as u16 };
        Self(0x6100 | xx)
    }
    /// Whether this is a `61 xx`.
    pub fn is_more_data(self) -> bool {
        self.sw1() == 0x61
    }
    /// The two bytes.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
    /// What it means, for logs and screens.
    pub fn describe(self) -> &'static str {
        match self {
            Self::OK => "ok",
            Self::WRONG_LENGTH => "wrong length",
            Self::LAST_COMMAND_EXPECTED => "last command of the chain expected",
            Self::SECURITY_NOT_SATISFIED => "gate not certified",
            Self::REFERENCE_DATA_NOT_USABLE => "challenge replayed or stale",
            Self::CONDITIONS_NOT_SATISFIED => "conditions of use not satisfied",
            Self::WRONG_DATA => "malformed data",
            Self::FILE_NOT_FOUND => "application not found",
            Self::NOT_ENOUGH_MEMORY => "message over the size bound",
            Self::WRONG_P1_P2 => "wrong P1/P2",
            Self::DATA_NOT_FOUND => "no matching instrument",
            Self::INS_NOT_SUPPORTED => "instruction not supported",
            Self::CLA_NOT_SUPPORTED => "class not supported",
            Self::UNKNOWN => "card error",
            sw if sw.is_more_data() => "more data available",
            _ => "unknown status",
        }
    }
}

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.describe())
    }
}

/// Bounds on what one side accepts from the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest reassembled message, either direction.
    pub max_message: usize,
    /// Most frames of one chained command or one chained response.
    pub max_frames: usize,
}

impl Limits {
    /// Largest message by default: a presentation with the longest chain the
    /// verifier accepts fits with room to spare.
    pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        let max_message = Self::DEFAULT_MAX_MESSAGE;
        Self { max_message, max_frames: max_message.div_ceil(MAX_FRAME_DATA) + 1 }
    }
}

/// A parsed short command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// The data field (Lc bytes).
    pub data: Vec<u8>,
    /// Expected response length; `Some(256)` is encoded as `00`.
    pub le: Option<u16>,
}

impl Command {
    /// A command with no data and Le = 256.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Self {
        Self { cla, ins, p1, p2, data, le: Some(MAX_RESPONSE_DATA as u16) }
    }

    /// SELECT by AID (P1 04: by DF name, P2 00: first occurrence, FCI).
    pub fn select(aid: &[u8]) -> Self {
        Self::new(CLA_ISO, INS_SELECT, 0x04, 0x00, aid.to_vec())
    }

    /// GET RESPONSE for up to `le` bytes.
    pub fn get_response(le: usize) -> Self {
        let le = le.clamp(1, MAX_RESPONSE_DATA) as u16;
        Self { cla: CLA_ISO, ins: INS_GET_RESPONSE, p1: 0, p2: 0, data: Vec::new(), le: Some(le) }
    }

    /// Parses a short APDU (cases 1 to 4). Extended APDUs are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, StatusWord> {
        if bytes.len() < 4 || bytes.len() > MAX_COMMAND_APDU {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let (cla, ins, p1, p2) = (bytes[0], bytes[1], bytes[2], bytes[3]);
        let body = &bytes[4..];
        let le_of = |b: u8| if b == 0 { MAX_RESPONSE_DATA as u16 } else { u16::from(b) };
        let (data, le) = match body.len() {
            0 => (Vec::new(), None),
            1 => (Vec::new(), Some(le_of(body[0]))),
            n => {
                let lc = usize::from(body[0]);
                // Lc = 0 followed by more bytes introduces an extended APDU.
                if lc == 0 {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                if n == 1 + lc {
                    (body[1..].to_vec(), None)
                } else if n == 2 + lc {
                    (body[1..=lc].to_vec(), Some(le_of(body[n - 1])))
                } else {
                    return Err(StatusWord::WRONG_LENGTH);
                }
            }
        };
        Ok(Self { cla, ins, p1, p2, data, le })
    }

    /// The encoded APDU. Data over one frame is cut at 255 bytes; callers
    /// split longer messages with chaining first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let data = &self.data[..self.data.len().min(MAX_FRAME_DATA)];
        let mut out = Vec::with_capacity(6 + data.len());
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        if let Some(le) = self.le {
            out.push(if usize::from(le) >= MAX_RESPONSE_DATA { 0 } else { le as u8 });
        }
        out
    }
}

/// A response APDU: data and the status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The data field.
    pub data: Vec<u8>,
    /// The status word.
    pub status: StatusWord,
}

impl Response {
    /// A bare status word.
    pub fn status(status: StatusWord) -> Self {
        Self { data: Vec::new(), status }
    }
    /// Data with 90 00.
    pub fn ok(data: Vec<u8>) -> Self {
        Self { data, status: StatusWord::OK }
    }
    /// Splits a response; `None` when shorter than a status word.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let split = bytes.len().checked_sub(2)?;
        let status = StatusWord(u16::from_be_bytes([bytes[split], bytes[split + 1]]));
        Some(Self { data: bytes[..split].to_vec(), status })
    }
    /// The encoded response.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests;
