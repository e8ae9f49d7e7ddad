//! Screen sources: where the agent's picture of the screen comes from, and where the
//! technician's keyboard and mouse go.
//!
//! - [`ScreenSource`] is the `--screen` spec (`synthetic`, `vnc://`, `x11`, `terminal`, `none`).
//! - [`start`] runs a pixel source and hands back a [`Screen`]: one capture, shared by every
//!   viewer of this workstation. [`Screen::viewer`] gives each viewer its own
//!   [`ScreenViewer`], whose [`ScreenViewer::next_update`] waits for a picture newer than the one
//!   it last took and returns it with the damage accumulated since then.
//! - Latest frame wins: a source publishes each frame by replacing the previous one (a
//!   `tokio::sync::watch`), so a slow viewer skips frames and never makes the source queue them;
//!   the damage it missed is carried in the frame's recent damage history
//!   ([`Frame::damage_since`]), or becomes the whole screen when it fell too far behind.
//! - Input goes the other way through [`Screen::input`], in remote pixels, RFB conventions.
//!
//! The sources: [`synthetic`] (an animated desktop drawn here, deterministic under a seed),
//! `vnc` (an RFB client to a VNC server, through the `vnc-rs` crate) and `x11` (an X display
//! captured with x11rb, input through XTest).

mod damage;
pub mod grab;
mod spec;
pub mod synthetic;
mod vnc;
mod x11;

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, watch};

pub use damage::{MAX_RECTS, coalesce, covers_changes, diff_tiles};
pub use spec::{DEFAULT_SEED, PasswordSource, ScreenSource, VNC_PASSWORD_ENV, VncTarget};

use crate::frame::{Framebuffer, Rect};
use crate::protocol::stream::now_micros;
use crate::protocol::{InputEvent, ScreenSize};

/// How many frames of damage a [`Frame`] remembers: a viewer more than this many frames
/// behind (about 4 s at 30 fps) gets the whole screen as damage.
pub const DAMAGE_HISTORY: usize = 128;

/// Input events a source may have queued before [`Screen::input`] refuses more.
pub const INPUT_QUEUE: usize = 1024;

/// Why a screen source could not start, or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    #[error("this agent has no screen (--screen none)")]
    NoScreen,
    #[error(
        "--screen terminal is a text session, not a picture: it is served by the terminal source"
    )]
    NotPixels,
    #[error(
        "cannot reach the VNC server at {addr}: {reason} (is it running, and is the port right?)"
    )]
    VncConnect { addr: String, reason: String },
    #[error(
        "the VNC server at {addr} asks for a password: set {env} or add ?password-file=PATH to the vnc:// address",
        env = VNC_PASSWORD_ENV
    )]
    VncPasswordNeeded { addr: String },
    #[error("the VNC server at {addr} refused the password: {reason}")]
    VncAuth { addr: String, reason: String },
    #[error("cannot read the VNC password from {from}: {reason}")]
    VncPassword { from: String, reason: String },
    #[error("VNC server at {addr}: {reason}")]
    Vnc { addr: String, reason: String },
    #[error(
        "cannot open X display {display}: {reason} (check DISPLAY, and that this user may connect: XAUTHORITY)"
    )]
    X11Connect { display: String, reason: String },
    #[error("X display {display}: {reason}")]
    X11 { display: String, reason: String },
    #[error("the screen source stopped: {0}")]
    Ended(String),
    #[error("the screen source is not taking input fast enough; this event was dropped")]
    InputBacklog,
}

/// One published picture. Immutable once published; shared by every viewer.
#[derive(Debug)]
pub struct Frame {
    /// Counts published frames from 0 (the first picture).
    pub seq: u64,
    pub fb: Arc<Framebuffer>,
    /// When the source published it: the agent's wall clock, microseconds since the Unix
    /// epoch (what pixel frames carry as their capture time).
    pub captured_at: u64,
    /// The damage of the last [`DAMAGE_HISTORY`] frames, oldest first: `(seq, rects)` where
    /// `rects` changed between frame `seq - 1` and frame `seq`.
    history: Arc<VecDeque<(u64, Arc<[Rect]>)>>,
}

impl Frame {
    pub fn size(&self) -> ScreenSize {
        ScreenSize {
            width: self.fb.width(),
            height: self.fb.height(),
        }
    }

    /// What changed between frame `seq` and this one, coalesced: `None` for "everything"
    /// (`seq` is older than the history, or the screen changed size since).
    pub fn damage_since(&self, seq: u64) -> Option<Vec<Rect>> {
        if seq >= self.seq {
            return Some(Vec::new());
        }
        let oldest = self.history.front().map_or(self.seq + 1, |(s, _)| *s);
        if seq + 1 < oldest {
            return None;
        }
        let rects: Vec<Rect> = self
            .history
            .iter()
            .filter(|(s, _)| *s > seq)
            .flat_map(|(_, rects)| rects.iter().copied())
            .collect();
        Some(coalesce(&rects, self.fb.bounds()))
    }
}

/// A picture for one viewer: the latest frame and what changed since that viewer's last one.
#[derive(Debug, Clone)]
pub struct Update {
    pub seq: u64,
    pub fb: Arc<Framebuffer>,
    /// When the frame was captured (see [`Frame::captured_at`]).
    pub captured_at: u64,
    /// Changed since this viewer's previous update, coalesced (at most
    /// [`MAX_RECTS`]); the whole screen on the first update and after a resize.
    pub damage: Vec<Rect>,
    /// The size differs from this viewer's previous update (always false on the first).
    pub resized: bool,
}

/// A running screen source. Cheap to clone: every clone shares one capture; the source stops
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Screen {
    inner: Arc<ScreenInner>,
}

struct ScreenInner {
    frames: watch::Receiver<Arc<Frame>>,
    input: mpsc::Sender<InputEvent>,
    ended: Arc<OnceLock<String>>,
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for ScreenInner {
    fn drop(&mut self) {
        // Thread-based sources (x11) stop on their own when the input channel closes.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frame = self.latest();
        write!(
            f,
            "Screen({}x{}, seq {})",
            frame.fb.width(),
            frame.fb.height(),
            frame.seq
        )
    }
}

/// Start the source `spec` names. Returns once it has its first picture (so
/// [`Screen::size`] is right from the start).
pub async fn start(spec: &ScreenSource) -> Result<Screen, ScreenError> {
    match spec {
        ScreenSource::Synthetic {
            width,
            height,
            seed,
        } => Ok(synthetic::start(*width, *height, *seed)),
        ScreenSource::Vnc(target) => vnc::start(target).await,
        ScreenSource::X11 { display } => x11::start(display.as_deref()).await,
        ScreenSource::Terminal => Err(ScreenError::NotPixels),
        ScreenSource::Headless => Err(ScreenError::NoScreen),
    }
}

/// How long [`probe_size`] waits for a source's first picture.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The screen size to report for `spec`: the synthetic desktop's own size, or for a live
/// source (`vnc://`, `x11`) the size of its first picture, the source being started for it and
/// stopped again (nobody watches yet). `None` without a picture (terminal, none) or when the
/// source cannot start within [`PROBE_TIMEOUT`] (logged: the workstation then reports no
/// screen until its next connection).
pub async fn probe_size(spec: &ScreenSource) -> Option<ScreenSize> {
    if let Some(size) = spec.size() {
        return Some(size);
    }
    if !spec.is_live() {
        return None;
    }
    match tokio::time::timeout(PROBE_TIMEOUT, start(spec)).await {
        Ok(Ok(screen)) => Some(screen.size()),
        Ok(Err(e)) => {
            tracing::warn!(%e, "cannot read the screen's size; reporting none");
            None
        }
        Err(_) => {
            tracing::warn!(
                ?PROBE_TIMEOUT,
                "the screen source did not start in time; reporting no size"
            );
            None
        }
    }
}

/// For a live source whose size was not known when the agent connected (a display or VNC
/// server that starts after the agent, as at boot): probe again after [`RETRY_FIRST`], then
/// twice as long each time up to [`RETRY_MAX`], until it answers with a size. Never returns
/// for other sources.
pub async fn size_once_up(spec: &ScreenSource) -> ScreenSize {
    let mut wait = RETRY_FIRST;
    loop {
        if spec.is_live() {
            tokio::time::sleep(wait).await;
            if let Some(size) = probe_size(spec).await {
                return size;
            }
            wait = (wait * 2).min(RETRY_MAX);
        } else {
            std::future::pending::<()>().await;
        }
    }
}

/// The first wait of [`size_once_up`].
pub const RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(2);
/// The longest wait of [`size_once_up`].
pub const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl Screen {
    /// The screen of a source whose publisher sends `frames`, whose input goes to `input`,
    /// and whose task (if any) is aborted when the last clone is dropped.
    pub(crate) fn assemble(
        frames: watch::Receiver<Arc<Frame>>,
        input: mpsc::Sender<InputEvent>,
        ended: Arc<OnceLock<String>>,
        task: Option<tokio::task::AbortHandle>,
    ) -> Screen {
        Screen {
            inner: Arc::new(ScreenInner {
                frames,
                input,
                ended,
                task,
            }),
        }
    }

    /// The current size, in pixels (it changes when the remote screen is resized).
    pub fn size(&self) -> ScreenSize {
        self.latest().size()
    }

    /// The latest published frame.
    pub fn latest(&self) -> Arc<Frame> {
        self.inner.frames.borrow().clone()
    }

    /// A new viewer of this screen; its first [`ScreenViewer::next_update`] returns at once
    /// with the whole picture.
    pub fn viewer(&self) -> ScreenViewer {
        ScreenViewer {
            frames: self.inner.frames.clone(),
            last: None,
            ended: self.inner.ended.clone(),
        }
    }

    /// Every published frame, latest wins (for watching the size, say).
    pub fn frames(&self) -> watch::Receiver<Arc<Frame>> {
        self.inner.frames.clone()
    }

    /// Send a technician's key or pointer event to the screen. Never waits: when the source
    /// has [`INPUT_QUEUE`] events pending the event is refused with
    /// [`ScreenError::InputBacklog`]; when it has stopped, with [`ScreenError::Ended`].
    pub fn input(&self, event: InputEvent) -> Result<(), ScreenError> {
        self.inner.input.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ScreenError::InputBacklog,
            mpsc::error::TrySendError::Closed(_) => ScreenError::Ended(self.end_reason()),
        })
    }

    /// Why the source stopped, or `None` while it runs.
    pub fn ended(&self) -> Option<String> {
        self.inner.ended.get().cloned()
    }

    fn end_reason(&self) -> String {
        self.ended().unwrap_or_else(|| "stopped".into())
    }
}

/// One viewer's position in a [`Screen`]'s stream of frames.
#[derive(Debug)]
pub struct ScreenViewer {
    frames: watch::Receiver<Arc<Frame>>,
    /// The seq and size of the last frame this viewer took.
    last: Option<(u64, ScreenSize)>,
    ended: Arc<OnceLock<String>>,
}

impl ScreenViewer {
    /// Wait for a frame newer than the last one this viewer took, and return it with the
    /// damage since. Frames published meanwhile are skipped (their damage is folded in).
    /// Cancel-safe. Fails with [`ScreenError::Ended`] once the source stopped and this viewer
    /// has taken its last frame.
    pub async fn next_update(&mut self) -> Result<Update, ScreenError> {
        loop {
            if let Some(update) = self.try_update() {
                return Ok(update);
            }
            if self.frames.changed().await.is_err() {
                // The source is gone; hand out a frame published just before it went.
                return self.try_update().ok_or_else(|| {
                    ScreenError::Ended(
                        self.ended
                            .get()
                            .cloned()
                            .unwrap_or_else(|| "stopped".into()),
                    )
                });
            }
        }
    }

    /// The latest frame if it is newer than the last one taken, without waiting.
    pub fn try_update(&mut self) -> Option<Update> {
        let frame = self.frames.borrow_and_update().clone();
        let size = frame.size();
        let (damage, resized) = match self.last {
            Some((seq, _)) if frame.seq <= seq => return None,
            Some((seq, last_size)) if last_size == size => (frame.damage_since(seq), false),
            Some(_) => (None, true),
            None => (None, false),
        };
        self.last = Some((frame.seq, size));
        Some(Update {
            seq: frame.seq,
            fb: frame.fb.clone(),
            captured_at: frame.captured_at,
            damage: damage.unwrap_or_else(|| vec![frame.fb.bounds()]),
            resized,
        })
    }
}

/// The producing end of a [`Screen`], owned by a source's task or thread.
///
/// It double-buffers: the frame before the current one is usually no longer held by any
/// viewer, so the next frame reuses its buffer and copies only the rectangles changed over
/// the last two frames, instead of cloning the whole picture each frame.
pub(crate) struct Publisher {
    tx: watch::Sender<Arc<Frame>>,
    ended: Arc<OnceLock<String>>,
    spare: Option<Arc<Framebuffer>>,
    /// The damage of the current frame: what the spare buffer lacks besides the next damage.
    carry: Vec<Rect>,
    history: Arc<VecDeque<(u64, Arc<[Rect]>)>>,
}

impl Publisher {
    /// A publisher whose first frame (seq 0) is `first`, and the receiving end for the
    /// [`Screen`] it feeds.
    pub(crate) fn new(first: Framebuffer) -> (Self, watch::Receiver<Arc<Frame>>) {
        let frame = Frame {
            seq: 0,
            fb: Arc::new(first),
            captured_at: now_micros(),
            history: Arc::new(VecDeque::new()),
        };
        let (tx, rx) = watch::channel(Arc::new(frame));
        let publisher = Self {
            tx,
            ended: Arc::new(OnceLock::new()),
            spare: None,
            carry: Vec::new(),
            history: Arc::new(VecDeque::new()),
        };
        (publisher, rx)
    }

    /// Why the source stopped, once it has: what [`Screen::assemble`] needs.
    pub(crate) fn ended(&self) -> Arc<OnceLock<String>> {
        self.ended.clone()
    }

    /// The size of the current frame.
    pub(crate) fn size(&self) -> (u32, u32) {
        let frame = self.tx.borrow();
        (frame.fb.width(), frame.fb.height())
    }

    /// Publish `work` as the next frame; `damage` is what changed since the last publish (it
    /// must cover every changed pixel). Nothing is published when `damage` is empty.
    pub(crate) fn publish(&mut self, work: &Framebuffer, damage: &[Rect]) {
        let resized = self.size() != (work.width(), work.height());
        let damage = if resized {
            vec![work.bounds()]
        } else {
            coalesce(damage, work.bounds())
        };
        if damage.is_empty() {
            return;
        }
        let reused = match self.spare.take() {
            Some(mut spare)
                if !resized && spare.width() == work.width() && spare.height() == work.height() =>
            {
                match Arc::get_mut(&mut spare) {
                    Some(buf) => {
                        for r in self.carry.iter().chain(&damage) {
                            damage::copy_rect(buf, work, *r);
                        }
                        Some(spare)
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let fb = reused.unwrap_or_else(|| Arc::new(work.clone()));
        let seq = self.tx.borrow().seq + 1;
        let history = Arc::make_mut(&mut self.history);
        history.push_back((seq, damage.clone().into()));
        while history.len() > DAMAGE_HISTORY {
            history.pop_front();
        }
        let frame = Frame {
            seq,
            fb,
            captured_at: now_micros(),
            history: self.history.clone(),
        };
        let previous = self.tx.send_replace(Arc::new(frame));
        self.spare = Some(previous.fb.clone());
        self.carry = damage;
    }

    /// Record why the source stopped; viewers see it once they took the last frame.
    pub(crate) fn finish(self, reason: impl Into<String>) {
        let _ = self.ended.set(reason.into());
    }
}

/// The RFB pointer convention as separate button presses: bit `i` is X button `i + 1`.
pub(crate) fn button_changes(before: u8, after: u8) -> impl Iterator<Item = (u8, bool)> {
    (0u8..8).filter_map(move |bit| {
        let mask = 1u8 << bit;
        (before & mask != after & mask).then_some((bit + 1, after & mask != 0))
    })
}

#[cfg(test)]
mod tests;
