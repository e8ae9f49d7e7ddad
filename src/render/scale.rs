//! Area-averaging (box) scaling: each target pixel is the exact area-weighted mean of the source
//! pixels its box covers, partial pixels weighted by the covered fraction, in both axes.
//!
//! Along an axis of `S` source and `D` target pixels (both divided by their greatest common
//! divisor), target `t`'s box is `[t*S, (t+1)*S)` and source `s` is `[s*D, (s+1)*D)` in units of
//! `1/D` source pixel: every weight is a whole number (at most `D`, the pixels in between
//! weighing exactly `D`) and the box weighs `S`. Sums are exact integers and one rounded
//! division (by a reciprocal) ends each channel, so the result is the correctly rounded mean.
//! Upscaling is the same box filter: boxes narrower than a pixel blend only where they straddle
//! two. Alpha is ignored: screens are opaque.

use crate::frame::{Framebuffer, Rect};

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The source span `[start, end)` a target index's box touches along an axis of `src` -> `dst`
/// pixels (partly covered pixels included).
fn span(t: u32, src: u32, dst: u32) -> (u32, u32) {
    let start = (u64::from(t) * u64::from(src) / u64::from(dst)) as u32;
    let end = ((u64::from(t) + 1) * u64::from(src)).div_ceil(u64::from(dst)) as u32;
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

/// One axis of a scale, reduced by the sizes' common divisor: a whole source pixel weighs
/// `pixel` and a target box `area`.
#[derive(Clone, Copy)]
struct Axis {
    pixel: u32,
    area: u32,
}

/// Where one target pixel's box lies along an axis: source pixels `first..last`, the first and
/// the last weighted `first_weight` and `last_weight`, any in between `Axis::pixel` each. A box
/// inside one source pixel has `last == first + 1` and `last_weight == 0`.
#[derive(Clone, Copy, Debug)]
struct Span {
    first: u32,
    last: u32,
    first_weight: u32,
    last_weight: u32,
}

impl Axis {
    fn new(src: u32, dst: u32) -> Self {
        let g = gcd(src, dst).max(1);
        Self {
            pixel: dst / g,
            area: src / g,
        }
    }

    fn span(self, t: u32) -> Span {
        let start = u64::from(t) * u64::from(self.area);
        let end = start + u64::from(self.area);
        let pixel = u64::from(self.pixel);
        let first = start / pixel;
        let last = end.div_ceil(pixel);
        if last - first == 1 {
            return Span {
                first: first as u32,
                last: last as u32,
                first_weight: self.area,
                last_weight: 0,
            };
        }
        Span {
            first: first as u32,
            last: last as u32,
            first_weight: ((first + 1) * pixel - start) as u32,
            last_weight: (end - (last - 1) * pixel) as u32,
        }
    }
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
    let (xs, ys) = (Axis::new(sw, dw), Axis::new(sh, dh));
    // Per-axis weights once per call, for the columns in the rectangle only: a damaged tile
    // costs its own columns, not the whole width.
    let columns: Vec<Span> = (r.x..r.right()).map(|t| xs.span(t)).collect();
    let (first_col, last_col) = match (columns.first(), columns.last()) {
        (Some(f), Some(l)) => (f.first as usize, l.last as usize),
        _ => return,
    };
    let width = (last_col - first_col) * 4;
    // Vertical pass first: the rows wholly inside a box are summed plainly (contiguous, so it
    // vectorises) and weighted once with the partial first and last rows; then each target
    // pixel sums its columns of that weighted row the same way.
    let mut inner = vec![0u32; width];
    let mut acc = vec![0u32; width];
    let divider = Divider::new(u64::from(xs.area) * u64::from(ys.area));
    let src_px = src.as_rgba();
    let stride = sw as usize * 4;
    let row = |sy: u32| {
        let base = sy as usize * stride + first_col * 4;
        &src_px[base..base + width]
    };
    for ty in r.y..r.bottom() {
        let rows = ys.span(ty);
        let interior = rows.first + 1..rows.last.saturating_sub(1);
        inner.fill(0);
        for sy in interior.clone() {
            for (a, &p) in inner.iter_mut().zip(row(sy)) {
                *a += u32::from(p);
            }
        }
        // A box inside one row has no last row: `last_weight` is 0 and the row is its first.
        let (top, bottom) = (row(rows.first), row(rows.last - 1));
        let (wt, wb, wi) = (rows.first_weight, rows.last_weight, ys.pixel);
        if interior.is_empty() {
            for ((a, &t), &b) in acc.iter_mut().zip(top).zip(bottom) {
                *a = wt * u32::from(t) + wb * u32::from(b);
            }
        } else {
            for (((a, &i), &t), &b) in acc.iter_mut().zip(&inner).zip(top).zip(bottom) {
                *a = wi * i + wt * u32::from(t) + wb * u32::from(b);
            }
        }
        let start = (ty as usize * dw as usize + r.x as usize) * 4;
        let out = &mut dst.as_rgba_mut()[start..start + r.width as usize * 4];
        for (px, cols) in out.chunks_exact_mut(4).zip(&columns) {
            let at = |x: u32| (x as usize - first_col) * 4;
            let mut sum = [0u64; 3];
            if cols.last > cols.first + 2 {
                for a in acc[at(cols.first + 1)..at(cols.last - 1)].chunks_exact(4) {
                    sum[0] += u64::from(a[0]);
                    sum[1] += u64::from(a[1]);
                    sum[2] += u64::from(a[2]);
                }
            }
            let (l, rt) = (at(cols.first), at(cols.last - 1));
            let (wl, wr, wi) = (
                u64::from(cols.first_weight),
                u64::from(cols.last_weight),
                u64::from(xs.pixel),
            );
            for c in 0..3 {
                let total = wi * sum[c] + wl * u64::from(acc[l + c]) + wr * u64::from(acc[rt + c]);
                px[c] = divider.rounded(total);
            }
            px[3] = 255;
        }
    }
}

/// Rounded division of weighted channel sums by the box's total weight `n`, by multiplying
/// with a 64-bit reciprocal (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
/// 2019): exact for numerators under 2^32, which holds while `n` <= 2^24 since a sum is at
/// most `255 n`; larger boxes (beyond 8K screens) divide plainly. Three divisions a pixel
/// were a third of the scaling time.
struct Divider {
    n: u64,
    reciprocal: u64,
}

impl Divider {
    const FAST_LIMIT: u64 = 1 << 24;

    fn new(n: u64) -> Self {
        let n = n.max(1);
        Self {
            n,
            reciprocal: (u64::MAX / n).wrapping_add(1),
        }
    }

    fn rounded(&self, sum: u64) -> u8 {
        let x = sum + self.n / 2;
        let q = if self.n <= Self::FAST_LIMIT && self.n > 1 {
            ((u128::from(self.reciprocal) * u128::from(x)) >> 64) as u64
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
        let fast = Divider::FAST_LIMIT;
        for n in [
            1u64,
            2,
            3,
            7,
            9,
            48,
            1920,
            230_400,
            4_095_999,
            fast - 1,
            fast,
            fast + 1,
        ] {
            let d = Divider::new(n);
            for v in [0u64, 1, 127, 128, 254, 255] {
                for frac in [0, n / 3, n / 2, n - 1] {
                    let sum = (v * n + frac).min(255 * n);
                    assert_eq!(u64::from(d.rounded(sum)), (sum + n / 2) / n, "{sum}/{n}");
                }
            }
        }
    }

    /// A picture with detail at every pixel (no two neighbours alike).
    fn noise(w: u32, h: u32) -> Framebuffer {
        let mut fb = Framebuffer::new(w, h);
        let mut seed = 0x2545_f491u32;
        for y in 0..h {
            for x in 0..w {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let [a, b, c, _] = seed.to_le_bytes();
                fb.set_pixel(x, y, [a, b, c, 255]);
            }
        }
        fb
    }

    /// The box filter from its definition, in f64: each source pixel weighted by the area of
    /// the target box over it.
    fn reference(src: &Framebuffer, w: u32, h: u32) -> Vec<[f64; 3]> {
        let (sx, sy) = (
            f64::from(src.width()) / f64::from(w),
            f64::from(src.height()) / f64::from(h),
        );
        let overlap = |a: f64, b: f64, s: u32| b.min(f64::from(s) + 1.0) - a.max(f64::from(s));
        let mut out = Vec::new();
        for ty in 0..h {
            let (y0, y1) = (f64::from(ty) * sy, f64::from(ty + 1) * sy);
            for tx in 0..w {
                let (x0, x1) = (f64::from(tx) * sx, f64::from(tx + 1) * sx);
                let mut sum = [0f64; 3];
                for y in y0.floor() as u32..(y1.ceil() as u32).min(src.height()) {
                    for x in x0.floor() as u32..(x1.ceil() as u32).min(src.width()) {
                        let wgt = overlap(x0, x1, x) * overlap(y0, y1, y);
                        let p = src.pixel(x, y);
                        for c in 0..3 {
                            sum[c] += wgt * f64::from(p[c]);
                        }
                    }
                }
                out.push(sum.map(|v| v / (sx * sy)));
            }
        }
        out
    }

    #[test]
    fn matches_the_exact_area_weighted_mean() {
        // Fractional boxes both ways, whole boxes, an upscale by a non-integer factor, and
        // one axis up while the other goes down.
        for (sw, sh, dw, dh) in [
            (1920, 1080, 203, 117),
            (640, 360, 200, 120),
            (97, 61, 13, 7),
            (30, 20, 47, 33),
            (40, 9, 17, 20),
        ] {
            let src = noise(sw, sh);
            let ours = scale(&src, dw, dh);
            let exact = reference(&src, dw, dh);
            let mut worst = 0f64;
            for (i, want) in exact.iter().enumerate() {
                let got = ours.pixel(i as u32 % dw, i as u32 / dw);
                for c in 0..3 {
                    worst = worst.max((f64::from(got[c]) - want[c]).abs());
                }
            }
            // Correctly rounded: never more than half a level off (plus f64's own error).
            assert!(
                worst <= 0.5 + 1e-9,
                "{sw}x{sh} -> {dw}x{dh}: {worst} levels off"
            );
        }
    }

    #[test]
    fn a_damaged_region_alone_gives_the_full_scale_pixels() {
        // Partial pixels on every box edge: the region's edge boxes read source pixels that
        // are partly outside the damage, and must weigh them as the full scale does.
        for (sw, sh, dw, dh) in [(1920u32, 1080u32, 203u32, 117u32), (50, 40, 173, 91)] {
            let before = noise(sw, sh);
            let mut after = before.clone();
            let damage = Rect::new(sw / 3, sh / 4, sw / 7 + 1, sh / 5 + 1);
            after.fill(damage, [255, 255, 255, 255]);
            let mut dst = scale(&before, dw, dh);
            let touched = scale_damaged(&after, &mut dst, &[damage]);
            assert_eq!(dst, scale(&after, dw, dh), "{sw}x{sh} -> {dw}x{dh}");
            assert_eq!(touched.len(), 1);
            assert!(touched[0].width < dw / 2 && touched[0].height < dh / 2);
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
