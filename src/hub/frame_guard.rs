//! Message limits enforced as bytes arrive, before a message is read in full.
//!
//! tungstenite checks its `max_message_size` only once a frame is read, and tokio-tungstenite
//! (0.30) cannot change the limit on a live stream. So this reader sits between TLS and the
//! WebSocket: it follows the HTTP upgrade request and then each frame header, and fails the
//! read (closing the connection) as soon as a header announces a message over the limit of its
//! phase: 4 KiB of any kind before authentication, [`MAX_CONTROL_MESSAGE`] of text after it.
//! Binary messages after authentication keep tungstenite's own limit (screen frames).
//! Hand-written because no crate offers a per-phase limit on a tungstenite stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::preauth::MAX_PREAUTH_MESSAGE;
use crate::protocol::MAX_CONTROL_MESSAGE;

/// Where the reader is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// In the HTTP upgrade request; how much of the closing `\r\n\r\n` has been seen.
    Http(usize),
    /// In a frame header: its bytes so far.
    Header { bytes: [u8; 14], have: usize },
    /// In a frame's payload: bytes left.
    Payload(u64),
}

/// Limits on a connection's incoming messages, by phase.
#[derive(Debug)]
pub struct FrameGuard<S> {
    inner: S,
    state: State,
    /// Set once the connection authenticated (shared with its [`PreauthSlot`]).
    ///
    /// [`PreauthSlot`]: super::preauth::PreauthSlot
    authenticated: Arc<AtomicBool>,
    /// Opcode (1 text, 2 binary) and length so far of the message being received.
    message: (u8, u64),
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, authenticated: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            state: State::Http(0),
            authenticated,
            message: (0, 0),
        }
    }

    /// Follow `bytes` through the stream; an error when a header announces too much.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Http(matched) => {
                    const END: &[u8] = b"\r\n\r\n";
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    *matched = match b {
                        _ if b == END[*matched] => *matched + 1,
                        b'\r' => 1,
                        _ => 0,
                    };
                    if *matched == END.len() {
                        self.state = State::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                State::Payload(left) => {
                    let take = bytes
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    bytes = &bytes[take..];
                    *left -= take as u64;
                    if *left == 0 {
                        self.state = State::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                State::Header {
                    bytes: header,
                    have,
                } => {
                    header[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    let header = *header;
                    let have = *have;
                    if let Some(len) = header_done(&header[..have]) {
                        self.check(header[0] & 0x0F, len)?;
                        self.state = match len {
                            0 => State::Header {
                                bytes: [0; 14],
                                have: 0,
                            },
                            n => State::Payload(n),
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// A frame of `opcode` announcing `len` bytes: within its phase's limit?
    fn check(&mut self, opcode: u8, len: u64) -> io::Result<()> {
        match opcode {
            // Text or binary starts a message; a continuation adds to it; control frames
            // (at most 125 bytes) leave it alone.
            1 | 2 => self.message = (opcode, len),
            0 => self.message.1 = self.message.1.saturating_add(len),
            _ => return Ok(()),
        }
        let (kind, total) = self.message;
        let limit = if !self.authenticated.load(Ordering::Relaxed) {
            MAX_PREAUTH_MESSAGE
        } else if kind == 1 {
            MAX_CONTROL_MESSAGE
        } else {
            return Ok(());
        };
        if total > limit as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message of at least {total} bytes, over the limit of {limit}"),
            ));
        }
        Ok(())
    }
}

/// The payload length once `header` holds the whole frame header, else `None`.
fn header_done(header: &[u8]) -> Option<u64> {
    if header.len() < 2 {
        return None;
    }
    let masked = header[1] & 0x80 != 0;
    let (extra, len) = match header[1] & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let needed = 2 + extra + if masked { 4 } else { 0 };
    if header.len() < needed {
        return None;
    }
    Some(len.unwrap_or_else(|| {
        header[2..2 + extra]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }))
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(this.follow(&buf.filled()[before..])),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame header (masked) announcing `len` bytes of `opcode`.
    fn header(opcode: u8, len: u64, fin: bool) -> Vec<u8> {
        let mut h = vec![opcode | if fin { 0x80 } else { 0 }];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xFFFF => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn guard(authenticated: bool) -> FrameGuard<()> {
        let mut g = FrameGuard::new((), Arc::new(AtomicBool::new(authenticated)));
        g.follow(b"GET /v1/console HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        g
    }

    #[test]
    fn before_authentication_more_than_4_kib_fails_at_the_header() {
        let mut g = guard(false);
        let mut ok = header(1, 4096, true);
        ok.extend(vec![b'x'; 4096]);
        g.follow(&ok).expect("4 KiB is allowed");
        // Fed a byte at a time: refused as soon as the header is complete.
        let big = header(1, 4097, true);
        let mut failed = false;
        for b in &big {
            if g.follow(std::slice::from_ref(b)).is_err() {
                failed = true;
            }
        }
        assert!(failed, "a 4097-byte message is refused before its payload");
    }

    #[test]
    fn fragments_count_toward_their_message_and_control_frames_do_not() {
        let mut g = guard(false);
        let mut first = header(2, 3000, false);
        first.extend(vec![0; 3000]);
        g.follow(&first).expect("first fragment");
        let mut ping = header(9, 100, true);
        ping.extend(vec![0; 100]);
        g.follow(&ping).expect("a ping in between");
        assert!(g.follow(&header(0, 2000, true)).is_err(), "5000 in all");
    }

    #[test]
    fn after_authentication_text_is_held_to_the_control_limit_and_binary_is_not() {
        let mut g = guard(true);
        let mut text = header(1, MAX_CONTROL_MESSAGE as u64, true);
        text.extend(vec![b'x'; MAX_CONTROL_MESSAGE]);
        g.follow(&text).expect("at the limit");
        let mut binary = header(2, 1 << 20, true);
        binary.extend(vec![0; 1 << 20]);
        g.follow(&binary).expect("a large screen frame");
        assert!(
            g.follow(&header(1, MAX_CONTROL_MESSAGE as u64 + 1, true))
                .is_err()
        );
    }
}
