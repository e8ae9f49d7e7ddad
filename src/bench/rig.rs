//! The live-session benches' rig: a hub on loopback TLS, one technician, an agent with a given
//! screen source (`synthetic...`, `terminal`) whose end user accepts, and a technician watching
//! as the console does, all in this process; plus [`Throttle`], a TCP proxy that behaves like a
//! slow link (a token bucket for the rate, then a delay line for the round trip) to put between
//! a technician and the hub.
//!
//! A real `tether console` process can use the rig too: [`Rig::write_login`] leaves a
//! `TETHER_HOME` with the hub pinned and a stored login, as `tether login` would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect as CellRect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::agent::consent::{Consent, ConsentPolicy};
use crate::agent::policy::Policy;
use crate::agent::{AgentOptions, AgentShared, AgentStatus, ScreenSource};
use crate::client::HubClient;
use crate::client::store::{LoginStore, StoredLogin};
use crate::console::desktop::{DesktopView, put_rects};
use crate::frame::{Framebuffer, Rect};
use crate::hub::store::{NewUser, SqliteStore};
use crate::hub::{Hub, HubConfig, Limits};
use crate::protocol::stream::{self, RectUpdate, StreamFrame};
use crate::protocol::{
    ConsoleReply, ConsoleRequest, EnrolmentLink, HubEvent, InputEvent, Presence, Role, StreamId,
    ViewSpec,
};
use crate::render::{CellSize, ColorDepth, Glyphs, SixelView};
use crate::tls::{Pin, parse_fingerprint};

/// The rig's technician: an admin of team "Desk".
pub const USER: &str = "ann";
/// The technician's password.
pub const PASSWORD: &str = "plum tractor violet 7";
/// How long the rig waits for the hub and agent to come up.
const WAIT: Duration = Duration::from_secs(30);

/// Hub and agent, running until dropped.
pub struct Rig {
    /// `wss://127.0.0.1:PORT`.
    pub url: String,
    pub pin: Pin,
    /// The hub certificate's fingerprint (`SHA256:...`), for `tether login --fingerprint`.
    pub fingerprint: String,
    pub workstation: String,
    _stops: Vec<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// A hub, one technician ([`USER`]), and an agent showing `screen` (as `--screen` takes it:
    /// `synthetic:1920x1080@7`, `terminal`, ...) whose end user accepts; all on this runtime.
    pub async fn start(screen: &str) -> anyhow::Result<Rig> {
        Self::start_on(screen, &tokio::runtime::Handle::current()).await
    }

    /// As [`Rig::start`], with the agent on its own `agent` runtime, so its threads' CPU time is
    /// the agent's alone.
    pub async fn start_on(screen: &str, agent: &tokio::runtime::Handle) -> anyhow::Result<Rig> {
        Self::start_with(screen, AgentPlace::Runtime(agent))
            .await
            .map(|(rig, _)| rig)
    }

    /// As [`Rig::start`], with the agent a child process (`tether agent`, this binary), so its
    /// CPU time and memory are read from `/proc/PID` as an operator would see them.
    pub async fn start_with_agent_process(screen: &str) -> anyhow::Result<(Rig, AgentProcess)> {
        let (rig, child) = Self::start_with(screen, AgentPlace::Process).await?;
        let child = child.context("the agent process did not start")?;
        Ok((rig, child))
    }

    async fn start_with(
        screen_arg: &str,
        place: AgentPlace<'_>,
    ) -> anyhow::Result<(Rig, Option<AgentProcess>)> {
        let screen = screen_arg
            .parse::<ScreenSource>()
            .map_err(|e| anyhow!("screen source {screen_arg:?}: {e}"))?;
        let dir = tempfile::tempdir().context("temporary directory")?;
        let config = HubConfig {
            data_dir: dir.path().join("hub"),
            public_addr: None,
            limits: Limits::default(),
            smtp: None,
        };
        let store = SqliteStore::open_dir(&config.data_dir).context("hub store")?;
        let hub = Hub::with_store(config, Arc::new(store), Arc::new(crate::hub::SystemClock))
            .context("hub")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("wss://{}", listener.local_addr()?);
        let fingerprint = hub.fingerprint().to_owned();
        let pin = Pin::Fingerprint(parse_fingerprint(&fingerprint).context("fingerprint")?);
        let store = hub.store().clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            store.create_user(NewUser {
                email: "ann@example.com".into(),
                name: USER.into(),
                role: Role::Admin,
                team: "Desk".into(),
                password_hash: crate::secrets::hash_password(PASSWORD)?,
            })?;
            Ok(())
        })
        .await??;
        let (hub_stop, hub_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = crate::hub::run(hub, listener, async {
                let _ = hub_stopped.await;
            })
            .await;
        });

        let (tech, mut events) = HubClient::connect(&url, pin.clone()).await?;
        tech.login(USER, PASSWORD).await?;
        let link = enrolment_link(&tech).await?;
        let agent_dir = dir.path().join("agent");
        std::fs::create_dir_all(&agent_dir)?;
        let (agent_stop, agent_stopped) = oneshot::channel::<()>();
        let (workstation, child) = match place {
            AgentPlace::Runtime(agent) => {
                let opts = AgentOptions {
                    data_dir: agent_dir.clone(),
                    link: Some(link),
                    screen,
                    shell: true,
                    report: None,
                };
                let policy =
                    Policy::load(&agent_dir, chrono::Utc::now()).context("agent policy")?;
                let shared = Arc::new(AgentShared::new(
                    agent_dir,
                    policy,
                    Consent::new(ConsentPolicy::Accept),
                ));
                let mut status = shared.status.subscribe();
                agent.spawn(crate::agent::run(opts, shared, async {
                    let _ = agent_stopped.await;
                }));
                let online = tokio::time::timeout(
                    WAIT,
                    status.wait_for(|s| matches!(s, AgentStatus::Online { .. })),
                )
                .await
                .context("the agent did not come online in 30 s")??
                .clone();
                let AgentStatus::Online { workstation_id, .. } = online else {
                    bail!("the agent is not online");
                };
                (workstation_id, None)
            }
            AgentPlace::Process => {
                let child = AgentProcess::spawn(&agent_dir, &link.to_string(), screen_arg)?;
                // The hub tells the technician's console when the new workstation comes online.
                let online = tokio::time::timeout(WAIT, async {
                    while let Some(event) = events.recv().await {
                        if let HubEvent::Workstation { workstation } = event
                            && workstation.presence != Presence::Offline
                        {
                            return Some(workstation.id);
                        }
                    }
                    None
                })
                .await
                .context("the agent process did not come online in 30 s")?
                .context("the hub closed the technician's connection")?;
                (online, Some(child))
            }
        };
        Ok((
            Rig {
                url,
                pin,
                fingerprint,
                workstation,
                _stops: vec![hub_stop, agent_stop],
                _dir: dir,
            },
            child,
        ))
    }

    /// The hub's socket address.
    pub fn hub_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.url.trim_start_matches("wss://").parse()?)
    }

    /// Leave a logged-in technician under `home` (as `TETHER_HOME`): the hub's certificate
    /// pinned and a login token stored, so `TETHER_HOME=home tether console --hub URL` starts
    /// logged in.
    pub async fn write_login(&self, home: &Path) -> anyhow::Result<()> {
        let (client, _events) = HubClient::connect(&self.url, self.pin.clone()).await?;
        let (token, expires_at, user) = client.login(USER, PASSWORD).await?;
        let store = LoginStore::new(crate::paths::Paths::under(home).state);
        crate::paths::create_private_dir(&crate::paths::Paths::under(home).state)?;
        store.trust(&self.url, &self.fingerprint)?;
        store.save_login(StoredLogin {
            hub: self.url.clone(),
            user: user.name,
            token,
            expires_at,
        })?;
        Ok(())
    }
}

/// Where the rig runs its agent.
enum AgentPlace<'a> {
    /// In this process, on this runtime.
    Runtime(&'a tokio::runtime::Handle),
    /// As a child process.
    Process,
}

/// `tether agent` as a child process, killed when dropped.
pub struct AgentProcess {
    child: std::process::Child,
}

impl AgentProcess {
    fn spawn(dir: &Path, link: &str, screen: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this binary")?;
        // Its terminal output (the passcode among it) goes to a file beside its data.
        let out = std::fs::File::create(dir.join("agent.out"))?;
        let child = std::process::Command::new(exe)
            .arg("agent")
            .args(["--data", &dir.to_string_lossy()])
            .args(["--link", link, "--screen", screen, "--consent", "accept"])
            .env("TETHER_HOME", dir)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting `tether agent`")?;
        Ok(Self { child })
    }

    /// The agent's resident set, in bytes.
    pub fn rss(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .context("no VmRSS for the agent process")?;
        Ok(kb * 1024.0)
    }

    /// CPU seconds the agent used so far (user + system, all its threads).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let close = stat.rfind(')').context("unreadable /proc stat")?;
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        match (ticks(11), ticks(12)) {
            // The kernel's USER_HZ is 100 on every Linux ABI.
            (Some(user), Some(system)) => Ok((user + system) / 100.0),
            _ => bail!("unreadable /proc stat for the agent"),
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A logged-in technician at `url` (the hub, or a proxy in front of it).
pub async fn login(url: &str, pin: Pin) -> anyhow::Result<HubClient> {
    let (client, _events) = HubClient::connect(url, pin).await?;
    client.login(USER, PASSWORD).await?;
    Ok(client)
}

async fn enrolment_link(tech: &HubClient) -> anyhow::Result<EnrolmentLink> {
    let ConsoleReply::Client { client } = tech
        .request(ConsoleRequest::AddClient {
            name: "Bench".into(),
        })
        .await?
    else {
        bail!("the hub did not add the client")
    };
    let ConsoleReply::Link { url, .. } = tech
        .request(ConsoleRequest::CreateLink {
            client: client.id,
            valid_days: None,
        })
        .await?
    else {
        bail!("the hub made no enrolment link")
    };
    url.parse()
        .map_err(|e| anyhow!("enrolment link {url:?}: {e}"))
}

/// A technician watching the workstation's screen at `width` x `height` pixels.
pub struct Watcher {
    pub tech: HubClient,
    pub frames: mpsc::UnboundedReceiver<Vec<u8>>,
    pub stream: StreamId,
}

impl Watcher {
    pub async fn open(
        tech: HubClient,
        workstation: &str,
        width: u32,
        height: u32,
    ) -> anyhow::Result<Watcher> {
        let ConsoleReply::Session { session } = tech
            .request(ConsoleRequest::Connect {
                workstation: workstation.into(),
                secret: None,
                view_only: false,
                otp: None,
            })
            .await?
        else {
            bail!("the hub opened no session")
        };
        let frames = tech
            .take_frames()
            .ok_or_else(|| anyhow!("the stream frames were taken already"))?;
        let ConsoleReply::Watching { stream } = tech
            .request(ConsoleRequest::Watch {
                session: session.id,
                view: ViewSpec::Pixels { width, height },
            })
            .await?
        else {
            bail!("the hub did not start the stream")
        };
        Ok(Watcher {
            tech,
            frames,
            stream,
        })
    }

    /// The next pixels frame of this stream, or `None` when `deadline` passes first.
    pub async fn next(&mut self, deadline: Instant) -> anyhow::Result<Option<StreamFrame>> {
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(None);
            };
            let Ok(bytes) = tokio::time::timeout(left, self.frames.recv()).await else {
                return Ok(None);
            };
            let bytes = bytes.ok_or_else(|| anyhow!("the hub link closed"))?;
            let frame = stream::decode(&bytes)?;
            if matches!(frame, StreamFrame::Pixels { stream, .. } if stream == self.stream) {
                return Ok(Some(frame));
            }
        }
    }

    /// Tell the agent the frame is drawn.
    pub fn ack(&self, seq: u64) -> anyhow::Result<()> {
        self.tech.send_nowait(ConsoleRequest::Ack {
            stream: self.stream,
            seq,
        })?;
        Ok(())
    }

    pub fn input(&self, events: Vec<InputEvent>) -> anyhow::Result<()> {
        self.tech.send_nowait(ConsoleRequest::Input {
            stream: self.stream,
            events,
        })?;
        Ok(())
    }
}

/// How a console draws: half blocks into a `cols` x `rows` terminal, or sixel.
pub enum Drawing {
    Text {
        desktop: Box<DesktopView>,
        area: CellRect,
        shown: Buffer,
    },
    Sixel {
        framebuffer: Framebuffer,
        view: Box<SixelView>,
        drawn: bool,
    },
}

impl Drawing {
    /// Half blocks, 24-bit colour, on a `cols` x `rows` terminal.
    pub fn text(cols: u16, rows: u16) -> Drawing {
        let screen = crate::protocol::ScreenSize {
            width: 1920,
            height: 1080,
        };
        let area = CellRect::new(0, 0, cols, rows);
        Drawing::Text {
            desktop: Box::new(DesktopView::new(
                screen,
                Glyphs::HalfBlock,
                ColorDepth::TrueColor,
            )),
            area,
            shown: Buffer::empty(area),
        }
    }

    /// Sixel on `cols` x `rows` cells of `cell` pixels (256 colour registers).
    pub fn sixel(cols: u16, rows: u16, cell: CellSize) -> Drawing {
        Drawing::Sixel {
            framebuffer: Framebuffer::new(0, 0),
            view: Box::new(SixelView::new(
                CellRect::new(0, 0, cols, rows),
                rows + 1,
                cell,
                256,
            )),
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
    pub fn draw(&mut self, frame: &StreamFrame, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let StreamFrame::Pixels {
            width,
            height,
            rects,
            ..
        } = frame
        else {
            return Ok(());
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
                backend.draw(shown.diff(&next).into_iter())?;
                Backend::flush(&mut backend)?;
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
        Ok(())
    }
}

/// Rectangles into a framebuffer (as `DesktopView::apply` does, without its text cells);
/// returns the damage, or nothing when the picture was resized (then draw it whole).
fn apply_rects(fb: &mut Framebuffer, width: u32, height: u32, rects: &[RectUpdate]) -> Vec<Rect> {
    let resized = (fb.width(), fb.height()) != (width, height);
    if resized {
        *fb = Framebuffer::new(width, height);
    }
    let damage = put_rects(fb, rects);
    if resized { Vec::new() } else { damage }
}

/// A technician dragging the synthetic desktop's window 2 ("Inbox", drawn last, never
/// covered; about 700x450 pixels) around by its title bar: a large area repainted every move,
/// as when moving windows or scrolling. The desktop is deterministic, so the window's place is
/// known here.
pub struct Drag {
    grip: (u32, u32),
    step: u32,
}

/// How often [`Drag::next_move`] is meant to be called: 30 moves a second.
pub const DRAG_MOVE: Duration = Duration::from_millis(33);

impl Drag {
    /// The drag on a `width` x `height` synthetic desktop of seed `seed`.
    pub fn new(width: u32, height: u32, seed: u64) -> anyhow::Result<Drag> {
        let window = crate::agent::screen::synthetic::SyntheticDesktop::new(width, height, seed)
            .window_rect(2)
            .ok_or_else(|| anyhow!("the synthetic desktop has no window 2"))?;
        Ok(Drag {
            grip: (window.x + 40, window.y + 6),
            step: 0,
        })
    }

    /// Move to the title bar and press the button.
    pub fn press(&self) -> Vec<InputEvent> {
        let (x, y) = self.grip;
        vec![
            InputEvent::Pointer { x, y, buttons: 0 },
            InputEvent::Pointer { x, y, buttons: 1 },
        ]
    }

    /// The next move, the button held.
    pub fn next_move(&mut self) -> Vec<InputEvent> {
        self.step += 1;
        let (gx, gy) = self.grip;
        let x = (gx + bounce(self.step * 11, 600)).saturating_sub(300);
        let y = (gy + bounce(self.step * 7, 240)).saturating_sub(120);
        vec![InputEvent::Pointer { x, y, buttons: 1 }]
    }

    /// Put the window back where it was and let go.
    pub fn release(&self) -> Vec<InputEvent> {
        let (x, y) = self.grip;
        vec![
            InputEvent::Pointer { x, y, buttons: 1 },
            InputEvent::Pointer { x, y, buttons: 0 },
        ]
    }
}

/// A value bouncing between 0 and `span` as `v` grows.
fn bounce(v: u32, span: u32) -> u32 {
    let m = v % (2 * span);
    if m < span { m } else { 2 * span - m }
}

/// One direction of a slow link: how fast, how late.
#[derive(Debug, Clone, Copy)]
pub struct LinkShape {
    /// Bytes a second the link carries each way.
    pub bytes_per_second: f64,
    /// One way's delay (half the round trip).
    pub delay: Duration,
}

/// A TCP proxy on loopback to `target` that behaves like a slow link: each way, bytes pass a
/// token bucket at the link's rate (a [`BURST`] of a few packets), then a delay line that hands
/// them on `delay` later. Counts the bytes carried towards the client.
pub struct Throttle {
    pub addr: SocketAddr,
    to_client: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// What the bucket holds: about 13 ms at 10 Mbit/s, a few packets' burst.
pub const BURST: f64 = 16.0 * 1024.0;

/// The largest piece the link carries at once (an Ethernet payload).
const PACKET: usize = 1460;

impl Drop for Throttle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Throttle {
    pub async fn start(target: SocketAddr, shape: LinkShape) -> anyhow::Result<Throttle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let to_client = Arc::new(AtomicU64::new(0));
        let counter = to_client.clone();
        let task = tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = Arc::new(AtomicU64::new(0));
                pipes.spawn(pipe(cr, sw, shape, up));
                pipes.spawn(pipe(sr, cw, shape, counter.clone()));
            }
        });
        Ok(Throttle {
            addr,
            to_client,
            task,
        })
    }

    /// The proxy as a hub URL.
    pub fn url(&self) -> String {
        format!("wss://{}", self.addr)
    }

    /// Bytes carried towards the client so far.
    pub fn sent_to_client(&self) -> u64 {
        self.to_client.load(Ordering::Relaxed)
    }
}

/// Carry `from` to `to` as `shape` says: packets leave the bucket at the link's rate (counted
/// then) and arrive `shape.delay` later.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    shape: LinkShape,
    counter: Arc<AtomicU64>,
) {
    let (line, arrivals) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let deliver = tokio::spawn(delay_line(arrivals, to));
    let rate = shape.bytes_per_second.max(1.0);
    let mut buf = vec![0u8; 16 * 1024];
    let mut tokens = BURST;
    let mut last = Instant::now();
    'read: loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut sent = 0;
        while sent < n {
            let chunk = (n - sent).min(PACKET);
            let now = Instant::now();
            tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(BURST);
            last = now;
            if tokens < chunk as f64 {
                let wait = (chunk as f64 - tokens) / rate;
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                continue;
            }
            tokens -= chunk as f64;
            let packet = buf[sent..sent + chunk].to_vec();
            if line.send((now + shape.delay, packet)).is_err() {
                break 'read;
            }
            sent += chunk;
            counter.fetch_add(chunk as u64, Ordering::Relaxed);
        }
    }
    drop(line);
    let _ = deliver.await;
}

/// Hand each packet on at its arrival time, in order; shut the write side when the line ends.
async fn delay_line(
    mut arrivals: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut due: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    loop {
        if due.is_empty() {
            match arrivals.recv().await {
                Some(p) => due.push_back(p),
                None => break,
            }
        }
        while let Ok(p) = arrivals.try_recv() {
            due.push_back(p);
        }
        let Some((at, _)) = due.front() else {
            continue;
        };
        tokio::time::sleep_until((*at).into()).await;
        // Everything due by now goes in one write.
        let now = Instant::now();
        let mut batch = Vec::new();
        while let Some((at, _)) = due.front() {
            if *at > now {
                break;
            }
            if let Some((_, bytes)) = due.pop_front() {
                batch.extend_from_slice(&bytes);
            }
        }
        if to.write_all(&batch).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy delays each way by half the round trip and keeps to its rate.
    #[tokio::test]
    async fn the_throttle_delays_and_limits() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = echo.accept().await {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let shape = LinkShape {
            bytes_per_second: 200_000.0,
            delay: Duration::from_millis(40),
        };
        let throttle = Throttle::start(target, shape).await.expect("proxy");
        let mut s = TcpStream::connect(throttle.addr).await.expect("connect");
        let start = Instant::now();
        s.write_all(b"x").await.expect("write");
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.expect("echo");
        let rtt = start.elapsed();
        // One byte there and back: 40 ms each way.
        assert!(rtt >= Duration::from_millis(80), "{rtt:?}");

        // 100 KB at 200 KB/s: half a second, less the burst, plus the delay.
        let payload = vec![7u8; 100_000];
        let start = Instant::now();
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn(async move { w.write_all(&payload).await });
        let mut got = vec![0u8; 100_000];
        r.read_exact(&mut got).await.expect("echo");
        let took = start.elapsed();
        writer.await.expect("join").expect("write");
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert_eq!(throttle.sent_to_client(), 100_001);
    }
}
