//! The renderer's output, checked the way a terminal would see it: sixel decoded by libsixel's
//! `sixel2png` (an independent decoder), text through ratatui's real diff and crossterm
//! backend read back by a small terminal model, kitty commands decoded back to pixels.

#[path = "common/peers.rs"]
#[allow(dead_code)]
mod peers;
#[path = "common/sixel.rs"]
mod sixel;
use sixel::{sixel_images, sixel2png};

use std::io::Read;
use std::process::Command;

use base64::Engine;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;
use tether::frame::{Framebuffer, Rect};
use tether::render::decode::{box_reference, cells_to_pixels, parse_ansi};
use tether::render::detect::{Capabilities, choose, parse_replies, query_bytes};
use tether::render::{
    CellSize, ColorDepth, Environment, Glyphs, KittyView, PaneOrigin, RenderMode, RenderOverride,
    SixelView, TextView, psnr, scale::scale, testimage,
};

/// The issue's figure for sixel, and what libsixel itself reaches on such pictures
/// (35.5-36.2 dB): a desktop at 34 dB shows no visible banding in its flat areas and keeps
/// text edges; a broken palette or misplaced band drops far below (a band one row off is
/// under 20 dB on this picture).
const SIXEL_MIN_DB: f64 = 34.0;

fn terminal_bytes(before: &Buffer, after: &Buffer) -> Vec<u8> {
    let mut sink = Vec::new();
    {
        let mut backend = CrosstermBackend::new(&mut sink);
        backend
            .draw(before.diff(after).into_iter())
            .expect("writing to a Vec");
        Backend::flush(&mut backend).expect("flushing a Vec");
    }
    sink
}

fn raster_size(dcs: &[u8]) -> (u32, u32) {
    let text = String::from_utf8_lossy(dcs);
    let attrs = text.split_once('"').expect("raster attributes").1;
    let nums: Vec<u32> = attrs
        .split(|c: char| !c.is_ascii_digit())
        .take(4)
        .map(|n| n.parse().expect("number"))
        .collect();
    (nums[2], nums[3])
}

#[test]
fn sixel_decoded_by_libsixel_matches_the_source() {
    if !peers::available("sixel2png", "sixel_decoded_by_libsixel_matches_the_source") {
        return;
    }
    let desktop = testimage::desktop(1920, 1080);
    let cell = CellSize::new(10, 20);
    let mut view = SixelView::new(CellRect::new(0, 0, 192, 54), 55, cell, 256);
    let mut out = Vec::new();
    view.render(&desktop, &mut out);
    let images = sixel_images(&out);
    assert_eq!(images.len(), 1);
    let mut screen = sixel2png(&images[0].2);
    assert_eq!((screen.width(), screen.height()), (1920, 1080));
    let db = psnr(&desktop, &screen).expect("same size");
    eprintln!("sixel full frame through sixel2png: {db:.2} dB");
    assert!(db >= SIXEL_MIN_DB, "full frame: {db:.2} dB");

    // A window's content scrolls by a few pixels inside one 64x64 tile: only cell-aligned
    // tiles come, and laid where their cursor moves put them, they make the new frame.
    let tile = Rect::new(500, 300, 64, 64);
    let mut changed = desktop.clone();
    changed.blit(500, 300, &desktop.crop(Rect::new(500, 307, 64, 64)));
    out.clear();
    view.render_damage(&changed, &[tile], &mut out);
    assert!(out.len() <= 10 * 1024, "tile costs {} bytes", out.len());
    for (col, row, dcs) in sixel_images(&out) {
        let piece = sixel2png(&dcs);
        screen.blit(
            u32::from(col) * u32::from(cell.width),
            u32::from(row) * u32::from(cell.height),
            &piece,
        );
    }
    let db = psnr(&changed, &screen).expect("same size");
    eprintln!("after a {}-byte tile: {db:.2} dB", out.len());
    assert!(db >= SIXEL_MIN_DB, "after the tile: {db:.2} dB");
}

/// A picture in other colours than the test desktop (a green-blue gradient, like a new
/// wallpaper or a video).
fn gradient(w: u32, h: u32) -> Framebuffer {
    let mut img = Framebuffer::new(w, h);
    for y in 0..h {
        for x in 0..w {
            img.set_pixel(x, y, [20, (x * 255 / w) as u8, (y * 255 / h) as u8, 255]);
        }
    }
    img
}

#[test]
fn a_new_picture_through_damage_gets_a_palette_of_its_own() {
    let test = "a_new_picture_through_damage_gets_a_palette_of_its_own";
    if !peers::available("sixel2png", test) {
        return;
    }
    let cell = CellSize::new(10, 20);
    let area = CellRect::new(0, 0, 96, 27);
    let next = gradient(960, 540);
    // What the encoder reaches on the new picture from scratch...
    let mut fresh = SixelView::new(area, 28, cell, 256);
    let mut out = Vec::new();
    fresh.render(&next, &mut out);
    let normal = psnr(&next, &sixel2png(&sixel_images(&out)[0].2)).expect("same size");
    // ...and through damage, after the desktop made the palette.
    let mut view = SixelView::new(area, 28, cell, 256);
    out.clear();
    view.render(&testimage::desktop(960, 540), &mut out);
    out.clear();
    view.render_damage(&next, &[next.bounds()], &mut out);
    let images = sixel_images(&out);
    assert_eq!(images.len(), 1, "one whole picture");
    let db = psnr(&next, &sixel2png(&images[0].2)).expect("same size");
    eprintln!("new picture through damage: {db:.2} dB ({normal:.2} dB from scratch)");
    assert!(
        db >= normal - 0.5,
        "{db:.2} dB, {normal:.2} dB from scratch"
    );
}

#[test]
fn half_block_cells_match_the_scaled_source() {
    let desktop = testimage::desktop(1920, 1080);
    let blank = Buffer::empty(CellRect::new(0, 0, 200, 60));
    // 24-bit colour is exact: what the terminal shows is the box-scaled picture.
    // 256 colours: the cube's first step is 95 wide, so dark colours land far off. On this
    // picture the exact nearest of the 240 colours gives 23.1 dB and a cube-only nearest
    // 20.3 dB; 22 dB tells the two apart.
    for (depth, min_db) in [
        (ColorDepth::TrueColor, 60.0),
        (ColorDepth::Palette256, 22.0),
    ] {
        let mut view = TextView::new(Glyphs::HalfBlock, depth, 200, 60);
        view.update(&desktop);
        let bytes = terminal_bytes(&blank, view.cells());
        let seen = cells_to_pixels(&parse_ansi(&bytes, 200, 60), Glyphs::HalfBlock);
        let reference = scale(&desktop, 200, 120);
        let db = psnr(&reference, &seen).expect("same size");
        assert!(db >= min_db, "{depth:?}: {db:.2} dB");
    }
    // Quadrants and sextants: two colours for four or six pixels. On this picture the split
    // keeps 25+ dB at the finer 400x120 and 400x180 grids; a wrong pattern bit order falls
    // under 20.
    for (glyphs, (w, h)) in [
        (Glyphs::Quadrant, (400, 120)),
        (Glyphs::Sextant, (400, 180)),
    ] {
        let mut view = TextView::new(glyphs, ColorDepth::TrueColor, 200, 60);
        view.update(&desktop);
        let bytes = terminal_bytes(&blank, view.cells());
        let seen = cells_to_pixels(&parse_ansi(&bytes, 200, 60), glyphs);
        let db = psnr(&scale(&desktop, w, h), &seen).expect("same size");
        eprintln!("{glyphs:?}: {db:.2} dB");
        assert!(db >= 25.0, "{glyphs:?}: {db:.2} dB");
    }
}

/// Artwork the renderer was not tuned on: Debian's "softwaves" GRUB background (1920x1080,
/// soft gradients, thin bright curves and the swirl logo), from the `desktop-base` package.
const ARTWORK: &str = "/usr/share/desktop-base/softwaves-theme/grub/grub-16x9.png";

#[test]
fn half_blocks_are_not_worse_than_chafa() {
    let test = "half_blocks_are_not_worse_than_chafa";
    if !peers::available("chafa", test) || !peers::file_available(ARTWORK, "desktop-base", test) {
        return;
    }
    let artwork = image::open(ARTWORK).expect("a PNG").to_rgba8();
    let (w, h) = artwork.dimensions();
    let artwork = Framebuffer::from_rgba(w, h, artwork.into_raw()).expect("RGBA");
    let dir = tempfile::tempdir().expect("temp dir");
    let desktop_png = dir.path().join("desktop.png");
    let desktop = testimage::desktop(1920, 1080);
    image::RgbaImage::from_raw(1920, 1080, desktop.as_rgba().to_vec())
        .expect("image")
        .save(&desktop_png)
        .expect("write PNG");
    // 200x60 divides 1920x1080 evenly in neither axis' cell count at 203x57: every box has
    // partial pixels on its edges there.
    for (name, png, picture) in [
        ("softwaves artwork", std::path::Path::new(ARTWORK), &artwork),
        ("test desktop", desktop_png.as_path(), &desktop),
    ] {
        for (cols, rows) in [(200u16, 60u16), (203, 57)] {
            let out = Command::new("chafa")
                .args([
                    "--format",
                    "symbols",
                    "--symbols",
                    "half",
                    "--colors",
                    "full",
                    "--stretch",
                    "--size",
                    &format!("{cols}x{rows}"),
                ])
                .arg(png)
                .output()
                .expect("chafa runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let reference = box_reference(picture, u32::from(cols), 2 * u32::from(rows));
            let chafa = cells_to_pixels(&parse_ansi(&out.stdout, cols, rows), Glyphs::HalfBlock);
            let chafa_db = psnr(&reference, &chafa).expect("same size");
            let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, cols, rows);
            view.update(picture);
            let ours = cells_to_pixels(view.cells(), Glyphs::HalfBlock);
            let ours_db = psnr(&reference, &ours).expect("same size");
            eprintln!(
                "half blocks {cols}x{rows}, {name}: ours {ours_db:.2} dB, chafa {chafa_db:.2} dB"
            );
            assert!(
                ours_db >= chafa_db,
                "{name} at {cols}x{rows}: ours {ours_db:.2} dB, chafa {chafa_db:.2} dB"
            );
        }
    }
}

#[test]
fn a_pointer_move_costs_under_a_kilobyte() {
    let desktop = testimage::desktop(1920, 1080);
    let mut before = desktop.clone();
    testimage::draw_pointer(&mut before, 800, 500);
    let mut after = desktop.clone();
    testimage::draw_pointer(&mut after, 805, 503);
    let damage = [Rect::new(800, 500, 16, 16), Rect::new(805, 503, 16, 16)];
    for glyphs in [Glyphs::HalfBlock, Glyphs::Quadrant, Glyphs::Sextant] {
        let mut view = TextView::new(glyphs, ColorDepth::TrueColor, 200, 60);
        view.update(&before);
        let shown = view.cells().clone();
        view.update_damage(&after, &damage);
        let bytes = terminal_bytes(&shown, view.cells());
        assert!(!bytes.is_empty(), "{glyphs:?}: the move is drawn");
        eprintln!("pointer move, {glyphs:?}: {} bytes", bytes.len());
        assert!(bytes.len() <= 1024, "{glyphs:?}: {} bytes", bytes.len());
    }
    let mut sixel = SixelView::new(CellRect::new(0, 0, 192, 54), 55, CellSize::new(10, 20), 256);
    let mut out = Vec::new();
    sixel.render(&before, &mut out);
    out.clear();
    sixel.render_damage(&after, &damage, &mut out);
    eprintln!("pointer move, sixel: {} bytes", out.len());
    assert!(out.len() <= 1024, "sixel: {} bytes", out.len());
}

#[test]
fn no_output_ever_scrolls() {
    let desktop = testimage::desktop(1920, 1080);
    let mut changed = desktop.clone();
    // Damage at the very bottom of the picture.
    let bottom = Rect::new(0, 1040, 1920, 40);
    changed.fill(bottom, [200, 10, 10, 255]);
    let cell = CellSize::new(10, 20);
    for (area, rows) in [
        (CellRect::new(0, 0, 192, 55), 55),
        (CellRect::new(4, 3, 150, 60), 50),
    ] {
        let mut view = SixelView::new(area, rows, cell, 256);
        assert!(view.area().bottom() < rows, "the last row is never used");
        let mut out = Vec::new();
        view.render(&desktop, &mut out);
        view.render_damage(&changed, &[bottom], &mut out);
        assert!(!out.contains(&b'\n'), "no line feeds");
        for (_, row, dcs) in sixel_images(&out) {
            let (_, h) = raster_size(&dcs);
            let last_row = u32::from(row) + h.div_ceil(u32::from(cell.height)) - 1;
            assert!(
                last_row < u32::from(rows) - 1,
                "image reaches row {last_row}"
            );
        }
    }
    // Kitty: the cursor does not move (C=1) and no line feed is written.
    let mut kitty = KittyView::new(9, CellRect::new(0, 0, 192, 54), 960, 540);
    let mut out = Vec::new();
    kitty.render(&desktop, &mut out);
    kitty.render_damage(&changed, &[bottom], &mut out);
    assert!(!out.contains(&b'\n'));
    assert!(String::from_utf8_lossy(&out).contains(",C=1"));
    // Text: only cursor moves and cells, never a line feed.
    let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 200, 60);
    view.update(&desktop);
    let bytes = terminal_bytes(&Buffer::empty(CellRect::new(0, 0, 200, 60)), view.cells());
    assert!(!bytes.contains(&b'\n'));
}

/// Kitty graphics commands back to pixels: APC sequences, chunks joined, base64, zlib, and
/// `a=T` / `a=f` applied to a canvas.
fn replay_kitty(out: &[u8], canvas: &mut Option<Framebuffer>) {
    let text = String::from_utf8_lossy(out).into_owned();
    let mut pending: Option<(String, String)> = None;
    for seq in text.split("\x1b_G").skip(1) {
        let body = seq.split("\x1b\\").next().expect("ST");
        let (control, payload) = body.split_once(';').unwrap_or((body, ""));
        let keys: Vec<(&str, &str)> = control
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        assert_eq!(get("q"), Some("2"), "quiet: {control}");
        assert!(payload.len() <= 4096);
        let more = get("m") == Some("1");
        match &mut pending {
            Some((_, data)) => data.push_str(payload),
            None => pending = Some((control.to_owned(), payload.to_owned())),
        }
        if more {
            continue;
        }
        let Some((first, data)) = pending.take() else {
            continue;
        };
        let keys: Vec<(&str, &str)> = first
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let num = |k: &str| {
            keys.iter()
                .find(|(key, _)| *key == k)
                .map_or(0, |(_, v)| v.parse::<u32>().expect("number"))
        };
        let action = keys.iter().find(|(k, _)| *k == "a").map(|(_, v)| *v);
        if data.is_empty() {
            continue;
        }
        let compressed = base64::engine::general_purpose::STANDARD
            .decode(&data)
            .expect("base64");
        let mut rgb = Vec::new();
        flate2::read::ZlibDecoder::new(&compressed[..])
            .read_to_end(&mut rgb)
            .expect("zlib");
        let (w, h) = (num("s"), num("v"));
        assert_eq!(rgb.len() as u32, w * h * 3);
        let mut rgba = Vec::with_capacity(rgb.len() / 3 * 4);
        for px in rgb.chunks_exact(3) {
            rgba.extend_from_slice(&[px[0], px[1], px[2], 255]);
        }
        let piece = Framebuffer::from_rgba(w, h, rgba).expect("size");
        match action {
            Some("T") => *canvas = Some(piece),
            Some("f") => {
                assert_eq!(num("r"), 1, "edits the root frame");
                canvas
                    .as_mut()
                    .expect("placed first")
                    .blit(num("x"), num("y"), &piece);
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
}

#[test]
fn kitty_commands_decode_back_to_the_pixels() {
    let desktop = testimage::desktop(1920, 1080);
    let mut view = KittyView::new(42, CellRect::new(1, 1, 120, 34), 1200, 680);
    let mut out = Vec::new();
    view.render(&desktop, &mut out);
    assert!(out.starts_with(b"\x1b[2;2H\x1b_Ga=T,i=42,f=24,s=1200,v=680,c=120,r=34,C=1,o=z"));
    let mut canvas = None;
    replay_kitty(&out, &mut canvas);
    assert_eq!(canvas.as_ref(), Some(view.scaled()));

    let mut changed = desktop.clone();
    testimage::draw_pointer(&mut changed, 640, 400);
    changed.fill(Rect::new(1500, 900, 100, 50), [0, 200, 0, 255]);
    out.clear();
    view.render_damage(
        &changed,
        &[Rect::new(640, 400, 16, 16), Rect::new(1500, 900, 100, 50)],
        &mut out,
    );
    assert!(out.len() < 8 * 1024, "{} bytes", out.len());
    assert!(String::from_utf8_lossy(&out).ends_with("\x1b_Ga=a,c=1,i=42,q=2\x1b\\"));
    replay_kitty(&out, &mut canvas);
    assert_eq!(canvas.as_ref(), Some(view.scaled()), "edited in place");
}

fn env(term: &str, program: Option<&str>) -> Environment {
    Environment {
        term: Some(term.into()),
        term_program: program.map(Into::into),
        colorterm: Some("truecolor".into()),
        ..Default::default()
    }
}

#[test]
fn capability_detection_against_canned_replies() {
    // xterm -ti vt340 with 256 registers and window ops allowed.
    let xterm = parse_replies(b"\x1b[6;20;10t\x1b[4;1080;1920t\x1b[8;54;192t\x1b[?1;0;256S\x1b[?63;1;2;4;6;9;15;16;22;28c");
    assert_eq!(
        xterm,
        Capabilities {
            answered: true,
            sixel: true,
            kitty: false,
            cell: Some(CellSize::new(10, 20)),
            window_pixels: Some((1920, 1080)),
            grid: Some((192, 54)),
            sixel_registers: Some(256),
        }
    );
    let xterm_env = env("xterm-256color", None);
    assert_eq!(
        choose(&xterm, &xterm_env, RenderOverride::Auto),
        RenderMode::Sixel { tmux: false }
    );
    // The same xterm with its default 16 registers: text looks better.
    let xterm16 = parse_replies(b"\x1b[?1;0;16S\x1b[?63;1;2;4;6;9;15;16;22;28c");
    assert_eq!(
        choose(&xterm16, &xterm_env, RenderOverride::Auto),
        RenderMode::HalfBlock
    );

    // kitty: answers the graphics query, no sixel; cell size from CSI 16 t.
    let kitty = parse_replies(b"\x1b_Gi=31;OK\x1b\\\x1b[6;18;9t\x1b[?62;c");
    assert!(kitty.kitty && !kitty.sixel);
    assert_eq!(kitty.cell, Some(CellSize::new(9, 18)));
    let mut kitty_env = env("xterm-kitty", None);
    kitty_env.kitty_window = true;
    assert_eq!(
        choose(&kitty, &kitty_env, RenderOverride::Auto),
        RenderMode::Kitty { tmux: false }
    );
    // A graphics error reply is not support.
    let refused = parse_replies(b"\x1b_Gi=31;EINVAL:bad\x1b\\\x1b[?62;c");
    assert!(!refused.kitty);

    // tmux with passthrough, outside kitty: tmux's own attributes, then kitty's answers.
    let mut tmux_env = env("tmux-256color", Some("tmux"));
    tmux_env.tmux = true;
    tmux_env.tmux_passthrough = true;
    tmux_env.tmux_pane = Some(PaneOrigin::default());
    let through = parse_replies(b"\x1b_Gi=31;OK\x1b\\\x1b[6;18;9t\x1b[?62;c\x1b[?1;2c");
    assert_eq!(
        choose(&through, &tmux_env, RenderOverride::Auto),
        RenderMode::Kitty { tmux: true }
    );
    let q = query_bytes(true);
    assert!(
        q.starts_with(b"\x1bPtmux;\x1b\x1b_G"),
        "questions go through tmux"
    );
    assert!(
        q.ends_with(b"\x1b[c"),
        "plain device attributes end the replies"
    );
    // tmux without passthrough: text, whatever the outer terminal is.
    tmux_env.tmux_passthrough = false;
    let sixel_outside = parse_replies(b"\x1b[?62;4;22c");
    assert_eq!(
        choose(&sixel_outside, &tmux_env, RenderOverride::Auto),
        RenderMode::HalfBlock
    );
    assert_eq!(
        choose(&through, &tmux_env, RenderOverride::Auto),
        RenderMode::HalfBlock
    );

    // No answer at all (a dumb pipe, or a terminal that ignores queries).
    let none = parse_replies(b"");
    assert_eq!(none, Capabilities::default());
    assert_eq!(
        choose(&none, &env("xterm", None), RenderOverride::Auto),
        RenderMode::HalfBlock
    );
    // ...though kitty's environment is trusted when the terminal stayed silent, once the
    // cell's pixel size is known (`query` falls back to the window size the kernel has).
    let silent_with_cell = Capabilities {
        cell: Some(CellSize::new(9, 18)),
        ..Capabilities::default()
    };
    assert_eq!(
        choose(&silent_with_cell, &kitty_env, RenderOverride::Auto),
        RenderMode::Kitty { tmux: false }
    );
    // Without a cell size no graphics are chosen (a guessed one could make an image taller
    // than its rows, reaching the last row and scrolling the screen): text instead.
    assert_eq!(
        choose(&none, &kitty_env, RenderOverride::Auto),
        RenderMode::Sextant
    );
    let sixel_no_cell = parse_replies(b"\x1b[?1;0;256S\x1b[?63;1;2;4;6;9;15;16;22;28c");
    assert!(sixel_no_cell.sixel && sixel_no_cell.cell.is_none());
    assert_eq!(
        choose(&sixel_no_cell, &xterm_env, RenderOverride::Auto),
        RenderMode::HalfBlock
    );
    // Asked for by name, graphics are used all the same.
    assert_eq!(
        choose(&sixel_no_cell, &xterm_env, RenderOverride::Sixel),
        RenderMode::Sixel { tmux: false }
    );
    // Sextant where the terminal draws them itself.
    assert_eq!(
        choose(&none, &env("foot", None), RenderOverride::Auto),
        RenderMode::Sextant
    );
    // The override wins.
    assert_eq!(
        choose(&xterm, &xterm_env, RenderOverride::HalfBlock),
        RenderMode::HalfBlock
    );
    assert_eq!(
        choose(&none, &xterm_env, RenderOverride::Sixel),
        RenderMode::Sixel { tmux: false }
    );
    // Keys typed while waiting are skipped.
    let noisy = parse_replies(b"ls\r\x1b[A\x1b[?62;4c");
    assert!(noisy.sixel && noisy.answered);
}

#[test]
fn render_command_writes_text_and_sixel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("desktop.png");
    let desktop = testimage::desktop(640, 360);
    image::RgbaImage::from_raw(640, 360, desktop.as_rgba().to_vec())
        .expect("image")
        .save(&png)
        .expect("write PNG");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tether"))
            .arg("render")
            .arg(&png)
            .args(args)
            .output()
            .expect("tether runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // 16:9 in 40x40 cells of 1:2: 40 columns, 11 rows.
    let text = run(&["--mode", "halfblock", "--size", "40x40"]);
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 11);
    let cells = parse_ansi(&text, 40, 11);
    let db = psnr(
        &scale(&desktop, 40, 22),
        &cells_to_pixels(&cells, Glyphs::HalfBlock),
    )
    .expect("same size");
    assert!(db > 60.0, "{db}");
    let sixel = run(&["--mode", "sixel", "--size", "32x9", "--cell", "10x20"]);
    assert!(sixel.starts_with(b"\x1bP0;1;0q\"1;1;320;180"));
    let bad = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["render", "/nonexistent.png"])
        .output()
        .expect("tether runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read /nonexistent.png"));
}
