//! The card side: what an Android `HostApduService.processCommandApdu` calls
//! for every command the reader sends.
//!
//! ```text
//!            SELECT (our AID)
//!   Idle ─────────────────────────▶ Selected ◀──────────────┐
//!    ▲                              │  │  chained frame      │ last frame →
//!    │ deselect()                   │  └──▶ Receiving ───────┘ application
//!    └──────────────────────────────┘        (≤ max_frames,   answers; the
//!                                             ≤ max_message)  rest waits for
//!                                                             GET RESPONSE
//! ```

use super::{
    CLA_CHAINING, CLA_ISO, CLA_PROPRIETARY, Command, INS_GET_RESPONSE, INS_SELECT, Limits, MAX_RESPONSE_DATA, Response,
    StatusWord,
};

/// What runs behind the channel once the AID is selected: the wallet's
/// presentation (and transfer) logic. It sees whole messages, never frames.
pub trait CardApplication {
    /// The AID it answers to.
    fn aid(&self) -> &[u8];
    /// The reader selected the application: reset any session and return
    /// the data of the SELECT response.
    fn on_select(&mut self) -> Vec<u8>;
    /// The field went away or another application was selected.
    fn on_deselect(&mut self);
    /// One complete proprietary command (chaining already undone).
    fn on_command(&mut self, ins: u8, p1: u8, p2: u8, message: &[u8]) -> Result<Vec<u8>, StatusWord>;
}

#[derive(Debug)]
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    buffer: Vec<u8>,
    frames: usize,
}

#[derive(Debug)]
struct Outgoing {
    data: Vec<u8>,
    offset: usize,
}

/// The card-side channel: SELECT, chaining in both directions, bounds.
#[derive(Debug)]
pub struct CardChannel<A> {
    app: A,
    limits: Limits,
    selected: bool,
    chain: Option<Chain>,
    outgoing: Option<Outgoing>,
}

impl<A: CardApplication> CardChannel<A> {
    /// A channel in front of `app` with the default bounds.
    pub fn new(app: A) -> Self {
        Self::with_limits(app, Limits::default())
    }

    /// A channel with explicit bounds.
    pub fn with_limits(app: A, limits: Limits) -> Self {
        Self { app, limits, selected: false, chain: None, outgoing: None }
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably (to pick a ticket before a tap, say).
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Gives the application back.
    pub fn into_app(self) -> A {
        self.app
    }

    /// Whether the AID is selected.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    /// The field was lost (Android `onDeactivated`): forget the session.
    pub fn deselect(&mut self) {
        if self.selected {
            self.app.on_deselect();
        }
        self.selected = false;
        self.chain = None;
        self.outgoing = None;
    }

    /// Answers one command APDU. Never panics, whatever the bytes.
    pub fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.respond(apdu).to_bytes()
    }

    fn respond(&mut self, apdu: &[u8]) -> Response {
        let command = match Command::parse(apdu) {
            Ok(c) => c,
            Err(sw) => {
                // A broken frame breaks a chain in progress too.
                self.chain = None;
                return Response::status(sw);
            }
        };
        let chaining = command.cla & CLA_CHAINING != 0;
        let class = command.cla & !CLA_CHAINING;
        match (class, command.ins) {
            (CLA_ISO, INS_SELECT) if !chaining => self.select(&command),
            (CLA_ISO, INS_GET_RESPONSE) if !chaining => self.get_response(&command),
            (CLA_ISO, _) => {
                self.chain = None;
                Response::status(StatusWord::INS_NOT_SUPPORTED)
            }
            (CLA_PROPRIETARY, _) if !self.selected => Response::status(StatusWord::CONDITIONS_NOT_SATISFIED),
            (CLA_PROPRIETARY, _) => {
                // A new command abandons any response the reader did not read.
                self.outgoing = None;
                if chaining { self.chain_frame(command) } else { self.last_frame(command) }
            }
            _ => {
                self.chain = None;
                Response::status(StatusWord::CLA_NOT_SUPPORTED)
            }
        }
    }

    fn select(&mut self, command: &Command) -> Response {
        if command.p1 != 0x04 || (command.p2 != 0x00 && command.p2 != 0x0C) {
            return Response::status(StatusWord::WRONG_P1_P2);
        }
        if command.data.as_slice() != self.app.aid() {
            // Another application was asked for: ours is no longer selected.
            self.deselect();
            return Response::status(StatusWord::FILE_NOT_FOUND);
        }
        self.chain = None;
        self.outgoing = None;
        self.selected = true;
        let hello = self.app.on_select();
        if command.p2 == 0x0C { Response::status(StatusWord::OK) } else { self.start_response(hello, command.le) }
    }

    fn get_response(&mut self, command: &Command) -> Response {
        self.chain = None;
        if command.p1 != 0 || command.p2 != 0 {
            return Response::status(StatusWord::WRONG_P1_P2);
        }
        match self.outgoing.take() {
            None => Response::status(StatusWord::CONDITIONS_NOT_SATISFIED),
            Some(out) => self.next_chunk(out, command.le),
        }
    }

    fn chain_frame(&mut self, command: Command) -> Response {
        let frames = match &self.chain {
            Some(c) if (c.ins, c.p1, c.p2) != (command.ins, command.p1, command.p2) => {
                self.chain = None;
                return Response::status(StatusWord::LAST_COMMAND_EXPECTED);
            }
            Some(c) => c.frames + 1,
            None => 1,
        };
        let buffered = self.chain.as_ref().map_or(0, |c| c.buffer.len());
        // The final frame still has to arrive, so a chain already at the
        // frame bound cannot take another non-final frame.
        if frames >= self.limits.max_frames || buffered + command.data.len() > self.limits.max_message {
            self.chain = None;
            return Response::status(StatusWord::NOT_ENOUGH_MEMORY);
        }
        let chain = self.chain.get_or_insert_with(|| Chain {
            ins: command.ins,
            p1: command.p1,
            p2: command.p2,
            buffer: Vec::new(),
            frames: 0,
        });
        chain.buffer.extend_from_slice(&command.data);
        chain.frames = frames;
        Response::status(StatusWord::OK)
    }

    fn last_frame(&mut self, command: Command) -> Response {
        let message = match self.chain.take() {
            Some(c) if (c.ins, c.p1, c.p2) != (command.ins, command.p1, command.p2) => {
                return Response::status(StatusWord::LAST_COMMAND_EXPECTED);
            }
            Some(mut c) => {
                if c.buffer.len() + command.data.len() > self.limits.max_message {
                    return Response::status(StatusWord::NOT_ENOUGH_MEMORY);
                }
                c.buffer.extend_from_slice(&command.data);
                c.buffer
            }
            None => command.data,
        };
        match self.app.on_command(command.ins, command.p1, command.p2, &message) {
            Ok(answer) if answer.len() > self.limits.max_message => Response::status(StatusWord::UNKNOWN),
            Ok(answer) => self.start_response(answer, command.le),
            Err(sw) => Response::status(sw),
        }
    }

    fn start_response(&mut self, data: Vec<u8>, le: Option<u16>) -> Response {
        self.next_chunk(Outgoing { data, offset: 0 }, le)
    }

    fn next_chunk(&mut self, mut out: Outgoing, le: Option<u16>) -> Response {
        let want = le.map_or(MAX_RESPONSE_DATA, usize::from).min(MAX_RESPONSE_DATA);
        let end = out.offset.saturating_add(want).min(out.data.len());
        let chunk = out.data.get(out.offset..end).unwrap_or_default().to_vec();
        out.offset = end;
        let remaining = out.data.len() - end;
        if remaining == 0 {
            Response::ok(chunk)
        } else {
            self.outgoing = Some(out);
            Response { data: chunk, status: StatusWord::more_data(remaining) }
        }
    }
}
