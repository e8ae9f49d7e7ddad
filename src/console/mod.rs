//! The technician's console: a ratatui app in the Elm shape.
//!
//! - [`update::update`] turns a [`update::Msg`] (key, hub event, tick, resize) into changes of
//!   [`state::State`] and a list of [`update::Effect`]s. Pure: no I/O, never awaits.
//! - [`ui::draw`] paints the state with a [`theme::Theme`]. Pure too.
//! - `app` runs the loop: `select!` over terminal events, the hub link ([`net`]) and a tick;
//!   runs effects (send to the hub, clipboard, login store); draws at most once per batch.
//! - Keys become [`action::Action`]s through the [`keymap::Keymap`], which also makes the footer
//!   and the `?` help; [`config`] lets users rebind keys, pick a theme and a clipboard method.
pub mod action;
mod app;
pub mod clipboard;
pub mod config;
pub mod desktop;
pub mod fleet;
pub mod keymap;
mod late_replies;
pub mod net;
pub mod state;
pub mod terminal_view;
pub mod theme;
pub mod ui;
pub mod update;

use crate::paths::Paths;

/// A login made elsewhere (by `tether demo`): the console starts authenticated.
#[derive(Debug, Clone)]
pub struct PresetLogin {
    pub hub: String,
    pub fingerprint: String,
    pub token: String,
    /// The demo user's password, filled in on the login form should the demo's login end
    /// (enabling 2FA ends it): the demo can never lock its own user out.
    pub password: Option<crate::protocol::Secret>,
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
    /// How to draw live desktops (`--render`), overriding the config.
    pub render: Option<crate::render::RenderOverride>,
}

/// Run the console until the user quits. The terminal is restored on every exit path.
pub async fn run(opts: ConsoleOptions) -> anyhow::Result<()> {
    app::run(opts).await
}
