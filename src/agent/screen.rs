//! Screen sources. The spine reports the screen's size; capture and input arrive with the
//! live-session work.

use std::str::FromStr;

use crate::protocol::ScreenSize;

/// Where the agent's picture of the screen comes from (`--screen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenSource {
    /// An animated desktop drawn by the agent itself (demo and tests), of this size.
    Synthetic { width: u32, height: u32 },
    /// No screen: a headless machine.
    Headless,
}

impl Default for ScreenSource {
    fn default() -> Self {
        ScreenSource::Synthetic {
            width: 1920,
            height: 1080,
        }
    }
}

impl ScreenSource {
    pub fn size(&self) -> Option<ScreenSize> {
        match *self {
            ScreenSource::Synthetic { width, height } => Some(ScreenSize { width, height }),
            ScreenSource::Headless => None,
        }
    }
}

impl FromStr for ScreenSource {
    type Err = String;

    /// `synthetic`, `synthetic:WIDTHxHEIGHT` or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "synthetic" => Ok(Self::default()),
            "none" | "headless" => Ok(Self::Headless),
            _ => {
                let size = s.strip_prefix("synthetic:").ok_or_else(|| {
                    format!(
                        "unknown screen source {s:?}: use synthetic, synthetic:WIDTHxHEIGHT or none"
                    )
                })?;
                let (w, h) = size
                    .split_once('x')
                    .ok_or_else(|| format!("bad size {size:?}: use WIDTHxHEIGHT"))?;
                let parse = |v: &str| v.parse::<u32>().ok().filter(|n| (16..=16384).contains(n));
                match (parse(w), parse(h)) {
                    (Some(width), Some(height)) => Ok(Self::Synthetic { width, height }),
                    _ => Err(format!("bad size {size:?}: each side between 16 and 16384")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            "synthetic".parse(),
            Ok(ScreenSource::Synthetic {
                width: 1920,
                height: 1080
            })
        );
        assert_eq!(
            "synthetic:800x600".parse(),
            Ok(ScreenSource::Synthetic {
                width: 800,
                height: 600
            })
        );
        assert_eq!("none".parse(), Ok(ScreenSource::Headless));
        assert!("vnc".parse::<ScreenSource>().is_err());
        assert!("synthetic:0x10".parse::<ScreenSource>().is_err());
    }
}
