//! `tether bench keys`: a key written to a real `tether console` (this binary, in a
//! pseudo-terminal) until its echo from the remote shell is on the console's screen.
//!
//! The path is the one a technician's key takes: pty -> console (crossterm, update, net task)
//! -> TLS WebSocket -> hub -> agent -> the remote PTY shell -> echo back the same way -> the
//! console's draw -> pty. The console's output is read through a terminal model (vt100), so
//! "echoed" means "on the screen the technician sees", not "some bytes arrived".
//!
//! Anchors timed in the same run by the same harness: `cat` in a pty (the floor), and `cat`
//! inside tmux in a pty (what a terminal multiplexer costs), when tmux is installed.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use portable_pty::{CommandBuilder, PtySize};

use super::Report;
use super::rig::Rig;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keys to time.
    #[arg(long, default_value_t = 200)]
    pub keys: usize,
    /// Pause between keys, in milliseconds (a fast typist: 50-80 ms).
    #[arg(long, default_value_t = 40)]
    pub gap_ms: u64,
}

/// How long one echo may take before the run fails.
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);
const COLS: u16 = 120;
const ROWS: u16 = 40;

/// A program in a pseudo-terminal, its output fed to a terminal model.
pub struct PtyScreen {
    writer: Box<dyn Write + Send>,
    output: mpsc::Receiver<Vec<u8>>,
    parser: vt100::Parser,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl PtyScreen {
    pub fn spawn(cmd: CommandBuilder) -> anyhow::Result<Self> {
        let pair = portable_pty::native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| anyhow!("openpty: {e}"))?;
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| anyhow!("spawn: {e}"))?;
        drop(pair.slave);
        let mut reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| anyhow!("pty reader: {e}"))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| anyhow!("pty writer: {e}"))?;
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Self {
            writer,
            output,
            parser: vt100::Parser::new(
                std::num::NonZeroU16::MIN.saturating_add(ROWS - 1),
                std::num::NonZeroU16::MIN.saturating_add(COLS - 1),
                0,
            ),
            child,
            _master: pair.master,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Read output until `done` holds for the screen, or `within` passes; the time it held.
    pub fn wait_for(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&vt100::Screen) -> bool,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if done(self.parser.screen()) {
                return Ok(Instant::now());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => {
                    self.parser.process(&bytes);
                    // Answer the capability questions a program may ask (device attributes,
                    // cell size): a plain VT220 without graphics.
                    if bytes.windows(3).any(|w| w == b"\x1b[c") {
                        self.write(b"\x1b[?62;22c")?;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "timed out; the screen shows:\n{}",
                        self.parser.screen().contents()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!(
                        "the program ended; the screen showed:\n{}",
                        self.parser.screen().contents()
                    )
                }
            }
        }
    }

    /// Type `keys` one at a time, `gap` apart, each once the last is on screen: the time from
    /// writing each key to the typed text ending the cursor's row.
    pub fn echo_times(&mut self, keys: usize, gap: Duration) -> anyhow::Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(keys);
        let mut typed = String::new();
        for i in 0..keys {
            // A fresh line every 40 keys (Ctrl-U), so the line never wraps.
            if typed.len() >= 40 {
                self.write(b"\x15")?;
                let gone = typed.clone();
                self.wait_for(ECHO_TIMEOUT, |s| !row_text(s).contains(gone.as_str()))
                    .context("clearing the line")?;
                typed.clear();
            }
            // Pacing, as a typist's keys come (not a wait for anything).
            std::thread::sleep(gap);
            let key = b'a' + (i % 26) as u8;
            typed.push(char::from(key));
            let expected = typed.clone();
            let written = Instant::now();
            self.write(&[key])?;
            let echoed = self
                .wait_for(ECHO_TIMEOUT, |s| {
                    row_text(s).trim_end().ends_with(expected.as_str())
                })
                .with_context(|| format!("the echo of key {i}"))?;
            times.push(echoed - written);
        }
        Ok(times)
    }
}

impl Drop for PtyScreen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of the row the cursor is on.
fn row_text(screen: &vt100::Screen) -> String {
    let (row, _) = screen.cursor_position();
    screen.contents_between(row, 0, row, COLS)
}

/// Time the echo of `keys` keys through `cat` (a pty and nothing else).
fn cat_times(keys: usize, gap: Duration, tmux: Option<&Path>) -> anyhow::Result<Vec<Duration>> {
    let mut cmd = match tmux {
        Some(tmux) => {
            let mut cmd = CommandBuilder::new(tmux);
            // Its own server socket, so the technician's tmux is never touched.
            let socket = format!("tether-bench-{}", std::process::id());
            cmd.args(["-L", &socket, "-f", "/dev/null", "new-session", "cat"]);
            cmd
        }
        None => CommandBuilder::new("cat"),
    };
    cmd.env("TERM", "xterm-256color");
    let mut pty = PtyScreen::spawn(cmd)?;
    if tmux.is_some() {
        // tmux is up when its status line is drawn.
        pty.wait_for(ECHO_TIMEOUT, |s| {
            !s.contents_between(ROWS - 1, 0, ROWS - 1, COLS)
                .trim()
                .is_empty()
        })?;
    }
    let times = pty.echo_times(keys, gap);
    if let Some(tmux) = tmux {
        let socket = format!("tether-bench-{}", std::process::id());
        let _ = std::process::Command::new(tmux)
            .args(["-L", &socket, "kill-server"])
            .status();
    }
    times
}

fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A real console, logged in to `rig`'s hub, in a pseudo-terminal, with a terminal session
/// open on the rig's agent and its shell prompt ready.
pub fn console_in_session(exe: &Path, rig: &Rig, home: &Path) -> anyhow::Result<PtyScreen> {
    let mut cmd = CommandBuilder::new(exe);
    cmd.args(["console", "--hub", &rig.url, "--render", "halfblocks"]);
    cmd.env("TETHER_HOME", home);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("TMUX");
    let mut console = PtyScreen::spawn(cmd)?;
    console
        .wait_for(Duration::from_secs(20), |s| {
            s.contents().contains("1/1 online")
        })
        .context("the console did not list the workstation")?;
    console.write(b"\r")?;
    // The shell is open full screen when its status bar names the menu key.
    console
        .wait_for(Duration::from_secs(20), |s| {
            let contents = s.contents();
            let mut rows = contents.lines().filter(|l| !l.trim().is_empty());
            rows.next_back()
                .is_some_and(|bar| bar.contains("Ctrl-] menu"))
        })
        .context("the terminal session did not open")?;
    console.write(b"echo READY-$((40+2))\r")?;
    console
        .wait_for(Duration::from_secs(10), |s| {
            s.contents().contains("READY-42")
        })
        .context("the remote shell did not run a command")?;
    Ok(console)
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    // The agent on its own runtime, as on its own machine; shut down without blocking, on
    // every path (a runtime dropped inside this one would panic).
    let agent_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let result = measure(args, agent_runtime.handle()).await;
    agent_runtime.shutdown_background();
    result
}

async fn measure(args: &Args, agent: &tokio::runtime::Handle) -> anyhow::Result<Report> {
    let exe = std::env::current_exe().context("this program's path")?;
    let rig = Rig::start_on("terminal", agent).await?;
    let home = tempfile::tempdir()?;
    rig.write_login(home.path()).await?;
    let keys = args.keys.max(1);
    let gap = Duration::from_millis(args.gap_ms);
    let home_path = home.path().to_owned();
    let rig_ref = &rig;
    let (tether, cat, tmux) = tokio::task::block_in_place(|| -> anyhow::Result<_> {
        let mut console = console_in_session(&exe, rig_ref, &home_path)?;
        let tether = console.echo_times(keys, gap)?;
        drop(console);
        let cat = cat_times(keys, gap, None)?;
        let tmux = match find_in_path("tmux") {
            Some(tmux) => Some(cat_times(keys, gap, Some(&tmux))?),
            None => None,
        };
        Ok((tether, cat, tmux))
    })?;
    drop(rig);

    let mut report = Report::new(
        "keys",
        format!(
            "{keys} keys, {} ms apart, written to a real console in a {COLS}x{ROWS} pty until the \
             remote shell's echo is on its screen (TLS WebSockets on loopback, PTY shell on the agent)",
            args.gap_ms
        ),
    );
    let (mut tether, mut cat) = (tether, cat);
    report.add_p50_p99(
        "tether console -> remote shell",
        &mut tether,
        ("<= 10 ms", "<= 30 ms"),
    );
    report.add_p50_p99("cat in a pty (anchor)", &mut cat, ("", ""));
    if let Some(mut tmux) = tmux {
        report.add_p50_p99("cat in tmux (anchor)", &mut tmux, ("", ""));
    }
    Ok(report)
}
