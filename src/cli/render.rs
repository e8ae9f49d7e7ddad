//! `tether render IMAGE.png`: the viewer's renderer on one picture, written to stdout as chafa
//! and img2sixel do. Handy for previewing images, and the easy way to compare our output with
//! theirs side by side (`benches/compare.sh`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::ValueEnum;

use super::Failure;
use crate::frame::Framebuffer;
use crate::render::cells::write_ansi;
use crate::render::sixel::{DEFAULT_COLORS, Palette, Scratch, encode};
use crate::render::{
    CellSize, ColorDepth, Environment, Glyphs, RenderMode, RenderOverride, TextView, detect, fit,
    kitty, scale,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Ask the terminal (when stdout is one; half blocks otherwise).
    Auto,
    Halfblock,
    Quadrant,
    Sextant,
    Sixel,
    Kitty,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The PNG picture to draw.
    pub image: PathBuf,
    /// Largest size in cells, COLSxROWS (default: the terminal's size less one row, else 80x24).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u16, u16)>,
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: Mode,
    /// Pixels per cell for sixel and kitty, WxH (default: ask the terminal, else 10x20).
    #[arg(long, value_parser = parse_size)]
    pub cell: Option<(u16, u16)>,
    /// Fill the size exactly instead of keeping the picture's aspect ratio.
    #[arg(long)]
    pub stretch: bool,
    /// xterm's 256 colours instead of 24-bit colour (text modes).
    #[arg(long)]
    pub colors256: bool,
}

/// The largest picture drawn (8K UHD): beyond it memory, not the terminal, is the limit.
const MAX_PIXELS: u64 = 7680 * 4320;

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not a size: write it as WIDTHxHEIGHT, for example 200x60");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u16 = w.trim().parse().map_err(|_| bad())?;
    let h: u16 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(bad());
    }
    Ok((w, h))
}

fn load(path: &PathBuf) -> Result<Framebuffer, Failure> {
    let img = image::open(path)
        .map_err(|e| {
            Failure::from(format!(
                "cannot read {}: {e} (a PNG file is expected)",
                path.display()
            ))
        })?
        .to_rgba8();
    let (w, h) = img.dimensions();
    Framebuffer::from_rgba(w, h, img.into_raw())
        .ok_or_else(|| Failure::from(format!("{}: unexpected pixel layout", path.display())))
}

pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let src = load(&args.image)?;
    let tty = std::io::stdout().is_terminal();
    let env = Environment::from_process();
    let needs_query =
        tty && (args.mode == Mode::Auto || (args.cell.is_none() && graphics(args.mode)));
    let caps = if needs_query {
        detect::query(&env, detect::QUERY_TIMEOUT)
    } else {
        detect::Capabilities::default()
    };
    let mode = match args.mode {
        Mode::Auto if tty => match detect::choose(&caps, &env, RenderOverride::Auto) {
            RenderMode::HalfBlock => Mode::Halfblock,
            RenderMode::Quadrant => Mode::Quadrant,
            RenderMode::Sextant => Mode::Sextant,
            RenderMode::Sixel { .. } => Mode::Sixel,
            RenderMode::Kitty { .. } => Mode::Kitty,
        },
        Mode::Auto => Mode::Halfblock,
        m => m,
    };
    let cell = args
        .cell
        .map(|(w, h)| CellSize::new(w, h))
        .or(caps.cell)
        .or_else(|| if tty { detect::window_cell() } else { None })
        .unwrap_or_default();
    let (cols, rows) = args.size.unwrap_or_else(|| {
        crossterm::terminal::size()
            .ok()
            .filter(|_| tty)
            .map(|(c, r)| (c, r.saturating_sub(1).max(1)))
            .unwrap_or((80, 24))
    });
    // Fit in physical units (cells have their own aspect), then round to whole cells.
    let (box_w, box_h) = (
        u32::from(cols) * u32::from(cell.width),
        u32::from(rows) * u32::from(cell.height),
    );
    let (pw, ph) = if args.stretch {
        (box_w, box_h)
    } else {
        fit(src.width(), src.height(), box_w, box_h)
    };
    if u64::from(pw) * u64::from(ph) > MAX_PIXELS {
        return Err(Failure::from(format!(
            "{pw}x{ph} pixels is too large a picture: choose a smaller --size or --cell"
        )));
    }
    let used_cols = (pw + u32::from(cell.width) / 2) / u32::from(cell.width);
    let used_rows = (ph + u32::from(cell.height) / 2) / u32::from(cell.height);
    let (used_cols, used_rows) = (
        used_cols.clamp(1, u32::from(cols)) as u16,
        used_rows.clamp(1, u32::from(rows)) as u16,
    );
    let depth = if args.colors256 {
        ColorDepth::Palette256
    } else {
        env.color_depth()
    };

    let mut out = Vec::new();
    match mode {
        Mode::Halfblock | Mode::Quadrant | Mode::Sextant | Mode::Auto => {
            let glyphs = match mode {
                Mode::Quadrant => Glyphs::Quadrant,
                Mode::Sextant => Glyphs::Sextant,
                _ => Glyphs::HalfBlock,
            };
            let mut view = TextView::new(glyphs, depth, used_cols, used_rows);
            view.update(&src);
            write_ansi(view.cells(), &mut out);
        }
        Mode::Sixel => {
            let img = scale::scale(&src, pw.max(1), ph.max(1));
            let mut palette = Palette::from_image(&img, DEFAULT_COLORS);
            encode(&img, &mut palette, &mut Scratch::default(), &mut out);
            out.push(b'\n');
        }
        Mode::Kitty => {
            let img = scale::scale(&src, pw.max(1), ph.max(1));
            let mut rgb = Vec::with_capacity(img.as_rgba().len() / 4 * 3);
            for px in img.as_rgba().chunks_exact(4) {
                rgb.extend_from_slice(&px[..3]);
            }
            let control = format!(
                "a=T,f=24,s={},v={},c={used_cols},r={used_rows}",
                img.width(),
                img.height()
            );
            kitty::command(&control, &rgb, env.tmux && env.tmux_passthrough, &mut out);
            out.push(b'\n');
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // `tether render x.png | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::from(format!("cannot write the picture: {e}"))),
    }
}

fn graphics(mode: Mode) -> bool {
    matches!(mode, Mode::Sixel | Mode::Kitty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("200x60"), Ok((200, 60)));
        assert_eq!(parse_size("10X20"), Ok((10, 20)));
        assert!(parse_size("200").is_err());
        assert!(parse_size("0x5").is_err());
    }
}
