//! The hands at the counter, for a checkout whose GPIO lines are the
//! kernel's `gpio-sim` chip (a test machine with no keypad or reader wired):
//! plays a swipe and presses keys by setting the simulated lines' pulls
//! through sysfs, as the parts would drive them. Used by `scripts/test-gpio`
//! inside the booted test machine.
//!
//! ```text
//! gpio_sim_agent DEVICES_TOML SIM_DIR swipe TRACK    a reader module (strobe + data;
//!                                                     GPIO_SIM_BIT_MS a bit, default 2)
//! gpio_sim_agent DEVICES_TOML SIM_DIR f2f TRACK      a raw read head (F2F on data)
//! gpio_sim_agent DEVICES_TOML SIM_DIR keys KEYS      each key pressed once
//! ```
//!
//! `SIM_DIR` is the chip's sysfs directory
//! (`/sys/devices/platform/gpio-sim.0/gpiochip0`), whose `sim_gpioN/pull`
//! sets what line N reads and `sim_gpioN/value` shows what a program drives.
//! Each command waits until the checkout has taken the device's lines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tallybox_terminal::config::DeviceConfig;
use tallybox_terminal::devices::keypad;
use tallybox_terminal::devices::magstripe::swipe::LineEvent;
use tallybox_terminal::devices::model::magstripe::{f2f_swipe, strobe_swipe, SwipeStyle};

struct Sim {
    dir: PathBuf,
    chip: PathBuf,
}

impl Sim {
    fn pull(&self, line: u8, low: bool) {
        let path = self.dir.join(format!("sim_gpio{line}/pull"));
        std::fs::write(&path, if low { "pull-down" } else { "pull-up" })
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn driven_low(&self, line: u8) -> bool {
        let path = self.dir.join(format!("sim_gpio{line}/value"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            == "0"
    }

    /// Waits (five minutes at most) until a program has requested `line`.
    fn wait_taken(&self, line: u8) {
        let chip = gpiocdev::chip::Chip::from_path(&self.chip).expect("open the simulated chip");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !chip.line_info(line as u32).expect("line info").used {
            assert!(
                Instant::now() < deadline,
                "nobody took GPIO{line} in five minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The request is configured; let the reader's thread start.
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Plays `events` on the reader's lines, keeping their spacing; a reader
/// module's bits `bit` apart.
fn play(sim: &Sim, c: &DeviceConfig, events: &[LineEvent], bit: Duration) {
    let m = &c.magstripe;
    let mut start = Instant::now();
    let mut data_low = false;
    for e in events {
        match *e {
            LineEvent::Present(present, at) => {
                sleep_until(start, at);
                // Card present is active low. The head meets the stripe a
                // moment after the switch closes.
                sim.pull(m.present, present);
                std::thread::sleep(Duration::from_millis(20));
                start += Duration::from_millis(20);
            }
            LineEvent::Bit(one) => {
                // Data low = 1, set a tenth of a bit before the strobe
                // falls and held while the strobe is low (half a bit).
                sim.pull(m.data, one);
                std::thread::sleep(bit / 10);
                sim.pull(m.strobe, true);
                std::thread::sleep(bit / 2);
                sim.pull(m.strobe, false);
                std::thread::sleep(bit * 4 / 10);
            }
            LineEvent::Edge(at) => {
                sleep_until(start, at);
                data_low = !data_low;
                sim.pull(m.data, data_low);
            }
            LineEvent::Tick(_) => {}
        }
    }
}

fn sleep_until(start: Instant, at: Duration) {
    if let Some(left) = (start + at).checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

/// Holds key `k` down for `hold`: its column reads low while its row is
/// driven low, as the contact joins them.
fn press(sim: &Sim, c: &DeviceConfig, k: char, hold: Duration) {
    let (r, col) = keypad::position(k).unwrap_or_else(|| panic!("no key {k}"));
    let (row, col) = (c.keypad.rows[r], c.keypad.cols[col]);
    let until = Instant::now() + hold;
    let mut low = false;
    while Instant::now() < until {
        let now_low = sim.driven_low(row);
        if now_low != low {
            sim.pull(col, now_low);
            low = now_low;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    sim.pull(col, false);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, dir, command, what] = &args[..] else {
        eprintln!("usage: gpio_sim_agent DEVICES_TOML SIM_DIR (swipe|f2f|keys) TRACK_OR_KEYS");
        std::process::exit(2);
    };
    let c = DeviceConfig::load(Path::new(config)).expect("the checkout's device settings");
    let dir = PathBuf::from(dir);
    let chip = Path::new("/dev").join(dir.file_name().expect("SIM_DIR ends in the chip's name"));
    let sim = Sim { dir, chip };
    let style = SwipeStyle::default();
    // A reader module's bit: 2 ms (a slow swipe) unless GPIO_SIM_BIT_MS
    // says more, for a machine whose emulation wakes the reader late.
    let bit = Duration::from_millis(
        std::env::var("GPIO_SIM_BIT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(2),
    );
    match command.as_str() {
        "swipe" | "f2f" => {
            sim.wait_taken(c.magstripe.present);
            let events = if command == "swipe" {
                strobe_swipe(what, &style, Duration::ZERO)
            } else {
                // A slow, steady swipe, 20 ms a bit: gpio-sim drops an
                // edge that comes while the previous one's interrupt is
                // still being handled, which takes milliseconds emulated.
                f2f_swipe(what, &style, Duration::from_millis(20), Duration::ZERO)
            }
            .expect("a track the stripe can hold");
            play(&sim, &c, &events, bit);
            println!("swiped {} line events", events.len());
        }
        "keys" => {
            sim.wait_taken(c.keypad.rows[0]);
            // Long enough for a scan to see it (each row is held twice the
            // kernel's debounce period).
            let hold = Duration::from_millis(c.keypad.debounce_ms * 8 * 4 + 200);
            for k in what.chars() {
                press(&sim, &c, k, hold);
                std::thread::sleep(hold / 2);
            }
            println!("pressed {what}");
        }
        other => panic!("no command {other}"),
    }
}
