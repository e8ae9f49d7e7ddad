//! Reading sixel back for tests: libsixel's `sixel2png` (an independent decoder) and the
//! positioned images in a stream of terminal bytes.

use std::io::Write;
use std::process::{Command, Stdio};

use tether::frame::Framebuffer;

/// libsixel's decoder on one sixel image.
pub fn sixel2png(sixel: &[u8]) -> Framebuffer {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.png");
    let mut child = Command::new("sixel2png")
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sixel2png runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sixel)
        .expect("feed sixel2png");
    assert!(child.wait().expect("sixel2png ends").success());
    let img = image::open(&out).expect("sixel2png wrote a PNG").to_rgba8();
    let (w, h) = img.dimensions();
    Framebuffer::from_rgba(w, h, img.into_raw()).expect("RGBA")
}

/// Each positioned sixel image in `out`: (0-based col, 0-based row, DCS bytes).
pub fn sixel_images(out: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    let mut images = Vec::new();
    let mut rest = out;
    while let Some(start) = rest.windows(2).position(|w| w == b"\x1b[") {
        let after = &rest[start + 2..];
        let h = after.iter().position(|&b| b == b'H').expect("cursor move");
        let pos = String::from_utf8_lossy(&after[..h]).into_owned();
        let (row, col) = pos.split_once(';').expect("row;col");
        let dcs = &after[h + 1..];
        assert!(dcs.starts_with(b"\x1bP"), "an image follows each move");
        let end = dcs.windows(2).position(|w| w == b"\x1b\\").expect("ST") + 2;
        images.push((
            col.parse::<u16>().expect("col") - 1,
            row.parse::<u16>().expect("row") - 1,
            dcs[..end].to_vec(),
        ));
        rest = &dcs[end..];
    }
    images
}
