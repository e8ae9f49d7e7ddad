//! Tether: remote support for technicians who live in a terminal.
//!
//! One binary with every role (hub, agent, console, demo, and the admin, login, ctl, render and
//! bench commands), and this crate is all of them. The map:
//!
//! - [`protocol`]: the wire types shared by every role. JSON control messages, one serde enum per
//!   direction, request ids, typed errors, size limits, and the enrolment link format. Pure: no
//!   tokio, no ratatui.
//! - [`secrets`]: everything that makes or checks a secret. Argon2id password hashes, random
//!   tokens from the OS's CSPRNG, SHA-256 token hashes, constant-time comparison, and technician
//!   TOTP (`secrets::totp`: RFC 6238 codes, otpauth URIs), and `secrets::seal`: the one
//!   AEAD (XChaCha20-Poly1305, key in the hub's `seal.key`) for secrets the hub reads back.
//! - [`tls`]: the hub's self-signed certificate (rcgen), its fingerprint, and the client side's
//!   certificate pinning (like ssh's known_hosts), on rustls with the `ring` provider.
//! - [`wire`]: WebSocket-over-TLS plumbing both ends share: connect with a pin, limits, send and
//!   receive typed messages.
//! - [`frame`]: an RGBA framebuffer and damage rectangles: what screen sources fill and the
//!   renderer draws.
//! - [`render`]: a framebuffer drawn in a terminal: box scaling, text cells (half blocks,
//!   sextants) into ratatui buffers, our own sixel encoder, kitty graphics, and capability
//!   detection. Pure and benchmarked (`benches/render.rs`).
//! - [`hub`]: the server, in three layers. Transport (`server`, `socket`, `consoles`, `agents`:
//!   accept, TLS, WebSocket, handshake, fan-out; no decisions); one gate (`dispatch`: each
//!   connection's `Principal` and one exhaustive `authorize` table, then one exhaustive route);
//!   services, each owning its state (`auth`, `clients`, `access`, `credentials`, `otp`,
//!   `twofa`, `relay`, `audit`). Its store sits behind a trait; SQLite is the default.
//! - [`agent`]: runs on the supported computer. Enrols with a link, keeps its workstation key,
//!   reports the machine and stays connected with jittered backoff. Its access policy (unattended
//!   state, temporary passcode, permanent password), the end user's prompts and the local
//!   control socket live beside it (`agent::{policy, consent, control, shared}`).
//! - [`client`]: a technician's typed connection to the hub, used by `ctl` and the console, plus
//!   the local login store (tokens per hub, pinned certificates).
//! - [`console`]: the ratatui app. Elm-shaped: a pure `update` turns messages into state changes
//!   and effects, a pure `draw` paints the state, and the loop runs effects afterwards.
//! - [`demo`]: a hub, a few dozen synthetic agents and a logged-in console in one process.
//! - [`bench`]: `tether bench keys|hub|link|viewers|console`: what users feel, measured end to
//!   end on real TLS WebSockets over loopback.
//! - [`cli`]: the command line (clap), dispatching to the roles above; `main.rs` only calls it.
//! - [`paths`]: where config, state and data live (`TETHER_HOME`, else the XDG directories).
//! - [`logging`]: logs go to a file under the state dir, never to a terminal a TUI owns.
//! - [`signals`]: SIGTERM, SIGHUP and SIGINT as a requested stop, awaited in each role's loop.

pub mod agent;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod console;
pub mod demo;
pub mod frame;
pub mod hub;
pub mod logging;
pub mod paths;
pub mod protocol;
pub mod render;
pub mod secrets;
pub mod signals;
pub mod tls;
pub mod wire;
