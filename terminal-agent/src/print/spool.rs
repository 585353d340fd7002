//! The print spool: slips go into the on-disk [`PrintQueue`] first and leave
//! it only once on paper, oldest first. A printer problem stops the spool; it
//! checks the printer every few seconds and, once the problem is fixed, clears
//! the half-printed slip out of the printer and prints the queue again, each
//! slip exactly once. It runs on its own thread: printing takes seconds.
//!
//! A sale's slips are queued by the caller's own hand ([`Spooler::queue_sale`]),
//! so they are on disk before the checkout forgets the sale; the queue is
//! shared with the thread, which holds its lock only to read or take a slip,
//! never while printing.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use super::queue::PrintQueue;
use crate::devices::printer::{Printer, PrinterProblem, Slip};
use crate::devices::SharedHealth;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintReport {
    /// Printing stopped; `waiting` slips are kept for later.
    Failed { problem: PrinterProblem, waiting: usize },
    /// The problem is gone and the `printed` kept slips are on paper.
    Recovered { printed: usize },
    /// The roll started running low (`true`), or a new one went in (`false`).
    PaperLow(bool),
    /// The cash drawer was to open and did not: the printer, which drives
    /// it, has this problem.
    DrawerShut(PrinterProblem),
}

/// The spool's rules, without the thread.
pub struct Spool {
    queue: Arc<Mutex<PrintQueue>>,
    failing: Option<PrinterProblem>,
    paper_low: bool,
    /// Counts the paper that went out (for the owner's roll estimate).
    health: Option<SharedHealth>,
}

impl Spool {
    /// A spool over `queue`; slips left from the last run count as failed, so
    /// the first [`Spool::retry`] prints them.
    pub fn new(queue: PrintQueue) -> Spool {
        let failing = (!queue.is_empty()).then_some(PrinterProblem::NotResponding);
        Spool {
            queue: Arc::new(Mutex::new(queue)),
            failing,
            paper_low: false,
            health: None,
        }
    }

    /// Counts each printed slip's paper into `health`.
    pub fn counting(mut self, health: SharedHealth) -> Spool {
        self.health = Some(health);
        self
    }

    fn queue(&self) -> MutexGuard<'_, PrintQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn waiting(&self) -> usize {
        self.queue().len()
    }

    pub fn submit(&mut self, printer: &mut dyn Printer, slip: Slip) -> Option<PrintReport> {
        let pushed = self.queue().push(slip.clone());
        if let Err(e) = pushed {
            tracing::error!(error = %e, "cannot keep the slip in the print queue; printing it anyway");
            if self.failing.is_none() {
                if let Err(problem) = printer.print(&slip) {
                    return Some(self.fail(problem));
                }
            }
            return None;
        }
        self.print_queued(printer)
    }

    /// Prints what is queued, unless a problem waits for its fix.
    pub fn print_queued(&mut self, printer: &mut dyn Printer) -> Option<PrintReport> {
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
    /// Otherwise looks at the roll, so a roll changed between sales (or
    /// while the printer was out of paper) is noticed without a print.
    pub fn retry(&mut self, printer: &mut dyn Printer) -> Option<PrintReport> {
        let Some(was) = self.failing else {
            return self.check_paper(printer);
        };
        match printer.status() {
            Ok(status) => match status.problem() {
                Some(problem) if problem == was => None,
                Some(problem) => Some(self.fail(problem)),
                None => {
                    printer.recover();
                    let waiting = self.waiting();
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
        loop {
            let Some(queued) = self.queue().front().cloned() else {
                break;
            };
            if let Err(problem) = printer.print(&queued.slip) {
                return Err(self.fail(problem));
            }
            if let Some(health) = &self.health {
                health.printed(queued.slip.paper_mm());
            }
            let taken = self.queue().printed(queued.id);
            if let Err(e) = taken {
                // Printed but still queued: it would print twice after a restart.
                tracing::error!(error = %e, "cannot update the print queue");
            }
        }
        self.failing = None;
        Ok(())
    }

    fn fail(&mut self, problem: PrinterProblem) -> PrintReport {
        let waiting = self.waiting();
        tracing::warn!(%problem, waiting, "slip not printed; kept in the queue");
        self.failing = Some(problem);
        PrintReport::Failed { problem, waiting }
    }
}

/// The spool on its own thread.
#[derive(Clone)]
pub struct Spooler {
    jobs: std_mpsc::Sender<Job>,
    queue: Arc<Mutex<PrintQueue>>,
}

enum Job {
    Print(Slip),
    /// Slips were queued: print them.
    Wake,
    OpenDrawer,
}

impl Spooler {
    pub fn start(
        mut printer: Box<dyn Printer>,
        mut spool: Spool,
        reports: mpsc::UnboundedSender<PrintReport>,
        retry_every: Duration,
    ) -> Spooler {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let queue = Arc::clone(&spool.queue);
        let run = move || loop {
            let report = match rx.recv_timeout(retry_every) {
                Ok(Job::Print(slip)) => spool.submit(printer.as_mut(), slip),
                Ok(Job::Wake) => spool.print_queued(printer.as_mut()),
                Ok(Job::OpenDrawer) => match printer.open_drawer() {
                    Ok(()) => None,
                    Err(problem) => {
                        tracing::warn!(%problem, "the cash drawer did not open");
                        Some(PrintReport::DrawerShut(problem))
                    }
                },
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
        Spooler { jobs: tx, queue }
    }

    pub fn submit(&self, slip: Slip) {
        if self.jobs.send(Job::Print(slip)).is_err() {
            tracing::error!("the printer thread has stopped; slip not printed");
        }
    }

    /// Opens the cash drawer, between slips (the printer drives it).
    pub fn open_drawer(&self) {
        if self.jobs.send(Job::OpenDrawer).is_err() {
            tracing::error!("the printer thread has stopped; the cash drawer was not opened");
        }
    }

    /// Queues sale `key`'s slips on disk before returning (once per sale,
    /// whatever a restart repeats), and has the thread print them.
    pub fn queue_sale(&self, key: &str, slips: Vec<Slip>) -> std::io::Result<()> {
        if slips.is_empty() {
            return Ok(());
        }
        let queued = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_once(key, slips)?;
        if !queued {
            tracing::info!(
                request_id = key,
                "this sale's slips were queued before the restart"
            );
        }
        if self.jobs.send(Job::Wake).is_err() {
            tracing::error!("the printer thread has stopped; slips kept for later");
        }
        Ok(())
    }
}
