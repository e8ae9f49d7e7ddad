//! `tether ctl session snapshot`: the real binary grabs one frame of a synthetic desktop through
//! a real hub, at the remote's own size, and writes a PNG. Every process started here is killed
//! when the test ends, pass or fail.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin::{BIN, HubProcess, Running, create_admin, login, ok, run as tether};

fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Decode a PNG: (width, height, distinct colours, RGBA bytes).
fn decode(path: &std::path::Path) -> (u32, u32, usize) {
    let img = image::open(path).expect("a PNG").to_rgba8();
    let colours: HashSet<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    (img.width(), img.height(), colours.len())
}

fn open_sessions(home: &std::path::Path) -> Vec<serde_json::Value> {
    let out = ok(&tether(home, &["ctl", "--json", "sessions", "list"], None));
    serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("json")
}

#[test]
fn snapshot_grabs_a_native_size_png_and_ends_the_session_it_opened() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("hubdata");
    create_admin(home.path(), &data, "ann");
    let hub = HubProcess::start(home.path(), &data, &[], Stdio::null());
    login(home.path(), &hub, "ann");
    ok(&tether(
        home.path(),
        &["ctl", "clients", "add", "Acme"],
        None,
    ));
    let url = ok(&tether(
        home.path(),
        &["ctl", "clients", "link", "Acme"],
        None,
    ))
    .trim()
    .to_owned();
    let agent_home = tempfile::tempdir().expect("tempdir");
    let _agent = Running(
        Command::new(BIN)
            .args([
                "agent",
                "--screen",
                "synthetic:640x400@3",
                "--consent",
                "accept",
                "--link",
                &url,
            ])
            .env("TETHER_HOME", agent_home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent"),
    );
    let (ws, host) = eventually("the agent online", Duration::from_secs(30), || {
        let out = tether(
            home.path(),
            &["ctl", "--json", "workstations", "list"],
            None,
        );
        let list: serde_json::Value = serde_json::from_str(&ok(&out)).ok()?;
        list.as_array()?
            .iter()
            .find(|w| w["presence"] == "online" && !w["screen"].is_null())
            .map(|w| {
                (
                    w["id"].as_str().unwrap_or_default().to_owned(),
                    w["hostname"].as_str().unwrap_or_default().to_owned(),
                )
            })
    });

    // No session yet: one is opened (view only) for the grab and ended after it.
    let png = home.path().join("shot.png");
    let out = tether(
        home.path(),
        &[
            "ctl",
            "--json",
            "session",
            "snapshot",
            &ws,
            "--out",
            png.to_str().expect("utf8"),
        ],
        None,
    );
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).expect("json");
    assert_eq!(report["opened_session"], true, "{report}");
    assert_eq!(
        (report["width"].as_u64(), report["height"].as_u64()),
        (Some(640), Some(400))
    );
    let (w, h, colours) = decode(&png);
    assert_eq!((w, h), (640, 400), "the remote's own size");
    // A desktop (wallpaper, windows, text), not an empty or uniform frame.
    assert!(colours >= 8, "only {colours} colours: an empty frame?");
    assert!(
        open_sessions(home.path()).is_empty(),
        "the grab's session was ended"
    );

    // With a session of our own open, by host name: it is used and stays open.
    let session = ok(&tether(home.path(), &["ctl", "connect", &ws], None));
    let session = session.trim();
    let png2 = home.path().join("shot2.png");
    let out = tether(
        home.path(),
        &[
            "ctl",
            "session",
            "snapshot",
            &host,
            "--out",
            png2.to_str().expect("utf8"),
        ],
        None,
    );
    let text = ok(&out);
    assert!(text.contains("640x400") && text.contains(&host), "{text}");
    assert_eq!(decode(&png2).0, 640);
    let open = open_sessions(home.path());
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], session);

    // Bad input: an unknown workstation is a clear error, and no file is written.
    let missing = home.path().join("none.png");
    let out = tether(
        home.path(),
        &[
            "ctl",
            "session",
            "snapshot",
            "nosuch",
            "--out",
            missing.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workstation nosuch"));
    assert!(!missing.exists());
}
