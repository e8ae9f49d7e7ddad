//! `tether login` as `gh auth login`: on a terminal it asks for the password and does not show
//! it as typed; without a terminal and without `--password-stdin` it says what to do instead
//! of waiting for input.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::bin::{BIN, HubProcess, create_admin};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Bytes the terminal showed, and a signal each time more came.
#[derive(Default)]
struct Shown {
    bytes: Mutex<Vec<u8>>,
    more: Condvar,
}

impl Shown {
    /// Wait until the text so far contains `what`; panics with it after `within`.
    fn wait_for(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut bytes = self.bytes.lock().expect("lock");
        loop {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if text.contains(what) {
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what:?}; shown:\n{text}"
            );
            bytes = self.more.wait_timeout(bytes, left).expect("lock").0;
        }
    }
}

/// Kills the process on drop, pass or fail.
struct KillOnDrop(Box<dyn portable_pty::Child + Send + Sync>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn login_on_a_terminal_asks_for_the_password_without_echo() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hub");
    let hub = HubProcess::start(home.path(), &data, &[], std::process::Stdio::null());
    create_admin(home.path(), &data, "ann");

    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 100,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal");
    let mut login = CommandBuilder::new(BIN);
    let url = hub.url();
    login.args([
        "login",
        "--hub",
        &url,
        "--user",
        "ann",
        "--fingerprint",
        &hub.fingerprint,
    ]);
    login.env("TETHER_HOME", home.path());
    let mut child = KillOnDrop(pty.slave.spawn_command(login).expect("spawn tether login"));
    drop(pty.slave);
    let mut keyboard = pty.master.take_writer().expect("pty writer");
    let mut reader = pty.master.try_clone_reader().expect("pty reader");
    let shown = Arc::new(Shown::default());
    let sink = Arc::clone(&shown);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.bytes
                .lock()
                .expect("lock")
                .extend_from_slice(&buf[..n]);
            sink.more.notify_all();
        }
    });

    shown.wait_for("Password for ann at", Duration::from_secs(20));
    keyboard
        .write_all(format!("{}\r", common::PASSWORD).as_bytes())
        .expect("type the password");
    keyboard.flush().expect("flush");
    let text = shown.wait_for("logged in to", Duration::from_secs(30));
    let status = child.0.wait().expect("wait for tether login");
    assert!(status.success(), "login failed:\n{text}");
    assert!(
        !text.contains(common::PASSWORD) && !text.contains("plum"),
        "the password was echoed:\n{text}"
    );
    // The login was stored: ctl works without a password.
    common::bin::ok(&common::bin::run(
        home.path(),
        &["ctl", "clients", "list"],
        None,
    ));
}

#[test]
fn login_without_a_terminal_or_password_stdin_says_what_to_do() {
    let home = tempfile::tempdir().expect("tempdir");
    // No hub needed: it must not get as far as connecting (nor wait for input).
    let out = common::bin::run(
        home.path(),
        &[
            "login",
            "--hub",
            "wss://127.0.0.1:9",
            "--user",
            "ann",
            "--accept-new",
        ],
        Some("a password nobody asked for\n"),
    );
    let err = common::bin::fails(&out);
    assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
    assert!(err.contains("--password-stdin"), "says what to do: {err}");
}
