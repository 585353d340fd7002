//! The OLED: a 128×64 SSD1306 on I2C. [`draw`] lays a [`Screen`] out on any
//! embedded-graphics target: English lines in a 6×10 font, lines with Chinese
//! in the 12 px WenQuanYi bitmap font (all of GB2312, so a Chinese store name
//! renders too), and a QR code on the right when the screen carries one.
//! [`Oled`] pushes that through the `ssd1306` crate to the panel; the
//! [`FrameBuffer`] is the same picture in memory.

use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use ssd1306::mode::BufferedGraphicsMode;
use ssd1306::prelude::*;
use ssd1306::{I2CDisplayInterface, Ssd1306};
use u8g2_fonts::types::{FontColor, VerticalPosition};
use u8g2_fonts::{fonts, FontRenderer};

use super::Display;
use crate::devices::display::{Screen, StatusBar};

pub const WIDTH: u32 = 128;
pub const HEIGHT: u32 = 64;
/// The SSD1306's I2C address with its SA0 pin low (most modules).
pub const ADDRESS: u8 = 0x3C;

static CJK: FontRenderer =
    FontRenderer::new::<fonts::u8g2_font_wqy12_t_gb2312>().with_ignore_unknown_chars(true);

/// Lays `screen` out on `target` (which is not cleared first).
pub fn draw<D: DrawTarget<Color = BinaryColor>>(screen: &Screen, target: &mut D) -> Result<(), D::Error> {
    let ascii = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
    let mut y = 1;
    for line in &screen.lines {
        if line.is_ascii() {
            Text::with_baseline(line, Point::new(0, y), ascii, Baseline::Top).draw(target)?;
            y += 10;
        } else {
            let color = FontColor::Transparent(BinaryColor::On);
            match CJK.render(
                line.as_str(),
                Point::new(0, y),
                VerticalPosition::Top,
                color,
                target,
            ) {
                Ok(_) => {}
                Err(u8g2_fonts::Error::DisplayError(e)) => return Err(e),
                // Unknown glyphs are skipped; nothing else can fail on a valid font.
                Err(_) => {}
            }
            y += 12;
        }
    }
    if let Some(data) = &screen.qr {
        draw_qr(data, target)?;
    }
    if let Some(status) = &screen.status {
        draw_status(status, target)?;
    }
    Ok(())
}

/// The bottom-right corner (below the idle screen's four lines): link bars,
/// printer, paper roll (when low), clock.
fn draw_status<D: DrawTarget<Color = BinaryColor>>(s: &StatusBar, target: &mut D) -> Result<(), D::Error> {
    let target = &mut target.translated(Point::new(0, HEIGHT as i32 - 11));
    let on = PrimitiveStyle::with_fill(BinaryColor::On);
    let line = PrimitiveStyle::with_stroke(BinaryColor::On, 1);
    let clock_x = WIDTH as i32 - 6 * s.clock.chars().count() as i32;
    let style = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
    Text::with_baseline(&s.clock, Point::new(clock_x, 1), style, Baseline::Top).draw(target)?;
    let mut x = clock_x - 11;
    // Link to the hub: three rising bars, or a cross when there is none.
    if s.online {
        for (i, h) in [3, 5, 7].into_iter().enumerate() {
            Rectangle::new(Point::new(x + i as i32 * 3, 9 - h), Size::new(2, h as u32))
                .into_styled(on)
                .draw(target)?;
        }
    } else {
        Line::new(Point::new(x, 2), Point::new(x + 7, 9))
            .into_styled(line)
            .draw(target)?;
        Line::new(Point::new(x, 9), Point::new(x + 7, 2))
            .into_styled(line)
            .draw(target)?;
    }
    x -= 12;
    // Printer: paper on top of a body; struck through when it cannot print.
    Rectangle::new(Point::new(x + 2, 1), Size::new(5, 3))
        .into_styled(line)
        .draw(target)?;
    Rectangle::new(Point::new(x, 4), Size::new(9, 5))
        .into_styled(on)
        .draw(target)?;
    if !s.printer_ok {
        Line::new(Point::new(x - 1, 10), Point::new(x + 9, 0))
            .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 2))
            .draw(target)?;
    }
    if s.paper_low {
        x -= 10;
        // A nearly empty roll: a ring with a thin edge of paper.
        Circle::new(Point::new(x, 2), 7).into_styled(line).draw(target)?;
        Pixel(Point::new(x + 3, 5), BinaryColor::On).draw(target)?;
    }
    Ok(())
}

/// A QR code in the right half, with its quiet zone, as large as fits: two
/// pixels a module for links up to version 3 (29 modules).
fn draw_qr<D: DrawTarget<Color = BinaryColor>>(data: &str, target: &mut D) -> Result<(), D::Error> {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::L) else {
        return Ok(()); // too long for a QR code: the text still says what to do
    };
    let n = code.width() as i32;
    let scale = if (n + 2) * 2 <= HEIGHT as i32 { 2 } else { 1 };
    let side = (n + 2) * scale;
    let left = WIDTH as i32 - side;
    let top = (HEIGHT as i32 - side) / 2;
    // Dark modules on a lit square, quiet zone included: the printed look,
    // which every phone scanner reads (not all read light-on-dark codes).
    Rectangle::new(Point::new(left, top), Size::new(side as u32, side as u32))
        .into_styled(PrimitiveStyle::with_fill(BinaryColor::On))
        .draw(target)?;
    let colors = code.to_colors();
    let dark = colors
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == qrcode::Color::Dark);
    let pixels = dark.flat_map(|(i, _)| {
        let (mx, my) = (i as i32 % n, i as i32 / n);
        (0..scale * scale).map(move |k| {
            let p = Point::new(
                left + (mx + 1) * scale + k % scale,
                top + (my + 1) * scale + k / scale,
            );
            Pixel(p, BinaryColor::Off)
        })
    });
    target.draw_iter(pixels)
}

/// One bit a pixel, row-major.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameBuffer {
    bits: [u8; (WIDTH * HEIGHT / 8) as usize],
}

impl Default for FrameBuffer {
    fn default() -> Self {
        FrameBuffer {
            bits: [0; (WIDTH * HEIGHT / 8) as usize],
        }
    }
}

impl std::fmt::Debug for FrameBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameBuffer({} lit)\n{}", self.lit_pixels(), self.to_ascii())
    }
}

impl FrameBuffer {
    pub fn pixel(&self, x: u32, y: u32) -> bool {
        let i = (y * WIDTH + x) as usize;
        self.bits[i / 8] & (1 << (i % 8)) != 0
    }

    pub fn set(&mut self, x: u32, y: u32, on: bool) {
        if x >= WIDTH || y >= HEIGHT {
            return;
        }
        let i = (y * WIDTH + x) as usize;
        if on {
            self.bits[i / 8] |= 1 << (i % 8);
        } else {
            self.bits[i / 8] &= !(1 << (i % 8));
        }
    }

    pub fn lit_pixels(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// Draws `screen` onto a cleared buffer.
    pub fn render(screen: &Screen) -> FrameBuffer {
        let mut fb = FrameBuffer::default();
        // Drawing into memory cannot fail: the error type is Infallible.
        let _ = draw(screen, &mut fb);
        fb
    }

    /// The buffer as text art, `#` for a lit pixel: handy in a failing test.
    pub fn to_ascii(&self) -> String {
        let mut out = String::with_capacity(((WIDTH + 1) * HEIGHT) as usize);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                out.push(if self.pixel(x, y) { '#' } else { '.' });
            }
            out.push('\n');
        }
        out
    }
}

impl OriginDimensions for FrameBuffer {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for FrameBuffer {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, color) in pixels {
            if p.x >= 0 && p.y >= 0 {
                self.set(p.x as u32, p.y as u32, color.is_on());
            }
        }
        Ok(())
    }
}

/// The real OLED, through the `ssd1306` crate on any embedded-hal I2C bus.
pub struct Oled<I2C> {
    panel: Ssd1306<I2CInterface<I2C>, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>,
    /// The last bus error, logged once until the panel answers again.
    failing: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the OLED does not answer on I2C address {address:#04x}: check its 4 wires (VCC 3.3 V, GND, SDA pin 3, SCL pin 5) and that I2C is enabled")]
pub struct OledError {
    pub address: u8,
}

impl<I2C: embedded_hal::i2c::I2c> Oled<I2C> {
    /// Initialises the panel at `address`; fails when nothing answers there.
    pub fn new(i2c: I2C, address: u8) -> Result<Oled<I2C>, OledError> {
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let mut panel = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
            .into_buffered_graphics_mode();
        panel.init().map_err(|_| OledError { address })?;
        Ok(Oled {
            panel,
            failing: false,
        })
    }

    /// Draws `screen` and sends the changed part of the frame.
    pub fn try_show(&mut self, screen: &Screen) -> Result<(), display_interface::DisplayError> {
        self.panel.clear_buffer();
        draw(screen, &mut self.panel)?;
        self.panel.flush()
    }
}

impl<I2C: embedded_hal::i2c::I2c + Send> Display for Oled<I2C> {
    fn show(&mut self, screen: &Screen) {
        match self.try_show(screen) {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::error!(error = ?e, "OLED not updated: check its I2C wiring");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
