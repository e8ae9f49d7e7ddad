//! The `x11[:DISPLAY]` source: an X display captured with x11rb, input through XTest.
//!
//! Capture runs on its own thread (x11rb's connection is blocking) at most [`FPS`] times a
//! second. With the DAMAGE extension (Xorg and Xvnc have it) the server says which areas
//! were drawn and only those are fetched; without it the whole screen is fetched each time.
//! Either way the fetched pixels are compared tile by tile with the last picture, so damage
//! names only what really changed (X reports drawing, not change).
//!
//! Pixels are read by [`Grabber`]: through MIT-SHM where the server offers it (a local
//! display), else with `GetImage`.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::damage::{copy_rect, diff_tiles};
use super::grab::{Grabber, display_label};
use super::{INPUT_QUEUE, Publisher, Screen, ScreenError, button_changes, coalesce};
use crate::frame::{Framebuffer, Rect};
use crate::protocol::InputEvent;

/// Captures per second, at most.
pub const FPS: u64 = 30;
/// How often (in captures) the screen's size is checked, for resizes (RandR).
const SIZE_CHECK_EVERY: u32 = FPS as u32;

const SHIFT_L: u32 = 0xffe1;
const SHIFT_R: u32 = 0xffe2;

pub(super) async fn start(display: Option<&str>) -> Result<Screen, ScreenError> {
    let name = display.map(str::to_owned);
    let opened = tokio::task::spawn_blocking(move || Capture::open(name.as_deref()))
        .await
        .map_err(|e| ScreenError::X11 {
            display: display_label(display),
            reason: e.to_string(),
        })??;
    let (capture, fb) = opened;
    let (publisher, frames) = Publisher::new(fb.clone());
    let ended = publisher.ended();
    let (input_tx, mut input_rx) = mpsc::channel::<InputEvent>(INPUT_QUEUE);
    // The capture thread waits for input or its next capture, whichever comes first: a std
    // channel gives it `recv_timeout`. This task forwards into it and, when the screen is
    // dropped (aborting the task), closes it, which stops the thread.
    let (thread_tx, thread_rx) = std_mpsc::channel();
    let forward = tokio::spawn(async move {
        while let Some(event) = input_rx.recv().await {
            if thread_tx.send(event).is_err() {
                break;
            }
        }
    });
    let label = capture.grab.display.clone();
    std::thread::Builder::new()
        .name("tether-x11-capture".into())
        .spawn(move || capture.run(publisher, fb, thread_rx))
        .map_err(|e| ScreenError::X11 {
            display: label,
            reason: format!("cannot start the capture thread: {e}"),
        })?;
    Ok(Screen::assemble(
        frames,
        input_tx,
        ended,
        Some(forward.abort_handle()),
    ))
}

struct Capture {
    grab: Grabber,
    /// The damage object on the root window and a region to move its damage into.
    damage: Option<(damage::Damage, xfixes::Region)>,
    keys: Keymap,
    buttons: u8,
    shift_held: bool,
    /// Keys pressed through this source and the keycode each went down on, so the release
    /// matches the press even if the mapping changed in between.
    down: HashMap<u32, u8>,
}

type X11Result<T> = Result<T, String>;

impl Capture {
    fn open(display: Option<&str>) -> Result<(Self, Framebuffer), ScreenError> {
        let mut grab = Grabber::connect(display, true)?;
        let label = grab.display.clone();
        let fail = |reason: String| ScreenError::X11 {
            display: label.clone(),
            reason,
        };
        let damage = setup_damage(&grab.conn, grab.root);
        if damage.is_none() {
            tracing::info!(display = %label, "no DAMAGE extension: fetching the whole screen each frame");
        }
        let keys = Keymap::load(&grab.conn).map_err(&fail)?;
        let size = grab.size();
        let mut fb = Framebuffer::new(u32::from(size.0), u32::from(size.1));
        let all = fb.bounds();
        grab.fetch(&mut fb, all).map_err(&fail)?;
        let capture = Capture {
            grab,
            damage,
            keys,
            buttons: 0,
            shift_held: false,
            down: HashMap::new(),
        };
        Ok((capture, fb))
    }

    fn run(
        mut self,
        mut publisher: Publisher,
        first: Framebuffer,
        input: std_mpsc::Receiver<InputEvent>,
    ) {
        let period = Duration::from_micros(1_000_000 / FPS);
        let mut work = first.clone();
        let mut last = first;
        let mut next = Instant::now() + period;
        let mut captures = 0u32;
        let reason = loop {
            let now = Instant::now();
            if now < next {
                match input.recv_timeout(next - now) {
                    Ok(event) => {
                        let mut result = self.inject(event);
                        while let (Ok(()), Ok(event)) = (&result, input.try_recv()) {
                            result = self.inject(event);
                        }
                        if let Err(e) =
                            result.and_then(|()| self.grab.conn.flush().map_err(|e| e.to_string()))
                        {
                            break format!("sending input failed: {e}");
                        }
                        continue;
                    }
                    Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                        break "the screen was closed".into();
                    }
                }
            }
            next = Instant::now() + period;
            captures = captures.wrapping_add(1);
            if captures.is_multiple_of(SIZE_CHECK_EVERY) {
                match self.grab.check_size() {
                    Ok(true) => {
                        work = Framebuffer::new(
                            u32::from(self.grab.size().0),
                            u32::from(self.grab.size().1),
                        );
                        let all = work.bounds();
                        if let Err(e) = self.grab.fetch(&mut work, all) {
                            break e;
                        }
                        publisher.publish(&work, &[all]);
                        last = work.clone();
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => break e,
                }
            }
            let damage = match self.capture(&mut work, &last) {
                Ok(damage) => damage,
                Err(e) => break e,
            };
            publisher.publish(&work, &damage);
            for r in &damage {
                copy_rect(&mut last, &work, *r);
            }
        };
        tracing::info!(display = %self.grab.display, %reason, "X11 screen source stopped");
        publisher.finish(format!("X display {}: {reason}", self.grab.display));
    }

    /// Fetch what may have changed into `work`; returns where it differs from `last`.
    fn capture(&mut self, work: &mut Framebuffer, last: &Framebuffer) -> X11Result<Vec<Rect>> {
        let areas = match self.damage {
            Some((damage, region)) => {
                let mut notified = false;
                while let Some(event) =
                    self.grab.conn.poll_for_event().map_err(|e| e.to_string())?
                {
                    notified |= matches!(event, Event::DamageNotify(_));
                }
                if !notified {
                    return Ok(Vec::new());
                }
                // Move the damage into our region (emptying the damage object, which re-arms
                // the notification) and read it back.
                self.grab
                    .conn
                    .damage_subtract(damage, x11rb::NONE, region)
                    .map_err(|e| e.to_string())?;
                let reply = self
                    .grab
                    .conn
                    .xfixes_fetch_region(region)
                    .map_err(|e| e.to_string())?
                    .reply()
                    .map_err(|e| e.to_string())?;
                let rects: Vec<Rect> = reply
                    .rectangles
                    .iter()
                    .filter(|r| r.x >= 0 && r.y >= 0)
                    .map(|r| {
                        Rect::new(
                            r.x as u32,
                            r.y as u32,
                            u32::from(r.width),
                            u32::from(r.height),
                        )
                    })
                    .collect();
                coalesce(&rects, work.bounds())
            }
            None => vec![work.bounds()],
        };
        for area in &areas {
            self.grab.fetch(work, *area)?;
        }
        let mut changed = Vec::new();
        for area in &areas {
            changed.extend(diff_tiles(last, work, *area));
        }
        Ok(coalesce(&changed, work.bounds()))
    }

    fn inject(&mut self, event: InputEvent) -> X11Result<()> {
        let e = |e: x11rb::errors::ConnectionError| e.to_string();
        match event {
            InputEvent::Pointer { x, y, buttons } => {
                let x = x.min(u32::from(self.grab.size().0.saturating_sub(1))) as i16;
                let y = y.min(u32::from(self.grab.size().1.saturating_sub(1))) as i16;
                self.grab
                    .conn
                    .xtest_fake_input(
                        xproto::MOTION_NOTIFY_EVENT,
                        0,
                        x11rb::CURRENT_TIME,
                        self.grab.root,
                        x,
                        y,
                        0,
                    )
                    .map_err(e)?;
                for (button, down) in button_changes(self.buttons, buttons) {
                    let kind = if down {
                        xproto::BUTTON_PRESS_EVENT
                    } else {
                        xproto::BUTTON_RELEASE_EVENT
                    };
                    self.grab
                        .conn
                        .xtest_fake_input(
                            kind,
                            button,
                            x11rb::CURRENT_TIME,
                            self.grab.root,
                            0,
                            0,
                            0,
                        )
                        .map_err(e)?;
                }
                self.buttons = buttons;
            }
            InputEvent::Key { keysym, down: true } => {
                let (keycode, shifted) = match self.keys.find(keysym) {
                    Some(found) => found,
                    None => (self.keys.bind_spare(&self.grab.conn, keysym)?, false),
                };
                // RFB sends the shifted keysym ("A"); X wants Shift held for the second column.
                let add_shift = shifted && !self.shift_held;
                let shift = self.keys.find(SHIFT_L).map(|(code, _)| code);
                if add_shift && let Some(code) = shift {
                    self.key(code, true)?;
                }
                self.key(keycode, true)?;
                if add_shift && let Some(code) = shift {
                    self.key(code, false)?;
                }
                if matches!(keysym, SHIFT_L | SHIFT_R) {
                    self.shift_held = true;
                }
                self.down.insert(keysym, keycode);
            }
            InputEvent::Key {
                keysym,
                down: false,
            } => {
                let keycode = match self.down.remove(&keysym) {
                    Some(code) => Some(code),
                    None => self.keys.find(keysym).map(|(code, _)| code),
                };
                if let Some(code) = keycode {
                    self.key(code, false)?;
                }
                if matches!(keysym, SHIFT_L | SHIFT_R) {
                    self.shift_held = false;
                }
            }
        }
        Ok(())
    }

    fn key(&self, keycode: u8, down: bool) -> X11Result<()> {
        let kind = if down {
            xproto::KEY_PRESS_EVENT
        } else {
            xproto::KEY_RELEASE_EVENT
        };
        self.grab
            .conn
            .xtest_fake_input(kind, keycode, x11rb::CURRENT_TIME, self.grab.root, 0, 0, 0)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A damage object on the root window, reporting once damage appears, and a region to read
/// it into; `None` without the DAMAGE (or XFIXES) extension.
fn setup_damage(
    conn: &RustConnection,
    root: xproto::Window,
) -> Option<(damage::Damage, xfixes::Region)> {
    conn.extension_information(damage::X11_EXTENSION_NAME)
        .ok()??;
    conn.extension_information(xfixes::X11_EXTENSION_NAME)
        .ok()??;
    // Both extensions must be told our version before use.
    conn.xfixes_query_version(5, 0).ok()?.reply().ok()?;
    conn.damage_query_version(1, 1).ok()?.reply().ok()?;
    let damage = conn.generate_id().ok()?;
    conn.damage_create(damage, root, damage::ReportLevel::NON_EMPTY)
        .ok()?;
    let region = conn.generate_id().ok()?;
    conn.xfixes_create_region(region, &[]).ok()?;
    conn.flush().ok()?;
    Some((damage, region))
}

/// The server's keysym table, to turn RFB keysyms into keycodes.
struct Keymap {
    min_keycode: u8,
    per_keycode: usize,
    keysyms: Vec<u32>,
}

impl Keymap {
    fn load(conn: &RustConnection) -> X11Result<Self> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("cannot read the keyboard mapping: {e}"))?;
        Ok(Self {
            min_keycode: min,
            per_keycode: usize::from(reply.keysyms_per_keycode).max(1),
            keysyms: reply.keysyms,
        })
    }

    /// The keycode producing `keysym`, and whether it is on the shifted column. Unshifted
    /// placements win (a keysym often sits on several keycodes).
    fn find(&self, keysym: u32) -> Option<(u8, bool)> {
        let mut shifted = None;
        for (i, syms) in self.keysyms.chunks(self.per_keycode).enumerate() {
            let code = self.min_keycode.checked_add(i as u8)?;
            if syms.first() == Some(&keysym) {
                return Some((code, false));
            }
            if shifted.is_none() && syms.get(1) == Some(&keysym) {
                shifted = Some((code, true));
            }
        }
        shifted
    }

    /// Bind `keysym` to a keycode that has none, as xdotool does for keys the keyboard
    /// lacks, and return that keycode.
    fn bind_spare(&mut self, conn: &RustConnection, keysym: u32) -> X11Result<u8> {
        let i = self
            .keysyms
            .chunks(self.per_keycode)
            .rposition(|syms| syms.iter().all(|&s| s == 0))
            .ok_or_else(|| format!("no free keycode to type keysym {keysym:#x}"))?;
        let code = self.min_keycode + i as u8;
        let syms = vec![keysym; self.per_keycode];
        conn.change_keyboard_mapping(1, code, self.per_keycode as u8, &syms)
            .map_err(|e| e.to_string())?;
        self.keysyms[i * self.per_keycode..(i + 1) * self.per_keycode].copy_from_slice(&syms);
        Ok(code)
    }
}
