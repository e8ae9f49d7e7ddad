//! Helpers for `benches/compare.sh` (not a benchmark: `harness = false`, and it does nothing
//! when cargo runs every bench). Run as `cargo bench --bench compare_tool -- COMMAND ...`:
//!
//! - `testimage OUT.png`: the 1920x1080 desktop picture the benchmarks use;
//! - `psnr REFERENCE.png PICTURE.png`: PSNR in dB, the reference scaled to the picture's
//!   size first (sixel decoders may pad the height to a multiple of 6: the picture is cropped
//!   to the reference's aspect);
//! - `ansi-psnr REFERENCE.png TEXT COLSxROWS halfblock|sextant`: the ANSI text read by a small
//!   terminal model, its cells turned into pixels, compared with the scaled reference.
//!
//! References are box-averaged exactly (`render::decode::box_reference`, f64, from the
//! definition), not by our box scaler: the filter a terminal picture approximates, with neither
//! side scored against its own resampling.

use std::process::ExitCode;

use tether::frame::{Framebuffer, Rect};
use tether::render::decode::{box_reference, cells_to_pixels, parse_ansi};
use tether::render::{Glyphs, psnr, testimage};

/// The reference at another size, box-averaged exactly.
fn scale(fb: &Framebuffer, width: u32, height: u32) -> Framebuffer {
    if (fb.width(), fb.height()) == (width, height) {
        return fb.clone();
    }
    box_reference(fb, width, height)
}

fn load(path: &str) -> Result<Framebuffer, String> {
    let img = image::open(path)
        .map_err(|e| format!("{path}: {e}"))?
        .to_rgba8();
    let (w, h) = img.dimensions();
    Framebuffer::from_rgba(w, h, img.into_raw()).ok_or_else(|| format!("{path}: bad size"))
}

fn run(args: &[String]) -> Result<(), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["testimage", out] => {
            let fb = testimage::desktop(1920, 1080);
            image::RgbaImage::from_raw(1920, 1080, fb.as_rgba().to_vec())
                .ok_or("image size")?
                .save(out)
                .map_err(|e| format!("{out}: {e}"))
        }
        ["psnr", reference, picture] => {
            let reference = load(reference)?;
            let picture = load(picture)?;
            // Keep only the rows that belong to the picture (sixel pads to 6-row bands).
            let h = (u64::from(picture.width()) * u64::from(reference.height())
                / u64::from(reference.width().max(1))) as u32;
            let picture = picture.crop(Rect::new(0, 0, picture.width(), h.min(picture.height())));
            let scaled = scale(&reference, picture.width(), picture.height());
            let db = psnr(&scaled, &picture).ok_or("sizes differ")?;
            println!("{db:.2}");
            Ok(())
        }
        ["ansi-psnr", reference, text, size, glyphs] => {
            let (cols, rows) = size.split_once('x').ok_or("size is COLSxROWS")?;
            let cols: u16 = cols.parse().map_err(|_| "bad cols")?;
            let rows: u16 = rows.parse().map_err(|_| "bad rows")?;
            let glyphs = match *glyphs {
                "halfblock" => Glyphs::HalfBlock,
                "sextant" => Glyphs::Sextant,
                other => return Err(format!("unknown glyphs {other}")),
            };
            let bytes = std::fs::read(text).map_err(|e| format!("{text}: {e}"))?;
            let seen = cells_to_pixels(&parse_ansi(&bytes, cols, rows), glyphs);
            let reference = scale(&load(reference)?, seen.width(), seen.height());
            println!("{:.2}", psnr(&reference, &seen).ok_or("sizes differ")?);
            Ok(())
        }
        _ => Err("usage: testimage OUT.png | psnr REF.png PIC.png | ansi-psnr REF.png TEXT COLSxROWS halfblock|sextant".into()),
    }
}

fn main() -> ExitCode {
    // cargo adds `--bench`; with nothing else this is `cargo bench` running every target.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare_tool: {e}");
            ExitCode::FAILURE
        }
    }
}
