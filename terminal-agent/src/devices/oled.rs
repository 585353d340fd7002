//! A 128×64 monochrome frame buffer, the same geometry as the SSD1306, with the
//! screens' text drawn by `embedded-graphics`. The simulated OLED keeps one; the
//! real driver will push the same pixels over I2C.

use embedded_graphics::mono_font::ascii::FONT_6X10;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};

use crate::session::Screen;

pub const WIDTH: u32 = 128;
pub const HEIGHT: u32 = 64;

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

impl FrameBuffer {
    pub fn pixel(&self, x: u32, y: u32) -> bool {
        let i = (y * WIDTH + x) as usize;
        self.bits[i / 8] & (1 << (i % 8)) != 0
    }

    pub fn lit_pixels(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// Draws `screen` onto a cleared buffer.
    pub fn render(screen: &Screen) -> FrameBuffer {
        let mut fb = FrameBuffer::default();
        let style = MonoTextStyle::new(&FONT_6X10, BinaryColor::On);
        for (row, line) in screen.lines.iter().enumerate() {
            let y = row as i32 * 10 + 2;
            // Drawing into memory cannot fail: the error type is Infallible.
            let _ = Text::with_baseline(line, Point::new(0, y), style, Baseline::Top).draw(&mut fb);
        }
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
            if p.x < 0 || p.y < 0 || p.x >= WIDTH as i32 || p.y >= HEIGHT as i32 {
                continue;
            }
            let i = (p.y as u32 * WIDTH + p.x as u32) as usize;
            match color {
                BinaryColor::On => self.bits[i / 8] |= 1 << (i % 8),
                BinaryColor::Off => self.bits[i / 8] &= !(1 << (i % 8)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::screens;

    #[test]
    fn text_lights_pixels_inside_the_panel() {
        let blank = FrameBuffer::render(&Screen::default());
        assert_eq!(blank.lit_pixels(), 0);
        let fb = FrameBuffer::render(&screens::idle("Corner Shop", true, None));
        assert!(fb.lit_pixels() > 100);
        // Different screens give different pictures.
        assert!(fb != FrameBuffer::render(&screens::menu()));
        assert_eq!(fb.to_ascii().lines().count(), HEIGHT as usize);
    }
}
