//! Colours for text cells: 24-bit, or the nearest of xterm's 256 (the 6x6x6 cube and the 24
//! greys; the first 16 are left out because every terminal theme paints them differently).

/// The six levels of each channel of xterm's colour cube (indices 16..=231).
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The nearest cube level's index for one channel value.
fn cube_level(v: u8) -> usize {
    match v {
        0..=47 => 0,
        48..=114 => 1,
        115..=154 => 2,
        155..=194 => 3,
        195..=234 => 4,
        _ => 5,
    }
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    let d = |i: usize| {
        let x = i32::from(a[i]) - i32::from(b[i]);
        (x * x) as u32
    };
    d(0) + d(1) + d(2)
}

/// The RGB value xterm shows for colour index `i` (16..=255; the 16 theme colours map to their
/// usual xterm defaults).
pub fn xterm256_rgb(i: u8) -> [u8; 3] {
    const BASIC: [[u8; 3]; 16] = [
        [0, 0, 0],
        [205, 0, 0],
        [0, 205, 0],
        [205, 205, 0],
        [0, 0, 238],
        [205, 0, 205],
        [0, 205, 205],
        [229, 229, 229],
        [127, 127, 127],
        [255, 0, 0],
        [0, 255, 0],
        [255, 255, 0],
        [92, 92, 255],
        [255, 0, 255],
        [0, 255, 255],
        [255, 255, 255],
    ];
    match i {
        0..=15 => BASIC[i as usize],
        16..=231 => {
            let n = i as usize - 16;
            [CUBE[n / 36], CUBE[(n / 6) % 6], CUBE[n % 6]]
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            [v, v, v]
        }
    }
}

/// The index (16..=255) of the xterm colour nearest to `rgb`.
pub fn xterm256_nearest(rgb: [u8; 3]) -> u8 {
    let (r, g, b) = (cube_level(rgb[0]), cube_level(rgb[1]), cube_level(rgb[2]));
    let cube_index = (16 + 36 * r + 6 * g + b) as u8;
    let cube = [CUBE[r], CUBE[g], CUBE[b]];
    let mean = (u32::from(rgb[0]) + u32::from(rgb[1]) + u32::from(rgb[2])) / 3;
    let grey_step = (mean.saturating_sub(3) / 10).min(23) as u8;
    let grey_index = 232 + grey_step;
    if distance(rgb, xterm256_rgb(grey_index)) < distance(rgb, cube) {
        grey_index
    } else {
        cube_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_matches_an_exhaustive_search() {
        for r in (0..=255u8).step_by(7) {
            for g in (0..=255u8).step_by(11) {
                for b in (0..=255u8).step_by(13) {
                    let c = [r, g, b];
                    let best = (16..=255u8)
                        .map(|i| distance(c, xterm256_rgb(i)))
                        .min()
                        .unwrap_or(0);
                    let got = distance(c, xterm256_rgb(xterm256_nearest(c)));
                    assert_eq!(got, best, "{c:?}");
                }
            }
        }
    }

    #[test]
    fn exact_colours_map_to_themselves() {
        assert_eq!(xterm256_nearest([0, 0, 0]), 16);
        assert_eq!(xterm256_nearest([255, 255, 255]), 231);
        assert_eq!(xterm256_nearest([95, 135, 175]), 16 + 36 + 12 + 3);
        assert_eq!(xterm256_nearest([128, 128, 128]), 244);
    }
}
