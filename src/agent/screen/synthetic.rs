//! The synthetic screen: an animated desktop drawn by the agent itself, for the demo and for
//! tests. A wallpaper gradient, three windows with title bars and text-like content, a progress
//! bar, a taskbar clock that changes every second and a pointer that wanders until the
//! technician moves it. Pointer events move the drawn pointer and a click focuses the window
//! under it; key events type into the focused window.
//!
//! Deterministic: without input, frame `k` depends only on the seed and `k` (integer arithmetic
//! only, no wall clock: the clock shows frame time). Every step redraws only the rectangles
//! that changed, by drawing the whole scene clipped to each of them, so the damage reported
//! covers every changed pixel by construction.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{INPUT_QUEUE, Publisher, Screen, button_changes};
use crate::frame::{Framebuffer, Rect};
use crate::protocol::InputEvent;

/// Frames per second of the running source.
pub const FPS: u64 = 30;

const TASKBAR: u32 = 32;
const TITLE_BAR: u32 = 24;
/// Text is drawn from an 8x8 font at twice the size: 16x16 cells.
const SCALE: u32 = 2;
const CELL: u32 = 8 * SCALE;
const LINE: u32 = CELL + 2;
const TEXT_ROWS: u32 = 3;
const CLOCK_CHARS: u32 = 8;
/// Frames the caret stays on, then off.
const BLINK: u64 = FPS / 2;
/// Pixels the wandering pointer moves per frame, across and down.
const POINTER_STEP: (u64, u64) = (7, 5);

const WHITE: [u8; 4] = [255, 255, 255, 255];
const BLACK: [u8; 4] = [0, 0, 0, 255];
const INK: [u8; 4] = [40, 44, 52, 255];
const PAPER: [u8; 4] = [246, 246, 242, 255];
const IDLE_TITLE: [u8; 4] = [150, 154, 160, 255];
const WORD: [u8; 4] = [180, 184, 190, 255];
const TASKBAR_COLOUR: [u8; 4] = [30, 32, 38, 255];
const BAR_BACK: [u8; 4] = [214, 216, 220, 255];

/// The classic arrow: `#` outline, `.` fill, space transparent. Its tip is the hot spot.
const ARROW: [&str; 19] = [
    "#           ",
    "##          ",
    "#.#         ",
    "#..#        ",
    "#...#       ",
    "#....#      ",
    "#.....#     ",
    "#......#    ",
    "#.......#   ",
    "#........#  ",
    "#.........# ",
    "#......#####",
    "#...#..#    ",
    "#..# #..#   ",
    "#.#  #..#   ",
    "##    #..#  ",
    "#     #..#  ",
    "       #..# ",
    "       ###  ",
];
const ARROW_SIZE: (u32, u32) = (12, 19);

/// A small, well-known generator (splitmix64): the same seed gives the same desktop everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % u64::from(hi - lo)) as u32
    }

    fn colour(&mut self) -> [u8; 4] {
        let v = self.next();
        [
            60 + (v & 0x7f) as u8,
            60 + ((v >> 8) & 0x7f) as u8,
            60 + ((v >> 16) & 0x7f) as u8,
            255,
        ]
    }
}

struct Window {
    rect: Rect,
    title: &'static str,
    accent: [u8; 4],
    /// Text-like content: grey "words", in screen coordinates.
    words: Vec<Rect>,
    /// Lines typed into this window.
    typed: Vec<String>,
    progress: Option<Rect>,
}

impl Window {
    fn title_bar(&self) -> Rect {
        Rect::new(self.rect.x, self.rect.y, self.rect.width, TITLE_BAR)
    }

    /// Where typed text goes: the bottom rows of the body.
    fn text_area(&self) -> Rect {
        let height = TEXT_ROWS * LINE + 8;
        Rect::new(
            self.rect.x + 8,
            self.rect.bottom().saturating_sub(height),
            self.rect.width.saturating_sub(16),
            height.saturating_sub(4),
        )
    }

    fn columns(&self) -> usize {
        (self.text_area().width / CELL).max(1) as usize
    }

    fn caret(&self) -> Rect {
        let area = self.text_area();
        let row = self.typed.len().saturating_sub(1) as u32;
        let col = self.typed.last().map_or(0, |l| l.chars().count()) as u32;
        Rect::new(area.x + col * CELL, area.y + 2 + row * LINE, 2, CELL)
    }

    fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.rect.x && x < self.rect.right() && y >= self.rect.y && y < self.rect.bottom()
    }
}

/// The animated desktop, stepped frame by frame.
pub struct SyntheticDesktop {
    seed: u64,
    frame: u64,
    fb: Framebuffer,
    wallpaper: ([u8; 4], [u8; 4]),
    windows: Vec<Window>,
    focused: usize,
    pointer: (u32, u32),
    buttons: u8,
    /// Set once the technician moves the pointer: it stops wandering.
    pointer_driven: bool,
    /// A window being dragged by its title bar: which, and where in it the pointer holds it.
    drag: Option<(usize, (u32, u32))>,
}

impl SyntheticDesktop {
    /// Frame 0 of the desktop this seed draws, at this size.
    pub fn new(width: u32, height: u32, seed: u64) -> Self {
        Self::at_frame(width, height, seed, 0)
    }

    /// Frame `k` drawn from scratch (as if `k` frames had passed with no input).
    pub fn at_frame(width: u32, height: u32, seed: u64, k: u64) -> Self {
        let mut rng = SplitMix(seed);
        let wallpaper = (rng.colour(), rng.colour());
        let usable = height.saturating_sub(TASKBAR);
        let titles = ["Notes", "Build status", "Inbox"];
        let windows = titles
            .iter()
            .enumerate()
            .map(|(i, title)| {
                let ww = rng
                    .range(width * 3 / 10, width / 2)
                    .max(TEXT_ROWS * LINE * 2);
                let wh = rng
                    .range(usable * 3 / 10, usable / 2)
                    .max(TITLE_BAR + TEXT_ROWS * LINE + 16);
                let x = rng.range(0, width.saturating_sub(ww));
                let y = rng.range(0, usable.saturating_sub(wh));
                let rect = Rect::new(x, y, ww, wh);
                let mut window = Window {
                    rect,
                    title,
                    accent: rng.colour(),
                    words: Vec::new(),
                    typed: vec![String::new()],
                    progress: None,
                };
                let body_top = y + TITLE_BAR + 10;
                let words_bottom = window.text_area().y.saturating_sub(8);
                if i == 1 {
                    window.progress = Some(Rect::new(x + 12, body_top, ww.saturating_sub(24), 14));
                }
                let mut row = body_top + if i == 1 { 26 } else { 0 };
                while row + 6 <= words_bottom {
                    let mut col = x + 12;
                    loop {
                        let len = rng.range(10, 60);
                        if col + len + 12 > x + ww {
                            break;
                        }
                        window.words.push(Rect::new(col, row, len, 6));
                        col += len + rng.range(5, 9);
                    }
                    row += 14;
                }
                window
            })
            .collect();
        let mut desktop = Self {
            seed,
            frame: k,
            fb: Framebuffer::new(width, height),
            wallpaper,
            windows,
            focused: 0,
            pointer: (0, 0),
            buttons: 0,
            pointer_driven: false,
            drag: None,
        };
        desktop.pointer = desktop.wandering_pointer(k);
        let bounds = desktop.fb.bounds();
        desktop.draw(bounds);
        desktop
    }

    /// The number of the frame shown.
    pub fn frame_index(&self) -> u64 {
        self.frame
    }

    pub fn framebuffer(&self) -> &Framebuffer {
        &self.fb
    }

    /// Where the pointer's hot spot is.
    pub fn pointer(&self) -> (u32, u32) {
        self.pointer
    }

    /// Which window has the focus (0 "Notes", 1 "Build status", 2 "Inbox").
    pub fn focused(&self) -> usize {
        self.focused
    }

    /// The outer rectangle of window `i`.
    pub fn window_rect(&self, i: usize) -> Option<Rect> {
        self.windows.get(i).map(|w| w.rect)
    }

    /// Where the first typed character of window `i` is drawn (an 8x8 glyph at 2x).
    pub fn text_origin(&self, i: usize) -> Option<(u32, u32)> {
        self.windows.get(i).map(|w| {
            let area = w.text_area();
            (area.x, area.y + 2)
        })
    }

    /// The text typed into window `i`, lines joined by `\n`.
    pub fn typed(&self, i: usize) -> Option<String> {
        self.windows.get(i).map(|w| w.typed.join("\n"))
    }

    /// Step to the next frame; returns what changed.
    pub fn advance(&mut self) -> Vec<Rect> {
        let (before, after) = (self.frame, self.frame + 1);
        self.frame = after;
        let mut damage = Vec::new();
        if !self.pointer_driven {
            damage.push(pointer_rect(self.pointer));
            self.pointer = self.wandering_pointer(after);
            damage.push(pointer_rect(self.pointer));
        }
        if before / FPS != after / FPS {
            damage.push(self.clock_rect());
        }
        if before / BLINK != after / BLINK {
            damage.push(self.windows[self.focused].caret());
        }
        if let Some(bar) = self.windows.get(1).and_then(|w| w.progress)
            && progress_width(bar, before) != progress_width(bar, after)
        {
            damage.push(bar);
        }
        self.redraw(&damage);
        damage
    }

    /// Apply a technician's input; returns what changed.
    pub fn apply_input(&mut self, event: &InputEvent) -> Vec<Rect> {
        let mut damage = Vec::new();
        match *event {
            InputEvent::Pointer { x, y, buttons } => {
                let at = (
                    x.min(self.fb.width().saturating_sub(1)),
                    y.min(self.fb.height().saturating_sub(1)),
                );
                if at != self.pointer || !self.pointer_driven {
                    damage.push(pointer_rect(self.pointer));
                    self.pointer = at;
                    self.pointer_driven = true;
                    damage.push(pointer_rect(at));
                }
                let changes: Vec<(u8, bool)> = button_changes(self.buttons, buttons).collect();
                let pressed = changes.contains(&(1, true));
                if changes.contains(&(1, false)) {
                    self.drag = None;
                }
                self.buttons = buttons;
                if let Some((i, grip)) = self.drag {
                    damage.extend(self.move_window(i, at, grip));
                }
                // The topmost window under a left click takes the focus.
                if pressed
                    && let Some(i) = (0..self.windows.len())
                        .rev()
                        .find(|&i| self.windows[i].contains(at.0, at.1))
                    && i != self.focused
                {
                    for w in [self.focused, i] {
                        damage.push(self.windows[w].title_bar());
                        damage.push(self.windows[w].caret());
                    }
                    self.focused = i;
                }
                // A press on a title bar picks the window up (it moves with the pointer).
                if pressed
                    && let Some(i) = (0..self.windows.len())
                        .rev()
                        .find(|&i| self.windows[i].contains(at.0, at.1))
                    && at.1 < self.windows[i].title_bar().bottom()
                {
                    let rect = self.windows[i].rect;
                    self.drag = Some((i, (at.0 - rect.x, at.1 - rect.y)));
                }
            }
            InputEvent::Key { keysym, down: true } => {
                let window = &mut self.windows[self.focused];
                let columns = window.columns();
                let before = window.typed.clone();
                let lines = &mut window.typed;
                match keysym {
                    // BackSpace
                    0xff08 => {
                        if let Some(last) = lines.last_mut()
                            && last.pop().is_none()
                            && lines.len() > 1
                        {
                            lines.pop();
                        }
                    }
                    // Return, KP_Enter
                    0xff0d | 0xff8d => lines.push(String::new()),
                    // Printable Latin-1: keysyms equal the code points.
                    0x20..=0x7e | 0xa0..=0xff => {
                        let c = char::from_u32(keysym).unwrap_or('?');
                        if lines.last().is_some_and(|l| l.chars().count() >= columns) {
                            lines.push(String::new());
                        }
                        if let Some(last) = lines.last_mut() {
                            last.push(c);
                        }
                    }
                    _ => {}
                }
                while lines.len() > TEXT_ROWS as usize {
                    lines.remove(0);
                }
                if *lines != before {
                    damage.push(window.text_area());
                }
            }
            InputEvent::Key { down: false, .. } => {}
        }
        self.redraw(&damage);
        damage
    }

    /// Move window `i` so that the point `grip` of it is under `at` (kept on the screen, above
    /// the taskbar); returns the damage (where it was and where it is).
    fn move_window(&mut self, i: usize, at: (u32, u32), grip: (u32, u32)) -> Vec<Rect> {
        let usable = self.fb.height().saturating_sub(TASKBAR);
        let Some(window) = self.windows.get_mut(i) else {
            return Vec::new();
        };
        let old = window.rect;
        let x =
            at.0.saturating_sub(grip.0)
                .min(self.fb.width().saturating_sub(old.width));
        let y =
            at.1.saturating_sub(grip.1)
                .min(usable.saturating_sub(old.height));
        if (x, y) == (old.x, old.y) {
            return Vec::new();
        }
        let shift = |r: &mut Rect| {
            r.x = (i64::from(r.x) + i64::from(x) - i64::from(old.x)) as u32;
            r.y = (i64::from(r.y) + i64::from(y) - i64::from(old.y)) as u32;
        };
        shift(&mut window.rect);
        window.words.iter_mut().for_each(shift);
        if let Some(bar) = window.progress.as_mut() {
            shift(bar);
        }
        vec![old, window.rect]
    }

    fn wandering_pointer(&self, k: u64) -> (u32, u32) {
        let (w, h) = (u64::from(self.fb.width()), u64::from(self.fb.height()));
        let start = self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (
            bounce(start % 997 + POINTER_STEP.0 * k, w) as u32,
            bounce((start >> 20) % 991 + POINTER_STEP.1 * k, h) as u32,
        )
    }

    fn clock_rect(&self) -> Rect {
        let width = CLOCK_CHARS * CELL;
        Rect::new(
            self.fb.width().saturating_sub(width + 12),
            self.fb.height().saturating_sub(TASKBAR) + (TASKBAR - CELL) / 2,
            width,
            CELL,
        )
    }

    fn clock_text(&self) -> String {
        let base = self.seed.wrapping_mul(7919) % 86_400;
        let t = (base + self.frame / FPS) % 86_400;
        format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    }

    fn redraw(&mut self, damage: &[Rect]) {
        for r in damage {
            self.draw(*r);
        }
    }

    /// Draw the whole scene, clipped to `clip`.
    fn draw(&mut self, clip: Rect) {
        let clip = clip.intersect(&self.fb.bounds());
        if clip.is_empty() {
            return;
        }
        let (width, height) = (self.fb.width(), self.fb.height());
        let clock = self.clock_rect();
        let clock_text = self.clock_text();
        let mut p = Painter {
            fb: &mut self.fb,
            clip,
        };
        p.gradient(self.wallpaper.0, self.wallpaper.1);
        for (i, w) in self.windows.iter().enumerate() {
            let focused = i == self.focused;
            p.fill(w.rect, BLACK);
            let inner = Rect::new(
                w.rect.x + 1,
                w.rect.y + 1,
                w.rect.width.saturating_sub(2),
                w.rect.height.saturating_sub(2),
            );
            p.fill(inner, PAPER);
            let bar = w.title_bar();
            p.fill(bar, if focused { w.accent } else { IDLE_TITLE });
            p.text(
                bar.x + 8,
                bar.y + (TITLE_BAR - CELL) / 2,
                w.title,
                WHITE,
                bar.right().saturating_sub(8),
            );
            for word in &w.words {
                p.fill(*word, WORD);
            }
            if let Some(track) = w.progress {
                p.fill(track, BAR_BACK);
                p.fill(
                    Rect::new(
                        track.x,
                        track.y,
                        progress_width(track, self.frame),
                        track.height,
                    ),
                    w.accent,
                );
            }
            let area = w.text_area();
            for (row, line) in w.typed.iter().enumerate() {
                p.text(
                    area.x,
                    area.y + 2 + row as u32 * LINE,
                    line,
                    INK,
                    area.right(),
                );
            }
            if focused && (self.frame / BLINK).is_multiple_of(2) {
                p.fill(w.caret(), INK);
            }
        }
        let taskbar = Rect::new(0, height.saturating_sub(TASKBAR), width, TASKBAR);
        p.fill(taskbar, TASKBAR_COLOUR);
        p.text(clock.x, clock.y, &clock_text, WHITE, clock.right());
        p.pointer(self.pointer);
    }
}

/// A triangle wave: `v` bouncing between 0 and `max - 1`.
fn bounce(v: u64, max: u64) -> u64 {
    if max <= 1 {
        return 0;
    }
    let period = 2 * (max - 1);
    let p = v % period;
    if p < max { p } else { period - p }
}

/// The filled width of the progress bar at frame `k`: fills in ten seconds, then restarts.
fn progress_width(track: Rect, k: u64) -> u32 {
    let step = k % (10 * FPS);
    (u64::from(track.width) * step / (10 * FPS)) as u32
}

fn pointer_rect((x, y): (u32, u32)) -> Rect {
    Rect::new(x, y, ARROW_SIZE.0, ARROW_SIZE.1)
}

/// Drawing primitives, all clipped to one rectangle.
struct Painter<'a> {
    fb: &'a mut Framebuffer,
    clip: Rect,
}

impl Painter<'_> {
    fn fill(&mut self, r: Rect, colour: [u8; 4]) {
        self.fb.fill(r.intersect(&self.clip), colour);
    }

    fn gradient(&mut self, from: [u8; 4], to: [u8; 4]) {
        let (w, h) = (u64::from(self.fb.width()), u64::from(self.fb.height()));
        let span = (w + h).max(1);
        for y in self.clip.y..self.clip.bottom() {
            for x in self.clip.x..self.clip.right() {
                let t = u64::from(x) + u64::from(y);
                let mix =
                    |a: u8, b: u8| ((u64::from(a) * (span - t) + u64::from(b) * t) / span) as u8;
                self.fb.set_pixel(
                    x,
                    y,
                    [
                        mix(from[0], to[0]),
                        mix(from[1], to[1]),
                        mix(from[2], to[2]),
                        255,
                    ],
                );
            }
        }
    }

    /// Text from the 8x8 font at [`SCALE`], stopping before `right`.
    fn text(&mut self, x: u32, y: u32, text: &str, colour: [u8; 4], right: u32) {
        for (i, c) in text.chars().enumerate() {
            let cx = x + i as u32 * CELL;
            if cx + CELL > right {
                break;
            }
            let cell = Rect::new(cx, y, CELL, CELL);
            if cell.intersect(&self.clip).is_empty() {
                continue;
            }
            let glyph = glyph(c);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8u32 {
                    if bits & (1 << col) != 0 {
                        self.fill(
                            Rect::new(cx + col * SCALE, y + row as u32 * SCALE, SCALE, SCALE),
                            colour,
                        );
                    }
                }
            }
        }
    }

    fn pointer(&mut self, (x, y): (u32, u32)) {
        for (row, line) in ARROW.iter().enumerate() {
            for (col, b) in line.bytes().enumerate() {
                let colour = match b {
                    b'#' => BLACK,
                    b'.' => WHITE,
                    _ => continue,
                };
                self.fill(Rect::new(x + col as u32, y + row as u32, 1, 1), colour);
            }
        }
    }
}

/// The 8x8 bitmap of `c` (bit 0 of each row byte is the leftmost pixel); `?` for characters
/// the font lacks.
pub fn glyph(c: char) -> [u8; 8] {
    let code = c as usize;
    if code < 128 {
        font8x8::legacy::BASIC_LEGACY[code]
    } else if (0xa0..0x100).contains(&code) {
        font8x8::legacy::LATIN_LEGACY[code - 0xa0]
    } else {
        font8x8::legacy::BASIC_LEGACY[usize::from(b'?')]
    }
}

/// Run the synthetic desktop at [`FPS`].
pub(super) fn start(width: u32, height: u32, seed: u64) -> Screen {
    let mut desktop = SyntheticDesktop::new(width, height, seed);
    let (mut publisher, frames) = Publisher::new(desktop.framebuffer().clone());
    let (input_tx, mut input_rx) = mpsc::channel(INPUT_QUEUE);
    let ended = publisher.ended();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let damage = desktop.advance();
                    publisher.publish(desktop.framebuffer(), &damage);
                }
                event = input_rx.recv() => {
                    let Some(event) = event else { break };
                    // Input shows at once, not at the next tick: the technician sees the
                    // effect of a key with the least delay.
                    let damage = desktop.apply_input(&event);
                    publisher.publish(desktop.framebuffer(), &damage);
                }
            }
        }
        publisher.finish("the screen was closed");
    });
    Screen::assemble(frames, input_tx, ended, Some(task.abort_handle()))
}
