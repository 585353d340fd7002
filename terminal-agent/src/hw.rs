//! The Pi's real parts: the OLED and PN532 on I2C, the keypad and a swipe
//! reader on GPIO (or a USB swipe reader through evdev), the printer on
//! whatever connection the settings name. Each input device gets a thread
//! that turns what it reads into session inputs; the OLED gets one too, so a
//! 25 ms I2C transfer never holds up the checkout.
//!
//! A part that cannot be opened is reported with what to check, and the
//! checkout starts without it: a missing reader must not stop the keypad and
//! printer from working (`hw-test` walks through every part).

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rppal::i2c::I2c;

use crate::agent::AgentHandle;
use crate::config::{DeviceConfig, MagstripeKind};
use crate::devices::contactless::{pn532::Pn532, read_tap};
use crate::devices::keypad::{Keypad, SCAN_EVERY};
use crate::devices::magstripe::hid::HidDecoder;
use crate::devices::magstripe::swipe::{SwipeDecoder, SwipeOutcome};
use crate::devices::magstripe::{self};
use crate::devices::oled::Oled;
use crate::devices::printer::port::{FdPort, Port};
use crate::devices::Screen;
use crate::devices::{Display, Printer, SharedHealth};
use crate::gpio;
use crate::session::Input;
use tallybox_core::secret::Secret;

/// The opened parts; the input devices start once the checkout runs.
pub struct Hardware {
    pub display: Box<dyn Display>,
    pub printer: Box<dyn Printer>,
    pub inputs: Inputs,
}

/// The keypad and card readers; what could not be opened is in `health`.
pub struct Inputs {
    pub health: SharedHealth,
    config: DeviceConfig,
}

/// Shows screens on a thread of its own; only the newest waiting screen is drawn.
pub struct DisplayThread {
    screens: std_mpsc::Sender<Screen>,
}

impl DisplayThread {
    pub fn start<D: Display + 'static>(mut display: D) -> DisplayThread {
        let (tx, rx) = std_mpsc::channel::<Screen>();
        let run = move || {
            while let Ok(mut screen) = rx.recv() {
                while let Ok(newer) = rx.try_recv() {
                    screen = newer;
                }
                display.show(&screen);
            }
        };
        if let Err(e) = std::thread::Builder::new().name("oled".into()).spawn(run) {
            tracing::error!(error = %e, "cannot start the display thread");
        }
        DisplayThread { screens: tx }
    }
}

impl Display for DisplayThread {
    fn show(&mut self, screen: &Screen) {
        let _ = self.screens.send(screen.clone());
    }
}

/// Stands in for a display that could not be opened.
struct NoDisplay;

impl Display for NoDisplay {
    fn show(&mut self, _: &Screen) {}
}

pub fn open_i2c(bus: u8) -> Result<I2c, String> {
    I2c::with_bus(bus).map_err(|e| {
        format!(
            "I2C bus {bus}: {e}; enable I2C (dtparam=i2c_arm=on in config.txt, or raspi-config) and reboot"
        )
    })
}

impl Hardware {
    /// Opens what can be opened; only settings that make no sense are an error.
    pub fn open(config: &DeviceConfig) -> Result<Hardware, String> {
        config.validate()?;
        let health = SharedHealth::default();
        let display: Box<dyn Display> = if config.oled.enabled {
            match open_i2c(config.oled.i2c_bus)
                .and_then(|i2c| Oled::new(i2c, config.oled.address).map_err(|e| e.to_string()))
            {
                Ok(oled) => Box::new(DisplayThread::start(oled)),
                Err(e) => {
                    health.not_started(&format!("OLED: {e}"));
                    Box::new(NoDisplay)
                }
            }
        } else {
            Box::new(NoDisplay)
        };
        let addr = config.printer_addr()?;
        health.printer_link(addr.link());
        let printer: Box<dyn Printer> = Box::new(config.printer()?);
        Ok(Hardware {
            display,
            printer,
            inputs: Inputs {
                health,
                config: config.clone(),
            },
        })
    }
}

impl Inputs {
    /// Starts a thread for each input device; they feed `agent`.
    pub fn start(&mut self, agent: &AgentHandle) {
        let c = &self.config;
        let sink = |agent: &AgentHandle| {
            let agent = agent.clone();
            move |input| agent.inputs.blocking_send((input, None)).is_ok()
        };
        let mut started = Vec::new();
        if c.keypad.enabled {
            started.push(("keypad", keypad(c, sink(agent))));
        }
        started.extend(swipe_reader(c, self.health.clone(), sink(agent)).map(|r| ("swipe reader", r)));
        started.extend(scanner(c, self.health.clone(), sink(agent)).map(|r| ("scanner", r)));
        if c.contactless.enabled {
            let wanted = agent.card_wanted.clone();
            let card_wanted = move || *wanted.borrow();
            started.push((
                "contactless reader",
                contactless(c, self.health.clone(), card_wanted, sink(agent)),
            ));
        }
        for (name, result) in started {
            if let Err(e) = result {
                self.health.not_started(&format!("{name}: {e}"));
            }
        }
    }
}

/// Where an input device's thread puts what it read; false once nobody listens.
pub trait Sink: FnMut(Input) -> bool + Send + 'static {}
impl<F: FnMut(Input) -> bool + Send + 'static> Sink for F {}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The keypad on its thread. Its columns are debounced by the kernel, so
/// each row is held for twice the debounce period before the columns are
/// read, and one scan's reading counts.
pub fn keypad(c: &DeviceConfig, mut sink: impl Sink) -> Result<(), String> {
    let debounce = Duration::from_millis(c.keypad.debounce_ms);
    let (rows, cols) = gpio::keypad_lines(c.keypad.rows, c.keypad.cols, debounce)?;
    let mut pad = Keypad::new(rows, cols, debounce * 2, 1).map_err(|e| e.to_string())?;
    spawn("keypad", move || loop {
        match pad.scan() {
            Ok(keys) => {
                for key in keys {
                    if !sink(Input::Key(key)) {
                        return;
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "keypad scan failed"),
        }
        std::thread::sleep(SCAN_EVERY);
    })
}

/// The swipe reader the settings name, if any, on its thread.
pub fn swipe_reader(c: &DeviceConfig, health: SharedHealth, sink: impl Sink) -> Option<Result<(), String>> {
    match c.magstripe.kind {
        MagstripeKind::Gpio | MagstripeKind::GpioF2f => Some(gpio_swipe(c, health, sink)),
        MagstripeKind::Hid => Some(hid_swipe(c, health, sink)),
        MagstripeKind::None => None,
    }
}

/// Hands a decoded swipe to the session and counts it.
fn swiped(sink: &mut impl Sink, health: &SharedHealth, outcome: SwipeOutcome) -> bool {
    let input = match outcome {
        SwipeOutcome::Read(track) => Input::Card(magstripe::read_card(Ok(track))),
        SwipeOutcome::Failed(e) => {
            tracing::info!(error = %e, "swipe not read");
            Input::Card(magstripe::read_card(Err(e)))
        }
        SwipeOutcome::CardStuck => {
            health.stuck();
            return sink(Input::CardStuck);
        }
    };
    if let Input::Card(card) = &input {
        health.swiped(card.is_ok());
    }
    sink(input)
}

fn gpio_swipe(c: &DeviceConfig, health: SharedHealth, mut sink: impl Sink) -> Result<(), String> {
    let m = &c.magstripe;
    let strobe = (m.kind == MagstripeKind::Gpio).then_some(m.strobe);
    let mut lines = gpio::SwipeLines::open(m.present, m.data, strobe)?;
    let stuck_after = Duration::from_secs(m.stuck_after_secs);
    spawn("swipe", move || {
        let mut decoder = SwipeDecoder::new(stuck_after);
        loop {
            let event = match lines.next(Duration::from_millis(200)) {
                Ok(event) => event,
                Err(e) => {
                    tracing::error!(error = %e, "swipe reader lines failed");
                    return;
                }
            };
            if let Some(outcome) = decoder.feed(event) {
                let missed = lines.missed();
                if let (SwipeOutcome::Failed(e), true) = (&outcome, missed.any()) {
                    tracing::warn!(error = %e, merged = missed.merged, unseen = missed.unseen, "swipe not read, and the kernel missed some of its line edges: the checkout was too busy to take them one by one");
                }
                if !swiped(&mut sink, &health, outcome) {
                    return;
                }
            }
        }
    })
}

/// The input device of a USB swipe reader: the one named, or the first whose
/// name says it reads cards.
pub fn find_hid_reader(named: Option<&std::path::Path>) -> Result<evdev::Device, String> {
    if let Some(path) = named {
        return evdev::Device::open(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    evdev::enumerate()
        .find(|(_, d)| {
            let name = d.name().unwrap_or_default().to_ascii_lowercase();
            ["card", "mag", "msr", "swipe"].iter().any(|w| name.contains(w))
        })
        .map(|(_, d)| d)
        .ok_or_else(|| "no USB card reader found: plug it in, or name it with magstripe.hid_device".into())
}

fn hid_swipe(c: &DeviceConfig, health: SharedHealth, mut sink: impl Sink) -> Result<(), String> {
    let mut device = find_hid_reader(c.magstripe.hid_device.as_deref())?;
    // Keep the reader's typing out of any console.
    if let Err(e) = device.grab() {
        tracing::warn!(error = %e, "cannot take the USB card reader for this checkout alone");
    }
    spawn("usb-swipe", move || {
        let mut decoder = HidDecoder::default();
        loop {
            let events = match device.fetch_events() {
                Ok(events) => events.collect::<Vec<_>>(),
                Err(e) => {
                    tracing::error!(error = %e, "USB card reader gone; plug it back in and restart the checkout");
                    return;
                }
            };
            for ev in events {
                if ev.event_type() != evdev::EventType::KEY {
                    continue;
                }
                if let Some(track) = decoder.key(ev.code(), ev.value() != 0) {
                    let outcome = match track {
                        Ok(t) => SwipeOutcome::Read(t),
                        Err(e) => SwipeOutcome::Failed(e),
                    };
                    if !swiped(&mut sink, &health, outcome) {
                        return;
                    }
                }
            }
        }
    })
}

/// The payment-code scanner on its thread, when one is set up.
/// A scanner that goes away (unplugged, its cable cut) is reported with
/// the heartbeats, for the owner's troubleshooting page.
pub fn scanner(c: &DeviceConfig, health: SharedHealth, mut sink: impl Sink) -> Option<Result<(), String>> {
    use crate::config::ScannerKind;
    use crate::devices::scanner::{KeyDecoder, LineDecoder};
    let device = c.scanner.device.clone();
    Some(match c.scanner.kind {
        ScannerKind::None => return None,
        ScannerKind::Usb => find_usb_scanner(device.as_deref()).and_then(|mut scanner| {
            // Its typing goes to this checkout alone, not to a console.
            if let Err(e) = scanner.grab() {
                tracing::warn!(error = %e, "cannot take the USB scanner for this checkout alone");
            }
            spawn("usb-scanner", move || {
                let mut decoder = KeyDecoder::default();
                loop {
                    let events = match scanner.fetch_events() {
                        Ok(events) => events.collect::<Vec<_>>(),
                        Err(e) => {
                            health.not_started(&format!(
                                "scanner: gone ({e}); plug it back in and restart the checkout"
                            ));
                            return;
                        }
                    };
                    for ev in events.iter().filter(|e| e.event_type() == evdev::EventType::KEY) {
                        let read = decoder.key(ev.code(), ev.value() != 0);
                        if read.is_some_and(|scan| !scanned(&mut sink, scan)) {
                            return;
                        }
                    }
                }
            })
        }),
        ScannerKind::Serial => {
            let Some(path) = device else {
                return Some(Err("a serial scanner needs its tty: scanner.device".into()));
            };
            FdPort::open_tty(&path, c.scanner.baud)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|mut port| {
                    spawn("serial-scanner", move || {
                        let mut decoder = LineDecoder::default();
                        loop {
                            let byte = match port.read_byte(Duration::from_secs(1)) {
                                Ok(Some(b)) => b,
                                Ok(None) => continue,
                                Err(e) => {
                                    health.not_started(&format!(
                                        "scanner: gone ({e}); check its cable and restart the checkout"
                                    ));
                                    return;
                                }
                            };
                            for scan in decoder.feed(&[byte]) {
                                if !scanned(&mut sink, scan) {
                                    return;
                                }
                            }
                        }
                    })
                })
        }
    })
}

/// Hands a scan to the session: a code as read; anything else only logged
/// by its length (a QR code may carry anything).
fn scanned(sink: &mut impl Sink, scan: crate::devices::scanner::Scan) -> bool {
    match scan {
        crate::devices::scanner::Scan::Code(code) => sink(Input::Scanned(Secret::new(code))),
        crate::devices::scanner::Scan::NotDigits(length) => {
            tracing::info!(length, "the scanner read something that is not a payment code");
            sink(Input::NotACode)
        }
    }
}

/// The input device of a USB scanner: the one named, or the first whose
/// name says it scans.
pub fn find_usb_scanner(named: Option<&std::path::Path>) -> Result<evdev::Device, String> {
    if let Some(path) = named {
        return evdev::Device::open(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    evdev::enumerate()
        .find(|(_, d)| {
            let name = d.name().unwrap_or_default().to_ascii_lowercase();
            [
                "scanner",
                "barcode",
                "qr",
                "symbol",
                "honeywell",
                "zebra",
                "newland",
            ]
            .iter()
            .any(|w| name.contains(w))
        })
        .map(|(_, d)| d)
        .ok_or_else(|| "no USB scanner found: plug it in, or name it with scanner.device".into())
}

/// The PN532 on its thread, looking for a card while `card_wanted` says one
/// is asked for (and for what amount).
pub fn contactless(
    c: &DeviceConfig,
    health: SharedHealth,
    card_wanted: impl Fn() -> Option<tallybox_core::money::Amount> + Send + 'static,
    mut sink: impl Sink,
) -> Result<(), String> {
    let i2c = open_i2c(c.contactless.i2c_bus)?;
    let mut reader = Pn532::new(i2c, c.contactless.address);
    reader.begin().map_err(|e| e.to_string())?;
    spawn("contactless", move || loop {
        // Look for a card only while the checkout asks for one.
        let Some(amount) = card_wanted() else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        match reader.find_card() {
            Ok(Some(_)) => {
                let card = read_tap(&mut reader, amount, &health);
                if !sink(Input::Card(card)) {
                    return;
                }
                // One tap, one read: wait for the card to leave the field.
                while matches!(reader.find_card(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(150)),
            Err(e) => {
                tracing::error!(error = %e, "contactless reader failed");
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    })
}
