//! The OLED's screens as text: up to six lines of 21 characters (6×10 font on
//! 128×64). Every screen a cashier can meet is built here, so their wording is
//! in one place.

use serde::Serialize;

use crate::amount::Amount;
use crate::devices::PrinterProblem;
use crate::reason::{explain, Explanation};

pub const COLUMNS: usize = 21;
pub const ROWS: usize = 6;
/// Text columns left beside a QR code.
pub const QR_COLUMNS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Screen {
    pub lines: Vec<String>,
    /// A QR code drawn on the right half (the text then keeps to the left).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr: Option<String>,
}

impl Screen {
    fn of(lines: &[&str]) -> Screen {
        Screen {
            lines: lines
                .iter()
                .take(ROWS)
                .map(|l| l.chars().take(COLUMNS).collect())
                .collect(),
            qr: None,
        }
    }

    /// Lines for the left of a QR code: 10 characters.
    fn of_narrow(lines: &[&str]) -> Screen {
        let mut screen = Screen::of(lines);
        for line in &mut screen.lines {
            *line = line.chars().take(QR_COLUMNS).collect();
        }
        screen
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

fn money(currency: &str, amount: Amount) -> String {
    format!("{currency} {amount}")
}

pub fn idle(store_name: &str, signed_in: bool, printer: Option<PrinterProblem>) -> Screen {
    let link = if signed_in {
        "Ready"
    } else {
        "Connecting to hub..."
    };
    let printer = printer.map(|p| p.short().0).unwrap_or("");
    Screen::of(&[store_name, link, printer, "A sale    D menu"])
}

/// The slip did not print: why, and the e-receipt as a QR code for the
/// customer's phone when there is one.
pub fn printer_problem(problem: PrinterProblem, link: Option<&str>) -> Screen {
    let what = problem.short().0;
    match link {
        Some(link) => Screen {
            qr: Some(link.to_string()),
            ..Screen::of_narrow(&["NO SLIP", what, "Scan for", "e-receipt", "Any key"])
        },
        None => Screen::of(&[
            "SLIP NOT PRINTED",
            what,
            "It prints after",
            "the fix",
            "Any key: next",
        ]),
    }
}

pub fn amount_entry(currency: &str, digits: &str) -> Screen {
    let minor: u64 = digits.parse().unwrap_or(0);
    let shown = Amount::from_minor(minor)
        .map(|a| money(currency, a))
        .unwrap_or_default();
    Screen::of(&["SALE", "Key amount:", &shown, "", "# OK * del C cancel"])
}

pub fn menu() -> Screen {
    Screen::of(&["MENU", "1 Balance inquiry", "2 Reprint last slip", "", "C back"])
}

pub fn present_card(title: &str, notice: Option<Explanation>) -> Screen {
    match notice {
        Some(x) => Screen::of(&[title, x.reason_en, x.hint_en, "Swipe or tap card", "C cancel"]),
        None => Screen::of(&[title, "Swipe or tap card", "", "", "C cancel"]),
    }
}

pub fn pin_entry(title: &str, typed: usize) -> Screen {
    let stars = "*".repeat(typed);
    Screen::of(&[title, "Enter PIN:", &stars, "", "# OK * del C cancel"])
}

pub fn processing(title: &str) -> Screen {
    Screen::of(&["Processing...", title, "", "Do not remove card"])
}

pub fn approved(currency: &str, amount: Amount, auth_code: &str) -> Screen {
    Screen::of(&[
        "APPROVED",
        &money(currency, amount),
        &format!("Auth {auth_code}"),
        "Printing slips",
        "Any key: next",
    ])
}

pub fn balance(currency: &str, balance: Amount) -> Screen {
    Screen::of(&["BALANCE", &money(currency, balance), "", "Any key: next"])
}

/// A decline or failure: the reason and what to do, from the response code.
pub fn declined(code: &str, not_charged: bool) -> Screen {
    let x = explain(code);
    let title = if not_charged { "NOT CHARGED" } else { "DECLINED" };
    Screen::of(&[
        title,
        x.reason_en,
        x.hint_en,
        &format!("Code {code}"),
        "Any key: next",
    ])
}

pub fn hub_silent() -> Screen {
    let x = explain(crate::reason::HUB_SILENT);
    Screen::of(&[
        "NO ANSWER YET",
        x.reason_en,
        x.hint_en,
        "Still trying...",
        "C give up",
    ])
}

pub fn result_unknown() -> Screen {
    Screen::of(&[
        "RESULT UNKNOWN",
        "Check receipts on",
        "the phone before",
        "charging again",
        "Any key: next",
    ])
}

pub fn message(title: &str, line: &str) -> Screen {
    Screen::of(&[title, line, "", "Any key: next"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens_fit_the_oled() {
        let all = [
            idle(
                "A very long store name indeed",
                true,
                Some(PrinterProblem::NotResponding),
            ),
            printer_problem(PrinterProblem::CoverOpen, Some("http://tallybox.local/r/x")),
            printer_problem(PrinterProblem::PaperOut, None),
            amount_entry("CNY", "999999999"),
            menu(),
            present_card("SALE CNY 9999999.99", Some(explain("XC"))),
            pin_entry("SALE", 12),
            processing("SALE CNY 12.50"),
            approved("CNY", Amount::from_minor(999_999_999).unwrap(), "ABCDEF"),
            declined("51", false),
            hub_silent(),
            result_unknown(),
        ];
        for s in all {
            assert!(s.lines.len() <= ROWS);
            assert!(s.lines.iter().all(|l| l.chars().count() <= COLUMNS), "{s:?}");
        }
    }

    #[test]
    fn amount_shows_as_money_while_typing() {
        assert!(amount_entry("CNY", "1250").text().contains("CNY 12.50"));
        assert!(amount_entry("CNY", "").text().contains("CNY 0.00"));
    }
}
