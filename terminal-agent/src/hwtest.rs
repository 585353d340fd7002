//! `hw-test`: walks through each configured part for the person wiring the
//! checkout — draws a test pattern, prints a test slip with the printer's
//! status, opens the cash drawer, asks for every key, a swipe and a tap —
//! and says per part whether
//! it works and, if not, what to check. `--no-wait` runs only the checks that
//! need no person at the counter.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::{DeviceConfig, MagstripeKind};
use crate::devices::contactless::pn532::Pn532;
use crate::devices::keypad::LAYOUT;
use crate::devices::oled::Oled;
use crate::devices::printer::escpos::DrawerPin;
use crate::devices::printer::{EscPosPrinter, Printer, Slip};
use crate::devices::SharedHealth;
use crate::hw::{self, open_i2c};
use crate::session::{Input, Screen};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub part: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

pub struct Options {
    /// How long to wait for a person to press, swipe or tap.
    pub wait: Duration,
    /// Skip the checks that need a person.
    pub unattended: bool,
}

fn check(part: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            part,
            verdict: Verdict::Pass,
            detail,
        },
        Err(detail) => Check {
            part,
            verdict: Verdict::Fail,
            detail,
        },
    }
}

fn skip(part: &'static str, why: &str) -> Check {
    Check {
        part,
        verdict: Verdict::Skip,
        detail: why.to_string(),
    }
}

/// Runs every check the settings call for; `say` gets the prompts for the person.
pub fn run(config: &DeviceConfig, opts: &Options, say: &mut dyn FnMut(&str)) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(if config.oled.enabled {
        check("OLED", oled(config))
    } else {
        skip("OLED", "turned off in the settings")
    });
    checks.push(check("printer", printer(config)));
    checks.push(check("cash drawer", drawer(config)));
    let person = "needs a person at the counter (run without --no-wait)";
    checks.push(if !config.contactless.enabled {
        skip("contactless reader", "turned off in the settings")
    } else {
        check("contactless reader", tap(config, opts, say, person))
    });
    checks.push(if config.magstripe.kind == MagstripeKind::None {
        skip("swipe reader", "none in the settings")
    } else if opts.unattended {
        skip("swipe reader", person)
    } else {
        check("swipe reader", swipe(config, opts, say))
    });
    checks.push(if config.scanner.kind == crate::config::ScannerKind::None {
        skip("scanner", "none in the settings")
    } else if opts.unattended {
        skip("scanner", person)
    } else {
        check("scanner", scan(config, opts, say))
    });
    checks.push(if !config.keypad.enabled {
        skip("keypad", "turned off in the settings")
    } else if opts.unattended {
        skip("keypad", person)
    } else {
        check("keypad", keys(config, opts, say))
    });
    checks
}

/// The `hw-test` flags both programs take.
#[derive(Debug, Clone, clap::Args)]
pub struct HwTestArgs {
    /// Test this printer instead of the settings' one.
    #[arg(long)]
    pub printer: Option<String>,
    /// Only the checks that need nobody at the counter.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for each key press, swipe or tap.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
}

impl HwTestArgs {
    /// The `hw-test` command on the parts `config` names: prompts and the
    /// report on stdout; true when no part failed.
    pub fn run(&self, config: DeviceConfig) -> Result<bool, String> {
        let config = config.with_printer(self.printer.clone())?;
        let opts = Options {
            wait: Duration::from_secs(self.wait_secs),
            unattended: self.no_wait,
        };
        let checks = run(&config, &opts, &mut |prompt| println!("{prompt}"));
        print!("{}", report(&checks));
        Ok(!checks.iter().any(|c| c.verdict == Verdict::Fail))
    }
}

/// The report as the command prints it.
pub fn report(checks: &[Check]) -> String {
    let mut out = String::from("Tallybox hardware test\n");
    for c in checks {
        let verdict = match c.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        out += &format!("  {:<20} {verdict}  {}\n", c.part, c.detail);
    }
    out
}

fn oled(c: &DeviceConfig) -> Result<String, String> {
    let i2c = open_i2c(c.oled.i2c_bus)?;
    let mut oled = Oled::new(i2c, c.oled.address).map_err(|e| e.to_string())?;
    let pattern = Screen {
        lines: vec![
            "#####################".into(),
            "TALLYBOX SCREEN TEST".into(),
            "屏幕测试 中文显示".into(),
            "0123456789 ABCD *#".into(),
            "#####################".into(),
        ],
        ..Screen::default()
    };
    oled.try_show(&pattern)
        .map_err(|e| format!("the panel stopped answering: {e:?}"))?;
    Ok(format!(
        "answered at {:#04x}; check it shows two bars, English and Chinese text",
        c.oled.address
    ))
}

fn printer(c: &DeviceConfig) -> Result<String, String> {
    let addr = c.printer_addr()?;
    let mut printer = EscPosPrinter::at(addr.clone());
    let status = printer.status().map_err(|p| format!("{addr}: {p}"))?;
    if let Some(problem) = status.problem() {
        return Err(format!("{addr}: {problem}"));
    }
    let lines = vec![
        "TALLYBOX PRINTER TEST".to_string(),
        "打印测试 中文 GB18030".to_string(),
        "-".repeat(c.printer.columns),
        format!("connection {addr}"),
        format!(
            "paper {}",
            if status.paper_near_end {
                "running low"
            } else {
                "ok"
            }
        ),
    ];
    // A QR code too: it shows the printer's graphics work, which e-receipts need.
    let slip = Slip {
        lines,
        qr: Some("http://tallybox.local".into()),
    };
    printer.print(&slip).map_err(|p| format!("{addr}: {p}"))?;
    let low = if status.paper_near_end {
        "; paper running low: have a roll ready"
    } else {
        ""
    };
    Ok(format!("{addr}: test slip printed{low}"))
}

/// One pulse to the drawer through the printer's drawer port: the drawer
/// springs open if it is wired to that pin. Nothing reads a drawer back
/// (few have a sensor), so the person at the counter sees the result.
fn drawer(c: &DeviceConfig) -> Result<String, String> {
    let mut printer = c.printer()?;
    printer
        .open_drawer()
        .map_err(|p| format!("through the printer: {p}"))?;
    let (pin, other) = match c.printer.drawer_pin {
        DrawerPin::Two => (2, 5),
        DrawerPin::Five => (5, 2),
    };
    Ok(format!(
        "pulse sent on pin {pin}: the drawer should be open (if not: its cable, or printer.drawer_pin = \"{other}\")"
    ))
}

fn tap(c: &DeviceConfig, opts: &Options, say: &mut dyn FnMut(&str), person: &str) -> Result<String, String> {
    let i2c = open_i2c(c.contactless.i2c_bus)?;
    let mut reader = Pn532::new(i2c, c.contactless.address);
    let (ic, ver) = reader.begin().map_err(|e| e.to_string())?;
    let chip = format!("PN5{ic:02X} firmware {ver}");
    if opts.unattended {
        return Ok(format!("{chip} answered; tapping a card {person}"));
    }
    drop(reader);
    say("Tap a card on the contactless reader...");
    let (tx, rx) = mpsc::channel();
    let sink = move |input| tx.send(input).is_ok();
    let cents = tallybox_core::money::Amount::from_minor(1).ok();
    hw::contactless(c, SharedHealth::default(), move || cents, sink)?;
    match rx.recv_timeout(opts.wait) {
        Ok(Input::Card(Ok(card))) => Ok(format!("{chip}; read {}", card.pan.masked())),
        Ok(Input::Card(Err(e))) => Err(format!(
            "{chip}; the card was not read ({e}): hold it flat and still"
        )),
        _ => Err(format!(
            "{chip}; no card read in {} s: hold it flat on the antenna",
            opts.wait.as_secs()
        )),
    }
}

fn swipe(c: &DeviceConfig, opts: &Options, say: &mut dyn FnMut(&str)) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    let sink = move |input| tx.send(input).is_ok();
    hw::swipe_reader(c, SharedHealth::default(), sink).unwrap_or(Ok(()))?;
    say("Swipe a card through the reader...");
    let deadline = Instant::now() + opts.wait;
    let mut errors = 0;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Input::Card(Ok(card))) => {
                return Ok(format!(
                    "read {} ({errors} failed swipes first)",
                    card.pan.masked()
                ))
            }
            Ok(Input::Card(Err(_))) => {
                errors += 1;
                say("Read error: swipe again, steadily");
            }
            Ok(Input::CardStuck) => return Err("a card is stuck in the slot: pull it out".into()),
            _ => break,
        }
    }
    let hint = if c.magstripe.kind == MagstripeKind::Hid {
        "check the USB cable".to_string()
    } else {
        format!(
            "check the card-present (GPIO {}), strobe (GPIO {}) and data (GPIO {}) wires",
            c.magstripe.present, c.magstripe.strobe, c.magstripe.data
        )
    };
    if errors > 0 {
        Err(format!(
            "{errors} swipes, none read: clean the read head with a cleaning card; {hint}"
        ))
    } else {
        Err(format!("no swipe seen in {} s: {hint}", opts.wait.as_secs()))
    }
}

/// A payment code (any barcode of digits) through the scanner: the digits
/// read, or why none came.
fn scan(c: &DeviceConfig, opts: &Options, say: &mut dyn FnMut(&str)) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    let sink = move |input| tx.send(input).is_ok();
    hw::scanner(c, crate::devices::SharedHealth::default(), sink).unwrap_or(Ok(()))?;
    say("Scan a barcode of digits (a payment code, a product's barcode)...");
    match rx.recv_timeout(opts.wait) {
        Ok(Input::Scanned(code)) => Ok(format!("read {} digits", code.expose().len())),
        Ok(Input::NotACode) => Err(
            "it read something that is not digits (a QR code with letters?): scan a barcode of digits".into(),
        ),
        _ => Err(format!(
            "nothing read in {} s: aim at a barcode of digits; check its cable{}",
            opts.wait.as_secs(),
            match c.scanner.kind {
                crate::config::ScannerKind::Serial => format!(" and its baud rate (scanner.baud = {})", c.scanner.baud),
                _ => "; a scanner that types letters for digits is decoded by key position, so any keyboard layout reads".into(),
            }
        )),
    }
}

fn keys(c: &DeviceConfig, opts: &Options, say: &mut dyn FnMut(&str)) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    hw::keypad(c, move |input| tx.send(input).is_ok())?;
    say("Press every key once: 1 2 3 A / 4 5 6 B / 7 8 9 C / * 0 # D");
    let all: BTreeSet<char> = LAYOUT.iter().flatten().copied().collect();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + opts.wait;
    while seen != all {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        if let Ok(Input::Key(key)) = rx.recv_timeout(left) {
            seen.insert(key.to_char());
        } else {
            break;
        }
    }
    if seen == all {
        return Ok("all 16 keys read".into());
    }
    let missing: Vec<char> = all.difference(&seen).copied().collect();
    Err(format!(
        "{} never read: {}",
        missing.iter().collect::<String>(),
        wire_hint(c, &missing)
    ))
}

/// A whole row or column missing points at one wire.
fn wire_hint(c: &DeviceConfig, missing: &[char]) -> String {
    for (r, row) in LAYOUT.iter().enumerate() {
        if row.iter().all(|k| missing.contains(k)) {
            return format!(
                "the whole row R{r} is dead: check the wire to GPIO {}",
                c.keypad.rows[r]
            );
        }
    }
    for col in 0..4 {
        if LAYOUT.iter().all(|row| missing.contains(&row[col])) {
            return format!(
                "the whole column C{col} is dead: check the wire to GPIO {}",
                c.keypad.cols[col]
            );
        }
    }
    "single keys: the membrane may be worn there".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_row_or_column_names_its_wire() {
        let c = DeviceConfig::default();
        assert!(wire_hint(&c, &['4', '5', '6', 'B']).contains("GPIO 6"));
        assert!(wire_hint(&c, &['3', '6', '9', '#']).contains("GPIO 20"));
        assert!(wire_hint(&c, &['5']).contains("membrane"));
    }
}
