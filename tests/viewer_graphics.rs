//! The live desktop viewer in graphics modes, as the terminal sees it: pixel frames from the
//! agent go into the console's `DesktopView`, ratatui's draw leaves the picture's cells alone,
//! and the `GraphicsPainter` writes sixel (decoded back by libsixel's `sixel2png`) or kitty
//! commands: the whole picture first, then only what changed; never on the last row.

#[path = "common/peers.rs"]
#[allow(dead_code)]
mod peers;
#[path = "common/sixel.rs"]
mod sixel;
use sixel::{sixel_images, sixel2png};

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;
use tether::console::desktop::{
    DesktopView, GraphicsPainter, MAX_VIEW_PIXELS, ViewLimit, ZoomChange,
};
use tether::frame::{Framebuffer, Rect};
use tether::protocol::ScreenSize;
use tether::protocol::stream::RectUpdate;
use tether::render::{CellSize, ColorDepth, RenderMode, psnr, testimage};

/// The terminal: 120x40 cells of 10x20 pixels; the viewer uses rows 0..39 (row 39 is the
/// status line).
const COLS: u16 = 120;
const ROWS: u16 = 40;
const CELL: CellSize = CellSize {
    width: 10,
    height: 20,
};

fn screen_area() -> CellRect {
    CellRect::new(0, 0, COLS, ROWS - 1)
}

fn rgb_of(fb: &Framebuffer, r: Rect) -> RectUpdate {
    let mut rgb = Vec::with_capacity((r.width * r.height * 3) as usize);
    for y in r.y..r.bottom() {
        for x in r.x..r.right() {
            rgb.extend_from_slice(&fb.pixel(x, y)[..3]);
        }
    }
    RectUpdate { rect: r, rgb }
}

/// A desktop view in `mode` and the frame the agent sends for it (the 1920x1080 screen
/// letterboxed into the size the viewer asks for), with the pointer at (300, 200).
fn viewer(mode: RenderMode) -> (DesktopView, Framebuffer) {
    let screen = ScreenSize {
        width: 1920,
        height: 1080,
    };
    let view = DesktopView::with_mode(screen, mode, CELL, ColorDepth::TrueColor);
    let (w, h) = view.pixels_for(COLS, ROWS - 1);
    if mode.glyphs().is_none() {
        assert_eq!((w, h), (1200, 780), "the cell area times the cell's pixels");
    }
    let (w, h) = tether::render::fit(1920, 1080, w, h);
    let mut frame = testimage::desktop(w, h);
    testimage::draw_pointer(&mut frame, 300, 200);
    (view, frame)
}

/// The painter's output without the synchronized-update and cursor save/restore around it.
fn inner(out: &[u8]) -> &[u8] {
    let start = b"\x1b[?2026h\x1b7";
    let end = b"\x1b8\x1b[?2026l";
    assert!(
        out.starts_with(start) && out.ends_with(end),
        "one synchronized write"
    );
    &out[start.len()..out.len() - end.len()]
}

fn raster_height(dcs: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(dcs);
    let attrs = text.split_once('"').expect("raster attributes").1;
    let nums: Vec<u32> = attrs
        .split(|c: char| !c.is_ascii_digit())
        .take(4)
        .map(|n| n.parse().expect("number"))
        .collect();
    nums[3]
}

/// No line feed, and no image reaching the last row: nothing can scroll the screen.
fn assert_never_scrolls(out: &[u8]) {
    assert!(!out.contains(&b'\n'), "no line feeds");
    for (_, row, dcs) in sixel_images(out) {
        let last = u32::from(row) + raster_height(&dcs).div_ceil(u32::from(CELL.height)) - 1;
        assert!(last < u32::from(ROWS) - 1, "an image reaches row {last}");
    }
}

/// What ratatui writes to go from `before` to `after`.
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

#[test]
fn sixel_viewer_draws_the_frame_then_a_pointer_move_as_one_small_tile() {
    let (mut view, frame) = viewer(RenderMode::Sixel { tmux: false });
    view.apply(
        frame.width(),
        frame.height(),
        &[rgb_of(&frame, frame.bounds())],
    );
    assert!(view.mode_label().contains("sixel"));

    // ratatui leaves the picture's cells to the painter: a new frame costs it nothing there.
    let mut shown = Buffer::empty(CellRect::new(0, 0, COLS, ROWS));
    view.render(screen_area(), &mut shown);

    let mut painter = GraphicsPainter::default();
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, false);
    let images = sixel_images(inner(&out));
    assert_eq!(images.len(), 1, "the whole picture, once");
    assert_never_scrolls(inner(&out));
    let placed = view.placement(screen_area());
    assert_eq!((images[0].0, images[0].1), (placed.x, placed.y));
    if peers::available(
        "sixel2png",
        "sixel_viewer_draws_the_frame_then_a_pointer_move_as_one_small_tile",
    ) {
        let decoded = sixel2png(&images[0].2);
        // The picture on whole cells: 1200x675 one to one on 120x34 cells (1200x680), the
        // last 5 rows black.
        assert_eq!((decoded.width(), decoded.height()), (1200, 680));
        let mut expected = Framebuffer::new(1200, 680);
        expected.blit(0, 0, &frame);
        let db = psnr(&expected, &decoded).expect("same size");
        eprintln!("viewer sixel through sixel2png: {db:.2} dB");
        assert!(db >= 34.0, "{db:.2} dB");
    }
    // Nothing changed: nothing written.
    assert!(
        painter
            .paint(Some(&mut view), screen_area(), ROWS, false)
            .is_empty()
    );

    // The pointer moves: the agent sends its old and new places.
    let mut moved = testimage::desktop(frame.width(), frame.height());
    testimage::draw_pointer(&mut moved, 305, 203);
    let damage = [Rect::new(300, 200, 16, 16), Rect::new(305, 203, 16, 16)];
    let rects: Vec<RectUpdate> = damage.iter().map(|r| rgb_of(&moved, *r)).collect();
    view.apply(moved.width(), moved.height(), &rects);
    let mut after = Buffer::empty(CellRect::new(0, 0, COLS, ROWS));
    view.render(screen_area(), &mut after);
    assert!(
        shown.diff(&after).is_empty(),
        "ratatui leaves the picture alone"
    );
    let cells = terminal_bytes(&shown, &after);
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, false);
    eprintln!(
        "pointer move in the sixel viewer: {} bytes (+{} from ratatui)",
        out.len(),
        cells.len()
    );
    assert!(!out.is_empty(), "the move is drawn");
    // One 30x20-pixel tile. The agent's picture is the desktop box-scaled 1.6:1 with exact
    // weights, so its edges are blended into more colours than a whole-pixel box gave (972
    // bytes then, 1425 now).
    assert!(
        out.len() + cells.len() <= 1536,
        "{} bytes",
        out.len() + cells.len()
    );
    assert_never_scrolls(inner(&out));
    assert!(!sixel_images(inner(&out)).is_empty());
}

#[test]
fn kitty_viewer_places_once_edits_in_place_and_gives_way_to_the_menu() {
    let (mut view, frame) = viewer(RenderMode::Kitty { tmux: false });
    view.apply(
        frame.width(),
        frame.height(),
        &[rgb_of(&frame, frame.bounds())],
    );
    let mut painter = GraphicsPainter::default();
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, false);
    let text = String::from_utf8_lossy(inner(&out)).into_owned();
    assert!(text.contains("a=T") && text.contains(",C=1"), "placed once");
    assert!(!out.contains(&b'\n'));

    let mut moved = testimage::desktop(frame.width(), frame.height());
    testimage::draw_pointer(&mut moved, 305, 203);
    let damage = [Rect::new(300, 200, 16, 16), Rect::new(305, 203, 16, 16)];
    let rects: Vec<RectUpdate> = damage.iter().map(|r| rgb_of(&moved, *r)).collect();
    view.apply(moved.width(), moved.height(), &rects);
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, false);
    let text = String::from_utf8_lossy(inner(&out)).into_owned();
    eprintln!("pointer move in the kitty viewer: {} bytes", out.len());
    assert!(
        text.contains("a=f") && !text.contains("a=T"),
        "edited in place"
    );
    assert!(out.len() <= 1024, "{} bytes", out.len());

    // The menu opens: the image (drawn above text) is deleted so the menu shows; when it
    // closes, the picture is placed again whole.
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, true);
    assert!(String::from_utf8_lossy(&out).contains("a=d"));
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, false);
    assert!(String::from_utf8_lossy(inner(&out)).contains("a=T"));
    // Leaving the viewer removes it too.
    let out = painter.paint(None, screen_area(), ROWS, false);
    assert!(String::from_utf8_lossy(&out).contains("a=d"));
}

#[test]
fn text_modes_paint_nothing() {
    let (mut view, frame) = viewer(RenderMode::HalfBlock);
    view.apply(
        frame.width(),
        frame.height(),
        &[rgb_of(&frame, frame.bounds())],
    );
    let mut painter = GraphicsPainter::default();
    assert!(
        painter
            .paint(Some(&mut view), screen_area(), ROWS, false)
            .is_empty()
    );
}

#[test]
fn zoomed_sixel_shows_the_panned_part_at_full_resolution() {
    let test = "zoomed_sixel_shows_the_panned_part_at_full_resolution";
    let screen = ScreenSize {
        width: 1920,
        height: 1080,
    };
    let mut view = DesktopView::with_mode(
        screen,
        RenderMode::Sixel { tmux: false },
        CELL,
        ColorDepth::TrueColor,
    );
    assert_eq!(view.zoom_by(1, COLS, ROWS - 1), ZoomChange::Changed);
    let (w, h) = view.pixels_for(COLS, ROWS - 1);
    // Twice the cell area would be 2400x1560: more than the remote's 1920 pixels across, so
    // the agent is asked for no more than it has (no upscaling).
    assert_eq!((w, h), (1920, 1248));
    let (w, h) = tether::render::fit(1920, 1080, w, h);
    let frame = testimage::desktop(w, h);
    view.apply(w, h, &[rgb_of(&frame, frame.bounds())]);
    view.pan_by(screen_area(), 30, 10);
    assert_eq!(view.pan_in(screen_area()), (30, 10));
    let mut painter = GraphicsPainter::default();
    let out = painter.paint(Some(&mut view), screen_area(), ROWS, false);
    let images = sixel_images(inner(&out));
    assert_eq!(images.len(), 1);
    assert_eq!((images[0].0, images[0].1), (0, 0), "the whole area");
    assert_never_scrolls(inner(&out));
    if peers::available("sixel2png", test) {
        let decoded = sixel2png(&images[0].2);
        assert_eq!((decoded.width(), decoded.height()), (1200, 780));
        // Pan (30, 10) cells of 10x20 pixels: the picture from (300, 200), one to one.
        let expected = frame.crop(Rect::new(300, 200, 1200, 780));
        let db = psnr(&expected, &decoded).expect("same size");
        assert!(db >= 34.0, "{db:.2} dB");
    }
}

#[test]
fn zooming_on_a_wide_terminal_never_asks_more_than_the_hub_sends() {
    // 200x60 cells of 10x20 pixels (the viewer on 200x59) and a 5K remote: zoom 3 once asked
    // for 6000x3540 pixels, which the hub refuses, closing the viewer.
    let (cols, rows) = (200u16, 60u16);
    let area = CellRect::new(0, 0, cols, rows - 1);
    let screen = ScreenSize {
        width: 5120,
        height: 2880,
    };
    let mut view = DesktopView::with_mode(
        screen,
        RenderMode::Sixel { tmux: false },
        CELL,
        ColorDepth::TrueColor,
    );
    let mut asked = vec![view.pixels_for(area.width, area.height)];
    let mut last = ZoomChange::Changed;
    for _ in 0..3 {
        last = view.zoom_by(1, area.width, area.height);
        if last == ZoomChange::Changed {
            asked.push(view.pixels_for(area.width, area.height));
        }
    }
    assert_eq!(asked, [(2000, 1180), (4000, 2360), (4096, 2416)]);
    assert_eq!(
        last,
        ZoomChange::Limited(ViewLimit::Hub),
        "zoom 4 gets nothing more"
    );
    assert_eq!(view.zoom, 3);
    for (w, h) in &asked {
        assert!(*w <= MAX_VIEW_PIXELS && *h <= MAX_VIEW_PIXELS, "{w}x{h}");
    }
    // The agent's picture for the last size is drawn panned, never reaching the last row.
    let (w, h) = tether::render::fit(5120, 2880, 4096, 2416);
    assert_eq!((w, h), (4096, 2304));
    let frame = testimage::desktop(w, h);
    view.apply(w, h, &[rgb_of(&frame, frame.bounds())]);
    view.pan_by(area, 100, 40);
    let mut painter = GraphicsPainter::default();
    let out = painter.paint(Some(&mut view), area, rows, false);
    let images = sixel_images(inner(&out));
    assert_eq!(images.len(), 1);
    assert!(!out.contains(&b'\n'));
    let bottom = u32::from(images[0].1) + raster_height(&images[0].2).div_ceil(20);
    assert!(
        bottom < u32::from(rows),
        "the image ends above the last row"
    );
}
