//! An agent started by hand in a terminal shows the end user what they need (which screen it
//! shares, its status) and keeps its log in a file, whatever its consent policy.

mod common;

use std::time::Duration;

use common::bin::BIN;
use common::pty::InPty;
use portable_pty::CommandBuilder;

#[test]
fn an_agent_accepting_by_itself_says_its_screen_and_logs_to_a_file() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut agent = CommandBuilder::new(BIN);
    // Never enrolled and no link: it says what it would share, then stops with the reason.
    agent.args(["agent", "--consent", "accept"]);
    agent.env("TETHER_HOME", home.path());
    agent.env("TETHER_LOG", "info");
    agent.env_remove("TETHER_LINK");
    let pty = InPty::spawn(agent);
    let text = pty.shown.wait_for_end(Duration::from_secs(30));
    assert!(
        text.contains(
            "screen shared: a synthetic test desktop (1920x1080), not this computer's screen"
        ),
        "the agent says which screen it shares:\n{text}"
    );
    assert!(
        text.contains("--screen x11:0"),
        "and how to share a real one:\n{text}"
    );
    assert!(
        !text.contains(" INFO ") && !text.contains("INFO"),
        "log lines reached the end user's terminal:\n{text}"
    );
    let logs = home.path().join("state/logs");
    let logged = std::fs::read_dir(&logs)
        .expect("a log dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|log| log.contains("screen shared: a synthetic test desktop"));
    assert!(logged, "the screen source is in the log file too");
}
