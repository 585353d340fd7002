//! Simulated devices: thin wrappers over the chip models, so the demo and the
//! tests run the real drivers. A key pressed over the control API closes a
//! contact in the keypad model and is read by the keypad driver's scan; a
//! swiped card is an F2F bit stream through the swipe decoder; a tapped card
//! is an EMV card held to the PN532 model and read by the PN532 driver; the
//! screen goes through the SSD1306 driver to the chip model; slips go through
//! the ESC/POS driver to the printer model.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::contactless::pn532::{self, Pn532};
use super::contactless::read_tap;
use super::keypad::{self, Keypad};
use super::magstripe::swipe::{LineEvent, SwipeDecoder, SwipeOutcome};
use super::magstripe::{self};
use super::model::emv_card::EmvCard;
use super::model::escpos::SharedPrinter;
use super::model::i2c::I2cBus;
use super::model::keypad::{ColumnPin, KeypadMatrix, RowPin};
use super::model::magstripe::{f2f_swipe, SwipeStyle};
use super::model::pn532::SharedPn532;
use super::model::ssd1306::SharedSsd1306;
use super::oled::{self, FrameBuffer, Oled};
use super::printer::EscPosPrinter;
use super::{Display, Printer, SharedHealth};
use crate::devices::keypad::Key;
use crate::devices::Screen;
use tallybox_core::card::{CardError, CardRead};
use tallybox_core::money::Amount;

/// What the simulated OLED shows, shared with the control API.
#[derive(Default)]
pub struct Panel {
    pub screen: Screen,
    pub frame: FrameBuffer,
}

/// The keypad matrix and its driver.
struct SimKeypad {
    matrix: KeypadMatrix,
    driver: Keypad<RowPin, ColumnPin>,
}

/// What a presented card turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Presented {
    Card(Result<CardRead, CardError>),
    /// The card stayed in the swipe slot.
    Stuck,
}

#[derive(Clone)]
pub struct SimDevices {
    panel: Arc<Mutex<Panel>>,
    /// The real OLED driver on the model I2C bus, and the chip it talks to.
    oled: Arc<Mutex<Oled<I2cBus>>>,
    chip: SharedSsd1306,
    keypad: Arc<Mutex<SimKeypad>>,
    swipe: Arc<Mutex<SwipeDecoder>>,
    nfc_chip: SharedPn532,
    nfc: Arc<Mutex<Pn532<I2cBus>>>,
    /// The printer model the simulated checkout prints on.
    pub printer: SharedPrinter,
    pub health: SharedHealth,
    /// The swipe decoder's clock.
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a card may sit in the swipe slot before it counts as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(3);
/// A bit on the stripe at an ordinary swipe speed (about 50 cm/s at 75 bpi).
const BIT_PERIOD: Duration = Duration::from_micros(680);

impl Default for SimDevices {
    fn default() -> Self {
        let bus = I2cBus::default();
        let chip = SharedSsd1306::default();
        bus.attach(oled::ADDRESS, Box::new(chip.clone()));
        let nfc_chip = SharedPn532::default();
        bus.attach(pn532::ADDRESS, Box::new(nfc_chip.clone()));
        // The chip models are on the bus: their set-up cannot be refused.
        let oled = Oled::new(bus.clone(), oled::ADDRESS).unwrap_or_else(|e| unreachable!("{e}"));
        let mut nfc = Pn532::new(bus.clone(), pn532::ADDRESS);
        nfc.begin().unwrap_or_else(|e| unreachable!("{e}"));
        let matrix = KeypadMatrix::with_bounce(3);
        let (rows, cols) = matrix.pins();
        let driver = Keypad::new(rows, cols, Duration::ZERO, keypad::DEBOUNCE_SCANS)
            .unwrap_or_else(|e| unreachable!("{e}"));
        SimDevices {
            panel: Arc::default(),
            oled: Arc::new(Mutex::new(oled)),
            chip,
            keypad: Arc::new(Mutex::new(SimKeypad { matrix, driver })),
            swipe: Arc::new(Mutex::new(SwipeDecoder::new(STUCK_AFTER))),
            nfc_chip,
            nfc: Arc::new(Mutex::new(nfc)),
            printer: SharedPrinter::default(),
            health: SharedHealth::default(),
            started: Instant::now(),
        }
    }
}

impl SimDevices {
    pub fn panel(&self) -> MutexGuard<'_, Panel> {
        lock(&self.panel)
    }

    /// The real ESC/POS driver, printing on the model.
    pub fn printer_driver(&self) -> Box<dyn Printer> {
        Box::new(EscPosPrinter::new(Box::new(self.printer.port())))
    }

    /// Presses and releases each key of `keys` on the keypad model; returns
    /// what the keypad driver read.
    pub fn press(&self, keys: &str) -> Result<Vec<Key>, String> {
        let mut pad = lock(&self.keypad);
        let mut read = Vec::new();
        for c in keys.chars() {
            let (row, col) = keypad::position(c).ok_or("keys are 0-9 * # A B C D")?;
            for down in [true, false] {
                pad.matrix.set(row, col, down);
                // Enough scans for the bounce to die down and the debounce to pass.
                for _ in 0..16 {
                    read.extend(pad.driver.scan().map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(read)
    }

    /// Swipes a card with `track` (`;…?`) through the magstripe model.
    pub fn swipe(&self, track: &str, style: &SwipeStyle) -> Presented {
        let start = self.started.elapsed();
        let outcome = match f2f_swipe(track, style, BIT_PERIOD, start) {
            Some(events) => {
                let mut decoder = lock(&self.swipe);
                events.into_iter().filter_map(|e| decoder.feed(e)).last()
            }
            // Characters a stripe cannot hold: the reader reads noise.
            None => Some(SwipeOutcome::Failed(magstripe::aba::SwipeError::BadCharacter(0))),
        };
        let card = match outcome {
            Some(SwipeOutcome::Read(track)) => magstripe::read_card(Ok(track)),
            Some(SwipeOutcome::Failed(e)) => magstripe::read_card(Err(e)),
            Some(SwipeOutcome::CardStuck) | None => return Presented::Stuck,
        };
        self.health.swiped(card.is_ok());
        Presented::Card(card)
    }

    /// A card pushed into the swipe slot and left there.
    pub fn jam(&self) -> Presented {
        let start = self.started.elapsed();
        let mut decoder = lock(&self.swipe);
        decoder.feed(LineEvent::Present(true, start));
        let stuck = decoder.feed(LineEvent::Tick(start + STUCK_AFTER));
        // Pulled out again, so the next swipe starts clean.
        decoder.feed(LineEvent::Present(false, start + STUCK_AFTER));
        if stuck == Some(SwipeOutcome::CardStuck) {
            self.health.stuck();
        }
        Presented::Stuck
    }

    /// Holds an EMV card with `track` to the PN532 model for a transaction
    /// of `amount`, and takes it away again.
    pub fn tap(&self, track: &str, amount: Amount, damaged: bool) -> Presented {
        let Some(mut card) = EmvCard::from_track2(track) else {
            return Presented::Card(Err(CardError::BadTrack2("not a chip card this reader knows")));
        };
        card.broken_record = damaged;
        self.nfc_chip.hold(Box::new(card));
        let result = {
            let mut nfc = lock(&self.nfc);
            match nfc.find_card() {
                Ok(Some(_)) => read_tap(&mut nfc, amount, &self.health),
                _ => {
                    self.health.tapped(false);
                    Err(CardError::BadTrack2("tap not read"))
                }
            }
        };
        self.nfc_chip.take_away();
        Presented::Card(result)
    }
}

impl Display for SimDevices {
    fn show(&mut self, screen: &Screen) {
        lock(&self.oled).show(screen);
        let frame = self.chip.lock().view();
        let mut panel = self.panel();
        panel.screen = screen.clone();
        panel.frame = frame;
    }
}
