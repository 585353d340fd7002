//! What a checkout tells the hub about itself: its devices, its machine and
//! whether it is online.

use serde::{Deserialize, Serialize};

/// Counters a checkout keeps about its devices, sent with each heartbeat so
/// the owner can see a dirty reader or a printer problem from the phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub swipes: u32,
    pub swipe_errors: u32,
    pub taps: u32,
    pub tap_errors: u32,
    pub cards_stuck: u32,
    /// What stops the printer now, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printer: Option<PrinterProblem>,
    /// Slips waiting in the print queue.
    #[serde(default)]
    pub slips_waiting: u32,
    /// Paper printed, in millimetres (for the owner's paper-roll estimate).
    #[serde(default)]
    pub paper_mm: u64,
    /// How the printer is reached: `uart`, `rfcomm` (Bluetooth), `usb`, `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printer_link: Option<String>,
    /// The printer's sensor says the roll is nearly out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paper_low: bool,
    /// The checkout's own machine: temperature, power, Bluetooth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineHealth>,
    /// Parts that could not be opened at start, each with why ("keypad:
    /// GPIO: ..."): not wired, not switched on in config.txt, no rights;
    /// and those gone since ("scanner: gone (...)": unplugged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
}

/// Retained `status` of the hub and of each terminal; the broker publishes the
/// offline form as the client's last will.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "status")]
pub struct Status {
    pub online: bool,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Status {
    /// The retained payload. A status is an object of plain fields, which
    /// always encodes (the test below holds it to that).
    pub fn payload(&self) -> Vec<u8> {
        super::encode(self).expect("a status always encodes")
    }
}

/// What the machine says about itself; a sensor it does not have is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineHealth {
    /// CPU temperature, whole °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_temp_c: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<Power>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bluetooth: Option<Bluetooth>,
}

/// The supply, as the Pi's firmware sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Power {
    /// The supply is below 4.63 V right now.
    pub under_voltage: bool,
    /// It was, at some time since boot.
    #[serde(default)]
    pub under_voltage_before: bool,
    /// The CPU is (or was since boot) slowed down for heat or power.
    #[serde(default)]
    pub throttled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bluetooth {
    On,
    /// Switched off by software (`rfkill block`) or a hardware switch.
    Blocked,
}

/// Why a slip did not print, each with what the cashier should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum PrinterProblem {
    #[error("printer is out of paper: put in a new roll; the slip prints by itself")]
    PaperOut,
    #[error("printer cover is open: close it firmly; the slip prints by itself")]
    CoverOpen,
    #[error("printer cutter is jammed: open the cover, clear the paper, close it")]
    CutterJammed,
    #[error("print head is too hot: let it cool for a few minutes, keep it out of the sun")]
    HeadHot,
    #[error("printer is offline: check its power switch and light")]
    Offline,
    #[error("printer reports a fault it cannot recover from: switch it off and on; if it stays, replace it")]
    Broken,
    #[error("printer does not answer: check that it is on and its cable (or Bluetooth link) is connected")]
    NotResponding,
}

impl PrinterProblem {
    /// Short text for the OLED.
    pub fn short(self) -> (&'static str, &'static str) {
        match self {
            PrinterProblem::PaperOut => ("Paper out", "缺纸"),
            PrinterProblem::CoverOpen => ("Cover open", "纸仓盖未关"),
            PrinterProblem::CutterJammed => ("Cutter jammed", "切刀卡纸"),
            PrinterProblem::HeadHot => ("Print head hot", "打印头过热"),
            PrinterProblem::Offline => ("Printer offline", "打印机离线"),
            PrinterProblem::Broken => ("Printer fault", "打印机故障"),
            PrinterProblem::NotResponding => ("No printer", "打印机无响应"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_encodes_and_decodes_back() {
        let status = Status {
            online: false,
            version: "0.1.0".into(),
            detail: Some("stopped".into()),
        };
        assert_eq!(super::super::decode_status(&status.payload()).unwrap(), status);
    }
}
