//! Terminal sessions for headless machines: the user's login shell in a PTY.
//!
//! [`TerminalSession`] owns the shell. Its output comes out of [`TerminalSession::read`] as
//! byte chunks to relay (the console parses them with `console::terminal_view`); keystrokes go
//! in through [`TerminalSession::write`]. Blocking PTY I/O runs on plain threads joined to
//! tokio by bounded channels, so a slow consumer stalls the shell (as a slow terminal would)
//! instead of growing a buffer. Dropping the session hangs up the shell, then kills it if it
//! is still there after [`HANGUP_GRACE`].
//!
//! [`key_to_bytes`] turns a console key press into the bytes an xterm would send.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use portable_pty::{Child, ChildKiller, CommandBuilder, MasterPty, PtySize};
use tokio::sync::{mpsc, watch};

/// The terminal type the shell is told it runs in; the console's parser understands it.
pub const TERM: &str = "xterm-256color";
/// Shell used when neither the caller nor `$SHELL` names one.
pub const FALLBACK_SHELL: &str = "/bin/sh";
/// How long a hung-up shell may take to exit before it is killed.
pub const HANGUP_GRACE: Duration = Duration::from_secs(2);
/// Largest single read from the PTY.
const READ_CHUNK: usize = 16 * 1024;
/// Chunks queued between the PTY reader and the consumer: at most 1 MiB of output waits.
const OUTPUT_QUEUE: usize = 64;
/// [`TerminalSession::read`] joins queued chunks into one of about this size.
const COALESCE_LIMIT: usize = 64 * 1024;
/// Keystroke and paste writes queued for the PTY.
const INPUT_QUEUE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error(
        "the shell {shell} does not exist or is not executable: set SHELL or choose another shell"
    )]
    ShellNotFound { shell: String },
    #[error("a terminal needs at least one column and one row (asked for {cols}x{rows})")]
    InvalidSize { cols: u16, rows: u16 },
    #[error("cannot {action}: {reason}")]
    Pty {
        action: &'static str,
        reason: String,
    },
    #[error("cannot start the terminal's I/O thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the terminal session has ended")]
    Closed,
    #[error("cannot learn how the shell exited: {0}")]
    Wait(String),
}

fn pty_error(action: &'static str) -> impl FnOnce(anyhow::Error) -> TerminalError {
    move |e| TerminalError::Pty {
        action,
        reason: format!("{e:#}"),
    }
}

/// How the shell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalExit {
    /// Exit code (1 when a signal ended it).
    pub code: u32,
    /// The signal that ended it, as the system describes it ("Hangup", "Killed").
    pub signal: Option<String>,
}

impl TerminalExit {
    pub fn success(&self) -> bool {
        self.code == 0 && self.signal.is_none()
    }
}

impl std::fmt::Display for TerminalExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.signal {
            Some(signal) => write!(f, "ended by signal: {signal}"),
            None => write!(f, "exited with code {}", self.code),
        }
    }
}

type ExitOutcome = Result<TerminalExit, String>;
type OutputQueue = mpsc::Receiver<Vec<u8>>;
type InputQueue = mpsc::Sender<Vec<u8>>;

/// Where the waiter thread posts the shell's end: a watch for async waiters, a condvar for
/// the thread that escalates a hang-up to a kill.
struct ExitNotice {
    outcome: Mutex<Option<ExitOutcome>>,
    ended: Condvar,
    watch: watch::Sender<Option<ExitOutcome>>,
}

impl ExitNotice {
    fn post(&self, outcome: ExitOutcome) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome.clone());
        self.ended.notify_all();
        self.watch.send_replace(Some(outcome));
    }

    /// True if the shell ended within `timeout`.
    fn wait_for_end(&self, timeout: Duration) -> bool {
        let guard = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .ended
            .wait_timeout_while(guard, timeout, |o| o.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.is_some()
    }
}

fn non_zero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

/// A login shell running in a PTY. Kill-on-drop.
pub struct TerminalSession {
    /// The PTY's controlling side and its size (cols, rows).
    pty: Mutex<(Box<dyn MasterPty + Send>, (u16, u16))>,
    output: OutputQueue,
    input: InputQueue,
    killer: Box<dyn ChildKiller + Send + Sync>,
    exit: Arc<ExitNotice>,
    exit_rx: watch::Receiver<Option<ExitOutcome>>,
    pid: Option<u32>,
    hung_up: bool,
    /// The screen as the shell drew it (everything [`read`](Self::read) returned), so a
    /// viewer who attaches late starts from it instead of a blank screen.
    screen: Mutex<vt100::Parser>,
}

impl std::fmt::Debug for TerminalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalSession")
            .field("pid", &self.pid)
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// The shell to run: the caller's choice, else `$SHELL`, else [`FALLBACK_SHELL`].
pub fn resolve_shell(explicit: Option<&str>, env_shell: Option<OsString>) -> PathBuf {
    match explicit.filter(|s| !s.is_empty()) {
        Some(shell) => PathBuf::from(shell),
        None => env_shell
            .filter(|s| !s.is_empty())
            .map_or_else(|| PathBuf::from(FALLBACK_SHELL), PathBuf::from),
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

fn pty_size(cols: u16, rows: u16) -> Result<PtySize, TerminalError> {
    if cols == 0 || rows == 0 {
        return Err(TerminalError::InvalidSize { cols, rows });
    }
    Ok(PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    })
}

impl TerminalSession {
    /// Start a login shell (`shell`, else `$SHELL`, else `/bin/sh`) in a `cols` x `rows` PTY,
    /// in the user's home directory, with `TERM=xterm-256color`. The agent's `TETHER_*`
    /// variables (its enrolment link among them) are not passed on. Does not block; the
    /// async methods need a tokio runtime.
    pub fn spawn(cols: u16, rows: u16, shell: Option<&str>) -> Result<Self, TerminalError> {
        let size = pty_size(cols, rows)?;
        let shell = resolve_shell(shell, std::env::var_os("SHELL"));
        if !is_executable(&shell) {
            return Err(TerminalError::ShellNotFound {
                shell: shell.display().to_string(),
            });
        }
        let pair = portable_pty::native_pty_system()
            .openpty(size)
            .map_err(pty_error("open a pseudo-terminal"))?;

        // The default program is `$SHELL` started as a login shell (argv0 "-sh").
        let mut cmd = CommandBuilder::new_default_prog();
        cmd.env("SHELL", shell.as_os_str());
        cmd.env("TERM", TERM);
        cmd.env("COLORTERM", "truecolor");
        // The agent's own settings (an enrolment link among them) and anything that would
        // contradict the PTY's size or make the shell think it is inside the agent's tmux.
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("TETHER_")
                || matches!(&*name, "COLUMNS" | "LINES" | "TMUX" | "TMUX_PANE")
            {
                cmd.env_remove(&key);
            }
        }
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(pty_error("start the shell"))?;
        // The shell holds the slave side now; ours would keep the reader from seeing the end.
        drop(pair.slave);
        let mut killer = child.clone_killer();
        let pid = child.process_id();
        let (exit_tx, exit_rx) = watch::channel(None);
        let exit = Arc::new(ExitNotice {
            outcome: Mutex::new(None),
            ended: Condvar::new(),
            watch: exit_tx,
        });

        let started = Self::start_threads(&*pair.master, child, &exit);
        let (output, input) = match started {
            Ok(channels) => channels,
            Err(e) => {
                let _ = killer.kill();
                return Err(e);
            }
        };
        tracing::debug!(?pid, shell = %shell.display(), cols, rows, "terminal session started");
        Ok(Self {
            pty: Mutex::new((pair.master, (cols, rows))),
            output,
            input,
            killer,
            exit,
            exit_rx,
            pid,
            hung_up: false,
            screen: Mutex::new(vt100::Parser::new(non_zero(rows), non_zero(cols), 0)),
        })
    }

    fn start_threads(
        master: &dyn MasterPty,
        mut child: Box<dyn Child + Send + Sync>,
        exit: &Arc<ExitNotice>,
    ) -> Result<(OutputQueue, InputQueue), TerminalError> {
        // The waiter owns the child first, so that whatever fails next, the shell is reaped.
        let notice = Arc::clone(exit);
        std::thread::Builder::new()
            .name("terminal-wait".into())
            .spawn(move || {
                let outcome = child
                    .wait()
                    .map(|s| TerminalExit {
                        code: s.exit_code(),
                        signal: s.signal().map(str::to_owned),
                    })
                    .map_err(|e| e.to_string());
                tracing::debug!(?outcome, "terminal shell ended");
                notice.post(outcome);
            })
            .map_err(TerminalError::Thread)?;

        let reader = master
            .try_clone_reader()
            .map_err(pty_error("read from the pseudo-terminal"))?;
        let writer = master
            .take_writer()
            .map_err(pty_error("write to the pseudo-terminal"))?;
        let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE);
        std::thread::Builder::new()
            .name("terminal-read".into())
            .spawn(move || pump_output(reader, &out_tx))
            .map_err(TerminalError::Thread)?;

        let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
        std::thread::Builder::new()
            .name("terminal-write".into())
            .spawn(move || pump_input(writer, in_rx))
            .map_err(TerminalError::Thread)?;
        Ok((out_rx, in_tx))
    }

    /// The next output, joining whatever has queued up (about 64 KiB at most) into one chunk.
    /// `None` once the shell and everything it started have closed the terminal.
    /// Cancel-safe: usable in `select!`.
    pub async fn read(&mut self) -> Option<Vec<u8>> {
        let mut chunk = self.output.recv().await?;
        while chunk.len() < COALESCE_LIMIT {
            match self.output.try_recv() {
                Ok(more) => chunk.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        self.screen
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .process(&chunk);
        Some(chunk)
    }

    /// Bytes that redraw the current screen (contents, colours, cursor, input modes) on a
    /// blank terminal of the session's size; `None` while the screen is still blank.
    pub fn replay(&self) -> Option<Vec<u8>> {
        let parser = self.screen.lock().unwrap_or_else(PoisonError::into_inner);
        let screen = parser.screen();
        if screen.contents().trim().is_empty() {
            return None;
        }
        Some(screen.state_formatted().into_bytes())
    }

    /// Send keystrokes (or pasted text) to the shell. Waits only if a large paste is still
    /// being written.
    pub async fn write(&self, bytes: &[u8]) -> Result<(), TerminalError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.input
            .send(bytes.to_vec())
            .await
            .map_err(|_| TerminalError::Closed)
    }

    /// Change the terminal's size; the shell gets `SIGWINCH`.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), TerminalError> {
        let size = pty_size(cols, rows)?;
        let mut pty = self.pty.lock().unwrap_or_else(PoisonError::into_inner);
        pty.0
            .resize(size)
            .map_err(pty_error("resize the terminal"))?;
        pty.1 = (cols, rows);
        self.screen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .screen_mut()
            .set_size(non_zero(rows), non_zero(cols));
        Ok(())
    }

    /// Current size as (cols, rows).
    pub fn size(&self) -> (u16, u16) {
        self.pty.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    /// The shell's process id.
    pub fn process_id(&self) -> Option<u32> {
        self.pid
    }

    /// How the shell ended, if it has.
    pub fn exit_status(&self) -> Option<Result<TerminalExit, TerminalError>> {
        self.exit_rx
            .borrow()
            .clone()
            .map(|o| o.map_err(TerminalError::Wait))
    }

    /// Wait for the shell to end. Cancel-safe.
    pub async fn wait(&self) -> Result<TerminalExit, TerminalError> {
        let mut rx = self.exit_rx.clone();
        let outcome = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| TerminalError::Closed)?
            .clone();
        match outcome {
            Some(outcome) => outcome.map_err(TerminalError::Wait),
            None => Err(TerminalError::Closed),
        }
    }

    /// Hang up the shell (`SIGHUP`, as when a terminal closes) and kill it if it is still
    /// running after [`HANGUP_GRACE`]. Returns at once; [`Self::wait`] reports the end.
    pub fn hang_up(&mut self) {
        if self.hung_up || self.exit_rx.borrow().is_some() {
            return;
        }
        self.hung_up = true;
        if let Err(e) = self.killer.kill() {
            tracing::debug!(%e, "cannot hang up the terminal's shell");
        }
        let exit = Arc::clone(&self.exit);
        let pid = self.pid;
        let escalate = move || {
            if !exit.wait_for_end(HANGUP_GRACE) {
                kill_hard(pid);
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("terminal-hangup".into())
            .spawn(escalate)
        {
            tracing::warn!(%e, "cannot watch the hung-up shell; killing it now");
            kill_hard(self.pid);
        }
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        self.hang_up();
    }
}

#[cfg(unix)]
fn kill_hard(pid: Option<u32>) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    tracing::info!(pid, "terminal shell ignored the hang-up; killing it");
    // Its children may hold the terminal open: take its process group with it.
    let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

#[cfg(not(unix))]
fn kill_hard(_pid: Option<u32>) {}

fn pump_output(mut reader: Box<dyn Read + Send>, out: &mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match reader.read(&mut buf) {
            // EOF, or EIO once the last holder of the terminal's other side has gone.
            Ok(0) => break,
            Ok(n) => {
                // Blocks when the consumer is behind: the shell then blocks on its writes.
                if out.blocking_send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(%e, "terminal output ended");
                break;
            }
        }
    }
}

fn pump_input(mut writer: Box<dyn Write + Send>, mut input: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = input.blocking_recv() {
        if let Err(e) = writer.write_all(&bytes).and_then(|()| writer.flush()) {
            tracing::debug!(%e, "terminal input ended");
            break;
        }
    }
}

/// Whether the remote application asked for application cursor keys (DECCKM); the console's
/// screen model knows (`TerminalView::application_cursor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CursorKeys {
    #[default]
    Normal,
    Application,
}

/// The bytes an xterm sends for a key press, or `None` for keys that send nothing (releases,
/// modifiers alone, media keys, F13 and beyond).
pub fn key_to_bytes(key: &KeyEvent, cursor_keys: CursorKeys) -> Option<Vec<u8>> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let mods = key.modifiers;
    let alt = mods.contains(KeyModifiers::ALT);
    let ctrl = mods.contains(KeyModifiers::CONTROL);
    // xterm's modifier parameter: 1 + shift(1) + alt(2) + ctrl(4).
    let param =
        1 + u8::from(mods.contains(KeyModifiers::SHIFT)) + 2 * u8::from(alt) + 4 * u8::from(ctrl);
    let app = cursor_keys == CursorKeys::Application;

    // Cursor-style keys: CSI 1;m X with modifiers, else SS3 X (application) or CSI X.
    let letter = |c: u8, ss3_without_mods: bool| -> Vec<u8> {
        if param > 1 {
            format!("\x1b[1;{param}{}", c as char).into_bytes()
        } else if ss3_without_mods {
            vec![0x1b, b'O', c]
        } else {
            vec![0x1b, b'[', c]
        }
    };
    // Editing and function keys: CSI n ~ or CSI n;m ~.
    let tilde = |n: u8| -> Vec<u8> {
        if param > 1 {
            format!("\x1b[{n};{param}~").into_bytes()
        } else {
            format!("\x1b[{n}~").into_bytes()
        }
    };
    let with_alt = |mut bytes: Vec<u8>| -> Vec<u8> {
        if alt {
            bytes.insert(0, 0x1b);
        }
        bytes
    };

    let bytes = match key.code {
        KeyCode::Char(c) => {
            let control = if ctrl { ctrl_byte(c) } else { None };
            match control {
                Some(b) => with_alt(vec![b]),
                None => {
                    let mut utf8 = [0u8; 4];
                    with_alt(c.encode_utf8(&mut utf8).as_bytes().to_vec())
                }
            }
        }
        KeyCode::Enter => with_alt(vec![b'\r']),
        KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => b"\x1b[Z".to_vec(),
        KeyCode::Tab => with_alt(vec![b'\t']),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace if ctrl => with_alt(vec![0x08]),
        KeyCode::Backspace => with_alt(vec![0x7f]),
        KeyCode::Esc => with_alt(vec![0x1b]),
        KeyCode::Up => letter(b'A', app),
        KeyCode::Down => letter(b'B', app),
        KeyCode::Right => letter(b'C', app),
        KeyCode::Left => letter(b'D', app),
        KeyCode::Home => letter(b'H', app),
        KeyCode::End => letter(b'F', app),
        KeyCode::Insert => tilde(2),
        KeyCode::Delete => tilde(3),
        KeyCode::PageUp => tilde(5),
        KeyCode::PageDown => tilde(6),
        KeyCode::F(n @ 1..=4) => letter(b'P' + (n - 1), true),
        KeyCode::F(n @ 5..=12) => tilde([15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)]),
        _ => return None,
    };
    Some(bytes)
}

/// The control byte for Ctrl+`c`, as xterm sends it.
fn ctrl_byte(c: char) -> Option<u8> {
    match c {
        'a'..='z' | 'A'..='Z' => Some((c.to_ascii_lowercase() as u8) & 0x1f),
        ' ' | '@' | '2' => Some(0x00),
        '[' | '3' => Some(0x1b),
        '\\' | '4' => Some(0x1c),
        ']' | '5' => Some(0x1d),
        '^' | '6' => Some(0x1e),
        '_' | '7' | '/' => Some(0x1f),
        '?' | '8' => Some(0x7f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    fn bytes(code: KeyCode, mods: KeyModifiers) -> Vec<u8> {
        key_to_bytes(&key(code, mods), CursorKeys::Normal).expect("key sends bytes")
    }

    #[test]
    fn keys_map_to_xterm_bytes() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        let shift = KeyModifiers::SHIFT;
        let table: &[(KeyCode, KeyModifiers, &[u8])] = &[
            (KeyCode::Char('a'), none, b"a"),
            (KeyCode::Char('A'), shift, b"A"),
            (KeyCode::Char('é'), none, "é".as_bytes()),
            (KeyCode::Char('c'), ctrl, b"\x03"),
            (KeyCode::Char('d'), ctrl, b"\x04"),
            (KeyCode::Char('z'), ctrl, b"\x1a"),
            (KeyCode::Char('C'), ctrl | shift, b"\x03"),
            (KeyCode::Char(' '), ctrl, b"\x00"),
            (KeyCode::Char('['), ctrl, b"\x1b"),
            (KeyCode::Char(']'), ctrl, b"\x1d"),
            (KeyCode::Char('b'), alt, b"\x1bb"),
            (KeyCode::Char('x'), ctrl | alt, b"\x1b\x18"),
            (KeyCode::Enter, none, b"\r"),
            (KeyCode::Tab, none, b"\t"),
            (KeyCode::BackTab, shift, b"\x1b[Z"),
            (KeyCode::Backspace, none, b"\x7f"),
            (KeyCode::Backspace, alt, b"\x1b\x7f"),
            (KeyCode::Backspace, ctrl, b"\x08"),
            (KeyCode::Esc, none, b"\x1b"),
            (KeyCode::Up, none, b"\x1b[A"),
            (KeyCode::Down, none, b"\x1b[B"),
            (KeyCode::Right, none, b"\x1b[C"),
            (KeyCode::Left, none, b"\x1b[D"),
            (KeyCode::Right, ctrl, b"\x1b[1;5C"),
            (KeyCode::Left, alt, b"\x1b[1;3D"),
            (KeyCode::Up, shift, b"\x1b[1;2A"),
            (KeyCode::Home, none, b"\x1b[H"),
            (KeyCode::End, none, b"\x1b[F"),
            (KeyCode::Insert, none, b"\x1b[2~"),
            (KeyCode::Delete, none, b"\x1b[3~"),
            (KeyCode::Delete, ctrl, b"\x1b[3;5~"),
            (KeyCode::PageUp, none, b"\x1b[5~"),
            (KeyCode::PageDown, none, b"\x1b[6~"),
            (KeyCode::F(1), none, b"\x1bOP"),
            (KeyCode::F(4), none, b"\x1bOS"),
            (KeyCode::F(1), shift, b"\x1b[1;2P"),
            (KeyCode::F(5), none, b"\x1b[15~"),
            (KeyCode::F(6), none, b"\x1b[17~"),
            (KeyCode::F(10), none, b"\x1b[21~"),
            (KeyCode::F(11), none, b"\x1b[23~"),
            (KeyCode::F(12), none, b"\x1b[24~"),
            (KeyCode::F(12), ctrl, b"\x1b[24;5~"),
        ];
        for (code, mods, want) in table {
            assert_eq!(bytes(*code, *mods), want.to_vec(), "{code:?} with {mods:?}");
        }
    }

    #[test]
    fn application_cursor_mode_uses_ss3_for_unmodified_arrows() {
        let app = |code, mods| key_to_bytes(&key(code, mods), CursorKeys::Application);
        assert_eq!(
            app(KeyCode::Up, KeyModifiers::NONE),
            Some(b"\x1bOA".to_vec())
        );
        assert_eq!(
            app(KeyCode::Home, KeyModifiers::NONE),
            Some(b"\x1bOH".to_vec())
        );
        assert_eq!(
            app(KeyCode::Up, KeyModifiers::CONTROL),
            Some(b"\x1b[1;5A".to_vec())
        );
    }

    #[test]
    fn releases_and_silent_keys_send_nothing() {
        let mut release = key(KeyCode::Char('a'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(key_to_bytes(&release, CursorKeys::Normal), None);
        for code in [KeyCode::F(13), KeyCode::CapsLock, KeyCode::Null] {
            assert_eq!(
                key_to_bytes(&key(code, KeyModifiers::NONE), CursorKeys::Normal),
                None
            );
        }
        let mut repeat = key(KeyCode::Char('a'), KeyModifiers::NONE);
        repeat.kind = KeyEventKind::Repeat;
        assert_eq!(
            key_to_bytes(&repeat, CursorKeys::Normal),
            Some(b"a".to_vec())
        );
    }

    #[test]
    fn shell_is_explicit_then_env_then_fallback() {
        assert_eq!(
            resolve_shell(Some("/bin/zsh"), Some("/bin/bash".into())),
            PathBuf::from("/bin/zsh")
        );
        assert_eq!(
            resolve_shell(None, Some("/bin/bash".into())),
            PathBuf::from("/bin/bash")
        );
        assert_eq!(
            resolve_shell(Some(""), Some("".into())),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(resolve_shell(None, None), PathBuf::from(FALLBACK_SHELL));
    }

    #[test]
    fn a_session_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TerminalSession>();
    }

    #[test]
    fn bad_size_and_missing_shell_are_errors() {
        assert!(matches!(
            TerminalSession::spawn(0, 24, Some("/bin/sh")),
            Err(TerminalError::InvalidSize { cols: 0, rows: 24 })
        ));
        assert!(matches!(
            TerminalSession::spawn(80, 24, Some("/no/such/shell")),
            Err(TerminalError::ShellNotFound { .. })
        ));
    }
}
