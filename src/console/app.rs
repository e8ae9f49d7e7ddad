//! The loop: terminal events, hub events and a one-second tick become messages; `update` turns
//! them into state and effects; effects run here; the screen is drawn at most once per batch of
//! queued events, and only when something changed.

use std::collections::VecDeque;
use std::io::{self, Stdout, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt as _;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use super::ConsoleOptions;
use super::clipboard::{Clipboard, TerminalEnv};
use super::config::Config;
use super::desktop::{self, GraphicsPainter};
use super::keymap::Keymap;
use super::late_replies::{self, LateReplies};
use super::net::{self, NetCommand, NetEvent};
use super::state::State;
use super::state::{Screen, ViewerMode};
use super::theme::Themes;
use super::ui;
use super::update::{self, Effect, Msg, Startup, normalize_hub};
use crate::client::store::LoginStore;
use crate::frame::Framebuffer;
use crate::render::{Capabilities, CellSize, Environment, RenderMode, RenderOverride, detect};

pub(super) async fn run(opts: ConsoleOptions) -> anyhow::Result<()> {
    // Settings are checked before the terminal is taken over, so their errors print plainly.
    let config = Config::load(&Config::path(&opts.paths))?;
    let themes = Themes::load(
        opts.theme.as_deref().or(config.theme.as_deref()),
        &opts.paths.config,
    )?;
    // A bad keymap file must not keep the console from starting: the defaults, and why.
    let (keymap, keymap_error) = match Keymap::load(&Keymap::path(&opts.paths)) {
        Ok(keymap) => (keymap, None),
        Err(e) => (
            Keymap::default(),
            Some(format!(
                "Your keymap was not used: {e}. The default keys apply; fix that line and restart."
            )),
        ),
    };
    let keymap = keymap.overridden(&config.keys);
    let _log_guard = crate::logging::to_file(&opts.paths.logs(), "console");
    let store = LoginStore::new(opts.paths.state.clone());
    let startup = startup(&opts, &store);
    tracing::info!(?config.clipboard, theme = %themes.get(themes.initial).name, "console starting");

    let mut state = State::new(Utc::now(), keymap, themes.names(), themes.initial);
    state.demo_password = opts.preset.as_ref().and_then(|p| p.password.clone());
    if let Some(warning) = keymap_error {
        tracing::warn!(%warning, "keymap file refused");
        state.login.notice = Some(warning.clone());
        state.startup_warning = Some(warning);
    }
    let env = crate::render::Environment::from_process();
    state.color_depth = env.color_depth();
    // Ask the terminal before crossterm's event reader exists, so the replies are not read
    // as keys (and nothing else reads stdin meanwhile).
    let over = opts.render.or(config.render).unwrap_or_default();
    let (modes, cell, sixel_colors, asked) = render_setup(&env, over);
    let late_replies = if asked {
        LateReplies::new(Instant::now(), late_replies::WINDOW)
    } else {
        LateReplies::off()
    };
    tracing::info!(?modes, ?cell, sixel_colors, %over, "live desktop render modes");
    state.render_modes = modes;
    state.cell = cell;
    let text_asked = matches!(
        over,
        RenderOverride::HalfBlock | RenderOverride::Quadrant | RenderOverride::Sextant
    );
    if !text_asked && let Some(why) = env.graphics_refused() {
        tracing::info!(why, "graphics through tmux refused");
        state.render_note = Some(why.to_owned());
    }
    let screenshots = screenshots_dir(&opts.paths);
    let (net, net_events) = net::spawn();
    let mut terminal = TerminalGuard::enter()?;
    let mut app = App {
        state,
        themes,
        store,
        net,
        clipboard: Clipboard::new(config.clipboard, TerminalEnv::from_env()),
        queue: VecDeque::new(),
        quit: false,
        mouse_captured: false,
        painter: GraphicsPainter::with_sixel_colors(sixel_colors).in_tmux_pane(env.tmux_pane),
        screenshots,
        late_replies,
    };
    let size = terminal.terminal.size()?;
    app.dispatch(Msg::Resize {
        width: size.width,
        height: size.height,
    });
    let effects = update::start(&mut app.state, startup);
    app.run_effects(effects);
    let result = app.event_loop(&mut terminal, net_events).await;
    if !app.quit {
        // Left on an error: still close the hub connection cleanly.
        let _ = app.net.send(NetCommand::Shutdown);
    }
    drop(terminal);
    if let Err(e) = &result {
        tracing::error!("console stopped: {e:#}");
    }
    result
}

/// The render modes to offer (the first is used first), the terminal's cell size in pixels,
/// its sixel colour registers (at most 256), and whether the terminal was asked (its answers
/// may come late). A text mode asked for by name asks only when the kernel does not know the
/// cell's pixel size (text keeps the picture's aspect with it).
fn render_setup(env: &Environment, over: RenderOverride) -> (Vec<RenderMode>, CellSize, u16, bool) {
    use std::io::IsTerminal as _;
    let text = matches!(
        over,
        RenderOverride::HalfBlock | RenderOverride::Quadrant | RenderOverride::Sextant
    );
    let window = detect::window_cell();
    let ask = (!text || window.is_none()) && io::stdout().is_terminal();
    let caps = if ask {
        detect::query(env, detect::QUERY_TIMEOUT)
    } else {
        Capabilities::default()
    };
    tracing::info!(?caps, ?env, "terminal capabilities");
    (
        // A text mode by name offers what it did unasked: the answers gave only the cell size.
        if text {
            detect::supported(&Capabilities::default(), env, over)
        } else {
            detect::supported(&caps, env, over)
        },
        // Text modes need it too (their pixels are rarely square): the kernel's window size
        // when the terminal was not asked, then a guess.
        caps.cell.or(window).unwrap_or_default(),
        detect::sixel_colors(&caps),
        ask,
    )
}

/// Where screenshots go: under `TETHER_HOME` its data dir, else the user's downloads folder
/// (or the data dir when there is none).
fn screenshots_dir(paths: &crate::paths::Paths) -> PathBuf {
    let home = std::env::var_os("TETHER_HOME").is_some_and(|h| !h.is_empty());
    let downloads = directories::UserDirs::new().and_then(|u| u.download_dir().map(PathBuf::from));
    match downloads {
        Some(dir) if !home => dir,
        _ => paths.data.join("screenshots"),
    }
}

/// Write `picture` as `tether-HOST-YYYYmmdd-HHMMSS.png` into `dir` (made if missing); never
/// overwrites a file (a counter is added).
pub(crate) fn save_screenshot(
    dir: &Path,
    picture: &Framebuffer,
    hostname: &str,
    at: chrono::DateTime<Utc>,
) -> Result<PathBuf, String> {
    let png = desktop::png_bytes(picture).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let host: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let stamp = at.format("%Y%m%d-%H%M%S");
    for n in 0..100 {
        let name = if n == 0 {
            format!("tether-{host}-{stamp}.png")
        } else {
            format!("tether-{host}-{stamp}-{n}.png")
        };
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match file {
            Ok(mut file) => {
                file.write_all(&png)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
        }
    }
    Err(format!(
        "too many screenshots named {host}-{stamp} in {}",
        dir.display()
    ))
}

/// How to start: a preset login (demo), a stored one, or the form.
fn startup(opts: &ConsoleOptions, store: &LoginStore) -> Startup {
    if let Some(preset) = &opts.preset {
        return Startup::Preset {
            hub: normalize_hub(&preset.hub),
            fingerprint: preset.fingerprint.clone(),
            token: preset.token.clone(),
        };
    }
    let stored = match &opts.hub {
        Some(hub) => store.login(hub),
        None => store.last_login(),
    };
    let Some(login) = stored else {
        return Startup::Form {
            hub: opts.hub.as_deref().map(normalize_hub),
            user: None,
        };
    };
    let hub = normalize_hub(&login.hub);
    match store.known_fingerprint(&hub) {
        Some(fingerprint) if login.expires_at > Utc::now() => Startup::Stored {
            hub,
            user: login.user,
            token: login.token,
            fingerprint,
        },
        _ => Startup::Form {
            hub: Some(hub),
            user: Some(login.user),
        },
    }
}

/// The shortest time between two draws: a refresh of a fast display (120 Hz). A key typed
/// after a quiet moment is drawn at once; only bursts are held to this rate.
const DRAW_INTERVAL: Duration = Duration::from_millis(8);

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct App {
    state: State,
    themes: Themes,
    store: LoginStore,
    net: mpsc::UnboundedSender<NetCommand>,
    clipboard: Clipboard,
    /// Messages produced by effects, handled before the next frame.
    queue: VecDeque<Msg>,
    quit: bool,
    /// The mouse is captured: a live desktop is open.
    mouse_captured: bool,
    /// Writes a sixel or kitty desktop after each draw.
    painter: GraphicsPainter,
    /// Where screenshots are written.
    screenshots: PathBuf,
    /// Drops the terminal's late answers to the capability questions.
    late_replies: LateReplies,
}

impl App {
    async fn event_loop(
        &mut self,
        terminal: &mut TerminalGuard,
        mut net_events: mpsc::UnboundedReceiver<NetEvent>,
    ) -> anyhow::Result<()> {
        let mut terminal_events = EventStream::new();
        // SIGTERM, SIGHUP, SIGINT: leave as on a quit (in raw mode Ctrl-C is a key, not this).
        let mut stop = crate::signals::listen();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut net_open = true;
        // When the screen was last drawn: draws are capped to the display's rate, so a burst
        // of hub events or frames costs one draw per refresh, not one per event.
        let mut drawn_at: Option<Instant> = None;
        loop {
            let due = drawn_at.map(|at| at + DRAW_INTERVAL);
            if self.state.dirty && due.is_none_or(|due| Instant::now() >= due) {
                let theme = self.themes.get(self.state.theme);
                terminal
                    .terminal
                    .draw(|frame| ui::draw(&self.state, theme, frame))?;
                self.state.dirty = false;
                drawn_at = Some(Instant::now());
            }
            // Sixel or kitty pictures go straight to the terminal, after ratatui's frame.
            self.paint_graphics(terminal)?;
            // OSC 52 goes straight to the terminal, after the frame, outside ratatui's buffer.
            if let Some(sequence) = self.clipboard.take_pending() {
                let mut out = io::stdout();
                out.write_all(sequence.as_bytes())?;
                out.flush()?;
            }
            if self.quit {
                return Ok(());
            }
            self.follow_mouse_capture()?;
            // A draw held back by the cap is made when its time comes, even with no new event.
            let held = self
                .state
                .dirty
                .then_some(due)
                .flatten()
                .map(tokio::time::Instant::from_std);
            // Every input is awaited: the stream's waker is the loop's, so a key wakes the
            // loop the moment crossterm reads it (never on the next tick).
            tokio::select! {
                signal = crate::signals::stop_requested(stop.as_mut()) => {
                    tracing::info!(signal = signal.name(), "console stopping on request");
                    return Ok(());
                }
                event = terminal_events.next() => match event {
                    Some(Ok(event)) => self.on_terminal_event(event),
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()), // the terminal is gone
                },
                event = net_events.recv(), if net_open => match event {
                    Some(event) => self.dispatch(Msg::Net(event)),
                    None => {
                        net_open = false;
                        self.dispatch(Msg::EffectFailed("The connection to the hub stopped; restart the console.".into()));
                    }
                },
                _ = tick.tick() => self.dispatch(Msg::Tick(Utc::now())),
                () = sleep_until_some(held) => {}
            }
            // Drain everything already queued, then draw once. The terminal stream is polled
            // with this task's own waker (`biased` select with a ready fallback), never with a
            // no-op one: crossterm keeps the waker of the last poll, and a no-op waker would
            // leave keys unread until something else woke the loop.
            loop {
                let mut handled = false;
                while let Ok(event) = net_events.try_recv() {
                    self.dispatch(Msg::Net(event));
                    handled = true;
                }
                loop {
                    let event = tokio::select! {
                        biased;
                        event = terminal_events.next() => event,
                        () = std::future::ready(()) => break,
                    };
                    match event {
                        Some(Ok(event)) => self.on_terminal_event(event),
                        Some(Err(e)) => return Err(e.into()),
                        None => return Ok(()),
                    }
                    handled = true;
                }
                if !handled || self.quit {
                    break;
                }
            }
        }
    }

    /// Write what changed of a graphics-mode desktop (nothing in text modes, nothing when
    /// nothing changed).
    fn paint_graphics(&mut self, terminal: &mut TerminalGuard) -> io::Result<()> {
        let size = terminal.terminal.size()?;
        let state = &mut self.state;
        // What the viewer draws over the picture: its menu and the help (see `ui::draw`).
        let covered = state.dialog.is_some()
            || state.screen != Screen::Main
            || state
                .viewer
                .as_ref()
                .is_some_and(|v| v.mode != ViewerMode::Live || v.ended.is_some());
        let desktop = if state.screen == Screen::Main && size.height >= 2 {
            state.viewer.as_mut().and_then(|v| v.desktop.as_mut())
        } else {
            None
        };
        // The viewer's screen: every row but the status line.
        let area = ratatui::layout::Rect::new(0, 0, size.width, size.height.saturating_sub(1));
        let bytes = self.painter.paint(desktop, area, size.height, covered);
        if !bytes.is_empty() {
            let mut out = io::stdout();
            out.write_all(&bytes)?;
            out.flush()?;
        }
        Ok(())
    }

    fn on_terminal_event(&mut self, event: Event) {
        if self.late_replies.swallow(&event, Instant::now()) {
            tracing::debug!(?event, "dropped: part of a late terminal answer");
            return;
        }
        let msg = match event {
            Event::Key(key) => Msg::Key(key),
            Event::Paste(text) => Msg::Paste(text),
            Event::Mouse(mouse) => Msg::Mouse(mouse),
            Event::Resize(width, height) => {
                self.painter.follow_tmux_pane();
                Msg::Resize { width, height }
            }
            _ => return,
        };
        self.dispatch(msg);
    }

    /// Capture the mouse while a live desktop is open, and only then (the technician's
    /// terminal keeps its own selection everywhere else). Released on exit by the guard.
    fn follow_mouse_capture(&mut self) -> io::Result<()> {
        let wanted = self
            .state
            .viewer
            .as_ref()
            .is_some_and(|v| v.desktop.is_some());
        if wanted != self.mouse_captured {
            if wanted {
                execute!(io::stdout(), EnableMouseCapture)?;
            } else {
                execute!(io::stdout(), DisableMouseCapture)?;
            }
            self.mouse_captured = wanted;
        }
        Ok(())
    }

    /// Update with a message and with every message its effects produce.
    fn dispatch(&mut self, msg: Msg) {
        self.queue.push_back(msg);
        while let Some(msg) = self.queue.pop_front() {
            let effects = update::update(&mut self.state, msg);
            self.run_effects(effects);
        }
    }

    fn run_effects(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Net(mut command) => {
                    // The device token is the login store's, not the pure update's.
                    if let NetCommand::Login {
                        hub, user, device, ..
                    } = &mut command
                    {
                        *device = self.store.device_token(hub, user);
                    }
                    let shutdown = matches!(command, NetCommand::Shutdown);
                    if self.net.send(command).is_err() && !shutdown {
                        self.queue.push_back(Msg::EffectFailed(
                            "The connection to the hub stopped; restart the console.".into(),
                        ));
                    }
                }
                Effect::LoadPin { hub } => {
                    let fingerprint = self.store.known_fingerprint(&hub);
                    self.queue.push_back(Msg::PinLoaded { hub, fingerprint });
                }
                Effect::Trust { hub, fingerprint } => {
                    if let Err(e) = self.store.trust(&hub, &fingerprint) {
                        tracing::warn!("cannot pin {hub}: {e}");
                        self.queue.push_back(Msg::EffectFailed(format!(
                            "Could not record the hub's fingerprint ({e}); you will be asked again next time."
                        )));
                    }
                }
                Effect::SaveLogin(login) => {
                    if let Err(e) = self.store.save_login(login) {
                        tracing::warn!("cannot save login: {e}");
                        self.queue.push_back(Msg::EffectFailed(format!(
                            "Could not save your login ({e}); you will have to log in again next time."
                        )));
                    }
                }
                Effect::ForgetLogin { hub } => {
                    if let Err(e) = self.store.forget_login(&hub) {
                        tracing::warn!("cannot forget the login for {hub}: {e}");
                    }
                }
                Effect::Copy(text) => {
                    let result = self.clipboard.copy(&text).map_err(|e| e.to_string());
                    self.queue.push_back(Msg::Copied(result));
                }
                Effect::SaveScreenshot {
                    picture,
                    hostname,
                    at,
                } => {
                    let result = save_screenshot(&self.screenshots, &picture, &hostname, at);
                    if let Err(e) = &result {
                        tracing::warn!("screenshot not saved: {e}");
                    }
                    self.queue.push_back(Msg::ScreenshotSaved(result));
                }
                Effect::Quit => self.quit = true,
            }
        }
    }
}

/// Set while the console owns the terminal, so restoring happens once, from whichever exit
/// path gets there first (normal return, error, or panic).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);

/// Owns the terminal in raw mode on the alternate screen; restores it when dropped.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        install_panic_hook();
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        let entered = enable_raw_mode()
            .and_then(|()| execute!(io::stdout(), EnterAlternateScreen, EnableBracketedPaste))
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore_terminal();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    if TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        // Raw mode first: it has more side effects than leaving the alternate screen.
        let _ = disable_raw_mode();
        let _ = execute!(
            io::stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
    }
}

/// Restore the terminal before the previous hook prints the panic, as `ratatui::init()` does.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}
