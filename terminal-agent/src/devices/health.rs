//! The checkout's device counters, shared between the readers (which count
//! swipes, taps, errors and stuck cards) and the runtime (which sends them
//! with each heartbeat and adds what the printer reports).

use std::sync::{Arc, Mutex, MutexGuard};

use tallybox_core::protocol::DeviceHealth;

#[derive(Clone, Default)]
pub struct SharedHealth(Arc<Mutex<DeviceHealth>>);

impl SharedHealth {
    fn lock(&self) -> MutexGuard<'_, DeviceHealth> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn swiped(&self, ok: bool) {
        let mut h = self.lock();
        h.swipes += 1;
        h.swipe_errors += u32::from(!ok);
    }

    pub fn tapped(&self, ok: bool) {
        let mut h = self.lock();
        h.taps += 1;
        h.tap_errors += u32::from(!ok);
    }

    pub fn stuck(&self) {
        self.lock().cards_stuck += 1;
    }

    pub fn printer(&self, problem: Option<super::PrinterProblem>, waiting: u32) {
        let mut h = self.lock();
        h.printer = problem;
        h.slips_waiting = waiting;
    }

    /// How the printer is reached (`rfcomm`: over Bluetooth).
    pub fn printer_link(&self, link: &str) {
        self.lock().printer_link = Some(link.to_string());
    }

    pub fn paper_low(&self, low: bool) {
        self.lock().paper_low = low;
    }

    /// A part that could not be opened, and why: logged, and sent with the
    /// heartbeats for the owner's troubleshooting page.
    pub fn not_started(&self, problem: &str) {
        tracing::error!("{problem}");
        self.lock().not_started.push(problem.to_string());
    }

    pub fn printed(&self, paper_mm: u64) {
        self.lock().paper_mm += paper_mm;
    }

    pub fn snapshot(&self) -> DeviceHealth {
        self.lock().clone()
    }
}
