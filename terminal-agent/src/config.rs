//! Where the checkout's parts are wired: I2C bus and addresses, GPIO lines
//! (BCM numbers), device paths, printer connection and paper width. The
//! defaults are the wiring in `WIRING.md`; a settings file only names what
//! differs. Unknown keys are refused, so a typo never goes unnoticed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::devices::printer::escpos::DrawerPin;
use crate::devices::printer::port::PrinterAddr;
use crate::devices::printer::EscPosPrinter;
use crate::session::Lang;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// The screens' language.
    pub lang: Lang,
    pub oled: Oled,
    pub keypad: KeypadPins,
    pub magstripe: Magstripe,
    pub contactless: Contactless,
    pub printer: PrinterConfig,
    /// The barcode scanner for customers' payment codes.
    pub scanner: ScannerConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScannerKind {
    /// A USB scanner that types like a keyboard.
    Usb,
    /// A scanner on a serial port (UART or USB-CDC), codes ended by CR / LF.
    Serial,
    None,
}

/// The payment-code scanner (`[scanner]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScannerConfig {
    pub kind: ScannerKind,
    /// USB: its input device (found by its name when left out); serial: its
    /// tty (`/dev/ttyACM0`).
    pub device: Option<PathBuf>,
    /// Serial: the baud rate.
    pub baud: u32,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            kind: ScannerKind::None,
            device: None,
            baud: 9600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Oled {
    pub enabled: bool,
    pub i2c_bus: u8,
    pub address: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeypadPins {
    pub enabled: bool,
    /// Rows R0..R3 (outputs), top to bottom.
    pub rows: [u8; 4],
    /// Columns C0..C3 (inputs with pull-ups), left to right.
    pub cols: [u8; 4],
    /// How long a column must read the same before the kernel passes it on
    /// (contact bounce); each row is held twice this long in a scan.
    pub debounce_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MagstripeKind {
    /// A reader module on GPIO: card-present, strobe (clock) and data lines.
    Gpio,
    /// A raw read head on GPIO: card-present and the F2F data line, decoded here.
    GpioF2f,
    /// A USB reader that types like a keyboard.
    Hid,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Magstripe {
    pub kind: MagstripeKind,
    pub present: u8,
    pub strobe: u8,
    pub data: u8,
    /// The USB reader's input device; found by its name when left out.
    pub hid_device: Option<PathBuf>,
    /// Seconds a card may stay in the slot before it counts as stuck.
    pub stuck_after_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Contactless {
    pub enabled: bool,
    pub i2c_bus: u8,
    pub address: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrinterConfig {
    /// `uart:/dev/serial0@9600`, `rfcomm:/dev/rfcomm0`, `usb:/dev/usb/lp0` or `tcp:HOST:9100`.
    pub connection: String,
    /// 32 for 58 mm paper, 48 for 80 mm.
    pub columns: usize,
    /// The cash drawer's pin on the printer's drawer port: "2" (most
    /// drawers) or "5".
    pub drawer_pin: DrawerPin,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            lang: Lang::Zh,
            oled: Oled::default(),
            keypad: KeypadPins::default(),
            magstripe: Magstripe::default(),
            contactless: Contactless::default(),
            printer: PrinterConfig::default(),
            scanner: ScannerConfig::default(),
        }
    }
}

impl Default for Oled {
    fn default() -> Self {
        Oled {
            enabled: true,
            i2c_bus: 1,
            address: 0x3C,
        }
    }
}

impl Default for KeypadPins {
    fn default() -> Self {
        KeypadPins {
            enabled: true,
            rows: [5, 6, 13, 19],
            cols: [12, 16, 20, 21],
            debounce_ms: 5,
        }
    }
}

impl Default for Magstripe {
    fn default() -> Self {
        Magstripe {
            kind: MagstripeKind::Gpio,
            present: 22,
            strobe: 17,
            data: 27,
            hid_device: None,
            stuck_after_secs: 3,
        }
    }
}

impl Default for Contactless {
    fn default() -> Self {
        Contactless {
            enabled: true,
            i2c_bus: 1,
            address: 0x24,
        }
    }
}

impl Default for PrinterConfig {
    fn default() -> Self {
        PrinterConfig {
            connection: "uart:/dev/serial0@9600".into(),
            columns: 32,
            drawer_pin: DrawerPin::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceConfigError {
    #[error("cannot read device settings {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("device settings {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl DeviceConfig {
    /// Reads `path`; a missing file means the documented wiring.
    pub fn load(path: &Path) -> Result<DeviceConfig, DeviceConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DeviceConfig::default()),
            Err(source) => {
                return Err(DeviceConfigError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        let invalid = |message: String| DeviceConfigError::Invalid {
            path: path.into(),
            message,
        };
        DeviceConfig::parse(&text).map_err(invalid)
    }

    /// The devices in `text` (TOML), checked.
    pub fn parse(text: &str) -> Result<DeviceConfig, String> {
        let config: DeviceConfig = toml::from_str(text).map_err(|e| e.message().to_string())?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.printer_addr()?;
        if ![32, 48].contains(&self.printer.columns) {
            return Err("printer.columns: use 32 (58 mm paper) or 48 (80 mm)".into());
        }
        let mut pins: Vec<u8> = Vec::new();
        if self.keypad.enabled {
            pins.extend(self.keypad.rows);
            pins.extend(self.keypad.cols);
        }
        if matches!(self.magstripe.kind, MagstripeKind::Gpio | MagstripeKind::GpioF2f) {
            pins.extend([self.magstripe.present, self.magstripe.data]);
            if self.magstripe.kind == MagstripeKind::Gpio {
                pins.push(self.magstripe.strobe);
            }
        }
        if !(1..=50).contains(&self.keypad.debounce_ms) {
            return Err("keypad.debounce_ms: 1 to 50 (5 suits most membrane keypads)".into());
        }
        if let Some(p) = pins.iter().find(|&&p| p > 27) {
            return Err(format!("GPIO {p} does not exist on the Pi's header (BCM 0-27)"));
        }
        // I2C (2, 3) and the UART (14, 15) are taken by the OLED, reader and printer.
        if let Some(p) = pins.iter().find(|p| [2, 3, 14, 15].contains(*p)) {
            return Err(format!("GPIO {p} is used by I2C or the UART; pick another line"));
        }
        let mut sorted = pins.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("GPIO {} is given to two lines", w[0]));
        }
        if self.oled.enabled
            && self.contactless.enabled
            && self.oled.i2c_bus == self.contactless.i2c_bus
            && self.oled.address == self.contactless.address
        {
            return Err("oled.address and contactless.address are the same on one I2C bus".into());
        }
        Ok(())
    }

    /// These settings with the printer a command line names instead.
    pub fn with_printer(mut self, printer: Option<String>) -> Result<DeviceConfig, String> {
        if let Some(printer) = printer {
            self.printer.connection = printer;
            self.validate().map_err(|e| format!("--printer: {e}"))?;
        }
        Ok(self)
    }

    /// The receipt printer as configured (it drives the cash drawer too).
    pub fn printer(&self) -> Result<EscPosPrinter, String> {
        Ok(EscPosPrinter::at(self.printer_addr()?).with_drawer(self.printer.drawer_pin))
    }

    pub fn printer_addr(&self) -> Result<PrinterAddr, String> {
        self.printer
            .connection
            .parse()
            .map_err(|e| format!("printer.connection: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_wiring_is_valid() {
        DeviceConfig::default().validate().unwrap();
    }

    #[test]
    fn a_file_names_only_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.toml");
        std::fs::write(
            &path,
            "lang = \"en\"\n[printer]\nconnection = \"tcp:127.0.0.1:9100\"\ncolumns = 48\ndrawer_pin = \"5\"\n[magstripe]\nkind = \"hid\"\n",
        )
        .unwrap();
        let c = DeviceConfig::load(&path).unwrap();
        assert_eq!(c.lang, Lang::En);
        assert_eq!(c.printer.columns, 48);
        assert_eq!(c.printer.drawer_pin, DrawerPin::Five);
        assert_eq!(c.magstripe.kind, MagstripeKind::Hid);
        assert_eq!(c.keypad, KeypadPins::default());
    }

    #[test]
    fn wiring_mistakes_are_refused_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.toml");
        for (text, expect) in [
            ("[keypad]\nrows = [5, 6, 13, 2]\n", "GPIO 2"),
            ("[keypad]\nrows = [5, 6, 13, 12]\n", "two lines"),
            ("[keypad]\ncols = [12, 16, 20, 40]\n", "BCM 0-27"),
            ("[keypad]\ndebounce_ms = 0\n", "keypad.debounce_ms"),
            ("[keypad]\ndebounce_ms = 500\n", "keypad.debounce_ms"),
            ("[printer]\ncolumns = 40\n", "printer.columns"),
            ("[printer]\nconnection = \"lpt1\"\n", "printer.connection"),
            ("[printer]\ndrawer_pin = \"3\"\n", "expected `2` or `5`"),
            ("[oled]\nadress = 60\n", "adress"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = DeviceConfig::load(&path).unwrap_err().to_string();
            assert!(e.contains(expect), "{text}: {e}");
        }
    }
}
