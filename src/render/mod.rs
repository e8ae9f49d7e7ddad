//! The renderer: a remote screen drawn inside a terminal. Pure functions from a [`Framebuffer`]
//! (plus its damage rectangles) to terminal output; the only I/O is the capability query in
//! [`detect::query`].
//!
//! The pipeline is scale, then encode:
//! - [`scale`]: area-averaging (box) scale to the target pixel size with exact fractional pixel
//!   weights, whole or only where the source changed (the same pixels either way).
//! - [`cells`]: text cells in a ratatui [`Buffer`](ratatui::buffer::Buffer): half blocks (1x2
//!   pixels a cell), quadrants (2x2) and sextants (2x3), 24-bit or 256 colours. Only cells over
//!   damaged pixels are touched, and ratatui's diff sends only the cells that changed.
//! - [`sixel`]: our own sixel encoder with a palette kept between frames, re-sending only the
//!   damaged cell-aligned tiles, never on the terminal's last row. Inside tmux each image goes
//!   through its passthrough with its own cursor move to the pane's place on the outer terminal
//!   ([`PaneOrigin`]); without passthrough the console draws text and says why.
//! - [`kitty`]: the kitty graphics protocol: the image placed once under an id and edited in place.
//! - [`detect`]: what the terminal can do (asked, with environment fallbacks) and which
//!   [`RenderMode`] to use.
//! - [`decode`]: the way back from cells and ANSI text to pixels, for tests and comparisons.
//! - [`testimage`]: a deterministic desktop-like picture for benchmarks and tests.

pub mod cells;
pub mod color;
pub mod decode;
pub mod detect;
pub mod kitty;
pub mod qr;
pub mod scale;
pub mod sixel;
pub mod testimage;

use crate::frame::Framebuffer;

pub use cells::{ColorDepth, Glyphs, TextView};
pub use detect::{Capabilities, Environment, RenderMode, RenderOverride};
pub use kitty::KittyView;
pub use sixel::{PaneOrigin, SixelView};

/// Pixels per terminal cell, as the terminal reports them (or a guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSize {
    pub width: u16,
    pub height: u16,
}

impl CellSize {
    /// The guess when the terminal will not say: VGA's 8x16 cell, common at default font sizes.
    pub const DEFAULT: CellSize = CellSize {
        width: 8,
        height: 16,
    };

    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width: width.max(1),
            height: height.max(1),
        }
    }
}

impl Default for CellSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a picture's pixels lie on terminal cells: text glyphs split a cell into a few pixels
/// (rarely square: a quadrant pixel of an 8x16 cell is 4x8), graphics draw the terminal's own.
/// A screen source fits the remote into a box of square pixels, so the box is asked in the
/// glyph pixel's shorter side and the picture is then laid on the cells with their real aspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellGrid {
    /// `None` for graphics (sixel, kitty): one picture pixel is one terminal pixel.
    pub glyphs: Option<Glyphs>,
    pub cell: CellSize,
}

impl CellGrid {
    pub fn new(glyphs: Option<Glyphs>, cell: CellSize) -> Self {
        Self { glyphs, cell }
    }

    /// One square picture pixel in terminal pixels, as the fraction `(numerator, denominator)`:
    /// the shorter side of the glyph's pixel, so no detail is lost along either axis.
    fn unit(self) -> (u64, u64) {
        let (cw, ch) = (u64::from(self.cell.width), u64::from(self.cell.height));
        match self.glyphs {
            None => (1, 1),
            Some(g) => {
                let (gw, gh) = g.cell_pixels();
                let (gw, gh) = (u64::from(gw), u64::from(gh));
                // cw/gw <= ch/gh, cross-multiplied.
                if cw * gh <= ch * gw {
                    (cw, gw)
                } else {
                    (ch, gh)
                }
            }
        }
    }

    /// The box of square pixels to ask a screen source for, to fill `cols` x `rows` cells.
    pub fn request(self, cols: u16, rows: u16) -> (u32, u32) {
        let (n, d) = self.unit();
        let side = |cells: u16, cell: u16| {
            let v = u64::from(cells) * u64::from(cell) * d / n.max(1);
            u32::try_from(v.max(1)).unwrap_or(u32::MAX)
        };
        (side(cols, self.cell.width), side(rows, self.cell.height))
    }

    /// The cells a picture of `width` x `height` square pixels covers, rounded to the nearest
    /// (graphics: every cell it touches), at least one each way.
    pub fn cells(self, width: u32, height: u32) -> (u16, u16) {
        let (n, d) = self.unit();
        let count = |px: u32, cell: u16| {
            let (num, den) = (u64::from(px) * n, d * u64::from(cell).max(1));
            let v = if self.glyphs.is_none() {
                num.div_ceil(den)
            } else {
                (num + den / 2) / den
            };
            u16::try_from(v.max(1)).unwrap_or(u16::MAX)
        };
        (
            count(width, self.cell.width),
            count(height, self.cell.height),
        )
    }
}

/// The largest `(width, height)` with the source's aspect ratio that fits in `max_width` x
/// `max_height` pixels (at least 1x1). Viewers use it to letterbox the remote screen.
pub fn fit(src_width: u32, src_height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if src_width == 0 || src_height == 0 {
        return (max_width.max(1), max_height.max(1));
    }
    let by_width = u64::from(max_width) * u64::from(src_height) / u64::from(src_width);
    if by_width <= u64::from(max_height) {
        (max_width.max(1), (by_width as u32).max(1))
    } else {
        let w = u64::from(max_height) * u64::from(src_width) / u64::from(src_height);
        ((w as u32).max(1), max_height.max(1))
    }
}

/// Mark `area` of a ratatui buffer as drawn by graphics (sixel or kitty written beside
/// ratatui): its diff then leaves those cells alone instead of painting blanks over the
/// picture. Call it in the frame's draw, on the area the graphics view covers.
pub fn skip_cells(buf: &mut ratatui::buffer::Buffer, area: ratatui::layout::Rect) {
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_diff_option(ratatui::buffer::CellDiffOption::Skip);
            }
        }
    }
}

/// Peak signal-to-noise ratio of two pictures' RGB channels in dB (alpha ignored);
/// `f64::INFINITY` when identical, `None` when their sizes differ.
pub fn psnr(a: &Framebuffer, b: &Framebuffer) -> Option<f64> {
    if a.width() != b.width() || a.height() != b.height() {
        return None;
    }
    let mut sum: u64 = 0;
    for (p, q) in a.as_rgba().chunks_exact(4).zip(b.as_rgba().chunks_exact(4)) {
        for c in 0..3 {
            let d = i64::from(p[c]) - i64::from(q[c]);
            sum += (d * d) as u64;
        }
    }
    let n = u64::from(a.width()) * u64::from(a.height()) * 3;
    if sum == 0 || n == 0 {
        return Some(f64::INFINITY);
    }
    let mse = sum as f64 / n as f64;
    Some(10.0 * (255.0f64 * 255.0 / mse).log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_cells_are_left_to_graphics() {
        use ratatui::buffer::Buffer;
        use ratatui::layout::Rect as CellRect;
        let before = Buffer::empty(CellRect::new(0, 0, 4, 2));
        let mut after = Buffer::with_lines(["abcd", "efgh"]);
        skip_cells(&mut after, CellRect::new(1, 0, 2, 5));
        let changed: Vec<(u16, u16)> = before
            .diff(&after)
            .iter()
            .map(|(x, y, _)| (*x, *y))
            .collect();
        assert_eq!(changed, [(0, 0), (3, 0), (0, 1), (3, 1)]);
    }

    /// Every mode, on cells of 8x16, 8x17 and 10x20 pixels, in a console area of `cols` x
    /// `rows` cells: the remote fitted into the box asked, laid on cells, drawn in terminal
    /// pixels. Returns the drawn width over height divided by the remote's.
    fn drawn_aspect(glyphs: Option<Glyphs>, cell: CellSize, remote: (u32, u32)) -> f64 {
        let grid = CellGrid::new(glyphs, cell);
        let (bw, bh) = grid.request(120, 40);
        let (pw, ph) = fit(remote.0, remote.1, bw, bh);
        let (cols, rows) = grid.cells(pw, ph);
        assert!(
            cols <= 120 && rows <= 40,
            "{glyphs:?} {cell:?}: {cols}x{rows}"
        );
        let (w, h) = match glyphs {
            // Graphics draw the picture's own pixels.
            None => (f64::from(pw), f64::from(ph)),
            Some(_) => (
                f64::from(cols) * f64::from(cell.width),
                f64::from(rows) * f64::from(cell.height),
            ),
        };
        (w / h) / (f64::from(remote.0) / f64::from(remote.1))
    }

    const MODES: [Option<Glyphs>; 4] = [
        Some(Glyphs::HalfBlock),
        Some(Glyphs::Quadrant),
        Some(Glyphs::Sextant),
        None,
    ];
    const CELLS: [(u16, u16); 3] = [(8, 16), (8, 17), (10, 20)];

    #[test]
    fn a_square_is_drawn_square_in_every_mode() {
        for glyphs in MODES {
            for (cw, ch) in CELLS {
                let ratio = drawn_aspect(glyphs, CellSize::new(cw, ch), (600, 600));
                assert!(
                    (ratio - 1.0).abs() < 0.03,
                    "{glyphs:?} on {cw}x{ch} cells: a square drawn {ratio:.3} wide"
                );
            }
        }
    }

    #[test]
    fn a_desktop_keeps_its_aspect_in_every_mode() {
        for remote in [(1280, 800), (1920, 1080), (800, 1280)] {
            for glyphs in MODES {
                for (cw, ch) in CELLS {
                    let ratio = drawn_aspect(glyphs, CellSize::new(cw, ch), remote);
                    assert!(
                        (ratio - 1.0).abs() < 0.03,
                        "{remote:?} as {glyphs:?} on {cw}x{ch} cells: {ratio:.3} of its aspect"
                    );
                }
            }
        }
    }

    #[test]
    fn text_boxes_keep_every_glyph_pixel() {
        // The box is never coarser than the cells' own pixels along either axis.
        let grid = CellGrid::new(Some(Glyphs::Sextant), CellSize::new(8, 17));
        assert_eq!(grid.request(80, 24), (160, 102));
        let grid = CellGrid::new(Some(Glyphs::HalfBlock), CellSize::new(8, 16));
        assert_eq!(grid.request(80, 24), (80, 48));
        assert_eq!(grid.cells(80, 48), (80, 24));
        let grid = CellGrid::new(None, CellSize::new(10, 20));
        assert_eq!(grid.request(80, 24), (800, 480));
        assert_eq!(grid.cells(801, 480), (81, 24));
    }

    #[test]
    fn fit_keeps_the_aspect_ratio() {
        assert_eq!(fit(1920, 1080, 400, 400), (400, 225));
        assert_eq!(fit(1080, 1920, 400, 400), (225, 400));
        assert_eq!(fit(0, 10, 4, 4), (4, 4));
    }

    #[test]
    fn psnr_of_identical_and_different_pictures() {
        let a = Framebuffer::new(4, 4);
        assert_eq!(psnr(&a, &a), Some(f64::INFINITY));
        let mut b = a.clone();
        b.set_pixel(0, 0, [255, 255, 255, 255]);
        let db = psnr(&a, &b).unwrap_or_default();
        // One pixel of 16 fully wrong: MSE = 255^2 / 16, so 10*log10(16) dB.
        assert!((db - 12.04).abs() < 0.01, "{db}");
        assert_eq!(psnr(&a, &Framebuffer::new(2, 2)), None);
    }
}
