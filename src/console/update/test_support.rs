//! What the update tests share: a fixed clock, keys and hub events in, requests out.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{Effect, Msg, update};
use crate::console::net::{NetCommand, NetEvent};
use crate::console::state::State;
use crate::protocol::{ConsoleReply, ConsoleRequest, ProtocolError};

/// The tests' "now".
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .expect("valid date")
}

/// A key without modifiers, as the app delivers it.
pub(crate) fn key(state: &mut State, code: KeyCode) -> Vec<Effect> {
    update(state, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// Type `text` one key at a time.
pub(crate) fn type_text(state: &mut State, text: &str) {
    for c in text.chars() {
        key(state, KeyCode::Char(c));
    }
}

/// Something from the hub link.
pub(crate) fn net(state: &mut State, event: NetEvent) -> Vec<Effect> {
    update(state, Msg::Net(event))
}

/// The requests among `effects`, with their ids.
pub(crate) fn requests(effects: &[Effect]) -> Vec<(u64, ConsoleRequest)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Net(NetCommand::Request { id, body }) => Some((*id, body.clone())),
            _ => None,
        })
        .collect()
}

/// The hub's answer to request `id`.
pub(crate) fn reply(
    state: &mut State,
    id: u64,
    result: Result<ConsoleReply, ProtocolError>,
) -> Vec<Effect> {
    net(state, NetEvent::Reply { id, result })
}

/// What the status line says now (countdowns included; empty when nothing).
pub(crate) fn status_text(state: &State) -> String {
    state
        .status
        .as_ref()
        .map(|s| s.text_at(state.now))
        .unwrap_or_default()
}
