//! A deterministic desktop-like picture for benchmarks and tests: a gradient wallpaper, an icon
//! grid with labels, overlapping windows with title bars, light and dark text (anti-aliased,
//! several colours), a smooth "photo", and a taskbar. The same bytes on every run.

use super::scale::scale;
use crate::frame::{Framebuffer, Rect};

const W: u32 = 1920;
const H: u32 = 1080;

/// The picture at `width` x `height` (drawn at 1920x1080, then box-scaled).
pub fn desktop(width: u32, height: u32) -> Framebuffer {
    let full = desktop_1080p();
    if (width, height) == (W, H) {
        full
    } else {
        scale(&full, width, height)
    }
}

/// A 16x16 arrow pointer (white, black outline) with its tip at (x, y), clipped.
pub fn draw_pointer(fb: &mut Framebuffer, x: u32, y: u32) {
    const ARROW: [&str; 16] = [
        "X               ",
        "XX              ",
        "X.X             ",
        "X..X            ",
        "X...X           ",
        "X....X          ",
        "X.....X         ",
        "X......X        ",
        "X.......X       ",
        "X........X      ",
        "X.....XXXXX     ",
        "X..X..X         ",
        "X.X X..X        ",
        "XX  X..X        ",
        "X    X..X       ",
        "     XXXX       ",
    ];
    for (dy, row) in ARROW.iter().enumerate() {
        for (dx, c) in row.bytes().enumerate() {
            let rgba = match c {
                b'X' => [0, 0, 0, 255],
                b'.' => [255, 255, 255, 255],
                _ => continue,
            };
            fb.set_pixel(x + dx as u32, y + dy as u32, rgba);
        }
    }
}

/// A small deterministic random source (xorshift64*), so the picture never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

fn blend(a: [u8; 4], b: [u8; 4], t: u32) -> [u8; 4] {
    let mix = |x: u8, y: u8| ((u32::from(x) * (256 - t) + u32::from(y) * t) >> 8) as u8;
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]), 255]
}

fn desktop_1080p() -> Framebuffer {
    let mut fb = Framebuffer::new(W, H);
    wallpaper(&mut fb);
    icons(&mut fb);
    // A browser-like window with dark text on white.
    window(&mut fb, Rect::new(300, 80, 900, 600), [52, 101, 164, 255]);
    text(
        &mut fb,
        Rect::new(316, 128, 868, 540),
        [255, 255, 255, 255],
        &[[30, 30, 30, 255], [30, 30, 30, 255], [20, 80, 200, 255]],
        1,
    );
    // An editor with syntax colours on a dark background, overlapping the first.
    window(&mut fb, Rect::new(1000, 300, 800, 560), [60, 60, 60, 255]);
    fb.fill(Rect::new(1001, 333, 40, 526), [37, 37, 38, 255]);
    text(
        &mut fb,
        Rect::new(1004, 336, 34, 520),
        [37, 37, 38, 255],
        &[[133, 133, 133, 255]],
        2,
    );
    text(
        &mut fb,
        Rect::new(1048, 336, 748, 520),
        [30, 30, 30, 255],
        &[
            [212, 212, 212, 255],
            [86, 156, 214, 255],
            [206, 145, 120, 255],
            [106, 153, 85, 255],
            [197, 134, 192, 255],
        ],
        3,
    );
    // An image viewer with a smooth photo-like picture.
    window(&mut fb, Rect::new(150, 640, 620, 340), [90, 90, 110, 255]);
    photo(&mut fb, Rect::new(151, 673, 618, 306));
    taskbar(&mut fb);
    fb
}

fn wallpaper(fb: &mut Framebuffer) {
    for y in 0..H {
        for x in 0..W {
            let r = 20 + 50 * x / W;
            let g = 50 + 90 * y / H;
            let b = 110 + 110 * (x + y) / (W + H);
            fb.set_pixel(x, y, [r as u8, g as u8, b as u8, 255]);
        }
    }
}

fn icons(fb: &mut Framebuffer) {
    let hues: [[u8; 4]; 6] = [
        [220, 80, 60, 255],
        [240, 180, 40, 255],
        [80, 180, 90, 255],
        [60, 140, 220, 255],
        [150, 90, 200, 255],
        [230, 230, 230, 255],
    ];
    let mut rng = Rng(0x1C0);
    for col in 0..2u32 {
        for row in 0..7u32 {
            let x = 30 + col * 120;
            let y = 30 + row * 130;
            let hue = hues[((row + col * 3) % 6) as usize];
            // A rounded square with a lighter disc inside.
            for dy in 0..64u32 {
                for dx in 0..64u32 {
                    let corner = |a: u32| a.min(63 - a);
                    let (cx, cy) = (corner(dx), corner(dy));
                    if cx < 8 && cy < 8 && (8 - cx) * (8 - cx) + (8 - cy) * (8 - cy) > 64 {
                        continue;
                    }
                    let (ox, oy) = (dx as i32 - 32, dy as i32 - 32);
                    let d = ox * ox + oy * oy;
                    let c = if d < 300 {
                        blend(hue, [255, 255, 255, 255], 150)
                    } else if d < 400 {
                        blend(hue, [255, 255, 255, 255], 60)
                    } else {
                        hue
                    };
                    fb.set_pixel(x + dx, y + dy, c);
                }
            }
            let label_len = 30 + rng.below(60);
            let label = Rect::new(x + 32 - label_len / 2, y + 70, label_len, 14);
            let bg = fb.pixel(label.x, label.y);
            text(fb, label, bg, &[[255, 255, 255, 255]], 100 + row + col * 7);
        }
    }
}

fn window(fb: &mut Framebuffer, r: Rect, title: [u8; 4]) {
    // Shadow, frame, title bar with a gradient, three buttons, white body.
    let shadow = Rect::new(r.x + 6, r.y + 6, r.width, r.height);
    for y in shadow.y..shadow.bottom().min(H) {
        for x in shadow.x..shadow.right().min(W) {
            let under = fb.pixel(x, y);
            fb.set_pixel(x, y, blend(under, [0, 0, 0, 255], 90));
        }
    }
    fb.fill(r, [200, 200, 200, 255]);
    for y in 0..32 {
        let c = blend(title, [255, 255, 255, 255], 64 - y * 2);
        fb.fill(Rect::new(r.x + 1, r.y + 1 + y, r.width - 2, 1), c);
    }
    for (i, c) in [[237, 106, 94, 255], [245, 191, 79, 255], [98, 197, 84, 255]]
        .iter()
        .enumerate()
    {
        let cx = r.right() - 20 - 22 * i as u32;
        let cy = r.y + 16;
        for dy in 0..13u32 {
            for dx in 0..13u32 {
                let (ox, oy) = (dx as i32 - 6, dy as i32 - 6);
                if ox * ox + oy * oy <= 36 {
                    fb.set_pixel(cx - 6 + dx, cy - 6 + dy, *c);
                }
            }
        }
    }
    let title_text = Rect::new(r.x + 12, r.y + 10, r.width / 3, 14);
    text(fb, title_text, title, &[[255, 255, 255, 255]], r.x + r.y);
    fb.fill(
        Rect::new(r.x + 1, r.y + 33, r.width - 2, r.height - 34),
        [255, 255, 255, 255],
    );
}

/// Text-like glyphs: random 5x7 bitmaps in 7x14 cells, words of 2 to 9 glyphs, ragged lines,
/// a soft right edge on each stroke (as anti-aliasing leaves), colours picked per word.
fn text(fb: &mut Framebuffer, r: Rect, bg: [u8; 4], colors: &[[u8; 4]], seed: u32) {
    fb.fill(r, bg);
    let mut glyphs = [[0u8; 7]; 64];
    let mut shapes = Rng(0x5EED);
    for g in glyphs.iter_mut() {
        for row in g.iter_mut() {
            *row = (shapes.next() & 0x1F) as u8;
        }
    }
    let mut rng = Rng(0x9E37_79B9 ^ u64::from(seed).wrapping_mul(0x1_0000_0001));
    let (gw, lh) = (7u32, 14u32);
    let mut y = r.y;
    while y + lh <= r.bottom() {
        let line_end = r.x + r.width * (50 + rng.below(50)) / 100;
        let mut x = r.x;
        while x + gw <= line_end {
            let word = 2 + rng.below(8);
            let color = colors[rng.below(colors.len() as u32) as usize];
            for _ in 0..word {
                if x + gw > line_end {
                    break;
                }
                let g = &glyphs[rng.below(64) as usize];
                for (gy, bits) in g.iter().enumerate() {
                    for gx in 0..5u32 {
                        let px = x + 1 + gx;
                        let py = y + 4 + gy as u32;
                        if bits >> gx & 1 == 1 {
                            fb.set_pixel(px, py, color);
                        } else if gx > 0 && bits >> (gx - 1) & 1 == 1 {
                            fb.set_pixel(px, py, blend(bg, color, 100));
                        }
                    }
                }
                x += gw;
            }
            x += gw;
        }
        y += lh;
    }
}

fn photo(fb: &mut Framebuffer, r: Rect) {
    for y in 0..r.height {
        for x in 0..r.width {
            let fx = x as f32 / r.width as f32;
            let fy = y as f32 / r.height as f32;
            let sky = fy < 0.55 + 0.08 * (fx * 9.0).sin();
            let c = if sky {
                [
                    (90.0 + 120.0 * fy) as u8,
                    (150.0 + 80.0 * fy) as u8,
                    (230.0 - 20.0 * fx) as u8,
                    255,
                ]
            } else {
                let hill = (0.5 + 0.5 * (fx * 23.0 + fy * 7.0).sin()) * 40.0;
                [
                    (40.0 + hill) as u8,
                    (110.0 + hill + 60.0 * fy) as u8,
                    (40.0 + 30.0 * fx) as u8,
                    255,
                ]
            };
            fb.set_pixel(r.x + x, r.y + y, c);
        }
    }
    // The sun.
    for dy in 0..60u32 {
        for dx in 0..60u32 {
            let (ox, oy) = (dx as i32 - 30, dy as i32 - 30);
            if ox * ox + oy * oy <= 900 {
                fb.set_pixel(r.x + 460 + dx, r.y + 30 + dy, [255, 226, 120, 255]);
            }
        }
    }
}

fn taskbar(fb: &mut Framebuffer) {
    fb.fill(Rect::new(0, H - 40, W, 40), [32, 34, 40, 255]);
    fb.fill(Rect::new(0, H - 40, W, 1), [70, 72, 80, 255]);
    for i in 0..10u32 {
        let c = [
            (60 + i * 19) as u8,
            (200 - i * 13) as u8,
            (90 + i * 15) as u8,
            255,
        ];
        fb.fill(Rect::new(8 + i * 44, H - 34, 28, 28), c);
        fb.fill(
            Rect::new(14 + i * 44, H - 28, 16, 16),
            blend(c, [0, 0, 0, 255], 80),
        );
    }
    text(
        fb,
        Rect::new(W - 120, H - 28, 100, 14),
        [32, 34, 40, 255],
        &[[230, 230, 230, 255]],
        77,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picture_is_deterministic_and_busy() {
        let a = desktop(1920, 1080);
        assert_eq!(a, desktop(1920, 1080));
        let mut colours = std::collections::HashSet::new();
        for px in a.as_rgba().chunks_exact(4) {
            colours.insert([px[0], px[1], px[2]]);
        }
        assert!(colours.len() > 2000, "{} colours", colours.len());
        let small = desktop(320, 180);
        assert_eq!((small.width(), small.height()), (320, 180));
    }

    #[test]
    fn pointer_is_drawn_and_clipped() {
        let mut fb = Framebuffer::new(20, 20);
        draw_pointer(&mut fb, 2, 2);
        assert_eq!(fb.pixel(2, 2), [0, 0, 0, 255]);
        assert_eq!(fb.pixel(3, 4), [255, 255, 255, 255]);
        draw_pointer(&mut fb, 15, 15);
    }
}
