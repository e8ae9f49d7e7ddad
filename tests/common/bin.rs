//! The real binary in tests: run it, start a hub process, log in. Every process started here
//! is killed when its guard drops, pass or fail.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_tether");

/// Kills its process on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `tether ARGS` with `TETHER_HOME=home`, feeding `stdin`.
pub fn run(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run_as(home, args, stdin, None)
}

/// As [`run`], as another user when `uid` is set (needs root).
pub fn run_as(home: &Path, args: &[&str], stdin: Option<&str>, uid: Option<u32>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("TETHER_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().expect("spawn tether");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

/// Its standard output, after asserting it succeeded.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Its standard error, after asserting it failed.
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A hub process on a free loopback port.
pub struct HubProcess {
    /// `127.0.0.1:PORT`, from the hub's first line.
    pub addr: String,
    /// As its data dir's `hub.fingerprint` says.
    pub fingerprint: String,
    _process: Running,
    /// Kept open for the hub's lifetime: a hub must not see its stdout close under it.
    _stdout: BufReader<ChildStdout>,
}

impl HubProcess {
    /// Start `tether hub` on `data`; `env` adds variables, `stderr` receives its log.
    pub fn start(home: &Path, data: &Path, env: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut child = Command::new(BIN)
            .args(["hub", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("TETHER_HOME", home)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn hub");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let process = Running(child);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("hub prints its address");
        let addr = line
            .trim()
            .strip_prefix("tether hub listening on ")
            .expect("address line")
            .to_owned();
        let fingerprint = std::fs::read_to_string(data.join("hub.fingerprint"))
            .expect("fingerprint file")
            .trim()
            .to_owned();
        Self {
            addr,
            fingerprint,
            _process: process,
            _stdout: stdout,
        }
    }

    pub fn url(&self) -> String {
        format!("wss://{}", self.addr)
    }
}

/// `admin create-user NAME --role admin --team Desk` with the test password.
pub fn create_admin(home: &Path, data: &Path, name: &str) {
    let data = data.to_str().expect("utf8 path");
    let email = format!("{name}@example.com");
    ok(&run(
        home,
        &[
            "admin",
            "--data",
            data,
            "create-user",
            name,
            "--role",
            "admin",
            "--team",
            "Desk",
            "--email",
            &email,
            "--password-stdin",
        ],
        Some(&format!("{}\n", super::PASSWORD)),
    ));
}

/// `tether login` to `hub` as `name`, pinning its fingerprint.
pub fn login(home: &Path, hub: &HubProcess, name: &str) {
    ok(&run(
        home,
        &[
            "login",
            "--hub",
            &hub.url(),
            "--user",
            name,
            "--password-stdin",
            "--fingerprint",
            &hub.fingerprint,
        ],
        Some(&format!("{}\n", super::PASSWORD)),
    ));
}

/// `ctl 2fa enable` then `ctl 2fa confirm` for the user logged in at `home`, confirmed with the
/// previous 30 s step's code so the current one is left for the login under test. The secret.
pub fn enable_2fa(home: &Path) -> tether::secrets::totp::TotpSecret {
    let enrolment: serde_json::Value =
        serde_json::from_str(&ok(&run(home, &["ctl", "--json", "2fa", "enable"], None)))
            .expect("json");
    let secret = tether::secrets::totp::TotpSecret::from_base32(
        enrolment["secret"].as_str().expect("secret"),
    )
    .expect("base32");
    let step = || u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970") / 30;
    // A step boundary between the code and its check fails the first try: once more.
    let confirmed = (0..2).any(|_| {
        let code = secret.code_for_step(step() - 1, 6).expect("code");
        run(home, &["ctl", "2fa", "confirm", &code], None)
            .status
            .success()
    });
    assert!(confirmed, "2FA confirmed");
    secret
}
