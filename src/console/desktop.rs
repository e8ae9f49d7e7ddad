//! A remote desktop in the terminal: the agent's pixel frames are applied to a local
//! [`Framebuffer`] and drawn either as text cells with the renderer's [`TextView`] (half blocks
//! or sextants, through ratatui's buffer) or as sixel / kitty graphics (the damage is kept here
//! and written after ratatui's draw by [`GraphicsPainter`]); key presses become X11 keysyms and
//! mouse cells become pointer positions on the remote screen.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;

use crate::frame::{Framebuffer, Rect};
use crate::protocol::stream::{RectUpdate, StreamFrame};
use crate::protocol::{InputEvent, ScreenSize};
use crate::render::{CellSize, ColorDepth, Glyphs, KittyView, RenderMode, SixelView, TextView};

/// The largest zoom: the picture asked for at this many times the console's size.
pub const MAX_ZOOM: u8 = 4;

/// The console's copy of a remote screen.
#[derive(Debug)]
pub struct DesktopView {
    /// The remote screen's size, in its pixels (pointer positions are in these).
    pub screen: ScreenSize,
    /// How the picture is drawn: text cells, or sixel / kitty graphics.
    pub mode: RenderMode,
    /// Pixels per terminal cell (graphics modes ask the agent for cells x this).
    pub cell: CellSize,
    /// Graphics modes: the picture's rectangles changed since the painter last wrote them.
    pub damage: Vec<Rect>,
    /// Graphics modes: the whole picture must be written again (new size, new mode).
    pub repaint: bool,
    pub glyphs: Glyphs,
    pub depth: ColorDepth,
    /// The picture as streamed (the size asked for, letterboxed by the agent).
    pub framebuffer: Framebuffer,
    /// The picture as cells.
    pub view: TextView,
    /// Buttons held, as last sent (bit 0 left, 1 middle, 2 right).
    pub buttons: u8,
    /// 1: the whole screen fits the console; more: that many times larger, panned.
    pub zoom: u8,
    /// The first cell shown, when zoomed (clamped when drawn).
    pub pan: (u16, u16),
    /// The last pointer position sent, so moves within one cell are not sent again.
    pub last_pointer: Option<(u32, u32)>,
    /// Frames received since the last tick, and in the last full second.
    pub frames_this_second: u32,
    pub frames_per_second: u32,
    /// Frames that arrived before the `Watching` reply named their stream.
    pub early: Vec<StreamFrame>,
    /// Capture to arrival of the last frame, when frames carry their capture time (shown
    /// as `lat —` until they do).
    pub latency: Option<std::time::Duration>,
    /// The picture size last asked of the agent: a larger frame is stale (from before a zoom
    /// out, or after a screenshot) and is not drawn.
    pub asked: Option<(u32, u32)>,
    /// A screenshot under way: the stream was asked at the remote's own size and its frames
    /// fill this picture until it is whole.
    pub grab: Option<Grab>,
}

/// A screenshot at the remote's own size, filled from the stream.
#[derive(Debug)]
pub struct Grab {
    pub picture: Framebuffer,
    /// Pixels received so far (the first update after a resize is the whole picture).
    covered: u64,
    /// When it was asked (it is given up after a while).
    pub since: chrono::DateTime<chrono::Utc>,
}

impl Grab {
    pub fn new(since: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            picture: Framebuffer::new(0, 0),
            covered: 0,
            since,
        }
    }
}

impl DesktopView {
    pub fn new(screen: ScreenSize, glyphs: Glyphs, depth: ColorDepth) -> Self {
        let mode = match glyphs {
            Glyphs::Sextant | Glyphs::Quadrant => RenderMode::Sextant,
            Glyphs::HalfBlock => RenderMode::HalfBlock,
        };
        Self::with_mode(screen, mode, CellSize::DEFAULT, depth)
    }

    /// A view drawn in `mode` on a terminal whose cells are `cell` pixels.
    pub fn with_mode(
        screen: ScreenSize,
        mode: RenderMode,
        cell: CellSize,
        depth: ColorDepth,
    ) -> Self {
        let glyphs = mode.glyphs().unwrap_or(Glyphs::HalfBlock);
        Self {
            screen,
            mode,
            cell,
            damage: Vec::new(),
            repaint: true,
            glyphs,
            depth,
            framebuffer: Framebuffer::new(0, 0),
            view: TextView::new(glyphs, depth, 0, 0),
            buttons: 0,
            zoom: 1,
            pan: (0, 0),
            last_pointer: None,
            frames_this_second: 0,
            frames_per_second: 0,
            early: Vec::new(),
            latency: None,
            asked: None,
            grab: None,
        }
    }

    /// A frame from the agent: into the screenshot under way when it has the remote's own
    /// size, dropped when larger than asked (stale), else applied. Returns the screenshot
    /// once whole.
    pub fn receive(
        &mut self,
        width: u32,
        height: u32,
        rects: &[RectUpdate],
    ) -> Option<Framebuffer> {
        let native = (width, height) == (self.screen.width, self.screen.height);
        if let Some(grab) = self.grab.as_mut().filter(|_| native) {
            if (grab.picture.width(), grab.picture.height()) != (width, height) {
                grab.picture = Framebuffer::new(width, height);
                grab.covered = 0;
            }
            for r in put_rects(&mut grab.picture, rects) {
                grab.covered += u64::from(r.width) * u64::from(r.height);
            }
            if grab.covered >= u64::from(width) * u64::from(height) {
                return self.grab.take().map(|g| g.picture);
            }
            return None;
        }
        if self.asked.is_some_and(|(w, h)| width > w || height > h) {
            return None;
        }
        self.apply(width, height, rects);
        None
    }

    /// Drawn with sixel or kitty graphics (not ratatui's cells).
    pub fn is_graphics(&self) -> bool {
        self.mode.glyphs().is_none()
    }

    /// Pixels of picture per terminal cell: the glyph's for text, the terminal's for graphics.
    fn cell_pixels(&self) -> (u32, u32) {
        if self.is_graphics() {
            (u32::from(self.cell.width), u32::from(self.cell.height))
        } else {
            self.glyphs.cell_pixels()
        }
    }

    /// The picture's size in cells.
    pub fn picture_cells(&self) -> (u16, u16) {
        if !self.is_graphics() {
            return self.view.size();
        }
        let (cw, ch) = self.cell_pixels();
        (
            u16::try_from(self.framebuffer.width().div_ceil(cw)).unwrap_or(u16::MAX),
            u16::try_from(self.framebuffer.height().div_ceil(ch)).unwrap_or(u16::MAX),
        )
    }

    /// The pixel size to ask the agent for, to fill `cols` x `rows` cells.
    pub fn pixels_for(&self, cols: u16, rows: u16) -> (u32, u32) {
        let (gw, gh) = self.cell_pixels();
        let zoom = u32::from(self.zoom.max(1));
        (
            u32::from(cols.max(1)) * gw * zoom,
            u32::from(rows.max(1)) * gh * zoom,
        )
    }

    /// Zoom in (`step` 1) or out (-1); returns whether the zoom changed (then ask for the new
    /// size). The pan follows, so the same part of the screen stays in view.
    pub fn zoom_by(&mut self, step: i8) -> bool {
        let old = self.zoom.max(1);
        let new = old.saturating_add_signed(step).clamp(1, MAX_ZOOM);
        if new == old {
            return false;
        }
        let scale = |v: u16| {
            u16::try_from(u32::from(v) * u32::from(new) / u32::from(old)).unwrap_or(u16::MAX)
        };
        self.pan = (scale(self.pan.0), scale(self.pan.1));
        self.zoom = new;
        true
    }

    /// Move the view over a zoomed picture by `dx`, `dy` cells (clamped to the picture).
    pub fn pan_by(&mut self, area: CellRect, dx: i32, dy: i32) {
        let (x, y) = self.pan_in(area);
        let move_by = |v: u16, d: i32| u16::try_from((i32::from(v) + d).max(0)).unwrap_or(u16::MAX);
        self.pan = (move_by(x, dx), move_by(y, dy));
        self.pan = self.pan_in(area);
    }

    /// The pan, clamped so the view stays on the picture.
    pub fn pan_in(&self, area: CellRect) -> (u16, u16) {
        let (cols, rows) = self.picture_cells();
        (
            self.pan.0.min(cols.saturating_sub(area.width)),
            self.pan.1.min(rows.saturating_sub(area.height)),
        )
    }

    /// Draw the picture into `area` of `buf`: centred when it fits, else the panned part.
    pub fn render(&self, area: CellRect, buf: &mut Buffer) {
        let drawn = self.placement(area);
        if self.is_graphics() {
            // Sixel or kitty: the painter writes the picture there after the draw.
            crate::render::skip_cells(buf, drawn);
            return;
        }
        let (px, py) = self.pan_in(area);
        let cells = self.view.cells();
        for y in 0..drawn.height {
            for x in 0..drawn.width {
                let from = cells.cell((px.saturating_add(x), py.saturating_add(y)));
                if let (Some(from), Some(to)) = (from, buf.cell_mut((drawn.x + x, drawn.y + y))) {
                    to.clone_from(from);
                }
            }
        }
    }

    /// Switch between half blocks and sextants; the picture is redrawn from what is kept.
    pub fn toggle_glyphs(&mut self) {
        let next = match self.mode {
            RenderMode::HalfBlock => RenderMode::Sextant,
            _ => RenderMode::HalfBlock,
        };
        self.set_mode(next);
    }

    /// Draw in `mode` from now on; the picture is redrawn from what is kept (the caller asks
    /// the agent for the new mode's pixel size).
    pub fn set_mode(&mut self, mode: RenderMode) {
        self.mode = mode;
        self.damage.clear();
        self.repaint = true;
        if let Some(glyphs) = mode.glyphs() {
            self.glyphs = glyphs;
            self.rebuild_view();
        }
    }

    /// The rectangles changed since the last call, or the whole picture (graphics modes).
    pub fn take_damage(&mut self) -> Option<Vec<Rect>> {
        if self.repaint {
            self.repaint = false;
            self.damage.clear();
            return Some(vec![self.framebuffer.bounds()]);
        }
        if self.damage.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.damage))
    }

    /// A human name for the render mode (and zoom), for the status line.
    pub fn mode_label(&self) -> String {
        let glyphs = match self.mode {
            RenderMode::HalfBlock => "half blocks",
            RenderMode::Sextant => "sextants",
            RenderMode::Sixel { .. } => "sixel",
            RenderMode::Kitty { .. } => "kitty",
        };
        if self.zoom > 1 {
            format!("{glyphs} · zoom {}x", self.zoom)
        } else {
            glyphs.to_owned()
        }
    }

    fn rebuild_view(&mut self) {
        let (gw, gh) = self.glyphs.cell_pixels();
        let cols = u16::try_from(self.framebuffer.width().div_ceil(gw)).unwrap_or(u16::MAX);
        let rows = u16::try_from(self.framebuffer.height().div_ceil(gh)).unwrap_or(u16::MAX);
        self.view = TextView::new(self.glyphs, self.depth, cols, rows);
        self.view.update(&self.framebuffer);
    }

    /// Apply a frame's rectangles (RGB, 3 bytes a pixel); a new size starts a new picture.
    /// Rectangles that do not fit the picture or their pixels are skipped.
    pub fn apply(&mut self, width: u32, height: u32, rects: &[RectUpdate]) {
        self.frames_this_second = self.frames_this_second.saturating_add(1);
        let resized = self.framebuffer.width() != width || self.framebuffer.height() != height;
        if resized {
            self.framebuffer = Framebuffer::new(width, height);
        }
        let damage = put_rects(&mut self.framebuffer, rects);
        if self.is_graphics() {
            // Drawn after the frame by the painter; damage piles up until then.
            if resized {
                self.repaint = true;
                self.damage.clear();
            } else if !self.repaint {
                self.damage.extend(damage);
                if self.damage.len() > 256 {
                    self.repaint = true;
                    self.damage.clear();
                }
            }
        } else if resized {
            self.rebuild_view();
        } else if !damage.is_empty() {
            self.view.update_damage(&self.framebuffer, &damage);
        }
    }

    /// Where the picture is drawn inside `area`: centred, at most the view's size.
    pub fn placement(&self, area: CellRect) -> CellRect {
        let (cols, rows) = self.picture_cells();
        let width = cols.min(area.width);
        let height = rows.min(area.height);
        CellRect::new(
            area.x + (area.width - width) / 2,
            area.y + (area.height - height) / 2,
            width,
            height,
        )
    }

    /// The remote pixel under cell (`col`, `row`) of the console, the picture being drawn in
    /// `area` (as [`placement`](Self::placement) puts it); clamped to the picture's edges.
    pub fn remote_point(&self, area: CellRect, col: u16, row: u16) -> Option<(u32, u32)> {
        let drawn = self.placement(area);
        if drawn.width == 0 || drawn.height == 0 {
            return None;
        }
        let (px, py) = self.pan_in(area);
        let cx = u32::from(col.clamp(drawn.x, drawn.right() - 1) - drawn.x) + u32::from(px);
        let cy = u32::from(row.clamp(drawn.y, drawn.bottom() - 1) - drawn.y) + u32::from(py);
        let (cols, rows) = self.picture_cells();
        let (w, h) = (u32::from(cols), u32::from(rows));
        // The middle of the cell, in remote pixels.
        let x = (u64::from(cx) * 2 + 1) * u64::from(self.screen.width) / (u64::from(w) * 2);
        let y = (u64::from(cy) * 2 + 1) * u64::from(self.screen.height) / (u64::from(h) * 2);
        Some((x as u32, y as u32))
    }

    /// The pointer events for a mouse event over `area`; `None` for what the remote does not
    /// need to know.
    pub fn pointer(&mut self, area: CellRect, mouse: &MouseEvent) -> Option<Vec<InputEvent>> {
        let (x, y) = self.remote_point(area, mouse.column, mouse.row)?;
        let bit = |button: MouseButton| match button {
            MouseButton::Left => 1u8,
            MouseButton::Middle => 2,
            MouseButton::Right => 4,
        };
        let at = |buttons: u8| InputEvent::Pointer { x, y, buttons };
        let events = match mouse.kind {
            MouseEventKind::Down(b) => {
                self.buttons |= bit(b);
                vec![at(self.buttons)]
            }
            MouseEventKind::Up(b) => {
                self.buttons &= !bit(b);
                vec![at(self.buttons)]
            }
            MouseEventKind::Drag(_) | MouseEventKind::Moved => {
                if self.last_pointer == Some((x, y)) {
                    return None; // still in the same cell
                }
                vec![at(self.buttons)]
            }
            // A wheel step is a press and a release of its button.
            MouseEventKind::ScrollUp => vec![at(self.buttons | 8), at(self.buttons)],
            MouseEventKind::ScrollDown => vec![at(self.buttons | 16), at(self.buttons)],
            MouseEventKind::ScrollLeft | MouseEventKind::ScrollRight => return None,
        };
        self.last_pointer = Some((x, y));
        Some(events)
    }
}

/// Write rectangle updates (RGB, 3 bytes a pixel) into `fb`; those that do not fit it or
/// their pixels are skipped. Returns the rectangles written.
pub fn put_rects(fb: &mut Framebuffer, rects: &[RectUpdate]) -> Vec<Rect> {
    let bounds = fb.bounds();
    let mut done = Vec::with_capacity(rects.len());
    for update in rects {
        let r = update.rect;
        let inside = r.right() <= bounds.right() && r.bottom() <= bounds.bottom();
        let pixels = u64::from(r.width) * u64::from(r.height) * 3;
        if !inside || r.is_empty() || update.rgb.len() as u64 != pixels {
            continue;
        }
        for (i, rgb) in update.rgb.chunks_exact(3).enumerate() {
            let i = i as u32;
            fb.set_pixel(
                r.x + i % r.width,
                r.y + i / r.width,
                [rgb[0], rgb[1], rgb[2], 255],
            );
        }
        done.push(r);
    }
    done
}

/// What the terminal shows now, so a change of any of it means writing the whole picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shown {
    mode: RenderMode,
    area: CellRect,
    picture: (u32, u32),
    pan: (u16, u16),
    terminal_rows: u16,
}

enum Target {
    Sixel(SixelView),
    Kitty(KittyView),
}

/// Writes a graphics-mode desktop to the terminal after ratatui's draw: the whole picture when
/// it is new (mode, size, pan, a resize, after an overlay), else only the damaged tiles (sixel)
/// or in-place edits (kitty). Owned by the app loop: this is the effect side of drawing.
pub struct GraphicsPainter {
    shown: Option<Shown>,
    target: Option<Target>,
    /// The picture in view on whole cells (what the target shows).
    canvas: Framebuffer,
    /// Bytes written to the terminal so far (for measurements).
    pub written: u64,
}

impl Default for GraphicsPainter {
    fn default() -> Self {
        Self {
            shown: None,
            target: None,
            canvas: Framebuffer::new(0, 0),
            written: 0,
        }
    }
}

/// The kitty image id of the live desktop.
const KITTY_IMAGE_ID: u32 = 0x7e7e;

impl GraphicsPainter {
    /// The bytes that bring the terminal up to date with `desktop`, drawn in `area` (the
    /// viewer's screen area, above the status line) of a terminal `terminal_rows` tall.
    /// `covered`: a menu or dialog is drawn over the picture, so graphics wait (a kitty image
    /// is removed, since it would hide the menu); the picture is written whole afterwards.
    pub fn paint(
        &mut self,
        desktop: Option<&mut DesktopView>,
        area: CellRect,
        terminal_rows: u16,
        covered: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let desktop = match desktop {
            Some(d) if d.is_graphics() && !covered => d,
            _ => {
                self.clear(&mut out);
                self.written += out.len() as u64;
                return out;
            }
        };
        let drawn = desktop.placement(area);
        let pan = desktop.pan_in(area);
        if drawn.width == 0
            || drawn.height == 0
            || desktop.framebuffer.width() == 0
            || desktop.framebuffer.height() == 0
        {
            return out;
        }
        let damage = desktop.take_damage();
        let fb = &desktop.framebuffer;
        let shown = Shown {
            mode: desktop.mode,
            area: drawn,
            picture: (fb.width(), fb.height()),
            pan,
            terminal_rows,
        };
        let (cw, ch) = (
            u32::from(desktop.cell.width),
            u32::from(desktop.cell.height),
        );
        // The part of the picture in view (all of it unless zoomed).
        let visible = Rect::new(
            u32::from(pan.0) * cw,
            u32::from(pan.1) * ch,
            u32::from(drawn.width) * cw,
            u32::from(drawn.height) * ch,
        )
        .intersect(&fb.bounds());
        let whole = self.shown != Some(shown) || self.target.is_none();
        if !whole && damage.is_none() {
            return out;
        }
        let damage: Vec<Rect> = damage
            .unwrap_or_default()
            .iter()
            .map(|r| r.intersect(&visible))
            .filter(|r| !r.is_empty())
            .map(|r| Rect::new(r.x - visible.x, r.y - visible.y, r.width, r.height))
            .collect();
        if !whole && damage.is_empty() {
            return out;
        }
        // One write, inside synchronized output, with the cursor put back where ratatui left it.
        out.extend_from_slice(b"\x1b[?2026h\x1b7");
        if whole {
            self.clear(&mut out);
        }
        // The picture on whole cells, one to one: the part in view copied in, the rest of the
        // last cell row or column black. Only damaged rectangles are copied after the first.
        if whole {
            self.canvas =
                Framebuffer::new(u32::from(drawn.width) * cw, u32::from(drawn.height) * ch);
            self.canvas.blit(0, 0, &fb.crop(visible));
        } else {
            for r in &damage {
                let from = Rect::new(r.x + visible.x, r.y + visible.y, r.width, r.height);
                self.canvas.blit(r.x, r.y, &fb.crop(from));
            }
        }
        let src = &self.canvas;
        if whole {
            let (tmux_sixel, tmux_kitty) = match desktop.mode {
                RenderMode::Sixel { tmux } => (tmux, false),
                RenderMode::Kitty { tmux } => (false, tmux),
                _ => (false, false),
            };
            let mut target = if matches!(desktop.mode, RenderMode::Kitty { .. }) {
                let mut view = KittyView::new(KITTY_IMAGE_ID, drawn, src.width(), src.height());
                view.set_tmux_passthrough(tmux_kitty);
                Target::Kitty(view)
            } else {
                let mut view = SixelView::new(
                    drawn,
                    terminal_rows,
                    desktop.cell,
                    crate::render::sixel::DEFAULT_COLORS,
                );
                view.set_tmux_passthrough(tmux_sixel);
                Target::Sixel(view)
            };
            match &mut target {
                Target::Sixel(view) => view.render(src, &mut out),
                Target::Kitty(view) => view.render(src, &mut out),
            }
            self.target = Some(target);
            self.shown = Some(shown);
        } else if let Some(target) = &mut self.target {
            match target {
                Target::Sixel(view) => view.render_damage(src, &damage, &mut out),
                Target::Kitty(view) => view.render_damage(src, &damage, &mut out),
            }
        }
        out.extend_from_slice(b"\x1b8\x1b[?2026l");
        self.written += out.len() as u64;
        out
    }

    /// Take the picture off the terminal: a kitty image is deleted (sixel pixels are painted
    /// over by ratatui's cells).
    fn clear(&mut self, out: &mut Vec<u8>) {
        if let Some(Target::Kitty(view)) = &mut self.target {
            view.delete(out);
        }
        self.target = None;
        self.shown = None;
    }
}

/// The picture as a PNG file's bytes.
pub fn png_bytes(picture: &Framebuffer) -> Result<Vec<u8>, image::ImageError> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut out,
        picture.as_rgba(),
        picture.width(),
        picture.height(),
        image::ExtendedColorType::Rgba8,
        image::ImageFormat::Png,
    )?;
    Ok(out.into_inner())
}

/// Ctrl-Alt-Del for the remote: Control_L, Alt_L and Delete down, then up in reverse.
pub fn ctrl_alt_del() -> Vec<InputEvent> {
    let keys = [CONTROL_L, ALT_L, DELETE];
    let mut events: Vec<InputEvent> = keys
        .iter()
        .map(|&keysym| InputEvent::Key { keysym, down: true })
        .collect();
    events.extend(keys.iter().rev().map(|&keysym| InputEvent::Key {
        keysym,
        down: false,
    }));
    events
}

/// The X11 keysym of a key, without its modifiers.
pub fn keysym(code: KeyCode) -> Option<u32> {
    Some(match code {
        KeyCode::Char(c) => char_keysym(c),
        KeyCode::Enter => 0xff0d,
        KeyCode::Backspace => 0xff08,
        KeyCode::Tab | KeyCode::BackTab => 0xff09,
        KeyCode::Esc => 0xff1b,
        KeyCode::Left => 0xff51,
        KeyCode::Up => 0xff52,
        KeyCode::Right => 0xff53,
        KeyCode::Down => 0xff54,
        KeyCode::Home => 0xff50,
        KeyCode::End => 0xff57,
        KeyCode::PageUp => 0xff55,
        KeyCode::PageDown => 0xff56,
        KeyCode::Insert => 0xff63,
        KeyCode::Delete => 0xffff,
        KeyCode::F(n @ 1..=35) => 0xffbe + u32::from(n - 1),
        _ => return None,
    })
}

/// Latin-1 characters are their own keysym; the rest of Unicode is 0x01000000 + code point.
fn char_keysym(c: char) -> u32 {
    let cp = u32::from(c);
    if (0x20..=0x7e).contains(&cp) || (0xa0..=0xff).contains(&cp) {
        cp
    } else {
        0x0100_0000 + cp
    }
}

const SHIFT_L: u32 = 0xffe1;
const CONTROL_L: u32 = 0xffe3;
const ALT_L: u32 = 0xffe9;
const DELETE: u32 = 0xffff;

/// A key press as events for the remote: modifiers down, the key down and up, modifiers up.
pub fn key_events(key: &KeyEvent) -> Vec<InputEvent> {
    let Some(sym) = keysym(key.code) else {
        return Vec::new();
    };
    let mut modifiers = Vec::new();
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        modifiers.push(CONTROL_L);
    }
    if key.modifiers.contains(KeyModifiers::ALT) {
        modifiers.push(ALT_L);
    }
    // A shifted character is already its own keysym ('A'); other keys need Shift (Shift-Tab).
    if key.code == KeyCode::BackTab
        || (key.modifiers.contains(KeyModifiers::SHIFT) && !matches!(key.code, KeyCode::Char(_)))
    {
        modifiers.push(SHIFT_L);
    }
    let mut events: Vec<InputEvent> = modifiers
        .iter()
        .map(|&keysym| InputEvent::Key { keysym, down: true })
        .collect();
    events.push(InputEvent::Key {
        keysym: sym,
        down: true,
    });
    events.push(InputEvent::Key {
        keysym: sym,
        down: false,
    });
    events.extend(modifiers.iter().rev().map(|&keysym| InputEvent::Key {
        keysym,
        down: false,
    }));
    events
}

/// Pasted text typed key by key: each character down and up (line ends as Return, tabs as
/// Tab; other control characters are dropped).
pub fn text_events(text: &str) -> Vec<InputEvent> {
    let mut events = Vec::new();
    let mut last = '\0';
    for c in text.chars() {
        let keysym = match c {
            '\n' if last == '\r' => None,
            '\r' | '\n' => Some(0xff0d),
            '\t' => Some(0xff09),
            c if c.is_control() => None,
            c => Some(char_keysym(c)),
        };
        last = c;
        if let Some(keysym) = keysym {
            events.push(InputEvent::Key { keysym, down: true });
            events.push(InputEvent::Key {
                keysym,
                down: false,
            });
        }
    }
    events
}

/// Pixels of a rectangle update, for the received-bytes rate.
pub fn frame_bytes(rects: &[RectUpdate]) -> u64 {
    rects.iter().map(|r| r.rgb.len() as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Rect;

    #[test]
    fn keysyms_of_common_keys() {
        assert_eq!(keysym(KeyCode::Char('a')), Some(0x61));
        assert_eq!(keysym(KeyCode::Char('7')), Some(0x37));
        assert_eq!(keysym(KeyCode::Enter), Some(0xff0d));
        assert_eq!(keysym(KeyCode::F(1)), Some(0xffbe));
        assert_eq!(keysym(KeyCode::F(12)), Some(0xffc9));
        assert_eq!(keysym(KeyCode::Char('€')), Some(0x0100_20ac));
    }

    #[test]
    fn ctrl_key_is_wrapped_in_control() {
        let events = key_events(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        let keys: Vec<(u32, bool)> = events
            .iter()
            .filter_map(|e| match e {
                InputEvent::Key { keysym, down } => Some((*keysym, *down)),
                InputEvent::Pointer { .. } => None,
            })
            .collect();
        assert_eq!(
            keys,
            [
                (CONTROL_L, true),
                (0x63, true),
                (0x63, false),
                (CONTROL_L, false)
            ]
        );
    }

    #[test]
    fn pasted_text_is_typed() {
        let syms: Vec<(u32, bool)> = text_events("a\r\nB\x07")
            .into_iter()
            .filter_map(|e| match e {
                InputEvent::Key { keysym, down } => Some((keysym, down)),
                InputEvent::Pointer { .. } => None,
            })
            .collect();
        assert_eq!(
            syms,
            [
                (0x61, true),
                (0x61, false),
                (0xff0d, true),
                (0xff0d, false),
                (0x42, true),
                (0x42, false)
            ]
        );
    }

    #[test]
    fn frames_resize_and_skip_bad_rects() {
        let mut d = DesktopView::new(
            ScreenSize {
                width: 1920,
                height: 1080,
            },
            Glyphs::HalfBlock,
            ColorDepth::TrueColor,
        );
        let good = RectUpdate {
            rect: Rect::new(0, 0, 2, 2),
            rgb: vec![255; 12],
        };
        let bad = RectUpdate {
            rect: Rect::new(3, 3, 2, 2),
            rgb: vec![255; 12],
        };
        d.apply(4, 4, &[good, bad]);
        assert_eq!(d.framebuffer.pixel(1, 1), [255, 255, 255, 255]);
        assert_eq!(d.framebuffer.pixel(3, 3), [0, 0, 0, 255]);
        assert_eq!(d.view.size(), (4, 2));
    }
}
