//! The receipt printer: an ESC/POS driver over any [`port::Port`] and the
//! status it reads back. The queue and spool that keep a slip until it is on
//! paper are the runtime's (`crate::print`).
//!
//! A slip counts as printed only when the printer answers a `GS r` sent after
//! it, which a printer does once everything before it is on paper.

pub mod escpos;
pub mod port;
pub mod status;

use std::time::Duration;

use escpos::{Align, Job};
use port::{Port, PrinterAddr};
pub use status::{PrinterProblem, PrinterStatus};

pub use tallybox_core::slip::Slip;

/// What the checkout needs from a printer.
pub trait Printer: Send {
    /// Prints one slip; `Ok` only once it is on paper.
    fn print(&mut self, slip: &Slip) -> Result<(), PrinterProblem>;
    fn status(&mut self) -> Result<PrinterStatus, PrinterProblem>;
    /// Leaves an error state, dropping whatever of a failed slip the printer
    /// still holds (the whole slip is printed again).
    fn recover(&mut self);
    /// Opens the cash drawer wired to the printer's drawer port. The kick
    /// waits in the printer's buffer like a slip: a printer stopped (out of
    /// paper, cover open) or not answering cannot open it now, and says so.
    fn open_drawer(&mut self) -> Result<(), PrinterProblem>;
}

pub struct EscPosPrinter {
    port: Option<Box<dyn Port>>,
    /// To reconnect after the link dropped (printer switched off and on).
    addr: Option<PrinterAddr>,
    /// How long a status answer may take.
    answer_within: Duration,
    /// Where the cash drawer is wired on the drawer port.
    drawer: escpos::DrawerPin,
}

impl EscPosPrinter {
    pub fn new(port: Box<dyn Port>) -> EscPosPrinter {
        EscPosPrinter {
            port: Some(port),
            addr: None,
            answer_within: Duration::from_millis(500),
            drawer: escpos::DrawerPin::default(),
        }
    }

    /// A printer at `addr`; the link is opened when first needed.
    pub fn at(addr: PrinterAddr) -> EscPosPrinter {
        EscPosPrinter {
            port: None,
            addr: Some(addr),
            answer_within: Duration::from_millis(500),
            drawer: escpos::DrawerPin::default(),
        }
    }

    /// The drawer is on `pin` of the drawer port (pin 2 unless set).
    pub fn with_drawer(mut self, pin: escpos::DrawerPin) -> EscPosPrinter {
        self.drawer = pin;
        self
    }

    fn port(&mut self) -> Result<&mut Box<dyn Port>, PrinterProblem> {
        if self.port.is_none() {
            let addr = self.addr.as_ref().ok_or(PrinterProblem::NotResponding)?;
            match addr.open() {
                Ok(port) => self.port = Some(port),
                Err(e) => {
                    tracing::debug!(printer = %addr, error = %e, "cannot open the printer");
                    return Err(PrinterProblem::NotResponding);
                }
            }
        }
        self.port.as_mut().ok_or(PrinterProblem::NotResponding)
    }

    /// Runs `f` on the port; an I/O error closes it so the next call reopens.
    fn with_port<T>(
        &mut self,
        f: impl FnOnce(&mut Box<dyn Port>) -> std::io::Result<T>,
    ) -> Result<T, PrinterProblem> {
        let port = self.port()?;
        match f(port) {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::debug!(error = %e, "printer link failed");
                if self.addr.is_some() {
                    self.port = None;
                }
                Err(PrinterProblem::NotResponding)
            }
        }
    }

    fn ask(&mut self, request: &[u8], within: Duration) -> Result<Option<u8>, PrinterProblem> {
        self.with_port(|port| {
            port.write_all(request)?;
            port.read_byte(within)
        })
    }
}

/// The printed form of a slip: text lines, the QR code centred under them,
/// a little feed, a cut.
pub fn slip_job(slip: &Slip) -> Vec<u8> {
    let mut job = Job::new().align(Align::Left);
    for line in &slip.lines {
        job = job.line(line);
    }
    if let Some(link) = &slip.qr {
        job = job.align(Align::Centre).qr(link, 5).align(Align::Left);
    }
    job.feed(3).cut().into_bytes()
}

impl Printer for EscPosPrinter {
    fn print(&mut self, slip: &Slip) -> Result<(), PrinterProblem> {
        if let Some(problem) = self.status()?.problem() {
            return Err(problem);
        }
        let mut job = slip_job(slip);
        job.extend_from_slice(&escpos::PRINTED_MARK);
        // A slip of ~40 lines takes 1-2 s on a 9600-baud thermal printer.
        let within = Duration::from_secs(3) + Duration::from_millis(50 * slip.lines.len() as u64);
        match self.ask(&job, within)? {
            Some(mark) if !status::printed_mark_paper_end(mark) => Ok(()),
            _ => Err(self.status()?.problem().unwrap_or(PrinterProblem::NotResponding)),
        }
    }

    fn status(&mut self) -> Result<PrinterStatus, PrinterProblem> {
        self.with_port(|port| {
            port.discard_input();
            Ok(())
        })?;
        let mut answers = [0u8; 4];
        for (i, answer) in answers.iter_mut().enumerate() {
            let within = self.answer_within;
            *answer = self
                .ask(&escpos::status_request(i as u8 + 1), within)?
                .ok_or(PrinterProblem::NotResponding)?;
        }
        PrinterStatus::from_bytes(answers).ok_or(PrinterProblem::NotResponding)
    }

    fn open_drawer(&mut self) -> Result<(), PrinterProblem> {
        // The status read first: a kick into a stopped printer would wait
        // there (and be cleared with the half-printed slip) while the
        // cashier is told the drawer is open.
        if let Some(problem) = self.status()?.problem() {
            return Err(problem);
        }
        let kick = escpos::drawer_kick(self.drawer);
        self.with_port(|port| port.write_all(&kick))
    }

    fn recover(&mut self) {
        let _ = self.with_port(|port| port.write_all(&escpos::RECOVER_AND_CLEAR));
    }
}

#[cfg(test)]
mod pty_tests;
#[cfg(test)]
mod tests;
