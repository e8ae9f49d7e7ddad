//! A private tmux server for end-to-end tests: the real binary in a real terminal, read back
//! as a person sees it. Killed with everything in it on drop.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A server of its own (socket named after `name` and this process), one `cols` x `rows`
    /// window running `command` in `sh`; panes stay after their command ends.
    pub fn start(name: &str, cols: u16, rows: u16, command: &str) -> Self {
        let socket = format!("tether-test-{name}-{}", std::process::id());
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-s", "t", "-x", &cols.to_string(), "-y", &rows.to_string()])
            .arg(command)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        let tmux = Self { socket };
        tmux.run(&["set-option", "-g", "remain-on-exit", "on"]);
        tmux
    }

    /// The socket's name, for commands inside the panes (`tmux -L NAME wait-for -S ...`).
    pub fn socket(&self) -> &str {
        &self.socket
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Another window on the same server, running `command`; its name is its target.
    pub fn window(&self, name: &str, command: &str) {
        self.run(&["new-window", "-d", "-t", "t", "-n", name, command]);
    }

    pub fn keys(&self, keys: &[&str]) {
        self.keys_to("t:0", keys);
    }

    pub fn keys_to(&self, target: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", target];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    pub fn screen(&self) -> String {
        self.screen_of("t:0")
    }

    pub fn screen_of(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", target])
    }

    /// A tmux format of the first pane (`#{alternate_on}`, `#{cursor_flag}`, ...).
    pub fn format(&self, f: &str) -> String {
        self.run(&["display-message", "-p", "-t", "t:0", f])
            .trim()
            .to_owned()
    }

    /// The first pane's terminal is as a program found it: main screen, cursor shown, no
    /// mouse capture.
    pub fn assert_terminal_restored(&self) {
        assert_eq!(
            self.format("#{alternate_on}"),
            "0",
            "alternate screen left on"
        );
        assert_eq!(self.format("#{cursor_flag}"), "1", "cursor left hidden");
        assert_eq!(
            self.format("#{mouse_any_flag}"),
            "0",
            "mouse capture left on"
        );
    }

    /// Wait until the screen satisfies `pred`, reading it again every 100 ms (tmux has no
    /// event for "the screen shows X"); fails with the last screen after `within`.
    pub fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.wait_in("t:0", what, within, pred)
    }

    /// As [`Tmux::wait_for`], on the pane `target`.
    pub fn wait_in(
        &self,
        target: &str,
        what: &str,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen_of(target);
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen of {target}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for a pane's command to signal `channel` (`tmux wait-for -S CHANNEL`); `false`
    /// after `within`.
    pub fn wait_for_channel(&self, channel: &str, within: Duration) -> bool {
        let mut child = Command::new("tmux")
            .args(["-L", &self.socket, "wait-for", channel])
            .spawn()
            .expect("run tmux wait-for");
        let (done, signalled) = mpsc::channel();
        let pid = child.id();
        let waiter = std::thread::spawn(move || {
            let ok = child.wait().is_ok_and(|s| s.success());
            let _ = done.send(ok);
        });
        let result = signalled.recv_timeout(within).unwrap_or(false);
        if !result {
            // Still waiting: end that tmux client (ours, by its id) so the thread returns.
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = waiter.join();
        result
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

pub fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}
