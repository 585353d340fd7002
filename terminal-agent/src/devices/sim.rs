//! Simulated devices: an OLED that keeps its text and frame buffer, and a
//! printer that keeps every slip it printed and can run out of paper. Keys and
//! cards come from the control API ([`crate::control`]) into the session's input
//! channel, exactly where a real keypad or reader would put them.

use std::sync::{Arc, Mutex, MutexGuard};

use super::oled::FrameBuffer;
use super::{Display, Printer, PrinterError};
use crate::session::Screen;

/// What the simulated devices show and printed, shared with the control API.
#[derive(Default)]
pub struct Panel {
    pub screen: Screen,
    pub frame: FrameBuffer,
    /// Every slip printed, oldest first.
    pub paper: Vec<Vec<String>>,
    /// The session's state name, for whoever drives the simulator.
    pub state: &'static str,
}

#[derive(Clone, Default)]
pub struct SimDevices {
    panel: Arc<Mutex<Panel>>,
}

impl SimDevices {
    pub fn panel(&self) -> MutexGuard<'_, Panel> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.panel.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Display for SimDevices {
    fn show(&mut self, screen: &Screen) {
        let frame = FrameBuffer::render(screen);
        let mut panel = self.panel();
        panel.screen = screen.clone();
        panel.frame = frame;
    }
}

impl Printer for SimDevices {
    fn print(&mut self, lines: &[String]) -> Result<(), PrinterError> {
        self.panel().paper.push(lines.to_vec());
        Ok(())
    }
}
