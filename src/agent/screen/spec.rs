//! The `--screen` spec: which screen source the agent runs, parsed from one string.

use std::path::PathBuf;
use std::str::FromStr;

use crate::protocol::ScreenSize;

/// The environment variable a `vnc://` source reads its password from unless the spec names
/// another one (`?password-env=NAME`) or a file (`?password-file=PATH`).
pub const VNC_PASSWORD_ENV: &str = "TETHER_VNC_PASSWORD";

/// The seed of `synthetic` when the spec gives none.
pub const DEFAULT_SEED: u64 = 1;
const DEFAULT_WIDTH: u32 = 1920;
const DEFAULT_HEIGHT: u32 = 1080;

/// Where the agent's picture of the screen comes from (`--screen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenSource {
    /// An animated desktop drawn by the agent itself (demo and tests), of this size; the same
    /// seed draws the same frames.
    Synthetic { width: u32, height: u32, seed: u64 },
    /// A VNC server on this machine (or one it reaches), spoken to over RFB 3.8.
    Vnc(VncTarget),
    /// An X display captured directly; `None` means `$DISPLAY`.
    X11 { display: Option<String> },
    /// A shell in a PTY: text, not pixels (served by the terminal source, not [`super::start`]).
    Terminal,
    /// No screen: a headless machine.
    Headless,
}

/// A `vnc://HOST:PORT` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VncTarget {
    pub host: String,
    pub port: u16,
    /// Where the password is read at connect time. Never the command line itself: a password
    /// there shows in `ps` to every user of the machine.
    pub password: PasswordSource,
}

/// Where a `vnc://` source finds its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// This environment variable; unset means no password (fine for servers that ask none).
    Env(String),
    /// The first line of this file.
    File(PathBuf),
}

impl Default for ScreenSource {
    fn default() -> Self {
        ScreenSource::Synthetic {
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            seed: DEFAULT_SEED,
        }
    }
}

impl ScreenSource {
    /// The screen's size when the spec alone tells it (synthetic); `None` for headless and text
    /// sources, and for live sources (vnc, x11), whose size is known once started:
    /// [`super::Screen::size`].
    pub fn size(&self) -> Option<ScreenSize> {
        match *self {
            ScreenSource::Synthetic { width, height, .. } => Some(ScreenSize { width, height }),
            _ => None,
        }
    }

    /// A picture of a real screen (`vnc://`, `x11`), whose size is known once it runs.
    pub fn is_live(&self) -> bool {
        matches!(self, ScreenSource::Vnc(_) | ScreenSource::X11 { .. })
    }
}

const USAGE: &str =
    "use synthetic[:WIDTHxHEIGHT][@SEED], vnc://HOST:PORT, x11[:DISPLAY], terminal or none";

impl FromStr for ScreenSource {
    type Err = String;

    /// `synthetic[:WIDTHxHEIGHT][@SEED]`, `vnc://HOST[:PORT][?password-file=PATH|?password-env=NAME]`,
    /// `x11[:DISPLAY]`, `terminal`, or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "headless" => return Ok(Self::Headless),
            "terminal" => return Ok(Self::Terminal),
            "x11" => return Ok(Self::X11 { display: None }),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("synthetic") {
            return parse_synthetic(rest);
        }
        if let Some(display) = s.strip_prefix("x11:") {
            return parse_x11(display);
        }
        if s.starts_with("vnc://") {
            return parse_vnc(s).map(Self::Vnc);
        }
        Err(format!("unknown screen source {s:?}: {USAGE}"))
    }
}

fn parse_synthetic(rest: &str) -> Result<ScreenSource, String> {
    let (size, seed) = match rest.split_once('@') {
        Some((size, seed)) => {
            let seed = seed
                .parse::<u64>()
                .map_err(|_| format!("bad seed {seed:?}: use a whole number, as in synthetic@7"))?;
            (size, seed)
        }
        None => (rest, DEFAULT_SEED),
    };
    if size.is_empty() {
        return Ok(ScreenSource::Synthetic {
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            seed,
        });
    }
    let size = size
        .strip_prefix(':')
        .ok_or_else(|| format!("unknown screen source \"synthetic{rest}\": {USAGE}"))?;
    let (w, h) = size
        .split_once('x')
        .ok_or_else(|| format!("bad size {size:?}: use WIDTHxHEIGHT"))?;
    let parse = |v: &str| v.parse::<u32>().ok().filter(|n| (16..=16384).contains(n));
    match (parse(w), parse(h)) {
        (Some(width), Some(height)) => Ok(ScreenSource::Synthetic {
            width,
            height,
            seed,
        }),
        _ => Err(format!("bad size {size:?}: each side between 16 and 16384")),
    }
}

fn parse_x11(display: &str) -> Result<ScreenSource, String> {
    if display.is_empty() {
        return Err(format!("empty X display in \"x11:\": {USAGE}"));
    }
    // `x11:1` is a convenience for `x11::1`; anything with a colon is an X display name as is.
    let display = if display.contains(':') {
        display.to_owned()
    } else if display.chars().all(|c| c.is_ascii_digit() || c == '.') {
        format!(":{display}")
    } else {
        return Err(format!(
            "bad X display {display:?}: use a display name such as :0 or host:1"
        ));
    };
    Ok(ScreenSource::X11 {
        display: Some(display),
    })
}

fn parse_vnc(s: &str) -> Result<VncTarget, String> {
    let url = url::Url::parse(s).map_err(|e| format!("bad VNC address {s:?}: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "do not put VNC credentials in {s:?} (the command line is visible to every user): \
             set {VNC_PASSWORD_ENV} or add ?password-file=PATH"
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("bad VNC address {s:?}: use vnc://HOST:PORT"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if !(url.path().is_empty() || url.path() == "/") {
        return Err(format!("bad VNC address {s:?}: use vnc://HOST:PORT"));
    }
    let port = url.port().unwrap_or(5900);
    let mut password = PasswordSource::Env(VNC_PASSWORD_ENV.to_owned());
    for (key, value) in url.query_pairs() {
        match &*key {
            "password-file" if !value.is_empty() => {
                password = PasswordSource::File(PathBuf::from(&*value));
            }
            "password-env" if !value.is_empty() => {
                password = PasswordSource::Env(value.into_owned());
            }
            _ => {
                return Err(format!(
                    "unknown VNC option {key:?} in {s:?}: use ?password-file=PATH or ?password-env=NAME"
                ));
            }
        }
    }
    Ok(VncTarget {
        host,
        port,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(width: u32, height: u32, seed: u64) -> Result<ScreenSource, String> {
        Ok(ScreenSource::Synthetic {
            width,
            height,
            seed,
        })
    }

    #[test]
    fn parses_synthetic_and_none_as_before() {
        assert_eq!("synthetic".parse(), synthetic(1920, 1080, DEFAULT_SEED));
        assert_eq!(
            "synthetic:800x600".parse(),
            synthetic(800, 600, DEFAULT_SEED)
        );
        assert_eq!("none".parse(), Ok(ScreenSource::Headless));
        assert!("vnc".parse::<ScreenSource>().is_err());
        assert!("synthetic:0x10".parse::<ScreenSource>().is_err());
        assert!("synthetics".parse::<ScreenSource>().is_err());
    }

    #[test]
    fn parses_seeds() {
        assert_eq!("synthetic@7".parse(), synthetic(1920, 1080, 7));
        assert_eq!("synthetic:640x480@42".parse(), synthetic(640, 480, 42));
        assert!("synthetic@x".parse::<ScreenSource>().is_err());
        assert!("synthetic:640x480@".parse::<ScreenSource>().is_err());
    }

    #[test]
    fn parses_vnc() {
        assert_eq!(
            "vnc://127.0.0.1:5901".parse(),
            Ok(ScreenSource::Vnc(VncTarget {
                host: "127.0.0.1".into(),
                port: 5901,
                password: PasswordSource::Env(VNC_PASSWORD_ENV.into()),
            }))
        );
        assert_eq!(
            "vnc://[::1]?password-file=/etc/tether/vnc.pass".parse(),
            Ok(ScreenSource::Vnc(VncTarget {
                host: "::1".into(),
                port: 5900,
                password: PasswordSource::File("/etc/tether/vnc.pass".into()),
            }))
        );
        assert_eq!(
            "vnc://desk:5902?password-env=DESK_PW".parse(),
            Ok(ScreenSource::Vnc(VncTarget {
                host: "desk".into(),
                port: 5902,
                password: PasswordSource::Env("DESK_PW".into()),
            }))
        );
        let refused = "vnc://:secret@host:5900".parse::<ScreenSource>();
        assert!(refused.is_err_and(|e| e.contains("password-file")));
        assert!(
            "vnc://host:5900?password=x"
                .parse::<ScreenSource>()
                .is_err()
        );
        assert!("vnc://host:99999".parse::<ScreenSource>().is_err());
    }

    #[test]
    fn parses_x11_and_terminal() {
        assert_eq!("x11".parse(), Ok(ScreenSource::X11 { display: None }));
        for (spec, display) in [
            ("x11::1", ":1"),
            ("x11:1", ":1"),
            ("x11:host:2.0", "host:2.0"),
        ] {
            assert_eq!(
                spec.parse(),
                Ok(ScreenSource::X11 {
                    display: Some(display.into())
                })
            );
        }
        assert!("x11:".parse::<ScreenSource>().is_err());
        assert_eq!("terminal".parse(), Ok(ScreenSource::Terminal));
    }

    #[test]
    fn size_is_known_for_synthetic_only() {
        assert_eq!(
            ScreenSource::default().size(),
            Some(ScreenSize {
                width: 1920,
                height: 1080
            })
        );
        assert_eq!(ScreenSource::Headless.size(), None);
        assert_eq!(ScreenSource::Terminal.size(), None);
        assert_eq!(ScreenSource::X11 { display: None }.size(), None);
    }
}
