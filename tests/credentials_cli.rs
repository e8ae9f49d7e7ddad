//! `tether ctl credentials` and `tether login --guest` through the real binary, end to end:
//! a hub process, a technician, an agent process and a guest with their own home.
//! Every process started here is killed when the test ends, pass or fail.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::bin::{BIN, HubProcess, Running, create_admin, fails, login, ok, run as tether};

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("json")
}

fn guest_login(home: &std::path::Path, hub: &HubProcess, reveal: &serde_json::Value) -> Output {
    guest_login_with(home, hub, reveal, &[])
}

fn guest_login_with(
    home: &std::path::Path,
    hub: &HubProcess,
    reveal: &serde_json::Value,
    extra: &[&str],
) -> Output {
    let field = |k: &str| reveal[k].as_str().expect(k).to_owned();
    let (user, code, url) = (field("user"), field("code"), field("hub"));
    let mut args = vec![
        "login",
        "--guest",
        "--hub",
        &url,
        "--user",
        &user,
        "--code",
        &code,
        "--password-stdin",
        "--fingerprint",
        &hub.fingerprint,
    ];
    args.extend_from_slice(extra);
    tether(home, &args, Some(&format!("{}\n", field("password"))))
}

#[test]
fn credentials_verbs_and_guest_login_end_to_end() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    create_admin(home.path(), &data, "ann");
    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    let h = home.path();
    // A technician's login with --json: who, on which hub, until when; the token stays stored.
    let me = json(&tether(
        h,
        &[
            "login",
            "--json",
            "--hub",
            &hub.url(),
            "--user",
            "ann",
            "--password-stdin",
            "--fingerprint",
            &hub.fingerprint,
        ],
        Some(&format!("{}\n", common::PASSWORD)),
    ));
    assert_eq!(me["user"]["name"], "ann");
    assert_eq!(me["id"], me["user"]["id"]);
    assert!(me["guest"].is_null() && me["expires_at"].is_string());
    assert!(me.get("token").is_none(), "{me}");
    login(home.path(), &hub, "ann");

    ok(&tether(h, &["ctl", "clients", "add", "Acme"], None));
    ok(&tether(h, &["ctl", "clients", "add", "Other"], None));
    let link = json(&tether(
        h,
        &["ctl", "--json", "clients", "link", "Acme"],
        None,
    ));
    let url = link["url"].as_str().expect("url").to_owned();
    let agent_home = tempfile::tempdir().expect("tempdir");
    let _agent = Running(
        Command::new(BIN)
            .args(["agent", "--screen", "synthetic:640x480", "--link", &url])
            .env("TETHER_HOME", agent_home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let ws = loop {
        let list = json(&tether(h, &["ctl", "--json", "workstations", "list"], None));
        if let Some(w) = list
            .as_array()
            .and_then(|a| a.iter().find(|w| w["presence"] == "online"))
        {
            break w["id"].as_str().expect("id").to_owned();
        }
        assert!(Instant::now() < deadline, "agent never came online");
        std::thread::sleep(Duration::from_millis(200));
    };

    // Issue: the reveal-once block, as JSON.
    let issued = json(&tether(
        h,
        &[
            "ctl",
            "--json",
            "credentials",
            "issue",
            &ws,
            "--duration",
            "8h",
            "--scope",
            "view",
        ],
        None,
    ));
    let id = issued["id"].as_str().expect("id").to_owned();
    let reveal = issued["reveal"].clone();
    assert!(reveal["password"].as_str().expect("password").len() >= 16);
    assert_eq!(reveal["code"].as_str().expect("code").len(), 6);
    assert_eq!(reveal["hub"], hub.url());
    assert_eq!(issued["credential"]["scopes"]["control"], false);

    // Asking again: already active, with the time left; exit code 1.
    let again = tether(
        h,
        &["ctl", "credentials", "issue", &ws, "--duration", "1h"],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already active and will expire in 8 hours") && err.contains(&id),
        "{err}"
    );
    // A bad duration is a usage error.
    let bad = tether(
        h,
        &["ctl", "credentials", "issue", &ws, "--duration", "8d"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));

    let list = json(&tether(h, &["ctl", "--json", "credentials", "list"], None));
    let listed = list
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(listed["state"], "active");
    assert!(listed.get("password").is_none(), "never shown again");
    let table = ok(&tether(h, &["ctl", "credentials", "list"], None));
    assert!(
        table.starts_with("ID") && table.contains("view only"),
        "{table}"
    );

    // The guest logs in with their own home and sees only the target.
    let guest_home = tempfile::tempdir().expect("tempdir");
    let g = guest_home.path();
    let out = ok(&guest_login(g, &hub, &reveal));
    assert!(out.contains("as guest"), "{out}");
    let seen = json(&tether(g, &["ctl", "--json", "workstations", "list"], None));
    assert_eq!(seen.as_array().map(Vec::len), Some(1));
    assert_eq!(seen[0]["id"], ws.as_str());
    let clients = json(&tether(g, &["ctl", "--json", "clients", "list"], None));
    assert_eq!(clients.as_array().map(Vec::len), Some(1));
    assert_eq!(clients[0]["name"], "Acme");
    let refused = fails(&tether(g, &["ctl", "clients", "add", "Mine"], None));
    assert!(refused.contains("not allowed"), "{refused}");
    let session = json(&tether(g, &["ctl", "--json", "connect", &ws], None));
    assert_eq!(session["method"], "support_credentials");
    assert_eq!(session["view_only"], true);
    // A wrong code is refused like a wrong password.
    let mut wrong = reveal.clone();
    wrong["code"] = if reveal["code"] == "000000" {
        "111111"
    } else {
        "000000"
    }
    .into();
    let e = fails(&guest_login(
        tempfile::tempdir().expect("t").path(),
        &hub,
        &wrong,
    ));
    assert!(
        e.contains("invalid user name, password or security code"),
        "{e}"
    );

    // Regenerate: new credentials; the old login and password stop working.
    let regenerated = json(&tether(
        h,
        &["ctl", "--json", "credentials", "regenerate", &id],
        None,
    ));
    let new_id = regenerated["id"].as_str().expect("id").to_owned();
    assert_ne!(new_id, id);
    assert_ne!(regenerated["reveal"]["password"], reveal["password"]);
    let out = tether(g, &["ctl", "workstations", "list"], None);
    assert_eq!(out.status.code(), Some(3), "the guest's token was revoked");
    assert!(!guest_login(g, &hub, &reveal).status.success());
    // With --json: the guest, the target and scopes, the expiry; never the token.
    let logged = json(&guest_login_with(
        g,
        &hub,
        &regenerated["reveal"],
        &["--json"],
    ));
    assert_eq!(logged["id"], logged["user"]["id"]);
    assert_eq!(logged["user"]["name"], regenerated["reveal"]["user"]);
    assert_eq!(logged["guest"]["credential"], new_id.as_str());
    assert_eq!(logged["guest"]["scopes"]["control"], false);
    assert_eq!(logged["hub"], hub.url());
    assert_eq!(logged["fingerprint"], hub.fingerprint.as_str());
    assert!(logged["expires_at"].is_string());
    assert!(logged.get("token").is_none(), "{logged}");
    let seen = json(&tether(g, &["ctl", "--json", "workstations", "list"], None));
    assert_eq!(seen[0]["id"], ws.as_str(), "the JSON login was stored");

    // Revoke, in words.
    let out = ok(&tether(h, &["ctl", "credentials", "revoke", &new_id], None));
    assert!(out.contains("revoked support credentials"), "{out}");
    let out = tether(g, &["ctl", "workstations", "list"], None);
    assert_eq!(out.status.code(), Some(3));

    // All of a client's workstations, control with chat and history, printed for people.
    let out = tether(
        h,
        &[
            "ctl",
            "credentials",
            "issue",
            "--client",
            "Acme",
            "--duration",
            "90m",
            "--scope",
            "control",
            "--chat",
            "--history",
        ],
        None,
    );
    let block = ok(&out);
    for field in [
        "Hub:",
        "User name: guest-",
        "Password:",
        "Security code:",
        "Expires:",
    ] {
        assert!(block.contains(field), "{field} in {block}");
    }

    let audit = json(&tether(
        h,
        &["ctl", "--json", "audit", "list", "--limit", "200"],
        None,
    ));
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "credentials.issue",
        "credentials.use",
        "credentials.revoke",
        "session.start",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    ok(&tether(
        h,
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
