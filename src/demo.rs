//! `tether demo`: a hub on a temporary data dir, three clients with several workstations each
//! served by in-process synthetic agents over real loopback WebSockets (TLS and all), and the
//! console logged in as a demo admin. Some agents drop and come back for 20 to 60 s, so
//! presence changes, but most of the fleet stays online and a workstation with an open session
//! is never taken away. One workstation is headless: its session is a terminal. Quitting the
//! console (or a stop signal) stops everything and removes the temporary directory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::agent::consent::{Consent, ConsentPolicy};
use crate::agent::{AgentOptions, AgentShared, AgentStatus, ScreenSource};
use crate::client::HubClient;
use crate::console::{ConsoleOptions, PresetLogin};
use crate::hub::store::NewUser;
use crate::hub::{Hub, HubConfig};
use crate::paths::Paths;
use crate::protocol::{
    ConsoleReply, ConsoleRequest, EnrolmentLink, Role, ScreenSize, WorkstationReport,
};
use crate::tls::{Pin, parse_fingerprint};

/// A sample workstation: hostname, OS, logged-in user.
type SampleHost = (&'static str, &'static str, &'static str);

/// The sample fleet: client name and its workstations.
const FLEET: &[(&str, &[SampleHost])] = &[
    (
        "Acme Dental",
        &[
            ("reception-01", "Windows 11 Pro", "maria"),
            ("xray-workstation", "Windows 10 LTSC", "radiology"),
            ("dr-chen-laptop", "macOS 15 Sequoia", "lchen"),
            ("billing-02", "Windows 11 Pro", "accounts"),
        ],
    ),
    (
        "Northwind Logistics",
        &[
            ("wh-scanner-gw", "Debian GNU/Linux 12", "svc-scan"),
            ("dispatch-01", "Ubuntu 24.04 LTS", "dispatch"),
            ("fleet-db", "Rocky Linux 9", "postgres"),
            ("ceo-macbook", "macOS 14 Sonoma", "jwalker"),
            ("yard-kiosk", "Ubuntu 22.04 LTS", "kiosk"),
        ],
    ),
    (
        "Globex Research",
        &[
            ("lab-analyzer-3", "Windows 10 Pro", "labtech"),
            ("hpc-login-1", "AlmaLinux 9", "hpcops"),
            ("design-ws", "Fedora 41 Workstation", "ahmed"),
        ],
    ),
];

/// A random number below `n`, for the demo's comings and goings (not a secret).
fn roll(n: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = crate::secrets::random_bytes(&mut b);
    u64::from_le_bytes(b) % n.max(1)
}

/// The headless one of the fleet: a server whose session is a terminal, not a desktop.
const HEADLESS: &str = "fleet-db";

struct DemoAgent {
    opts: AgentOptions,
    /// Its id at the hub, once it has been online.
    workstation: Option<String>,
    /// Kept across restarts, as a real agent keeps its policy on disk.
    shared: Arc<AgentShared>,
    stop: Option<watch::Sender<bool>>,
}

impl DemoAgent {
    fn start(&mut self) -> watch::Receiver<AgentStatus> {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let status_rx = self.shared.status.subscribe();
        let shared = self.shared.clone();
        let opts = self.opts.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::agent::run(opts, shared, shutdown).await {
                tracing::warn!(%e, "demo agent stopped");
            }
        });
        self.stop = Some(stop_tx);
        status_rx
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
    }
}

/// Everything the demo started, so it can all be stopped.
pub struct Demo {
    pub hub_url: String,
    pub fingerprint: String,
    pub token: String,
    /// The demo user's random password (the console fills it in should its login end).
    pub password: String,
    hub_stop: Option<tokio::sync::oneshot::Sender<()>>,
    hub_task: tokio::task::JoinHandle<()>,
    chaos: tokio::task::JoinHandle<()>,
    agents: Arc<tokio::sync::Mutex<Vec<DemoAgent>>>,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Start the hub, the sample data and the fleet. The returned login is the demo admin's.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tether-demo-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let hub = Hub::open(HubConfig {
            data_dir: dir.path().join("hub"),
            ..Default::default()
        })?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on loopback")?;
        let hub_url = format!("wss://{}", listener.local_addr()?);
        let fingerprint = hub.fingerprint().to_owned();
        let (hub_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let hub_task = tokio::spawn({
            let hub = hub.clone();
            async move {
                let _ = crate::hub::run(hub, listener, async {
                    let _ = stopped.await;
                })
                .await;
            }
        });

        // The demo admin, with a random password: the console fills it in on its login form.
        let password = crate::secrets::new_token()?;
        let store = hub.store().clone();
        let pw = password.clone();
        tokio::task::spawn_blocking(move || {
            let password_hash = crate::secrets::hash_password(&pw)?;
            store.create_user(NewUser {
                name: "demo".into(),
                email: "demo@example.com".into(),
                role: Role::Admin,
                team: "Demo support desk".into(),
                password_hash,
            })?;
            anyhow::Ok(())
        })
        .await??;

        // Set up clients and links through the real protocol, as a technician would.
        let pin = Pin::Fingerprint(parse_fingerprint(&fingerprint)?);
        let (tech, _events) = HubClient::connect(&hub_url, pin).await?;
        let (token, _, _) = tech.login("demo", &password).await?;
        let mut agents = Vec::new();
        for (client, hosts) in FLEET {
            let ConsoleReply::Client { client: c } = tech
                .request(ConsoleRequest::AddClient {
                    name: (*client).into(),
                })
                .await?
            else {
                anyhow::bail!("unexpected answer adding a client");
            };
            let ConsoleReply::Link { url, .. } = tech
                .request(ConsoleRequest::CreateLink {
                    client: c.id,
                    valid_days: None,
                })
                .await?
            else {
                anyhow::bail!("unexpected answer creating a link");
            };
            let link: EnrolmentLink = url.parse()?;
            for (i, (host, os, user)) in hosts.iter().enumerate() {
                let (width, height) = [(1920, 1080), (2560, 1440), (1366, 768)][i % 3];
                let headless = *host == HEADLESS;
                let report = WorkstationReport {
                    hostname: (*host).into(),
                    os: (*os).into(),
                    user: (*user).into(),
                    screen: (!headless).then_some(ScreenSize { width, height }),
                    agent_version: env!("CARGO_PKG_VERSION").into(),
                };
                let data_dir = dir.path().join("agents").join(host);
                // Nobody sits at the demo's machines: they accept every technician.
                let shared =
                    AgentShared::open(&data_dir, Consent::new(ConsentPolicy::Accept)).await?;
                let opts = AgentOptions {
                    data_dir,
                    link: Some(link.clone()),
                    screen: if headless {
                        ScreenSource::Terminal
                    } else {
                        ScreenSource::Synthetic {
                            width,
                            height,
                            seed: i as u64,
                        }
                    },
                    shell: true,
                    report: Some(report),
                };
                agents.push(DemoAgent {
                    opts,
                    workstation: None,
                    shared,
                    stop: None,
                });
            }
        }
        // Every machine enrols; then a few go offline at once, so the list shows every state.
        let count = agents.len();
        let mut statuses = Vec::new();
        for agent in &mut agents {
            statuses.push(agent.start());
        }
        let mut ids = Vec::new();
        for (agent, mut status) in agents.iter_mut().zip(statuses) {
            let online = status.wait_for(|s| matches!(s, AgentStatus::Online { .. }));
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(10), online).await
                && let AgentStatus::Online { workstation_id, .. } = &*s
            {
                ids.push(workstation_id.clone());
                agent.workstation = Some(workstation_id.clone());
            }
        }
        // Some machines grant unattended access (their simulated end users say yes), the rest
        // are attended: connecting asks, and is accepted.
        for id in ids.iter().step_by(3) {
            let _ = tech
                .request(ConsoleRequest::RequestAccess {
                    workstation: id.clone(),
                })
                .await;
        }
        drop(tech);
        let mut churn = Churn::new(count);
        for i in (0..count).filter(|i| i % 5 == 4) {
            if let Some(agent) = agents.get_mut(i) {
                agent.stop();
                churn.went_offline(i, Duration::ZERO, &mut roll);
            }
        }
        let agents = Arc::new(tokio::sync::Mutex::new(agents));
        let chaos = tokio::spawn(comings_and_goings(agents.clone(), hub.clone(), churn));
        Ok(Self {
            hub_url,
            fingerprint,
            token,
            password,
            hub_stop: Some(hub_stop),
            hub_task,
            chaos,
            agents,
            _dir: dir,
        })
    }

    /// Stop the fleet and the hub, and wait for the hub to close.
    pub async fn stop(mut self) {
        self.chaos.abort();
        for agent in self.agents.lock().await.iter_mut() {
            agent.stop();
        }
        if let Some(stop) = self.hub_stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(6), &mut self.hub_task).await;
    }
}

/// Each second, the churn's step: spells that ended come back, and now and then one more
/// machine goes offline (never one with an open session).
async fn comings_and_goings(
    agents: Arc<tokio::sync::Mutex<Vec<DemoAgent>>>,
    hub: Arc<Hub>,
    mut churn: Churn,
) {
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let in_session = hub.workstations_in_session();
        let mut agents = agents.lock().await;
        let busy: Vec<bool> = agents
            .iter()
            .map(|a| {
                a.workstation
                    .as_ref()
                    .is_some_and(|w| in_session.contains(w))
            })
            .collect();
        for change in churn.step(start.elapsed(), &busy, &mut roll) {
            let Some(agent) = agents.get_mut(change.agent) else {
                continue;
            };
            if change.online {
                let _ = agent.start();
            } else {
                agent.stop();
            }
        }
    }
}

/// The demo's comings and goings as rules over a given time and dice, so a test steps them.
#[derive(Debug)]
struct Churn {
    /// Per agent: offline until this time since the start, or online (`None`).
    offline_until: Vec<Option<Duration>>,
    /// When the next machine may go offline.
    next_drop: Duration,
}

/// One agent to start (`online`) or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    agent: usize,
    online: bool,
}

impl Churn {
    /// An offline spell lasts this long, plus up to [`Self::SPELL_SPREAD_SECS`].
    const SPELL_SECS: u64 = 20;
    const SPELL_SPREAD_SECS: u64 = 40;
    /// Between one machine going offline and the next: this, plus up to the spread.
    const GAP_SECS: u64 = 8;
    const GAP_SPREAD_SECS: u64 = 12;

    fn new(count: usize) -> Self {
        Self {
            offline_until: vec![None; count],
            next_drop: Duration::from_secs(Self::GAP_SECS),
        }
    }

    /// At most a quarter of the fleet is offline at once (at least one may be).
    fn max_offline(&self) -> usize {
        (self.offline_until.len() / 4).max(1)
    }

    fn went_offline(&mut self, agent: usize, now: Duration, roll: &mut impl FnMut(u64) -> u64) {
        let spell = Self::SPELL_SECS + roll(Self::SPELL_SPREAD_SECS + 1);
        if let Some(slot) = self.offline_until.get_mut(agent) {
            *slot = Some(now + Duration::from_secs(spell));
        }
    }

    /// What changes at `now`, given which agents have an open session (`busy`).
    fn step(
        &mut self,
        now: Duration,
        busy: &[bool],
        roll: &mut impl FnMut(u64) -> u64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (agent, slot) in self.offline_until.iter_mut().enumerate() {
            if slot.is_some_and(|until| until <= now) {
                *slot = None;
                changes.push(Change {
                    agent,
                    online: true,
                });
            }
        }
        let offline = self.offline_until.iter().filter(|s| s.is_some()).count();
        if now >= self.next_drop && offline < self.max_offline() {
            let candidates: Vec<usize> = (0..self.offline_until.len())
                .filter(|&i| {
                    self.offline_until[i].is_none() && !busy.get(i).copied().unwrap_or(false)
                })
                .filter(|&i| !changes.iter().any(|c| c.agent == i))
                .collect();
            if !candidates.is_empty() {
                let pick = usize::try_from(roll(candidates.len() as u64)).unwrap_or(0);
                if let Some(&agent) = candidates.get(pick) {
                    self.went_offline(agent, now, roll);
                    changes.push(Change {
                        agent,
                        online: false,
                    });
                }
            }
            self.next_drop =
                now + Duration::from_secs(Self::GAP_SECS + roll(Self::GAP_SPREAD_SECS + 1));
        }
        changes
    }
}

/// Run the demo with its console in this terminal.
pub async fn run(
    paths: Paths,
    theme: Option<String>,
    render: Option<crate::render::RenderOverride>,
) -> anyhow::Result<()> {
    let _log = crate::logging::to_file(&paths.logs(), "demo");
    // Listening from the start: a stop while the fleet starts still removes the temporary
    // data (dropping the start drops its directory); the console listens for itself.
    let mut signals = crate::signals::listen();
    let demo = tokio::select! {
        demo = Demo::start() => demo?,
        signal = crate::signals::stop_requested(signals.as_mut()) => {
            tracing::info!(signal = signal.name(), "demo stopped while starting");
            return Ok(());
        }
    };
    let preset = PresetLogin {
        hub: demo.hub_url.clone(),
        fingerprint: demo.fingerprint.clone(),
        token: demo.token.clone(),
        password: Some(crate::protocol::Secret::new(demo.password.as_str())),
    };
    let result = crate::console::run(ConsoleOptions {
        paths,
        hub: Some(demo.hub_url.clone()),
        preset: Some(preset),
        theme,
        render,
    })
    .await;
    demo.stop().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic dice: a below `n`, from a xorshift sequence.
    fn dice(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut x = seed;
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n.max(1)
        }
    }

    #[test]
    fn churn_keeps_most_of_the_fleet_online_and_never_takes_a_viewed_machine() {
        for seed in [1u64, 7, 0x9e37_79b9_7f4a_7c15] {
            let mut roll = dice(seed);
            let mut churn = Churn::new(12);
            let mut online = [true; 12];
            let mut went_offline_at = [None::<u64>; 12];
            let mut drops = 0;
            // Workstations 0 and 5 have sessions open; 5's ends after three minutes.
            for second in 0..=360u64 {
                let busy: Vec<bool> = (0..12)
                    .map(|i| i == 0 || (i == 5 && second < 180))
                    .collect();
                for c in churn.step(Duration::from_secs(second), &busy, &mut roll) {
                    assert_ne!(online[c.agent], c.online, "a change changes something");
                    online[c.agent] = c.online;
                    if c.online {
                        let since = went_offline_at[c.agent].take().unwrap_or(0);
                        assert!(
                            (20..=60).contains(&(second - since)),
                            "an offline spell lasts 20 to 60 s, not {}",
                            second - since
                        );
                    } else {
                        assert!(!busy[c.agent], "seed {seed}: {} was viewed", c.agent);
                        went_offline_at[c.agent] = Some(second);
                        drops += 1;
                    }
                }
                let up = online.iter().filter(|o| **o).count();
                assert!(up >= 9, "seed {seed}, {second} s: only {up} of 12 online");
            }
            assert!(online[0], "the viewed workstation stayed online");
            // The list still shows comings and goings: about one every 14 s.
            assert!(drops >= 10, "seed {seed}: {drops} drops in 6 minutes");
        }
    }

    #[test]
    fn machines_offline_at_the_start_come_back() {
        let mut roll = dice(3);
        let mut churn = Churn::new(12);
        churn.went_offline(4, Duration::ZERO, &mut roll);
        churn.went_offline(9, Duration::ZERO, &mut roll);
        let mut back = Vec::new();
        for second in 0..=60u64 {
            back.extend(
                churn
                    .step(Duration::from_secs(second), &[false; 12], &mut roll)
                    .into_iter()
                    .filter(|c| c.online && (c.agent == 4 || c.agent == 9)),
            );
        }
        assert_eq!(back.len(), 2, "both back within 60 s: {back:?}");
    }
}
