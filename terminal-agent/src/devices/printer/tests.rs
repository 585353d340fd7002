//! The ESC/POS driver and spool against the byte-level printer model.

use super::*;
use crate::devices::model::escpos::SharedPrinter;
use crate::print::spool::{PrintReport, Spool};

fn lines(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag} 第{i}行 line")).collect()
}

fn slip(n: usize, tag: &str) -> Slip {
    Slip {
        lines: lines(n, tag),
        qr: None,
    }
}

fn printer(model: &SharedPrinter) -> EscPosPrinter {
    let mut p = EscPosPrinter::new(Box::new(model.port()));
    p.answer_within = Duration::from_millis(50);
    p
}

#[test]
fn a_slip_comes_out_whole_with_chinese_intact() {
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    p.print(&slip(5, "A")).unwrap();
    let m = model.lock();
    assert_eq!(m.paper.slips, vec![lines(5, "A")]);
    assert_eq!(m.unknown_commands, 0);
}

#[test]
fn the_e_receipt_qr_code_prints_under_the_slip() {
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    let link = "http://tallybox.local/r/ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    p.print(&Slip {
        lines: lines(2, "A"),
        qr: Some(link.into()),
    })
    .unwrap();
    let m = model.lock();
    assert_eq!(m.paper.qr_codes, vec![link.to_string()]);
    let mut expected = lines(2, "A");
    expected.push(format!("[QR {link}]"));
    assert_eq!(m.paper.slips, vec![expected]);
}

#[test]
fn the_drawer_opens_on_its_pin_and_a_stopped_printer_says_why_it_did_not() {
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    p.open_drawer().unwrap();
    let mut p5 = printer(&model).with_drawer(escpos::DrawerPin::Five);
    p5.open_drawer().unwrap();
    assert_eq!(model.lock().paper.drawer_kicks, vec![2, 5]);
    model.with(|m| m.set_paper(false));
    assert_eq!(p.open_drawer(), Err(PrinterProblem::PaperOut));
    assert_eq!(
        model.lock().paper.drawer_kicks,
        vec![2, 5],
        "no kick left waiting"
    );
    model.with(|m| m.set_paper(true));
    p.recover();
    p.print(&slip(2, "A")).unwrap();
    let m = model.lock();
    assert_eq!(m.paper.drawer_kicks, vec![2, 5]);
    assert_eq!(m.paper.slips, vec![lines(2, "A")], "the kick prints nothing");
    assert_eq!(m.unknown_commands, 0);
}

#[test]
fn each_problem_is_named_before_printing() {
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    model.with(|m| m.set_cover_open(true));
    assert_eq!(p.print(&slip(2, "A")), Err(PrinterProblem::CoverOpen));
    model.with(|m| m.set_cover_open(false));
    model.with(|m| m.set_paper(false));
    assert_eq!(p.print(&slip(2, "A")), Err(PrinterProblem::PaperOut));
    model.with(|m| m.set_paper(true));
    model.with(|m| m.set_offline(true));
    assert_eq!(p.print(&slip(2, "A")), Err(PrinterProblem::Offline));
    model.with(|m| m.set_offline(false));
    model.with(|m| m.status.head_overheat = true);
    assert_eq!(p.print(&slip(2, "A")), Err(PrinterProblem::HeadHot));
    assert!(model.lock().paper.slips.is_empty());
}

#[test]
fn a_silent_printer_is_not_responding() {
    struct Dead;
    impl Port for Dead {
        fn write_all(&mut self, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn read_byte(&mut self, _: Duration) -> std::io::Result<Option<u8>> {
            Ok(None)
        }
    }
    let mut p = EscPosPrinter::new(Box::new(Dead));
    p.answer_within = Duration::from_millis(5);
    assert_eq!(p.print(&slip(1, "A")), Err(PrinterProblem::NotResponding));
}

#[test]
fn paper_out_mid_slip_keeps_it_and_prints_it_once_after_the_new_roll() {
    let dir = tempfile::tempdir().unwrap();
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    let mut spool = Spool::new(crate::print::queue::PrintQueue::open(dir.path()).unwrap());
    model.with(|m| m.paper_after(3));
    let report = spool.submit(&mut p, slip(6, "A"));
    assert_eq!(
        report,
        Some(PrintReport::Failed {
            problem: PrinterProblem::PaperOut,
            waiting: 1
        })
    );
    // The next sale's slip waits behind it.
    assert_eq!(spool.submit(&mut p, slip(4, "B")), None);
    assert_eq!(spool.retry(&mut p), None, "still no paper: nothing new to say");
    model.with(|m| m.set_paper(true));
    assert_eq!(spool.retry(&mut p), Some(PrintReport::Recovered { printed: 2 }));
    let m = model.lock();
    assert_eq!(
        m.paper.slips,
        vec![lines(6, "A"), lines(4, "B")],
        "each slip whole, once"
    );
    assert_eq!(
        m.paper.torn,
        vec![lines(3, "A")],
        "the piece before the paper ran out"
    );
    assert_eq!(spool.waiting(), 0);
}

#[test]
fn a_roll_running_low_is_reported_once_and_again_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    let mut spool = Spool::new(crate::print::queue::PrintQueue::open(dir.path()).unwrap());
    assert_eq!(spool.submit(&mut p, slip(3, "A")), None, "plenty of paper");
    model.with(|m| m.paper_after(45));
    assert_eq!(
        spool.submit(&mut p, slip(10, "B")),
        Some(PrintReport::PaperLow(true))
    );
    assert_eq!(spool.submit(&mut p, slip(3, "C")), None, "said once");
    model.with(|m| m.set_paper(true));
    assert_eq!(
        spool.submit(&mut p, slip(3, "D")),
        Some(PrintReport::PaperLow(false))
    );
}

#[test]
fn a_roll_that_ran_low_then_out_is_good_again_once_changed_without_another_sale() {
    let dir = tempfile::tempdir().unwrap();
    let model = SharedPrinter::default();
    let mut p = printer(&model);
    let mut spool = Spool::new(crate::print::queue::PrintQueue::open(dir.path()).unwrap());
    model.with(|m| m.paper_after(20));
    assert_eq!(
        spool.submit(&mut p, slip(3, "A")),
        Some(PrintReport::PaperLow(true))
    );
    assert!(matches!(
        spool.submit(&mut p, slip(30, "B")),
        Some(PrintReport::Failed { .. })
    ));
    model.with(|m| m.set_paper(true));
    assert_eq!(spool.retry(&mut p), Some(PrintReport::Recovered { printed: 1 }));
    assert_eq!(
        spool.retry(&mut p),
        Some(PrintReport::PaperLow(false)),
        "the next look at the printer says the new roll is full"
    );
    assert_eq!(spool.retry(&mut p), None, "said once");
}

#[test]
fn slips_left_in_the_queue_print_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let model = SharedPrinter::default();
    model.with(|m| m.set_paper(false));
    {
        let mut spool = Spool::new(crate::print::queue::PrintQueue::open(dir.path()).unwrap());
        spool.submit(&mut printer(&model), slip(2, "A"));
    }
    model.with(|m| m.set_paper(true));
    let mut spool = Spool::new(crate::print::queue::PrintQueue::open(dir.path()).unwrap());
    assert_eq!(
        spool.retry(&mut printer(&model)),
        Some(PrintReport::Recovered { printed: 1 })
    );
    assert_eq!(model.lock().paper.slips, vec![lines(2, "A")]);
}
