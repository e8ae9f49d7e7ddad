//! `tether demo`: a hub on a temporary data dir, three clients with several workstations each
//! served by in-process synthetic agents over real loopback WebSockets (TLS and all), and the
//! console logged in as a demo admin. Some agents drop and come back, so presence changes.
//! Quitting the console stops everything and removes the temporary directory.

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

struct DemoAgent {
    opts: AgentOptions,
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
                let report = WorkstationReport {
                    hostname: (*host).into(),
                    os: (*os).into(),
                    user: (*user).into(),
                    screen: Some(ScreenSize { width, height }),
                    agent_version: env!("CARGO_PKG_VERSION").into(),
                };
                let data_dir = dir.path().join("agents").join(host);
                // Nobody sits at the demo's machines: they accept every technician.
                let shared =
                    AgentShared::open(&data_dir, Consent::new(ConsentPolicy::Accept)).await?;
                let opts = AgentOptions {
                    data_dir,
                    link: Some(link.clone()),
                    screen: ScreenSource::Synthetic {
                        width,
                        height,
                        seed: i as u64,
                    },
                    shell: true,
                    report: Some(report),
                };
                agents.push(DemoAgent {
                    opts,
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
        for mut status in statuses {
            let online = status.wait_for(|s| matches!(s, AgentStatus::Online { .. }));
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(10), online).await
                && let AgentStatus::Online { workstation_id, .. } = &*s
            {
                ids.push(workstation_id.clone());
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
        for (i, agent) in agents.iter_mut().enumerate() {
            if i % 5 == 4 {
                agent.stop();
            }
        }
        let agents = Arc::new(tokio::sync::Mutex::new(agents));
        let chaos = tokio::spawn(comings_and_goings(agents.clone(), count));
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

/// Every few seconds one agent drops off or comes back.
async fn comings_and_goings(agents: Arc<tokio::sync::Mutex<Vec<DemoAgent>>>, count: usize) {
    loop {
        tokio::time::sleep(Duration::from_millis(2500 + roll(4000))).await;
        let mut agents = agents.lock().await;
        let i = usize::try_from(roll(count as u64)).unwrap_or(0);
        if let Some(agent) = agents.get_mut(i) {
            if agent.stop.is_some() {
                agent.stop();
            } else {
                let _ = agent.start();
            }
        }
    }
}

/// Run the demo with its console in this terminal.
pub async fn run(
    paths: Paths,
    theme: Option<String>,
    render: Option<crate::render::RenderOverride>,
) -> anyhow::Result<()> {
    let _log = crate::logging::to_file(&paths.logs(), "demo");
    let demo = Demo::start().await?;
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
