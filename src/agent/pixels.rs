//! Desktop streams: the screen, scaled to the size each viewer draws at, sent as changed
//! rectangles. One frame in flight per viewer, latest wins: the next frame is taken from the
//! screen only when the viewer acknowledged the last, and the screen's viewer hands over all
//! damage since then in one update, so a slow link skips frames instead of queueing them.
//! A frame the hub dropped (`Dropped`), or whose ack did not come within
//! [`IN_FLIGHT_TIMEOUT`], is sent again from the scaled picture, which holds the latest pixels
//! of its area: nothing stays stale on the viewer's screen.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::screen::{Screen, ScreenError, Update};
use crate::frame::{Framebuffer, Rect};
use crate::protocol::stream::{self, RectUpdate, StreamFrame};
use crate::protocol::{InputEvent, StreamId};
use crate::render::{fit, scale};

/// Frames larger than this (compressed) are split, to stay well under the WebSocket message
/// limit.
const MAX_FRAME_BYTES: usize = 2 * 1024 * 1024;
/// Rectangles taller than this are cut into bands before encoding, so one frame never has to
/// hold a whole large picture at once.
const BAND_ROWS: u32 = 64;

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

/// Encode the damaged parts of `target` as frames of at most [`MAX_FRAME_BYTES`] each, each
/// stamped with the picture's capture time. Returns the frames and the last sequence number
/// used.
pub(super) fn encode_damage(
    stream: StreamId,
    mut seq: u64,
    captured_at: u64,
    target: &Framebuffer,
    damage: &[Rect],
) -> Result<(Vec<Vec<u8>>, u64), stream::StreamError> {
    let mut frames = Vec::new();
    let mut rects = Vec::new();
    let mut size = 0usize;
    let flush = |rects: &mut Vec<RectUpdate>, seq: &mut u64, frames: &mut Vec<Vec<u8>>| {
        if rects.is_empty() {
            return Ok(());
        }
        *seq += 1;
        let frame = StreamFrame::Pixels {
            stream,
            seq: *seq,
            captured_at,
            width: target.width(),
            height: target.height(),
            rects: std::mem::take(rects),
        };
        frames.push(stream::encode(&frame)?);
        Ok::<(), stream::StreamError>(())
    };
    for band in bands(damage) {
        let rgb = rgb_of(target, band);
        // Raw size is an upper bound on the compressed size: good enough to split on.
        if size + rgb.len() > MAX_FRAME_BYTES {
            flush(&mut rects, &mut seq, &mut frames)?;
            size = 0;
        }
        size += rgb.len();
        rects.push(RectUpdate { rect: band, rgb });
    }
    flush(&mut rects, &mut seq, &mut frames)?;
    Ok((frames, seq))
}

/// A frame in flight longer than this is taken as dropped and its area sent again: acks
/// travel best effort (a backed-up link may lose one), and one lost ack must not freeze the
/// picture.
pub(super) const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// The frames of one update, sent together and not yet known to be drawn.
struct InFlight {
    /// Sequence numbers of its first and last frame.
    first: u64,
    last: u64,
    /// The rectangles they carried, in the target's coordinates, and the target's size then.
    rects: Vec<Rect>,
    size: (u32, u32),
    /// When to stop waiting for the ack.
    deadline: Instant,
}

/// Encode `damage` of `target` and send it; the frames now in flight, or why not.
async fn send_damage(
    stream: StreamId,
    seq: &mut u64,
    captured_at: u64,
    target: &Framebuffer,
    damage: Vec<Rect>,
    frames: &mpsc::Sender<Vec<u8>>,
) -> Result<Option<InFlight>, Closed> {
    match encode_damage(stream, *seq, captured_at, target, &damage) {
        Ok((encoded, last)) => {
            if encoded.is_empty() {
                return Ok(None);
            }
            let first = *seq + 1;
            *seq = last;
            for frame in encoded {
                frames.send(frame).await.map_err(|_| Closed)?;
            }
            Ok(Some(InFlight {
                first,
                last,
                rects: damage,
                size: (target.width(), target.height()),
                deadline: Instant::now() + IN_FLIGHT_TIMEOUT,
            }))
        }
        Err(e) => {
            tracing::error!(stream, %e, "cannot encode a frame");
            Ok(None)
        }
    }
}

/// The link to the hub is gone.
struct Closed;

/// Scale `update` into `target` (made afresh at the size that fits `area` when it has
/// another); returns the target's rectangles that changed.
fn take_update(update: &Update, area: (u32, u32), target: &mut Option<Framebuffer>) -> Vec<Rect> {
    let (w, h) = fit(update.fb.width(), update.fb.height(), area.0, area.1);
    match target {
        Some(t) if !update.resized && (t.width(), t.height()) == (w, h) => {
            scale::scale_damaged(&update.fb, t, &update.damage)
        }
        _ => {
            let t = target.insert(Framebuffer::new(w, h));
            scale::scale_into(&update.fb, t);
            vec![t.bounds()]
        }
    }
}

/// Stream `screen` to one viewer until the viewer leaves or the screen ends. Returns why the
/// stream ended on this side (the screen stopped), for the viewer; `None` when the viewer
/// left or the link to the hub closed.
pub(super) async fn run(
    screen: Screen,
    stream: StreamId,
    (max_width, max_height): (u32, u32),
    mut commands: mpsc::UnboundedReceiver<PixelCommand>,
    frames: mpsc::Sender<Vec<u8>>,
) -> Option<String> {
    let mut viewer = screen.viewer();
    let mut area = (max_width, max_height);
    let mut target: Option<Framebuffer> = None;
    let mut seq = 0u64;
    let mut captured_at = 0u64;
    let mut in_flight: Option<InFlight> = None;
    loop {
        // A frame that did not arrive (the hub says so, or no ack came in time): its area is
        // sent again from the target, which holds the latest pixels of it.
        let mut resend = false;
        let deadline = in_flight.as_ref().map(|f| f.deadline);
        tokio::select! {
            command = commands.recv() => match command {
                None => return None,
                Some(PixelCommand::Ack(acked)) => {
                    if in_flight.as_ref().is_some_and(|f| acked >= f.last) {
                        in_flight = None;
                    }
                }
                Some(PixelCommand::Dropped(dropped)) => {
                    // A frame of an earlier batch: its area went again with a later one.
                    resend = in_flight.as_ref().is_some_and(|f| (f.first..=f.last).contains(&dropped));
                }
                Some(PixelCommand::Input(events)) => {
                    for event in events {
                        if let Err(e) = screen.input(event) {
                            tracing::warn!(stream, %e, "input not delivered");
                        }
                    }
                }
                Some(PixelCommand::Resize(w, h)) => {
                    area = (w, h);
                    // Drawn afresh at the new size with the next update.
                    target = None;
                }
            },
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                tracing::debug!(stream, "no ack in time: sending the frame's area again");
                resend = true;
            }
            update = viewer.next_update(), if in_flight.is_none() => {
                let update = match update {
                    Ok(u) => u,
                    Err(ScreenError::Ended(reason)) => {
                        tracing::info!(stream, reason, "the screen ended");
                        return Some(format!("the screen source stopped: {reason}"));
                    }
                    Err(e) => {
                        tracing::warn!(stream, %e, "screen update failed");
                        return Some(format!("the screen source failed: {e}"));
                    }
                };
                let damage = take_update(&update, area, &mut target);
                let Some(t) = target.as_ref() else { continue };
                captured_at = update.captured_at;
                match send_damage(stream, &mut seq, captured_at, t, damage, &frames).await {
                    Ok(sent) => in_flight = sent,
                    Err(Closed) => return None,
                }
            }
        }
        if resend && let Some(lost) = in_flight.take() {
            // After a resize the next update redraws everything anyway.
            if target
                .as_ref()
                .is_none_or(|t| (t.width(), t.height()) != lost.size)
            {
                continue;
            }
            // Whatever changed meanwhile goes with it, so the area has its newest pixels.
            let mut rects = lost.rects;
            if let Some(update) = viewer.try_update() {
                captured_at = update.captured_at;
                let changed = take_update(&update, area, &mut target);
                // A screen resized meanwhile: the new target is sent whole, and the lost
                // rectangles (of the old size) could lie outside it.
                if target
                    .as_ref()
                    .is_some_and(|t| (t.width(), t.height()) != lost.size)
                {
                    rects.clear();
                }
                rects.extend(changed);
            }
            let Some(t) = target.as_ref() else { continue };
            match send_damage(stream, &mut seq, captured_at, t, rects, &frames).await {
                Ok(sent) => in_flight = sent,
                Err(Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::screen::Publisher;
    use super::*;

    #[test]
    fn damage_is_encoded_in_bands_and_split_under_the_limit() {
        let mut fb = Framebuffer::new(1024, 1024);
        fb.fill(Rect::new(0, 0, 1024, 1024), [10, 20, 30, 255]);
        let (frames, last) =
            encode_damage(7, 0, 1_763_780_000_000_000, &fb, &[fb.bounds()]).expect("encode");
        // 1024 x 1024 x 3 bytes = 3 MiB raw: two frames of at most 2 MiB raw each.
        assert_eq!(frames.len(), 2);
        assert_eq!(last, 2);
        let mut covered = 0u64;
        for (i, f) in frames.iter().enumerate() {
            match stream::decode(f).expect("decode") {
                StreamFrame::Pixels {
                    stream: 7,
                    seq,
                    captured_at: 1_763_780_000_000_000,
                    width: 1024,
                    height: 1024,
                    rects,
                } => {
                    assert_eq!(seq, i as u64 + 1);
                    for r in rects {
                        assert!(r.rect.height <= BAND_ROWS);
                        assert_eq!(&r.rgb[..3], &[10, 20, 30]);
                        covered += u64::from(r.rect.width) * u64::from(r.rect.height);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(covered, 1024 * 1024, "every damaged pixel is sent once");
        assert!(
            encode_damage(7, 5, 1, &fb, &[])
                .expect("encode")
                .0
                .is_empty(),
            "no damage, no frame"
        );
    }

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

    /// A 64 x 48 screen the test draws on, streamed at its size to a viewer that acknowledges
    /// nothing by itself.
    fn streaming() -> Streaming {
        let (publisher, pictures) = Publisher::new(Framebuffer::new(64, 48));
        let (input, _) = mpsc::channel(1);
        let screen = Screen::assemble(pictures, input, publisher.ended(), None);
        let (commands, rx) = mpsc::unbounded_channel();
        let (frames_tx, frames) = mpsc::channel(16);
        let task = tokio::spawn(run(screen, 5, (64, 48), rx, frames_tx));
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
}
