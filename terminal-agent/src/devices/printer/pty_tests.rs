//! The ESC/POS driver over a real tty: the printer model behind a pty.

use std::time::Duration;

use super::port::PrinterAddr;
use super::{EscPosPrinter, Printer, PrinterProblem, Slip};
use crate::devices::model::pty::PtyPrinter;

#[test]
fn a_slip_goes_through_a_serial_tty_and_status_comes_back() {
    let pty = PtyPrinter::start().unwrap();
    let addr: PrinterAddr = pty.connection().parse().unwrap();
    let mut printer = EscPosPrinter::at(addr);
    let slip = Slip {
        lines: vec![
            "商户存根 MERCHANT COPY".to_string(),
            "金额 AMOUNT  CNY 12.50".to_string(),
        ],
        qr: None,
    };
    printer.print(&slip).unwrap();
    assert_eq!(pty.model.lock().paper.slips, vec![slip.lines.clone()]);
    pty.model.with(|m| m.set_cover_open(true));
    assert_eq!(printer.print(&slip), Err(PrinterProblem::CoverOpen));
    pty.model.with(|m| m.set_cover_open(false));
    printer.recover();
    printer.print(&slip).unwrap();
    assert_eq!(pty.model.lock().paper.slips.len(), 2);
}

#[test]
fn a_printer_that_is_not_there_is_not_responding() {
    let addr: PrinterAddr = "uart:/dev/ttyNOPRINTER@9600".parse().unwrap();
    let mut printer = EscPosPrinter::at(addr);
    let started = std::time::Instant::now();
    assert_eq!(printer.status(), Err(PrinterProblem::NotResponding));
    assert!(started.elapsed() < Duration::from_secs(2));
}
