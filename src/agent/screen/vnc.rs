//! The `vnc://HOST:PORT` source: an RFB 3.8 client to a VNC server, through the `vnc-rs` crate
//! (security None and VNC password; encodings ZRLE, Tight, CopyRect, Raw and DesktopSize;
//! 32-bit RGBA pixels).
//!
//! vnc-rs decodes rectangle by rectangle and does not mark the end of a server update, so
//! this source publishes whenever the decoder has nothing more ready (a whole update, or most
//! of one: the rest follows in the next publish, and damage stays exact either way). Update
//! requests are incremental, sent after each publish and at least every second, at most
//! [`MAX_REQUESTS_PER_SECOND`]: the server holds a request until something changes, so an idle
//! screen costs nothing.
//!
//! The server draws the pointer into its picture (the cursor pseudo-encoding is not asked
//! for), so viewers see it without drawing one themselves.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use vnc::{PixelFormat, VncConnector, VncEncoding, VncError, VncEvent, X11Event};

use super::{INPUT_QUEUE, PasswordSource, Publisher, Screen, ScreenError, VncTarget};
use crate::frame::{Framebuffer, Rect};
use crate::protocol::InputEvent;

/// Longest wait for the TCP connection, and separately for the RFB handshake and first picture.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUESTS_PER_SECOND: u64 = 60;
/// An update request is re-sent this often even when none seems due, in case one was lost.
const KEEPALIVE_REQUEST: Duration = Duration::from_secs(1);

pub(super) async fn start(target: &VncTarget) -> Result<Screen, ScreenError> {
    let addr = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let password = read_password(&target.password)?;
    let connect_error = |reason: String| ScreenError::VncConnect {
        addr: addr.clone(),
        reason,
    };
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| connect_error(format!("no answer in {} s", CONNECT_TIMEOUT.as_secs())))?
    .map_err(|e| connect_error(e.to_string()))?;
    // Input events are small and latency matters more than packing.
    let _ = tcp.set_nodelay(true);

    let had_password = password.is_some();
    let handshake = async move {
        VncConnector::new(tcp)
            .set_auth_method(async move { password.ok_or(VncError::NoPassword) })
            .add_encoding(VncEncoding::Zrle)
            .add_encoding(VncEncoding::Tight)
            .add_encoding(VncEncoding::CopyRect)
            .add_encoding(VncEncoding::Raw)
            .add_encoding(VncEncoding::DesktopSizePseudo)
            .allow_shared(true)
            .set_pixel_format(PixelFormat::rgba())
            .build()?
            .try_start()
            .await?
            .finish()
    };
    let client = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| connect_error("the RFB handshake did not finish".into()))?
        .map_err(|e| match e {
            VncError::NoPassword => ScreenError::VncPasswordNeeded { addr: addr.clone() },
            VncError::WrongPassword => ScreenError::VncAuth {
                addr: addr.clone(),
                reason: e.to_string(),
            },
            // RFB 3.8 servers give the reason for a failed authentication as text.
            VncError::General(reason) if had_password => ScreenError::VncAuth {
                addr: addr.clone(),
                reason,
            },
            e => ScreenError::Vnc {
                addr: addr.clone(),
                reason: e.to_string(),
            },
        })?;

    let vnc_error = |reason: String| ScreenError::Vnc {
        addr: addr.clone(),
        reason,
    };
    // The server announces its size first, then answers the initial full update request.
    let mut canvas = Canvas::default();
    let first = tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            let event = client
                .recv_event()
                .await
                .map_err(|e| vnc_error(e.to_string()))?;
            canvas.apply(event).map_err(vnc_error)?;
            if let Some(fb) = &canvas.fb
                && canvas.covered >= u64::from(fb.width()) * u64::from(fb.height())
            {
                return Ok::<_, ScreenError>(());
            }
        }
    })
    .await;
    match first {
        Ok(result) => result?,
        Err(_) => return Err(vnc_error("no picture within 10 s of connecting".into())),
    }
    let fb = canvas
        .fb
        .clone()
        .ok_or_else(|| vnc_error("the server sent no screen size".into()))?;
    canvas.damage.clear();

    let (mut publisher, frames) = Publisher::new(fb);
    let (input_tx, mut input_rx) = mpsc::channel::<InputEvent>(INPUT_QUEUE);
    let ended = publisher.ended();
    let task = tokio::spawn(async move {
        let min_gap = Duration::from_micros(1_000_000 / MAX_REQUESTS_PER_SECOND);
        let mut tick = tokio::time::interval(min_gap);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_request = Instant::now();
        let mut request_due = true;
        let reason = loop {
            tokio::select! {
                event = client.recv_event() => {
                    let event = match event {
                        Ok(event) => event,
                        Err(e) => break format!("the VNC connection ended: {e}"),
                    };
                    if let Err(e) = canvas.apply(event) {
                        break e;
                    }
                    // Take everything the decoder has ready, then publish once.
                    let mut failed = None;
                    while let Ok(Some(event)) = client.poll_event().await {
                        if let Err(e) = canvas.apply(event) {
                            failed = Some(e);
                            break;
                        }
                    }
                    if let Some(e) = failed {
                        break e;
                    }
                    if let Some(fb) = &canvas.fb {
                        publisher.publish(fb, &canvas.damage);
                    }
                    canvas.damage.clear();
                    if canvas.resized {
                        canvas.resized = false;
                        if client.input(X11Event::FullRefresh).await.is_err() {
                            break "the VNC connection ended".into();
                        }
                    }
                    request_due = true;
                }
                event = input_rx.recv() => {
                    let Some(event) = event else { break "the screen was closed".into() };
                    let (width, height) = publisher.size();
                    if let Err(e) = client.input(to_rfb(event, width, height)).await {
                        break format!("the VNC connection ended: {e}");
                    }
                    continue;
                }
                _ = tick.tick() => {}
            }
            if (request_due && last_request.elapsed() >= min_gap)
                || last_request.elapsed() >= KEEPALIVE_REQUEST
            {
                if let Err(e) = client.input(X11Event::Refresh).await {
                    break format!("the VNC connection ended: {e}");
                }
                last_request = Instant::now();
                request_due = false;
            }
        };
        tracing::info!(%reason, "VNC screen source stopped");
        let _ = client.close().await;
        publisher.finish(reason);
    });
    Ok(Screen::assemble(
        frames,
        input_tx,
        ended,
        Some(task.abort_handle()),
    ))
}

/// The client's copy of the remote framebuffer, and what changed in it since last published.
#[derive(Default)]
struct Canvas {
    fb: Option<Framebuffer>,
    damage: Vec<Rect>,
    /// Pixels received since the last resize (to know when the first full picture is in).
    covered: u64,
    /// The size changed: a full update must be asked for.
    resized: bool,
}

impl Canvas {
    fn apply(&mut self, event: VncEvent) -> Result<(), String> {
        match event {
            VncEvent::SetResolution(screen) => {
                self.resize(u32::from(screen.width), u32::from(screen.height));
            }
            VncEvent::DesktopUpdate(update) => {
                if let Some(layout) = update.layout {
                    self.resize(u32::from(layout.width), u32::from(layout.height));
                }
            }
            VncEvent::RawImage(rect, data) => {
                let rect = to_rect(rect);
                let fb = self
                    .fb
                    .as_mut()
                    .ok_or("picture data before the screen size")?;
                let expected = rect.width as usize * rect.height as usize * 4;
                if data.len() != expected || rect.intersect(&fb.bounds()) != rect {
                    return Err(format!("malformed rectangle {rect:?} from the server"));
                }
                let stride = fb.width() as usize * 4;
                let row_len = rect.width as usize * 4;
                let pixels = fb.as_rgba_mut();
                for (row, src) in data.chunks_exact(row_len).enumerate() {
                    let start = (rect.y as usize + row) * stride + rect.x as usize * 4;
                    let dst = &mut pixels[start..start + row_len];
                    dst.copy_from_slice(src);
                    // Depth 24: the fourth byte is padding, not alpha.
                    for px in dst.chunks_exact_mut(4) {
                        px[3] = 255;
                    }
                }
                self.covered += u64::from(rect.width) * u64::from(rect.height);
                self.damage.push(rect);
            }
            VncEvent::Copy(dst, src) => {
                let (dst, src) = (to_rect(dst), to_rect(src));
                let fb = self
                    .fb
                    .as_mut()
                    .ok_or("picture data before the screen size")?;
                let piece = fb.crop(src);
                fb.blit(dst.x, dst.y, &piece);
                self.damage.push(dst);
            }
            VncEvent::JpegImage(rect, _) => {
                // Only sent when a JPEG quality is asked for, which this client never does.
                tracing::warn!(?rect, "VNC server sent JPEG without being asked; ignored");
            }
            VncEvent::Error(e) => return Err(format!("VNC decoding failed: {e}")),
            VncEvent::SetPixelFormat(_)
            | VncEvent::SetCursor(..)
            | VncEvent::Bell
            | VncEvent::Text(_) => {}
            other => tracing::debug!(?other, "VNC event ignored"),
        }
        Ok(())
    }

    fn resize(&mut self, width: u32, height: u32) {
        if self
            .fb
            .as_ref()
            .is_some_and(|fb| (fb.width(), fb.height()) == (width, height))
        {
            return;
        }
        let first = self.fb.is_none();
        self.fb = Some(Framebuffer::new(width, height));
        self.damage = vec![Rect::new(0, 0, width, height)];
        self.covered = 0;
        // The server answers the first request with a full picture by itself.
        self.resized = !first;
    }
}

fn to_rect(r: vnc::Rect) -> Rect {
    Rect::new(
        u32::from(r.x),
        u32::from(r.y),
        u32::from(r.width),
        u32::from(r.height),
    )
}

/// A viewer's event as RFB wants it: coordinates clamped to the screen and to 16 bits.
fn to_rfb(event: InputEvent, width: u32, height: u32) -> X11Event {
    match event {
        InputEvent::Key { keysym, down } => X11Event::KeyEvent((keysym, down).into()),
        InputEvent::Pointer { x, y, buttons } => {
            let clamp =
                |v: u32, max: u32| v.min(max.saturating_sub(1)).min(u32::from(u16::MAX)) as u16;
            X11Event::PointerEvent((clamp(x, width), clamp(y, height), buttons).into())
        }
    }
}

/// The password from where the spec says; `None` when the named variable is unset.
fn read_password(source: &PasswordSource) -> Result<Option<String>, ScreenError> {
    match source {
        PasswordSource::Env(name) => match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => Err(ScreenError::VncPassword {
                from: format!("${name}"),
                reason: e.to_string(),
            }),
        },
        PasswordSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ScreenError::VncPassword {
                from: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvas_applies_pixels_and_copies_with_damage() {
        let mut canvas = Canvas::default();
        canvas
            .apply(VncEvent::SetResolution((8, 4).into()))
            .expect("size");
        let rect = vnc::Rect {
            x: 1,
            y: 1,
            width: 2,
            height: 1,
        };
        canvas
            .apply(VncEvent::RawImage(rect, vec![10, 20, 30, 0, 40, 50, 60, 0]))
            .expect("pixels");
        let fb = canvas.fb.as_ref().expect("fb");
        assert_eq!(fb.pixel(1, 1), [10, 20, 30, 255]);
        assert_eq!(fb.pixel(2, 1), [40, 50, 60, 255]);
        let dst = vnc::Rect {
            x: 5,
            y: 2,
            width: 2,
            height: 1,
        };
        canvas.apply(VncEvent::Copy(dst, rect)).expect("copy");
        let fb = canvas.fb.as_ref().expect("fb");
        assert_eq!(fb.pixel(6, 2), [40, 50, 60, 255]);
        assert_eq!(
            canvas.damage,
            vec![
                Rect::new(0, 0, 8, 4),
                Rect::new(1, 1, 2, 1),
                Rect::new(5, 2, 2, 1)
            ]
        );
        let bad = vnc::Rect {
            x: 7,
            y: 3,
            width: 2,
            height: 1,
        };
        assert!(canvas.apply(VncEvent::RawImage(bad, vec![0; 8])).is_err());
    }

    #[test]
    fn passwords_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").expect("write");
        assert_eq!(
            read_password(&PasswordSource::File(file)),
            Ok(Some("s3cret".into()))
        );
        assert!(read_password(&PasswordSource::File(dir.path().join("missing"))).is_err());
        assert_eq!(
            read_password(&PasswordSource::Env("TETHER_TEST_SURELY_UNSET_VAR".into())),
            Ok(None)
        );
    }

    #[test]
    fn pointer_coordinates_are_clamped_to_the_screen() {
        let X11Event::PointerEvent(m) = to_rfb(
            InputEvent::Pointer {
                x: 5000,
                y: 3,
                buttons: 4,
            },
            1024,
            768,
        ) else {
            panic!("a pointer event")
        };
        assert_eq!((m.position_x, m.position_y, m.bottons), (1023, 3, 4));
    }
}
