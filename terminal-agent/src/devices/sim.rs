//! Simulated devices: thin wrappers over the chip models, so the demo and the
//! tests run the real drivers. The OLED keeps its text and frame buffer; the
//! printer is the ESC/POS model behind the real driver. Keys and cards come
//! from the control API ([`crate::control`]).

use std::sync::{Arc, Mutex, MutexGuard};

use super::model::escpos::SharedPrinter;
use super::oled::FrameBuffer;
use super::printer::EscPosPrinter;
use super::{Display, Printer};
use crate::session::Screen;

/// What the simulated OLED shows, shared with the control API.
#[derive(Default)]
pub struct Panel {
    pub screen: Screen,
    pub frame: FrameBuffer,
}

#[derive(Clone, Default)]
pub struct SimDevices {
    panel: Arc<Mutex<Panel>>,
    /// The printer model the simulated checkout prints on.
    pub printer: SharedPrinter,
}

impl SimDevices {
    pub fn panel(&self) -> MutexGuard<'_, Panel> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.panel.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The real ESC/POS driver, printing on the model.
    pub fn printer_driver(&self) -> Box<dyn Printer> {
        Box::new(EscPosPrinter::new(Box::new(self.printer.port())))
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
