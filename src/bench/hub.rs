//! `tether bench hub --agents N [--consoles M]`: one hub at a desk's size.
//!
//! The hub runs as a child process of this binary (`tether hub` on a temporary data dir), so
//! the memory and CPU read from `/proc/PID` are the hub's alone. Its workstations are seeded
//! into its store before it starts (enrolling 20k through links would time enrolment, not the
//! hub at rest); then N lightweight agents in this process say hello with the real protocol
//! over real TLS WebSockets, and M consoles log in and follow the team's live events.
//!
//! Figures: connect rate, hub memory idle / with N / per agent, idle CPU with N connected,
//! presence fan-out (an agent drops or returns -> every console sees it), a reconnect storm
//! (every agent drops at once and returns as real agents do, after their jittered backoff)
//! until every console shows all N online, and the hub's memory `--settle` after all left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures_util::StreamExt;
use tokio::sync::{Notify, Semaphore, mpsc};

use super::Report;
use crate::client::HubClient;
use crate::hub::store::{NewLink, NewUser, NewWorkstation, SqliteStore, Store};
use crate::protocol::{
    AGENT_PATH, AgentReply, AgentRequest, ConsoleReply, ConsoleRequest, HubEvent, HubToAgent,
    PROTOCOL_VERSION, PageRequest, Presence, Request, Role, SecretRequirements, WorkstationReport,
};
use crate::tls::{Pin, ResumingClient, parse_fingerprint};
use crate::wire::{self, ClientStream};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workstations, each with one agent connection.
    #[arg(long, default_value_t = 2000)]
    pub agents: usize,
    /// Technicians' consoles following the team's live events.
    #[arg(long, default_value_t = 2)]
    pub consoles: usize,
    /// Agent handshakes (TCP, TLS, hello) in flight at once: the agents share this process's
    /// cores with the hub, where a real fleet brings its own.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Agents dropped and returned one at a time to time presence fan-out.
    #[arg(long, default_value_t = 50)]
    pub samples: usize,
    /// How long to measure the hub's CPU with every agent connected and nothing happening.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle: Duration,
    /// How long after every agent left to read the hub's memory again.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub settle: Duration,
    /// The longest any phase (connecting, a storm, a sample) may take before the bench gives up.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Every connection makes a full TLS handshake, as after the hub restarted (by default a
    /// returning agent resumes its session, as `tether agent` does).
    #[arg(long)]
    pub full_handshakes: bool,
    /// Keep a copy of the hub's log here (it holds the allocator's figures at each phase).
    #[arg(long)]
    pub hub_log: Option<PathBuf>,
}

/// `500ms`, `10s`, `2m`, or bare seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 500ms, 10s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

const USER: &str = "bench";
const PASSWORD: &str = "bench hub password 7";
/// Every seeded workstation shares this key: the hub checks it by hash, as for any agent.
const AGENT_KEY: &str = "bench-agent-key-not-secret";
const ID_PREFIX: &str = "ws_bench_";

fn workstation_id(index: usize) -> String {
    format!("{ID_PREFIX}{index:06}")
}

fn workstation_index(id: &str) -> Option<usize> {
    id.strip_prefix(ID_PREFIX)?.parse().ok()
}

fn report(index: usize) -> WorkstationReport {
    WorkstationReport {
        hostname: format!("bench-{index:06}"),
        os: "Debian GNU/Linux 13".into(),
        user: "someone".into(),
        screen: None,
        agent_version: env!("CARGO_PKG_VERSION").into(),
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    anyhow::ensure!(args.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let wanted_fds = (args.agents + args.consoles) as u64 + 256;
    raise_open_files(wanted_fds)?;

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("hub");
    let seeding = Instant::now();
    {
        let (data, agents) = (data.clone(), args.agents);
        tokio::task::spawn_blocking(move || seed(&data, agents)).await??;
    }
    let seeded_in = seeding.elapsed();
    let hub = HubProcess::start(
        &data,
        dir.path(),
        args.agents + args.consoles + 64,
        Some(args.agents + args.consoles + 64),
    )
    .await?;
    let pin = parse_fingerprint(&hub.fingerprint)?;
    let url = hub.url.clone();

    let mut report = Report::new(
        "hub",
        format!(
            "{} agents, {} consoles on a child `tether hub` (pid {}), TLS over loopback; \
             {} workstations seeded in {:.1} s",
            args.agents,
            args.consoles,
            hub.pid,
            args.agents,
            seeded_in.as_secs_f64()
        ),
    );

    // Consoles first: they see every agent arrive.
    let mut consoles = Vec::new();
    for _ in 0..args.consoles {
        consoles.push(Console::open(&url, pin, args.agents).await?);
    }
    settle_briefly().await;
    let idle_kb = hub.rss_kb().context("reading the hub's memory")?;
    report.add("hub RSS, idle (consoles only)", kb_to_mb(idle_kb), "MB", "");
    hub.add_allocator_figures(&mut report, "idle").await;

    // Every agent connects.
    let fleet = Fleet::new();
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let connecting = Instant::now();
    let mut commands = Vec::with_capacity(args.agents);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.agents {
        let (tx, rx) = mpsc::channel(4);
        commands.push(tx);
        let agent = BenchAgent {
            index,
            url: url.clone(),
            tls: ResumingClient::new(pin)?,
            full_handshakes: args.full_handshakes,
            gate: gate.clone(),
            fleet: fleet.clone(),
        };
        tasks.spawn(agent.run(rx));
    }
    let all = args.agents;
    fleet
        .wait(args.timeout, |online| online == all)
        .await
        .with_context(|| format!("only {} of {all} agents connected", fleet.online()))?;
    let connected_in = connecting.elapsed();
    report.add(
        "connect rate",
        all as f64 / connected_in.as_secs_f64(),
        "/s",
        "",
    );
    wait_consoles(&consoles, args.timeout, |v| v.online == all)
        .await
        .context("consoles did not see every agent online")?;
    report.add(
        "every console shows all online after",
        connecting.elapsed().as_secs_f64(),
        "s",
        "",
    );
    settle_briefly().await;
    let full_kb = hub.rss_kb().context("reading the hub's memory")?;
    report.add(
        format!("hub RSS, {all} agents"),
        kb_to_mb(full_kb),
        "MB",
        if all >= 20_000 { "<= 1024 MB" } else { "" },
    );
    report.add(
        "hub RSS per agent",
        full_kb.saturating_sub(idle_kb) as f64 / all as f64,
        "KB",
        "",
    );
    hub.add_allocator_figures(&mut report, &format!("{all} agents"))
        .await;
    let cpu = hub.cpu_percent(args.idle).await?;
    report.add(format!("hub CPU, idle with {all} agents"), cpu, "%", "");

    // Presence fan-out: one agent at a time drops, then returns.
    let mut fanout = Vec::new();
    let samples = args.samples.min(all);
    for s in 0..samples {
        let index = s * all / samples.max(1);
        let t0 = Instant::now();
        commands[index].send(AgentCommand::Drop).await?;
        fanout.extend(seen_by_all(&consoles, index, Presence::Offline, t0, args.timeout).await?);
        let t0 = Instant::now();
        commands[index]
            .send(AgentCommand::Return(Duration::ZERO))
            .await?;
        fanout.extend(seen_by_all(&consoles, index, Presence::Online, t0, args.timeout).await?);
    }
    report.add_p50_p99("presence fan-out", &mut fanout, ("", "<= 1000 ms"));

    // The storm: every agent drops at once and comes back after a real agent's backoff.
    let closed_before = consoles.iter().filter(|c| c.view().closed).count();
    let arrived_before = fleet.arrivals();
    let storm = Instant::now();
    for tx in &commands {
        tx.send(AgentCommand::Drop).await?;
    }
    for tx in &commands {
        tx.send(AgentCommand::Return(crate::agent::backoff(0)))
            .await?;
    }
    // Settled when every agent is back (the hub welcomed it) and every console shows it so;
    // the consoles' "all online" from before the storm does not count.
    let settled = match fleet
        .wait_arrivals(args.timeout, arrived_before + all)
        .await
    {
        Ok(()) => wait_consoles(&consoles, args.timeout, |v| v.online == all || v.closed).await,
        Err(e) => Err(e),
    };
    let all_open = consoles.iter().all(|c| !c.view().closed);
    match (settled, all_open) {
        (Ok(()), true) => report.add(
            "reconnect storm: every console consistent after",
            storm.elapsed().as_secs_f64(),
            "s",
            "<= 10 s",
        ),
        _ => report.add(
            "reconnect storm: consoles not consistent within",
            args.timeout.as_secs_f64(),
            "s",
            "<= 10 s",
        ),
    }
    let closed = consoles.iter().filter(|c| c.view().closed).count() - closed_before;
    report.add("consoles disconnected in the storm", closed as f64, "", "0");
    report.add(
        "hub log: consoles that lagged",
        hub.log_lines_with("lagged") as f64,
        "",
        "",
    );
    report.add(
        "console reloads after a resync",
        consoles.iter().map(|c| c.view().resyncs).sum::<usize>() as f64,
        "",
        "",
    );
    report.add(
        "agent connection attempts failed",
        fleet.failures.load(Ordering::Relaxed) as f64,
        "",
        "",
    );
    let storm_kb = hub.rss_kb().context("reading the hub's memory")?;
    report.add("hub RSS after the storm", kb_to_mb(storm_kb), "MB", "");

    // Everyone leaves; memory a while later.
    for tx in &commands {
        let _ = tx.send(AgentCommand::Leave).await;
    }
    while tasks.join_next().await.is_some() {}
    let open = consoles.iter().filter(|c| !c.view().closed).count();
    if open > 0 {
        let _ = wait_consoles(&consoles, args.timeout, |v| v.online == 0 || v.closed).await;
    }
    tokio::time::sleep(args.settle).await;
    let left_kb = hub.rss_kb().context("reading the hub's memory")?;
    report.add(
        format!("hub RSS {:.0} s after all left", args.settle.as_secs_f64()),
        kb_to_mb(left_kb),
        "MB",
        "",
    );
    report.add(
        "  ... over the idle RSS",
        left_kb as f64 / idle_kb.max(1) as f64,
        "x",
        "<= 1.5 x",
    );
    hub.add_allocator_figures(&mut report, "after all left")
        .await;
    if let Some(path) = &args.hub_log {
        std::fs::copy(&hub.log, path)
            .with_context(|| format!("copying the hub's log to {}", path.display()))?;
    }
    drop(consoles);
    hub.stop();
    Ok(report)
}

pub(super) fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Lets the hub finish what a phase set off (store writes, last events) before a reading.
async fn settle_briefly() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Raise this process's open-file limit (the child hub inherits it): N agents need N sockets
/// here and N in the hub.
pub(super) fn raise_open_files(wanted: u64) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        if soft >= wanted {
            return Ok(());
        }
        // Raising the hard limit needs privilege; without it, go as far as it allows.
        if setrlimit(Resource::RLIMIT_NOFILE, wanted.max(hard), wanted.max(hard)).is_err() {
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        }
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
        anyhow::ensure!(
            soft >= wanted,
            "this bench needs {wanted} open files but the limit is {soft}: raise it (ulimit -Hn, \
             or run with fewer --agents)"
        );
    }
    Ok(())
}

/// The team, its technician and N workstations, written straight into the hub's store.
fn seed(data: &Path, agents: usize) -> anyhow::Result<()> {
    let store = SqliteStore::open_dir(data)?;
    let now = Utc::now();
    let user = store.create_user(NewUser {
        name: USER.into(),
        email: "bench@example.com".into(),
        role: Role::Technician,
        team: "bench".into(),
        password_hash: crate::secrets::hash_password(PASSWORD)?,
    })?;
    let client = "cl_bench".to_owned();
    store.create_client(&client, &user.team_id, "Bench", now)?;
    let link = store.create_link(NewLink {
        id: "ln_bench".into(),
        client_id: client.clone(),
        token_hash: crate::secrets::hash_token("bench-link-never-used"),
        created_by: user.id.clone(),
        created_at: now,
        expires_at: now + chrono::Duration::days(1),
    })?;
    let key_hash = crate::secrets::hash_token(AGENT_KEY);
    for index in 0..agents {
        store.enrol_workstation(NewWorkstation {
            id: workstation_id(index),
            client_id: client.clone(),
            link_id: link.id.clone(),
            key_hash: key_hash.clone(),
            report: report(index),
            at: now,
            requires: SecretRequirements::default(),
        })?;
    }
    Ok(())
}

/// The hub under test: a child `tether hub`, killed when dropped.
pub(super) struct HubProcess {
    child: Child,
    pub(super) pid: u32,
    pub(super) url: String,
    pub(super) fingerprint: String,
    log: PathBuf,
}

impl HubProcess {
    pub(super) async fn start(
        data: &Path,
        dir: &Path,
        max_connections: usize,
        preauth_per_source: Option<usize>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this program to run the hub")?;
        let log = dir.join("hub.log");
        let mut command = Command::new(exe);
        command
            .arg("hub")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data)
            .arg("--max-connections")
            .arg(max_connections.to_string());
        // Every peer of a bench comes from loopback: where asked, its agents must not meet the
        // per-address cap a real fleet spreads over many addresses.
        if let Some(n) = preauth_per_source {
            command.arg("--preauth-per-source").arg(n.to_string());
        }
        let mut child = command
            .env(
                "TETHER_LOG",
                std::env::var("TETHER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting the hub")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("the hub's output")?;
        // The hub prints where it listens and its fingerprint first (see `cli::run_hub`).
        let lines = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut addr = None;
            let mut fingerprint = None;
            while addr.is_none() || fingerprint.is_none() {
                let Some(Ok(line)) = lines.next() else { break };
                if let Some(a) = line.strip_prefix("tether hub listening on ") {
                    addr = Some(a.trim().to_owned());
                } else if let Some(f) = line.strip_prefix("certificate fingerprint: ") {
                    fingerprint = Some(f.trim().to_owned());
                }
            }
            (addr, fingerprint)
        });
        let mut hub = Self {
            child,
            pid,
            url: String::new(),
            fingerprint: String::new(),
            log,
        };
        let (addr, fingerprint) = tokio::time::timeout(Duration::from_secs(30), lines)
            .await
            .context("the hub did not start within 30 s")??;
        let (Some(addr), Some(fingerprint)) = (addr, fingerprint) else {
            anyhow::bail!(
                "the hub did not start: see its log:\n{}",
                std::fs::read_to_string(&hub.log).unwrap_or_default()
            );
        };
        hub.url = format!("wss://{addr}");
        hub.fingerprint = fingerprint;
        Ok(hub)
    }

    /// Resident memory, from `/proc/PID/status`.
    pub(super) fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// User plus system CPU time so far, in clock ticks, from `/proc/PID/stat`.
    fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The command name may hold spaces; the fields after it are fixed (utime, stime are
        // fields 14 and 15, so 11 and 12 after the state).
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let user: u64 = fields.get(11)?.parse().ok()?;
        let system: u64 = fields.get(12)?.parse().ok()?;
        Some(user + system)
    }

    /// The hub's CPU use over `window`, in percent of one core.
    async fn cpu_percent(&self, window: Duration) -> anyhow::Result<f64> {
        // USER_HZ is 100 on every Linux architecture we build for.
        const TICKS_PER_SECOND: f64 = 100.0;
        let before = self.cpu_ticks().context("reading the hub's CPU time")?;
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let after = self.cpu_ticks().context("reading the hub's CPU time")?;
        let secs = started.elapsed().as_secs_f64();
        Ok((after.saturating_sub(before)) as f64 / TICKS_PER_SECOND / secs * 100.0)
    }

    /// Ask the hub for its allocator's figures (SIGUSR1, see `hub::memory`) and add the live
    /// data and the resident pages to the report. A hub that does not answer adds nothing.
    async fn add_allocator_figures(&self, report: &mut Report, phase: &str) {
        let Some(line) = self.allocator_figures().await else {
            tracing::warn!(phase, "the hub logged no memory figures");
            return;
        };
        let figure = |name: &str| -> Option<f64> {
            let start = line.find(&format!(" {name}="))? + name.len() + 2;
            let rest = &line[start..];
            rest[..rest.find("MB")?].parse().ok()
        };
        for name in ["allocated", "resident"] {
            if let Some(mb) = figure(name) {
                report.add(format!("  jemalloc {name}, {phase}"), mb, "MB", "");
            }
        }
    }

    async fn allocator_figures(&self) -> Option<String> {
        const ASKED: &str = "asked by SIGUSR1";
        let answers = |log: &str| {
            log.lines()
                .filter(|l| l.contains(crate::hub::memory::LOG_LINE) && l.contains(ASKED))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let before = answers(&std::fs::read_to_string(&self.log).ok()?).len();
        #[cfg(unix)]
        {
            use nix::sys::signal::{Signal, kill};
            use nix::unistd::Pid;
            let pid = i32::try_from(self.pid).ok()?;
            kill(Pid::from_raw(pid), Signal::SIGUSR1).ok()?;
        }
        // The hub writes the line within a moment; its log is a file, so look a few times.
        for _ in 0..100 {
            let log = std::fs::read_to_string(&self.log).ok()?;
            if let Some(line) = answers(&log).into_iter().nth(before) {
                return Some(line);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn log_lines_with(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|log| log.lines().filter(|l| l.contains(needle)).count())
            .unwrap_or(0)
    }

    pub(super) fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What one console knows of the fleet, from the events it received.
#[derive(Debug)]
struct ConsoleView {
    presence: Vec<Presence>,
    /// When each workstation's presence last changed here.
    changed_at: Vec<Instant>,
    online: usize,
    /// The hub closed the connection.
    closed: bool,
    /// Times the hub told this console it had fallen behind and it reloaded.
    resyncs: usize,
}

impl ConsoleView {
    /// Records workstation `index`'s presence; whether it changed.
    fn set(&mut self, index: usize, new: Presence) -> bool {
        let Some(old) = self.presence.get(index).copied() else {
            return false;
        };
        if old == new {
            return false;
        }
        let (was, is) = (old != Presence::Offline, new != Presence::Offline);
        if was && !is {
            self.online -= 1;
        } else if is && !was {
            self.online += 1;
        }
        self.presence[index] = new;
        self.changed_at[index] = Instant::now();
        true
    }
}

/// Every workstation's presence, page by page, as a console reloads after a resync.
async fn list_presence(client: &HubClient) -> anyhow::Result<Vec<(usize, Presence)>> {
    let mut listed = Vec::new();
    let mut page = PageRequest::first();
    loop {
        let reply = client
            .request(ConsoleRequest::ListWorkstations {
                client: None,
                filter: None,
                page: page.clone(),
            })
            .await?;
        let ConsoleReply::Workstations {
            workstations, next, ..
        } = reply
        else {
            anyhow::bail!("unexpected answer to a workstation list: {reply:?}");
        };
        listed.extend(
            workstations
                .iter()
                .filter_map(|w| Some((workstation_index(&w.id)?, w.presence))),
        );
        match next {
            Some(after) => page = PageRequest::after(after),
            None => return Ok(listed),
        }
    }
}

struct Console {
    view: Arc<(Mutex<ConsoleView>, Notify)>,
    _client: Arc<HubClient>,
    _task: tokio::task::JoinHandle<()>,
}

impl Console {
    async fn open(url: &str, pin: [u8; 32], agents: usize) -> anyhow::Result<Self> {
        let (client, mut events) = HubClient::connect(url, Pin::Fingerprint(pin)).await?;
        client.login(USER, PASSWORD).await?;
        let now = Instant::now();
        let view = Arc::new((
            Mutex::new(ConsoleView {
                presence: vec![Presence::Offline; agents],
                changed_at: vec![now; agents],
                online: 0,
                closed: false,
                resyncs: 0,
            }),
            Notify::new(),
        ));
        let client = Arc::new(client);
        let shared = view.clone();
        let lister = client.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    HubEvent::Workstation { workstation } => {
                        let Some(index) = workstation_index(&workstation.id) else {
                            continue;
                        };
                        let mut v = shared.0.lock().unwrap_or_else(|p| p.into_inner());
                        if v.set(index, workstation.presence) {
                            drop(v);
                            shared.1.notify_waiters();
                        }
                    }
                    // The hub skipped events this console was too slow for: reload the list, as
                    // the real console does, while later events wait in the client's queue.
                    HubEvent::Resync => {
                        shared.0.lock().unwrap_or_else(|p| p.into_inner()).resyncs += 1;
                        match list_presence(&lister).await {
                            Ok(listed) => {
                                let mut v = shared.0.lock().unwrap_or_else(|p| p.into_inner());
                                for (index, presence) in listed {
                                    v.set(index, presence);
                                }
                                drop(v);
                                shared.1.notify_waiters();
                            }
                            Err(e) => tracing::warn!(%e, "bench console could not reload"),
                        }
                    }
                    _ => {}
                }
            }
            shared.0.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            shared.1.notify_waiters();
        });
        Ok(Self {
            view,
            _client: client,
            _task: task,
        })
    }

    fn view(&self) -> std::sync::MutexGuard<'_, ConsoleView> {
        self.view.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait (on events, not a timer) until `done` holds for this console's view.
    async fn wait(
        &self,
        deadline: tokio::time::Instant,
        done: &impl Fn(&ConsoleView) -> bool,
    ) -> bool {
        loop {
            let notified = self.view.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.view()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.view());
            }
        }
    }
}

async fn wait_consoles(
    consoles: &[Console],
    timeout: Duration,
    done: impl Fn(&ConsoleView) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    for (n, console) in consoles.iter().enumerate() {
        if !console.wait(deadline, &done).await {
            let v = console.view();
            anyhow::bail!(
                "console {n} still shows {} online{} after {timeout:?}",
                v.online,
                if v.closed { " (closed by the hub)" } else { "" }
            );
        }
    }
    Ok(())
}

/// How long after `t0` each console saw workstation `index` become `presence`.
async fn seen_by_all(
    consoles: &[Console],
    index: usize,
    presence: Presence,
    t0: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let want_online = presence != Presence::Offline;
    wait_consoles(consoles, timeout, |v| {
        (v.presence[index] != Presence::Offline) == want_online
    })
    .await?;
    Ok(consoles
        .iter()
        .map(|c| c.view().changed_at[index].saturating_duration_since(t0))
        .collect())
}

/// The agents' shared count of who is online, with a wake-up on every change.
#[derive(Clone)]
struct Fleet {
    online: Arc<AtomicUsize>,
    /// Welcomes so far, counting returns.
    arrivals: Arc<AtomicUsize>,
    failures: Arc<AtomicU64>,
    changed: Arc<Notify>,
}

impl Fleet {
    fn new() -> Self {
        Self {
            online: Arc::default(),
            arrivals: Arc::default(),
            failures: Arc::default(),
            changed: Arc::new(Notify::new()),
        }
    }

    fn online(&self) -> usize {
        self.online.load(Ordering::Relaxed)
    }

    fn arrivals(&self) -> usize {
        self.arrivals.load(Ordering::Relaxed)
    }

    fn came(&self) {
        self.arrivals.fetch_add(1, Ordering::Relaxed);
        self.online.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    fn went(&self) {
        self.online.fetch_sub(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    async fn wait_arrivals(&self, timeout: Duration, arrivals: usize) -> anyhow::Result<()> {
        self.until(timeout, |f| f.arrivals() >= arrivals).await
    }

    async fn wait(&self, timeout: Duration, done: impl Fn(usize) -> bool) -> anyhow::Result<()> {
        self.until(timeout, |f| done(f.online())).await
    }

    async fn until(&self, timeout: Duration, done: impl Fn(&Self) -> bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(self) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                anyhow::ensure!(done(self), "timed out after {timeout:?}");
                return Ok(());
            }
        }
    }
}

/// What the bench tells one agent.
#[derive(Debug)]
enum AgentCommand {
    /// Lose the connection abruptly (a reset, as when a network drops).
    Drop,
    /// Come back after this long.
    Return(Duration),
    /// Close the connection politely and stop.
    Leave,
}

/// A workstation's agent reduced to its connection: hello, then online until told otherwise.
struct BenchAgent {
    index: usize,
    url: String,
    /// Its own session store, as each real agent has.
    tls: ResumingClient,
    full_handshakes: bool,
    gate: Arc<Semaphore>,
    fleet: Fleet,
}

impl BenchAgent {
    async fn run(self, mut commands: mpsc::Receiver<AgentCommand>) {
        let mut attempt = 0;
        loop {
            let ws = {
                let Ok(_turn) = self.gate.acquire().await else {
                    return;
                };
                self.hello().await
            };
            let mut ws = match ws {
                Ok(ws) => ws,
                Err(e) => {
                    self.fleet.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(agent = self.index, %e, "bench agent could not connect");
                    let wait = crate::agent::backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        cmd = commands.recv() => match cmd {
                            Some(AgentCommand::Leave) | None => return,
                            Some(_) => continue,
                        },
                    }
                }
            };
            attempt = 0;
            self.fleet.came();
            // Online: reading answers the hub's pings.
            let command = loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break None,
                    },
                    cmd = commands.recv() => break Some(cmd),
                }
            };
            self.fleet.went();
            match command {
                // The hub closed the connection: back as a real agent would be.
                None => {
                    tokio::time::sleep(crate::agent::backoff(0)).await;
                }
                Some(Some(AgentCommand::Drop)) => {
                    // Linger 0: a reset, and no TIME_WAIT holding a loopback port. (Deprecated for
                    // blocking on drop, which a zero linger never does.)
                    #[allow(deprecated)]
                    let _ = ws.get_ref().get_ref().0.set_linger(Some(Duration::ZERO));
                    drop(ws);
                    loop {
                        match commands.recv().await {
                            Some(AgentCommand::Return(after)) => {
                                tokio::time::sleep(after).await;
                                break;
                            }
                            Some(AgentCommand::Leave) | None => return,
                            Some(AgentCommand::Drop) => {}
                        }
                    }
                }
                Some(Some(AgentCommand::Return(_))) => {}
                Some(Some(AgentCommand::Leave) | None) => {
                    let _ = ws.close(None).await;
                    return;
                }
            }
        }
    }

    /// Connect and say hello with the workstation's key, as `agent::connect_once` does.
    async fn hello(&self) -> anyhow::Result<ClientStream> {
        let mut ws = if self.full_handshakes {
            let pin = Pin::Fingerprint(self.tls.fingerprint());
            wire::connect(&self.url, AGENT_PATH, pin).await?.0
        } else {
            wire::connect_resuming(&self.url, AGENT_PATH, &self.tls).await?
        };
        let hello = Request {
            id: 1,
            body: AgentRequest::Hello {
                version: PROTOCOL_VERSION,
                workstation_id: workstation_id(self.index),
                key: AGENT_KEY.into(),
                report: report(self.index),
            },
        };
        wire::send(&mut ws, &hello).await?;
        let reply = tokio::time::timeout(wire::CONNECT_TIMEOUT, async {
            loop {
                if let HubToAgent::Reply { id: 1, result } = wire::recv(&mut ws).await? {
                    return anyhow::Ok(result);
                }
            }
        })
        .await
        .context("no answer to hello")??;
        match reply {
            Ok(AgentReply::Welcome { .. }) => Ok(ws),
            Ok(other) => anyhow::bail!("unexpected answer to hello: {other:?}"),
            Err(e) => anyhow::bail!("hello refused: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn workstation_ids_round_trip() {
        assert_eq!(workstation_index(&workstation_id(19_999)), Some(19_999));
        assert_eq!(workstation_index("ws_other"), None);
    }
}
