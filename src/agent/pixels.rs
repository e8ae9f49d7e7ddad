//! Desktop streams: the screen, scaled to the size each viewer draws at, sent as changed
//! rectangles, paced by a window of bytes in flight.
//!
//! Each viewer keeps sending while the bytes it has not had acknowledged stay under its
//! [`Window`]: the link's bandwidth times its round trip, both measured from the acks' timing
//! (as BBR does: the delivery rate's recent maximum and the round trip's recent minimum),
//! bounded by [`WindowLimits`]. So a long link is kept full instead of carrying one frame per
//! round trip. Latest wins all the same: while the window is full nothing is taken from the
//! screen, whose damage accumulates; when room opens, the current pixels of all of it go in
//! one frame, so a slow viewer skips pictures and never queues stale ones.
//!
//! Viewers at the same size share one scaled picture and its compressed bands
//! ([`super::views`]); each keeps only its place in it and its frames in flight.
//!
//! A frame the hub dropped (`Dropped`), or whose ack did not come within
//! [`IN_FLIGHT_TIMEOUT`], is sent again from the scaled picture, which holds the latest pixels
//! of its area: nothing stays stale on the viewer's screen.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::screen::{Screen, ScreenError};
use super::views::{Position, SharedView, Views};
use crate::frame::Rect;
use crate::protocol::{InputEvent, StreamId};

pub(super) enum PixelCommand {
    /// The viewer drew frame `seq`.
    Ack(u64),
    /// The hub dropped frame `seq` on its way to the viewer.
    Dropped(u64),
    /// The viewer's drawing area changed (pixels).
    Resize(u32, u32),
    /// Keyboard and mouse, in the remote screen's pixels.
    Input(Vec<InputEvent>),
}

/// A frame in flight longer than this is taken as dropped and its area sent again: acks
/// travel best effort (a backed-up link may lose one), and one lost ack must not freeze the
/// picture.
pub(super) const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames a viewer may have in flight at most, however small: the hub queues at most a few
/// hundred messages for a console's connection before it drops frames.
pub(super) const MAX_FRAMES_IN_FLIGHT: u64 = 32;

/// How the window of bytes in flight may grow and shrink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowLimits {
    /// Before any ack has measured the link.
    pub start: u64,
    pub min: u64,
    pub max: u64,
}

impl Default for WindowLimits {
    /// From 256 KiB (two frames of a window drag at 1080p), within 64 KiB .. 4 MiB (a
    /// 100 Mbit/s link with a 300 ms round trip).
    fn default() -> Self {
        Self {
            start: 256 * 1024,
            min: 64 * 1024,
            max: 4 * 1024 * 1024,
        }
    }
}

/// How long a delivery-rate sample counts towards the maximum: a few seconds, so a link that
/// got slower is noticed soon, and a pause in the picture does not forget the link.
const RATE_MEMORY: Duration = Duration::from_secs(5);
/// How long a round-trip sample counts towards the minimum.
const RTT_MEMORY: Duration = Duration::from_secs(10);
/// The window is this many times bandwidth x round trip: room for acks that come in bursts
/// (BBR's congestion-window gain).
const WINDOW_GAIN: f64 = 2.0;

/// The link as the acks show it, and the window of bytes in flight it allows.
#[derive(Debug)]
pub(super) struct Window {
    limits: WindowLimits,
    bytes: u64,
    /// Bytes acknowledged so far, and when the last ack came.
    delivered: u64,
    delivered_at: Option<Instant>,
    /// Delivery rates (bytes a second) and round trips sampled lately, with when.
    rates: VecDeque<(Instant, f64)>,
    rtts: VecDeque<(Instant, Duration)>,
}

/// What a batch of frames remembers of the link when it was sent, for the samples its ack
/// makes.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendStamp {
    at: Instant,
    delivered: u64,
    delivered_at: Instant,
}

impl Window {
    pub(super) fn new(limits: WindowLimits) -> Self {
        Self {
            limits,
            bytes: limits.start.clamp(limits.min, limits.max),
            delivered: 0,
            delivered_at: None,
            rates: VecDeque::new(),
            rtts: VecDeque::new(),
        }
    }

    /// Bytes that may be in flight now.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(super) fn stamp(&self, now: Instant) -> SendStamp {
        SendStamp {
            at: now,
            delivered: self.delivered,
            delivered_at: self.delivered_at.unwrap_or(now),
        }
    }

    /// A batch of `bytes` sent at `stamp` was acknowledged at `now`: sample the round trip
    /// and the delivery rate since, and size the window to the link.
    pub(super) fn acked(&mut self, bytes: u64, stamp: SendStamp, now: Instant) {
        self.delivered += bytes;
        self.delivered_at = Some(now);
        self.rtts.push_back((now, now.duration_since(stamp.at)));
        // Bytes acknowledged from the last ack before the send to this one, over that time:
        // what the link delivered while this batch crossed it.
        let elapsed = now.duration_since(stamp.delivered_at).as_secs_f64();
        if elapsed > 0.0 {
            let rate = (self.delivered - stamp.delivered) as f64 / elapsed;
            self.rates.push_back((now, rate));
        }
        forget_older(&mut self.rates, now, RATE_MEMORY);
        forget_older(&mut self.rtts, now, RTT_MEMORY);
        let rate = self.rates.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        let Some(rtt) = self.rtts.iter().map(|(_, d)| *d).min() else {
            return;
        };
        if rate > 0.0 {
            let bdp = WINDOW_GAIN * rate * rtt.as_secs_f64();
            self.bytes = (bdp as u64).clamp(self.limits.min, self.limits.max);
        }
    }
}

/// Drop samples older than `memory`, keeping the newest.
fn forget_older<T>(samples: &mut VecDeque<(Instant, T)>, now: Instant, memory: Duration) {
    while samples.len() > 1
        && samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > memory)
    {
        samples.pop_front();
    }
}

/// The frames of one send, not yet known to be drawn.
struct InFlight {
    /// Sequence numbers of its first and last frame.
    first: u64,
    last: u64,
    /// The rectangles they carried, in the view's picture of `generation`.
    rects: Vec<Rect>,
    generation: u64,
    bytes: u64,
    stamp: SendStamp,
    /// When to stop waiting for the ack.
    deadline: Instant,
}

impl InFlight {
    fn frames(&self) -> u64 {
        self.last + 1 - self.first
    }
}

/// The link to the hub is gone.
struct Closed;

/// One viewer's stream: where it is in its view, and what it has in flight.
struct ViewerLink<'a> {
    stream: StreamId,
    screen: &'a Screen,
    frames: &'a mpsc::Sender<Vec<u8>>,
    view: Arc<Mutex<SharedView>>,
    position: Option<Position>,
    seq: u64,
    in_flight: VecDeque<InFlight>,
    window: Window,
}

impl ViewerLink<'_> {
    /// Room for another send: bytes and frames in flight under the window.
    fn room(&self) -> bool {
        let bytes: u64 = self.in_flight.iter().map(|f| f.bytes).sum();
        let frames: u64 = self.in_flight.iter().map(InFlight::frames).sum();
        bytes < self.window.bytes() && frames < MAX_FRAMES_IN_FLIGHT
    }

    /// Bring the view up to the screen's latest picture and send what this viewer lacks of
    /// it, with `lost` (rectangles of a picture generation that did not arrive).
    async fn send_latest(&mut self, lost: Option<(u64, Vec<Rect>)>) -> Result<(), Closed> {
        let (encoded, rects, generation) = {
            let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            view.advance(&self.screen.latest());
            let now = view.position();
            let mut rects = view.damage_since(self.position);
            if let Some((generation, lost)) = lost
                && generation == now.generation
            {
                rects.extend(lost);
                rects = view.coalesced(&rects);
            }
            self.position = Some(now);
            let mut seq = self.seq;
            match view.encode(self.stream, &mut seq, &rects) {
                Ok(encoded) => {
                    self.seq = seq;
                    (encoded, rects, now.generation)
                }
                Err(e) => {
                    tracing::error!(stream = self.stream, %e, "cannot encode a frame");
                    return Ok(());
                }
            }
        };
        if encoded.is_empty() {
            return Ok(());
        }
        let count = encoded.len() as u64;
        let bytes = encoded.iter().map(|f| f.len() as u64).sum();
        let now = Instant::now();
        let batch = InFlight {
            first: self.seq + 1 - count,
            last: self.seq,
            rects,
            generation,
            bytes,
            stamp: self.window.stamp(now),
            deadline: now + IN_FLIGHT_TIMEOUT,
        };
        for frame in encoded {
            self.frames.send(frame).await.map_err(|_| Closed)?;
        }
        self.in_flight.push_back(batch);
        Ok(())
    }

    /// The viewer drew frame `seq`: every batch up to it is through (acks travel in order).
    fn acked(&mut self, seq: u64) {
        let now = Instant::now();
        while let Some(batch) = self.in_flight.front()
            && batch.last <= seq
        {
            self.window.acked(batch.bytes, batch.stamp, now);
            self.in_flight.pop_front();
        }
    }

    /// The batch that carried frame `seq`, out of flight: its area goes again.
    fn lost(&mut self, seq: u64) -> Option<InFlight> {
        let i = self
            .in_flight
            .iter()
            .position(|f| (f.first..=f.last).contains(&seq))?;
        self.in_flight.remove(i)
    }
}

/// Stream `screen` to one viewer until the viewer leaves or the screen ends. Returns why the
/// stream ended on this side (the screen stopped), for the viewer; `None` when the viewer
/// left or the link to the hub closed.
pub(super) async fn run(
    screen: Screen,
    stream: StreamId,
    area: (u32, u32),
    mut commands: mpsc::UnboundedReceiver<PixelCommand>,
    frames: mpsc::Sender<Vec<u8>>,
    views: Arc<Views>,
    limits: WindowLimits,
) -> Option<String> {
    // Only wakes this stream when the screen has a newer picture; the picture itself comes
    // from the shared view.
    let mut updates = screen.viewer();
    let mut link = ViewerLink {
        stream,
        screen: &screen,
        frames: &frames,
        view: views.view(area),
        position: None,
        seq: 0,
        in_flight: VecDeque::new(),
        window: Window::new(limits),
    };
    // A new size is drawn whole at once, even on a screen that does not change.
    let mut redraw = false;
    loop {
        if redraw && link.room() {
            redraw = false;
            if link.send_latest(None).await.is_err() {
                return None;
            }
        }
        let room = link.room();
        let deadline = link.in_flight.front().map(|f| f.deadline);
        // A frame that did not arrive (the hub says so, or no ack came in time).
        let mut lost = None;
        tokio::select! {
            command = commands.recv() => match command {
                None => return None,
                Some(PixelCommand::Ack(seq)) => link.acked(seq),
                // A frame of a batch no longer in flight: its area went again already.
                Some(PixelCommand::Dropped(seq)) => lost = link.lost(seq),
                Some(PixelCommand::Input(events)) => {
                    for event in events {
                        if let Err(e) = screen.input(event) {
                            tracing::warn!(stream, %e, "input not delivered");
                        }
                    }
                }
                Some(PixelCommand::Resize(w, h)) => {
                    link.view = views.view((w, h));
                    link.position = None;
                    redraw = true;
                }
            },
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                tracing::debug!(stream, "no ack in time: sending the frame's area again");
                lost = link.in_flight.pop_front();
            }
            update = updates.next_update(), if room => {
                match update {
                    Ok(_) => {}
                    Err(ScreenError::Ended(reason)) => {
                        tracing::info!(stream, reason, "the screen ended");
                        return Some(format!("the screen source stopped: {reason}"));
                    }
                    Err(e) => {
                        tracing::warn!(stream, %e, "screen update failed");
                        return Some(format!("the screen source failed: {e}"));
                    }
                }
                if link.send_latest(None).await.is_err() {
                    return None;
                }
            }
        }
        // Sent again at once whatever the window: its bytes are out of flight already, and
        // with whatever changed meanwhile, so the area has its newest pixels.
        if let Some(lost) = lost
            && link
                .send_latest(Some((lost.generation, lost.rects)))
                .await
                .is_err()
        {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::screen::Publisher;
    use super::*;
    use crate::frame::Framebuffer;
    use crate::protocol::stream::{self, StreamFrame};

    /// The rectangles a pixels frame carries.
    fn rects_of(frame: &[u8]) -> (u64, Vec<Rect>) {
        match stream::decode(frame).expect("decode") {
            StreamFrame::Pixels { seq, rects, .. } => (seq, rects.iter().map(|r| r.rect).collect()),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The screen's publisher, the stream's commands, its frames and its task.
    type Streaming = (
        Publisher,
        mpsc::UnboundedSender<PixelCommand>,
        mpsc::Receiver<Vec<u8>>,
        tokio::task::JoinHandle<Option<String>>,
    );

    /// One frame in flight at a time: the window never has room for a second.
    const ONE_AT_A_TIME: WindowLimits = WindowLimits {
        start: 1,
        min: 1,
        max: 1,
    };

    /// A 64 x 48 screen the test draws on, streamed at its size to a viewer that acknowledges
    /// nothing by itself, one frame in flight at a time.
    fn streaming() -> Streaming {
        streaming_with((64, 48), ONE_AT_A_TIME)
    }

    /// A `size` screen the test draws on, streamed at its size with a window of `limits`.
    fn streaming_with(size: (u32, u32), limits: WindowLimits) -> Streaming {
        let (publisher, pictures) = Publisher::new(Framebuffer::new(size.0, size.1));
        let (input, _) = mpsc::channel(1);
        let screen = Screen::assemble(pictures, input, publisher.ended(), None);
        let (commands, rx) = mpsc::unbounded_channel();
        let (frames_tx, frames) = mpsc::channel(64);
        let views = Arc::new(Views::default());
        let task = tokio::spawn(run(screen, 5, size, rx, frames_tx, views, limits));
        (publisher, commands, frames, task)
    }

    /// Paint `rect` on the screen.
    fn paint(publisher: &mut Publisher, fb: &mut Framebuffer, rect: Rect, colour: u8) {
        fb.fill(rect, [colour, colour, colour, 255]);
        publisher.publish(fb, &[rect]);
    }

    async fn next(frames: &mut mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(1), frames.recv())
            .await
            .expect("a frame in time")
            .expect("stream open")
    }

    async fn nothing(frames: &mut mpsc::Receiver<Vec<u8>>, within: Duration) -> bool {
        tokio::time::timeout(within, frames.recv()).await.is_err()
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_dropped_across_a_screen_resize_is_sent_as_the_new_whole_picture() {
        let (mut publisher, commands, mut frames, task) = streaming();
        let (first, _) = rects_of(&next(&mut frames).await);
        commands.send(PixelCommand::Ack(first)).expect("send");
        // A damaged corner far from the origin is in flight...
        let mut fb = Framebuffer::new(64, 48);
        let corner = Rect::new(48, 32, 16, 16);
        paint(&mut publisher, &mut fb, corner, 100);
        let (dropped, rects) = rects_of(&next(&mut frames).await);
        assert_eq!(rects, vec![corner]);
        // ...when the screen becomes 64 x 16 (so is the view: the corner is gone), and the
        // frame is lost.
        let small = Framebuffer::new(64, 16);
        publisher.publish(&small, &[small.bounds()]);
        tokio::task::yield_now().await;
        commands.send(PixelCommand::Dropped(dropped)).expect("send");
        let (_, rects) = rects_of(&next(&mut frames).await);
        assert_eq!(
            rects,
            vec![Rect::new(0, 0, 64, 16)],
            "the new picture, whole"
        );
        assert!(!task.is_finished(), "the stream goes on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_frame_is_sent_again_at_once_with_the_latest_pixels() {
        let (mut publisher, commands, mut frames, _task) = streaming();
        let mut fb = Framebuffer::new(64, 48);
        let (first, whole) = rects_of(&next(&mut frames).await);
        assert_eq!(
            whole,
            vec![Rect::new(0, 0, 64, 48)],
            "the first picture is whole"
        );
        commands.send(PixelCommand::Ack(first)).expect("send");
        let square = Rect::new(8, 8, 4, 4);
        paint(&mut publisher, &mut fb, square, 100);
        let (dropped, rects) = rects_of(&next(&mut frames).await);
        assert_eq!(rects, vec![square]);
        // The square changes again while its frame is in flight, and then the hub drops that
        // frame: the area comes again at once, under a new number, with the newest pixels.
        paint(&mut publisher, &mut fb, square, 200);
        tokio::task::yield_now().await;
        commands.send(PixelCommand::Dropped(dropped)).expect("send");
        let again = next(&mut frames).await;
        let (resent, rects) = rects_of(&again);
        assert!(resent > dropped);
        assert!(
            rects.contains(&square),
            "the dropped area, sent again: {rects:?}"
        );
        let StreamFrame::Pixels {
            rects: resent_rects,
            ..
        } = stream::decode(&again).expect("decode")
        else {
            unreachable!()
        };
        let newest = resent_rects
            .iter()
            .rev()
            .find(|r| r.rect == square)
            .expect("the square");
        assert_eq!(
            &newest.rgb[..3],
            &[200, 200, 200],
            "the latest pixels, not stale ones"
        );
        // A late ack or drop of the lost frame changes nothing: one frame stays in flight.
        commands.send(PixelCommand::Ack(dropped)).expect("send");
        commands.send(PixelCommand::Dropped(dropped)).expect("send");
        assert!(
            nothing(&mut frames, Duration::from_secs(1)).await,
            "one frame in flight"
        );
        // Acked, the stream goes on.
        commands.send(PixelCommand::Ack(resent)).expect("send");
        let other = Rect::new(0, 0, 2, 2);
        paint(&mut publisher, &mut fb, other, 9);
        assert_eq!(rects_of(&next(&mut frames).await).1, vec![other]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_whose_ack_never_comes_is_sent_again_after_the_timeout() {
        let (mut publisher, commands, mut frames, _task) = streaming();
        let mut fb = Framebuffer::new(64, 48);
        let (first, _) = rects_of(&next(&mut frames).await);
        commands.send(PixelCommand::Ack(first)).expect("send");
        let square = Rect::new(30, 20, 6, 5);
        paint(&mut publisher, &mut fb, square, 50);
        // Its ack is lost on the way: the picture must not freeze.
        let (lost, rects) = rects_of(&next(&mut frames).await);
        assert_eq!(rects, vec![square]);
        let waited = tokio::time::Instant::now();
        assert!(
            nothing(&mut frames, IN_FLIGHT_TIMEOUT - Duration::from_millis(50)).await,
            "nothing before the timeout"
        );
        let (again, rects) = rects_of(&next(&mut frames).await);
        assert!(waited.elapsed() >= IN_FLIGHT_TIMEOUT);
        assert!(again > lost);
        assert_eq!(rects, vec![square], "the unacknowledged area, sent again");
        // Acked, later changes flow again.
        commands.send(PixelCommand::Ack(again)).expect("send");
        let other = Rect::new(0, 0, 2, 2);
        paint(&mut publisher, &mut fb, other, 9);
        assert_eq!(rects_of(&next(&mut frames).await).1, vec![other]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_screen_ends_the_stream_with_its_reason() {
        let (publisher, commands, mut frames, task) = streaming();
        let (first, _) = rects_of(&next(&mut frames).await);
        commands.send(PixelCommand::Ack(first)).expect("send");
        publisher.finish("X display :3 went away");
        let why = tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the stream ended")
            .expect("task");
        assert_eq!(
            why.as_deref(),
            Some("the screen source stopped: X display :3 went away")
        );
    }

    /// Fill `rect` with noise (which does not compress), different for each `seed`.
    fn noise(fb: &mut Framebuffer, rect: Rect, seed: u32) {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        for py in rect.y..rect.bottom() {
            for px in rect.x..rect.right() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let [r, g, b, _] = x.to_le_bytes();
                fb.set_pixel(px, py, [r, g, b, 255]);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn frames_are_pipelined_up_to_the_window_and_stale_damage_is_not_queued() {
        const WINDOW: u64 = 100_000;
        let fixed = WindowLimits {
            start: WINDOW,
            min: WINDOW,
            max: WINDOW,
        };
        let (mut publisher, commands, mut frames, _task) = streaming_with((512, 128), fixed);
        let mut fb = Framebuffer::new(512, 128);
        let (first, _) = rects_of(&next(&mut frames).await);
        commands.send(PixelCommand::Ack(first)).expect("send");
        // Squares of noise (about 12 KB each), none acknowledged: each goes at once while the
        // bytes in flight are under the window, and then nothing goes.
        let mut unacked = 0u64;
        let mut sent = Vec::new();
        for i in 0..16u32 {
            let square = Rect::new((i % 8) * 64, (i / 8) * 64, 64, 64);
            noise(&mut fb, square, i);
            publisher.publish(&fb, &[square]);
            if unacked < WINDOW {
                let frame = next(&mut frames).await;
                let (seq, rects) = rects_of(&frame);
                assert_eq!(rects, vec![square], "frame {seq} carries the new square");
                unacked += frame.len() as u64;
                sent.push(seq);
            } else {
                assert!(
                    nothing(&mut frames, Duration::from_millis(100)).await,
                    "nothing more once {unacked} bytes are in flight"
                );
            }
        }
        assert!(sent.len() >= 2, "a second frame before the first was acked");
        assert!(unacked >= WINDOW, "stopped at the window, not before");
        assert!(sent.len() < 16, "and did stop: {} frames", sent.len());
        // While the window is full one square changes twice and another once: nothing is
        // queued, and when the acks open the window one frame brings the latest of both.
        let twice = Rect::new(0, 0, 64, 64);
        noise(&mut fb, twice, 100);
        publisher.publish(&fb, &[twice]);
        tokio::task::yield_now().await;
        noise(&mut fb, twice, 101);
        let once = Rect::new(448, 64, 64, 64);
        noise(&mut fb, once, 102);
        publisher.publish(&fb, &[twice, once]);
        assert!(nothing(&mut frames, Duration::from_millis(100)).await);
        let last = *sent.last().expect("sent");
        commands.send(PixelCommand::Ack(last)).expect("send");
        let frame = next(&mut frames).await;
        let StreamFrame::Pixels { rects, .. } = stream::decode(&frame).expect("decode") else {
            panic!("not pixels")
        };
        let mut latest = Framebuffer::new(512, 128);
        crate::console::desktop::put_rects(&mut latest, &rects);
        for square in [twice, once] {
            for (y, x) in [(0, 0), (63, 63), (20, 41)] {
                let (x, y) = (square.x + x, square.y + y);
                assert_eq!(
                    latest.pixel(x, y),
                    fb.pixel(x, y),
                    "the latest pixels at {x},{y}"
                );
            }
        }
        assert!(
            nothing(&mut frames, Duration::from_millis(100)).await,
            "one frame for all the damage, no stale ones after it"
        );
    }

    /// The throughput and final window of a stream sending batches of `batch` bytes as the
    /// window allows over a simulated link of `rate` bytes a second and `rtt` round trip (the
    /// link sends one batch at a time; its ack comes `rtt` after it is through).
    fn simulate(rate: f64, rtt: Duration, batch: u64) -> (f64, u64) {
        let mut window = Window::new(WindowLimits::default());
        let t0 = Instant::now();
        let mut now = t0;
        let mut link_free = t0;
        let mut flight: VecDeque<(SendStamp, Instant)> = VecDeque::new();
        let warm = t0 + Duration::from_secs(2);
        let end = t0 + Duration::from_secs(6);
        let mut delivered = 0u64;
        while now < end {
            while (flight.len() as u64) * batch < window.bytes() {
                let through = link_free.max(now) + Duration::from_secs_f64(batch as f64 / rate);
                link_free = through;
                flight.push_back((window.stamp(now), through + rtt));
            }
            let Some((stamp, at)) = flight.pop_front() else {
                break;
            };
            now = at;
            window.acked(batch, stamp, now);
            if now > warm {
                delivered += batch;
            }
        }
        let secs = now.duration_since(warm).as_secs_f64();
        (delivered as f64 / secs, window.bytes())
    }

    #[test]
    fn the_window_grows_to_fill_a_long_fast_link_and_shrinks_on_a_slow_one() {
        let rtt = Duration::from_millis(100);
        // 40 Mbit/s over 100 ms: more than the starting window is needed to fill it (one
        // frame per round trip would use a tenth of it).
        let (throughput, window) = simulate(5_000_000.0, rtt, 50_000);
        assert!(throughput >= 0.9 * 5_000_000.0, "{throughput:.0} B/s");
        assert!(window > WindowLimits::default().start, "{window}");
        // 10 Mbit/s: filled too.
        let (throughput, _) = simulate(1_250_000.0, rtt, 50_000);
        assert!(throughput >= 0.9 * 1_250_000.0, "{throughput:.0} B/s");
        // 1 Mbit/s: the link is still full, with a smaller window (less waits in queues).
        let (throughput, window) = simulate(125_000.0, rtt, 10_000);
        assert!(throughput >= 0.9 * 125_000.0, "{throughput:.0} B/s");
        assert!(window < WindowLimits::default().start, "{window}");
        assert!(window >= WindowLimits::default().min);
    }

    #[tokio::test(start_paused = true)]
    async fn viewers_at_the_same_size_get_the_same_frames_from_one_encode() {
        let (mut publisher, pictures) = Publisher::new(Framebuffer::new(64, 48));
        let (input, _) = mpsc::channel(1);
        let screen = Screen::assemble(pictures, input, publisher.ended(), None);
        let views = Arc::new(Views::default());
        let (frames_tx, mut frames) = mpsc::channel(64);
        let mut viewers = Vec::new();
        for (stream, area) in [(1, (64, 48)), (2, (64, 48)), (3, (32, 24))] {
            let (commands, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(run(
                screen.clone(),
                stream,
                area,
                rx,
                frames_tx.clone(),
                views.clone(),
                WindowLimits::default(),
            ));
            viewers.push((commands, task));
        }
        // Each frame by stream: the bytes after the header (stream and seq) are the picture.
        let by_stream = |frames: Vec<Vec<u8>>| {
            let mut out = std::collections::BTreeMap::new();
            for f in frames {
                let (_, stream, _) = stream::peek_header(&f).expect("header");
                out.insert(stream, f);
            }
            out
        };
        let mut three = Vec::new();
        for _ in 0..3 {
            three.push(next(&mut frames).await);
        }
        let first = by_stream(three);
        assert_eq!(first[&1][18..], first[&2][18..], "the same whole picture");
        assert_eq!(
            views.encodes(),
            2,
            "one encode for the two at 64x48, one at 32x24"
        );
        let mut fb = Framebuffer::new(64, 48);
        let square = Rect::new(8, 8, 16, 16);
        fb.fill(square, [200, 10, 10, 255]);
        publisher.publish(&fb, &[square]);
        let mut three = Vec::new();
        for _ in 0..3 {
            three.push(next(&mut frames).await);
        }
        let changed = by_stream(three);
        assert_eq!(changed[&1][18..], changed[&2][18..], "the same change");
        assert_eq!(rects_of(&changed[&1]).1, vec![square]);
        assert_eq!(views.encodes(), 4, "again one encode per size");
        assert!(viewers.iter().all(|(_, t)| !t.is_finished()));
    }
}
