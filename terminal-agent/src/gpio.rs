//! GPIO through the kernel's character device (`/dev/gpiochipN`, uAPI v2),
//! which Debian's kernel and the Raspberry Pi's own both have. Each device
//! (the keypad, the swipe reader) holds one request for all its lines.
//!
//! Lines are found by the names the device tree gives them (`GPIO17` on the
//! Pi 3, 4 and 5 alike, whatever the chip's number or the line's offset); on
//! a device tree that names none, by their BCM number on the Pi's own GPIO
//! chip.

use std::sync::Arc;
use std::time::Duration;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Offset, Value};
use gpiocdev::Request;

use crate::devices::magstripe::swipe::{LineEvent, StrobeSampler};

/// The chip and offsets of BCM lines `bcm`, all on one chip.
pub fn find(bcm: &[u8]) -> Result<(std::path::PathBuf, Vec<Offset>), String> {
    let lines: Vec<gpiocdev::FoundLine> = gpiocdev::LineIterator::new()
        .map_err(|e| format!("GPIO: {e}; is the service user in the gpio group?"))?
        .collect();
    if lines.is_empty() {
        return Err(
            "GPIO: no GPIO chip (/dev/gpiochip*) can be opened; is the service user in the gpio group?"
                .into(),
        );
    }
    let mut found = Vec::new();
    for &n in bcm {
        let name = format!("GPIO{n}");
        let line = lines
            .iter()
            .find(|l| l.info.name == name)
            .or_else(|| {
                // The BCM283x / BCM2711 chip unnamed: offsets are BCM numbers.
                lines
                    .iter()
                    .find(|l| l.info.offset == n as Offset && l.info.name.is_empty() && on_bcm_chip(l))
            })
            .ok_or_else(|| format!("GPIO: no line named {name} (gpioinfo lists the lines this board has)"))?;
        found.push(line);
    }
    let chip = found[0].chip.clone();
    if let Some(other) = found.iter().find(|l| l.chip != chip) {
        return Err(format!(
            "GPIO: {} is on {}, the others on {}: one device's lines must be on one chip",
            other.info.name,
            other.chip.display(),
            chip.display()
        ));
    }
    Ok((chip, found.iter().map(|l| l.info.offset).collect()))
}

fn on_bcm_chip(line: &gpiocdev::FoundLine) -> bool {
    gpiocdev::chip::Chip::from_path(&line.chip)
        .and_then(|c| c.info())
        .is_ok_and(|i| i.label.starts_with("pinctrl-bcm2"))
}

/// Says which device asked for the lines, as `gpioinfo` shows it.
const CONSUMER: &str = "tallybox";

fn failed(what: &str, e: gpiocdev::Error) -> String {
    format!("GPIO {what}: {e} (another program may hold the lines: gpioinfo names it)")
}

/// One line of a request as an embedded-hal pin.
pub struct Pin {
    request: Arc<Request>,
    offset: Offset,
}

#[derive(Debug)]
pub struct PinError(#[allow(dead_code)] gpiocdev::Error);

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl ErrorType for Pin {
    type Error = PinError;
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), PinError> {
        self.request
            .set_value(self.offset, Value::Inactive)
            .map_err(PinError)
    }
    fn set_high(&mut self) -> Result<(), PinError> {
        self.request
            .set_value(self.offset, Value::Active)
            .map_err(PinError)
    }
}

impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, PinError> {
        Ok(self.request.value(self.offset).map_err(PinError)? == Value::Active)
    }
    fn is_low(&mut self) -> Result<bool, PinError> {
        Ok(!self.is_high()?)
    }
}

/// The keypad's rows (driven, idle high) and columns (pulled up, debounced
/// by the kernel for `debounce`), in one request.
pub fn keypad_lines(
    rows: [u8; 4],
    cols: [u8; 4],
    debounce: Duration,
) -> Result<([Pin; 4], [Pin; 4]), String> {
    let all: Vec<u8> = rows.iter().chain(&cols).copied().collect();
    let (chip, offsets) = find(&all)?;
    let mut b = Request::builder();
    b.on_chip(&chip).with_consumer(format!("{CONSUMER}-keypad"));
    b.with_lines(&offsets[..4]).as_output(Value::Active);
    b.with_lines(&offsets[4..])
        .as_input()
        .with_bias(Bias::PullUp)
        .with_debounce_period(debounce);
    let request = Arc::new(b.request().map_err(|e| failed("keypad", e))?);
    let pin = |offset: Offset| Pin {
        request: request.clone(),
        offset,
    };
    Ok((
        std::array::from_fn(|i| pin(offsets[i])),
        std::array::from_fn(|i| pin(offsets[4 + i])),
    ))
}

/// A swipe reader's lines in one request, read as [`LineEvent`]s stamped
/// with the kernel's time of each edge (CLOCK_MONOTONIC, as [`now`]).
pub struct SwipeLines {
    request: Request,
    present: Offset,
    data: Offset,
    /// The reader module's clock line and its bits; None for a raw read
    /// head (F2F on data).
    clocked: Option<(Offset, StrobeSampler)>,
    /// An event that waits behind the last bit it completed.
    held: Option<LineEvent>,
    /// The request's number of the last edge read, data's last direction
    /// (low after it), and the edges missed since the card came in.
    seqno: Option<u32>,
    data_low: Option<bool>,
    missed: Missed,
}

/// Edges the kernel did not hand over one by one, since the card came in.
/// `merged`: a line's interrupt thread that had not run by its next edge
/// reports both as one (the request's sequence numbers then skip).
/// `unseen`: an edge that came while its line's interrupt was masked for
/// its thread (gpio-sim drops it; a Pi's GPIO block stamps it late): the
/// data line then reports the same direction twice. A swipe read that way
/// may fail: the checkout was too busy, not the card or the head.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    pub merged: u32,
    pub unseen: u32,
}

impl Missed {
    /// What sequence number `next`, after `last`, says was merged.
    fn numbered(&mut self, last: Option<u32>, next: u32) {
        if let Some(last) = last {
            let skipped = next.wrapping_sub(last).saturating_sub(1);
            self.merged = self.merged.saturating_add(skipped);
        }
    }

    /// Data went `low` (or high) after it had gone `before`.
    fn data(&mut self, before: Option<bool>, low: bool) {
        if before == Some(low) {
            self.unseen = self.unseen.saturating_add(1);
        }
    }

    pub fn any(&self) -> bool {
        self.merged > 0 || self.unseen > 0
    }
}

impl SwipeLines {
    /// `strobe`: the reader module's clock line, or None for a raw head.
    pub fn open(present: u8, data: u8, strobe: Option<u8>) -> Result<SwipeLines, String> {
        let mut bcm = vec![present, data];
        bcm.extend(strobe);
        let (chip, offsets) = find(&bcm)?;
        let mut b = Request::builder();
        b.on_chip(&chip).with_consumer(format!("{CONSUMER}-swipe"));
        // Card present is active low on these readers; its contact bounces.
        b.with_line(offsets[0])
            .as_input()
            .with_bias(Bias::PullUp)
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_debounce_period(Duration::from_millis(2));
        if let Some(&strobe) = offsets.get(2) {
            // A reader module holds each bit on data while its strobe is
            // low: the bit is data's level at the strobe's fall, from data's
            // kernel-stamped edges (StrobeSampler), not data read when this
            // thread wakes, which may be after the next bit was set.
            b.with_line(offsets[1])
                .as_input()
                .with_bias(Bias::PullUp)
                .with_edge_detection(EdgeDetection::BothEdges);
            b.with_line(strobe)
                .as_input()
                .with_bias(Bias::PullUp)
                .with_edge_detection(EdgeDetection::FallingEdge);
        } else {
            // A raw head: every reversal, timed by the kernel.
            b.with_line(offsets[1])
                .as_input()
                .with_bias(Bias::PullUp)
                .with_edge_detection(EdgeDetection::BothEdges);
        }
        // A swipe is ~600 edges in a quarter of a second.
        b.with_kernel_event_buffer_size(1024);
        let request = b.request().map_err(|e| failed("swipe reader", e))?;
        let clocked = match offsets.get(2) {
            Some(&strobe) => {
                let data = request.value(offsets[1]).map_err(|e| failed("swipe reader", e))?;
                Some((strobe, StrobeSampler::new(data == Value::Inactive)))
            }
            None => None,
        };
        Ok(SwipeLines {
            request,
            present: offsets[0],
            data: offsets[1],
            clocked,
            held: None,
            seqno: None,
            data_low: None,
            missed: Missed::default(),
        })
    }

    /// Edges missed since the card came in; a failed read with some says why.
    pub fn missed(&self) -> Missed {
        self.missed
    }

    /// The next event, or a tick when nothing happened for `wait`.
    pub fn next(&mut self, wait: Duration) -> Result<LineEvent, String> {
        if let Some(event) = self.held.take() {
            return Ok(event);
        }
        let read = |e| failed("swipe reader", e);
        loop {
            let event = if !self.request.wait_edge_event(wait).map_err(read)? {
                LineEvent::Tick(now())
            } else {
                let e = self.request.read_edge_event().map_err(read)?;
                let at = Duration::from_nanos(e.timestamp_ns);
                let falling = e.kind == EdgeKind::Falling;
                if e.offset == self.present && falling {
                    self.missed = Missed::default();
                } else {
                    self.missed.numbered(self.seqno, e.seqno);
                }
                self.seqno = Some(e.seqno);
                if e.offset == self.data {
                    self.missed.data(self.data_low, falling);
                    self.data_low = Some(falling);
                }
                match &mut self.clocked {
                    _ if e.offset == self.present => LineEvent::Present(falling, at),
                    None => LineEvent::Edge(at),
                    Some((strobe, sampler)) if e.offset == *strobe => match sampler.strobe_fell(at) {
                        Some(bit) => return Ok(LineEvent::Bit(bit)),
                        None => continue,
                    },
                    Some((_, sampler)) => {
                        sampler.data(falling, at);
                        continue;
                    }
                }
            };
            // The last bit goes before the card's leaving or a quiet spell.
            if let Some(bit) = self.clocked.as_mut().and_then(|(_, s)| s.finish()) {
                self.held = Some(event);
                return Ok(LineEvent::Bit(bit));
            }
            return Ok(event);
        }
    }
}

/// CLOCK_MONOTONIC, the clock the kernel stamps line edges with.
pub fn now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, which lives here.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::Missed;

    #[test]
    fn skipped_sequence_numbers_and_a_direction_twice_count_as_missed_edges() {
        let mut missed = Missed::default();
        missed.numbered(None, 7);
        missed.numbered(Some(7), 8);
        assert!(!missed.any(), "the first edge, then the next one");
        missed.numbered(Some(8), 11);
        assert_eq!(missed.merged, 2);
        missed.numbered(Some(u32::MAX), 0);
        missed.numbered(Some(11), 11);
        assert_eq!(missed.merged, 2, "the numbers wrap; the same one is no gap");

        missed.data(None, true);
        missed.data(Some(true), false);
        assert_eq!(missed.unseen, 0, "low, then high");
        missed.data(Some(false), false);
        assert_eq!(missed.unseen, 1, "high twice: a fall between was not seen");
    }
}
