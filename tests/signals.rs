//! A requested stop ends the demo cleanly, whichever way it comes: SIGTERM (`kill`), SIGHUP
//! (the terminal closed), SIGINT (`kill -INT`), and Ctrl-C typed in the console (a key in raw
//! mode, bound to quit). Each time: exit status 0, the terminal back in the main screen with
//! the cursor shown, and no `tether-demo-*` data left in the temporary directory.

mod common;

use std::path::Path;
use std::time::Duration;

use common::bin::BIN;
use common::tmux::{Tmux, shell_quote};

/// How the demo is asked to stop.
enum Ask {
    Signal(&'static str),
    Keys(&'static str),
}

fn demo_stops_cleanly(test: &str, ask: Ask) {
    if !common::peers::available("tmux", test) {
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    // The demo's temporary data goes here, so the test can see it is gone afterwards.
    let tmp = tempfile::tempdir().expect("tempdir");
    let pid_file = home.path().join("demo.pid");
    let socket = format!("tether-test-{test}-{}", std::process::id());
    // `exec` keeps the pid written: the signal goes to the demo itself, not a shell.
    let command = format!(
        "sh -c 'echo $$ > {pid}; TMPDIR={tmp} TETHER_HOME={home} exec {bin} demo'; \
         echo TETHER-EXITED-$?; tmux -L {socket} wait-for -S exited; sleep 600",
        pid = shell_quote(&pid_file),
        tmp = shell_quote(tmp.path()),
        home = shell_quote(home.path()),
        bin = shell_quote(Path::new(BIN)),
    );
    let tmux = Tmux::start(test, 100, 30, &command);
    assert_eq!(tmux.socket(), socket);

    tmux.wait_for(
        "the demo's workstation list",
        Duration::from_secs(60),
        |s| s.contains("xray-workstation") && s.contains("dispatch-01"),
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "the console runs on the alternate screen"
    );
    let demo_dirs = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("tether-demo-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        demo_dirs(tmp.path()).len(),
        1,
        "the demo keeps its data in TMPDIR"
    );

    match ask {
        Ask::Signal(name) => {
            let pid = std::fs::read_to_string(&pid_file).expect("the demo's pid");
            let status = std::process::Command::new("kill")
                .args([&format!("-{name}"), pid.trim()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{name} {pid}");
        }
        Ask::Keys(keys) => tmux.keys(&[keys]),
    }

    assert!(
        tmux.wait_for_channel("exited", Duration::from_secs(30)),
        "the demo did not stop within 30 s; screen:\n{}",
        tmux.screen()
    );
    let screen = tmux.screen();
    assert!(
        screen.contains("TETHER-EXITED-0"),
        "a requested stop exits with status 0:\n{screen}"
    );
    tmux.assert_terminal_restored();
    assert_eq!(
        demo_dirs(tmp.path()),
        Vec::<String>::new(),
        "the demo's hub key, seal.key and database were left behind"
    );
}

#[test]
fn sigterm_ends_the_demo_cleanly() {
    demo_stops_cleanly("sigterm_ends_the_demo_cleanly", Ask::Signal("TERM"));
}

#[test]
fn sighup_ends_the_demo_cleanly() {
    demo_stops_cleanly("sighup_ends_the_demo_cleanly", Ask::Signal("HUP"));
}

#[test]
fn sigint_ends_the_demo_cleanly() {
    demo_stops_cleanly("sigint_ends_the_demo_cleanly", Ask::Signal("INT"));
}

#[test]
fn ctrl_c_typed_in_the_console_quits_as_the_keymap_says() {
    demo_stops_cleanly(
        "ctrl_c_typed_in_the_console_quits_as_the_keymap_says",
        Ask::Keys("C-c"),
    );
}

#[test]
fn closing_the_demos_terminal_removes_its_data() {
    let test = "closing_the_demos_terminal_removes_its_data";
    if !common::peers::available("tmux", test) {
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let tmp = tempfile::tempdir().expect("tempdir");
    let pid_file = home.path().join("demo.pid");
    let command = format!(
        "sh -c 'echo $$ > {pid}; TMPDIR={tmp} TETHER_HOME={home} exec {bin} demo'",
        pid = shell_quote(&pid_file),
        tmp = shell_quote(tmp.path()),
        home = shell_quote(home.path()),
        bin = shell_quote(Path::new(BIN)),
    );
    let tmux = Tmux::start(test, 100, 30, &command);
    tmux.wait_for(
        "the demo's workstation list",
        Duration::from_secs(60),
        |s| s.contains("xray-workstation") && s.contains("dispatch-01"),
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the demo's pid");
    // A second window keeps the server up, and tells when the demo's process is gone.
    let watcher = format!(
        "tail --pid={} -f /dev/null; tmux -L {} wait-for -S gone",
        pid.trim(),
        tmux.socket()
    );
    tmux.run(&["new-window", "-d", "-t", "t:", &watcher]);
    // The demo's data is there while it runs, so "gone after" says the stop removed it.
    let running: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("tether-demo-"))
        .collect();
    assert_eq!(
        running.len(),
        1,
        "the running demo keeps its data in TMPDIR"
    );
    // The terminal closes under the demo: its pane is killed (SIGHUP, then a dead tty).
    tmux.run(&["kill-pane", "-t", "t:0"]);
    assert!(
        tmux.wait_for_channel("gone", Duration::from_secs(30)),
        "the demo did not stop within 30 s of its terminal closing"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left its data behind: {left:?}");
}

/// `tether hub` in the foreground, stopped by `signal` once it says where it listens: status 0.
fn hub_stops_cleanly(signal: &str) {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args(["hub", "--listen", "127.0.0.1:0", "--data"])
        .arg(home.path().join("hub"))
        .env("TETHER_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hub");
    // Read, and kept open to the end: a hub's stdout does not close under it.
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let hub = common::bin::Running(child);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("hub prints its address");
    assert!(line.starts_with("tether hub listening on "), "{line}");
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &hub.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let status = exit_within(hub, Duration::from_secs(20));
    assert_eq!(
        status,
        Some(0),
        "the hub stopped by SIG{signal} exits with status 0"
    );
}

/// The exit code of `process` once it ends (waited on a thread), or `None` when it has not
/// ended within `within` (it is then killed) or ended by a signal.
fn exit_within(mut process: common::bin::Running, within: Duration) -> Option<i32> {
    let pid = process.0.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(process.0.wait().ok().and_then(|s| s.code()));
        // The guard's kill after the wait is a no-op.
    });
    let code = match rx.recv_timeout(within) {
        Ok(code) => code,
        Err(_) => {
            // Still running: end it (our own child, by its id) so the waiter returns.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            None
        }
    };
    let _ = waiter.join();
    code
}

#[test]
fn the_hub_stops_cleanly_on_each_signal() {
    for signal in ["TERM", "HUP", "INT"] {
        hub_stops_cleanly(signal);
    }
}
