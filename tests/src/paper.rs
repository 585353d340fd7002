//! What came off the printer model behind a pty, for tests that print
//! through the checkout's real ESC/POS driver: the slips, each as its
//! lines joined, and the pulses sent to the cash drawer. Printing runs on
//! the checkout's printer thread, a moment after its screen changes: the
//! `wait_` forms wait for it.

use std::time::Duration;

use tallybox_terminal::devices::model::pty::PtyPrinter;

use crate::wait_for;

pub fn printed(pty: &PtyPrinter) -> Vec<String> {
    pty.model
        .lock()
        .paper
        .slips
        .iter()
        .map(|s| s.join("\n"))
        .collect()
}

/// The slips once there are `count`; fails after 10 s.
pub fn wait_slips(pty: &PtyPrinter, count: usize) -> Vec<String> {
    wait_for(Duration::from_secs(10), || {
        let slips = printed(pty);
        (slips.len() >= count).then_some(slips)
    })
    .unwrap_or_else(|| panic!("expected {count} slips, printer has {:#?}", printed(pty)))
}

/// The drawer pulses so far, by the connector pin (2 or 5).
pub fn drawer_kicks(pty: &PtyPrinter) -> Vec<u8> {
    pty.model.lock().paper.drawer_kicks.clone()
}

/// The drawer pulses once there are `count`; fails after 5 s.
pub fn wait_kicks(pty: &PtyPrinter, count: usize) -> Vec<u8> {
    wait_for(Duration::from_secs(5), || {
        let kicks = drawer_kicks(pty);
        (kicks.len() >= count).then_some(kicks)
    })
    .unwrap_or_else(|| panic!("expected {count} drawer pulses, got {:?}", drawer_kicks(pty)))
}
