//! Sixel through a real tmux (3.3a has no sixel of its own: `allow-passthrough on` hands the
//! images to the terminal tmux runs in). That outer terminal is a pseudo-terminal read by the
//! test: its bytes go through a terminal model (vt100) to see where the cursor is when each
//! image starts, which is where a real terminal draws it.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::bin::BIN;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use ratatui::layout::Rect as CellRect;
use tether::console::desktop::DesktopView;
use tether::protocol::ScreenSize;
use tether::render::{CellSize, ColorDepth, RenderMode};

#[path = "common/sixel.rs"]
#[allow(dead_code)]
mod sixel;

/// The outer terminal: 100x32 cells of 10x20 pixels. tmux's status line is on top, so the pane
/// (and the console in it) is 100x31 from row 1; the console's own status line is its last row.
const COLS: u16 = 100;
const ROWS: u16 = 32;
const PANE_TOP: u16 = 1;
const PANE_ROWS: u16 = ROWS - 1;

/// Bytes the outer terminal received, and a signal each time more came.
#[derive(Default)]
struct Received {
    bytes: Mutex<Vec<u8>>,
    more: Condvar,
}

impl Received {
    /// Wait until `pred` holds on the bytes so far; panics after `within`.
    fn wait(&self, what: &str, within: Duration, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut bytes = self.bytes.lock().expect("lock");
        while !pred(&bytes) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            bytes = self.more.wait_timeout(bytes, left).expect("lock").0;
        }
        bytes.clone()
    }
}

/// A private tmux server, killed with everything in it on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.run(&["capture-pane", "-p", "-t", "t:0"]);
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{screen}"
            );
            // capture-pane has no way to wait for a change: ask again shortly.
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

/// A model of the outer terminal's text and cursor (vt100 skips sixel).
fn outer_terminal() -> vt100::Parser {
    let size = |n: u16| std::num::NonZeroU16::new(n).expect("a size");
    vt100::Parser::new(size(ROWS), size(COLS), 0)
}

/// Each sixel image the outer terminal got: where its cursor was (0-based col, row) and the
/// image's bytes.
fn placed_images(bytes: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    let mut term = outer_terminal();
    let mut images = Vec::new();
    let mut at = 0;
    while let Some(start) = bytes[at..]
        .windows(8)
        .position(|w| w == b"\x1bP0;1;0q")
        .map(|i| at + i)
    {
        term.process(&bytes[at..start]);
        let Some(len) = bytes[start..].windows(2).position(|w| w == b"\x1b\\") else {
            break;
        };
        let (row, col) = term.screen().cursor_position();
        images.push((col, row, bytes[start..start + len + 2].to_vec()));
        at = start + len + 2;
    }
    images
}

fn raster_size(dcs: &[u8]) -> (u32, u32) {
    let text = String::from_utf8_lossy(dcs);
    let attrs = text.split_once('"').expect("raster attributes").1;
    let nums: Vec<u32> = attrs
        .split(|c: char| !c.is_ascii_digit())
        .take(4)
        .map(|n| n.parse().expect("number"))
        .collect();
    (nums[2], nums[3])
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn sixel_through_tmux_draws_in_the_pane_and_never_scrolls() {
    let test = "sixel_through_tmux_draws_in_the_pane_and_never_scrolls";
    if !common::peers::available("tmux", test) {
        return;
    }
    let tech = tempfile::tempdir().expect("tempdir");
    let agent_home = tempfile::tempdir().expect("tempdir");
    let data = tech.path().join("hubdata");
    common::bin::create_admin(tech.path(), &data, "ann");
    let hub = common::bin::HubProcess::start(tech.path(), &data, &[], std::process::Stdio::null());
    common::bin::login(tech.path(), &hub, "ann");
    let run = |args: &[&str]| common::bin::ok(&common::bin::run(tech.path(), args, None));
    run(&["ctl", "clients", "add", "Acme"]);
    let link = run(&["ctl", "clients", "link", "Acme"]).trim().to_owned();
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

    // Options before the console starts: it asks tmux once where its pane is.
    let conf = tech.path().join("tmux.conf");
    std::fs::write(
        &conf,
        "set -g allow-passthrough on\nset -g status-position top\nset -g remain-on-exit on\n",
    )
    .expect("tmux.conf");
    let console = format!(
        "TETHER_HOME={} {} console --render sixel; echo TETHER-EXITED-$?; sleep 600",
        shell_quote(tech.path()),
        shell_quote(Path::new(BIN))
    );
    let tmux = Tmux {
        socket: format!("tether-test-sixel-{}", std::process::id()),
    };
    let conf = conf.to_str().expect("utf8 path");
    // Made smaller than the client, so that attaching resizes the pane and tmux tells it the
    // client's cell size in pixels (a pane made at its final size keeps tmux's 16x32 guess).
    let started = Command::new("tmux")
        .args([
            "-L",
            &tmux.socket,
            "-f",
            conf,
            "new-session",
            "-d",
            "-s",
            "t",
        ])
        .args(["-x", "40", "-y", "10", "sleep 600"])
        .status()
        .expect("run tmux");
    assert!(started.success(), "tmux new-session failed");

    // The terminal tmux runs in: a client attached through a pseudo-terminal.
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: COLS * 10,
            pixel_height: ROWS * 20,
        })
        .expect("a pseudo-terminal");
    let mut attach = CommandBuilder::new("tmux");
    attach.args(["-L", &tmux.socket, "attach", "-t", "t"]);
    attach.env("TERM", "xterm-256color");
    attach.env_remove("TMUX");
    let mut client = pty.slave.spawn_command(attach).expect("tmux attach");
    drop(pty.slave);
    let _keep_open = pty.master.take_writer().expect("pty writer");
    let mut reader = pty.master.try_clone_reader().expect("pty reader");
    let received = Arc::new(Received::default());
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
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
    received.wait("tmux's status line", Duration::from_secs(10), |b| {
        b.windows(3).any(|w| w == b"[t]")
    });
    let size = tmux.run(&[
        "display-message",
        "-p",
        "-t",
        "t:0",
        "#{pane_width}x#{pane_height}",
    ]);
    assert_eq!(
        size.trim(),
        format!("{COLS}x{PANE_ROWS}"),
        "the pane fills the client"
    );
    tmux.run(&["respawn-pane", "-k", "-t", "t:0", &console]);

    tmux.wait_for("the agent online", Duration::from_secs(30), |s| {
        s.contains("1/1 online")
    });
    tmux.run(&["send-keys", "-t", "t:0", "Enter"]);
    tmux.wait_for("the live desktop in sixel", Duration::from_secs(30), |s| {
        s.lines()
            .last()
            .is_some_and(|bar| bar.contains("sixel") && bar.contains("fps"))
    });
    // The whole picture, then tiles as the synthetic screen changes.
    let bytes = received.wait("images on the terminal", Duration::from_secs(30), |b| {
        placed_images(b).len() >= 3
    });
    let images = placed_images(&bytes);
    if let Ok(path) = std::env::var("TETHER_TEST_DUMP") {
        std::fs::write(path, &bytes).expect("dump");
    }

    // Where the console means the picture to be: the 800x600 screen letterboxed in the viewer's
    // area (the pane less its status line), moved by the pane's place on the outer terminal.
    let area = CellRect::new(0, 0, COLS, PANE_ROWS - 1);
    let mut view = DesktopView::with_mode(
        ScreenSize {
            width: 800,
            height: 600,
        },
        RenderMode::Sixel { tmux: true },
        CellSize::new(10, 20),
        ColorDepth::TrueColor,
    );
    let (w, h) = view.pixels_for(area.width, area.height);
    let (w, h) = tether::render::fit(800, 600, w, h);
    view.apply(w, h, &[]);
    let placed = view.placement(area);
    let picture = CellRect::new(placed.x, placed.y + PANE_TOP, placed.width, placed.height);

    let (col, row, first) = &images[0];
    assert_eq!(
        (*col, *row),
        (picture.x, picture.y),
        "the whole picture starts at the picture's top-left cell in the pane"
    );
    assert_eq!(
        raster_size(first),
        (
            u32::from(picture.width) * 10,
            u32::from(picture.height) * 20
        )
    );
    for (col, row, dcs) in &images {
        let (w, h) = raster_size(dcs);
        let (cols, rows) = (w.div_ceil(10) as u16, h.div_ceil(20) as u16);
        // Tiles on the picture's own cells: inside it, so never on the console's status line
        // nor the terminal's last row (an image there scrolls the screen).
        assert!(
            *col >= picture.x
                && *row >= picture.y
                && col + cols <= picture.right()
                && row + rows <= picture.bottom(),
            "an image of {cols}x{rows} cells at ({col}, {row}) outside the picture {picture:?}"
        );
        assert!(row + rows < ROWS, "an image reaches the last row");
    }
    if common::peers::available("sixel2png", test) {
        let decoded = sixel::sixel2png(first);
        assert_eq!(
            (decoded.width(), decoded.height()),
            raster_size(first),
            "libsixel reads it"
        );
    }

    // The text around it is where tmux put it: its status line on top, the console's last.
    let mut term = outer_terminal();
    term.process(&bytes);
    let screen = term.screen().contents();
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.contains("[t]")),
        "tmux's status line on the first row:\n{screen}"
    );
    assert!(
        lines
            .get(usize::from(ROWS) - 1)
            .is_some_and(|l| l.contains("sixel")),
        "the console's status line on the last row:\n{screen}"
    );

    // Leave: q from the viewer's menu, then the console.
    tmux.run(&["send-keys", "-t", "t:0", "C-]"]);
    tmux.run(&["send-keys", "-t", "t:0", "q"]);
    // The session is still open: quitting asks first.
    tmux.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Quit?")
    });
    tmux.run(&["send-keys", "-t", "t:0", "y"]);
    tmux.wait_for("the console to exit", Duration::from_secs(20), |s| {
        s.contains("TETHER-EXITED-")
    });
    let _ = client.kill();
    let _ = client.wait();
}
