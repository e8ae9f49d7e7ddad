//! The technician's console (being written).
pub mod net;

use crate::paths::Paths;

/// A login made elsewhere (by `tether demo`): the console starts authenticated.
#[derive(Debug, Clone)]
pub struct PresetLogin {
    pub hub: String,
    pub fingerprint: String,
    pub token: String,
}

/// How the console was started.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub paths: Paths,
    /// Hub to log in to (`wss://host:port`); else the last one used.
    pub hub: Option<String>,
    /// Skip the login screen (demo).
    pub preset: Option<PresetLogin>,
    /// Theme name or path to a theme file, overriding the config.
    pub theme: Option<String>,
}

/// Run the console until the user quits. The terminal is restored on every exit path.
pub async fn run(_opts: ConsoleOptions) -> anyhow::Result<()> {
    Ok(())
}
