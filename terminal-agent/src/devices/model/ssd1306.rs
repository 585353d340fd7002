//! The SSD1306 OLED controller at the byte level: it decodes the I2C command
//! and data stream (control byte, one- to three-byte commands, the three
//! addressing modes) into its 1 KiB display RAM, and shows that RAM as the
//! panel does, honouring segment remap and COM scan direction. A driver that
//! gets any of it wrong shows a wrong picture here, as on the real part.

use std::sync::{Arc, Mutex, MutexGuard};

use super::i2c::I2cDevice;
use crate::devices::oled::{FrameBuffer, HEIGHT, WIDTH};

const PAGES: usize = (HEIGHT / 8) as usize;
const COLS: usize = WIDTH as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrMode {
    Horizontal,
    Vertical,
    Page,
}

#[derive(Debug)]
pub struct Ssd1306Chip {
    ram: [[u8; COLS]; PAGES],
    mode: AddrMode,
    col: usize,
    page: usize,
    cols: (usize, usize),
    pages: (usize, usize),
    /// Bytes of a multi-byte command still to come, and the command so far.
    pending: Vec<u8>,
    pub display_on: bool,
    pub charge_pump: bool,
    pub inverted: bool,
    pub contrast: u8,
    segment_remap: bool,
    com_reversed: bool,
    pub data_bytes: u64,
    /// Commands it does not know (a driver bug if not zero).
    pub unknown_commands: u32,
}

impl Default for Ssd1306Chip {
    /// The chip's state after reset (datasheet §10): page mode, display off.
    fn default() -> Self {
        Ssd1306Chip {
            ram: [[0; COLS]; PAGES],
            mode: AddrMode::Page,
            col: 0,
            page: 0,
            cols: (0, COLS - 1),
            pages: (0, PAGES - 1),
            pending: Vec::new(),
            display_on: false,
            charge_pump: false,
            inverted: false,
            contrast: 0x7F,
            segment_remap: false,
            com_reversed: false,
            data_bytes: 0,
            unknown_commands: 0,
        }
    }
}

/// Total length of the command starting with `first`.
fn command_len(first: u8) -> usize {
    match first {
        0x20 | 0x81 | 0x8D | 0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB | 0xAD => 2,
        0x21 | 0x22 => 3,
        0x26 | 0x27 => 7,
        0x29 | 0x2A => 6,
        0xA3 => 3,
        _ => 1,
    }
}

impl Ssd1306Chip {
    fn command_byte(&mut self, b: u8) {
        self.pending.push(b);
        if self.pending.len() < command_len(self.pending[0]) {
            return;
        }
        let cmd = std::mem::take(&mut self.pending);
        match cmd[..] {
            [0x20, m] => {
                self.mode = match m & 3 {
                    0 => AddrMode::Horizontal,
                    1 => AddrMode::Vertical,
                    _ => AddrMode::Page,
                }
            }
            [0x21, a, b] => {
                self.cols = ((a & 0x7F) as usize, (b & 0x7F) as usize);
                self.col = self.cols.0;
            }
            [0x22, a, b] => {
                self.pages = ((a & 7) as usize, (b & 7) as usize);
                self.page = self.pages.0;
            }
            [0x81, c] => self.contrast = c,
            [0x8D, p] => self.charge_pump = p & 0x04 != 0,
            [0xAE] => self.display_on = false,
            [0xAF] => self.display_on = true,
            [0xA0] => self.segment_remap = false,
            [0xA1] => self.segment_remap = true,
            [0xC0] => self.com_reversed = false,
            [0xC8] => self.com_reversed = true,
            [0xA6] => self.inverted = false,
            [0xA7] => self.inverted = true,
            [c @ 0x00..=0x0F] => self.col = (self.col & 0xF0) | c as usize,
            [c @ 0x10..=0x17] => self.col = (self.col & 0x0F) | ((c as usize & 0x07) << 4),
            [c @ 0xB0..=0xB7] => self.page = (c & 7) as usize,
            // Start line, display-follows-RAM, scrolling off, and the panel's
            // timing and wiring settings: accepted, no effect on the picture here.
            [0x40..=0x7F] | [0xA4 | 0xA5 | 0x2E | 0x2F] => {}
            [0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB | 0xAD, _] => {}
            [0x26 | 0x27 | 0x29 | 0x2A | 0xA3, ..] => {}
            _ => self.unknown_commands += 1,
        }
    }

    fn data_byte(&mut self, b: u8) {
        self.data_bytes += 1;
        self.ram[self.page][self.col] = b;
        match self.mode {
            AddrMode::Page => self.col = (self.col + 1) % COLS,
            AddrMode::Horizontal => {
                if self.col >= self.cols.1 {
                    self.col = self.cols.0;
                    self.page = if self.page >= self.pages.1 {
                        self.pages.0
                    } else {
                        self.page + 1
                    };
                } else {
                    self.col += 1;
                }
            }
            AddrMode::Vertical => {
                if self.page >= self.pages.1 {
                    self.page = self.pages.0;
                    self.col = if self.col >= self.cols.1 {
                        self.cols.0
                    } else {
                        self.col + 1
                    };
                } else {
                    self.page += 1;
                }
            }
        }
    }

    /// What a person sees on a module mounted the usual way up: blank while
    /// the display is off or the charge pump is off.
    pub fn view(&self) -> FrameBuffer {
        let mut fb = FrameBuffer::default();
        if !self.display_on || !self.charge_pump {
            return fb;
        }
        for y in 0..HEIGHT as usize {
            for x in 0..COLS {
                // The panel's SEG0 is on the right and COM0 at the bottom;
                // remap and reversed scan turn the RAM the right way round.
                let col = if self.segment_remap { x } else { COLS - 1 - x };
                let row = if self.com_reversed {
                    y
                } else {
                    HEIGHT as usize - 1 - y
                };
                let on = self.ram[row / 8][col] & (1 << (row % 8)) != 0;
                fb.set(x as u32, y as u32, on != self.inverted);
            }
        }
        fb
    }
}

impl I2cDevice for Ssd1306Chip {
    fn write(&mut self, bytes: &[u8]) {
        // Each control byte says what follows: D/C# (bit 6) picks data or
        // command; with Co (bit 7) clear, everything after it is of that kind.
        let mut i = 0;
        while i < bytes.len() {
            let control = bytes[i];
            i += 1;
            let data = control & 0x40 != 0;
            let last = if control & 0x80 == 0 {
                bytes.len()
            } else {
                (i + 1).min(bytes.len())
            };
            for &b in &bytes[i..last] {
                if data {
                    self.data_byte(b);
                } else {
                    self.command_byte(b);
                }
            }
            i = last;
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        // Status read: bit 6 set while the display is off.
        buf.fill(if self.display_on { 0x00 } else { 0x40 });
    }
}

/// The chip shared between the bus and whoever looks at the panel.
#[derive(Clone, Default)]
pub struct SharedSsd1306(Arc<Mutex<Ssd1306Chip>>);

impl SharedSsd1306 {
    pub fn lock(&self) -> MutexGuard<'_, Ssd1306Chip> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl I2cDevice for SharedSsd1306 {
    fn write(&mut self, bytes: &[u8]) {
        self.lock().write(bytes)
    }

    fn read(&mut self, buf: &mut [u8]) {
        self.lock().read(buf)
    }
}
