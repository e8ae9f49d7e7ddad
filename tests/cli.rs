//! The real binary, as an operator uses it: `hub`, `admin create-user`, `login`, `ctl`, `agent`.
//! Every process started here is killed when the test ends, pass or fail.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::PASSWORD;
use common::bin::{BIN, HubProcess, Running, create_admin, login, ok, run as tether};

#[test]
fn operator_flow_from_first_user_to_enrolled_agent() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");

    let out = tether(
        home.path(),
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "create-user",
            "ann",
            "--role",
            "admin",
            "--team",
            "Desk",
            "--email",
            "ann@example.com",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok(&out).contains("created admin ann"));
    // Weak passwords are refused with a reason.
    let weak = tether(
        home.path(),
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "create-user",
            "bob",
            "--role",
            "technician",
            "--team",
            "Desk",
            "--email",
            "b@example.com",
            "--password-stdin",
        ],
        Some("password1234\n"),
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("commonly used"));

    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    let (addr, hub_url, fingerprint) = (hub.addr.clone(), hub.url(), hub.fingerprint.clone());

    // Not logged in yet: exit code 3.
    let out = tether(home.path(), &["ctl", "clients", "list"], None);
    assert_eq!(out.status.code(), Some(3));
    // An unknown certificate needs a decision.
    let out = tether(
        home.path(),
        &[
            "login",
            "--hub",
            &hub_url,
            "--user",
            "ann",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fingerprint"));
    // A wrong fingerprint is refused.
    let wrong = format!("SHA256:{}", "00".repeat(32));
    let out = tether(
        home.path(),
        &[
            "login",
            "--hub",
            &hub_url,
            "--user",
            "ann",
            "--password-stdin",
            "--fingerprint",
            &wrong,
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may be an attack"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The fingerprint file's exact form is accepted.
    let out = tether(
        home.path(),
        &[
            "login",
            "--hub",
            &hub_url,
            "--user",
            "ann",
            "--password-stdin",
            "--fingerprint",
            fingerprint.trim(),
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok(&out).contains("logged in"));

    let out = tether(
        home.path(),
        &["ctl", "--json", "clients", "add", "Acme Dental"],
        None,
    );
    let client: serde_json::Value = serde_json::from_str(&ok(&out)).expect("json");
    let client_id = client["id"].as_str().expect("id").to_owned();
    let out = tether(
        home.path(),
        &["ctl", "--json", "clients", "link", "Acme Dental"],
        None,
    );
    let link: serde_json::Value = serde_json::from_str(&ok(&out)).expect("json");
    let url = link["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&format!("tether://{addr}/enrol/")), "{url}");
    assert!(link["id"].as_str().is_some());

    let agent_home = tempfile::tempdir().expect("tempdir");
    let _agent = Running(
        Command::new(BIN)
            .args(["agent", "--screen", "synthetic:1024x768", "--link", &url])
            .env("TETHER_HOME", agent_home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    // Wait (bounded) for the workstation to be listed online.
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let out = tether(
            home.path(),
            &[
                "ctl",
                "--json",
                "workstations",
                "list",
                "--client",
                &client_id,
            ],
            None,
        );
        let list: serde_json::Value = serde_json::from_str(&ok(&out)).expect("json");
        if list
            .as_array()
            .is_some_and(|a| a.iter().any(|w| w["presence"] == "online"))
        {
            break list;
        }
        assert!(Instant::now() < deadline, "agent never came online: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(listed[0]["screen"]["width"], 1024);
    assert!(
        listed[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ws_"))
    );
    // The hub lists the agent online as it sends the key; the agent saves it a moment later.
    let identity = agent_home.path().join("data/agent/identity.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !identity.exists() {
        assert!(
            Instant::now() < deadline,
            "the agent keeps its key under TETHER_HOME"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let table = ok(&tether(home.path(), &["ctl", "workstations", "list"], None));
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("online") && table.contains("Acme Dental"),
        "{table}"
    );
    let audit: serde_json::Value = serde_json::from_str(&ok(&tether(
        home.path(),
        &["ctl", "--json", "audit", "list", "--limit", "50"],
        None,
    )))
    .expect("json");
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"workstation.enrol") && actions.contains(&"client.add"),
        "{actions:?}"
    );
    ok(&tether(
        home.path(),
        &[
            "admin",
            "--data",
            data.to_str().expect("utf8"),
            "audit",
            "verify",
        ],
        None,
    ));
}

#[test]
fn every_subcommand_has_help() {
    for cmd in ["hub", "agent", "console", "demo", "admin", "login", "ctl"] {
        let out = Command::new(BIN)
            .args([cmd, "--help"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd}"
        );
    }
}

/// Run `f` until it returns `Some`, polling; fail after `within` with `what`.
fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[test]
fn workstation_secrets_never_reach_the_hub_store_logs_or_audit() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    create_admin(home.path(), &data, "ann");
    // The hub logs everything it can (debug) to a file we then search.
    let hub_log = home.path().join("hub.log");
    let log_file = std::fs::File::create(&hub_log).expect("log file");
    let hub = HubProcess::start(
        home.path(),
        &data,
        &[("TETHER_LOG", "debug")],
        Stdio::from(log_file),
    );
    login(home.path(), &hub, "ann");
    ok(&tether(
        home.path(),
        &["ctl", "clients", "add", "Acme"],
        None,
    ));
    let url = ok(&tether(
        home.path(),
        &["ctl", "clients", "link", "Acme"],
        None,
    ))
    .trim()
    .to_owned();

    let agent_home = tempfile::tempdir().expect("tempdir");
    let agent_data = agent_home.path().join("agent");
    let agent_arg = agent_data.to_str().expect("utf8");
    let _agent = Running(
        Command::new(BIN)
            .args([
                "agent",
                "--screen",
                "none",
                "--consent",
                "accept",
                "--data",
                agent_arg,
                "--link",
                &url,
            ])
            .env("TETHER_HOME", agent_home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let ws = eventually("the agent online", Duration::from_secs(30), || {
        let out = tether(
            home.path(),
            &["ctl", "--json", "workstations", "list"],
            None,
        );
        let list: serde_json::Value = serde_json::from_str(&ok(&out)).ok()?;
        list.as_array()?
            .iter()
            .find(|w| w["presence"] == "online")
            .map(|w| w["id"].as_str().unwrap_or_default().to_owned())
    });
    let agent = |args: &[&str], stdin: Option<&str>| {
        let mut all = args.to_vec();
        all.extend(["--data", agent_arg]);
        tether(agent_home.path(), &all, stdin)
    };
    // The control socket answers only once the agent is up: wait for it.
    eventually(
        "the agent's control socket",
        Duration::from_secs(10),
        || {
            agent(&["agent", "status"], None)
                .status
                .success()
                .then_some(())
        },
    );
    ok(&agent(&["agent", "passcode", "on"], None));
    let secret_password = "Kangaroo-Velvet-42";
    ok(&agent(
        &["agent", "password", "set", "--password-stdin"],
        Some(&format!("{secret_password}\n")),
    ));
    let shown = ok(&agent(&["agent", "passcode", "show"], None));
    let passcode = shown
        .split_whitespace()
        .find(|w| w.len() == 11 && w.chars().filter(|c| *c == '-').count() == 2)
        .unwrap_or_else(|| panic!("a passcode in {shown:?}"))
        .to_owned();

    // Both secrets work through `ctl connect`; a wrong one is refused.
    eventually(
        "the hub to know the workstation requires secrets",
        Duration::from_secs(10),
        || {
            let out = tether(
                home.path(),
                &["ctl", "--json", "workstations", "list"],
                None,
            );
            let list: serde_json::Value = serde_json::from_str(&ok(&out)).ok()?;
            list.as_array()?
                .iter()
                .any(|w| w["requires"]["passcode"] == true && w["requires"]["password"] == true)
                .then_some(())
        },
    );
    for secret in [passcode.as_str(), secret_password] {
        let out = tether(
            home.path(),
            &["ctl", "--json", "connect", &ws, "--secret-stdin"],
            Some(&format!("{secret}\n")),
        );
        let session: serde_json::Value = serde_json::from_str(&ok(&out)).expect("json");
        let id = session["id"].as_str().expect("session id");
        ok(&tether(home.path(), &["ctl", "sessions", "end", id], None));
    }
    let wrong = tether(
        home.path(),
        &["ctl", "connect", &ws, "--secret-stdin"],
        Some("WRONG-WRONG\n"),
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let audit = ok(&tether(
        home.path(),
        &["ctl", "--json", "audit", "list", "--limit", "500"],
        None,
    ));
    assert!(
        audit.contains("session.start") && audit.contains("connect.refused"),
        "{audit}"
    );

    // Neither secret (in any form) is in anything the hub wrote.
    let bare = passcode.replace('-', "");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&data)
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.push(hub_log);
    let mut searched = 0;
    for file in files.iter().filter(|f| f.is_file()) {
        let bytes = std::fs::read(file).expect("read");
        searched += bytes.len();
        for needle in [passcode.as_str(), bare.as_str(), secret_password] {
            assert!(
                !contains(&bytes, needle),
                "{needle} found in {}",
                file.display()
            );
        }
    }
    assert!(
        searched > 10_000,
        "the database and the log were searched ({searched} bytes)"
    );
    assert!(!contains(audit.as_bytes(), &bare) && !contains(audit.as_bytes(), secret_password));
}

#[test]
fn a_bad_render_mode_is_refused_with_the_choices() {
    let home = tempfile::tempdir().expect("tempdir");
    for args in [
        &["console", "--render", "braille"][..],
        &["demo", "--render", "braille"][..],
    ] {
        let out = tether(home.path(), args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("unknown render mode") && err.contains("sixel, kitty"),
            "{err}"
        );
    }
}

/// The hub refuses to start on a sealing key others may read, and says how to fix it.
#[cfg(unix)]
#[test]
fn the_hub_refuses_a_seal_key_others_may_read() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    drop(HubProcess::start(home.path(), &data, &[], Stdio::null()));
    let key = data.join("seal.key");
    let mode = std::fs::metadata(&key)
        .expect("seal.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let child = Command::new(BIN)
        .args(["hub", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("TETHER_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hub");
    let mut hub = Running(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = hub.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the hub started on a loose key");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut hub.0.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("seal.key") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}
