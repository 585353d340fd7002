//! The swipe reader on GPIO, without the GPIO: card-present, clock and data
//! line events go in, card reads come out. The reader module's own chip may
//! hand over clocked bits (`strobe` + `data` lines), or the Pi times the raw
//! F2F reversals on the data line itself; both end in the ABA decoder.
//!
//! A card-present line that stays low longer than `stuck_after` means a card
//! (or a bit of one) is stuck in the slot: that is reported once, so the
//! cashier and the owner's troubleshooting page can say so.

use std::time::Duration;

use super::aba::{self, SwipeError};
use super::f2f;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    /// The card-present line changed (`true`: a card is in the slot), at `at`.
    Present(bool, Duration),
    /// The strobe clocked in a bit (data line low = 1 on these readers).
    Bit(bool),
    /// The data line reversed at `at` (raw F2F mode).
    Edge(Duration),
    /// Time passes (for the stuck check), at `at`.
    Tick(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwipeOutcome {
    /// The track text `;…?`.
    Read(String),
    Failed(SwipeError),
    CardStuck,
}

/// A reader module's clocked bits from its two lines' edges, each stamped by
/// the kernel: the module sets `data` while its strobe is high and holds it
/// while the strobe is low, so a bit is data's level at the strobe's fall,
/// known from data's own edges rather than read when a thread wakes (a late
/// wake-up would read the next bit).
///
/// Each line's edges reach the queue from its own interrupt thread, so a
/// data edge may come before or after a strobe fall it did not precede or
/// follow: the level at a fall is looked up by the edges' times in the last
/// few data edges, and a bit is handed over only at the next fall (or
/// [`StrobeSampler::finish`]), a whole bit later. The strobe is watched for
/// falls only: for a line watched both ways the kernel tells an edge's
/// direction by reading the line when its thread runs, which after a short
/// strobe pulse can be past the rise.
#[derive(Debug, Clone)]
pub struct StrobeSampler {
    /// Data's last edges, oldest first: (when, low after it).
    edges: std::collections::VecDeque<(Duration, bool)>,
    /// Data's level before the oldest of `edges` (low = 1).
    before: bool,
    /// The strobe's last fall.
    fell: Option<Duration>,
}

/// Data edges kept: a few bits' worth.
const KEPT_EDGES: usize = 16;

/// A data edge stamped this soon after a strobe fall came before it. When
/// both lines change before their interrupt is taken, the kernel stamps
/// them in one pass over the bank's pending lines, lowest number first
/// (the Pi's `bcm2835_gpio_irq_handle_bank`): the strobe (GPIO17) a few
/// microseconds before data (GPIO27) that changed first. A module holds
/// data while its strobe is low, for far longer than this.
pub const SAME_INTERRUPT: Duration = Duration::from_micros(10);

impl StrobeSampler {
    /// `data_low`: the data line's level when its edges start to be seen.
    pub fn new(data_low: bool) -> StrobeSampler {
        StrobeSampler {
            edges: std::collections::VecDeque::with_capacity(KEPT_EDGES),
            before: data_low,
            fell: None,
        }
    }

    /// Data went low (`true`) or high at `at`.
    pub fn data(&mut self, low: bool, at: Duration) {
        if self.edges.len() == KEPT_EDGES {
            if let Some((_, oldest)) = self.edges.pop_front() {
                self.before = oldest;
            }
        }
        self.edges.push_back((at, low));
    }

    /// The strobe fell at `at`: the bit of the fall before is complete.
    pub fn strobe_fell(&mut self, at: Duration) -> Option<bool> {
        let done = self.fell.replace(at)?;
        Some(self.low_at(done))
    }

    /// The last bit, once the lines are quiet or the card is out.
    pub fn finish(&mut self) -> Option<bool> {
        let done = self.fell.take()?;
        Some(self.low_at(done))
    }

    fn low_at(&self, fell: Duration) -> bool {
        let at = fell + SAME_INTERRUPT;
        self.edges
            .iter()
            .rev()
            .find(|(when, _)| *when <= at)
            .map_or(self.before, |&(_, low)| low)
    }
}

pub struct SwipeDecoder {
    stuck_after: Duration,
    present_since: Option<Duration>,
    told_stuck: bool,
    bits: Vec<bool>,
    last_edge: Option<Duration>,
    intervals: Vec<u32>,
}

/// More reversals than any track could hold: a swipe this long is noise.
const MAX_EDGES: usize = 4096;

impl SwipeDecoder {
    pub fn new(stuck_after: Duration) -> SwipeDecoder {
        SwipeDecoder {
            stuck_after,
            present_since: None,
            told_stuck: false,
            bits: Vec::new(),
            last_edge: None,
            intervals: Vec::new(),
        }
    }

    pub fn feed(&mut self, event: LineEvent) -> Option<SwipeOutcome> {
        match event {
            LineEvent::Present(true, at) => {
                self.present_since = Some(at);
                self.told_stuck = false;
                self.bits.clear();
                self.intervals.clear();
                self.last_edge = None;
                None
            }
            LineEvent::Present(false, _) => {
                self.present_since.take()?;
                if self.told_stuck {
                    return None; // freed at last; what it read is not a swipe
                }
                let bits = if self.intervals.is_empty() {
                    std::mem::take(&mut self.bits)
                } else {
                    f2f::decode(&std::mem::take(&mut self.intervals))
                };
                Some(match aba::decode(&bits) {
                    Ok(track) => SwipeOutcome::Read(track),
                    Err(e) => SwipeOutcome::Failed(e),
                })
            }
            LineEvent::Bit(bit) => {
                if self.present_since.is_some() && self.bits.len() < MAX_EDGES {
                    self.bits.push(bit);
                }
                None
            }
            LineEvent::Edge(at) => {
                if self.present_since.is_some() {
                    if let Some(last) = self.last_edge {
                        let micros = at.saturating_sub(last).as_micros().min(u32::MAX as u128) as u32;
                        if self.intervals.len() < MAX_EDGES {
                            self.intervals.push(micros);
                        }
                    }
                    self.last_edge = Some(at);
                }
                None
            }
            LineEvent::Tick(now) => {
                let since = self.present_since?;
                if !self.told_stuck && now.saturating_sub(since) >= self.stuck_after {
                    self.told_stuck = true;
                    return Some(SwipeOutcome::CardStuck);
                }
                None
            }
        }
    }
}
