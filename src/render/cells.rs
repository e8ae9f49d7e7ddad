//! Text cells: the picture drawn with block characters in a ratatui [`Buffer`], two colours a
//! cell. Half blocks (`▀`, fg = top pixel, bg = bottom) give 1x2 pixels a cell; quadrants 2x2
//! and sextants (Unicode 13, U+1FB00) 2x3, with a cheap light/dark split per cell: the pixels
//! are split at the middle of the channel that varies most, each side gets its mean colour, and
//! the split is the glyph's pattern.
//!
//! A [`TextView`] keeps its scaled picture and its cells between frames and touches only the
//! cells over damaged pixels; ratatui's own diff then sends only the cells that changed.

use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect as CellRect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

use super::color::xterm256_nearest;
use super::scale::{scale_damaged, scale_into};
use crate::frame::{Framebuffer, Rect};

/// Which block characters a cell is drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Glyphs {
    /// `▀` in every cell: 1x2 pixels, works in any font.
    HalfBlock,
    /// `▘▝▀▖▌▞▛▗▚▐▜▄▙▟█`: 2x2 pixels, in nearly every font (the fallback for sextants).
    Quadrant,
    /// U+1FB00..U+1FB3B plus `▌▐█`: 2x3 pixels; needs a font (or terminal) with Unicode 13's
    /// legacy computing block.
    Sextant,
}

impl Glyphs {
    /// Pixels a cell stands for, `(width, height)`.
    pub fn cell_pixels(self) -> (u32, u32) {
        match self {
            Glyphs::HalfBlock => (1, 2),
            Glyphs::Quadrant => (2, 2),
            Glyphs::Sextant => (2, 3),
        }
    }
}

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColorDepth {
    /// 24-bit colour (`COLORTERM=truecolor`).
    TrueColor,
    /// xterm's 256 colours, nearest match.
    Palette256,
}

impl ColorDepth {
    fn color(self, rgb: [u8; 3]) -> Color {
        match self {
            ColorDepth::TrueColor => Color::Rgb(rgb[0], rgb[1], rgb[2]),
            ColorDepth::Palette256 => Color::Indexed(xterm256_nearest(rgb)),
        }
    }
}

/// The quadrant characters by pattern: bit 0 top-left, 1 top-right, 2 bottom-left,
/// 3 bottom-right.
const QUADRANTS: [char; 16] = [
    ' ', '▘', '▝', '▀', '▖', '▌', '▞', '▛', '▗', '▚', '▐', '▜', '▄', '▙', '▟', '█',
];

/// The sextant character for a pattern: bit 0 top-left, 1 top-right, 2 middle-left,
/// 3 middle-right, 4 bottom-left, 5 bottom-right (Unicode's "sextant-1" to "sextant-6").
pub const fn sextant_char(pattern: u8) -> char {
    match pattern & 63 {
        0 => ' ',
        21 => '▌',
        42 => '▐',
        63 => '█',
        p => {
            // The block skips the three patterns that exist elsewhere (left half, right half).
            let skip = (p > 21) as u32 + (p > 42) as u32;
            match char::from_u32(0x1FB00 + p as u32 - 1 - skip) {
                Some(c) => c,
                None => ' ',
            }
        }
    }
}

/// The glyph for a pattern of the given set (half blocks: bit 0 top, bit 1 bottom).
pub fn glyph_char(glyphs: Glyphs, pattern: u8) -> char {
    match glyphs {
        Glyphs::HalfBlock => [' ', '▀', '▄', '█'][(pattern & 3) as usize],
        Glyphs::Quadrant => QUADRANTS[(pattern & 15) as usize],
        Glyphs::Sextant => sextant_char(pattern),
    }
}

/// Draw the cells of `cells` (in picture cells) from `scaled`, a picture of exactly
/// `cells-wide * glyph width` pixels and so on, into `buf`, whose area's top-left is the
/// picture's top-left cell. Cells outside `buf` are skipped.
pub fn draw_cells(
    scaled: &Framebuffer,
    glyphs: Glyphs,
    depth: ColorDepth,
    cells: CellRect,
    buf: &mut Buffer,
) {
    let (gw, gh) = glyphs.cell_pixels();
    let cols = (scaled.width() / gw).min(u32::from(buf.area.width)) as u16;
    let rows = (scaled.height() / gh).min(u32::from(buf.area.height)) as u16;
    let cells = cells.intersection(CellRect::new(0, 0, cols, rows));
    let stride = scaled.width() as usize * 4;
    let px = scaled.as_rgba();
    let buf_width = buf.area.width as usize;
    for cy in cells.top()..cells.bottom() {
        let line = cy as usize * buf_width;
        for cx in cells.left()..cells.right() {
            let cell = &mut buf.content[line + cx as usize];
            let x = cx as usize * gw as usize;
            let y = cy as usize * gh as usize;
            match glyphs {
                Glyphs::HalfBlock => {
                    let t = (y * stride) + x * 4;
                    let b = t + stride;
                    let top = [px[t], px[t + 1], px[t + 2]];
                    let bottom = [px[b], px[b + 1], px[b + 2]];
                    set(cell, '▀', depth.color(top), depth.color(bottom));
                }
                Glyphs::Quadrant | Glyphs::Sextant => {
                    let mut block = [[0u8; 3]; 6];
                    let n = (gw * gh) as usize;
                    for (i, p) in block.iter_mut().take(n).enumerate() {
                        let at = (y + i / 2) * stride + (x + i % 2) * 4;
                        *p = [px[at], px[at + 1], px[at + 2]];
                    }
                    let (pattern, fg, bg) = split(&block[..n]);
                    let ch = glyph_char(glyphs, pattern);
                    set(cell, ch, depth.color(fg), depth.color(bg));
                }
            }
        }
    }
}

fn set(cell: &mut Cell, ch: char, fg: Color, bg: Color) {
    cell.set_char(ch).set_fg(fg).set_bg(bg);
}

/// `(x * RECIPROCAL[n] + 2^15) >> 16` rounds `x / n` exactly for `x <= 6 * 255`.
const RECIPROCAL: [u32; 7] = [0, 65536, 32768, 21846, 16384, 13108, 10923];

fn rounded_mean(sum: [u32; 3], n: usize) -> [u8; 3] {
    let r = RECIPROCAL[n.min(6)];
    let half = n as u32 / 2;
    [
        (((sum[0] + half) * r) >> 16) as u8,
        (((sum[1] + half) * r) >> 16) as u8,
        (((sum[2] + half) * r) >> 16) as u8,
    ]
}

/// Split a cell's pixels in two: at the middle of the channel with the widest range. Returns
/// the pattern (bit i set = pixel i is on the bright side, drawn in fg) and the two means.
fn split(block: &[[u8; 3]]) -> (u8, [u8; 3], [u8; 3]) {
    let Some(&first) = block.first() else {
        return (0, [0; 3], [0; 3]);
    };
    let (mut lo, mut hi) = (first, first);
    for p in &block[1..] {
        for c in 0..3 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let ranges = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
    let channel = if ranges[0] >= ranges[1] && ranges[0] >= ranges[2] {
        0
    } else if ranges[1] >= ranges[2] {
        1
    } else {
        2
    };
    if ranges[channel] == 0 {
        // Every channel is flat: all pixels are the same colour.
        return (0, first, first);
    }
    let threshold = lo[channel] + ranges[channel] / 2;
    let mut pattern = 0u8;
    let (mut on, mut off) = ([0u32; 3], [0u32; 3]);
    let mut n_on = 0;
    for (i, p) in block.iter().enumerate() {
        let bright = p[channel] > threshold;
        pattern |= u8::from(bright) << i;
        let side = if bright { &mut on } else { &mut off };
        side[0] += u32::from(p[0]);
        side[1] += u32::from(p[1]);
        side[2] += u32::from(p[2]);
        n_on += usize::from(bright);
    }
    (
        pattern,
        rounded_mean(on, n_on),
        rounded_mean(off, block.len() - n_on),
    )
}

/// A picture kept as text cells between frames.
#[derive(Debug, Clone)]
pub struct TextView {
    glyphs: Glyphs,
    depth: ColorDepth,
    scaled: Framebuffer,
    cells: Buffer,
}

impl TextView {
    /// A view of `cols` x `rows` cells.
    pub fn new(glyphs: Glyphs, depth: ColorDepth, cols: u16, rows: u16) -> Self {
        let (gw, gh) = glyphs.cell_pixels();
        Self {
            glyphs,
            depth,
            scaled: Framebuffer::new(u32::from(cols) * gw, u32::from(rows) * gh),
            cells: Buffer::empty(CellRect::new(0, 0, cols, rows)),
        }
    }

    pub fn glyphs(&self) -> Glyphs {
        self.glyphs
    }

    pub fn depth(&self) -> ColorDepth {
        self.depth
    }

    /// `(cols, rows)`.
    pub fn size(&self) -> (u16, u16) {
        (self.cells.area.width, self.cells.area.height)
    }

    /// The picture at the view's pixel resolution (cells times glyph pixels).
    pub fn scaled(&self) -> &Framebuffer {
        &self.scaled
    }

    /// The cells, at `(0, 0)`.
    pub fn cells(&self) -> &Buffer {
        &self.cells
    }

    /// Scale all of `src` and redraw every cell.
    pub fn update(&mut self, src: &Framebuffer) {
        scale_into(src, &mut self.scaled);
        let all = self.cells.area;
        draw_cells(&self.scaled, self.glyphs, self.depth, all, &mut self.cells);
    }

    /// Re-scale and redraw only what source `damage` (pixels of `src`) touches; `src` must be
    /// the same size as in earlier frames. Returns the redrawn cell rectangles.
    pub fn update_damage(&mut self, src: &Framebuffer, damage: &[Rect]) -> Vec<CellRect> {
        let (gw, gh) = self.glyphs.cell_pixels();
        let touched = scale_damaged(src, &mut self.scaled, damage);
        let cell_rects: Vec<CellRect> = touched
            .iter()
            .map(|r| {
                let x0 = r.x / gw;
                let y0 = r.y / gh;
                let x1 = r.right().div_ceil(gw);
                let y1 = r.bottom().div_ceil(gh);
                CellRect::new(x0 as u16, y0 as u16, (x1 - x0) as u16, (y1 - y0) as u16)
            })
            .collect();
        // The touched pixels may not be cell-aligned; the rest of each cell is current already.
        for r in &cell_rects {
            draw_cells(&self.scaled, self.glyphs, self.depth, *r, &mut self.cells);
        }
        cell_rects
    }
}

/// Copy the view's cells to `area` (clipped to both).
impl Widget for &TextView {
    fn render(self, area: CellRect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let w = area.width.min(self.cells.area.width);
        let h = area.height.min(self.cells.area.height);
        for y in 0..h {
            let from = y as usize * self.cells.area.width as usize;
            let to = buf.index_of(area.x, area.y + y);
            buf.content[to..to + w as usize]
                .clone_from_slice(&self.cells.content[from..from + w as usize]);
        }
    }
}

/// The cells as ANSI text for a plain output stream (`tether render`): SGR colours, the
/// glyphs, a reset and a newline after each row. Colours are repeated only when they change.
pub fn write_ansi(buf: &Buffer, out: &mut Vec<u8>) {
    let width = buf.area.width as usize;
    for row in buf.content.chunks(width.max(1)) {
        let mut fg = None;
        let mut bg = None;
        for cell in row {
            if fg != Some(cell.fg) {
                sgr(out, 38, cell.fg);
                fg = Some(cell.fg);
            }
            if bg != Some(cell.bg) {
                sgr(out, 48, cell.bg);
                bg = Some(cell.bg);
            }
            out.extend_from_slice(cell.symbol().as_bytes());
        }
        out.extend_from_slice(b"\x1b[0m\n");
    }
}

fn sgr(out: &mut Vec<u8>, base: u8, color: Color) {
    use std::io::Write;
    let _ = match color {
        Color::Rgb(r, g, b) => write!(out, "\x1b[{base};2;{r};{g};{b}m"),
        Color::Indexed(i) => write!(out, "\x1b[{base};5;{i}m"),
        _ => write!(out, "\x1b[{}m", base + 1),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_means_are_exact() {
        for n in 1..=6usize {
            for sum in 0..=(n as u32 * 255) {
                let got = rounded_mean([sum, 0, 0], n)[0];
                assert_eq!(u32::from(got), (sum + n as u32 / 2) / n as u32, "{sum}/{n}");
            }
        }
    }

    #[test]
    fn sextant_glyphs_follow_unicode() {
        assert_eq!(sextant_char(1), '\u{1FB00}');
        assert_eq!(sextant_char(3), '\u{1FB02}');
        assert_eq!(sextant_char(20), '\u{1FB13}');
        assert_eq!(sextant_char(22), '\u{1FB14}');
        assert_eq!(sextant_char(62), '\u{1FB3B}');
        assert_eq!(sextant_char(21), '▌');
        assert_eq!(sextant_char(42), '▐');
        let distinct: std::collections::HashSet<char> = (0..64).map(sextant_char).collect();
        assert_eq!(distinct.len(), 64);
    }

    #[test]
    fn half_block_takes_top_and_bottom_pixels() {
        let mut fb = Framebuffer::new(2, 4);
        fb.set_pixel(1, 2, [10, 20, 30, 255]);
        fb.set_pixel(1, 3, [40, 50, 60, 255]);
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 2, 2);
        view.update(&fb);
        let cell = &view.cells()[(1, 1)];
        assert_eq!(cell.symbol(), "▀");
        assert_eq!(cell.fg, Color::Rgb(10, 20, 30));
        assert_eq!(cell.bg, Color::Rgb(40, 50, 60));
        view = TextView::new(Glyphs::HalfBlock, ColorDepth::Palette256, 2, 2);
        view.update(&fb);
        assert_eq!(view.cells()[(0, 0)].fg, Color::Indexed(16));
    }

    #[test]
    fn sextant_splits_light_from_dark() {
        // A cell whose left column is white and right column black: the left-half glyph.
        let mut fb = Framebuffer::new(2, 3);
        for y in 0..3 {
            fb.set_pixel(0, y, [250, 250, 250, 255]);
        }
        let mut view = TextView::new(Glyphs::Sextant, ColorDepth::TrueColor, 1, 1);
        view.update(&fb);
        let cell = &view.cells()[(0, 0)];
        assert_eq!(cell.symbol(), "▌");
        assert_eq!(cell.fg, Color::Rgb(250, 250, 250));
        assert_eq!(cell.bg, Color::Rgb(0, 0, 0));
        // Red text on green of the same brightness still splits (on the widest channel).
        let mut fb = Framebuffer::new(2, 3);
        fb.fill(fb.bounds(), [0, 120, 0, 255]);
        fb.set_pixel(1, 0, [120, 0, 0, 255]);
        view.update(&fb);
        let cell = &view.cells()[(0, 0)];
        assert_eq!(cell.symbol(), sextant_char(0b000010).to_string());
        assert_eq!(cell.fg, Color::Rgb(120, 0, 0));
        assert_eq!(cell.bg, Color::Rgb(0, 120, 0));
    }

    #[test]
    fn quadrants_and_flat_cells() {
        let mut fb = Framebuffer::new(4, 2);
        fb.fill(Rect::new(0, 0, 2, 2), [7, 7, 7, 255]);
        fb.fill(Rect::new(2, 0, 2, 2), [7, 7, 7, 255]);
        fb.set_pixel(3, 1, [200, 0, 0, 255]);
        let mut view = TextView::new(Glyphs::Quadrant, ColorDepth::TrueColor, 2, 1);
        view.update(&fb);
        assert_eq!(view.cells()[(0, 0)].symbol(), " ");
        assert_eq!(view.cells()[(0, 0)].bg, Color::Rgb(7, 7, 7));
        assert_eq!(view.cells()[(1, 0)].symbol(), "▗");
    }

    #[test]
    fn damage_touches_only_its_cells() {
        let src = super::super::testimage::desktop(320, 200);
        let mut view = TextView::new(Glyphs::Sextant, ColorDepth::TrueColor, 40, 20);
        view.update(&src);
        let before = view.cells().clone();
        let mut changed = src.clone();
        let spot = Rect::new(100, 50, 8, 8);
        changed.fill(spot, [255, 0, 255, 255]);
        let rects = view.update_damage(&changed, &[spot]);
        let mut full = TextView::new(Glyphs::Sextant, ColorDepth::TrueColor, 40, 20);
        full.update(&changed);
        assert_eq!(
            view.cells(),
            full.cells(),
            "damage-only equals a full redraw"
        );
        let cells: u32 = rects.iter().map(|r| r.area()).sum();
        assert!(cells <= 12, "{rects:?}");
        let diff = before.diff(view.cells());
        assert!(!diff.is_empty() && diff.len() <= 12, "{}", diff.len());
    }

    #[test]
    fn widget_copies_cells_into_an_area() {
        let mut fb = Framebuffer::new(2, 2);
        fb.fill(fb.bounds(), [1, 2, 3, 255]);
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 2, 1);
        view.update(&fb);
        let mut buf = Buffer::empty(CellRect::new(0, 0, 5, 3));
        (&view).render(CellRect::new(3, 2, 5, 5), &mut buf);
        assert_eq!(buf[(3, 2)].fg, Color::Rgb(1, 2, 3));
        assert_eq!(buf[(4, 2)].symbol(), "▀");
        assert_eq!(buf[(2, 2)].symbol(), " ");
    }

    #[test]
    fn ansi_text_resets_at_each_line_end() {
        let mut fb = Framebuffer::new(2, 4);
        fb.fill(fb.bounds(), [1, 2, 3, 255]);
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 2, 2);
        view.update(&fb);
        let mut out = Vec::new();
        write_ansi(view.cells(), &mut out);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text,
            "\x1b[38;2;1;2;3m\x1b[48;2;1;2;3m▀▀\x1b[0m\n\x1b[38;2;1;2;3m\x1b[48;2;1;2;3m▀▀\x1b[0m\n"
        );
    }
}
