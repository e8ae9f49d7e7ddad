//! The live-session benches' rig: a hub on loopback TLS, an agent with a synthetic desktop and a
//! technician watching it as the console does, all in this process; optionally through a
//! throttling TCP proxy (a token bucket each way) between the technician and the hub.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;
use tether::agent::consent::{Consent, ConsentPolicy};
use tether::agent::policy::Policy;
use tether::agent::{AgentOptions, AgentShared, AgentStatus, ScreenSource};
use tether::client::HubClient;
use tether::console::desktop::DesktopView;
use tether::frame::{Framebuffer, Rect};
use tether::hub::store::{NewUser, SqliteStore};
use tether::hub::{Hub, HubConfig, Limits};
use tether::protocol::stream::{self, RectUpdate, StreamFrame};
use tether::protocol::{
    ConsoleReply, ConsoleRequest, EnrolmentLink, InputEvent, Role, StreamId, ViewSpec,
};
use tether::render::{CellSize, ColorDepth, Glyphs, SixelView};
use tether::tls::{Pin, parse_fingerprint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const PASSWORD: &str = "plum tractor violet 7";
const WAIT: Duration = Duration::from_secs(30);

/// Hub and agent, running until dropped.
pub struct Rig {
    pub url: String,
    pub pin: Pin,
    pub workstation: String,
    _stops: Vec<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// A hub, one technician ("ann"), and an agent showing `screen` whose end user accepts.
    pub async fn start(screen: &str) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = HubConfig {
            data_dir: dir.path().join("hub"),
            public_addr: None,
            limits: Limits::default(),
            smtp: None,
        };
        let store = SqliteStore::open_dir(&config.data_dir).expect("store");
        let hub = Hub::with_store(config, Arc::new(store), Arc::new(tether::hub::SystemClock))
            .expect("hub");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("wss://{}", listener.local_addr().expect("addr"));
        let pin = Pin::Fingerprint(parse_fingerprint(hub.fingerprint()).expect("fingerprint"));
        let store = hub.store().clone();
        tokio::task::spawn_blocking(move || {
            store
                .create_user(NewUser {
                    email: "ann@example.com".into(),
                    name: "ann".into(),
                    role: Role::Admin,
                    team: "Desk".into(),
                    password_hash: tether::secrets::hash_password(PASSWORD).expect("hash"),
                })
                .expect("user");
        })
        .await
        .expect("join");
        let (hub_stop, hub_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tether::hub::run(hub, listener, async {
                let _ = hub_stopped.await;
            })
            .await;
        });

        let tech = login(&url, pin.clone()).await;
        let link = enrolment_link(&tech).await;
        let agent_dir = dir.path().join("agent");
        std::fs::create_dir_all(&agent_dir).expect("agent dir");
        let opts = AgentOptions {
            data_dir: agent_dir.clone(),
            link: Some(link),
            screen: screen.parse::<ScreenSource>().expect("screen"),
            shell: true,
            report: None,
        };
        let policy = Policy::load(&agent_dir, chrono::Utc::now()).expect("policy");
        let shared = Arc::new(AgentShared::new(
            agent_dir,
            policy,
            Consent::new(ConsentPolicy::Accept),
        ));
        let mut status = shared.status.subscribe();
        let (agent_stop, agent_stopped) = oneshot::channel::<()>();
        tokio::spawn(tether::agent::run(opts, shared, async {
            let _ = agent_stopped.await;
        }));
        let online = tokio::time::timeout(
            WAIT,
            status.wait_for(|s| matches!(s, AgentStatus::Online { .. })),
        )
        .await
        .expect("agent online in time")
        .expect("status")
        .clone();
        let AgentStatus::Online { workstation_id, .. } = online else {
            unreachable!()
        };
        Rig {
            url,
            pin,
            workstation: workstation_id,
            _stops: vec![hub_stop, agent_stop],
            _dir: dir,
        }
    }
}

/// A logged-in technician at `url` (the hub, or a proxy in front of it).
pub async fn login(url: &str, pin: Pin) -> HubClient {
    let (client, _events) = HubClient::connect(url, pin).await.expect("connect");
    client.login("ann", PASSWORD).await.expect("login");
    client
}

async fn enrolment_link(tech: &HubClient) -> EnrolmentLink {
    let ConsoleReply::Client { client } = tech
        .request(ConsoleRequest::AddClient {
            name: "Bench".into(),
        })
        .await
        .expect("add client")
    else {
        panic!("no client")
    };
    let ConsoleReply::Link { url, .. } = tech
        .request(ConsoleRequest::CreateLink {
            client: client.id,
            valid_days: None,
        })
        .await
        .expect("link")
    else {
        panic!("no link")
    };
    url.parse().expect("link")
}

/// A technician watching the workstation's screen at `width` x `height` pixels.
pub struct Watcher {
    pub tech: HubClient,
    pub frames: mpsc::UnboundedReceiver<Vec<u8>>,
    pub stream: StreamId,
}

impl Watcher {
    pub async fn open(tech: HubClient, workstation: &str, width: u32, height: u32) -> Watcher {
        let ConsoleReply::Session { session } = tech
            .request(ConsoleRequest::Connect {
                workstation: workstation.into(),
                secret: None,
                view_only: false,
                otp: None,
            })
            .await
            .expect("connect")
        else {
            panic!("no session")
        };
        let frames = tech.take_frames().expect("frames");
        let ConsoleReply::Watching { stream } = tech
            .request(ConsoleRequest::Watch {
                session: session.id,
                view: ViewSpec::Pixels { width, height },
            })
            .await
            .expect("watch")
        else {
            panic!("not watching")
        };
        Watcher {
            tech,
            frames,
            stream,
        }
    }

    /// The next pixels frame of this stream, or `None` when `deadline` passes first.
    pub async fn next(&mut self, deadline: Instant) -> Option<StreamFrame> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let bytes = tokio::time::timeout(left, self.frames.recv())
                .await
                .ok()?
                .expect("hub link open");
            let frame = stream::decode(&bytes).expect("valid frame");
            if matches!(frame, StreamFrame::Pixels { stream, .. } if stream == self.stream) {
                return Some(frame);
            }
        }
    }

    /// Tell the agent the frame is drawn (it sends the next only then).
    pub fn ack(&self, seq: u64) {
        self.tech
            .send_nowait(ConsoleRequest::Ack {
                stream: self.stream,
                seq,
            })
            .expect("ack");
    }

    pub fn input(&self, events: Vec<InputEvent>) {
        self.tech
            .send_nowait(ConsoleRequest::Input {
                stream: self.stream,
                events,
            })
            .expect("input");
    }
}

/// How a console draws: half blocks into a `cols` x `rows` terminal, or sixel.
pub enum Drawing {
    Text {
        desktop: DesktopView,
        area: CellRect,
        shown: Buffer,
    },
    Sixel {
        framebuffer: Framebuffer,
        view: SixelView,
        drawn: bool,
    },
}

impl Drawing {
    /// Half blocks, 24-bit colour, on a `cols` x `rows` terminal.
    pub fn text(cols: u16, rows: u16) -> Drawing {
        let screen = tether::protocol::ScreenSize {
            width: 1920,
            height: 1080,
        };
        let area = CellRect::new(0, 0, cols, rows);
        Drawing::Text {
            desktop: DesktopView::new(screen, Glyphs::HalfBlock, ColorDepth::TrueColor),
            area,
            shown: Buffer::empty(area),
        }
    }

    /// Sixel on `cols` x `rows` cells of `cell` pixels (256 colour registers).
    pub fn sixel(cols: u16, rows: u16, cell: CellSize) -> Drawing {
        Drawing::Sixel {
            framebuffer: Framebuffer::new(0, 0),
            view: SixelView::new(CellRect::new(0, 0, cols, rows), rows + 1, cell, 256),
            drawn: false,
        }
    }

    /// The pixel size the viewer asks the agent for.
    pub fn pixels(&self) -> (u32, u32) {
        match self {
            Drawing::Text { desktop, area, .. } => desktop.pixels_for(area.width, area.height),
            Drawing::Sixel { view, .. } => (view.scaled().width(), view.scaled().height()),
        }
    }

    /// Apply a frame to the console's framebuffer and draw it: the bytes for the terminal are
    /// appended to `out`.
    pub fn draw(&mut self, frame: &StreamFrame, out: &mut Vec<u8>) {
        let StreamFrame::Pixels {
            width,
            height,
            rects,
            ..
        } = frame
        else {
            return;
        };
        match self {
            Drawing::Text {
                desktop,
                area,
                shown,
            } => {
                // The console's own code: pixels into its framebuffer and cells, then its
                // draw into a ratatui buffer, whose diff goes out through crossterm.
                desktop.apply(*width, *height, rects);
                let mut next = Buffer::empty(*area);
                desktop.render(*area, &mut next);
                let mut backend = CrosstermBackend::new(&mut *out);
                backend
                    .draw(shown.diff(&next).into_iter())
                    .expect("writing to a Vec");
                Backend::flush(&mut backend).expect("flushing a Vec");
                *shown = next;
            }
            Drawing::Sixel {
                framebuffer,
                view,
                drawn,
            } => {
                let damage = apply_rects(framebuffer, *width, *height, rects);
                if *drawn && !damage.is_empty() {
                    view.render_damage(framebuffer, &damage, out);
                } else {
                    view.render(framebuffer, out);
                    *drawn = true;
                }
            }
        }
    }
}

/// Rectangles into a framebuffer (as `DesktopView::apply` does, without its text cells);
/// returns the damage, or nothing when the picture was resized (then draw it whole).
fn apply_rects(fb: &mut Framebuffer, width: u32, height: u32, rects: &[RectUpdate]) -> Vec<Rect> {
    let resized = (fb.width(), fb.height()) != (width, height);
    if resized {
        *fb = Framebuffer::new(width, height);
    }
    for r in rects {
        let w = r.rect.width as usize * 4;
        for (row, rgb) in r.rgb.chunks_exact(r.rect.width as usize * 3).enumerate() {
            let y = r.rect.y as usize + row;
            let start = (y * width as usize + r.rect.x as usize) * 4;
            let dst = &mut fb.as_rgba_mut()[start..start + w];
            for (d, s) in dst.chunks_exact_mut(4).zip(rgb.chunks_exact(3)) {
                d.copy_from_slice(&[s[0], s[1], s[2], 255]);
            }
        }
    }
    if resized {
        Vec::new()
    } else {
        rects.iter().map(|r| r.rect).collect()
    }
}

/// p-th percentile (0-100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A TCP proxy on loopback to `target`, passing at most `bytes_per_second` each way (a token
/// bucket holding [`BURST`] bytes). Counts the bytes sent towards the client.
pub struct Throttle {
    pub addr: std::net::SocketAddr,
    pub to_client: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// What the bucket holds: about 13 ms at 10 Mbit/s, a few packets' burst.
pub const BURST: f64 = 16.0 * 1024.0;

impl Drop for Throttle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Throttle {
    pub async fn start(target: std::net::SocketAddr, bytes_per_second: f64) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let to_client = Arc::new(AtomicU64::new(0));
        let counter = to_client.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = Arc::new(AtomicU64::new(0));
                tokio::spawn(pipe(cr, sw, bytes_per_second, up));
                tokio::spawn(pipe(sr, cw, bytes_per_second, counter.clone()));
            }
        });
        Throttle {
            addr,
            to_client,
            task,
        }
    }

    pub fn sent_to_client(&self) -> u64 {
        self.to_client.load(Ordering::Relaxed)
    }
}

/// Copy `from` to `to` at most `rate` bytes a second, in packets of at most 1460 bytes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    rate: f64,
    counter: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut tokens = BURST;
    let mut last = Instant::now();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut sent = 0;
        while sent < n {
            let chunk = (n - sent).min(1460);
            let now = Instant::now();
            tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(BURST);
            last = now;
            if tokens < chunk as f64 {
                let wait = (chunk as f64 - tokens) / rate;
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                continue;
            }
            if to.write_all(&buf[sent..sent + chunk]).await.is_err() {
                return;
            }
            tokens -= chunk as f64;
            sent += chunk;
            counter.fetch_add(chunk as u64, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown().await;
}
