//! The console end to end in tmux, for what only a real terminal shows: a session that drops
//! while you type, and 2FA enrolment through to the next login.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::bin::BIN;
use common::tmux::{Tmux, shell_quote};

/// `tether ARGS`, asserted to succeed; its standard output.
fn tether(home: &Path, args: &[&str]) -> String {
    common::bin::ok(&common::bin::run(home, args, None))
}

#[test]
fn a_dropped_session_swallows_what_is_typed_next_until_dismissed() {
    let test = "a_dropped_session_swallows_what_is_typed_next_until_dismissed";
    if !common::peers::available("tmux", test) {
        return;
    }
    let tech = tempfile::tempdir().expect("tempdir");
    let agent_home = tempfile::tempdir().expect("tempdir");
    let data = tech.path().join("hubdata");
    common::bin::create_admin(tech.path(), &data, "ann");
    let hub = common::bin::HubProcess::start(tech.path(), &data, &[], Stdio::null());
    common::bin::login(tech.path(), &hub, "ann");
    tether(tech.path(), &["ctl", "clients", "add", "Servers"]);
    let link = tether(tech.path(), &["ctl", "clients", "link", "Servers"])
        .trim()
        .to_owned();
    let links = |home: &Path| -> usize {
        let out = tether(home, &["ctl", "--json", "clients", "links", "Servers"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .expect("json")
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(links(tech.path()), 1);
    // A headless agent that accepts by itself: its shell is the session.
    let agent = common::bin::Running(
        Command::new(BIN)
            .args(["agent", "--screen", "none", "--consent", "accept"])
            .args(["--link", &link])
            .env("TETHER_HOME", agent_home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let console_cmd = format!(
        "TETHER_HOME={} {} console; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(tech.path()),
        shell_quote(Path::new(BIN))
    );
    let tmux = Tmux::start("drop", 80, 24, &console_cmd);
    tmux.wait_for("the agent online", Duration::from_secs(30), |s| {
        s.contains("1/1 online")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the shell", Duration::from_secs(30), |s| {
        s.lines()
            .last()
            .is_some_and(|bar| bar.contains("Ctrl-] menu"))
    });

    // The agent stops: the viewer stays and says so.
    drop(agent);
    tmux.wait_for("the session ended", Duration::from_secs(30), |s| {
        s.contains("Session ended") && s.contains("Enter back to list")
    });
    // Typing meant for the remote: `l` used to issue a link, `q` to quit.
    tmux.keys(&["-l", "ls -la; q"]);
    tmux.keys(&["C-]", "C-c"]);
    // A resize after the keys: once it is drawn, the console has handled every key before it.
    tmux.run(&["resize-window", "-t", "t:0", "-x", "100", "-y", "30"]);
    let screen = tmux.wait_for("the resize drawn", Duration::from_secs(10), |s| {
        s.lines()
            .last()
            .is_some_and(|bar| bar.trim_end().chars().count() > 80)
    });
    assert!(screen.contains("Session ended"), "{screen}");
    assert!(!screen.contains("Enrolment link"), "{screen}");
    assert!(!screen.contains("TETHER-EXITED"), "{screen}");
    assert_eq!(links(tech.path()), 1, "no link was issued");

    // Enter dismisses it: the list, saying why.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the list again", Duration::from_secs(10), |s| {
        s.contains("Workstations") && s.contains("Your session on") && !s.contains("Session ended")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("TETHER-EXITED-")
    });
    assert!(screen.contains("TETHER-EXITED-0"), "{screen}");
    assert_eq!(links(tech.path()), 1);
}

/// The base32 key the enrolment dialog shows in groups of four, right of the QR code: read
/// from the dialog's own column (between its borders, so text of the screen beside it is not).
fn shown_key(screen: &str) -> Option<String> {
    let mut key = String::new();
    let mut reading = false;
    for line in screen.lines() {
        // `│ screen │ dialog │ screen │`: the dialog's text, without the QR code's blocks.
        let inside = line.split('│').nth(2).unwrap_or_default();
        let text: String = inside.chars().filter(char::is_ascii).collect();
        let text = text.trim();
        let group = |w: &str| w.len() <= 4 && w.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7'));
        if reading {
            if !text.is_empty() && text.split(' ').all(group) {
                key.push_str(&text.replace(' ', ""));
                continue;
            }
            break;
        }
        reading = text.ends_with("key:");
    }
    (key.len() >= 16).then_some(key)
}

#[test]
fn twofa_enrolment_goes_to_the_login_by_itself_and_the_next_login_uses_a_code() {
    let test = "twofa_enrolment_goes_to_the_login_by_itself_and_the_next_login_uses_a_code";
    if !common::peers::available("tmux", test) {
        return;
    }
    use tether::secrets::totp::TotpSecret;
    let cli = tempfile::tempdir().expect("tempdir");
    let console_home = tempfile::tempdir().expect("tempdir");
    let data = cli.path().join("hubdata");
    common::bin::create_admin(cli.path(), &data, "ann");
    let hub = common::bin::HubProcess::start(cli.path(), &data, &[], Stdio::null());
    let console_cmd = format!(
        "TETHER_HOME={} {} console --hub {}; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(console_home.path()),
        shell_quote(Path::new(BIN)),
        hub.url()
    );
    let tmux = Tmux::start("twofa-enrol", 120, 40, &console_cmd);
    tmux.wait_for("the login form", Duration::from_secs(20), |s| {
        s.contains("log in to a hub")
    });
    tmux.keys(&["-l", "ann"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["-l", common::PASSWORD]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the trust question", Duration::from_secs(20), |s| {
        s.contains("Trust this hub?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the main screen", Duration::from_secs(20), |s| {
        s.contains("Logged in as ann")
    });
    // The user menu's first item enables 2FA.
    tmux.keys(&["m"]);
    tmux.wait_for("the user menu", Duration::from_secs(10), |s| {
        s.contains("Enable 2FA")
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the enrolment key", Duration::from_secs(20), |s| {
        shown_key(s).is_some()
    });
    let key = shown_key(&screen).expect("key shown");
    let secret = TotpSecret::from_base32(&key).expect("base32 key");
    let step = || u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970") / 30;
    let code = |s: u64| secret.code_for_step(s, 6).expect("code");
    // The previous step's code confirms (the hub allows one step of drift), so the current one
    // is left for the login.
    tmux.keys(&["-l", &code(step() - 1)]);
    tmux.keys(&["Enter"]);
    // No key pressed: the login form comes by itself, with its code field.
    tmux.wait_for(
        "the login form after enrolment",
        Duration::from_secs(20),
        |s| s.contains("2FA is active") && s.contains("2FA code") && !s.contains("Checking"),
    );
    tmux.keys(&["-l", common::PASSWORD]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["-l", &code(step())]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the main screen again", Duration::from_secs(20), |s| {
        s.contains("Logged in as ann")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the console to exit", Duration::from_secs(10), |s| {
        s.contains("TETHER-EXITED-")
    });
    assert!(screen.contains("TETHER-EXITED-0"), "{screen}");
}
