//! Renders a ratatui buffer to a PNG, cell by cell, with DejaVu Sans Mono: how the screenshots
//! in `screenshots/` are made from the console's real `draw`.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";
pub const FONT_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf";

/// What `Color::Reset` means in the picture: a dark terminal's defaults.
const DEFAULT_FG: [u8; 3] = [0xd8, 0xd8, 0xd8];
const DEFAULT_BG: [u8; 3] = [0x12, 0x14, 0x1a];

pub struct Renderer {
    regular: FontVec,
    bold: FontVec,
    scale: PxScale,
    cell_w: u32,
    cell_h: u32,
    ascent: f32,
}

fn xterm(index: u8) -> [u8; 3] {
    const BASE: [[u8; 3]; 16] = [
        [0, 0, 0],
        [205, 0, 0],
        [0, 205, 0],
        [205, 205, 0],
        [0, 0, 238],
        [205, 0, 205],
        [0, 205, 205],
        [229, 229, 229],
        [127, 127, 127],
        [255, 0, 0],
        [0, 255, 0],
        [255, 255, 0],
        [92, 92, 255],
        [255, 0, 255],
        [0, 255, 255],
        [255, 255, 255],
    ];
    match index {
        0..=15 => BASE[usize::from(index)],
        16..=231 => {
            let i = index - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            [level(i / 36), level((i / 6) % 6), level(i % 6)]
        }
        _ => {
            let v = 8 + (index - 232) * 10;
            [v, v, v]
        }
    }
}

fn rgb(color: Color, default: [u8; 3]) -> [u8; 3] {
    match color {
        Color::Reset => default,
        Color::Rgb(r, g, b) => [r, g, b],
        Color::Indexed(i) => xterm(i),
        Color::Black => xterm(0),
        Color::Red => xterm(1),
        Color::Green => xterm(2),
        Color::Yellow => xterm(3),
        Color::Blue => xterm(4),
        Color::Magenta => xterm(5),
        Color::Cyan => xterm(6),
        Color::Gray => xterm(7),
        Color::DarkGray => xterm(8),
        Color::LightRed => xterm(9),
        Color::LightGreen => xterm(10),
        Color::LightYellow => xterm(11),
        Color::LightBlue => xterm(12),
        Color::LightMagenta => xterm(13),
        Color::LightCyan => xterm(14),
        Color::White => xterm(15),
    }
}

impl Renderer {
    /// `None` when the font is not installed (Debian: fonts-dejavu-core).
    pub fn new(px: f32) -> Option<Self> {
        let regular = FontVec::try_from_vec(std::fs::read(FONT).ok()?).ok()?;
        let bold = std::fs::read(FONT_BOLD)
            .ok()
            .and_then(|b| FontVec::try_from_vec(b).ok());
        let bold = match bold {
            Some(b) => b,
            None => FontVec::try_from_vec(std::fs::read(FONT).ok()?).ok()?,
        };
        let scale = PxScale::from(px);
        let scaled = regular.as_scaled(scale);
        let cell_w = scaled.h_advance(regular.glyph_id('M')).ceil() as u32;
        let cell_h = (scaled.ascent() - scaled.descent() + scaled.line_gap()).ceil() as u32;
        let ascent = scaled.ascent();
        Some(Self {
            regular,
            bold,
            scale,
            cell_w,
            cell_h,
            ascent,
        })
    }

    pub fn render(&self, buffer: &Buffer) -> RgbImage {
        let area = buffer.area;
        let mut img = RgbImage::new(
            u32::from(area.width) * self.cell_w,
            u32::from(area.height) * self.cell_h,
        );
        for y in 0..area.height {
            for x in 0..area.width {
                let cell = &buffer[(area.x + x, area.y + y)];
                let mut fg = rgb(cell.fg, DEFAULT_FG);
                let mut bg = rgb(cell.bg, DEFAULT_BG);
                if cell.modifier.contains(Modifier::REVERSED) {
                    std::mem::swap(&mut fg, &mut bg);
                }
                if cell.modifier.contains(Modifier::DIM) {
                    fg = [0, 1, 2].map(|i| ((u16::from(fg[i]) + u16::from(bg[i])) / 2) as u8);
                }
                let (px, py) = (u32::from(x) * self.cell_w, u32::from(y) * self.cell_h);
                for dy in 0..self.cell_h {
                    for dx in 0..self.cell_w {
                        img.put_pixel(px + dx, py + dy, Rgb(bg));
                    }
                }
                let Some(ch) = cell.symbol().chars().next().filter(|c| !c.is_whitespace()) else {
                    continue;
                };
                let font = if cell.modifier.contains(Modifier::BOLD) {
                    &self.bold
                } else {
                    &self.regular
                };
                let glyph = font
                    .glyph_id(ch)
                    .with_scale_and_position(self.scale, point(px as f32, py as f32 + self.ascent));
                if let Some(outline) = font.outline_glyph(glyph) {
                    let bounds = outline.px_bounds();
                    outline.draw(|gx, gy, coverage| {
                        let (ix, iy) = (
                            bounds.min.x as i64 + i64::from(gx),
                            bounds.min.y as i64 + i64::from(gy),
                        );
                        if ix < 0
                            || iy < 0
                            || ix >= i64::from(img.width())
                            || iy >= i64::from(img.height())
                        {
                            return;
                        }
                        let p = img.get_pixel_mut(ix as u32, iy as u32);
                        let a = coverage.clamp(0.0, 1.0);
                        for (channel, &ink) in p.0.iter_mut().zip(&fg) {
                            *channel = (f32::from(ink) * a + f32::from(*channel) * (1.0 - a))
                                .round() as u8;
                        }
                    });
                }
                if cell.modifier.contains(Modifier::UNDERLINED) {
                    for dx in 0..self.cell_w {
                        img.put_pixel(px + dx, py + self.cell_h - 2, Rgb(fg));
                    }
                }
            }
        }
        img
    }
}
