//! Renderer benchmarks on the deterministic 1920x1080 desktop picture (`render::testimage`).
//!
//! `cargo bench --bench render -- --warm-up-time 1 --measurement-time 3`
//!
//! Criterion measures the times; the sizes and PSNRs, which are not times, are printed once
//! before the runs (one line per figure, `figure:` prefix), decoded with icy_sixel's decoder.
//! Goals from the viewer issue: half blocks <= 3 ms, sextants <= 6 ms, sixel full frame
//! <= 20 ms at >= 34 dB and <= 500 KB, a 64x64 sixel tile <= 2 ms and <= 10 KB.
//!
//! icy_sixel is measured on the same frame for comparison: we keep our own encoder because a
//! live view needs a palette kept between frames and tiles encoded against it, which icy_sixel
//! cannot do (it quantises each image afresh), and because it is slower on this picture (see
//! the README's table).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;
use tether::frame::{Framebuffer, Rect};
use tether::render::sixel::{Palette, Scratch, encode};
use tether::render::{
    CellSize, ColorDepth, Glyphs, KittyView, SixelView, TextView, psnr, scale, testimage,
};

/// A 1920x1080 terminal area: 192x54 cells of 10x20 pixels on a 55-row terminal.
fn sixel_view() -> SixelView {
    SixelView::new(CellRect::new(0, 0, 192, 54), 55, CellSize::new(10, 20), 256)
}

const TILE: Rect = Rect {
    x: 500,
    y: 300,
    width: 64,
    height: 64,
};

/// The desktop with one 64x64 tile changed (a window's content scrolled by a few pixels).
fn with_changed_tile(desktop: &Framebuffer) -> Framebuffer {
    let mut changed = desktop.clone();
    let moved = desktop.crop(Rect::new(TILE.x, TILE.y + 7, TILE.width, TILE.height));
    changed.blit(TILE.x, TILE.y, &moved);
    changed
}

fn decode_sixel(bytes: &[u8], width: u32, height: u32) -> Option<Framebuffer> {
    let start = bytes.windows(2).position(|w| w == b"\x1bP")?;
    let img = icy_sixel::SixelImage::decode(&bytes[start..]).ok()?;
    let fb = Framebuffer::from_rgba(img.width as u32, img.height as u32, img.pixels)?;
    Some(fb.crop(Rect::new(0, 0, width, height)))
}

fn print_figures(desktop: &Framebuffer) {
    let mut view = sixel_view();
    let mut out = Vec::new();
    view.render(desktop, &mut out);
    let db = decode_sixel(&out, 1920, 1080)
        .and_then(|d| psnr(desktop, &d))
        .unwrap_or(0.0);
    println!(
        "figure: ours sixel 1080p full frame: {} bytes, {db:.2} dB",
        out.len()
    );
    let changed = with_changed_tile(desktop);
    out.clear();
    view.render_damage(&changed, &[TILE], &mut out);
    println!("figure: ours sixel 64x64 tile: {} bytes", out.len());
    for (name, diffusion) in [("dithered (default)", 0.875f32), ("no dithering", 0.0)] {
        let opts = icy_sixel::EncodeOptions {
            diffusion,
            ..Default::default()
        };
        let icy = icy_sixel::SixelImage::from_rgba(desktop.as_rgba().to_vec(), 1920, 1080)
            .encode_with(&opts)
            .unwrap_or_default();
        let db = decode_sixel(icy.as_bytes(), 1920, 1080)
            .and_then(|d| psnr(desktop, &d))
            .unwrap_or(0.0);
        println!(
            "figure: icy_sixel 1080p {name}: {} bytes, {db:.2} dB",
            icy.len()
        );
    }
    for glyphs in [Glyphs::HalfBlock, Glyphs::Quadrant, Glyphs::Sextant] {
        let mut text = TextView::new(glyphs, ColorDepth::TrueColor, 200, 60);
        text.update(desktop);
        let (gw, gh) = glyphs.cell_pixels();
        let reference = scale::scale(desktop, 200 * gw, 60 * gh);
        let seen = tether::render::decode::cells_to_pixels(text.cells(), glyphs);
        let db = psnr(&reference, &seen).unwrap_or(0.0);
        let mut bytes = Vec::new();
        tether::render::cells::write_ansi(text.cells(), &mut bytes);
        println!(
            "figure: ours {glyphs:?} 200x60 truecolor: {} bytes as plain ANSI, {db:.2} dB against the box-scaled picture",
            bytes.len()
        );
    }
    let mut kitty = KittyView::new(1, CellRect::new(0, 0, 192, 54), 1920, 1080);
    out.clear();
    kitty.render(desktop, &mut out);
    let full = out.len();
    out.clear();
    kitty.render_damage(&changed, &[TILE], &mut out);
    println!(
        "figure: ours kitty 1080p: {full} bytes full frame, {} bytes for a 64x64 tile",
        out.len()
    );
}

fn benches(c: &mut Criterion) {
    let desktop = testimage::desktop(1920, 1080);
    print_figures(&desktop);
    let changed = with_changed_tile(&desktop);

    c.bench_function("scale 1920x1080 -> 200x120", |b| {
        let mut dst = Framebuffer::new(200, 120);
        b.iter(|| scale::scale_into(black_box(&desktop), &mut dst));
    });
    c.bench_function("halfblock 1920x1080 -> 200x60 cells, full frame", |b| {
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 200, 60);
        b.iter(|| view.update(black_box(&desktop)));
    });
    c.bench_function("halfblock 256 colours, full frame", |b| {
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::Palette256, 200, 60);
        b.iter(|| view.update(black_box(&desktop)));
    });
    c.bench_function("quadrant 1920x1080 -> 200x60 cells, full frame", |b| {
        let mut view = TextView::new(Glyphs::Quadrant, ColorDepth::TrueColor, 200, 60);
        b.iter(|| view.update(black_box(&desktop)));
    });
    c.bench_function("sextant 1920x1080 -> 200x60 cells, full frame", |b| {
        let mut view = TextView::new(Glyphs::Sextant, ColorDepth::TrueColor, 200, 60);
        b.iter(|| view.update(black_box(&desktop)));
    });
    c.bench_function("halfblock 64x64 tile (damage only)", |b| {
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 200, 60);
        view.update(&desktop);
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            let frame = if flip { &changed } else { &desktop };
            black_box(view.update_damage(frame, &[TILE]));
        });
    });
    c.bench_function("ratatui diff + crossterm emit, full frame", |b| {
        use ratatui::backend::{Backend, CrosstermBackend};
        let mut view = TextView::new(Glyphs::HalfBlock, ColorDepth::TrueColor, 200, 60);
        view.update(&desktop);
        let blank = Buffer::empty(CellRect::new(0, 0, 200, 60));
        let mut sink = Vec::with_capacity(1 << 20);
        b.iter(|| {
            sink.clear();
            let mut backend = CrosstermBackend::new(&mut sink);
            let _ = backend.draw(blank.diff(view.cells()).into_iter());
            let _ = Backend::flush(&mut backend);
        });
    });

    c.bench_function("sixel 1080p full frame (kept palette)", |b| {
        let mut view = sixel_view();
        let mut out = Vec::with_capacity(1 << 20);
        view.render(&desktop, &mut out);
        b.iter(|| {
            out.clear();
            view.render(black_box(&desktop), &mut out);
        });
    });
    c.bench_function("sixel 1080p encode only (warm palette)", |b| {
        let mut palette = Palette::from_image(&desktop, 256);
        let mut scratch = Scratch::default();
        let mut out = Vec::with_capacity(1 << 20);
        encode(&desktop, &mut palette, &mut scratch, &mut out);
        b.iter(|| {
            out.clear();
            encode(black_box(&desktop), &mut palette, &mut scratch, &mut out);
        });
    });
    c.bench_function("sixel 1080p first frame (palette built)", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            let mut view = sixel_view();
            view.render(black_box(&desktop), &mut out);
        });
    });
    c.bench_function("sixel one changed 64x64 tile", |b| {
        let mut view = sixel_view();
        let mut out = Vec::with_capacity(1 << 16);
        view.render(&desktop, &mut out);
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            let frame = if flip { &changed } else { &desktop };
            out.clear();
            view.render_damage(black_box(frame), &[TILE], &mut out);
        });
    });
    c.bench_function("kitty one changed 64x64 tile", |b| {
        let mut view = KittyView::new(1, CellRect::new(0, 0, 192, 54), 1920, 1080);
        let mut out = Vec::with_capacity(1 << 16);
        view.render(&desktop, &mut out);
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            let frame = if flip { &changed } else { &desktop };
            out.clear();
            view.render_damage(black_box(frame), &[TILE], &mut out);
        });
    });

    let mut slow = c.benchmark_group("slow");
    slow.sample_size(10);
    slow.bench_function("kitty 1080p full frame", |b| {
        let mut out = Vec::with_capacity(1 << 22);
        b.iter(|| {
            out.clear();
            let mut view = KittyView::new(1, CellRect::new(0, 0, 192, 54), 1920, 1080);
            view.render(black_box(&desktop), &mut out);
        });
    });
    let icy_image = icy_sixel::SixelImage::from_rgba(desktop.as_rgba().to_vec(), 1920, 1080);
    slow.bench_function("icy_sixel 1080p (default: Wu, dithered)", |b| {
        let opts = icy_sixel::EncodeOptions::default();
        b.iter(|| black_box(&icy_image).encode_with(&opts));
    });
    slow.bench_function("icy_sixel 1080p (Wu, no dithering)", |b| {
        let opts = icy_sixel::EncodeOptions {
            diffusion: 0.0,
            ..Default::default()
        };
        b.iter(|| black_box(&icy_image).encode_with(&opts));
    });
    slow.finish();
}

criterion_group!(render, benches);
criterion_main!(render);
