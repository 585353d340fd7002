//! A receipt printer at the byte level: it parses the ESC/POS stream into
//! printed lines (GB18030 decoded), cuts and QR codes, answers `DLE EOT` and
//! `GS r` like an Epson-compatible printer, and can run out of paper, have its
//! cover opened or go offline in the middle of a slip.
//!
//! Like a real printer it keeps what it received but could not print yet;
//! after a stop it waits for the host's `DLE ENQ` before going on (`1`: print
//! the rest, `2`: throw it away). The drivers' tests and the simulated checkout
//! both print on this model.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use encoding_rs::GB18030;

use crate::devices::printer::escpos::{DLE, ENQ, EOT, ESC, FS, GS, LF};
use crate::devices::printer::port::Port;
use crate::devices::printer::status::PrinterStatus;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Line(Vec<u8>),
    Feed(u8),
    Cut,
    Qr,
    /// `GS r 1`: answer once everything before it is printed.
    Mark,
    /// `ESC p m t1 t2`: a pulse on the drawer port (m 0: pin 2, 1: pin 5).
    Drawer(u8),
}

/// What came off the printer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Paper {
    /// Slips that were cut off, line by line.
    pub slips: Vec<Vec<String>>,
    /// Pieces torn off when the paper ran out before the cut.
    pub torn: Vec<Vec<String>>,
    /// QR codes printed, by their content (each also stands in its slip as
    /// a line `[QR content]`).
    pub qr_codes: Vec<String>,
    /// Pulses sent to the cash drawer, by the connector pin (2 or 5).
    pub drawer_kicks: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct PrinterModel {
    inbox: Vec<u8>,
    /// Text of the line being received, up to its LF.
    line_bytes: Vec<u8>,
    queue: VecDeque<Op>,
    replies: VecDeque<u8>,
    qr_data: Option<String>,
    current: Vec<String>,
    pub paper: Paper,
    pub status: PrinterStatus,
    /// Lines left on the roll; `None`: plenty.
    paper_left: Option<u32>,
    /// Stopped by an error and not yet told how to go on.
    awaiting_recovery: bool,
    /// Command bytes it did not understand (a driver bug if not zero).
    pub unknown_commands: u32,
    /// A file each cut slip is appended to (one JSON array of lines each):
    /// paper that came out before a power cut is still paper after it.
    paper_log: Option<std::path::PathBuf>,
}

impl PrinterModel {
    /// Bytes from the host.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
        while self.parse_one() {}
        self.run();
    }

    /// Bytes for the host.
    pub fn take_reply(&mut self) -> Option<u8> {
        self.replies.pop_front()
    }

    /// Appends each slip cut from now on to `path`.
    pub fn log_paper_to(&mut self, path: std::path::PathBuf) {
        self.paper_log = Some(path);
    }

    fn cut(&mut self) {
        let slip = std::mem::take(&mut self.current);
        if let Some(path) = &self.paper_log {
            let line = serde_json::to_string(&slip).unwrap_or_default();
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot log the simulated printer's paper");
            }
        }
        self.paper.slips.push(slip);
    }

    /// The roll runs out after `lines` more printed lines.
    pub fn paper_after(&mut self, lines: u32) {
        self.paper_left = Some(lines);
    }

    /// Paper out (`false`) or a new roll in (`true`). The piece printed since
    /// the last cut is torn off when the roll is changed.
    pub fn set_paper(&mut self, present: bool) {
        if present {
            if !self.current.is_empty() {
                self.paper.torn.push(std::mem::take(&mut self.current));
            }
            self.paper_left = None;
        } else {
            self.paper_left = Some(0);
        }
        self.status.paper_end = !present;
        self.run();
    }

    pub fn set_cover_open(&mut self, open: bool) {
        self.status.cover_open = open;
        if open {
            self.awaiting_recovery = true;
        }
        self.run();
    }

    pub fn set_offline(&mut self, offline: bool) {
        self.status.offline = offline;
        self.run();
    }

    /// The near-end sensor trips with about a metre of paper left.
    fn near_end(&self) -> bool {
        self.paper_left.is_some_and(|n| n < 40)
    }

    fn can_print(&self) -> bool {
        self.status.problem().is_none() && !self.awaiting_recovery
    }

    /// Takes one command or text run off the front of the inbox; false when
    /// what is there is incomplete. Real-time commands act at once.
    fn parse_one(&mut self) -> bool {
        let Some((used, token)) = parse(&self.inbox) else {
            return false;
        };
        self.inbox.drain(..used);
        match token {
            Token::Text(text) => self.line_bytes.extend_from_slice(&text),
            Token::Status(k) => {
                let waiting = if self.awaiting_recovery && k == 1 { 0x20 } else { 0 };
                let mut status = self.status;
                status.paper_near_end |= self.near_end();
                self.replies
                    .push_back(status.to_bytes()[k as usize - 1] | waiting);
            }
            Token::Resume => self.awaiting_recovery = false,
            Token::ResumeClearing => {
                self.awaiting_recovery = false;
                self.queue.clear();
                self.line_bytes.clear();
            }
            Token::Op(Op::Line(_)) => {
                let line = std::mem::take(&mut self.line_bytes);
                self.queue.push_back(Op::Line(line));
            }
            Token::Op(op) => {
                // "Print and feed" and cut print a pending unterminated line first.
                if matches!(op, Op::Feed(_) | Op::Cut) && !self.line_bytes.is_empty() {
                    let line = std::mem::take(&mut self.line_bytes);
                    self.queue.push_back(Op::Line(line));
                }
                self.queue.push_back(op);
            }
            Token::QrData(data) => self.qr_data = Some(data),
            Token::Ignored => {}
            Token::Unknown => self.unknown_commands += 1,
        }
        true
    }

    /// Prints what it can, in order.
    fn run(&mut self) {
        while self.can_print() {
            let Some(op) = self.queue.pop_front() else { return };
            match op {
                Op::Line(bytes) => {
                    if self.paper_left == Some(0) {
                        self.queue.push_front(Op::Line(bytes));
                        self.status.paper_end = true;
                        self.awaiting_recovery = true;
                        return;
                    }
                    self.paper_left = self.paper_left.map(|n| n - 1);
                    let (text, _) = GB18030.decode_without_bom_handling(&bytes);
                    self.current.push(text.trim_end().to_string());
                }
                Op::Feed(n) => {
                    self.paper_left = self.paper_left.map(|left| left.saturating_sub(n as u32));
                }
                Op::Cut => self.cut(),
                Op::Qr => {
                    if let Some(data) = self.qr_data.clone() {
                        // The picture, where it sits on the slip, as text.
                        self.current.push(format!("[QR {data}]"));
                        self.paper.qr_codes.push(data);
                    }
                }
                Op::Drawer(m) => self.paper.drawer_kicks.push(if m & 1 == 0 { 2 } else { 5 }),
                Op::Mark => {
                    let near_end = self.near_end();
                    self.replies.push_back(if near_end { 0x03 } else { 0x00 });
                }
            }
        }
    }
}

enum Token {
    Text(Vec<u8>),
    Op(Op),
    Status(u8),
    Resume,
    ResumeClearing,
    QrData(String),
    Ignored,
    Unknown,
}

/// One token off the front of `b` and its length; `None` if incomplete.
fn parse(b: &[u8]) -> Option<(usize, Token)> {
    let first = *b.first()?;
    let need = |n: usize| if b.len() >= n { Some(()) } else { None };
    Some(match first {
        DLE => {
            need(3)?;
            let token = match (b[1], b[2]) {
                (EOT, k @ 1..=4) => Token::Status(k),
                (ENQ, 1) => Token::Resume,
                (ENQ, 2) => Token::ResumeClearing,
                _ => Token::Unknown,
            };
            (3, token)
        }
        ESC => match *b.get(1)? {
            b'@' => (2, Token::Ignored),
            b'a' | b'E' | b'!' | b'-' | b'M' => {
                need(3)?;
                (3, Token::Ignored)
            }
            b'd' => {
                need(3)?;
                (3, Token::Op(Op::Feed(b[2])))
            }
            // m is 0 / 1 or, as some drivers send it, '0' / '1' (0x30 / 0x31).
            b'p' => {
                need(5)?;
                match b[2] {
                    0 | 1 | 0x30 | 0x31 => (5, Token::Op(Op::Drawer(b[2]))),
                    _ => (5, Token::Unknown),
                }
            }
            _ => (2, Token::Unknown),
        },
        FS => match *b.get(1)? {
            b'&' | b'.' => (2, Token::Ignored),
            _ => (2, Token::Unknown),
        },
        GS => match *b.get(1)? {
            b'V' => {
                let m = *b.get(2)?;
                let n = if m >= 65 { 4 } else { 3 };
                need(n)?;
                (n, Token::Op(Op::Cut))
            }
            b'!' => {
                need(3)?;
                (3, Token::Ignored)
            }
            b'r' => {
                need(3)?;
                (3, Token::Op(Op::Mark))
            }
            b'(' if b.get(2) == Some(&b'k') => {
                let len = *b.get(3)? as usize + 256 * *b.get(4)? as usize;
                need(5 + len)?;
                let token = match &b[5..5 + len] {
                    [49, 80, 48, data @ ..] => Token::QrData(String::from_utf8_lossy(data).into_owned()),
                    [49, 81, 48] => Token::Op(Op::Qr),
                    [49, 65 | 67 | 69, ..] => Token::Ignored,
                    _ => Token::Unknown,
                };
                (5 + len, token)
            }
            _ => (2, Token::Unknown),
        },
        LF => (1, Token::Op(Op::Line(Vec::new()))),
        c if c < 0x20 => (1, Token::Unknown),
        _ => {
            let end = b.iter().position(|&c| c < 0x20).unwrap_or(b.len());
            (end, Token::Text(b[..end].to_vec()))
        }
    })
}

/// The model shared between a printer driver (through [`ModelPort`]) and
/// whoever changes the paper or reads the slips.
#[derive(Clone, Default)]
pub struct SharedPrinter {
    inner: Arc<(Mutex<PrinterModel>, Condvar)>,
}

impl SharedPrinter {
    pub fn lock(&self) -> MutexGuard<'_, PrinterModel> {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the model and wakes a driver waiting for an answer.
    pub fn with<R>(&self, f: impl FnOnce(&mut PrinterModel) -> R) -> R {
        let r = f(&mut self.lock());
        self.inner.1.notify_all();
        r
    }

    pub fn port(&self) -> ModelPort {
        ModelPort(self.clone())
    }
}

/// A [`Port`] straight into the model, for the simulated checkout.
pub struct ModelPort(SharedPrinter);

impl Port for ModelPort {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.with(|m| m.receive(bytes));
        Ok(())
    }

    fn read_byte(&mut self, timeout: Duration) -> io::Result<Option<u8>> {
        let deadline = Instant::now() + timeout;
        let (lock, wake) = &*self.0.inner;
        let mut model = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(b) = model.take_reply() {
                return Ok(Some(b));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            model = wake
                .wait_timeout(model, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
