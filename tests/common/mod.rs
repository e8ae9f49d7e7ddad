//! Shared test rig: a real hub on 127.0.0.1:0 with real TLS, real agents, technician clients.
#![allow(dead_code)]

pub mod bin;
pub mod peers;
pub mod pty;
pub mod tmux;
pub mod viewer;
pub mod xvnc;

use std::sync::Arc;
use std::time::Duration;

use tether::agent::consent::{Consent, ConsentPolicy};
use tether::agent::policy::Policy;
use tether::agent::{AgentOptions, AgentShared, AgentStatus, ScreenSource};
use tether::client::HubClient;
use tether::hub::store::NewUser;
use tether::hub::{Hub, HubConfig, Limits};
use tether::protocol::{EnrolmentLink, HubEvent, Role};
use tether::tls::{Pin, parse_fingerprint};
use tokio::sync::{mpsc, oneshot, watch};

pub const PASSWORD: &str = "plum tractor violet 7";

pub struct TestHub {
    pub hub: Arc<Hub>,
    pub url: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestHub {
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), Limits::default()).await
    }

    pub async fn start_in(dir: tempfile::TempDir, limits: Limits) -> Self {
        Self::start_clocked(dir, limits, Arc::new(tether::hub::SystemClock)).await
    }

    /// A hub whose time is `clock` (tests step a [`ManualClock`] instead of sleeping).
    pub async fn start_clocked(
        dir: tempfile::TempDir,
        limits: Limits,
        clock: Arc<dyn tether::hub::Clock>,
    ) -> Self {
        Self::start_smtp(dir, limits, clock, None).await
    }

    /// A hub that sends one-time passwords through `smtp` (else into its outbox).
    pub async fn start_smtp(
        dir: tempfile::TempDir,
        limits: Limits,
        clock: Arc<dyn tether::hub::Clock>,
        smtp: Option<tether::hub::otp::SmtpConfig>,
    ) -> Self {
        let config = HubConfig {
            data_dir: dir.path().join("hub"),
            public_addr: None,
            limits,
            smtp,
        };
        let store =
            tether::hub::store::SqliteStore::open_dir(&config.data_dir).expect("open store");
        let hub = Hub::with_store(config, Arc::new(store), clock).expect("open hub");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("wss://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let h = hub.clone();
        let task = tokio::spawn(async move {
            tether::hub::run(h, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("hub run");
        });
        Self {
            hub,
            url,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn pin(&self) -> Pin {
        Pin::Fingerprint(parse_fingerprint(self.hub.fingerprint()).expect("fingerprint"))
    }

    pub async fn add_user(&self, name: &str, role: Role, team: &str) {
        let store = self.hub.store().clone();
        let (name, team) = (name.to_owned(), team.to_owned());
        tokio::task::spawn_blocking(move || {
            let password_hash = tether::secrets::hash_password(PASSWORD).expect("hash");
            store
                .create_user(NewUser {
                    email: format!("{name}@example.com"),
                    name,
                    role,
                    team,
                    password_hash,
                })
                .expect("create user");
        })
        .await
        .expect("join");
    }

    /// A logged-in technician and their live event stream.
    pub async fn console(&self, user: &str) -> (HubClient, mpsc::UnboundedReceiver<HubEvent>) {
        let (client, events) = HubClient::connect(&self.url, self.pin())
            .await
            .expect("connect");
        client.login(user, PASSWORD).await.expect("login");
        (client, events)
    }

    /// Stop the hub and wait for it; returns the data dir so a test can restart on it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("hub stops")
                .expect("hub task");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A real agent running in this process; stopped when dropped.
pub struct TestAgent {
    pub status: watch::Receiver<AgentStatus>,
    /// The agent's shared state: its policy (passcode, unattended state), questions, sessions.
    pub shared: Arc<AgentShared>,
    pub task: tokio::task::JoinHandle<Result<(), tether::agent::AgentError>>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestAgent {
    /// An agent whose end user denies every question (no one is at a test machine).
    pub fn start(data_dir: &std::path::Path, link: Option<EnrolmentLink>, hostname: &str) -> Self {
        Self::start_with(data_dir, link, hostname, ConsentPolicy::Deny)
    }

    /// An agent whose end user answers every question as `consent` says (`Ask`: the test
    /// answers through `shared.consent`).
    pub fn start_with(
        data_dir: &std::path::Path,
        link: Option<EnrolmentLink>,
        hostname: &str,
        consent: ConsentPolicy,
    ) -> Self {
        Self::start_consent(data_dir, link, hostname, Consent::new(consent))
    }

    /// An agent with its own `Consent` (a short timeout, say).
    pub fn start_consent(
        data_dir: &std::path::Path,
        link: Option<EnrolmentLink>,
        hostname: &str,
        consent: Consent,
    ) -> Self {
        Self::start_full(data_dir, link, hostname, consent, ScreenSource::Headless)
    }

    /// An agent with its own `Consent` and screen source.
    pub fn start_full(
        data_dir: &std::path::Path,
        link: Option<EnrolmentLink>,
        hostname: &str,
        consent: Consent,
        screen: ScreenSource,
    ) -> Self {
        Self::start_shell(data_dir, link, hostname, consent, screen, true)
    }

    /// The same, saying whether technicians may open a shell (`--shell on|off`).
    pub fn start_shell(
        data_dir: &std::path::Path,
        link: Option<EnrolmentLink>,
        hostname: &str,
        consent: Consent,
        screen: ScreenSource,
        shell: bool,
    ) -> Self {
        let report = tether::protocol::WorkstationReport {
            hostname: hostname.into(),
            os: "TestOS 1".into(),
            user: "tester".into(),
            screen: screen.size(),
            agent_version: "test".into(),
        };
        let opts = AgentOptions {
            data_dir: data_dir.to_path_buf(),
            link,
            screen,
            report: Some(report),
            shell,
        };
        // With the passcode off (a fresh data dir) loading is quick; when a test turned it on
        // before a restart, loading issues a new one (argon2id), which is fine in a test.
        let policy = Policy::load(data_dir, chrono::Utc::now()).expect("load agent policy");
        let shared = Arc::new(AgentShared::new(data_dir.to_path_buf(), policy, consent));
        let status = shared.status.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tether::agent::run(opts, shared.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            status,
            shared,
            task,
            stop: Some(stop),
        }
    }

    /// Wait until the agent says it is online; returns its workstation id.
    pub async fn online(&mut self) -> String {
        let status = tokio::time::timeout(
            Duration::from_secs(15),
            self.status
                .wait_for(|s| matches!(s, AgentStatus::Online { .. })),
        )
        .await
        .expect("agent online in time")
        .expect("status channel");
        match &*status {
            AgentStatus::Online { workstation_id, .. } => workstation_id.clone(),
            _ => unreachable!(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Wait for the first event matching `pred`, failing after `within`.
pub async fn wait_event<F>(
    events: &mut mpsc::UnboundedReceiver<HubEvent>,
    within: Duration,
    mut pred: F,
) -> HubEvent
where
    F: FnMut(&HubEvent) -> bool,
{
    tokio::time::timeout(within, async {
        loop {
            let e = events.recv().await.expect("event stream open");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("expected event did not arrive in time")
}

/// A clock that moves only when told; timers on it re-plan at each jump.
pub struct ManualClock(
    std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
    watch::Sender<()>,
);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(
            std::sync::Mutex::new(chrono::Utc::now()),
            watch::channel(()).0,
        ))
    }

    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.0.lock().expect("clock");
            *now += chrono::Duration::from_std(by).expect("duration");
        }
        self.1.send_replace(());
    }
}

impl tether::hub::Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().expect("clock")
    }

    fn jumps(&self) -> Option<watch::Receiver<()>> {
        Some(self.1.subscribe())
    }
}

/// Wait until the end user has a question open, then answer it; returns the question.
pub async fn answer_question(shared: &AgentShared, yes: bool) -> String {
    let mut changes = shared.consent.subscribe();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(q) = shared.consent.answer_current(yes) {
                return q.text;
            }
            changes.changed().await.expect("consent alive");
        }
    })
    .await
    .expect("a question was asked in time")
}

/// A new client named `client` and an enrolment link for it.
pub async fn enrolment_link(tech: &HubClient, client: &str) -> EnrolmentLink {
    use tether::protocol::{ConsoleReply, ConsoleRequest};
    let id = match tech
        .request(ConsoleRequest::AddClient {
            name: client.into(),
        })
        .await
        .expect("add")
    {
        ConsoleReply::Client { client } => client.id,
        other => panic!("unexpected {other:?}"),
    };
    match tech
        .request(ConsoleRequest::CreateLink {
            client: id,
            valid_days: None,
        })
        .await
        .expect("link")
    {
        ConsoleReply::Link { url, .. } => url.parse().expect("link"),
        other => panic!("unexpected {other:?}"),
    }
}
