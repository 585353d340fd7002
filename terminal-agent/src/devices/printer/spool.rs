//! The print spool: slips go into the on-disk [`PrintQueue`] first and leave
//! it only once on paper, oldest first. A printer problem stops the spool; it
//! checks the printer every few seconds and, once the problem is fixed, clears
//! the half-printed slip out of the printer and prints the queue again, each
//! slip exactly once. It runs on its own thread: printing takes seconds.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::queue::PrintQueue;
use super::{Printer, PrinterProblem, Slip};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintReport {
    /// Printing stopped; `waiting` slips are kept for later.
    Failed { problem: PrinterProblem, waiting: usize },
    /// The problem is gone and the `printed` kept slips are on paper.
    Recovered { printed: usize },
    /// The roll started running low (`true`), or a new one went in (`false`).
    PaperLow(bool),
}

/// The spool's rules, without the thread.
pub struct Spool {
    queue: PrintQueue,
    failing: Option<PrinterProblem>,
    paper_low: bool,
    /// Counts the paper that went out (for the owner's roll estimate).
    health: Option<super::super::SharedHealth>,
}

impl Spool {
    /// A spool over `queue`; slips left from the last run count as failed, so
    /// the first [`Spool::retry`] prints them.
    pub fn new(queue: PrintQueue) -> Spool {
        let failing = (!queue.is_empty()).then_some(PrinterProblem::NotResponding);
        Spool {
            queue,
            failing,
            paper_low: false,
            health: None,
        }
    }

    /// Counts each printed slip's paper into `health`.
    pub fn counting(mut self, health: super::super::SharedHealth) -> Spool {
        self.health = Some(health);
        self
    }

    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn submit(&mut self, printer: &mut dyn Printer, slip: Slip) -> Option<PrintReport> {
        if let Err(e) = self.queue.push(slip.clone()) {
            tracing::error!(error = %e, "cannot keep the slip in the print queue; printing it anyway");
            if self.failing.is_none() {
                if let Err(problem) = printer.print(&slip) {
                    return Some(self.fail(problem));
                }
            }
            return None;
        }
        if self.failing.is_some() {
            return None; // the retry prints it after the fix
        }
        match self.drain(printer) {
            Err(report) => Some(report),
            Ok(()) => self.check_paper(printer),
        }
    }

    /// Says so when the roll starts running low, or was changed.
    fn check_paper(&mut self, printer: &mut dyn Printer) -> Option<PrintReport> {
        let low = printer.status().ok()?.paper_near_end;
        (low != self.paper_low).then(|| {
            self.paper_low = low;
            PrintReport::PaperLow(low)
        })
    }

    /// While failing: checks the printer and prints the queue if it is fixed.
    pub fn retry(&mut self, printer: &mut dyn Printer) -> Option<PrintReport> {
        let was = self.failing?;
        match printer.status() {
            Ok(status) => match status.problem() {
                Some(problem) if problem == was => None,
                Some(problem) => Some(self.fail(problem)),
                None => {
                    printer.recover();
                    let waiting = self.queue.len();
                    match self.drain(printer) {
                        Ok(_) => Some(PrintReport::Recovered { printed: waiting }),
                        Err(report) => Some(report),
                    }
                }
            },
            Err(problem) if problem == was => None,
            Err(problem) => Some(self.fail(problem)),
        }
    }

    fn drain(&mut self, printer: &mut dyn Printer) -> Result<(), PrintReport> {
        while let Some(queued) = self.queue.front() {
            if let Err(problem) = printer.print(&queued.slip) {
                return Err(self.fail(problem));
            }
            if let Some(health) = &self.health {
                health.printed(queued.slip.paper_mm());
            }
            if let Err(e) = self.queue.pop_front() {
                // Printed but still queued: it would print twice after a restart.
                tracing::error!(error = %e, "cannot update the print queue");
            }
        }
        self.failing = None;
        Ok(())
    }

    fn fail(&mut self, problem: PrinterProblem) -> PrintReport {
        tracing::warn!(%problem, waiting = self.queue.len(), "slip not printed; kept in the queue");
        self.failing = Some(problem);
        PrintReport::Failed {
            problem,
            waiting: self.queue.len(),
        }
    }
}

/// The spool on its own thread.
#[derive(Clone)]
pub struct Spooler {
    slips: std_mpsc::Sender<Slip>,
}

impl Spooler {
    pub fn start(
        mut printer: Box<dyn Printer>,
        mut spool: Spool,
        reports: mpsc::UnboundedSender<PrintReport>,
        retry_every: Duration,
    ) -> Spooler {
        let (tx, rx) = std_mpsc::channel::<Slip>();
        let run = move || loop {
            let report = match rx.recv_timeout(retry_every) {
                Ok(slip) => spool.submit(printer.as_mut(), slip),
                Err(std_mpsc::RecvTimeoutError::Timeout) => spool.retry(printer.as_mut()),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if let Some(report) = report {
                if reports.send(report).is_err() {
                    return;
                }
            }
        };
        if let Err(e) = std::thread::Builder::new().name("printer".into()).spawn(run) {
            tracing::error!(error = %e, "cannot start the printer thread");
        }
        Spooler { slips: tx }
    }

    pub fn submit(&self, slip: Slip) {
        if self.slips.send(slip).is_err() {
            tracing::error!("the printer thread has stopped; slip not printed");
        }
    }
}
