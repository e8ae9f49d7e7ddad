//! The way back from text to pixels: a minimal terminal that reads ANSI output (ours through
//! ratatui's backend, or chafa's) into cells, and a rasteriser that turns block-character
//! cells into pixels. Tests use them to measure what a viewer would actually see (PSNR), and
//! `benches/compare.sh` to score chafa's output the same way as ours, both against
//! [`box_reference`]: the exact box-averaged picture, computed from its definition.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;
use ratatui::style::Color;

use super::cells::Glyphs;
use super::color::xterm256_rgb;
use crate::frame::Framebuffer;

const DEFAULT_FG: [u8; 3] = [229, 229, 229];
const DEFAULT_BG: [u8; 3] = [0, 0, 0];

fn rgb_of(color: Color, default: [u8; 3]) -> [u8; 3] {
    match color {
        Color::Rgb(r, g, b) => [r, g, b],
        Color::Indexed(i) => xterm256_rgb(i),
        Color::Black => xterm256_rgb(0),
        Color::Red => xterm256_rgb(1),
        Color::Green => xterm256_rgb(2),
        Color::Yellow => xterm256_rgb(3),
        Color::Blue => xterm256_rgb(4),
        Color::Magenta => xterm256_rgb(5),
        Color::Cyan => xterm256_rgb(6),
        Color::Gray => xterm256_rgb(7),
        Color::DarkGray => xterm256_rgb(8),
        Color::LightRed => xterm256_rgb(9),
        Color::LightGreen => xterm256_rgb(10),
        Color::LightYellow => xterm256_rgb(11),
        Color::LightBlue => xterm256_rgb(12),
        Color::LightMagenta => xterm256_rgb(13),
        Color::LightCyan => xterm256_rgb(14),
        Color::White => xterm256_rgb(15),
        Color::Reset => default,
    }
}

/// Whether the point `(u, v)` (0..1 across and down the cell) is drawn in the foreground
/// colour; `None` for a character that is not a block glyph.
pub fn covers(ch: char, u: f32, v: f32) -> Option<bool> {
    let left = u < 0.5;
    let top = v < 0.5;
    let quadrant = |bits: u8| {
        let bit = match (left, top) {
            (true, true) => 1,
            (false, true) => 2,
            (true, false) => 4,
            (false, false) => 8,
        };
        bits & bit != 0
    };
    Some(match ch {
        ' ' => false,
        '█' => true,
        '▀' => top,
        '▄' => !top,
        '▌' => left,
        '▐' => !left,
        '▘' => quadrant(1),
        '▝' => quadrant(2),
        '▖' => quadrant(4),
        '▗' => quadrant(8),
        '▚' => quadrant(1 | 8),
        '▞' => quadrant(2 | 4),
        '▛' => quadrant(1 | 2 | 4),
        '▜' => quadrant(1 | 2 | 8),
        '▙' => quadrant(1 | 4 | 8),
        '▟' => quadrant(2 | 4 | 8),
        '\u{1FB00}'..='\u{1FB3B}' => {
            let mut p = ch as u32 - 0x1FB00 + 1;
            if p >= 21 {
                p += 1;
            }
            if p >= 42 {
                p += 1;
            }
            let row = ((v * 3.0) as u32).min(2);
            let bit = row * 2 + u32::from(!left);
            p >> bit & 1 == 1
        }
        _ => return None,
    })
}

/// The pixels a viewer sees in `buf`, at `glyphs`' resolution (each cell sampled at its
/// sub-pixel centres). A character that is not a block glyph counts as half foreground.
pub fn cells_to_pixels(buf: &Buffer, glyphs: Glyphs) -> Framebuffer {
    let (gw, gh) = glyphs.cell_pixels();
    let (cols, rows) = (u32::from(buf.area.width), u32::from(buf.area.height));
    let mut fb = Framebuffer::new(cols * gw, rows * gh);
    for cy in 0..rows {
        for cx in 0..cols {
            let cell = &buf.content[(cy * cols + cx) as usize];
            let fg = rgb_of(cell.fg, DEFAULT_FG);
            let bg = rgb_of(cell.bg, DEFAULT_BG);
            let ch = cell.symbol().chars().next().unwrap_or(' ');
            for sy in 0..gh {
                for sx in 0..gw {
                    let u = (sx as f32 + 0.5) / gw as f32;
                    let v = (sy as f32 + 0.5) / gh as f32;
                    let c = match covers(ch, u, v) {
                        Some(true) => fg,
                        Some(false) => bg,
                        None => [
                            ((u16::from(fg[0]) + u16::from(bg[0])) / 2) as u8,
                            ((u16::from(fg[1]) + u16::from(bg[1])) / 2) as u8,
                            ((u16::from(fg[2]) + u16::from(bg[2])) / 2) as u8,
                        ],
                    };
                    fb.set_pixel(cx * gw + sx, cy * gh + sy, [c[0], c[1], c[2], 255]);
                }
            }
        }
    }
    fb
}

/// A minimal terminal: reads ANSI output into a `cols` x `rows` grid of cells. Understands
/// what ratatui's crossterm backend and chafa write: cursor moves (`H`, `A`-`D`), SGR colours
/// (basic, 256, 24-bit, reverse), repeat (`b`), erase (`K`, `J`), CR and LF; other escape
/// sequences (including DCS and APC strings) are skipped. Writes past the edge are dropped.
pub fn parse_ansi(bytes: &[u8], cols: u16, rows: u16) -> Buffer {
    let mut t = Term {
        buf: Buffer::empty(CellRect::new(0, 0, cols, rows)),
        x: 0,
        y: 0,
        fg: Color::Reset,
        bg: Color::Reset,
        reverse: false,
        last: ' ',
    };
    let text = String::from_utf8_lossy(bytes);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\x1b' => i = t.escape(&chars, i),
            '\r' => t.x = 0,
            '\n' => {
                t.x = 0;
                t.y += 1;
            }
            c if c < ' ' => {}
            c => t.put(c),
        }
    }
    t.buf
}

struct Term {
    buf: Buffer,
    x: u16,
    y: u16,
    fg: Color,
    bg: Color,
    reverse: bool,
    last: char,
}

impl Term {
    fn put(&mut self, c: char) {
        let (fg, bg) = if self.reverse {
            (self.bg, self.fg)
        } else {
            (self.fg, self.bg)
        };
        if let Some(cell) = self.buf.cell_mut((self.x, self.y)) {
            cell.set_char(c).set_fg(fg).set_bg(bg);
        }
        self.x = self.x.saturating_add(1);
        self.last = c;
    }

    /// Handle the escape sequence starting after ESC at `i`; returns the index after it.
    fn escape(&mut self, chars: &[char], i: usize) -> usize {
        match chars.get(i) {
            Some('[') => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && !('\x40'..='\x7e').contains(&chars[end]) {
                    end += 1;
                }
                if end >= chars.len() {
                    return end;
                }
                let params: String = chars[start..end].iter().collect();
                self.csi(&params, chars[end]);
                end + 1
            }
            Some('P' | '_' | ']' | '^') => {
                // A string up to ST (ESC \) or BEL.
                let mut j = i + 1;
                while j < chars.len() {
                    if chars[j] == '\x07' {
                        return j + 1;
                    }
                    if chars[j] == '\x1b' && chars.get(j + 1) == Some(&'\\') {
                        return j + 2;
                    }
                    j += 1;
                }
                j
            }
            Some(_) => i + 1,
            None => i,
        }
    }

    fn csi(&mut self, params: &str, fin: char) {
        if params.starts_with(['?', '>', '=']) {
            return;
        }
        let n: Vec<u16> = params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        let first = |d: u16| n.first().copied().filter(|&v| v > 0).unwrap_or(d);
        match fin {
            'm' => self.sgr(&n),
            'H' | 'f' => {
                self.y = first(1) - 1;
                self.x = n.get(1).copied().filter(|&v| v > 0).unwrap_or(1) - 1;
            }
            'A' => self.y = self.y.saturating_sub(first(1)),
            'B' => self.y = self.y.saturating_add(first(1)),
            'C' => self.x = self.x.saturating_add(first(1)),
            'D' => self.x = self.x.saturating_sub(first(1)),
            'G' => self.x = first(1) - 1,
            'b' => {
                for _ in 0..first(1) {
                    self.put(self.last);
                }
            }
            'K' => {
                let (x, y) = (self.x, self.y);
                for cx in x..self.buf.area.width {
                    if let Some(cell) = self.buf.cell_mut((cx, y)) {
                        cell.set_char(' ').set_fg(self.fg).set_bg(self.bg);
                    }
                }
            }
            'J' if n.first() == Some(&2) => {
                for cell in &mut self.buf.content {
                    cell.set_char(' ').set_fg(self.fg).set_bg(self.bg);
                }
            }
            _ => {}
        }
    }

    fn sgr(&mut self, n: &[u16]) {
        if n.is_empty() {
            self.reset();
            return;
        }
        let mut i = 0;
        while i < n.len() {
            match n[i] {
                0 => self.reset(),
                7 => self.reverse = true,
                27 => self.reverse = false,
                39 => self.fg = Color::Reset,
                49 => self.bg = Color::Reset,
                v @ (30..=37 | 90..=97) => {
                    let base = if v >= 90 { v - 90 + 8 } else { v - 30 };
                    self.fg = Color::Indexed(base as u8);
                }
                v @ (40..=47 | 100..=107) => {
                    let base = if v >= 100 { v - 100 + 8 } else { v - 40 };
                    self.bg = Color::Indexed(base as u8);
                }
                v @ (38 | 48) => {
                    let color = match n.get(i + 1) {
                        Some(2) if i + 4 < n.len() => {
                            let c = Color::Rgb(n[i + 2] as u8, n[i + 3] as u8, n[i + 4] as u8);
                            i += 4;
                            Some(c)
                        }
                        Some(5) if i + 2 < n.len() => {
                            let c = Color::Indexed(n[i + 2] as u8);
                            i += 2;
                            Some(c)
                        }
                        _ => None,
                    };
                    if let Some(c) = color {
                        if v == 38 {
                            self.fg = c;
                        } else {
                            self.bg = c;
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn reset(&mut self) {
        self.fg = Color::Reset;
        self.bg = Color::Reset;
        self.reverse = false;
    }
}

/// `src` box-averaged to `width` x `height` straight from the definition, in f64: each target
/// pixel the mean of the source pixels under its box, partial pixels weighted by the area
/// covered. Slow, and deliberately independent of [`scale`](super::scale): the reference that
/// our renderer and chafa are both scored against.
pub fn box_reference(src: &Framebuffer, width: u32, height: u32) -> Framebuffer {
    let mut out = Framebuffer::new(width, height);
    if src.width() == 0 || src.height() == 0 || width == 0 || height == 0 {
        return out;
    }
    let (sx, sy) = (
        f64::from(src.width()) / f64::from(width),
        f64::from(src.height()) / f64::from(height),
    );
    let cover = |a: f64, b: f64, s: u32| b.min(f64::from(s) + 1.0) - a.max(f64::from(s));
    for ty in 0..height {
        let (y0, y1) = (f64::from(ty) * sy, f64::from(ty + 1) * sy);
        for tx in 0..width {
            let (x0, x1) = (f64::from(tx) * sx, f64::from(tx + 1) * sx);
            let mut sum = [0f64; 3];
            for y in y0.floor() as u32..(y1.ceil() as u32).min(src.height()) {
                for x in x0.floor() as u32..(x1.ceil() as u32).min(src.width()) {
                    let weight = cover(x0, x1, x) * cover(y0, y1, y);
                    let p = src.pixel(x, y);
                    for c in 0..3 {
                        sum[c] += weight * f64::from(p[c]);
                    }
                }
            }
            let [r, g, b] = sum.map(|v| (v / (sx * sy)).round().clamp(0.0, 255.0) as u8);
            out.set_pixel(tx, ty, [r, g, b, 255]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::cells::{ColorDepth, TextView, sextant_char, write_ansi};

    #[test]
    fn sextant_coverage_matches_the_encoder() {
        for p in 0..64u8 {
            let ch = sextant_char(p);
            for i in 0..6u32 {
                let u = if i % 2 == 0 { 0.25 } else { 0.75 };
                let v = (i / 2) as f32 / 3.0 + 1.0 / 6.0;
                assert_eq!(covers(ch, u, v), Some(p >> i & 1 == 1), "{p} {i}");
            }
        }
    }

    #[test]
    fn our_ansi_text_reads_back_to_our_cells() {
        let src = crate::render::testimage::desktop(160, 96);
        for glyphs in [Glyphs::HalfBlock, Glyphs::Quadrant, Glyphs::Sextant] {
            for depth in [ColorDepth::TrueColor, ColorDepth::Palette256] {
                let mut view = TextView::new(glyphs, depth, 40, 16);
                view.update(&src);
                let mut out = Vec::new();
                write_ansi(view.cells(), &mut out);
                let back = parse_ansi(&out, 40, 16);
                assert_eq!(
                    cells_to_pixels(&back, glyphs),
                    cells_to_pixels(view.cells(), glyphs)
                );
            }
        }
    }

    #[test]
    fn reads_cursor_moves_repeats_and_reverse() {
        let buf = parse_ansi(
            b"\x1b[2;3H\x1b[38;2;1;2;3;48;5;196mA\x1b[2b\x1b[7mB\x1b[0m\x1bP0;1q#0\x1b\\C",
            8,
            3,
        );
        assert_eq!(buf[(2, 1)].symbol(), "A");
        assert_eq!(buf[(4, 1)].symbol(), "A");
        assert_eq!(buf[(2, 1)].fg, Color::Rgb(1, 2, 3));
        assert_eq!(buf[(2, 1)].bg, Color::Indexed(196));
        assert_eq!(buf[(5, 1)].fg, Color::Indexed(196));
        assert_eq!(buf[(6, 1)].symbol(), "C");
        assert_eq!(buf[(6, 1)].fg, Color::Reset);
    }
}
