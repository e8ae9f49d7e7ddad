//! Damage: which rectangles of a picture changed. Finding them by comparing tiles, and keeping
//! lists of them short (a viewer pays per rectangle, and overlapping ones send pixels twice).

use crate::frame::{Framebuffer, Rect};

/// At most this many rectangles in one coalesced list; past it, the closest ones merge.
pub const MAX_RECTS: usize = 32;

/// Side of the square tiles that [`diff_tiles`] compares.
pub const TILE: u32 = 32;

/// Clip `rects` to `bounds`, drop empty ones, merge touching runs and overlaps, and keep at most
/// [`MAX_RECTS`]. The result covers every pixel the input covered (within `bounds`).
pub fn coalesce(rects: &[Rect], bounds: Rect) -> Vec<Rect> {
    let mut out: Vec<Rect> = rects
        .iter()
        .map(|r| r.intersect(&bounds))
        .filter(|r| !r.is_empty())
        .collect();
    if out.len() <= 1 {
        return out;
    }
    // Rows of tiles first: joining same-height neighbours in a row, then same-width
    // neighbours in a column, turns a tile diff into a few bands cheaply.
    out.sort_by_key(|r| (r.y, r.height, r.x));
    out = join_runs(out, |a, b| {
        a.y == b.y && a.height == b.height && a.right() >= b.x && b.right() >= a.x
    });
    out.sort_by_key(|r| (r.x, r.width, r.y));
    out = join_runs(out, |a, b| {
        a.x == b.x && a.width == b.width && a.bottom() >= b.y && b.bottom() >= a.y
    });
    // Overlaps: merging them never costs more than the union's spare area, which is small
    // next to sending the shared pixels twice. Merging to the cap can make new overlaps, so
    // the two alternate until neither applies.
    loop {
        merge_overlaps(&mut out);
        if out.len() <= MAX_RECTS {
            break;
        }
        let (mut best, mut cost) = ((0, 1), u64::MAX);
        for i in 0..out.len() {
            for j in i + 1..out.len() {
                let waste =
                    area(&out[i].union(&out[j])).saturating_sub(area(&out[i]) + area(&out[j]));
                if waste < cost {
                    (best, cost) = ((i, j), waste);
                }
            }
        }
        out[best.0] = out[best.0].union(&out[best.1]);
        out.swap_remove(best.1);
    }
    out
}

fn merge_overlaps(out: &mut Vec<Rect>) {
    let mut i = 0;
    while i < out.len() {
        let mut j = i + 1;
        let mut grew = false;
        while j < out.len() {
            if out[i].intersect(&out[j]).is_empty() {
                j += 1;
            } else {
                out[i] = out[i].union(&out[j]);
                out.swap_remove(j);
                grew = true;
            }
        }
        // A grown rectangle may now overlap ones already passed: look at all again.
        if grew {
            i = 0;
        } else {
            i += 1;
        }
    }
}

fn join_runs(sorted: Vec<Rect>, joinable: impl Fn(&Rect, &Rect) -> bool) -> Vec<Rect> {
    let mut out: Vec<Rect> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if joinable(last, &r) => *last = last.union(&r),
            _ => out.push(r),
        }
    }
    out
}

fn area(r: &Rect) -> u64 {
    u64::from(r.width) * u64::from(r.height)
}

/// The [`TILE`]-sized tiles inside `area` where `old` and `new` differ, coalesced. Both
/// pictures must have the same size (otherwise the whole of `new` is returned).
pub fn diff_tiles(old: &Framebuffer, new: &Framebuffer, area: Rect) -> Vec<Rect> {
    if old.width() != new.width() || old.height() != new.height() {
        return vec![new.bounds()];
    }
    let area = area.intersect(&new.bounds());
    let mut changed = Vec::new();
    let mut ty = area.y;
    while ty < area.bottom() {
        let th = TILE.min(area.bottom() - ty);
        let mut tx = area.x;
        while tx < area.right() {
            let tw = TILE.min(area.right() - tx);
            let (a, b) = (tx as usize * 4, (tx + tw) as usize * 4);
            if (ty..ty + th).any(|y| old.row(y)[a..b] != new.row(y)[a..b]) {
                changed.push(Rect::new(tx, ty, tw, th));
            }
            tx += tw;
        }
        ty += th;
    }
    coalesce(&changed, new.bounds())
}

/// Copy the pixels of `rect` from `src` into `dst` (same size; clipped).
pub fn copy_rect(dst: &mut Framebuffer, src: &Framebuffer, rect: Rect) {
    let r = rect.intersect(&src.bounds()).intersect(&dst.bounds());
    let stride = src.width() as usize * 4;
    let (a, b) = (r.x as usize * 4, r.right() as usize * 4);
    for y in r.y..r.bottom() {
        let start = y as usize * stride;
        dst.as_rgba_mut()[start + a..start + b].copy_from_slice(&src.row(y)[a..b]);
    }
}

/// Whether every pixel that differs between `old` and `new` lies inside one of `damage`.
pub fn covers_changes(old: &Framebuffer, new: &Framebuffer, damage: &[Rect]) -> bool {
    (0..new.height()).all(|y| {
        (0..new.width()).all(|x| {
            old.pixel(x, y) == new.pixel(x, y)
                || damage
                    .iter()
                    .any(|r| x >= r.x && x < r.right() && y >= r.y && y < r.bottom())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(rects: &[Rect], x: u32, y: u32) -> bool {
        rects
            .iter()
            .any(|r| x >= r.x && x < r.right() && y >= r.y && y < r.bottom())
    }

    #[test]
    fn coalesce_joins_tiles_into_bands_and_keeps_coverage() {
        let bounds = Rect::new(0, 0, 320, 320);
        let tiles: Vec<Rect> = (0..4)
            .flat_map(|ty| (0..5).map(move |tx| Rect::new(tx * 32, ty * 32, 32, 32)))
            .collect();
        assert_eq!(coalesce(&tiles, bounds), vec![Rect::new(0, 0, 160, 128)]);
        let scattered: Vec<Rect> = (0..100)
            .map(|i| Rect::new((i * 37) % 300, (i * 53) % 300, 5, 7))
            .collect();
        let out = coalesce(&scattered, bounds);
        assert!(out.len() <= MAX_RECTS);
        for r in &scattered {
            assert!(covered(&out, r.x, r.y) && covered(&out, r.right() - 1, r.bottom() - 1));
        }
        for (i, a) in out.iter().enumerate() {
            for b in &out[i + 1..] {
                assert!(a.intersect(b).is_empty(), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn coalesce_clips_and_drops_empty() {
        let bounds = Rect::new(0, 0, 10, 10);
        let out = coalesce(&[Rect::new(8, 8, 5, 5), Rect::new(3, 3, 0, 4)], bounds);
        assert_eq!(out, vec![Rect::new(8, 8, 2, 2)]);
    }

    #[test]
    fn diff_tiles_finds_changed_pixels() {
        let old = Framebuffer::new(100, 70);
        let mut new = old.clone();
        new.set_pixel(40, 65, [1, 2, 3, 255]);
        new.set_pixel(99, 0, [1, 2, 3, 255]);
        let damage = diff_tiles(&old, &new, new.bounds());
        assert!(covers_changes(&old, &new, &damage));
        assert!(damage.iter().all(|r| r.width <= TILE && r.height <= TILE));
        assert!(diff_tiles(&old, &old, old.bounds()).is_empty());
        let mut copy = old.clone();
        for r in &damage {
            copy_rect(&mut copy, &new, *r);
        }
        assert_eq!(copy, new);
    }
}
