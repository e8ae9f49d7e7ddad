//! A key typed into a real console reaches the remote shell and its echo is back on the
//! console's screen at once: read by an awaited event stream, never on the next tick.

use std::time::Duration;

use tether::bench::keys::{PtyScreen, console_in_session};
use tether::bench::rig::Rig;

const BIN: &str = env!("CARGO_BIN_EXE_tether");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_a_terminal_session_echoes_within_100_ms() {
    let rig = Rig::start("terminal").await.expect("hub and agent");
    let home = tempfile::tempdir().expect("tempdir");
    rig.write_login(home.path()).await.expect("stored login");
    let times = tokio::task::block_in_place(|| {
        let mut console: PtyScreen =
            console_in_session(std::path::Path::new(BIN), &rig, home.path())
                .expect("a console in a terminal session");
        // Keys 150 ms apart: a console that reads keys only on its one-second tick (or on
        // the next network event) shows them hundreds of milliseconds late.
        console
            .echo_times(15, Duration::from_millis(150))
            .expect("every key echoes")
    });
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    assert!(
        median < Duration::from_millis(100),
        "median key -> echo {median:?} (all: {times:?})"
    );
}
