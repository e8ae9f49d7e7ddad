//! Our own sixel encoder.
//!
//! Why not `icy_sixel` (measured in `benches/render.rs`, numbers in the README): it quantises
//! every image afresh, so the palette (and every colour on screen) changes from frame to frame,
//! which shimmers when tiles are re-sent; it has no way to encode a tile with an existing
//! palette; and on the 1080p desktop picture it takes several times our time and more bytes.
//! A live view needs the opposite: one palette kept between frames, tiles encoded against it,
//! and a fast path for the common flat areas of a desktop.
//!
//! - [`Palette`]: median cut (split the box with the largest squared error) on a 15-bit
//!   histogram, refined by two k-means passes, rounded to the percent steps sixel can express.
//!   Lookups go through a lazily filled 18-bit table, so mapping a pixel is one load.
//! - [`encode`]: one DCS image, colours defined at first use (then selected: xterm does not
//!   select on definition) and only those used, run-length
//!   coded, transparent where a bit is unset (`P2=1`), so tiles of any height line up.
//! - [`SixelView`]: a picture on a cell-aligned terminal area that never includes the last row
//!   (a sixel touching it scrolls the screen); re-sends only cell-aligned tiles over the damage.

use ratatui::layout::Rect as CellRect;

use super::CellSize;
use super::scale::{merge_overlapping, scale_damaged, scale_into};
use crate::frame::{Framebuffer, Rect};

/// Most terminals (xterm with `numColorRegisters: 256`, foot, WezTerm, mlterm) offer 256.
pub const DEFAULT_COLORS: u16 = 256;

/// Below this PSNR (dB, on a sample of a full frame) the kept palette is rebuilt: the picture
/// changed enough (a new wallpaper, a video) that stability is no longer worth the error.
pub const PALETTE_REFRESH_DB: f64 = 30.0;

const LUT_BITS: u32 = 6;
const NONE: u16 = u16::MAX;

/// The colours of a sixel image, kept between frames so that colours never shimmer.
#[derive(Clone)]
pub struct Palette {
    /// The colours the terminal shows: each channel rounded to a sixel percent step.
    shown: Vec<[u8; 3]>,
    /// The same colours as sixel percents (0..=100).
    percent: Vec<[u8; 3]>,
    /// Nearest colour for each 6-bit-per-channel RGB, filled on first use.
    lut: Vec<u16>,
}

impl std::fmt::Debug for Palette {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Palette({} colours)", self.shown.len())
    }
}

fn to_percent(c: u8) -> u8 {
    ((u32::from(c) * 100 + 127) / 255) as u8
}

fn from_percent(p: u8) -> u8 {
    ((u32::from(p) * 255 + 50) / 100) as u8
}

fn dist(a: [u8; 3], b: [u8; 3]) -> u32 {
    let d = |i: usize| {
        let x = i32::from(a[i]) - i32::from(b[i]);
        (x * x) as u32
    };
    d(0) + d(1) + d(2)
}

/// One occupied histogram bin: how many pixels, and their summed colour.
#[derive(Clone, Copy, Default)]
struct Bin {
    count: u64,
    sum: [u64; 3],
}

impl Bin {
    fn mean(&self) -> [u8; 3] {
        let n = self.count.max(1);
        [
            ((self.sum[0] + n / 2) / n) as u8,
            ((self.sum[1] + n / 2) / n) as u8,
            ((self.sum[2] + n / 2) / n) as u8,
        ]
    }
}

/// A median-cut box: a range of the bin list with its moments.
struct CutBox {
    start: usize,
    end: usize,
    error: f64,
}

fn box_error(bins: &[Bin]) -> f64 {
    // Sum of squared distances to the mean, from the moments of the bin means.
    let mut n = 0f64;
    let mut s = [0f64; 3];
    let mut sq = 0f64;
    for b in bins {
        let c = b.count as f64;
        let m = b.mean();
        n += c;
        for i in 0..3 {
            let v = f64::from(m[i]);
            s[i] += c * v;
            sq += c * v * v;
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    sq - (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]) / n
}

impl Palette {
    /// At most `max_colors` (1..=256) colours that fit `img` well.
    pub fn from_image(img: &Framebuffer, max_colors: u16) -> Palette {
        let max = usize::from(max_colors.clamp(1, 256));
        let mut hist = vec![Bin::default(); 1 << 15];
        for px in img.as_rgba().chunks_exact(4) {
            let key = (usize::from(px[0] >> 3) << 10)
                | (usize::from(px[1] >> 3) << 5)
                | usize::from(px[2] >> 3);
            let b = &mut hist[key];
            b.count += 1;
            b.sum[0] += u64::from(px[0]);
            b.sum[1] += u64::from(px[1]);
            b.sum[2] += u64::from(px[2]);
        }
        let mut bins: Vec<Bin> = hist.into_iter().filter(|b| b.count > 0).collect();
        if bins.is_empty() {
            return Palette::from_colors(&[[0, 0, 0]]);
        }
        // Median cut: split the box with the largest squared error at its weighted median
        // along its widest channel.
        let mut boxes = vec![CutBox {
            start: 0,
            end: bins.len(),
            error: box_error(&bins),
        }];
        while boxes.len() < max {
            let Some((at, _)) = boxes
                .iter()
                .enumerate()
                .filter(|(_, b)| b.end - b.start > 1 && b.error > 0.0)
                .max_by(|a, b| a.1.error.total_cmp(&b.1.error))
            else {
                break;
            };
            let CutBox { start, end, .. } = boxes.swap_remove(at);
            let slice = &mut bins[start..end];
            let mut lo = [255u8; 3];
            let mut hi = [0u8; 3];
            for b in slice.iter() {
                let m = b.mean();
                for c in 0..3 {
                    lo[c] = lo[c].min(m[c]);
                    hi[c] = hi[c].max(m[c]);
                }
            }
            let channel = (0..3).max_by_key(|&c| hi[c] - lo[c]).unwrap_or(0);
            slice.sort_unstable_by_key(|b| b.mean()[channel]);
            let total: u64 = slice.iter().map(|b| b.count).sum();
            let mut acc = 0;
            let mut cut = 1;
            for (i, b) in slice.iter().enumerate() {
                acc += b.count;
                if acc * 2 >= total {
                    cut = (i + 1).clamp(1, slice.len() - 1);
                    break;
                }
            }
            let mid = start + cut;
            boxes.push(CutBox {
                start,
                end: mid,
                error: box_error(&bins[start..mid]),
            });
            boxes.push(CutBox {
                start: mid,
                end,
                error: box_error(&bins[mid..end]),
            });
        }
        let mut centres: Vec<[u8; 3]> = boxes
            .iter()
            .map(|b| {
                let mut all = Bin::default();
                for x in &bins[b.start..b.end] {
                    all.count += x.count;
                    for c in 0..3 {
                        all.sum[c] += x.sum[c];
                    }
                }
                all.mean()
            })
            .collect();
        // Two k-means passes over the bins pull each colour to the centre of what it serves.
        for _ in 0..2 {
            let mut acc = vec![Bin::default(); centres.len()];
            for b in &bins {
                let m = b.mean();
                let (best, _) = centres
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i, dist(*c, m)))
                    .min_by_key(|&(_, d)| d)
                    .unwrap_or((0, 0));
                acc[best].count += b.count;
                for c in 0..3 {
                    acc[best].sum[c] += b.sum[c];
                }
            }
            for (c, a) in centres.iter_mut().zip(&acc) {
                if a.count > 0 {
                    *c = a.mean();
                }
            }
        }
        centres.sort_unstable();
        centres.dedup();
        Palette::from_colors(&centres)
    }

    /// A palette of exactly these colours (at most 256; rounded to sixel's percent steps).
    pub fn from_colors(colors: &[[u8; 3]]) -> Palette {
        let colors = if colors.is_empty() {
            &[[0, 0, 0]][..]
        } else {
            &colors[..colors.len().min(256)]
        };
        let percent: Vec<[u8; 3]> = colors
            .iter()
            .map(|c| [to_percent(c[0]), to_percent(c[1]), to_percent(c[2])])
            .collect();
        let shown = percent
            .iter()
            .map(|p| [from_percent(p[0]), from_percent(p[1]), from_percent(p[2])])
            .collect();
        Palette {
            shown,
            percent,
            lut: vec![NONE; 1 << (3 * LUT_BITS)],
        }
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// The colours as the terminal shows them.
    pub fn colors(&self) -> &[[u8; 3]] {
        &self.shown
    }

    /// The index of the colour nearest to `(r, g, b)`.
    #[inline]
    pub fn index(&mut self, r: u8, g: u8, b: u8) -> u8 {
        let shift = 8 - LUT_BITS;
        let key = (usize::from(r >> shift) << (2 * LUT_BITS))
            | (usize::from(g >> shift) << LUT_BITS)
            | usize::from(b >> shift);
        let hit = self.lut[key];
        if hit != NONE {
            return hit as u8;
        }
        self.fill(key)
    }

    #[cold]
    fn fill(&mut self, key: usize) -> u8 {
        // The bin's centre, so that the choice does not depend on which pixel came first.
        let shift = 8 - LUT_BITS;
        let mask = (1 << LUT_BITS) - 1;
        let half = 1u8 << (shift - 1);
        let c = [
            (((key >> (2 * LUT_BITS)) & mask) as u8) << shift | half,
            (((key >> LUT_BITS) & mask) as u8) << shift | half,
            ((key & mask) as u8) << shift | half,
        ];
        let (best, _) = self
            .shown
            .iter()
            .enumerate()
            .map(|(i, p)| (i, dist(*p, c)))
            .min_by_key(|&(_, d)| d)
            .unwrap_or((0, 0));
        self.lut[key] = best as u16;
        best as u8
    }

    /// PSNR (dB) of `img` drawn with this palette, on every `step`-th pixel.
    pub fn sample_psnr(&mut self, img: &Framebuffer, step: usize) -> f64 {
        let mut sum = 0u64;
        let mut n = 0u64;
        for px in img.as_rgba().chunks_exact(4).step_by(step.max(1)) {
            let i = self.index(px[0], px[1], px[2]);
            sum += u64::from(dist(self.shown[usize::from(i)], [px[0], px[1], px[2]]));
            n += 3;
        }
        if sum == 0 {
            return f64::INFINITY;
        }
        10.0 * (255.0f64 * 255.0 * n as f64 / sum as f64).log10()
    }
}

/// Buffers reused between images so that encoding allocates nothing once warm.
#[derive(Default)]
pub struct Scratch {
    /// One row of sixel bits per colour for the current band (`256 * width`).
    masks: Vec<u8>,
    /// First and last column each colour occupies in the band (`u32::MAX` when unused).
    first: Vec<u32>,
    last: Vec<u32>,
    used: Vec<u8>,
}

fn push_number(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_run(out: &mut Vec<u8>, ch: u8, n: usize) {
    if n >= 4 {
        out.push(b'!');
        push_number(out, n as u32);
        out.push(ch);
    } else {
        for _ in 0..n {
            out.push(ch);
        }
    }
}

/// Encode `img` as one sixel image (DCS ... ST) drawn at the cursor, with `palette`.
pub fn encode(img: &Framebuffer, palette: &mut Palette, scratch: &mut Scratch, out: &mut Vec<u8>) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    // P2=1: unset bits stay transparent, so a partial last band paints nothing below the image.
    out.extend_from_slice(b"\x1bP0;1;0q\"1;1;");
    push_number(out, w as u32);
    out.push(b';');
    push_number(out, h as u32);
    if w == 0 || h == 0 {
        out.extend_from_slice(b"\x1b\\");
        return;
    }
    let colors = palette.len().max(1);
    scratch.masks.clear();
    scratch.masks.resize(colors * w, 0);
    scratch.first.clear();
    scratch.first.resize(colors, u32::MAX);
    scratch.last.clear();
    scratch.last.resize(colors, 0);
    let mut defined = [false; 256];
    let px = img.as_rgba();
    for band in (0..h).step_by(6) {
        scratch.used.clear();
        for r in 0..6.min(h - band) {
            let bit = 1u8 << r;
            let row = &px[(band + r) * w * 4..(band + r + 1) * w * 4];
            // Desktops are mostly runs of one colour: look each run up once and mark it with
            // one slice operation.
            let mut x = 0;
            while x < w {
                let p = &row[x * 4..x * 4 + 4];
                let v = u32::from_le_bytes([p[0], p[1], p[2], 0]);
                let mut end = x + 1;
                while end < w {
                    let q = &row[end * 4..end * 4 + 4];
                    if u32::from_le_bytes([q[0], q[1], q[2], 0]) != v {
                        break;
                    }
                    end += 1;
                }
                let idx = usize::from(palette.index(p[0], p[1], p[2]));
                if scratch.first[idx] == u32::MAX {
                    scratch.used.push(idx as u8);
                    scratch.first[idx] = x as u32;
                } else if (x as u32) < scratch.first[idx] {
                    scratch.first[idx] = x as u32;
                }
                let last = &mut scratch.last[idx];
                *last = (*last).max((end - 1) as u32);
                for m in &mut scratch.masks[idx * w + x..idx * w + end] {
                    *m |= bit;
                }
                x = end;
            }
        }
        scratch.used.sort_unstable();
        let used = std::mem::take(&mut scratch.used);
        for (k, &c) in used.iter().enumerate() {
            let c = usize::from(c);
            out.push(b'#');
            push_number(out, c as u32);
            if !defined[c] {
                defined[c] = true;
                let p = palette.percent[c];
                out.extend_from_slice(b";2;");
                push_number(out, u32::from(p[0]));
                out.push(b';');
                push_number(out, u32::from(p[1]));
                out.push(b';');
                push_number(out, u32::from(p[2]));
                // xterm defines a register with `#c;2;r;g;b` without selecting it (libsixel
                // and DEC's manual select too): select it again, or the band is drawn in
                // whatever register was current (xterm's default green on a first band).
                out.push(b'#');
                push_number(out, c as u32);
            }
            let (first, last) = (scratch.first[c] as usize, scratch.last[c] as usize);
            push_run(out, b'?', first);
            let line = &mut scratch.masks[c * w + first..=c * w + last];
            let mut i = 0;
            while i < line.len() {
                let v = line[i];
                let mut j = i + 1;
                if v == 0 {
                    // Gaps between a colour's pixels are long: skip them eight at a time.
                    while let Some(word) = line.get(j..j + 8) {
                        if word.iter().any(|&b| b != 0) {
                            break;
                        }
                        j += 8;
                    }
                }
                while j < line.len() && line[j] == v {
                    j += 1;
                }
                push_run(out, v + 63, j - i);
                i = j;
            }
            line.fill(0);
            scratch.first[c] = u32::MAX;
            scratch.last[c] = 0;
            if k + 1 < used.len() {
                out.push(b'$');
            }
        }
        scratch.used = used;
        if band + 6 < h {
            out.push(b'-');
        }
    }
    out.extend_from_slice(b"\x1b\\");
}

/// Wrap escape sequences for tmux's passthrough (`allow-passthrough on`): every ESC doubled.
pub fn tmux_wrap(seq: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"\x1bPtmux;");
    for &b in seq {
        if b == 0x1b {
            out.push(0x1b);
        }
        out.push(b);
    }
    out.extend_from_slice(b"\x1b\\");
}

/// Move the cursor to a 0-based cell.
pub(crate) fn move_to(out: &mut Vec<u8>, col: u16, row: u16) {
    out.extend_from_slice(b"\x1b[");
    push_number(out, u32::from(row) + 1);
    out.push(b';');
    push_number(out, u32::from(col) + 1);
    out.push(b'H');
}

/// A picture shown as sixel on a cell-aligned area of the terminal, kept between frames.
pub struct SixelView {
    area: CellRect,
    cell: CellSize,
    max_colors: u16,
    scaled: Framebuffer,
    palette: Option<Palette>,
    scratch: Scratch,
    /// Inside tmux: where its pane's top-left cell is on the outer terminal.
    tmux_pane: Option<PaneOrigin>,
    image: Vec<u8>,
}

/// Where a tmux pane's top-left cell is on the terminal tmux runs in (0-based column and row).
///
/// tmux (3.3a, without sixel of its own) writes passed-through bytes wherever the outer
/// terminal's cursor happens to be, not at the pane's cursor: a cursor move written to the
/// pane only moves tmux's idea of it. So each image goes through with its own cursor move, in
/// outer coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaneOrigin {
    pub col: u16,
    pub row: u16,
}

impl std::fmt::Debug for SixelView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SixelView")
            .field("area", &self.area)
            .field("cell", &self.cell)
            .field("palette", &self.palette)
            .finish()
    }
}

impl SixelView {
    /// A view on `area` (cells) of a terminal `terminal_rows` tall with cells of `cell`
    /// pixels and `max_colors` colour registers. The area is cut short of the last row.
    pub fn new(area: CellRect, terminal_rows: u16, cell: CellSize, max_colors: u16) -> Self {
        Self::with_palette(area, terminal_rows, cell, max_colors, None)
    }

    /// As [`new`](Self::new), starting from the palette of an earlier view (taken with
    /// [`take_palette`](Self::take_palette)): a whole repaint (pan, resize, a menu closed)
    /// then keeps the colours on screen and skips building a palette, unless the picture no
    /// longer fits it. A palette with more colours than `max_colors` is not used.
    pub fn with_palette(
        area: CellRect,
        terminal_rows: u16,
        cell: CellSize,
        max_colors: u16,
        palette: Option<Palette>,
    ) -> Self {
        let max_colors = max_colors.clamp(2, 256);
        let palette = palette.filter(|p| p.len() <= usize::from(max_colors));
        let last_usable = terminal_rows.saturating_sub(1);
        let height = area.height.min(last_usable.saturating_sub(area.y));
        let area = CellRect::new(area.x, area.y, area.width, height);
        Self {
            area,
            cell,
            max_colors,
            scaled: Framebuffer::new(
                u32::from(area.width) * u32::from(cell.width),
                u32::from(area.height) * u32::from(cell.height),
            ),
            palette,
            scratch: Scratch::default(),
            tmux_pane: None,
            image: Vec::new(),
        }
    }

    /// Wrap images, with their cursor moves, for tmux's passthrough to the terminal tmux runs
    /// in, where the pane starts at `pane`; `None` writes them plainly.
    pub fn set_tmux_pane(&mut self, pane: Option<PaneOrigin>) {
        self.tmux_pane = pane;
    }

    /// The cells the picture covers (never the terminal's last row).
    pub fn area(&self) -> CellRect {
        self.area
    }

    /// The picture at the terminal's pixel resolution.
    pub fn scaled(&self) -> &Framebuffer {
        &self.scaled
    }

    /// The kept palette, once the first frame made it.
    pub fn palette(&self) -> Option<&Palette> {
        self.palette.as_ref()
    }

    /// Forget the palette: the next full frame makes a new one.
    pub fn reset_palette(&mut self) {
        self.palette = None;
    }

    /// The kept palette, to start the next view with (see [`with_palette`](Self::with_palette)).
    pub fn take_palette(&mut self) -> Option<Palette> {
        self.palette.take()
    }

    /// Scale all of `src` and append the whole picture to `out`. Keeps the palette unless the
    /// picture no longer fits it (below [`PALETTE_REFRESH_DB`] on a sample).
    pub fn render(&mut self, src: &Framebuffer, out: &mut Vec<u8>) {
        scale_into(src, &mut self.scaled);
        self.refresh_palette();
        let all = self.scaled.bounds();
        self.emit(all, out);
    }

    /// Make a new palette when there is none or the scaled picture no longer fits the kept
    /// one (below [`PALETTE_REFRESH_DB`] on a sample).
    fn refresh_palette(&mut self) {
        let keep = match self.palette.as_mut() {
            Some(p) => p.sample_psnr(&self.scaled, 17) >= PALETTE_REFRESH_DB,
            None => false,
        };
        if !keep {
            self.palette = Some(Palette::from_image(&self.scaled, self.max_colors));
        }
    }

    /// Re-scale what source `damage` touches and append only the cell-aligned tiles over it.
    /// Without a palette yet (no full frame so far) this is a full frame.
    pub fn render_damage(&mut self, src: &Framebuffer, damage: &[Rect], out: &mut Vec<u8>) {
        if self.palette.is_none() {
            self.render(src, out);
            return;
        }
        let touched = scale_damaged(src, &mut self.scaled, damage);
        let (cw, ch) = (u32::from(self.cell.width), u32::from(self.cell.height));
        let tiles = merge_overlapping(touched.iter().map(|r| {
            let x0 = r.x / cw * cw;
            let y0 = r.y / ch * ch;
            let x1 = r.right().div_ceil(cw) * cw;
            let y1 = r.bottom().div_ceil(ch) * ch;
            Rect::new(x0, y0, x1 - x0, y1 - y0)
        }));
        let area: u64 = tiles
            .iter()
            .map(|t| u64::from(t.width) * u64::from(t.height))
            .sum();
        let whole = u64::from(self.scaled.width()) * u64::from(self.scaled.height());
        if area * 10 > whole * 6 {
            // Most of the picture changed: one image costs fewer headers than many, and the
            // new picture may no longer fit the palette (a new wallpaper, a video).
            self.refresh_palette();
            let all = self.scaled.bounds();
            self.emit(all, out);
            return;
        }
        for t in tiles {
            self.emit(t, out);
        }
    }

    /// Encode the cell-aligned pixel rectangle `r` of the scaled picture, positioned.
    fn emit(&mut self, r: Rect, out: &mut Vec<u8>) {
        let r = r.intersect(&self.scaled.bounds());
        let Some(palette) = self.palette.as_mut() else {
            return;
        };
        if r.is_empty() {
            return;
        }
        let col = self
            .area
            .x
            .saturating_add((r.x / u32::from(self.cell.width)) as u16);
        let row = self
            .area
            .y
            .saturating_add((r.y / u32::from(self.cell.height)) as u16);
        let tile;
        let img = if r == self.scaled.bounds() {
            &self.scaled
        } else {
            tile = self.scaled.crop(r);
            &tile
        };
        match self.tmux_pane {
            Some(pane) => {
                self.image.clear();
                move_to(
                    &mut self.image,
                    pane.col.saturating_add(col),
                    pane.row.saturating_add(row),
                );
                encode(img, palette, &mut self.scratch, &mut self.image);
                tmux_wrap(&self.image, out);
            }
            None => {
                move_to(out, col, row);
                encode(img, palette, &mut self.scratch, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testimage;

    /// A small sixel decoder (enough for our own output) to check encodings in unit tests;
    /// the integration tests check against libsixel's `sixel2png` as well.
    pub(crate) fn decode(seq: &[u8]) -> Framebuffer {
        let start = seq.iter().position(|&b| b == b'q').unwrap_or(0) + 1;
        let body = &seq[start..];
        let mut i = 0;
        let num = |i: &mut usize| {
            let mut n = 0u32;
            while *i < body.len() && body[*i].is_ascii_digit() {
                n = n * 10 + u32::from(body[*i] - b'0');
                *i += 1;
            }
            n
        };
        // Raster attributes.
        i += 1;
        let _ = num(&mut i);
        i += 1;
        let _ = num(&mut i);
        i += 1;
        let w = num(&mut i);
        i += 1;
        let h = num(&mut i);
        let mut fb = Framebuffer::new(w, h);
        let mut colors = vec![[0u8; 3]; 256];
        let (mut x, mut y, mut c) = (0u32, 0u32, 0usize);
        while i < body.len() {
            match body[i] {
                b'#' => {
                    i += 1;
                    c = num(&mut i) as usize;
                    if i < body.len() && body[i] == b';' {
                        i += 1;
                        let _coordinate_system = num(&mut i);
                        let mut p = [0u8; 3];
                        for v in p.iter_mut() {
                            i += 1;
                            *v = from_percent(num(&mut i) as u8);
                        }
                        colors[c] = p;
                    }
                }
                b'$' => {
                    x = 0;
                    i += 1;
                }
                b'-' => {
                    x = 0;
                    y += 6;
                    i += 1;
                }
                b'!' => {
                    i += 1;
                    let n = num(&mut i);
                    let v = body[i] - 63;
                    for _ in 0..n {
                        paint(&mut fb, x, y, v, colors[c]);
                        x += 1;
                    }
                    i += 1;
                }
                b'?'..=b'~' => {
                    paint(&mut fb, x, y, body[i] - 63, colors[c]);
                    x += 1;
                    i += 1;
                }
                _ => break,
            }
        }
        fb
    }

    fn paint(fb: &mut Framebuffer, x: u32, y: u32, bits: u8, c: [u8; 3]) {
        for r in 0..6 {
            if bits >> r & 1 == 1 {
                fb.set_pixel(x, y + r, [c[0], c[1], c[2], 255]);
            }
        }
    }

    #[test]
    fn every_colour_is_selected_after_its_definition() {
        // xterm only defines a register with `#c;2;r;g;b`; without `#c` after it the band is
        // drawn in the register selected before (seen as green bars over a live desktop).
        let mut img = Framebuffer::new(8, 12);
        img.fill(Rect::new(0, 0, 8, 6), [255, 0, 0, 255]);
        img.fill(Rect::new(0, 6, 8, 6), [0, 0, 255, 255]);
        let mut palette = Palette::from_colors(&[[255, 0, 0], [0, 0, 255]]);
        let mut out = Vec::new();
        encode(&img, &mut palette, &mut Scratch::default(), &mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(text.contains("#0;2;100;0;0#0"), "{text}");
        assert!(text.contains("#1;2;0;0;100#1"), "{text}");
        assert_eq!(decode(&out).pixel(1, 1), [255, 0, 0, 255]);
    }

    #[test]
    fn small_palette_round_trips_exactly() {
        let mut img = Framebuffer::new(13, 8);
        img.fill(Rect::new(0, 0, 13, 8), [255, 255, 255, 255]);
        img.fill(Rect::new(2, 1, 5, 6), [255, 0, 0, 255]);
        img.set_pixel(12, 7, [0, 0, 255, 255]);
        let mut palette = Palette::from_image(&img, 256);
        assert_eq!(palette.len(), 3);
        let mut out = Vec::new();
        encode(&img, &mut palette, &mut Scratch::default(), &mut out);
        assert!(out.starts_with(b"\x1bP0;1;0q\"1;1;13;8"));
        assert!(out.ends_with(b"\x1b\\"));
        assert_eq!(decode(&out), img, "{}", String::from_utf8_lossy(&out));
        // Runs are compressed: 13 white columns in the first band's white line.
        assert!(out.len() < 120, "{}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn desktop_quality_and_size() {
        let img = testimage::desktop(640, 360);
        let mut palette = Palette::from_image(&img, 256);
        let mut out = Vec::new();
        encode(&img, &mut palette, &mut Scratch::default(), &mut out);
        let back = decode(&out);
        let db = crate::render::psnr(&img, &back).unwrap_or(0.0);
        assert!(db >= 34.0, "{db} dB");
        assert!(out.len() < 200_000, "{} bytes", out.len());
    }

    #[test]
    fn palette_is_kept_between_frames() {
        let cell = CellSize::new(8, 16);
        let mut view = SixelView::new(CellRect::new(0, 0, 40, 30), 24, cell, 256);
        // Cut short of the last row: 24 rows, so 23 usable.
        assert_eq!(view.area(), CellRect::new(0, 0, 40, 23));
        let mut img = testimage::desktop(320, 184);
        let mut out = Vec::new();
        view.render(&img, &mut out);
        let first = view.palette().map(|p| p.colors().to_vec());
        img.fill(Rect::new(100, 100, 10, 10), [255, 0, 0, 255]);
        out.clear();
        view.render(&img, &mut out);
        assert_eq!(view.palette().map(|p| p.colors().to_vec()), first);
        // A wholly different picture makes a new one.
        let mut green = Framebuffer::new(320, 184);
        for x in 0..320 {
            green.fill(Rect::new(x, 0, 1, 184), [0, (x % 256) as u8, 90, 255]);
        }
        view.render(&green, &mut out);
        assert_ne!(view.palette().map(|p| p.colors().to_vec()), first);
    }

    #[test]
    fn damage_sends_cell_aligned_tiles() {
        let cell = CellSize::new(10, 20);
        let mut view = SixelView::new(CellRect::new(2, 1, 64, 18), 20, cell, 256);
        let mut img = testimage::desktop(640, 360);
        let mut out = Vec::new();
        view.render(&img, &mut out);
        let full = out.len();
        img.fill(Rect::new(105, 45, 12, 12), [255, 0, 255, 255]);
        out.clear();
        view.render_damage(&img, &[Rect::new(105, 45, 12, 12)], &mut out);
        // Columns 100..120 -> cells 10..12, rows 45..57 -> row 2; the area starts at (2, 1).
        assert!(
            out.starts_with(b"\x1b[4;13H\x1bP0;1;0q\"1;1;20;20"),
            "{}",
            { String::from_utf8_lossy(&out[..30.min(out.len())]) }
        );
        assert!(out.len() * 20 < full, "{} of {full}", out.len());
    }

    /// A picture in other colours than the test desktop: a green-blue gradient.
    fn gradient(w: u32, h: u32) -> Framebuffer {
        let mut img = Framebuffer::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let g = (x * 255 / w.max(1)) as u8;
                let b = (y * 255 / h.max(1)) as u8;
                img.set_pixel(x, y, [20, g, b, 255]);
            }
        }
        img
    }

    #[test]
    fn a_large_change_through_damage_makes_a_new_palette() {
        let cell = CellSize::new(10, 20);
        let mut view = SixelView::new(CellRect::new(0, 0, 32, 9), 24, cell, 256);
        let mut out = Vec::new();
        view.render(&testimage::desktop(320, 180), &mut out);
        let mut old = view.palette().cloned().expect("a palette");
        // The new picture: what the encoder reaches on it with a palette of its own...
        let next = gradient(320, 180);
        let mut own = Palette::from_image(&next, 256);
        let mut fresh = Vec::new();
        encode(&next, &mut own, &mut Scratch::default(), &mut fresh);
        let normal = crate::render::psnr(&next, &decode(&fresh)).unwrap_or(0.0);
        // ...and how badly the desktop's palette would draw it.
        let stale = old.sample_psnr(&next, 1);
        assert!(
            stale < PALETTE_REFRESH_DB,
            "{stale} dB with the old palette"
        );
        out.clear();
        view.render_damage(&next, &[next.bounds()], &mut out);
        let db = crate::render::psnr(&next, &decode(&out)).unwrap_or(0.0);
        assert!(
            db >= normal - 0.5 && db > stale + 3.0,
            "{db:.2} dB, {normal:.2} normally, {stale:.2} with the old palette"
        );
        assert_ne!(
            view.palette().map(|p| p.colors().to_vec()),
            Some(old.colors().to_vec())
        );
    }

    #[test]
    fn a_new_view_keeps_the_palette_it_is_given() {
        let cell = CellSize::new(10, 20);
        let img = testimage::desktop(320, 180);
        let mut first = SixelView::new(CellRect::new(0, 0, 32, 9), 24, cell, 256);
        let mut out = Vec::new();
        first.render(&img, &mut out);
        let colors = first.palette().map(|p| p.colors().to_vec());
        // A whole repaint elsewhere (a pan, a resize): same colours, no new palette.
        let kept = first.take_palette();
        let mut second = SixelView::with_palette(CellRect::new(2, 1, 32, 9), 24, cell, 256, kept);
        let mut marked = img.clone();
        marked.fill(Rect::new(50, 50, 20, 20), [255, 0, 0, 255]);
        out.clear();
        second.render(&marked, &mut out);
        assert_eq!(second.palette().map(|p| p.colors().to_vec()), colors);
        assert!(out.starts_with(b"\x1b[2;3H"), "placed on its own area");
        let db = crate::render::psnr(&marked, &decode(&out)).unwrap_or(0.0);
        assert!(db >= 30.0, "{db:.2} dB");
        // A palette larger than the registers is not used.
        let big = second.take_palette();
        let mut small = SixelView::with_palette(CellRect::new(0, 0, 32, 9), 24, cell, 16, big);
        assert!(small.palette().is_none());
        out.clear();
        small.render(&img, &mut out);
        assert!(small.palette().is_some_and(|p| p.len() <= 16));
    }

    #[test]
    fn inside_tmux_each_image_carries_its_outer_cursor_move() {
        let cell = CellSize::new(10, 20);
        let mut view = SixelView::new(CellRect::new(2, 1, 32, 9), 24, cell, 256);
        view.set_tmux_pane(Some(PaneOrigin { col: 40, row: 3 }));
        let img = testimage::desktop(320, 180);
        let mut out = Vec::new();
        view.render(&img, &mut out);
        // Cell (2, 1) of a pane at (40, 3): row 5, column 43, 1-based; nothing outside.
        assert!(
            out.starts_with(b"\x1bPtmux;\x1b\x1b[5;43H\x1b\x1bP"),
            "{:?}",
            &out[..24]
        );
        let mut changed = img.clone();
        changed.fill(Rect::new(105, 45, 12, 12), [255, 0, 255, 255]);
        out.clear();
        view.render_damage(&changed, &[Rect::new(105, 45, 12, 12)], &mut out);
        assert!(
            out.starts_with(b"\x1bPtmux;\x1b\x1b[7;53H"),
            "{:?}",
            &out[..24]
        );
    }

    #[test]
    fn tmux_passthrough_doubles_escapes() {
        let mut out = Vec::new();
        tmux_wrap(b"\x1bPq#0\x1b\\", &mut out);
        assert_eq!(out, b"\x1bPtmux;\x1b\x1bPq#0\x1b\x1b\\\x1b\\");
    }
}
