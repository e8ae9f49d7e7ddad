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
use crate::render::sixel::{Palette, PaneOrigin};
use crate::render::{
    CellGrid, CellSize, ColorDepth, Glyphs, KittyView, RenderMode, SixelView, TextView,
};

/// The largest zoom: the picture asked for at this many times the console's size.
pub const MAX_ZOOM: u8 = 4;

/// The largest picture side the hub streams: a larger `Watch` is refused, and a refused `Watch`
/// closes the viewer.
pub use crate::protocol::MAX_VIEW_PIXELS;

/// What kept the picture asked for smaller than the console's area times the zoom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewLimit {
    /// Nothing: the area times the zoom.
    None,
    /// Graphics modes: the remote screen's own size (more would only be upscaled).
    Remote,
    /// The hub's largest view, [`MAX_VIEW_PIXELS`] a side.
    Hub,
}

/// What a zoom step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoomChange {
    /// Zoomed: ask for the new size.
    Changed,
    /// Already at 1x (out) or [`MAX_ZOOM`] (in).
    AtEnd,
    /// Zooming in would get no more pixels: the picture is already as large as this allows.
    Limited(ViewLimit),
}

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
    /// Frames that arrived before the `Watching` reply named their stream, with their size
    /// on the link.
    pub early: Vec<(StreamFrame, u64)>,
    /// Capture to arrival of the last frame, when frames carry their capture time (shown
    /// as `lat —` until they do).
    pub latency: Option<std::time::Duration>,
    /// The picture size last asked of the agent: a larger frame is stale (from before a zoom
    /// out, or after a screenshot) and is not drawn.
    pub asked: Option<(u32, u32)>,
    /// A screenshot under way: the stream was asked at the remote's own size and its frames
    /// fill this picture until it is whole.
    pub grab: Option<Grab>,
    /// The screenshot under way was scaled down to this size (the remote is larger than the
    /// hub streams), for the status line once it is saved.
    pub shot_scaled: Option<(u32, u32)>,
}

/// A screenshot at the remote's own size (or the largest the hub streams), filled from the
/// stream.
#[derive(Debug)]
pub struct Grab {
    pub picture: Framebuffer,
    /// The picture's size, as asked of the agent.
    pub size: (u32, u32),
    /// Pixels received so far (the first update after a resize is the whole picture).
    covered: u64,
    /// When it was asked (it is given up after a while).
    pub since: chrono::DateTime<chrono::Utc>,
}

impl Grab {
    pub fn new(since: chrono::DateTime<chrono::Utc>, size: (u32, u32)) -> Self {
        Self {
            picture: Framebuffer::new(0, 0),
            size,
            covered: 0,
            since,
        }
    }
}

impl DesktopView {
    pub fn new(screen: ScreenSize, glyphs: Glyphs, depth: ColorDepth) -> Self {
        let mode = match glyphs {
            Glyphs::Sextant => RenderMode::Sextant,
            Glyphs::Quadrant => RenderMode::Quadrant,
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
            shot_scaled: None,
        }
    }

    /// The size a screenshot is asked at: the remote's own, or scaled down (keeping its
    /// aspect) to the hub's largest view; `true` when scaled.
    pub fn screenshot_size(&self) -> ((u32, u32), bool) {
        let ScreenSize { width, height } = self.screen;
        if width <= MAX_VIEW_PIXELS && height <= MAX_VIEW_PIXELS {
            return ((width.max(1), height.max(1)), false);
        }
        let size = crate::render::fit(width, height, MAX_VIEW_PIXELS, MAX_VIEW_PIXELS);
        (size, true)
    }

    /// A frame from the agent: into the screenshot under way when it has the screenshot's
    /// size, dropped when larger than asked (stale), else applied. Returns the screenshot
    /// once whole.
    pub fn receive(
        &mut self,
        width: u32,
        height: u32,
        rects: &[RectUpdate],
    ) -> Option<Framebuffer> {
        if let Some(grab) = self.grab.as_mut().filter(|g| g.size == (width, height)) {
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

    /// How picture pixels lie on the terminal's cells in the current mode (their aspect).
    fn grid(&self) -> CellGrid {
        CellGrid::new(self.mode.glyphs(), self.cell)
    }

    /// The picture's size in cells.
    pub fn picture_cells(&self) -> (u16, u16) {
        if !self.is_graphics() {
            return self.view.size();
        }
        self.grid()
            .cells(self.framebuffer.width(), self.framebuffer.height())
    }

    /// The pixel size to ask the agent for, to fill `cols` x `rows` cells.
    pub fn pixels_for(&self, cols: u16, rows: u16) -> (u32, u32) {
        self.view_for(cols, rows, self.zoom).0
    }

    /// The pixel size to ask for at `zoom`, and what limited it: `cols` x `rows` cells times
    /// the zoom, scaled down (both sides together) so that graphics modes never ask for more
    /// than the remote screen has and no side exceeds the hub's [`MAX_VIEW_PIXELS`].
    pub fn view_for(&self, cols: u16, rows: u16, zoom: u8) -> ((u32, u32), ViewLimit) {
        let (bw, bh) = self.grid().request(cols.max(1), rows.max(1));
        let zoom = u64::from(zoom.max(1));
        let mut w = u64::from(bw) * zoom;
        let mut h = u64::from(bh) * zoom;
        let mut limit = ViewLimit::None;
        let (sw, sh) = (u64::from(self.screen.width), u64::from(self.screen.height));
        if self.is_graphics() && sw > 0 && sh > 0 {
            // The agent fits the screen into the view: its scale is the smaller of the two
            // sides' ratios. Above 1 it would upscale, so the view shrinks to scale 1.
            if w * sh <= h * sw {
                if w > sw {
                    (w, h) = (sw, h * sw / w);
                    limit = ViewLimit::Remote;
                }
            } else if h > sh {
                (w, h) = (w * sh / h, sh);
                limit = ViewLimit::Remote;
            }
        }
        let max = u64::from(MAX_VIEW_PIXELS);
        if w > max || h > max {
            (w, h) = if w >= h {
                (max, h * max / w)
            } else {
                (w * max / h, max)
            };
            limit = ViewLimit::Hub;
        }
        let side = |v: u64| u32::try_from(v.clamp(1, max)).unwrap_or(MAX_VIEW_PIXELS);
        ((side(w), side(h)), limit)
    }

    /// Zoom in (`step` 1) or out (-1) on a console area of `cols` x `rows` cells. Zooming in
    /// stops where it would get no more pixels (the remote's own size in graphics modes, or
    /// the hub's largest view). On a change (ask for the new size) the pan follows, so the
    /// same part of the screen stays in view.
    pub fn zoom_by(&mut self, step: i8, cols: u16, rows: u16) -> ZoomChange {
        let old = self.zoom.max(1);
        let new = old.saturating_add_signed(step).clamp(1, MAX_ZOOM);
        if new == old {
            return ZoomChange::AtEnd;
        }
        let (before, _) = self.view_for(cols, rows, old);
        let (after, limit) = self.view_for(cols, rows, new);
        if new > old && after.0 <= before.0 && after.1 <= before.1 {
            return ZoomChange::Limited(limit);
        }
        // The picture grows (or shrinks) by the ratio of the sizes asked, limits included.
        let scale = |v: u16| {
            u16::try_from(u64::from(v) * u64::from(after.0) / u64::from(before.0.max(1)))
                .unwrap_or(u16::MAX)
        };
        self.pan = (scale(self.pan.0), scale(self.pan.1));
        self.zoom = new;
        ZoomChange::Changed
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

    /// Cycle through the text modes (half blocks, quadrants, sextants); the picture is redrawn
    /// from what is kept.
    pub fn toggle_glyphs(&mut self) {
        let next = match self.mode {
            RenderMode::HalfBlock => RenderMode::Quadrant,
            RenderMode::Quadrant => RenderMode::Sextant,
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
            RenderMode::Quadrant => "quadrants",
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
        // The picture's square pixels laid on cells with their real aspect (the view scales).
        let (cols, rows) = if self.framebuffer.width() == 0 || self.framebuffer.height() == 0 {
            (0, 0)
        } else {
            CellGrid::new(Some(self.glyphs), self.cell)
                .cells(self.framebuffer.width(), self.framebuffer.height())
        };
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
    /// Sixel colour registers to use (the terminal's, at most 256).
    sixel_colors: u16,
    /// The last sixel view's palette, between views: a whole repaint (pan, resize, a menu
    /// closed, a mode change) keeps the colours and skips building a palette.
    palette: Option<Palette>,
    /// Inside tmux: where the console's pane starts on the outer terminal.
    tmux_pane: Option<PaneOrigin>,
    /// Bytes written to the terminal so far (for measurements).
    pub written: u64,
}

impl Default for GraphicsPainter {
    fn default() -> Self {
        Self::with_sixel_colors(crate::render::sixel::DEFAULT_COLORS)
    }
}

/// The kitty image id of the live desktop.
const KITTY_IMAGE_ID: u32 = 0x7e7e;

impl GraphicsPainter {
    /// A painter for a terminal with `colors` sixel colour registers (see
    /// [`detect::sixel_colors`](crate::render::detect::sixel_colors)).
    pub fn with_sixel_colors(colors: u16) -> Self {
        Self {
            shown: None,
            target: None,
            canvas: Framebuffer::new(0, 0),
            sixel_colors: colors,
            palette: None,
            tmux_pane: None,
            written: 0,
        }
    }

    /// Sixel and kitty through tmux's passthrough go to the outer terminal at `pane` (see
    /// [`PaneOrigin`]: tmux would put them wherever its own cursor was).
    pub fn in_tmux_pane(mut self, pane: Option<PaneOrigin>) -> Self {
        self.tmux_pane = pane;
        self
    }

    /// The terminal was resized: inside tmux the pane may have moved too (a split), so ask
    /// tmux again and draw the picture whole where it is now.
    pub fn follow_tmux_pane(&mut self) {
        if self.tmux_pane.is_none() {
            return;
        }
        let now = crate::render::detect::tmux_pane_origin();
        if now.is_some() && now != self.tmux_pane {
            self.tmux_pane = now;
            self.shown = None;
        }
    }

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
                view.set_tmux_pane(tmux_kitty.then(|| self.tmux_pane.unwrap_or_default()));
                Target::Kitty(view)
            } else {
                let mut view = SixelView::with_palette(
                    drawn,
                    terminal_rows,
                    desktop.cell,
                    self.sixel_colors,
                    self.palette.take(),
                );
                view.set_tmux_pane(tmux_sixel.then(|| self.tmux_pane.unwrap_or_default()));
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
        match &mut self.target {
            Some(Target::Kitty(view)) => view.delete(out),
            Some(Target::Sixel(view)) => {
                if let Some(palette) = view.take_palette() {
                    self.palette = Some(palette);
                }
            }
            None => {}
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
    fn a_1280x800_desktop_keeps_its_aspect_in_text_modes() {
        // The case: 8x17-pixel cells, where quadrants drew it about half as wide.
        let cell = CellSize::new(8, 17);
        for mode in [
            RenderMode::HalfBlock,
            RenderMode::Quadrant,
            RenderMode::Sextant,
        ] {
            let screen = ScreenSize {
                width: 1280,
                height: 800,
            };
            let mut d = DesktopView::with_mode(screen, mode, cell, ColorDepth::TrueColor);
            let (bw, bh) = d.pixels_for(120, 40);
            // The agent fits the screen into the box asked, in square pixels.
            let (w, h) = crate::render::fit(1280, 800, bw, bh);
            let rgb = vec![0; w as usize * h as usize * 3];
            d.apply(
                w,
                h,
                &[RectUpdate {
                    rect: Rect::new(0, 0, w, h),
                    rgb,
                }],
            );
            let (cols, rows) = d.picture_cells();
            let drawn = f64::from(cols) * 8.0 / (f64::from(rows) * 17.0);
            assert!(
                (drawn / 1.6 - 1.0).abs() < 0.03,
                "{mode:?}: {cols}x{rows} cells, drawn {drawn:.3} wide for 1.6"
            );
        }
    }

    fn sixel_view(screen: (u32, u32)) -> DesktopView {
        DesktopView::with_mode(
            ScreenSize {
                width: screen.0,
                height: screen.1,
            },
            RenderMode::Sixel { tmux: false },
            CellSize::new(10, 20),
            ColorDepth::TrueColor,
        )
    }

    #[test]
    fn the_view_asked_never_exceeds_the_hub_limit_keeping_its_aspect() {
        // Sextants on 8x16 cells (4x5.3-pixel glyph pixels, asked in 4x4 squares) on a very
        // wide terminal, zoomed: 4800x2400 at zoom 3.
        let mut d = DesktopView::new(
            ScreenSize {
                width: 7680,
                height: 4320,
            },
            Glyphs::Sextant,
            ColorDepth::TrueColor,
        );
        d.zoom = 3;
        assert_eq!(d.view_for(800, 200, 3), ((4096, 2048), ViewLimit::Hub));
        assert_eq!(d.pixels_for(800, 200), (4096, 2048));
        // Tall as well as wide: the longer side is the one cut to the limit.
        assert_eq!(d.view_for(200, 900, 3), ((455, 4096), ViewLimit::Hub));
        // Graphics: at most the remote's own size, then at most the hub's.
        let d = sixel_view((5120, 2880));
        assert_eq!(d.view_for(192, 53, 1), ((1920, 1060), ViewLimit::None));
        assert_eq!(d.view_for(192, 53, 3), ((4096, 2261), ViewLimit::Hub));
        let d = sixel_view((1280, 720));
        // 1920x1060 is wider than 16:9: its height bounds the picture, and is cut to 720.
        assert_eq!(d.view_for(192, 53, 1), ((1304, 720), ViewLimit::Remote));
        // A narrow area (2000x2120): its width bounds it.
        assert_eq!(d.view_for(100, 53, 2), ((1280, 1356), ViewLimit::Remote));
        for zoom in 1..=MAX_ZOOM {
            let ((w, h), _) = d.view_for(1000, 1000, zoom);
            assert!(w <= MAX_VIEW_PIXELS && h <= MAX_VIEW_PIXELS);
            let (fw, fh) = crate::render::fit(1280, 720, w, h);
            assert!(fw <= 1280 && fh <= 720, "upscaled to {fw}x{fh}");
        }
    }

    #[test]
    fn zoom_stops_where_no_more_pixels_come() {
        let mut d = sixel_view((1920, 1080));
        // 120x39 cells of 10x20: 1200x780, then 2400x1560 -> the remote's 1920 wide.
        assert_eq!(d.zoom_by(1, 120, 39), ZoomChange::Changed);
        assert_eq!(d.pixels_for(120, 39), (1920, 1248));
        assert_eq!(
            d.zoom_by(1, 120, 39),
            ZoomChange::Limited(ViewLimit::Remote)
        );
        assert_eq!(d.zoom, 2);
        assert_eq!(d.zoom_by(-1, 120, 39), ZoomChange::Changed);
        assert_eq!(d.zoom_by(-1, 120, 39), ZoomChange::AtEnd);
        // The pan follows the picture's real growth (1200 -> 1920 wide: x1.6).
        d.pan = (10, 10);
        assert_eq!(d.zoom_by(1, 120, 39), ZoomChange::Changed);
        assert_eq!(d.pan, (16, 16));
    }

    #[test]
    fn a_screenshot_larger_than_the_hub_sends_is_scaled() {
        let d = sixel_view((1920, 1080));
        assert_eq!(d.screenshot_size(), ((1920, 1080), false));
        let d = sixel_view((7680, 2160));
        assert_eq!(d.screenshot_size(), ((4096, 1152), true));
    }

    /// A 1200x680 picture on 120x34 cells of 10x20 in `view`, the desktop test image.
    fn show_picture(view: &mut DesktopView) {
        let img = crate::render::testimage::desktop(1200, 680);
        let mut rgb = Vec::new();
        for px in img.as_rgba().chunks_exact(4) {
            rgb.extend_from_slice(&px[..3]);
        }
        view.apply(
            1200,
            680,
            &[RectUpdate {
                rect: img.bounds(),
                rgb,
            }],
        );
    }

    fn painted_palette(painter: &GraphicsPainter) -> Option<Vec<[u8; 3]>> {
        match &painter.target {
            Some(Target::Sixel(v)) => v.palette().map(|p| p.colors().to_vec()),
            _ => None,
        }
    }

    #[test]
    fn whole_sixel_repaints_keep_the_palette() {
        let mut view = sixel_view((1920, 1080));
        show_picture(&mut view);
        let area = CellRect::new(0, 0, 120, 39);
        let mut painter = GraphicsPainter::default();
        assert!(!painter.paint(Some(&mut view), area, 40, false).is_empty());
        let first = painted_palette(&painter);
        assert!(first.is_some());
        // A menu over the picture, then closed: the whole picture again, same colours.
        assert!(painter.paint(Some(&mut view), area, 40, true).is_empty());
        assert!(!painter.paint(Some(&mut view), area, 40, false).is_empty());
        assert_eq!(painted_palette(&painter), first);
        // A smaller console (the picture is placed again elsewhere): still the same.
        let smaller = CellRect::new(0, 0, 100, 30);
        assert!(
            !painter
                .paint(Some(&mut view), smaller, 31, false)
                .is_empty()
        );
        assert_eq!(painted_palette(&painter), first);
    }

    #[test]
    fn the_sixel_palette_has_the_terminals_registers() {
        let mut view = sixel_view((1920, 1080));
        show_picture(&mut view);
        let area = CellRect::new(0, 0, 120, 39);
        let mut painter = GraphicsPainter::with_sixel_colors(64);
        let out = painter.paint(Some(&mut view), area, 40, false);
        let colors = painted_palette(&painter).map(|p| p.len());
        assert!(colors.is_some_and(|n| n > 32 && n <= 64), "{colors:?}");
        assert!(
            !String::from_utf8_lossy(&out).contains("#64;"),
            "no register past 63"
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
