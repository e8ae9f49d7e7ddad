//! Desktop streams: the screen, scaled to the size each viewer draws at, sent as changed
//! rectangles. One frame in flight per viewer, latest wins: the next frame is taken from the
//! screen only when the viewer acknowledged the last, and the screen's viewer hands over all
//! damage since then in one update, so a slow link skips frames instead of queueing them.

use tokio::sync::mpsc;

use super::screen::{Screen, ScreenError};
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

/// Stream `screen` to one viewer until the viewer leaves or the screen ends.
pub(super) async fn run(
    screen: Screen,
    stream: StreamId,
    (max_width, max_height): (u32, u32),
    mut commands: mpsc::UnboundedReceiver<PixelCommand>,
    frames: mpsc::Sender<Vec<u8>>,
) {
    let mut viewer = screen.viewer();
    let mut area = (max_width, max_height);
    let mut target: Option<Framebuffer> = None;
    let mut seq = 0u64;
    let mut in_flight: Option<u64> = None;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(PixelCommand::Ack(acked)) => {
                    if in_flight.is_some_and(|s| acked >= s) {
                        in_flight = None;
                    }
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
            update = viewer.next_update(), if in_flight.is_none() => {
                let update = match update {
                    Ok(u) => u,
                    Err(ScreenError::Ended(reason)) => {
                        tracing::info!(stream, reason, "the screen ended");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(stream, %e, "screen update failed");
                        return;
                    }
                };
                let (w, h) = fit(update.fb.width(), update.fb.height(), area.0, area.1);
                let fresh = update.resized || target.as_ref().is_none_or(|t| (t.width(), t.height()) != (w, h));
                let damage = if fresh {
                    let t = target.insert(Framebuffer::new(w, h));
                    scale::scale_into(&update.fb, t);
                    vec![t.bounds()]
                } else if let Some(t) = target.as_mut() {
                    scale::scale_damaged(&update.fb, t, &update.damage)
                } else {
                    continue;
                };
                let Some(t) = target.as_ref() else { continue };
                match encode_damage(stream, seq, update.captured_at, t, &damage) {
                    Ok((encoded, last)) => {
                        if encoded.is_empty() {
                            continue;
                        }
                        seq = last;
                        for frame in encoded {
                            if frames.send(frame).await.is_err() {
                                return;
                            }
                        }
                        in_flight = Some(seq);
                    }
                    Err(e) => tracing::error!(stream, %e, "cannot encode a frame"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
