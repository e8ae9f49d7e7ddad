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
    /// What most terminals use at common font sizes; the guess when the terminal will not say.
    pub const DEFAULT: CellSize = CellSize {
        width: 10,
        height: 20,
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
