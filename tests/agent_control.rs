//! The agent's local control, through the real binary: `tether agent` running against a real
//! hub, and `tether agent status|grant|deny|revoke|passcode|password` talking to it through its
//! control socket. Every process started here is killed when the test ends, pass or fail.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::TestHub;
use tether::protocol::{ConsoleReply, ConsoleRequest, Role};

use common::bin::{BIN, fails, ok};

/// A running `tether agent`, killed on drop, with its stdout lines on a channel.
struct Agent {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
}

impl Agent {
    fn start(home: &Path, data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("agent")
            .arg("--data")
            .arg(data)
            .args(["--screen", "none"])
            .args(extra)
            .env("TETHER_HOME", home)
            .env_remove("TETHER_LINK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child: Some(child),
            lines,
        }
    }

    /// Wait for a stdout line containing `needle`; returns it.
    fn expect_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("the agent never printed {needle:?}; it printed {seen:#?}"),
            }
        }
    }

    /// Stop it as a service manager would (SIGTERM) and wait for it to exit.
    fn terminate(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the agent exits on SIGTERM")
            .expect("wait");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Run `tether` with `args` (and `stdin`), off the async executor.
async fn tether(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let (home, args, stdin) = (
        home.to_path_buf(),
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
        stdin.map(str::to_owned),
    );
    tokio::task::spawn_blocking(move || run_tether(&home, &args, stdin.as_deref(), None))
        .await
        .expect("join")
}

fn run_tether(home: &Path, args: &[String], stdin: Option<&str>, as_user: Option<u32>) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::bin::run_as(home, &args, stdin, as_user)
}

/// An enrolment link from a real hub.
async fn link(hub: &TestHub) -> String {
    hub.add_user("ann", Role::Admin, "Desk").await;
    let (tech, _events) = hub.console("ann").await;
    let ConsoleReply::Client { client } = tech
        .request(ConsoleRequest::AddClient {
            name: "Acme".into(),
        })
        .await
        .expect("client")
    else {
        panic!("client");
    };
    let ConsoleReply::Link { url, .. } = tech
        .request(ConsoleRequest::CreateLink {
            client: client.id,
            valid_days: None,
        })
        .await
        .expect("link")
    else {
        panic!("link");
    };
    url
}

fn data_arg(data: &Path) -> String {
    data.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_user_controls_the_running_agent() {
    let hub = TestHub::start().await;
    let url = link(&hub).await;
    let home = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = home.path().join("agent-data");
    let d = data_arg(&data);

    // Nothing runs yet: a clear error, not a hang.
    let err = fails(&tether(home.path(), &["agent", "status", "--data", &d], None).await);
    assert!(err.contains("no agent is running with data dir"), "{err}");

    // As if a technician had been granted unattended access before this run.
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("policy.json"), br#"{"unattended":"granted"}"#).expect("policy");

    let agent = Agent::start(home.path(), &data, &["--link", &url, "--consent", "deny"]);
    agent.expect_line("control this agent");
    agent.expect_line("Unattended access granted");
    agent.expect_line("online: workstation");

    // The socket is the owner's alone.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("control.sock"))
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second agent on the same data dir is refused.
    let second = tether(
        home.path(),
        &["agent", "--data", &d, "--screen", "none"],
        None,
    )
    .await;
    let err = fails(&second);
    assert!(err.contains("already running"), "{err}");

    let status = ok(&tether(home.path(), &["agent", "status", "--data", &d], None).await);
    assert!(status.contains("unattended access:  granted"), "{status}");
    assert!(status.contains("temporary passcode: off"), "{status}");
    assert!(status.contains("questions:          deny"), "{status}");

    // Passcode: off until turned on; refresh replaces it.
    let err = fails(
        &tether(
            home.path(),
            &["agent", "passcode", "show", "--data", &d],
            None,
        )
        .await,
    );
    assert!(err.contains("passcode is off"), "{err}");
    let on = ok(&tether(
        home.path(),
        &["agent", "passcode", "on", "--data", &d],
        None,
    )
    .await);
    let first = on
        .split_whitespace()
        .nth(2)
        .expect("passcode in output")
        .to_owned();
    assert_eq!(first.len(), 11, "{on}");
    // Its standard output is a pipe here, as a service's journal: never the code itself.
    let line = agent.expect_line("temporary passcode issued");
    assert!(!line.contains(&first), "{line}");
    let refreshed = ok(&tether(
        home.path(),
        &["agent", "passcode", "refresh", "--data", &d],
        None,
    )
    .await);
    assert!(!refreshed.contains(&first), "{refreshed}");
    let json = ok(&tether(
        home.path(),
        &["agent", "status", "--json", "--data", &d],
        None,
    )
    .await);
    let status: serde_json::Value = serde_json::from_str(&json).expect("status json");
    let second = status["passcode"].as_str().expect("passcode").to_owned();
    assert!(refreshed.contains(&second), "{refreshed} / {second}");
    assert_eq!(status["requires"]["passcode"], true);
    assert_eq!(status["hub"]["state"], "online");
    let stored = std::fs::read_to_string(data.join("policy.json")).expect("policy");
    assert!(!stored.contains(&second.replace('-', "")), "{stored}");

    // Password: at least 8 characters, stored only as argon2id.
    let err = fails(
        &tether(
            home.path(),
            &["agent", "password", "set", "--password-stdin", "--data", &d],
            Some("short\n"),
        )
        .await,
    );
    assert!(err.contains("at least 8"), "{err}");
    ok(&tether(
        home.path(),
        &["agent", "password", "set", "--password-stdin", "--data", &d],
        Some("orchid lantern\n"),
    )
    .await);
    let stored = std::fs::read_to_string(data.join("policy.json")).expect("policy");
    assert!(
        stored.contains("$argon2id$") && !stored.contains("orchid"),
        "{stored}"
    );

    // Nothing to answer with consent=deny.
    let err = fails(&tether(home.path(), &["agent", "grant", "--data", &d], None).await);
    assert!(err.contains("no question is waiting"), "{err}");

    // Revoke: the grant is gone, on disk and on the agent's screen.
    let revoked = ok(&tether(home.path(), &["agent", "revoke", "--data", &d], None).await);
    assert!(revoked.contains("Unattended access revoked"), "{revoked}");
    agent.expect_line("Unattended access revoked");
    let err = fails(&tether(home.path(), &["agent", "revoke", "--data", &d], None).await);
    assert!(err.contains("cannot revoke"), "{err}");
    let stored = std::fs::read_to_string(data.join("policy.json")).expect("policy");
    assert!(stored.contains("\"revoked\""), "{stored}");

    // Stopped cleanly, the agent removes its socket.
    agent.terminate();
    assert!(!data.join("control.sock").exists());
    let err = fails(&tether(home.path(), &["agent", "status", "--data", &d], None).await);
    assert!(err.contains("no agent is running"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_agent_leaves_a_socket_the_next_one_replaces() {
    let hub = TestHub::start().await;
    let url = link(&hub).await;
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("agent-data");
    let d = data_arg(&data);
    let agent = Agent::start(home.path(), &data, &["--link", &url]);
    agent.expect_line("online: workstation");
    drop(agent); // SIGKILL: no clean-up.
    assert!(data.join("control.sock").exists(), "stale socket left");
    let agent = Agent::start(home.path(), &data, &[]);
    agent.expect_line("online: workstation");
    let status = ok(&tether(home.path(), &["agent", "status", "--data", &d], None).await);
    assert!(status.contains("hub link:           online"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused() {
    // Only root can run a process as another user.
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !root {
        println!("skipped: not running as root, so no client can run as another user");
        return;
    }
    let hub = TestHub::start().await;
    let url = link(&hub).await;
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("agent-data");
    let agent = Agent::start(home.path(), &data, &["--link", &url]);
    agent.expect_line("online: workstation");
    const NOBODY: u32 = 65534;
    let args: Vec<String> = ["agent", "status", "--data", &data_arg(&data)]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    let as_nobody = |args: Vec<String>, home: PathBuf| async move {
        tokio::task::spawn_blocking(move || run_tether(&home, &args, None, Some(NOBODY)))
            .await
            .expect("join")
    };

    // The private data dir keeps other users away from the socket...
    let out = as_nobody(args.clone(), home.path().to_path_buf()).await;
    let err = fails(&out);
    assert!(err.contains("another user"), "{err}");

    // ... and even with the file modes opened up, the agent checks who is calling.
    {
        use std::os::unix::fs::PermissionsExt;
        let open = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        open(home.path(), 0o755);
        open(&data, 0o755);
        open(&data.join("control.sock"), 0o666);
    }
    let out = as_nobody(args, home.path().to_path_buf()).await;
    let err = fails(&out);
    assert!(
        err.contains("refused: this agent belongs to another user"),
        "{err}"
    );
    // The owner still gets in.
    let status = ok(&tether(
        home.path(),
        &["agent", "status", "--data", &data_arg(&data)],
        None,
    )
    .await);
    assert!(status.contains("workstation:"), "{status}");
}
