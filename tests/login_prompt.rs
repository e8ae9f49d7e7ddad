//! `tether login` as `gh auth login`: on a terminal it asks for the password and does not show
//! it as typed; without a terminal and without `--password-stdin` it says what to do instead
//! of waiting for input.

mod common;

use std::io::Write;
use std::time::Duration;

use common::bin::{BIN, HubProcess, create_admin};
use common::pty::InPty;
use portable_pty::CommandBuilder;

/// `tether login` to `hub` as ann, pinned, as a technician types it.
fn login_command(hub: &HubProcess) -> CommandBuilder {
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
    login
}

#[test]
fn login_on_a_terminal_asks_for_the_password_without_echo() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hub");
    let hub = HubProcess::start(home.path(), &data, &[], std::process::Stdio::null());
    create_admin(home.path(), &data, "ann");

    let mut login = login_command(&hub);
    login.env("TETHER_HOME", home.path());
    let mut pty = InPty::spawn(login);
    let shown = pty.shown.clone();
    let keyboard = &mut pty.keyboard;

    shown.wait_for("Password for ann at", Duration::from_secs(20));
    keyboard
        .write_all(format!("{}\r", common::PASSWORD).as_bytes())
        .expect("type the password");
    keyboard.flush().expect("flush");
    let text = shown.wait_for("logged in to", Duration::from_secs(30));
    let status = pty.child.wait().expect("wait for tether login");
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
fn login_on_a_terminal_asks_for_the_2fa_code_when_the_hub_does() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hub");
    common::bin::create_admin(home.path(), &data, "ann");
    let hub = HubProcess::start(home.path(), &data, &[], std::process::Stdio::null());
    common::bin::login(home.path(), &hub, "ann");
    let secret = common::bin::enable_2fa(home.path());
    let step = || u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970") / 30;
    let code = |s: u64| secret.code_for_step(s, 6).expect("code");

    // Another technician's machine: nothing saved there yet.
    let other = tempfile::tempdir().expect("tempdir");
    let mut login = login_command(&hub);
    login.env("TETHER_HOME", other.path());
    let mut pty = InPty::spawn(login);
    let shown = pty.shown.clone();
    shown.wait_for("Password for ann at", Duration::from_secs(20));
    pty.keyboard
        .write_all(format!("{}\r", common::PASSWORD).as_bytes())
        .expect("type the password");
    shown.wait_for(
        "Code from your authenticator app: ",
        Duration::from_secs(30),
    );
    pty.keyboard
        .write_all(format!("{}\r", code(step())).as_bytes())
        .expect("type the code");
    let text = shown.wait_for("logged in to", Duration::from_secs(30));
    assert!(pty.child.wait().expect("wait").success(), "{text}");
    assert!(
        !text.contains(common::PASSWORD),
        "the password was echoed:\n{text}"
    );
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
