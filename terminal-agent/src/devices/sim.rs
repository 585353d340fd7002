//! Simulated devices: thin wrappers over the chip models, so the demo and the
//! tests run the real drivers. The OLED keeps its text and frame buffer; the
//! printer is the ESC/POS model behind the real driver. Keys and cards come
//! from the control API ([`crate::control`]).

use std::sync::{Arc, Mutex, MutexGuard};

use super::model::escpos::SharedPrinter;
use super::model::i2c::I2cBus;
use super::model::ssd1306::SharedSsd1306;
use super::oled::{self, FrameBuffer, Oled};
use super::printer::EscPosPrinter;
use super::{Display, Printer};
use crate::session::Screen;

/// What the simulated OLED shows, shared with the control API.
#[derive(Default)]
pub struct Panel {
    pub screen: Screen,
    pub frame: FrameBuffer,
}

#[derive(Clone)]
pub struct SimDevices {
    panel: Arc<Mutex<Panel>>,
    /// The real OLED driver on the model I2C bus, and the chip it talks to.
    oled: Arc<Mutex<Oled<I2cBus>>>,
    chip: SharedSsd1306,
    pub bus: I2cBus,
    /// The printer model the simulated checkout prints on.
    pub printer: SharedPrinter,
}

impl Default for SimDevices {
    fn default() -> Self {
        let bus = I2cBus::default();
        let chip = SharedSsd1306::default();
        bus.attach(oled::ADDRESS, Box::new(chip.clone()));
        // The chip model is on the bus: its initialisation cannot be refused.
        let oled = Oled::new(bus.clone(), oled::ADDRESS).unwrap_or_else(|e| unreachable!("{e}"));
        SimDevices {
            panel: Arc::default(),
            oled: Arc::new(Mutex::new(oled)),
            chip,
            bus,
            printer: SharedPrinter::default(),
        }
    }
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
        self.oled.lock().unwrap_or_else(|e| e.into_inner()).show(screen);
        let frame = self.chip.lock().view();
        let mut panel = self.panel();
        panel.screen = screen.clone();
        panel.frame = frame;
    }
}
