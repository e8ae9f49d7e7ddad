//! End to end in tmux: the real binary in a real terminal, read back as a person would see it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::bin::BIN;
use common::tmux::{Tmux, shell_quote};

#[test]
fn demo_lists_filters_quits_and_restores_the_terminal() {
    if !common::peers::available("tmux", "demo_lists_filters_quits_and_restores_the_terminal") {
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    // The demo's temporary data goes here, so the test can see it is gone afterwards.
    let tmp = tempfile::tempdir().expect("tempdir");
    let command = format!(
        "TMPDIR={} TETHER_HOME={} {} demo; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(tmp.path()),
        shell_quote(home.path()),
        shell_quote(Path::new(BIN))
    );
    let tmux = Tmux::start("demo", 120, 40, &command);

    // The workstation list shows, live, with the demo's fleet.
    tmux.wait_for("the workstation list", Duration::from_secs(60), |s| {
        s.contains("xray-workstation") && s.contains("dispatch-01") && s.contains("hpc-login-1")
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "the console runs on the alternate screen"
    );

    // `/` filters the list as you type.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "xray"]);
    tmux.wait_for("the filter to apply", Duration::from_secs(10), |s| {
        s.contains("xray-workstation") && !s.contains("dispatch-01") && !s.contains("hpc-login-1")
    });
    tmux.keys(&["Enter"]);

    // `q` quits, and the terminal is as it was: normal screen, cursor visible, exit code 0.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the demo to exit", Duration::from_secs(20), |s| {
        s.contains("TETHER-EXITED-")
    });
    assert!(
        screen.contains("TETHER-EXITED-0"),
        "demo exited with an error:\n{screen}"
    );
    tmux.assert_terminal_restored();
    assert!(
        !screen.contains("xray-workstation"),
        "the console's screen was left behind:\n{screen}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("read tmp").collect();
    assert!(
        left.is_empty(),
        "the demo left temporary files behind: {left:?}"
    );
    assert!(
        home.path().join("state/logs").exists(),
        "the demo logs to a file under the state dir"
    );
}

/// `tether ARGS`, asserted to succeed; its standard output.
fn tether(home: &Path, args: &[&str], stdin: Option<&str>) -> String {
    common::bin::ok(&common::bin::run(home, args, stdin))
}

#[test]
fn request_grant_on_the_agent_then_connect_with_the_passcode() {
    let test = "request_grant_on_the_agent_then_connect_with_the_passcode";
    if !common::peers::available("tmux", test) {
        return;
    }
    let tech = tempfile::tempdir().expect("tempdir");
    let agent_home = tempfile::tempdir().expect("tempdir");
    let data = tech.path().join("hubdata");
    common::bin::create_admin(tech.path(), &data, "ann");
    let _hub = common::bin::HubProcess::start(tech.path(), &data, &[], std::process::Stdio::null());
    common::bin::login(tech.path(), &_hub, "ann");
    tether(tech.path(), &["ctl", "clients", "add", "Acme"], None);
    let link = tether(tech.path(), &["ctl", "clients", "link", "Acme"], None)
        .trim()
        .to_owned();

    // The agent runs in its own terminal, where its end user answers; the console in another.
    let agent_cmd = format!(
        "TETHER_HOME={} {} agent --screen none --link '{link}'; sleep 600",
        shell_quote(agent_home.path()),
        shell_quote(Path::new(BIN))
    );
    let console_cmd = format!(
        "TETHER_HOME={} {} console; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(tech.path()),
        shell_quote(Path::new(BIN))
    );
    let tmux = Tmux::start("access", 110, 30, &console_cmd);
    tmux.window("agent", &agent_cmd);
    tmux.wait_in(
        "t:agent",
        "the agent online",
        Duration::from_secs(30),
        |s| s.contains("online: workstation"),
    );
    // The person at the computer sees the agent's status, not its log (which goes to a file).
    let agent_screen = tmux.screen_of("t:agent");
    assert!(
        agent_screen.contains("Log: ") && !agent_screen.contains(" INFO "),
        "{agent_screen}"
    );
    tether(agent_home.path(), &["agent", "passcode", "on"], None);
    let shown = tether(agent_home.path(), &["agent", "passcode", "show"], None);
    let passcode = shown
        .split_whitespace()
        .find(|w| w.len() == 11 && w.matches('-').count() == 2)
        .unwrap_or_else(|| panic!("a passcode in {shown:?}"))
        .to_owned();

    // The console shows the workstation, what it requires, and no grant yet.
    tmux.wait_for("the workstation row", Duration::from_secs(30), |s| {
        s.contains("passcode") && s.contains("none")
    });
    tmux.keys(&["u"]);
    // A question on the end user's screen: the console asks first.
    tmux.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("Ask for unattended access?")
    });
    tmux.keys(&["y"]);
    tmux.wait_in(
        "t:agent",
        "the grant question",
        Duration::from_secs(10),
        |s| s.contains("Grant? [y/n]"),
    );
    tmux.wait_for(
        "the request shown as pending",
        Duration::from_secs(10),
        |s| s.contains("requested"),
    );
    tmux.keys_to("t:agent", &["y", "Enter"]);
    tmux.wait_in(
        "t:agent",
        "the confirmation",
        Duration::from_secs(10),
        |s| s.contains("make changes"),
    );
    tmux.keys_to("t:agent", &["y", "Enter"]);
    tmux.wait_for("the grant in the console", Duration::from_secs(10), |s| {
        s.contains("granted")
    });

    // Connect: the console asks for the passcode, masked; the session opens.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the passcode prompt", Duration::from_secs(10), |s| {
        s.contains("requires its temporary passcode")
    });
    tmux.keys(&["-l", &passcode]);
    let typed = tmux.screen();
    assert!(
        !typed.contains(&passcode),
        "the passcode is masked as it is typed:\n{typed}"
    );
    tmux.keys(&["Enter"]);
    // The agent has no screen: its shell opens full screen; back to the list from its menu.
    tmux.wait_for("the live terminal", Duration::from_secs(20), |s| {
        s.contains("Ctrl-] menu")
    });
    tmux.keys(&["C-]"]);
    tmux.wait_for("the terminal's menu", Duration::from_secs(10), |s| {
        s.contains("Back to the list")
    });
    tmux.keys(&["d"]);
    tmux.wait_for("the session", Duration::from_secs(20), |s| {
        s.contains("in session") && s.contains("stays open")
    });
    let sessions: serde_json::Value = serde_json::from_str(&tether(
        tech.path(),
        &["ctl", "--json", "sessions", "list"],
        None,
    ))
    .expect("json");
    assert_eq!(sessions[0]["method"], "unattended");
    assert_eq!(sessions[0]["secrets"][0], "passcode");
    tmux.wait_in(
        "t:agent",
        "the agent naming who is connected",
        Duration::from_secs(10),
        |s| s.contains("connected: ann"),
    );

    // The session is still open: quitting asks first.
    tmux.keys(&["q"]);
    tmux.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Quit?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("TETHER-EXITED-0")
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "alternate screen left on"
    );
}

#[test]
fn live_terminal_of_a_headless_agent_runs_a_command_and_ends_from_its_menu() {
    let test = "live_terminal_of_a_headless_agent_runs_a_command_and_ends_from_its_menu";
    if !common::peers::available("tmux", test) {
        return;
    }
    let tech = tempfile::tempdir().expect("tempdir");
    let agent_home = tempfile::tempdir().expect("tempdir");
    let data = tech.path().join("hubdata");
    common::bin::create_admin(tech.path(), &data, "ann");
    let hub = common::bin::HubProcess::start(tech.path(), &data, &[], std::process::Stdio::null());
    common::bin::login(tech.path(), &hub, "ann");
    tether(tech.path(), &["ctl", "clients", "add", "Servers"], None);
    let link = tether(tech.path(), &["ctl", "clients", "link", "Servers"], None)
        .trim()
        .to_owned();
    // A headless agent that accepts connections by itself: no terminal of its own needed.
    let _agent = common::bin::Running(
        Command::new(BIN)
            .args([
                "agent",
                "--screen",
                "none",
                "--consent",
                "accept",
                "--link",
                &link,
            ])
            .env("TETHER_HOME", agent_home.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let console_cmd = format!(
        "TETHER_HOME={} {} console; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(tech.path()),
        shell_quote(Path::new(BIN))
    );
    let tmux = Tmux::start("terminal", 80, 24, &console_cmd);
    tmux.wait_for("the agent online", Duration::from_secs(30), |s| {
        s.contains("1/1 online")
    });

    // Enter connects; the workstation has no screen, so its shell opens full screen.
    tmux.keys(&["Enter"]);
    let rows = |s: &str| -> Vec<String> { s.lines().map(|l| l.trim_end().to_owned()).collect() };
    tmux.wait_for("the shell's prompt", Duration::from_secs(30), |s| {
        let rows = rows(s);
        rows.last().is_some_and(|bar| bar.contains("Ctrl-] menu"))
            && rows.first().is_some_and(|first| !first.is_empty())
    });
    assert_eq!(tmux.format("#{alternate_on}"), "1");

    // What is typed runs there; its output shows here.
    tmux.keys(&["-l", "echo tether-$((6*7))"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the command's output", Duration::from_secs(20), |s| {
        rows(s).iter().any(|row| row.trim() == "tether-42")
    });

    // The menu key, then its end-session key: back to the list, the session gone.
    tmux.keys(&["C-]"]);
    tmux.wait_for("the menu", Duration::from_secs(10), |s| {
        s.contains("End the session")
    });
    tmux.keys(&["e"]);
    let screen = tmux.wait_for("the list again", Duration::from_secs(20), |s| {
        s.contains("Ended the session on") && s.contains("Workstations")
    });
    assert!(
        !screen.contains("tether-42"),
        "the terminal is gone:\n{screen}"
    );
    let sessions: serde_json::Value = serde_json::from_str(&tether(
        tech.path(),
        &["ctl", "--json", "sessions", "list"],
        None,
    ))
    .expect("json");
    assert_eq!(sessions, serde_json::json!([]), "no session is left open");

    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("TETHER-EXITED-")
    });
    assert!(
        screen.contains("TETHER-EXITED-0"),
        "the console exited with an error:\n{screen}"
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "alternate screen left on"
    );
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor left hidden");
}

#[test]
fn live_desktop_screenshot_from_the_menu_writes_a_native_png() {
    let test = "live_desktop_screenshot_from_the_menu_writes_a_native_png";
    if !common::peers::available("tmux", test) {
        return;
    }
    let tech = tempfile::tempdir().expect("tempdir");
    let agent_home = tempfile::tempdir().expect("tempdir");
    let data = tech.path().join("hubdata");
    common::bin::create_admin(tech.path(), &data, "ann");
    let hub = common::bin::HubProcess::start(tech.path(), &data, &[], std::process::Stdio::null());
    common::bin::login(tech.path(), &hub, "ann");
    tether(tech.path(), &["ctl", "clients", "add", "Acme"], None);
    let link = tether(tech.path(), &["ctl", "clients", "link", "Acme"], None)
        .trim()
        .to_owned();
    let _agent = common::bin::Running(
        Command::new(BIN)
            .args([
                "agent",
                "--screen",
                "synthetic:800x600@5",
                "--consent",
                "accept",
                "--link",
                &link,
            ])
            .env("TETHER_HOME", agent_home.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    // Text mode by name: no terminal query, the same in any terminal.
    let console_cmd = format!(
        "TETHER_HOME={} {} console --render halfblocks; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(tech.path()),
        shell_quote(Path::new(BIN))
    );
    let tmux = Tmux::start("shot", 100, 30, &console_cmd);
    tmux.wait_for("the agent online", Duration::from_secs(30), |s| {
        s.contains("1/1 online")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the live desktop", Duration::from_secs(30), |s| {
        s.lines()
            .last()
            .is_some_and(|bar| bar.contains("half blocks") && bar.contains("fps"))
    });
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "1",
        "the mouse is captured"
    );

    // Ctrl-] then s: the file is written and its name shows in the status line.
    tmux.keys(&["C-]"]);
    tmux.wait_for("the menu", Duration::from_secs(10), |s| {
        s.contains("Save the remote screen")
    });
    tmux.keys(&["s"]);
    let screen = tmux.wait_for("the saved screenshot", Duration::from_secs(20), |s| {
        s.lines().last().is_some_and(|bar| bar.contains(".png"))
    });
    let dir = tech.path().join("data/screenshots");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}\n{screen}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    let [file] = &files[..] else {
        panic!("one screenshot expected in {}: {files:?}", dir.display());
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(
        name.starts_with("tether-") && name.ends_with(".png"),
        "{name}"
    );
    assert!(
        screen.lines().last().is_some_and(|bar| bar.contains(name)),
        "the status line names the file:\n{screen}"
    );
    let img = image::open(file).expect("a PNG").to_rgba8();
    assert_eq!(img.dimensions(), (800, 600), "the remote's own size");
    let colours: std::collections::HashSet<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() >= 8, "a desktop, not an empty frame");

    // The viewer goes on at its own size afterwards; q from the menu quits cleanly.
    tmux.wait_for("the rates again", Duration::from_secs(20), |s| {
        s.lines().last().is_some_and(|bar| bar.contains("fps"))
    });
    tmux.keys(&["C-]"]);
    tmux.keys(&["q"]);
    // The session is still open: quitting asks first.
    tmux.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Quit?")
    });
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("TETHER-EXITED-")
    });
    assert!(screen.contains("TETHER-EXITED-0"), "{screen}");
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "mouse capture left on"
    );
}

/// 2FA in a real terminal: the console's login form grows a code field when the hub asks for
/// one, and the code logs in.
#[test]
fn console_login_asks_for_the_2fa_code() {
    let test = "console_login_asks_for_the_2fa_code";
    if !common::peers::available("tmux", test) {
        return;
    }
    let cli = tempfile::tempdir().expect("tempdir");
    let console_home = tempfile::tempdir().expect("tempdir");
    let data = cli.path().join("hubdata");
    common::bin::create_admin(cli.path(), &data, "ann");
    let hub = common::bin::HubProcess::start(cli.path(), &data, &[], std::process::Stdio::null());
    common::bin::login(cli.path(), &hub, "ann");
    let secret = common::bin::enable_2fa(cli.path());
    let step = || u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970") / 30;
    let code = |s: u64| secret.code_for_step(s, 6).expect("code");

    let console_cmd = format!(
        "TETHER_HOME={} {} console --hub {}; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(console_home.path()),
        shell_quote(Path::new(BIN)),
        hub.url()
    );
    let tmux = Tmux::start("twofa", 100, 30, &console_cmd);
    tmux.wait_for("the login form", Duration::from_secs(20), |s| {
        s.contains("log in to a hub")
    });
    assert!(
        !tmux.screen().contains("2FA code"),
        "no code field before it is needed"
    );
    tmux.keys(&["-l", "ann"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["-l", common::PASSWORD]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the trust question", Duration::from_secs(20), |s| {
        s.contains("Trust this hub?")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the code field", Duration::from_secs(20), |s| {
        s.contains("2FA code") && s.contains("type the code your app shows")
    });
    tmux.keys(&["-l", &code(step())]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the main screen", Duration::from_secs(20), |s| {
        s.contains("Logged in as ann")
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the console to exit", Duration::from_secs(10), |s| {
        s.contains("TETHER-EXITED-0")
    });
    // Confirming revoked the login `ctl` made without a code.
    let out = common::bin::run(cli.path(), &["ctl", "2fa", "status"], None);
    assert_eq!(out.status.code(), Some(3));
}
