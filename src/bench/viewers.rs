//! `tether bench viewers`: what each viewer of one screen costs the agent and the hub.
//!
//! The rig's hub on loopback TLS, on its own tokio runtime with named threads (`tether-hub`),
//! so its CPU time is read per thread from `/proc/self/task/*/stat`; the agent is a child
//! process (`tether agent`, as an operator runs it), its CPU and memory read from `/proc/PID`;
//! the viewers (technicians that acknowledge every frame without drawing it) run on the
//! bench's own runtime. One technician drags a window on the synthetic 1920x1080 desktop
//! throughout. Measured: 1 viewer, then `--count` viewers at the same size, then `--count`
//! viewers each at another size; memory is the resident set's growth per viewer added, the
//! agent's alone and this process's (hub and viewer connections).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::Report;
use super::rig::{AgentProcess, DRAG_MOVE, Drag, Rig, Watcher, login};
use crate::protocol::stream::peek_header;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many viewers watch at once.
    #[arg(long, default_value_t = 20)]
    pub count: u32,
    /// Seconds measured in each phase (after a warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
}

const SCREEN: (u32, u32) = (1920, 1080);
const SEED: u64 = 7;
/// Time for new viewers' first, whole pictures before measuring.
const WARM_UP: Duration = Duration::from_secs(3);

/// Thread names, as `/proc` shows them (at most 15 bytes).
const HUB_THREADS: &str = "tether-hub";

/// The kernel's USER_HZ: `/proc` counts CPU time in these ticks (100 on every Linux ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by this process's threads, by thread name.
fn thread_cpu() -> anyhow::Result<HashMap<String, f64>> {
    let mut out = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        // After the name: state, then fields 4..; utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
            continue;
        };
        *out.entry(name).or_insert(0.0) += (user + system) / TICKS_PER_SECOND;
    }
    Ok(out)
}

/// The process's resident set, in bytes.
fn rss() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kb * 1024.0)
}

/// A runtime of its own, shut down without blocking (it may be dropped inside another).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn new(name: &str) -> anyhow::Result<Self> {
        Ok(Self(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(name)
                .enable_all()
                .build()?,
        )))
    }

    fn handle(&self) -> anyhow::Result<tokio::runtime::Handle> {
        Ok(self
            .0
            .as_ref()
            .context("runtime shut down")?
            .handle()
            .clone())
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A viewer that acknowledges every frame as it comes (and drags, if it is the first).
struct Viewing {
    frames: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Viewing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open_viewer(rig: &Rig, size: (u32, u32), drag: Option<Drag>) -> anyhow::Result<Viewing> {
    let tech = login(&rig.url, rig.pin.clone()).await?;
    let watcher = Watcher::open(tech, &rig.workstation, size.0, size.1).await?;
    let (count, frames) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        let mut watcher = watcher;
        let mut drag = drag;
        if let Some(d) = &drag
            && watcher.input(d.press()).is_err()
        {
            return;
        }
        let mut moves = tokio::time::interval(DRAG_MOVE);
        let mut n = 0u64;
        loop {
            tokio::select! {
                bytes = watcher.frames.recv() => {
                    let Some(bytes) = bytes else { return };
                    let Ok((_, stream, seq)) = peek_header(&bytes) else { continue };
                    if stream == watcher.stream {
                        if watcher.ack(seq).is_err() {
                            return;
                        }
                        n += 1;
                        count.send_replace(n);
                    }
                }
                _ = moves.tick(), if drag.is_some() => {
                    if let Some(d) = drag.as_mut()
                        && watcher.input(d.next_move()).is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Ok(Viewing { frames, task })
}

/// What one phase measured.
struct Phase {
    agent: f64,
    hub: f64,
    /// Frames a second each viewer received, on average.
    fps: f64,
}

/// CPU (fraction of a core) of the agent process and the hub's threads over `secs`, with
/// `viewers` watching.
async fn measure(viewers: &[Viewing], agent: &AgentProcess, secs: f64) -> anyhow::Result<Phase> {
    tokio::time::sleep(WARM_UP).await;
    let before = thread_cpu()?;
    let agent_before = agent.cpu_seconds()?;
    let frames_before: u64 = viewers.iter().map(|v| *v.frames.borrow()).sum();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let after = thread_cpu()?;
    let agent_after = agent.cpu_seconds()?;
    let elapsed = start.elapsed().as_secs_f64();
    let frames: u64 = viewers.iter().map(|v| *v.frames.borrow()).sum::<u64>() - frames_before;
    let used = |prefix: &str| {
        let sum = |m: &HashMap<String, f64>| {
            m.iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| *v)
                .sum::<f64>()
        };
        (sum(&after) - sum(&before)).max(0.0) / elapsed
    };
    Ok(Phase {
        agent: (agent_after - agent_before).max(0.0) / elapsed,
        hub: used(HUB_THREADS),
        fps: frames as f64 / elapsed / viewers.len().max(1) as f64,
    })
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.count < 2 {
        bail!("--count is at least 2: the figures compare one viewer with several");
    }
    let hub_rt = OwnRuntime::new(HUB_THREADS)?;
    // The hub is spawned by the rig on the runtime the rig starts on; the agent is a child
    // process, so its memory is its own.
    let (rig, agent) = hub_rt
        .handle()?
        .spawn(async move {
            Rig::start_with_agent_process(&format!("synthetic:{}x{}@{SEED}", SCREEN.0, SCREEN.1))
                .await
        })
        .await??;
    let n = args.count as usize;

    let mut viewers =
        vec![open_viewer(&rig, SCREEN, Some(Drag::new(SCREEN.0, SCREEN.1, SEED)?)).await?];
    let one = measure(&viewers, &agent, args.secs).await?;
    let (rss_one, agent_one) = (rss()?, agent.rss()?);

    for _ in 1..n {
        viewers.push(open_viewer(&rig, SCREEN, None).await?);
    }
    let same = measure(&viewers, &agent, args.secs).await?;
    let (rss_same, agent_same) = (rss()?, agent.rss()?);

    viewers.truncate(1);
    // Each another size, as technicians' terminals are: a few cells apart.
    for i in 1..n as u32 {
        viewers.push(open_viewer(&rig, (SCREEN.0 - 20 * i, SCREEN.1 - 12 * i), None).await?);
    }
    let sizes = measure(&viewers, &agent, args.secs).await?;
    let (rss_sizes, agent_sizes) = (rss()?, agent.rss()?);

    let extra = (n - 1) as f64;
    let mut report = Report::new(
        "viewers",
        format!(
            "{n} technicians watching a {}x{} synthetic desktop while one drags a window, on \
             loopback TLS; the agent a child process (CPU and RSS from /proc/PID), the hub on \
             its own runtime (CPU from its threads' /proc/self/task/*/stat) over {:.0} s; \
             memory: agent RSS growth per viewer, and this process's (hub + the viewers' \
             connections)",
            SCREEN.0, SCREEN.1, args.secs
        ),
    );
    report.add("agent CPU, 1 viewer", one.agent * 100.0, "%", "");
    report.add(
        format!("agent CPU, {n} viewers at the same size"),
        same.agent * 100.0,
        "%",
        "",
    );
    report.add(
        "agent CPU per extra viewer, same size",
        (same.agent - one.agent) / extra * 100.0,
        "%",
        "≈ 0",
    );
    report.add(
        format!("agent CPU, {n} viewers at {n} sizes"),
        sizes.agent * 100.0,
        "%",
        "",
    );
    report.add(
        "agent CPU per extra viewer, other sizes",
        (sizes.agent - one.agent) / extra * 100.0,
        "%",
        "",
    );
    report.add("hub CPU, 1 viewer", one.hub * 100.0, "%", "");
    report.add(
        "hub CPU per extra viewer, same size",
        (same.hub - one.hub) / extra * 100.0,
        "%",
        "",
    );
    report.add("agent RSS, 1 viewer", agent_one / 1e6, "MB", "");
    report.add(
        "agent memory per extra viewer, same size",
        (agent_same - agent_one) / extra / 1e6,
        "MB",
        "<= 1 MB",
    );
    report.add(
        "agent memory per extra viewer, other sizes",
        (agent_sizes - agent_one) / extra / 1e6,
        "MB",
        "",
    );
    report.add(
        "hub + viewers' memory per extra viewer, same size",
        (rss_same - rss_one) / extra / 1e6,
        "MB",
        "",
    );
    report.add(
        "hub + viewers' memory per extra viewer, other sizes",
        (rss_sizes - rss_one) / extra / 1e6,
        "MB",
        "",
    );
    report.add("frames a second per viewer, 1 viewer", one.fps, "fps", "");
    report.add(
        format!("frames a second per viewer, {n} at the same size"),
        same.fps,
        "fps",
        "",
    );
    report.add(
        format!("frames a second per viewer, {n} sizes"),
        sizes.fps,
        "fps",
        "",
    );
    drop(viewers);
    drop(rig);
    drop(agent);
    Ok(report)
}
