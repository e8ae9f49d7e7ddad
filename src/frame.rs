//! Pictures of a screen: an RGBA framebuffer and the rectangles of it that changed. The agent's
//! screen sources fill one; the console's renderer draws one. Pure data, no I/O.

/// A rectangle in pixels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    pub fn right(&self) -> u32 {
        self.x.saturating_add(self.width)
    }

    pub fn bottom(&self) -> u32 {
        self.y.saturating_add(self.height)
    }

    /// The overlap of two rectangles (empty when they do not touch).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        if right <= x || bottom <= y {
            return Rect::default();
        }
        Rect::new(x, y, right - x, bottom - y)
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        Rect::new(
            x,
            y,
            self.right().max(other.right()) - x,
            self.bottom().max(other.bottom()) - y,
        )
    }
}

/// An RGBA8 picture, rows top to bottom, 4 bytes a pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl std::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Framebuffer({}x{})", self.width, self.height)
    }
}

impl Framebuffer {
    /// A black picture.
    pub fn new(width: u32, height: u32) -> Self {
        let mut pixels = vec![0u8; (width as usize) * (height as usize) * 4];
        for px in pixels.chunks_exact_mut(4) {
            px[3] = 255;
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Wrap RGBA bytes; `None` when their length does not match the size.
    pub fn from_rgba(width: u32, height: u32, pixels: Vec<u8>) -> Option<Self> {
        (pixels.len() == (width as usize) * (height as usize) * 4).then_some(Self {
            width,
            height,
            pixels,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// All pixels, RGBA, row by row.
    pub fn as_rgba(&self) -> &[u8] {
        &self.pixels
    }

    pub fn as_rgba_mut(&mut self) -> &mut [u8] {
        &mut self.pixels
    }

    /// One row's bytes.
    pub fn row(&self, y: u32) -> &[u8] {
        let stride = self.width as usize * 4;
        let start = y as usize * stride;
        &self.pixels[start..start + stride]
    }

    /// The pixel at (x, y) as `[r, g, b, a]`; black outside the picture.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        if x >= self.width || y >= self.height {
            return [0, 0, 0, 255];
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }

    /// Set one pixel; ignored outside the picture.
    pub fn set_pixel(&mut self, x: u32, y: u32, rgba: [u8; 4]) {
        if x >= self.width || y >= self.height {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.pixels[i..i + 4].copy_from_slice(&rgba);
    }

    /// Fill a rectangle (clipped to the picture).
    pub fn fill(&mut self, rect: Rect, rgba: [u8; 4]) {
        let r = rect.intersect(&self.bounds());
        for y in r.y..r.bottom() {
            let start = (y as usize * self.width as usize + r.x as usize) * 4;
            for px in self.pixels[start..start + r.width as usize * 4].chunks_exact_mut(4) {
                px.copy_from_slice(&rgba);
            }
        }
    }

    /// Copy `src` into this picture with its top-left corner at (x, y), clipped.
    pub fn blit(&mut self, x: u32, y: u32, src: &Framebuffer) {
        let target = Rect::new(x, y, src.width, src.height).intersect(&self.bounds());
        for row in 0..target.height {
            let from = (row as usize * src.width as usize) * 4;
            let to = ((target.y + row) as usize * self.width as usize + target.x as usize) * 4;
            let len = target.width as usize * 4;
            self.pixels[to..to + len].copy_from_slice(&src.pixels[from..from + len]);
        }
    }

    /// A copy of one rectangle (clipped).
    pub fn crop(&self, rect: Rect) -> Framebuffer {
        let r = rect.intersect(&self.bounds());
        let mut out = Vec::with_capacity(r.width as usize * r.height as usize * 4);
        for y in r.y..r.bottom() {
            let start = (y as usize * self.width as usize + r.x as usize) * 4;
            out.extend_from_slice(&self.pixels[start..start + r.width as usize * 4]);
        }
        Framebuffer {
            width: r.width,
            height: r.height,
            pixels: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rects_intersect_and_unite() {
        let a = Rect::new(0, 0, 10, 10);
        let b = Rect::new(5, 5, 10, 10);
        assert_eq!(a.intersect(&b), Rect::new(5, 5, 5, 5));
        assert_eq!(a.union(&b), Rect::new(0, 0, 15, 15));
        assert!(a.intersect(&Rect::new(20, 20, 1, 1)).is_empty());
        assert_eq!(Rect::default().union(&b), b);
    }

    #[test]
    fn framebuffer_fill_blit_crop() {
        let mut fb = Framebuffer::new(8, 4);
        assert_eq!(fb.pixel(0, 0), [0, 0, 0, 255]);
        fb.fill(Rect::new(2, 1, 100, 2), [255, 0, 0, 255]);
        assert_eq!(fb.pixel(7, 2), [255, 0, 0, 255]);
        assert_eq!(fb.pixel(1, 1), [0, 0, 0, 255]);
        let piece = fb.crop(Rect::new(1, 1, 3, 1));
        assert_eq!((piece.width(), piece.height()), (3, 1));
        assert_eq!(piece.pixel(0, 0), [0, 0, 0, 255]);
        assert_eq!(piece.pixel(1, 0), [255, 0, 0, 255]);
        let mut other = Framebuffer::new(4, 4);
        other.blit(3, 3, &piece);
        assert_eq!(other.pixel(3, 3), [0, 0, 0, 255]);
        assert!(Framebuffer::from_rgba(2, 2, vec![0; 15]).is_none());
    }
}
