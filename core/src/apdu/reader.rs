//! The reader side: the gate (or a phone in reader mode) asks this engine for
//! the next command to transmit, transmits it with whatever NFC stack it
//! has, and feeds the card's answer back.
//!
//! ```text
//!  Idle ──select()/send()──▶ Sending frame k ──9000──▶ Sending frame k+1
//!                                 │ last frame
//!                                 ▼
//!                           Awaiting answer ──61xx──▶ GET RESPONSE ─┐
//!                                 │  ▲                               │
//!                                 │  └───────────────────────────────┘
//!                                 └──9000──▶ Idle + ReaderEvent::{Selected, Response}
//!  any other status word, a short answer, or a bound exceeded ──▶ Idle + ReaderError
//! ```

use super::{CLA_CHAINING, CLA_PROPRIETARY, Command, Limits, MAX_FRAME_DATA, MAX_RESPONSE_DATA, Response, StatusWord};

/// What a response completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// More commands are due: call [`ReaderChannel::next_command`].
    Continue,
    /// The application was selected; its SELECT data.
    Selected(Vec<u8>),
    /// The whole answer to a [`ReaderChannel::send`].
    Response(Vec<u8>),
}

/// Why an exchange stopped. The channel is idle again afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    /// The card answered with this status word.
    #[error("the card answered {0}")]
    Status(StatusWord),
    /// The answer is shorter than a status word.
    #[error("the card's answer is {0} bytes, shorter than a status word")]
    Truncated(usize),
    /// A frame of a chained command came back with data.
    #[error("the card sent data in the middle of a command chain")]
    UnexpectedData,
    /// The reassembled answer exceeds the message bound.
    #[error("the card's answer exceeds {0} bytes")]
    TooLarge(usize),
    /// The answer took more frames than the bound.
    #[error("the card's answer took more than {0} frames")]
    TooManyFrames(usize),
    /// A message to send exceeds the bound.
    #[error("a {len}-byte message exceeds the {max}-byte bound")]
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A response arrived while no command was outstanding.
    #[error("a response arrived with no command outstanding")]
    NotAwaiting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Select,
    Command,
}

#[derive(Debug)]
enum State {
    Idle,
    /// Frames of a chained command; `next` is the index of the frame after
    /// the one in flight.
    Sending {
        frames: Vec<Command>,
        next: usize,
    },
    /// The last frame (or a GET RESPONSE) is in flight.
    Awaiting {
        purpose: Purpose,
        buffer: Vec<u8>,
        frames: usize,
    },
}

/// Counters for the benchmark of bytes on the air.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Command APDUs transmitted.
    pub commands: usize,
    /// Bytes in those commands.
    pub bytes_sent: usize,
    /// Bytes in the responses.
    pub bytes_received: usize,
}

/// The reader-side channel.
#[derive(Debug)]
pub struct ReaderChannel {
    limits: Limits,
    frame_size: usize,
    state: State,
    due: Option<Vec<u8>>,
    in_flight: bool,
    traffic: Traffic,
}

impl Default for ReaderChannel {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ReaderChannel {
    /// An idle channel with frames of the full 255 bytes.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            frame_size: MAX_FRAME_DATA,
            state: State::Idle,
            due: None,
            in_flight: false,
            traffic: Traffic::default(),
        }
    }

    /// Uses frames of at most `size` data bytes (1 to 255), for readers
    /// whose buffers are smaller.
    pub fn with_frame_size(mut self, size: usize) -> Self {
        self.frame_size = size.clamp(1, MAX_FRAME_DATA);
        self
    }

    /// Bytes and commands so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Whether no exchange is in progress.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Starts a SELECT of `aid`, abandoning any exchange in progress.
    pub fn select(&mut self, aid: &[u8]) {
        let command = Command::select(aid);
        self.state = State::Awaiting { purpose: Purpose::Select, buffer: Vec::new(), frames: 0 };
        self.due = Some(command.to_bytes());
        self.in_flight = false;
    }

    /// Starts sending `message` with instruction `ins`, chaining as needed.
    pub fn send(&mut self, ins: u8, p1: u8, p2: u8, message: &[u8]) -> Result<(), ReaderError> {
        if message.len() > self.limits.max_message {
            return Err(ReaderError::MessageTooLarge { len: message.len(), max: self.limits.max_message });
        }
        let pieces: Vec<&[u8]> =
            if message.is_empty() { vec![&[][..]] } else { message.chunks(self.frame_size).collect() };
        let last = pieces.len() - 1;
        let frames: Vec<Command> = pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| {
                let cla = if i == last { CLA_PROPRIETARY } else { CLA_PROPRIETARY | CLA_CHAINING };
                let le = if i == last { Some(MAX_RESPONSE_DATA as u16) } else { None };
                Command { cla, ins, p1, p2, data: piece.to_vec(), le }
            })
            .collect();
        self.due = frames.first().map(Command::to_bytes);
        self.in_flight = false;
        self.state = if frames.len() == 1 {
            State::Awaiting { purpose: Purpose::Command, buffer: Vec::new(), frames: 0 }
        } else {
            State::Sending { frames, next: 1 }
        };
        Ok(())
    }

    /// The next command to transmit, if one is due.
    pub fn next_command(&mut self) -> Option<Vec<u8>> {
        let command = self.due.take()?;
        self.in_flight = true;
        self.traffic.commands += 1;
        self.traffic.bytes_sent += command.len();
        Some(command)
    }

    /// Digests the card's answer to the command in flight.
    pub fn on_response(&mut self, bytes: &[u8]) -> Result<ReaderEvent, ReaderError> {
        if !self.in_flight {
            return Err(ReaderError::NotAwaiting);
        }
        self.in_flight = false;
        self.traffic.bytes_received += bytes.len();
        let result = self.step(bytes);
        if result.is_err() {
            self.state = State::Idle;
            self.due = None;
        }
        result
    }

    fn step(&mut self, bytes: &[u8]) -> Result<ReaderEvent, ReaderError> {
        let response = Response::parse(bytes).ok_or(ReaderError::Truncated(bytes.len()))?;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => Err(ReaderError::NotAwaiting),
            State::Sending { frames, next } => {
                if response.status != StatusWord::OK {
                    return Err(ReaderError::Status(response.status));
                }
                if !response.data.is_empty() {
                    return Err(ReaderError::UnexpectedData);
                }
                self.due = frames.get(next).map(Command::to_bytes);
                self.state = if next + 1 >= frames.len() {
                    State::Awaiting { purpose: Purpose::Command, buffer: Vec::new(), frames: 0 }
                } else {
                    State::Sending { frames, next: next + 1 }
                };
                Ok(ReaderEvent::Continue)
            }
            State::Awaiting { purpose, mut buffer, frames } => {
                let frames = frames + 1;
                if frames > self.limits.max_frames {
                    return Err(ReaderError::TooManyFrames(self.limits.max_frames));
                }
                if buffer.len() + response.data.len() > self.limits.max_message {
                    return Err(ReaderError::TooLarge(self.limits.max_message));
                }
                buffer.extend_from_slice(&response.data);
                match response.status {
                    StatusWord::OK => Ok(match purpose {
                        Purpose::Select => ReaderEvent::Selected(buffer),
                        Purpose::Command => ReaderEvent::Response(buffer),
                    }),
                    sw if sw.is_more_data() => {
                        let le = if sw.sw2() == 0 { MAX_RESPONSE_DATA } else { usize::from(sw.sw2()) };
                        self.due = Some(Command::get_response(le).to_bytes());
                        self.state = State::Awaiting { purpose, buffer, frames };
                        Ok(ReaderEvent::Continue)
                    }
                    sw => Err(ReaderError::Status(sw)),
                }
            }
        }
    }
}
