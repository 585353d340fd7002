//! The OLED driver against the SSD1306 chip model: every screen, in both
//! languages, comes out of the chip exactly as drawn, and matches its golden
//! image in `terminal-agent/golden/oled/`. After a deliberate change to a
//! screen, regenerate the images with
//! `TALLYBOX_BLESS=1 cargo test -p tallybox-terminal oled` and look at them.

use std::path::PathBuf;

use super::*;
use crate::devices::model::i2c::I2cBus;
use crate::devices::model::ssd1306::SharedSsd1306;
use crate::session::screens::tests::all;
use crate::session::Lang;

/// Golden images are drawn 4× so a person can read them.
const SCALE: u32 = 4;

fn panel() -> (Oled<I2cBus>, SharedSsd1306, I2cBus) {
    let bus = I2cBus::default();
    let chip = SharedSsd1306::default();
    bus.attach(ADDRESS, Box::new(chip.clone()));
    let oled = Oled::new(bus.clone(), ADDRESS).unwrap();
    (oled, chip, bus)
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/oled")
}

fn to_png(fb: &FrameBuffer) -> Vec<u8> {
    let (w, h) = (WIDTH * SCALE, HEIGHT * SCALE);
    let mut pixels = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            pixels.push(if fb.pixel(x / SCALE, y / SCALE) {
                0xFF
            } else {
                0x00
            });
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Grayscale);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

fn from_png(bytes: &[u8]) -> FrameBuffer {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (WIDTH * SCALE, HEIGHT * SCALE));
    let mut fb = FrameBuffer::default();
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let i = ((y * SCALE) * info.width + x * SCALE) as usize;
            fb.set(x, y, buf[i] > 0x7F);
        }
    }
    fb
}

#[test]
fn every_screen_reaches_the_panel_as_drawn_and_matches_its_golden_image() {
    let bless = std::env::var_os("TALLYBOX_BLESS").is_some();
    let (mut oled, chip, _) = panel();
    let mut mismatches = Vec::new();
    for (lang, tag) in [(Lang::En, "en"), (Lang::Zh, "zh")] {
        for (name, screen) in all(lang) {
            oled.try_show(&screen).unwrap();
            let seen = chip.lock().view();
            assert_eq!(
                seen,
                FrameBuffer::render(&screen),
                "{tag}-{name}: the chip shows something else"
            );
            let path = golden_dir().join(format!("{tag}-{name}.png"));
            if bless {
                std::fs::create_dir_all(golden_dir()).unwrap();
                std::fs::write(&path, to_png(&seen)).unwrap();
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) if from_png(&bytes) == seen => {}
                Ok(_) => mismatches.push(format!("{tag}-{name} differs from {}", path.display())),
                Err(e) => mismatches.push(format!("{tag}-{name}: {} ({e})", path.display())),
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{mismatches:#?}\nif the change is intended: TALLYBOX_BLESS=1 cargo test -p tallybox-terminal oled"
    );
    assert_eq!(chip.lock().unknown_commands, 0);
}

#[test]
fn chinese_text_lights_pixels_where_english_would_not_fit() {
    let zh = FrameBuffer::render(&Screen {
        lines: vec!["余额不足".into()],
        ..Screen::default()
    });
    // Four 12×12 glyphs: some ink in each 12-pixel cell of the first row.
    for cell in 0..4 {
        let ink = (cell * 12..cell * 12 + 12)
            .flat_map(|x| (0..14).map(move |y| (x, y)))
            .filter(|&(x, y)| zh.pixel(x, y))
            .count();
        assert!(ink > 10, "glyph {cell} missing:\n{}", zh.to_ascii());
    }
}

#[test]
fn the_e_receipt_qr_code_on_the_panel_scans_back_to_the_link() {
    let link = "http://tallybox.local/r/ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let (mut oled, chip, _) = panel();
    let s = crate::session::Screens::default();
    oled.try_show(&s.printer_problem(crate::devices::PrinterProblem::PaperOut, Some(link)))
        .unwrap();
    let view = chip.lock().view();
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(WIDTH as usize * 4, HEIGHT as usize * 4, |x, y| {
            if view.pixel(x as u32 / 4, y as u32 / 4) {
                255
            } else {
                0
            }
        });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the screen");
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, link);
}

#[test]
fn a_missing_panel_is_a_clear_error() {
    let bus = I2cBus::default();
    let e = Oled::new(bus, ADDRESS).err().unwrap();
    assert!(e.to_string().contains("0x3c"), "{e}");
}

#[test]
fn a_full_frame_fits_30_frames_a_second_on_a_400_khz_bus() {
    let (mut oled, _, bus) = panel();
    let before = bus.clocks();
    // Every pixel changes: the worst case, a whole 1 KiB frame.
    oled.try_show(&Screen {
        lines: vec!["#".repeat(21); 6],
        ..Screen::default()
    })
    .unwrap();
    let clocks = bus.clocks() - before;
    let seconds = clocks as f64 / 400_000.0;
    assert!(
        seconds < 1.0 / 30.0,
        "{clocks} clocks = {:.1} ms a frame",
        seconds * 1e3
    );
}
