//! End to end in tmux: the real binary in a real terminal, read back as a person would see it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tether");

/// A private tmux server (its own socket), killed with everything in it on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, cols: u16, rows: u16, command: &str) -> Self {
        let socket = format!("tether-test-{name}-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
            ])
            .arg(cols.to_string())
            .arg("-y")
            .arg(rows.to_string())
            .arg(command)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        let tmux = Self { socket };
        tmux.run(&["set-option", "-g", "remain-on-exit", "on"]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn format(&self, f: &str) -> String {
        self.run(&["display-message", "-p", "-t", "t", f])
            .trim()
            .to_owned()
    }

    /// Wait until the screen satisfies `pred`, polling; fails with the last screen after `within`.
    fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

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
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "alternate screen left on"
    );
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor left hidden");
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "mouse capture left on"
    );
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
