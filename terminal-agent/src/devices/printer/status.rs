//! The printer's answers to `DLE EOT 1..4` and `GS r 1`, decoded into what went
//! wrong. Each answer byte has bit 1 and bit 4 set and bits 0 and 7 clear
//! (Epson's fixed pattern); anything else is line noise, not a status.

pub use tallybox_core::protocol::PrinterProblem;

/// What the four `DLE EOT` answers say together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrinterStatus {
    pub offline: bool,
    pub cover_open: bool,
    pub paper_end: bool,
    pub paper_near_end: bool,
    pub cutter_error: bool,
    /// Print head too hot (recovers by itself once it cools).
    pub head_overheat: bool,
    pub unrecoverable: bool,
}

pub fn is_status_byte(b: u8) -> bool {
    b & 0b1001_0011 == 0b0001_0010
}

impl PrinterStatus {
    /// Decodes the answers to `DLE EOT 1`, `2`, `3` and `4`, in that order.
    pub fn from_bytes(answers: [u8; 4]) -> Option<PrinterStatus> {
        if !answers.iter().all(|&b| is_status_byte(b)) {
            return None;
        }
        let [printer, offline, error, paper] = answers;
        Some(PrinterStatus {
            offline: printer & 0x08 != 0,
            cover_open: offline & 0x04 != 0,
            paper_end: offline & 0x20 != 0 || paper & 0x60 == 0x60,
            paper_near_end: paper & 0x0C == 0x0C,
            cutter_error: error & 0x08 != 0,
            head_overheat: error & 0x40 != 0,
            unrecoverable: error & 0x20 != 0,
        })
    }

    /// The answers a printer in this state gives (used by the printer model).
    pub fn to_bytes(self) -> [u8; 4] {
        let base = 0x12;
        let bit = |on: bool, mask: u8| if on { mask } else { 0 };
        let stopped = self.offline || self.cover_open || self.paper_end || self.any_error();
        [
            base | bit(stopped, 0x08),
            base | bit(self.cover_open, 0x04) | bit(self.paper_end, 0x20) | bit(self.any_error(), 0x40),
            base | bit(self.cutter_error, 0x08)
                | bit(self.unrecoverable, 0x20)
                | bit(self.head_overheat, 0x40),
            base | bit(self.paper_near_end || self.paper_end, 0x0C) | bit(self.paper_end, 0x60),
        ]
    }

    fn any_error(self) -> bool {
        self.cutter_error || self.head_overheat || self.unrecoverable
    }

    /// The first thing that stops printing, worst first; `None` when it can print.
    pub fn problem(self) -> Option<PrinterProblem> {
        if self.unrecoverable {
            Some(PrinterProblem::Broken)
        } else if self.cover_open {
            Some(PrinterProblem::CoverOpen)
        } else if self.paper_end {
            Some(PrinterProblem::PaperOut)
        } else if self.cutter_error {
            Some(PrinterProblem::CutterJammed)
        } else if self.head_overheat {
            Some(PrinterProblem::HeadHot)
        } else if self.offline {
            Some(PrinterProblem::Offline)
        } else {
            None
        }
    }
}

/// `GS r 1` answer: bits 2 and 3 set when the paper has run out.
pub fn printed_mark_paper_end(b: u8) -> bool {
    b & 0x0C == 0x0C
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_survives_the_round_trip_through_status_bytes() {
        let states = [
            PrinterStatus::default(),
            PrinterStatus {
                paper_end: true,
                ..Default::default()
            },
            PrinterStatus {
                paper_near_end: true,
                ..Default::default()
            },
            PrinterStatus {
                cover_open: true,
                ..Default::default()
            },
            PrinterStatus {
                offline: true,
                ..Default::default()
            },
            PrinterStatus {
                cutter_error: true,
                ..Default::default()
            },
            PrinterStatus {
                head_overheat: true,
                ..Default::default()
            },
            PrinterStatus {
                unrecoverable: true,
                ..Default::default()
            },
        ];
        for s in states {
            let back = PrinterStatus::from_bytes(s.to_bytes()).unwrap();
            assert_eq!(back.problem(), s.problem(), "{s:?}");
            assert_eq!(back.paper_near_end, s.paper_near_end || s.paper_end);
        }
        assert_eq!(PrinterStatus::default().problem(), None);
    }

    #[test]
    fn epson_sample_answers_decode() {
        // Paper end: DLE EOT 4 answers 0x7E, DLE EOT 2 answers 0x32.
        let s = PrinterStatus::from_bytes([0x1A, 0x32, 0x12, 0x7E]).unwrap();
        assert_eq!(s.problem(), Some(PrinterProblem::PaperOut));
        // Cover open.
        let s = PrinterStatus::from_bytes([0x1A, 0x16, 0x12, 0x12]).unwrap();
        assert_eq!(s.problem(), Some(PrinterProblem::CoverOpen));
        // All fine.
        assert_eq!(
            PrinterStatus::from_bytes([0x16, 0x12, 0x12, 0x12])
                .unwrap()
                .problem(),
            None
        );
    }

    #[test]
    fn noise_is_not_a_status() {
        assert!(PrinterStatus::from_bytes([0x00, 0x12, 0x12, 0x12]).is_none());
        assert!(PrinterStatus::from_bytes([0x12, 0xFF, 0x12, 0x12]).is_none());
    }
}
