//! What the terminal can draw, and which way to draw the remote screen.
//!
//! Three parts, so that tests feed canned replies: [`query`] asks the terminal (the only I/O in
//! the renderer: primary device attributes, the kitty graphics query, cell and window pixel
//! sizes, sixel colour registers, all within 200 ms), [`parse_replies`] turns reply bytes into
//! [`Capabilities`], and [`choose`] picks a [`RenderMode`] from them, the [`Environment`]
//! and the user's [`RenderOverride`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::CellSize;
use super::cells::{ColorDepth, Glyphs};
use super::sixel::PaneOrigin;

/// How long [`query`] waits for the terminal.
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(200);

/// The kitty graphics query uses this image id; its reply names it.
const KITTY_QUERY_ID: u32 = 31;

/// What the terminal said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Any primary device attributes reply arrived (the terminal answers queries).
    pub answered: bool,
    /// Attribute 4 in the device attributes: sixel graphics.
    pub sixel: bool,
    /// The kitty graphics query was answered `OK`.
    pub kitty: bool,
    /// Pixels per cell (`CSI 16 t`, or `CSI 14 t` divided by the grid size).
    pub cell: Option<CellSize>,
    /// The text area in pixels (`CSI 14 t`), `(width, height)`.
    pub window_pixels: Option<(u16, u16)>,
    /// The grid in cells (`CSI 18 t`), `(cols, rows)`.
    pub grid: Option<(u16, u16)>,
    /// Sixel colour registers (`CSI ? 1 ; 1 ; 0 S`).
    pub sixel_registers: Option<u16>,
}

/// The process environment that bears on the choice, read once ([`Environment::from_process`])
/// or made up in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub term: Option<String>,
    pub term_program: Option<String>,
    pub colorterm: Option<String>,
    /// `KITTY_WINDOW_ID` is set.
    pub kitty_window: bool,
    /// `TMUX` is set: we are inside tmux.
    pub tmux: bool,
    /// `tmux show -gv allow-passthrough` said `on` (or `all`).
    pub tmux_passthrough: bool,
    /// Inside tmux: where our pane starts on the terminal tmux runs in, as tmux said. Sixel
    /// goes through tmux only with it (see [`PaneOrigin`]).
    pub tmux_pane: Option<PaneOrigin>,
}

impl Environment {
    /// Read the variables; inside tmux, ask tmux whether passthrough is allowed.
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let tmux = var("TMUX").is_some();
        let tmux_passthrough = tmux
            && std::process::Command::new("tmux")
                .args(["show", "-gv", "allow-passthrough"])
                .output()
                .map(|o| {
                    let v = String::from_utf8_lossy(&o.stdout);
                    o.status.success() && matches!(v.trim(), "on" | "all")
                })
                .unwrap_or(false);
        let tmux_pane = if tmux_passthrough {
            tmux_pane_origin()
        } else {
            None
        };
        Self {
            term: var("TERM"),
            term_program: var("TERM_PROGRAM"),
            colorterm: var("COLORTERM"),
            kitty_window: var("KITTY_WINDOW_ID").is_some(),
            tmux,
            tmux_passthrough,
            tmux_pane,
        }
    }

    /// Why graphics cannot be drawn here although the terminal tmux runs in might draw them,
    /// or `None`. Said to the technician when the console draws text instead.
    pub fn graphics_refused(&self) -> Option<&'static str> {
        if !self.tmux {
            None
        } else if !self.tmux_passthrough {
            Some(
                "inside tmux without allow-passthrough: the picture is drawn as text (`tmux set -g allow-passthrough on` lets sixel and kitty through)",
            )
        } else if self.tmux_pane.is_none() {
            Some("tmux did not say where this pane is: the picture is drawn as text")
        } else {
            None
        }
    }

    /// Graphics can reach the terminal: outside tmux, or through its passthrough to a known
    /// pane position.
    fn graphics_reach(&self) -> bool {
        self.graphics_refused().is_none()
    }

    fn term_is(&self, names: &[&str]) -> bool {
        let has = |v: &Option<String>| {
            v.as_deref()
                .map(str::to_ascii_lowercase)
                .is_some_and(|v| names.iter().any(|n| v.contains(n)))
        };
        has(&self.term) || has(&self.term_program)
    }

    /// Terminals known to draw the sextant block themselves (no font needed).
    fn draws_sextants(&self) -> bool {
        self.kitty_window || self.term_is(&["kitty", "foot", "wezterm", "ghostty", "contour"])
    }

    /// The colour depth for text modes. 24-bit unless the terminal is known not to have it:
    /// `COLORTERM` is often lost over ssh, so its absence alone is no reason to degrade.
    pub fn color_depth(&self) -> ColorDepth {
        let truecolor = self
            .colorterm
            .as_deref()
            .is_some_and(|c| c.contains("truecolor") || c.contains("24bit"));
        let limited = self.term_program.as_deref() == Some("Apple_Terminal")
            || self
                .term
                .as_deref()
                .is_some_and(|t| t == "linux" || t.starts_with("vt") || t == "screen");
        if truecolor || !limited {
            ColorDepth::TrueColor
        } else {
            ColorDepth::Palette256
        }
    }
}

/// How the remote screen is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenderMode {
    /// Text: `▀` cells, 1x2 pixels each.
    HalfBlock,
    /// Text: quadrant cells (`▖▗▘▝▚▞▙▛▜▟`, in nearly every font), 2x2 pixels each.
    Quadrant,
    /// Text: sextant cells, 2x3 pixels each.
    Sextant,
    /// Sixel graphics (through tmux's passthrough when `tmux` is set).
    Sixel { tmux: bool },
    /// Kitty graphics (through tmux's passthrough when `tmux` is set).
    Kitty { tmux: bool },
}

impl RenderMode {
    /// The glyphs of a text mode.
    pub fn glyphs(self) -> Option<Glyphs> {
        match self {
            RenderMode::HalfBlock => Some(Glyphs::HalfBlock),
            RenderMode::Quadrant => Some(Glyphs::Quadrant),
            RenderMode::Sextant => Some(Glyphs::Sextant),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RenderMode::HalfBlock => "halfblock",
            RenderMode::Quadrant => "quadrant",
            RenderMode::Sextant => "sextant",
            RenderMode::Sixel { .. } => "sixel",
            RenderMode::Kitty { .. } => "kitty",
        }
    }
}

impl fmt::Display for RenderMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The user's choice (`--render`, or the console's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RenderOverride {
    #[default]
    Auto,
    Sixel,
    Kitty,
    HalfBlock,
    Quadrant,
    Sextant,
}

impl FromStr for RenderOverride {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "sixel" => Ok(Self::Sixel),
            "kitty" => Ok(Self::Kitty),
            "halfblock" | "halfblocks" | "half-block" | "half-blocks" | "half" => {
                Ok(Self::HalfBlock)
            }
            "quadrant" | "quadrants" => Ok(Self::Quadrant),
            "sextant" | "sextants" => Ok(Self::Sextant),
            other => Err(format!(
                "unknown render mode `{other}`: use auto, sixel, kitty, halfblock, quadrant or sextant"
            )),
        }
    }
}

impl fmt::Display for RenderOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Sixel => "sixel",
            Self::Kitty => "kitty",
            Self::HalfBlock => "halfblock",
            Self::Quadrant => "quadrant",
            Self::Sextant => "sextant",
        })
    }
}

/// Sixel with fewer colour registers than this looks worse than text.
const MIN_SIXEL_REGISTERS: u16 = 64;

/// Pick the mode. An explicit override wins (wrapped for tmux when inside it). Otherwise:
/// kitty graphics, then sixel, as the terminal answered (or, for kitty, as the environment
/// says); inside tmux only with passthrough allowed, and only when the cell's pixel size is
/// known (a guessed one could make an image taller than its rows and scroll the screen); else
/// sextants where the terminal draws them itself, half blocks everywhere else.
pub fn choose(caps: &Capabilities, env: &Environment, over: RenderOverride) -> RenderMode {
    let tmux = env.tmux;
    match over {
        // Asked for by name, graphics are used even when the terminal did not answer; only
        // tmux refusing to pass them (it would swallow them whole) makes text instead.
        RenderOverride::Sixel | RenderOverride::Kitty if !env.graphics_reach() => {}
        RenderOverride::Sixel => return RenderMode::Sixel { tmux },
        RenderOverride::Kitty => return RenderMode::Kitty { tmux },
        RenderOverride::HalfBlock => return RenderMode::HalfBlock,
        RenderOverride::Quadrant => return RenderMode::Quadrant,
        RenderOverride::Sextant => return RenderMode::Sextant,
        RenderOverride::Auto => {}
    }
    if let Some(mode) = graphics_modes(caps, env).first() {
        return *mode;
    }
    if env.draws_sextants() {
        RenderMode::Sextant
    } else {
        RenderMode::HalfBlock
    }
}

/// The graphics modes this terminal draws well, best first: kitty, then sixel with enough
/// colour registers; none inside tmux without passthrough or when the cell size is unknown.
fn graphics_modes(caps: &Capabilities, env: &Environment) -> Vec<RenderMode> {
    let tmux = env.tmux;
    if !env.graphics_reach() || caps.cell.is_none() {
        return Vec::new();
    }
    let mut modes = Vec::new();
    if caps.kitty || (!tmux && !caps.answered && env.kitty_window) {
        modes.push(RenderMode::Kitty { tmux });
    }
    let registers_ok = caps
        .sixel_registers
        .is_none_or(|n| n >= MIN_SIXEL_REGISTERS);
    if caps.sixel && registers_ok {
        modes.push(RenderMode::Sixel { tmux });
    }
    modes
}

/// Where our tmux pane starts on the terminal tmux runs in, as tmux says now (`None` outside
/// tmux or when it does not answer). Panes move when windows are split or resized.
pub fn tmux_pane_origin() -> Option<PaneOrigin> {
    // `-t $TMUX_PANE`: our pane, not whichever one is active.
    let pane = std::env::var("TMUX_PANE").unwrap_or_default();
    std::process::Command::new("tmux")
        .args(["display-message", "-p"])
        .args(if pane.is_empty() {
            vec![]
        } else {
            vec!["-t", pane.as_str()]
        })
        .arg("#{pane_left} #{pane_top} #{status} #{status-position}")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| parse_pane_origin(&String::from_utf8_lossy(&o.stdout)))
}

/// The pane's origin on the outer terminal from tmux's
/// `#{pane_left} #{pane_top} #{status} #{status-position}`: status lines on top push it down.
pub fn parse_pane_origin(reply: &str) -> Option<PaneOrigin> {
    let mut words = reply.split_whitespace();
    let col: u16 = words.next()?.parse().ok()?;
    let row: u16 = words.next()?.parse().ok()?;
    let status_lines = match words.next()? {
        "off" => 0,
        "on" => 1,
        n => n.parse().ok()?,
    };
    let top = words.next()? == "top";
    Some(PaneOrigin {
        col,
        row: row.saturating_add(if top { status_lines } else { 0 }),
    })
}

/// The palette size for sixel: the terminal's colour registers, at most 256 (our encoder's
/// limit); 256 when it did not say.
pub fn sixel_colors(caps: &Capabilities) -> u16 {
    caps.sixel_registers
        .map_or(super::sixel::DEFAULT_COLORS, |n| {
            n.min(super::sixel::DEFAULT_COLORS)
        })
}

/// Every mode worth offering on this terminal, the one [`choose`] picks first (an override
/// included): then the graphics modes `choose` would accept, then the three text modes.
/// The viewer's render-mode key cycles through this list.
pub fn supported(caps: &Capabilities, env: &Environment, over: RenderOverride) -> Vec<RenderMode> {
    let mut modes = vec![choose(caps, env, over)];
    modes.extend(graphics_modes(caps, env));
    modes.push(RenderMode::HalfBlock);
    modes.push(RenderMode::Quadrant);
    modes.push(RenderMode::Sextant);
    let mut seen = Vec::new();
    modes.retain(|m| {
        let new = !seen.contains(m);
        seen.push(*m);
        new
    });
    modes
}

/// The bytes that ask the terminal; primary device attributes last, since every terminal
/// answers it and so it marks the end of the replies. Inside tmux with passthrough the
/// questions go to the outer terminal, and a plain device attributes query to tmux ends them.
pub fn query_bytes(tmux_passthrough: bool) -> Vec<u8> {
    let questions = format!(
        "\x1b_Gi={KITTY_QUERY_ID},s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[16t\x1b[14t\x1b[18t\x1b[?1;1;0S"
    );
    let mut out = Vec::new();
    if tmux_passthrough {
        super::sixel::tmux_wrap(questions.as_bytes(), &mut out);
        super::sixel::tmux_wrap(b"\x1b[c", &mut out);
    } else {
        out.extend_from_slice(questions.as_bytes());
    }
    out.extend_from_slice(b"\x1b[c");
    out
}

/// Read the capabilities out of whatever the terminal sent back (unrelated bytes, such as keys
/// typed meanwhile, are skipped).
pub fn parse_replies(bytes: &[u8]) -> Capabilities {
    let mut caps = Capabilities::default();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'[' => {
                // CSI: parameters, then a final byte in 0x40..=0x7e.
                let start = i + 2;
                let Some(len) = bytes[start..]
                    .iter()
                    .position(|b| (0x40..=0x7e).contains(b))
                else {
                    break;
                };
                let params = &bytes[start..start + len];
                let fin = bytes[start + len];
                csi(&mut caps, params, fin);
                i = start + len + 1;
            }
            b'_' => {
                // APC up to ST: the kitty graphics reply `G i=31;OK`.
                let start = i + 2;
                let end = find_st(bytes, start).unwrap_or(bytes.len());
                let body = &bytes[start..end];
                if let Some(rest) = body.strip_prefix(b"G") {
                    let text = String::from_utf8_lossy(rest);
                    let (control, message) = text.split_once(';').unwrap_or((&text, ""));
                    let ours = control
                        .split(',')
                        .any(|kv| kv == format!("i={KITTY_QUERY_ID}"));
                    if ours && message == "OK" {
                        caps.kitty = true;
                    }
                }
                i = end + 2;
            }
            _ => i += 1,
        }
    }
    if caps.cell.is_none()
        && let (Some((pw, ph)), Some((cols, rows))) = (caps.window_pixels, caps.grid)
        && cols > 0
        && rows > 0
        && pw >= cols
        && ph >= rows
    {
        caps.cell = Some(CellSize::new(pw / cols, ph / rows));
    }
    caps
}

fn find_st(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(1)).find(|&j| bytes[j] == 0x1b && bytes[j + 1] == b'\\')
}

fn numbers(params: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(params)
        .split(';')
        .map(|p| p.trim_start_matches(['?', '>', '=']).parse().unwrap_or(0))
        .collect()
}

fn csi(caps: &mut Capabilities, params: &[u8], fin: u8) {
    let n = numbers(params);
    let private = params.first() == Some(&b'?');
    match fin {
        b'c' if private => {
            caps.answered = true;
            if n.iter().skip(1).any(|&a| a == 4) {
                caps.sixel = true;
            }
        }
        b't' if n.len() == 3 => {
            let (a, b) = (to_u16(n[1]), to_u16(n[2]));
            match n[0] {
                // Cell size: height; width.
                6 if a > 0 && b > 0 => caps.cell = Some(CellSize::new(b, a)),
                4 if a > 0 && b > 0 => caps.window_pixels = Some((b, a)),
                8 if a > 0 && b > 0 => caps.grid = Some((b, a)),
                _ => {}
            }
        }
        // Graphics attributes: item 1 (colour registers), status 0 (success), value.
        b'S' if private && n.len() >= 3 && n[0] == 1 && n[1] == 0 => {
            caps.sixel_registers = Some(to_u16(n[2]));
        }
        _ => {}
    }
}

fn to_u16(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Ask the terminal on `/dev/tty`, waiting at most `timeout`, then fill what it did not say
/// from `TIOCGWINSZ`. Never fails: a terminal that cannot be asked gives empty capabilities
/// (and [`choose`] falls back to text).
pub fn query(env: &Environment, timeout: Duration) -> Capabilities {
    let mut caps = ask_tty(env, timeout).unwrap_or_default();
    if (caps.cell.is_none() || caps.grid.is_none())
        && let Ok(size) = crossterm::terminal::window_size()
    {
        if caps.grid.is_none() && size.columns > 0 && size.rows > 0 {
            caps.grid = Some((size.columns, size.rows));
        }
        if caps.cell.is_none() {
            caps.cell = cell_of_window(size);
        }
    }
    caps
}

/// The cell size from the kernel's window size (`TIOCGWINSZ`), without asking the terminal:
/// `None` where the terminal leaves the pixel fields at 0 (many do; then ask with [`query`]).
pub fn window_cell() -> Option<CellSize> {
    crossterm::terminal::window_size()
        .ok()
        .and_then(cell_of_window)
}

fn cell_of_window(size: crossterm::terminal::WindowSize) -> Option<CellSize> {
    (size.width > 0 && size.height > 0 && size.columns > 0 && size.rows > 0)
        .then(|| CellSize::new(size.width / size.columns, size.height / size.rows))
}

fn ask_tty(env: &Environment, timeout: Duration) -> std::io::Result<Capabilities> {
    use std::io::Write;
    use std::os::fd::AsFd;

    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let was_raw = crossterm::terminal::is_raw_mode_enabled()?;
    if !was_raw {
        crossterm::terminal::enable_raw_mode()?;
    }
    let result = (|| {
        let passthrough = env.tmux && env.tmux_passthrough;
        tty.write_all(&query_bytes(passthrough))?;
        tty.flush()?;
        // Inside tmux two device-attribute replies may come (outer terminal and tmux).
        let wanted = if passthrough { 2 } else { 1 };
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || da_replies(&got) >= wanted {
                break;
            }
            let ts = rustix::event::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let mut fds = [rustix::event::PollFd::new(
                &tty,
                rustix::event::PollFlags::IN,
            )];
            if rustix::event::poll(&mut fds, Some(&ts))? == 0 {
                break;
            }
            let n = rustix::io::read(tty.as_fd(), &mut buf)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(parse_replies(&got))
    })();
    if !was_raw {
        crossterm::terminal::disable_raw_mode()?;
    }
    result
}

/// How many primary device attribute replies are in `bytes`.
fn da_replies(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == 0x1b && bytes[i + 1] == b'[' && bytes[i + 2] == b'?' {
            let end = bytes[i + 3..]
                .iter()
                .position(|b| (0x40..=0x7e).contains(b))
                .map(|p| i + 3 + p);
            if let Some(e) = end {
                if bytes[e] == b'c' {
                    count += 1;
                }
                i = e;
            }
        }
        i += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_parses() {
        assert_eq!("Sixel".parse(), Ok(RenderOverride::Sixel));
        assert_eq!("half-block".parse(), Ok(RenderOverride::HalfBlock));
        assert!("braille".parse::<RenderOverride>().is_err());
        assert_eq!(RenderOverride::Sextant.to_string(), "sextant");
    }

    #[test]
    fn the_pane_origin_counts_status_lines_on_top() {
        let at = |col, row| Some(PaneOrigin { col, row });
        assert_eq!(parse_pane_origin("0 0 on bottom\n"), at(0, 0));
        assert_eq!(parse_pane_origin("61 0 on top\n"), at(61, 1));
        assert_eq!(parse_pane_origin("0 12 2 top"), at(0, 14));
        assert_eq!(parse_pane_origin("5 3 off top"), at(5, 3));
        assert_eq!(parse_pane_origin(""), None);
        assert_eq!(parse_pane_origin("x 3 on top"), None);
    }

    #[test]
    fn graphics_by_name_inside_tmux_need_passthrough_and_the_pane() {
        let sixel = parse_replies(b"\x1b[6;20;10t\x1b[?1;1;256S\x1b[?62;4;22c");
        let mut env = Environment {
            tmux: true,
            ..Environment::default()
        };
        // tmux would swallow the images: text, and the reason to show.
        assert_eq!(
            choose(&sixel, &env, RenderOverride::Sixel),
            RenderMode::HalfBlock
        );
        assert!(
            env.graphics_refused()
                .is_some_and(|why| why.contains("allow-passthrough"))
        );
        env.tmux_passthrough = true;
        assert_eq!(
            choose(&sixel, &env, RenderOverride::Sixel),
            RenderMode::HalfBlock,
            "no pane position: images would land anywhere"
        );
        assert!(env.graphics_refused().is_some());
        env.tmux_pane = Some(PaneOrigin { col: 0, row: 1 });
        assert_eq!(env.graphics_refused(), None);
        assert_eq!(
            choose(&sixel, &env, RenderOverride::Sixel),
            RenderMode::Sixel { tmux: true }
        );
        assert_eq!(
            choose(&sixel, &env, RenderOverride::Auto),
            RenderMode::Sixel { tmux: true }
        );
    }

    #[test]
    fn plural_names_parse_too() {
        assert_eq!("halfblocks".parse(), Ok(RenderOverride::HalfBlock));
        assert_eq!("sextants".parse(), Ok(RenderOverride::Sextant));
        assert_eq!("quadrants".parse(), Ok(RenderOverride::Quadrant));
    }

    #[test]
    fn supported_modes_start_with_the_choice() {
        let xterm = parse_replies(b"\x1b[6;20;10t\x1b[?1;1;256S\x1b[?62;4;22c");
        let env = Environment::default();
        assert_eq!(
            supported(&xterm, &env, RenderOverride::Auto),
            [
                RenderMode::Sixel { tmux: false },
                RenderMode::HalfBlock,
                RenderMode::Quadrant,
                RenderMode::Sextant
            ]
        );
        assert_eq!(
            supported(&xterm, &env, RenderOverride::Sextant),
            [
                RenderMode::Sextant,
                RenderMode::Sixel { tmux: false },
                RenderMode::HalfBlock,
                RenderMode::Quadrant
            ]
        );
        // Inside tmux without passthrough: text only.
        let tmux = Environment {
            tmux: true,
            ..Environment::default()
        };
        assert_eq!(
            supported(&xterm, &tmux, RenderOverride::Auto),
            [
                RenderMode::HalfBlock,
                RenderMode::Quadrant,
                RenderMode::Sextant
            ]
        );
    }

    #[test]
    fn the_mode_list_offers_only_what_choose_would_pick() {
        let env = Environment::default();
        // 16 colour registers: choose() prefers text, so the menu does not offer sixel either.
        let xterm16 = parse_replies(b"\x1b[6;20;10t\x1b[?1;0;16S\x1b[?62;4;22c");
        assert_eq!(
            choose(&xterm16, &env, RenderOverride::Auto),
            RenderMode::HalfBlock
        );
        assert_eq!(
            supported(&xterm16, &env, RenderOverride::Auto),
            [
                RenderMode::HalfBlock,
                RenderMode::Quadrant,
                RenderMode::Sextant
            ]
        );
        // ...unless asked for by name.
        assert_eq!(
            supported(&xterm16, &env, RenderOverride::Sixel),
            [
                RenderMode::Sixel { tmux: false },
                RenderMode::HalfBlock,
                RenderMode::Quadrant,
                RenderMode::Sextant
            ]
        );
        // No cell size: a guessed one could let an image reach the last row.
        let no_cell = parse_replies(b"\x1b[?1;0;256S\x1b[?62;4;22c");
        assert_eq!(
            choose(&no_cell, &env, RenderOverride::Auto),
            RenderMode::HalfBlock
        );
        assert_eq!(
            supported(&no_cell, &env, RenderOverride::Auto),
            [
                RenderMode::HalfBlock,
                RenderMode::Quadrant,
                RenderMode::Sextant
            ]
        );
    }

    #[test]
    fn the_sixel_palette_has_as_many_colours_as_registers() {
        assert_eq!(sixel_colors(&parse_replies(b"\x1b[?1;0;64S")), 64);
        assert_eq!(sixel_colors(&parse_replies(b"\x1b[?1;0;1024S")), 256);
        assert_eq!(sixel_colors(&Capabilities::default()), 256);
    }

    #[test]
    fn counts_device_attribute_replies() {
        assert_eq!(da_replies(b"\x1b[?62;4c junk \x1b[?1;2c"), 2);
        assert_eq!(da_replies(b"\x1b[?1;0;256S"), 0);
    }

    #[test]
    fn cell_size_from_window_and_grid() {
        let caps = parse_replies(b"\x1b[4;1000;1600t\x1b[8;50;160t\x1b[?65;1c");
        assert_eq!(caps.cell, Some(CellSize::new(10, 20)));
        assert_eq!(caps.grid, Some((160, 50)));
    }
}
