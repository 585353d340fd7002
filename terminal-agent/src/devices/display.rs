//! What a display shows and the trait every display implements. The session
//! makes [`Screen`]s; the OLED driver, the simulated display and the control
//! API show them, none of them knowing the session.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Screen {
    pub lines: Vec<String>,
    /// A QR code drawn on the right half (the text then keeps to the left).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr: Option<String>,
    /// The idle screen's bottom-right corner: link, printer and paper icons and the clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusBar>,
}

/// What the idle screen's icons show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusBar {
    /// Local time `HH:MM`; empty until the runtime has told it.
    pub clock: String,
    /// Signed in with the hub.
    pub online: bool,
    /// The printer can print.
    pub printer_ok: bool,
    /// The roll is running low.
    pub paper_low: bool,
}

impl Screen {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

pub trait Display: Send {
    fn show(&mut self, screen: &Screen);
}

impl<T: Display + ?Sized> Display for Box<T> {
    fn show(&mut self, screen: &Screen) {
        (**self).show(screen)
    }
}
