//! Area-averaging (box) scaling: each target pixel is the mean of the source pixels under it.
//! Box boundaries are rounded to whole source pixels, which keeps the inner loop to plain sums
//! (a 1920x1080 frame to 200x120 pixels in about a millisecond) at a cost too small to see at
//! these ratios. Upscaling degrades to nearest neighbour. Alpha is ignored: screens are opaque.

use crate::frame::{Framebuffer, Rect};

/// The source span `[start, end)` under target index `t` along an axis of `src` -> `dst` pixels.
fn span(t: u32, src: u32, dst: u32) -> (u32, u32) {
    let start = (u64::from(t) * u64::from(src) / u64::from(dst)) as u32;
    let end = ((u64::from(t) + 1) * u64::from(src) / u64::from(dst)) as u32;
    (start, end.max(start + 1).min(src))
}

/// The target index range `[first, last)` whose spans touch source `[start, end)`.
fn target_range(start: u32, end: u32, src: u32, dst: u32) -> (u32, u32) {
    let mut first = ((u64::from(start) * u64::from(dst) / u64::from(src)) as u32).min(dst);
    while first > 0 && span(first - 1, src, dst).1 > start {
        first -= 1;
    }
    while first < dst && span(first, src, dst).1 <= start {
        first += 1;
    }
    let mut last = (u64::from(end) * u64::from(dst)).div_ceil(u64::from(src)) as u32;
    last = last.min(dst);
    while last < dst && span(last, src, dst).0 < end {
        last += 1;
    }
    (first, last.max(first))
}

/// `src` scaled to `width` x `height`.
pub fn scale(src: &Framebuffer, width: u32, height: u32) -> Framebuffer {
    let mut dst = Framebuffer::new(width, height);
    scale_into(src, &mut dst);
    dst
}

/// Re-scale all of `src` into `dst`, at `dst`'s size (no allocation).
pub fn scale_into(src: &Framebuffer, dst: &mut Framebuffer) {
    let all = dst.bounds();
    scale_rect(src, dst, all);
}

/// Re-scale into `dst` only the target pixels that the source `damage` rectangles touch;
/// returns those target rectangles (merged where they overlap). `dst` keeps its size.
pub fn scale_damaged(src: &Framebuffer, dst: &mut Framebuffer, damage: &[Rect]) -> Vec<Rect> {
    let rects = target_damage(src, dst, damage);
    for r in &rects {
        scale_rect(src, dst, *r);
    }
    rects
}

/// The target rectangles of `dst` that source `damage` touches, merged where they overlap.
pub fn target_damage(src: &Framebuffer, dst: &Framebuffer, damage: &[Rect]) -> Vec<Rect> {
    let (sw, sh, dw, dh) = (src.width(), src.height(), dst.width(), dst.height());
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return Vec::new();
    }
    let rects = damage.iter().filter_map(|d| {
        let d = d.intersect(&src.bounds());
        if d.is_empty() {
            return None;
        }
        let (x0, x1) = target_range(d.x, d.right(), sw, dw);
        let (y0, y1) = target_range(d.y, d.bottom(), sh, dh);
        let r = Rect::new(x0, y0, x1 - x0, y1 - y0);
        (!r.is_empty()).then_some(r)
    });
    merge_overlapping(rects)
}

/// Union rectangles that overlap or touch until none do. Few rectangles per frame, so the
/// quadratic pass is cheap; it keeps a damaged area from being encoded twice.
pub fn merge_overlapping(rects: impl IntoIterator<Item = Rect>) -> Vec<Rect> {
    let mut out: Vec<Rect> = Vec::new();
    for r in rects {
        let mut r = r;
        loop {
            let touching = out.iter().position(|o| {
                o.x <= r.right() && r.x <= o.right() && o.y <= r.bottom() && r.y <= o.bottom()
            });
            match touching {
                Some(i) => r = r.union(&out.swap_remove(i)),
                None => break,
            }
        }
        out.push(r);
    }
    out
}

/// Box-average the target rectangle `r` of `dst` from `src`.
fn scale_rect(src: &Framebuffer, dst: &mut Framebuffer, r: Rect) {
    let (sw, sh, dw, dh) = (src.width(), src.height(), dst.width(), dst.height());
    let r = r.intersect(&dst.bounds());
    if sw == 0 || sh == 0 || r.is_empty() {
        return;
    }
    if sw == dw && sh == dh {
        // Same size: a copy, no averaging.
        for y in r.y..r.bottom() {
            let from = &src.row(y)[r.x as usize * 4..r.right() as usize * 4];
            let start = (y as usize * dw as usize + r.x as usize) * 4;
            dst.as_rgba_mut()[start..start + from.len()].copy_from_slice(from);
        }
        return;
    }
    // Vertical pass first: whole source rows summed into one accumulator row (contiguous,
    // so it vectorises), then each target pixel sums its columns of that row.
    let xs: Vec<(usize, usize)> = (r.x..r.right())
        .map(|tx| {
            let (a, b) = span(tx, sw, dw);
            (a as usize, b as usize)
        })
        .collect();
    let (first_col, last_col) = match (xs.first(), xs.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => return,
    };
    let mut acc = vec![0u32; (last_col - first_col) * 4];
    let src_px = src.as_rgba();
    let stride = sw as usize * 4;
    for ty in r.y..r.bottom() {
        let (y0, y1) = span(ty, sh, dh);
        acc.fill(0);
        for sy in y0..y1 {
            let base = sy as usize * stride;
            let row = &src_px[base + first_col * 4..base + last_col * 4];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += u32::from(p);
            }
        }
        let rows = (y1 - y0) as u64;
        let start = (ty as usize * dw as usize + r.x as usize) * 4;
        let out = &mut dst.as_rgba_mut()[start..start + r.width as usize * 4];
        let mut divider = Divider::default();
        for (px, &(x0, x1)) in out.chunks_exact_mut(4).zip(&xs) {
            let mut sum = [0u32; 3];
            for a in acc[(x0 - first_col) * 4..(x1 - first_col) * 4].chunks_exact(4) {
                sum[0] += a[0];
                sum[1] += a[1];
                sum[2] += a[2];
            }
            divider.set((x1 - x0) as u64 * rows);
            px[0] = divider.rounded(sum[0]);
            px[1] = divider.rounded(sum[1]);
            px[2] = divider.rounded(sum[2]);
            px[3] = 255;
        }
    }
}

/// Rounded division of channel sums by a box's pixel count, by multiplying with a reciprocal:
/// three divisions a pixel were a third of the time. Box sizes repeat (9, 10, 9, ...), so the
/// reciprocal is kept until the count changes.
#[derive(Default)]
struct Divider {
    n: u64,
    reciprocal: u64,
}

impl Divider {
    fn set(&mut self, n: u64) {
        if n != self.n {
            self.n = n.max(1);
            self.reciprocal = (1u64 << 32).div_ceil(self.n);
        }
    }

    fn rounded(&self, sum: u32) -> u8 {
        let x = u64::from(sum) + self.n / 2;
        // Exact while x * n < 2^32, which holds for boxes under 4096 pixels (x <= 256 n).
        let q = if self.n < 4096 {
            (x * self.reciprocal) >> 32
        } else {
            x / self.n
        };
        q.min(255) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(w: u32, h: u32) -> Framebuffer {
        let mut fb = Framebuffer::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let v = if (x + y) % 2 == 0 { 255 } else { 0 };
                fb.set_pixel(x, y, [v, (x * 7 % 256) as u8, (y * 3 % 256) as u8, 255]);
            }
        }
        fb
    }

    #[test]
    fn averages_boxes() {
        let mut fb = Framebuffer::new(4, 2);
        fb.fill(Rect::new(0, 0, 2, 2), [100, 0, 0, 255]);
        fb.set_pixel(0, 0, [200, 40, 0, 255]);
        fb.fill(Rect::new(2, 0, 2, 2), [0, 0, 255, 255]);
        let s = scale(&fb, 2, 1);
        assert_eq!(s.pixel(0, 0), [125, 10, 0, 255]);
        assert_eq!(s.pixel(1, 0), [0, 0, 255, 255]);
    }

    #[test]
    fn checkerboard_averages_to_grey() {
        let s = scale(&checker(1920, 1080), 200, 120);
        let p = s.pixel(57, 33);
        assert!((120..=135).contains(&p[0]), "{p:?}");
    }

    #[test]
    fn upscale_is_nearest_and_same_size_is_a_copy() {
        let src = checker(3, 2);
        let up = scale(&src, 6, 4);
        assert_eq!(up.pixel(5, 3), src.pixel(2, 1));
        assert_eq!(scale(&src, 3, 2), src);
    }

    #[test]
    fn damaged_rescale_equals_a_full_rescale() {
        let before = checker(1920, 1080);
        let mut dst = scale(&before, 203, 117);
        let mut after = before.clone();
        let damage = [Rect::new(500, 300, 64, 64), Rect::new(1900, 1070, 50, 50)];
        after.fill(damage[0], [1, 2, 3, 255]);
        after.fill(damage[1], [9, 9, 9, 255]);
        let touched = scale_damaged(&after, &mut dst, &damage);
        assert_eq!(dst, scale(&after, 203, 117));
        assert_eq!(touched.len(), 2);
        let area: u32 = touched.iter().map(|r| r.width * r.height).sum();
        assert!(
            area < 203 * 117 / 50,
            "only the damage is re-scaled: {touched:?}"
        );
    }

    #[test]
    fn damage_maps_to_every_touched_target_pixel() {
        for (sw, dw) in [(1920u32, 200u32), (100, 300), (7, 3), (1080, 120)] {
            for start in 0..sw.min(40) {
                let (a, b) = target_range(start, start + 1, sw, dw);
                for t in 0..dw {
                    let (s0, s1) = span(t, sw, dw);
                    let touches = s0 <= start && start < s1;
                    assert_eq!(touches, (a..b).contains(&t), "{sw}->{dw} px {start} t {t}");
                }
            }
        }
    }

    #[test]
    fn reciprocal_division_is_exact() {
        let mut d = Divider::default();
        for n in [1u64, 2, 3, 7, 9, 10, 90, 100, 255, 4095, 4096, 9999] {
            d.set(n);
            for v in [0u64, 1, 127, 128, 254, 255] {
                for frac in [0, n / 3, n / 2, n - 1] {
                    let sum = (v * n + frac).min(255 * n);
                    assert_eq!(
                        u64::from(d.rounded(sum as u32)),
                        (sum + n / 2) / n,
                        "{sum}/{n}"
                    );
                }
            }
        }
    }

    #[test]
    fn merges_overlapping_rects() {
        let m = merge_overlapping([
            Rect::new(0, 0, 10, 10),
            Rect::new(50, 50, 5, 5),
            Rect::new(5, 5, 10, 10),
        ]);
        assert_eq!(m.len(), 2);
        assert!(m.contains(&Rect::new(0, 0, 15, 15)));
    }
}
