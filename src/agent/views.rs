//! One scaled picture per distinct view: viewers of one screen at the same size share the
//! scaled framebuffer and the compressed rectangles, and keep only their own place in it.
//!
//! A [`SharedView`] follows the screen at one viewer size: it scales each new picture's damage
//! once and remembers which of its rectangles changed at each step, so a viewer learns what it
//! lacks from the step it last sent ([`Position`]). Compressed bands of the current step are
//! kept, so a second viewer at the same pace sends the first one's bytes: it costs a lookup
//! and a copy into its own frame (whose header carries its stream and sequence), no scaling or
//! compression, and no picture of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::screen::{DAMAGE_HISTORY, Frame, coalesce};
use crate::frame::{Framebuffer, Rect};
use crate::protocol::StreamId;
use crate::protocol::stream::{self, StreamError};
use crate::render::{fit, scale};

/// Frames larger than this (raw, before compression) are split, to stay well under the
/// WebSocket message limit.
pub(super) const MAX_FRAME_BYTES: usize = 2 * 1024 * 1024;
/// Rectangles taller than this are cut into bands before encoding, so one frame never has to
/// hold a whole large picture at once (and bands are the unit viewers share).
pub(super) const BAND_ROWS: u32 = 64;

/// A view, held weakly: it lives while a viewer holds it.
type ViewSlot = Weak<Mutex<SharedView>>;

/// The shared views of one agent's screen, by viewer size. A view lives while a viewer holds
/// it.
#[derive(Default)]
pub(super) struct Views {
    by_area: Mutex<HashMap<(u32, u32), ViewSlot>>,
    /// Bands compressed so far, for every view (what sharing saves shows here).
    encodes: Arc<AtomicU64>,
}

impl Views {
    /// The view for viewers drawing at `area` (pixels), made when it is the first.
    pub(super) fn view(&self, area: (u32, u32)) -> Arc<Mutex<SharedView>> {
        let mut by_area = self.by_area.lock().unwrap_or_else(|p| p.into_inner());
        by_area.retain(|_, v| v.strong_count() > 0);
        if let Some(view) = by_area.get(&area).and_then(Weak::upgrade) {
            return view;
        }
        let view = Arc::new(Mutex::new(SharedView::new(area, self.encodes.clone())));
        by_area.insert(area, Arc::downgrade(&view));
        view
    }

    /// How many bands have been compressed, over all views.
    #[cfg(test)]
    pub(super) fn encodes(&self) -> u64 {
        self.encodes.load(Ordering::Relaxed)
    }
}

/// Where a viewer is in a [`SharedView`]: the picture it was last sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    /// The view's picture (a new one on each resize).
    pub generation: u64,
    /// The screen frame it showed.
    pub at: u64,
}

/// The screen scaled to one viewer size, and what changed in it lately.
pub(super) struct SharedView {
    area: (u32, u32),
    target: Option<Framebuffer>,
    generation: u64,
    /// The screen frame the target shows, and when it was captured.
    at: u64,
    captured_at: u64,
    /// The target's changed rectangles at each step, oldest first: `(screen frame, rects)`
    /// where `rects` changed between the previous step and that frame.
    history: VecDeque<(u64, Vec<Rect>)>,
    /// Compressed bands of the current step.
    packed: HashMap<Rect, Arc<[u8]>>,
    encodes: Arc<AtomicU64>,
}

impl SharedView {
    fn new(area: (u32, u32), encodes: Arc<AtomicU64>) -> Self {
        Self {
            area,
            target: None,
            generation: 0,
            at: 0,
            captured_at: 0,
            history: VecDeque::new(),
            packed: HashMap::new(),
            encodes,
        }
    }

    /// Bring the picture up to `frame` (the screen's latest), scaling only what changed.
    pub(super) fn advance(&mut self, frame: &Frame) {
        let (w, h) = fit(
            frame.fb.width(),
            frame.fb.height(),
            self.area.0,
            self.area.1,
        );
        let same_size = self
            .target
            .as_ref()
            .is_some_and(|t| (t.width(), t.height()) == (w, h));
        if same_size && frame.seq == self.at {
            return;
        }
        // Another screen (restarted: its frames count from 0 again) or a step too far back
        // for the screen's history: the damage is not known, so the picture is made afresh.
        let damage = if same_size && frame.seq > self.at {
            frame.damage_since(self.at)
        } else {
            None
        };
        self.packed.clear();
        match (damage, self.target.as_mut()) {
            (Some(damage), Some(t)) => {
                let changed = scale::scale_damaged(&frame.fb, t, &damage);
                self.history.push_back((frame.seq, changed));
                while self.history.len() > DAMAGE_HISTORY {
                    self.history.pop_front();
                }
            }
            _ => {
                let mut t = Framebuffer::new(w, h);
                scale::scale_into(&frame.fb, &mut t);
                self.history.clear();
                self.history.push_back((frame.seq, vec![t.bounds()]));
                self.target = Some(t);
                self.generation += 1;
            }
        }
        self.at = frame.seq;
        self.captured_at = frame.captured_at;
    }

    /// The picture now.
    pub(super) fn position(&self) -> Position {
        Position {
            generation: self.generation,
            at: self.at,
        }
    }

    /// `rects` of the picture, coalesced within it.
    pub(super) fn coalesced(&self, rects: &[Rect]) -> Vec<Rect> {
        self.target
            .as_ref()
            .map_or_else(Vec::new, |t| coalesce(rects, t.bounds()))
    }

    /// What a viewer at `from` lacks of the current picture, coalesced: all of it when it has
    /// none of this picture, or is further back than the history.
    pub(super) fn damage_since(&self, from: Option<Position>) -> Vec<Rect> {
        let Some(t) = self.target.as_ref() else {
            return Vec::new();
        };
        let oldest = self.history.front().map_or(self.at, |(s, _)| *s);
        match from {
            Some(p) if p.generation == self.generation && p.at + 1 >= oldest => {
                let rects: Vec<Rect> = self
                    .history
                    .iter()
                    .filter(|(s, _)| *s > p.at)
                    .flat_map(|(_, r)| r.iter().copied())
                    .collect();
                coalesce(&rects, t.bounds())
            }
            _ => vec![t.bounds()],
        }
    }

    /// Frames carrying `rects` of the current picture for `stream`, numbered from `*seq + 1`
    /// (`*seq` ends at the last one), each at most [`MAX_FRAME_BYTES`] raw. Bands already
    /// compressed for this picture are reused, the others compressed and kept.
    pub(super) fn encode(
        &mut self,
        stream: StreamId,
        seq: &mut u64,
        rects: &[Rect],
    ) -> Result<Vec<Vec<u8>>, StreamError> {
        let Some(target) = self.target.as_ref() else {
            return Ok(Vec::new());
        };
        let size = (target.width(), target.height());
        let mut frames = Vec::new();
        let mut batch: Vec<(Rect, Arc<[u8]>)> = Vec::new();
        let mut raw = 0usize;
        for band in bands(rects) {
            let band = band.intersect(&target.bounds());
            if band.is_empty() {
                continue;
            }
            let band_raw = band.width as usize * band.height as usize * 3;
            // Raw size is an upper bound on the compressed size: good enough to split on.
            if raw + band_raw > MAX_FRAME_BYTES && !batch.is_empty() {
                frames.push(self.frame(stream, seq, size, &batch)?);
                batch.clear();
                raw = 0;
            }
            let packed = match self.packed.get(&band) {
                Some(p) => p.clone(),
                None => {
                    let p: Arc<[u8]> = stream::pack_rgb(&rgb_of(target, band))?.into();
                    self.encodes.fetch_add(1, Ordering::Relaxed);
                    self.packed.insert(band, p.clone());
                    p
                }
            };
            raw += band_raw;
            batch.push((band, packed));
        }
        if !batch.is_empty() {
            frames.push(self.frame(stream, seq, size, &batch)?);
        }
        Ok(frames)
    }

    fn frame(
        &self,
        stream: StreamId,
        seq: &mut u64,
        size: (u32, u32),
        rects: &[(Rect, Arc<[u8]>)],
    ) -> Result<Vec<u8>, StreamError> {
        let parts: Vec<(Rect, &[u8])> = rects.iter().map(|(r, p)| (*r, &p[..])).collect();
        let frame = stream::encode_packed_pixels(stream, *seq + 1, self.captured_at, size, &parts)?;
        *seq += 1;
        Ok(frame)
    }
}

/// The RGB bytes of one rectangle of `fb`.
fn rgb_of(fb: &Framebuffer, rect: Rect) -> Vec<u8> {
    let mut out = Vec::with_capacity(rect.width as usize * rect.height as usize * 3);
    for y in rect.y..rect.bottom() {
        let row = fb.row(y);
        for px in row[rect.x as usize * 4..rect.right() as usize * 4].chunks_exact(4) {
            out.extend_from_slice(&px[..3]);
        }
    }
    out
}

/// Cut rectangles into bands of at most [`BAND_ROWS`] rows.
fn bands(rects: &[Rect]) -> Vec<Rect> {
    let mut out = Vec::new();
    for r in rects {
        let mut y = r.y;
        while y < r.bottom() {
            let h = BAND_ROWS.min(r.bottom() - y);
            out.push(Rect::new(r.x, y, r.width, h));
            y += h;
        }
    }
    out
}
