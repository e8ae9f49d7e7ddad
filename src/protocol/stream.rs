//! Binary frames of a live session: the remote screen's changed rectangles (already scaled by
//! the agent to the size the viewer draws at) and terminal bytes.
//!
//! Layout, all integers big-endian:
//! ```text
//! version u8 | kind u8 | stream u64 | seq u64 | payload
//! pixels:   captured_at u64 | width u32 | height u32 | count u16
//!           | count x (x u32 | y u32 | w u32 | h u32 | len u32 | zlib(RGB bytes))
//! terminal: the bytes as they are
//! ```
//! `captured_at` is when the agent took the picture: its wall clock, microseconds since the Unix
//! epoch (0: not known). A viewer whose clock agrees with the agent's (the same machine, or
//! both on NTP) subtracts it from its own clock to show latency ([`StreamFrame::captured_at`]).
//!
//! Decoding checks every length against the frame and against [`MAX_FRAME_PIXELS`], so a
//! malformed or hostile frame is an error, never a panic or a huge allocation.

use std::io::{Read, Write};

use crate::frame::Rect;

/// Bumped on any incompatible change of the layout.
pub const STREAM_VERSION: u8 = 2;
/// Largest picture a frame may describe (8K by 8K would be silly; this is 4096 x 4096).
pub const MAX_FRAME_PIXELS: u64 = 4096 * 4096;
/// Most rectangles in one frame.
pub const MAX_RECTS: usize = 4096;

const HEADER: usize = 1 + 1 + 8 + 8;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Changed rectangles of the screen, RGB.
    Pixels = 1,
    /// Output of a terminal session.
    TerminalOutput = 2,
    /// Keystrokes for a terminal session (viewer to agent).
    TerminalInput = 3,
}

/// One changed rectangle and its RGB pixels (3 bytes a pixel, row by row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RectUpdate {
    pub rect: Rect,
    pub rgb: Vec<u8>,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    Pixels {
        stream: u64,
        seq: u64,
        /// When the agent captured the picture: microseconds since the Unix epoch on its
        /// wall clock, 0 when not known.
        captured_at: u64,
        width: u32,
        height: u32,
        rects: Vec<RectUpdate>,
    },
    TerminalOutput {
        stream: u64,
        seq: u64,
        bytes: Vec<u8>,
    },
    TerminalInput {
        stream: u64,
        seq: u64,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("frame too short")]
    Truncated,
    #[error("frame version {0} is not understood (this build speaks {STREAM_VERSION})")]
    Version(u8),
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("frame describes {0} pixels, over the limit")]
    TooLarge(u64),
    #[error("rectangle {0:?} lies outside the {1}x{2} picture")]
    OutOfBounds(Rect, u32, u32),
    #[error("rectangle pixels do not match its size")]
    BadPixels,
    #[error("too many rectangles ({0})")]
    TooManyRects(usize),
    #[error("compression failed: {0}")]
    Compression(String),
}

impl StreamFrame {
    pub fn stream(&self) -> u64 {
        match self {
            StreamFrame::Pixels { stream, .. }
            | StreamFrame::TerminalOutput { stream, .. }
            | StreamFrame::TerminalInput { stream, .. } => *stream,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            StreamFrame::Pixels { seq, .. }
            | StreamFrame::TerminalOutput { seq, .. }
            | StreamFrame::TerminalInput { seq, .. } => *seq,
        }
    }

    /// When the agent captured a picture (microseconds since the Unix epoch, its wall clock);
    /// `None` for terminal frames and pictures of unknown age.
    pub fn captured_at(&self) -> Option<u64> {
        match self {
            StreamFrame::Pixels { captured_at, .. } if *captured_at > 0 => Some(*captured_at),
            _ => None,
        }
    }

    /// How long ago the agent captured this picture, by `now_micros` (this machine's wall
    /// clock, as [`now_micros`] gives it). `None` without a capture time, or when the agent's
    /// clock is ahead of ours (clocks that disagree give no latency rather than a wrong one).
    pub fn capture_age(&self, now_micros: u64) -> Option<std::time::Duration> {
        let at = self.captured_at()?;
        now_micros
            .checked_sub(at)
            .map(std::time::Duration::from_micros)
    }
}

/// This machine's wall clock in microseconds since the Unix epoch (0 if it is set before 1970):
/// what an agent stamps pictures with and a viewer compares [`StreamFrame::captured_at`] to.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Read just the header: kind, stream and sequence (the hub routes by these without decoding).
pub fn peek_header(bytes: &[u8]) -> Result<(FrameKind, u64, u64), StreamError> {
    if bytes.len() < HEADER {
        return Err(StreamError::Truncated);
    }
    if bytes[0] != STREAM_VERSION {
        return Err(StreamError::Version(bytes[0]));
    }
    let kind = match bytes[1] {
        1 => FrameKind::Pixels,
        2 => FrameKind::TerminalOutput,
        3 => FrameKind::TerminalInput,
        other => return Err(StreamError::Kind(other)),
    };
    let stream = u64::from_be_bytes(
        bytes[2..10]
            .try_into()
            .map_err(|_| StreamError::Truncated)?,
    );
    let seq = u64::from_be_bytes(
        bytes[10..18]
            .try_into()
            .map_err(|_| StreamError::Truncated)?,
    );
    Ok((kind, stream, seq))
}

fn header(out: &mut Vec<u8>, kind: FrameKind, stream: u64, seq: u64) {
    out.push(STREAM_VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
}

/// Encode a frame. Pixel rectangles are zlib-compressed (fast level: screens compress well and
/// latency matters more than the last percent).
pub fn encode(frame: &StreamFrame) -> Result<Vec<u8>, StreamError> {
    let mut out = Vec::new();
    match frame {
        StreamFrame::Pixels {
            stream,
            seq,
            captured_at,
            width,
            height,
            rects,
        } => {
            if rects.len() > MAX_RECTS {
                return Err(StreamError::TooManyRects(rects.len()));
            }
            header(&mut out, FrameKind::Pixels, *stream, *seq);
            out.extend_from_slice(&captured_at.to_be_bytes());
            out.extend_from_slice(&width.to_be_bytes());
            out.extend_from_slice(&height.to_be_bytes());
            out.extend_from_slice(
                &u16::try_from(rects.len())
                    .map_err(|_| StreamError::TooManyRects(rects.len()))?
                    .to_be_bytes(),
            );
            for r in rects {
                check_rect(r.rect, *width, *height)?;
                if r.rgb.len() as u64 != u64::from(r.rect.width) * u64::from(r.rect.height) * 3 {
                    return Err(StreamError::BadPixels);
                }
                put_packed_rect(&mut out, r.rect, &pack_rgb(&r.rgb)?, *width, *height)?;
            }
        }
        StreamFrame::TerminalOutput { stream, seq, bytes } => {
            header(&mut out, FrameKind::TerminalOutput, *stream, *seq);
            out.extend_from_slice(bytes);
        }
        StreamFrame::TerminalInput { stream, seq, bytes } => {
            header(&mut out, FrameKind::TerminalInput, *stream, *seq);
            out.extend_from_slice(bytes);
        }
    }
    Ok(out)
}

/// A rectangle's RGB bytes compressed as a pixels frame carries them (zlib, fast level).
/// Agents compress a rectangle once and put the bytes in the frames of every viewer that needs
/// it ([`encode_packed_pixels`]).
pub fn pack_rgb(rgb: &[u8]) -> Result<Vec<u8>, StreamError> {
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(rgb.len() / 4),
        flate2::Compression::fast(),
    );
    z.write_all(rgb)
        .map_err(|e| StreamError::Compression(e.to_string()))?;
    z.finish()
        .map_err(|e| StreamError::Compression(e.to_string()))
}

/// A pixels frame from rectangles already compressed by [`pack_rgb`]: the same bytes
/// [`encode`] makes from their RGB.
pub fn encode_packed_pixels(
    stream: u64,
    seq: u64,
    captured_at: u64,
    (width, height): (u32, u32),
    rects: &[(Rect, &[u8])],
) -> Result<Vec<u8>, StreamError> {
    if rects.len() > MAX_RECTS {
        return Err(StreamError::TooManyRects(rects.len()));
    }
    let packed: usize = rects.iter().map(|(_, z)| z.len() + 20).sum();
    let mut out = Vec::with_capacity(HEADER + 18 + packed);
    header(&mut out, FrameKind::Pixels, stream, seq);
    out.extend_from_slice(&captured_at.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(
        &u16::try_from(rects.len())
            .map_err(|_| StreamError::TooManyRects(rects.len()))?
            .to_be_bytes(),
    );
    for (rect, packed) in rects {
        put_packed_rect(&mut out, *rect, packed, width, height)?;
    }
    Ok(out)
}

/// One rectangle of a pixels frame: where, then its compressed pixels with their length.
fn put_packed_rect(
    out: &mut Vec<u8>,
    rect: Rect,
    packed: &[u8],
    width: u32,
    height: u32,
) -> Result<(), StreamError> {
    check_rect(rect, width, height)?;
    for v in [rect.x, rect.y, rect.width, rect.height] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let len = u32::try_from(packed.len()).map_err(|_| StreamError::BadPixels)?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packed);
    Ok(())
}

fn check_rect(rect: Rect, width: u32, height: u32) -> Result<(), StreamError> {
    if rect.is_empty()
        || rect.right() > width
        || rect.bottom() > height
        || rect.right() < rect.x
        || rect.bottom() < rect.y
    {
        return Err(StreamError::OutOfBounds(rect, width, height));
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StreamError> {
        let end = self.at.checked_add(n).ok_or(StreamError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(StreamError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, StreamError> {
        Ok(u32::from_be_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| StreamError::Truncated)?,
        ))
    }

    fn u64(&mut self) -> Result<u64, StreamError> {
        Ok(u64::from_be_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| StreamError::Truncated)?,
        ))
    }

    fn u16(&mut self) -> Result<u16, StreamError> {
        Ok(u16::from_be_bytes(
            self.take(2)?
                .try_into()
                .map_err(|_| StreamError::Truncated)?,
        ))
    }
}

/// Decode a frame, checking every size.
pub fn decode(bytes: &[u8]) -> Result<StreamFrame, StreamError> {
    let (kind, stream, seq) = peek_header(bytes)?;
    let body = &bytes[HEADER..];
    match kind {
        FrameKind::TerminalOutput => Ok(StreamFrame::TerminalOutput {
            stream,
            seq,
            bytes: body.to_vec(),
        }),
        FrameKind::TerminalInput => Ok(StreamFrame::TerminalInput {
            stream,
            seq,
            bytes: body.to_vec(),
        }),
        FrameKind::Pixels => {
            let mut c = Cursor { bytes: body, at: 0 };
            let captured_at = c.u64()?;
            let width = c.u32()?;
            let height = c.u32()?;
            let pixels = u64::from(width) * u64::from(height);
            if pixels > MAX_FRAME_PIXELS {
                return Err(StreamError::TooLarge(pixels));
            }
            let count = usize::from(c.u16()?);
            if count > MAX_RECTS {
                return Err(StreamError::TooManyRects(count));
            }
            let mut rects = Vec::with_capacity(count);
            for _ in 0..count {
                let rect = Rect::new(c.u32()?, c.u32()?, c.u32()?, c.u32()?);
                check_rect(rect, width, height)?;
                let len = c.u32()? as usize;
                let packed = c.take(len)?;
                let expected = rect.width as usize * rect.height as usize * 3;
                let mut rgb = Vec::with_capacity(expected);
                // Read one byte past the expected size: more means a lying frame.
                flate2::read::ZlibDecoder::new(packed)
                    .take(expected as u64 + 1)
                    .read_to_end(&mut rgb)
                    .map_err(|e| StreamError::Compression(e.to_string()))?;
                if rgb.len() != expected {
                    return Err(StreamError::BadPixels);
                }
                rects.push(RectUpdate { rect, rgb });
            }
            Ok(StreamFrame::Pixels {
                stream,
                seq,
                captured_at,
                width,
                height,
                rects,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StreamFrame {
        let rgb: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7) as u8).collect();
        StreamFrame::Pixels {
            stream: 9,
            seq: 42,
            captured_at: 1_763_780_000_123_456,
            width: 100,
            height: 50,
            rects: vec![
                RectUpdate {
                    rect: Rect::new(96, 47, 4, 3),
                    rgb,
                },
                RectUpdate {
                    rect: Rect::new(0, 0, 1, 1),
                    rgb: vec![1, 2, 3],
                },
            ],
        }
    }

    #[test]
    fn frames_round_trip() {
        for frame in [
            sample(),
            StreamFrame::TerminalOutput {
                stream: 1,
                seq: 2,
                bytes: b"\x1b[31mhi\r\n".to_vec(),
            },
            StreamFrame::TerminalInput {
                stream: 3,
                seq: 4,
                bytes: b"ls\r".to_vec(),
            },
        ] {
            let bytes = encode(&frame).expect("encode");
            assert_eq!(peek_header(&bytes).expect("header").1, frame.stream());
            assert_eq!(decode(&bytes).expect("decode"), frame);
        }
    }

    #[test]
    fn capture_time_round_trips_and_gives_the_age() {
        let frame = decode(&encode(&sample()).expect("encode")).expect("decode");
        assert_eq!(frame.captured_at(), Some(1_763_780_000_123_456));
        assert_eq!(
            frame.capture_age(1_763_780_000_135_456),
            Some(std::time::Duration::from_millis(12))
        );
        // An agent clock ahead of ours gives no age rather than a wrong one.
        assert_eq!(frame.capture_age(1_763_780_000_000_000), None);
        let unknown = StreamFrame::Pixels {
            stream: 1,
            seq: 1,
            captured_at: 0,
            width: 1,
            height: 1,
            rects: Vec::new(),
        };
        assert_eq!(unknown.captured_at(), None);
        let text = StreamFrame::TerminalOutput {
            stream: 1,
            seq: 1,
            bytes: Vec::new(),
        };
        assert_eq!(text.captured_at(), None);
        let now = now_micros();
        assert!(now > 1_700_000_000_000_000, "the clock reads {now}");
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let good = encode(&sample()).expect("encode");
        // Every truncation is refused.
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "truncated at {n}");
        }
        // Flipping bytes never panics (and sizes stay checked).
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = decode(&bad);
        }
        let out_of_bounds = StreamFrame::Pixels {
            stream: 0,
            seq: 0,
            captured_at: 0,
            width: 10,
            height: 10,
            rects: vec![RectUpdate {
                rect: Rect::new(8, 8, 4, 4),
                rgb: vec![0; 48],
            }],
        };
        assert!(matches!(
            encode(&out_of_bounds),
            Err(StreamError::OutOfBounds(..))
        ));
        let mut huge = good.clone();
        // Width and height follow the capture time.
        huge[HEADER + 8..HEADER + 16].copy_from_slice(&[0xff; 8]);
        assert!(matches!(decode(&huge), Err(StreamError::TooLarge(_))));
        assert_eq!(decode(&[9; 30]), Err(StreamError::Version(9)));
    }

    #[test]
    fn a_zip_bomb_is_refused() {
        // A rectangle that claims 2x2 pixels but inflates to a megabyte.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 1 << 20]).expect("zip");
        let packed = z.finish().expect("zip");
        let mut bytes = Vec::new();
        header(&mut bytes, FrameKind::Pixels, 1, 1);
        bytes.extend_from_slice(&0u64.to_be_bytes());
        for v in [2u32, 2] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(&1u16.to_be_bytes());
        for v in [0u32, 0, 2, 2, packed.len() as u32] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(&packed);
        assert_eq!(decode(&bytes), Err(StreamError::BadPixels));
    }
}
