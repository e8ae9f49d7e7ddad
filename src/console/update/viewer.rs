//! The live terminal: open it on a session, feed it the remote's output (acknowledging every
//! frame), send it keys and pastes, follow the console's size, and close it when the technician
//! leaves or the session ends. Pure like the rest of `update`: acks, keystrokes and `Watch`
//! requests come back as effects.

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::layout::Rect as CellRect;

use super::{Effect, key_hint, request, set_status};
use crate::console::action::Action;
use crate::console::desktop::{self, DesktopView, ViewLimit, ZoomChange};
use crate::console::net::NetCommand;
use crate::console::state::{
    Connection, Pending, State, StatusKind, Viewer, ViewerMode, terminal_size,
};
use crate::console::terminal_view::TerminalView;
use crate::protocol::stream::{self, StreamFrame};
use crate::protocol::{
    ConsoleRequest, ErrorCode, InputEvent, ProtocolError, ScreenSize, SessionId, SessionInfo,
    StreamId, ViewSpec,
};
use crate::render::RenderMode;

/// Frames kept while the `Watching` reply is on its way: the agent's window, and a margin.
const EARLY_FRAMES: usize = 32;
/// Keys typed before the stream is known, kept to send with it (a fast typist, not a paste
/// of a file).
const UNSENT_LIMIT: usize = 64 * 1024;

/// Open the live terminal of `session`, full screen: its screen as last seen here, or a blank
/// one, and ask the hub to stream it at the console's size.
pub(super) fn open(state: &mut State, session: SessionInfo) -> Vec<Effect> {
    let mut effects = Vec::new();
    if state
        .viewer
        .as_ref()
        .is_some_and(|v| v.session.id != session.id)
    {
        effects.extend(detach(state));
    }
    let (cols, rows) = terminal_size(state.size);
    let screen = state
        .workstations
        .get(&session.workstation_id)
        .and_then(|w| w.screen);
    let previous = state.viewer.take();
    if let Some(screen) = screen {
        // A screen: the desktop, kept as it was when the viewer is already on it.
        let previous = previous.filter(|v| v.desktop.is_some());
        let view_only = previous.as_ref().is_some_and(|v| v.view_only);
        let mode = state
            .render_modes
            .first()
            .copied()
            .unwrap_or(RenderMode::HalfBlock);
        let desktop = previous
            .and_then(|v| v.desktop)
            .unwrap_or_else(|| DesktopView::with_mode(screen, mode, state.cell, state.color_depth));
        let mut viewer = Viewer::new(session, TerminalView::new(1, 1));
        let text_instead = !desktop.is_graphics();
        viewer.desktop = Some(desktop);
        viewer.view_only = view_only;
        if let (Some(note), true) = (&state.render_note, text_instead) {
            viewer.notice = Some((StatusKind::Warning, note.clone(), state.now));
        }
        state.viewer = Some(viewer);
        state.dirty = true;
        effects.extend(watch(state));
        return effects;
    }
    let mut term = match previous.filter(|v| v.desktop.is_none()) {
        Some(viewer) => viewer.term,
        None => state
            .screens
            .remove(&session.id)
            .unwrap_or_else(|| TerminalView::new(cols, rows)),
    };
    term.resize(cols, rows);
    term.scroll_to_bottom();
    state.viewer = Some(Viewer::new(session, term));
    state.dirty = true;
    effects.extend(watch(state));
    effects
}

/// Ask for the stream at the console's size, unless that is what was last asked for. Sent
/// again it resizes the remote terminal; after a reconnect it opens a new stream.
pub(super) fn watch(state: &mut State) -> Vec<Effect> {
    if state.connection != Connection::Connected {
        return Vec::new(); // asked again once the link is back
    }
    let (cols, rows) = terminal_size(state.size);
    // An ended session has nothing left to watch.
    let Some(viewer) = state.viewer.as_mut().filter(|v| v.ended.is_none()) else {
        return Vec::new();
    };
    if viewer.watched == Some((cols, rows)) {
        return Vec::new();
    }
    viewer.watched = Some((cols, rows));
    let session = viewer.session.id.clone();
    let view = match &mut viewer.desktop {
        Some(desktop) => {
            let (width, height) = desktop.pixels_for(cols, rows);
            desktop.asked = Some((width, height));
            ViewSpec::Pixels { width, height }
        }
        None => ViewSpec::Terminal { cols, rows },
    };
    vec![request(
        state,
        ConsoleRequest::Watch {
            session: session.clone(),
            view,
        },
        Pending::Watch { session },
    )]
}

/// The workstation reported its screen's size: when the open desktop is that workstation's and
/// the size changed (a new resolution), pointer positions follow it and the picture is asked
/// again (graphics modes ask for at most the remote's own size).
pub(super) fn on_remote_screen(
    state: &mut State,
    workstation: &str,
    screen: Option<ScreenSize>,
) -> Vec<Effect> {
    let Some(screen) = screen else {
        return Vec::new();
    };
    let Some(viewer) = state
        .viewer
        .as_mut()
        .filter(|v| v.session.workstation_id == workstation)
    else {
        return Vec::new();
    };
    let Some(desktop) = viewer.desktop.as_mut().filter(|d| d.screen != screen) else {
        return Vec::new();
    };
    desktop.screen = screen;
    viewer.watched = None;
    state.dirty = true;
    watch(state)
}

/// The console's size changed: the view follows at once, the remote with the next `Watch`.
pub(super) fn resize(state: &mut State) -> Vec<Effect> {
    let (cols, rows) = terminal_size(state.size);
    let Some(viewer) = &mut state.viewer else {
        return Vec::new();
    };
    if viewer.desktop.is_none() {
        viewer.term.resize(cols, rows);
    }
    watch(state)
}

/// The hub streams the session as `stream`: take the frames that came first, send the keys
/// typed meanwhile.
pub(super) fn on_watching(state: &mut State, session: &SessionId, stream: StreamId) -> Vec<Effect> {
    let Some(viewer) = state.viewer.as_mut().filter(|v| &v.session.id == session) else {
        // Went back to the list before the answer came: stop the stream.
        return vec![unwatch(stream)];
    };
    viewer.stream = Some(stream);
    if std::mem::take(&mut viewer.stopped) {
        viewer.notice = None;
    }
    let mut effects = Vec::new();
    let mut grabbed = Vec::new();
    if let Some(desktop) = &mut viewer.desktop {
        for (frame, wire_bytes) in std::mem::take(&mut desktop.early) {
            if let StreamFrame::Pixels {
                stream: early_stream,
                seq,
                width,
                height,
                rects,
                ..
            } = frame
                && early_stream == stream
            {
                if let Some(shot) = apply_pixels(
                    &mut viewer.bytes_this_second,
                    desktop,
                    (width, height, &rects),
                    wire_bytes,
                ) {
                    grabbed.push(shot);
                }
                effects.push(ack(stream, seq));
            }
        }
    }
    for (early_stream, seq, bytes) in std::mem::take(&mut viewer.early) {
        if early_stream == stream {
            feed(viewer, &bytes);
            effects.push(ack(stream, seq));
        }
    }
    let unsent = std::mem::take(&mut viewer.unsent);
    if !unsent.is_empty() {
        effects.extend(send_input(state, unsent));
    }
    for shot in grabbed {
        effects.extend(screenshot_taken(state, shot));
    }
    state.dirty = true;
    effects
}

/// `Watch` was refused: the terminal cannot be shown. Say why and go back to the list.
pub(super) fn on_watch_failed(
    state: &mut State,
    session: &SessionId,
    error: &ProtocolError,
) -> Vec<Effect> {
    let Some(viewer) = state.viewer.as_ref().filter(|v| &v.session.id == session) else {
        return Vec::new();
    };
    if error.code == ErrorCode::Unauthenticated {
        // Sent as the link dropped: it is asked again when the link is back.
        if let Some(viewer) = &mut state.viewer {
            viewer.watched = None;
        }
        return Vec::new();
    }
    let hostname = viewer.session.hostname.clone();
    let text = if error.code == ErrorCode::NotFound {
        state.sessions.retain(|s| &s.id != session);
        let why = if viewer.link_dropped {
            "it ended while the connection to the hub was down"
        } else {
            "it is no longer open on the hub"
        };
        end_viewer(state, why);
        return Vec::new();
    } else {
        let what = if viewer.desktop.is_some() {
            "screen"
        } else {
            "terminal"
        };
        format!(
            "Could not show the {what} of {hostname}: {}",
            super::sentence(&error.message)
        )
    };
    close(state, None);
    set_status(state, StatusKind::Error, text);
    Vec::new()
}

/// A binary frame from the hub: output for the open terminal is drawn and acknowledged (the
/// agent stops reading the shell after a window of unacknowledged frames).
pub(super) fn on_frame(state: &mut State, bytes: &[u8], received_at: u64) -> Vec<Effect> {
    let frame = match stream::decode(bytes) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(%e, "unreadable frame from the hub");
            return Vec::new();
        }
    };
    if matches!(frame, StreamFrame::Pixels { .. }) {
        let wire_bytes = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        return on_pixels(state, frame, wire_bytes, received_at);
    }
    let StreamFrame::TerminalOutput { stream, seq, bytes } = frame else {
        return Vec::new();
    };
    let Some(viewer) = &mut state.viewer else {
        return Vec::new(); // late output of a terminal just left
    };
    match viewer.stream {
        Some(current) if current == stream => {
            feed(viewer, &bytes);
            state.dirty = true;
            vec![ack(stream, seq)]
        }
        // Output can overtake the `Watching` reply: keep it until the reply names the stream.
        None if viewer.watched.is_some() && viewer.early.len() < EARLY_FRAMES => {
            viewer.early.push((stream, seq, bytes));
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A picture update for the open desktop: applied and acknowledged (the agent sends the next
/// one only after the ack). `wire_bytes`: the message's size as received (compressed), for
/// the status line's rate.
fn on_pixels(
    state: &mut State,
    frame: StreamFrame,
    wire_bytes: u64,
    received_at: u64,
) -> Vec<Effect> {
    // Capture to arrival, by the two machines' wall clocks; none when they disagree.
    let latency = frame.capture_age(received_at);
    let Some(viewer) = &mut state.viewer else {
        return Vec::new();
    };
    let watched = viewer.watched.is_some();
    let current = viewer.stream;
    let Some(desktop) = &mut viewer.desktop else {
        return Vec::new();
    };
    let StreamFrame::Pixels {
        stream,
        seq,
        width,
        height,
        ref rects,
        ..
    } = frame
    else {
        return Vec::new();
    };
    match current {
        Some(current) if current == stream => {
            let shot = apply_pixels(
                &mut viewer.bytes_this_second,
                desktop,
                (width, height, rects),
                wire_bytes,
            );
            if latency.is_some() {
                desktop.latency = latency;
            }
            state.dirty = true;
            let mut effects = vec![ack(stream, seq)];
            if let Some(shot) = shot {
                effects.extend(screenshot_taken(state, shot));
            }
            effects
        }
        // A frame can overtake the `Watching` reply: keep it until the reply names the stream.
        None if watched && desktop.early.len() < EARLY_FRAMES => {
            desktop.early.push((frame, wire_bytes));
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// A picture update into the desktop; the rate counts the bytes that came over the link.
fn apply_pixels(
    bytes_this_second: &mut u64,
    desktop: &mut DesktopView,
    (width, height, rects): (u32, u32, &[crate::protocol::stream::RectUpdate]),
    wire_bytes: u64,
) -> Option<crate::frame::Framebuffer> {
    *bytes_this_second = bytes_this_second.saturating_add(wire_bytes);
    desktop.receive(width, height, rects)
}

/// The whole picture at the remote's size arrived: save it, and go back to the view's size.
fn screenshot_taken(state: &mut State, picture: crate::frame::Framebuffer) -> Vec<Effect> {
    let Some(viewer) = &mut state.viewer else {
        return Vec::new();
    };
    let hostname = viewer.session.hostname.clone();
    viewer.watched = None;
    let mut effects = vec![Effect::SaveScreenshot {
        picture,
        hostname,
        at: state.now,
    }];
    effects.extend(watch(state));
    effects
}

/// Pasted text in the live desktop: typed on the remote, key by key.
pub(super) fn on_desktop_paste(state: &mut State, text: &str) -> Vec<Effect> {
    send_events(state, desktop::text_events(text))
}

/// A key in the live desktop: to the remote as keysyms (down, up, modifiers around).
pub(super) fn on_desktop_key(state: &mut State, key: &KeyEvent) -> Vec<Effect> {
    send_events(state, desktop::key_events(key))
}

/// The mouse over the live desktop: to the remote as pointer events in its screen's pixels.
pub(super) fn on_mouse(state: &mut State, mouse: &MouseEvent) -> Vec<Effect> {
    let (cols, rows) = terminal_size(state.size);
    let area = CellRect::new(0, 0, cols, rows);
    let Some(events) = state
        .viewer
        .as_mut()
        .and_then(|v| v.desktop.as_mut())
        .and_then(|d| d.pointer(area, mouse))
    else {
        return Vec::new();
    };
    send_events(state, events)
}

/// Keyboard and mouse for the remote screen. View-only sessions send nothing; nor does a
/// viewer without a stream (input is never kept to run later).
fn send_events(state: &mut State, events: Vec<InputEvent>) -> Vec<Effect> {
    let connected = state.connection == Connection::Connected;
    let Some(viewer) = &state.viewer else {
        return Vec::new();
    };
    if viewer.input_blocked() || !connected || events.is_empty() {
        return Vec::new();
    }
    let Some(stream) = viewer.stream else {
        return Vec::new();
    };
    vec![Effect::Net(NetCommand::Notify {
        body: ConsoleRequest::Input { stream, events },
    })]
}

fn feed(viewer: &mut Viewer, bytes: &[u8]) {
    viewer.term.feed(bytes);
    viewer.bytes_this_second = viewer
        .bytes_this_second
        .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
}

fn ack(stream: StreamId, seq: u64) -> Effect {
    Effect::Net(NetCommand::Notify {
        body: ConsoleRequest::Ack { stream, seq },
    })
}

fn unwatch(stream: StreamId) -> Effect {
    Effect::Net(NetCommand::Notify {
        body: ConsoleRequest::Unwatch { stream },
    })
}

/// A key with no action in the live terminal: to the remote, in its cursor mode.
pub(super) fn on_key(state: &mut State, key: &KeyEvent) -> Vec<Effect> {
    let Some(bytes) = state.viewer.as_ref().and_then(|v| v.term.key_bytes(key)) else {
        return Vec::new();
    };
    send_input(state, bytes)
}

/// Pasted text: to the remote, bracketed when the remote asked for that.
pub(super) fn on_paste(state: &mut State, text: &str) -> Vec<Effect> {
    let Some(bytes) = state.viewer.as_ref().map(|v| v.term.paste_bytes(text)) else {
        return Vec::new();
    };
    send_input(state, bytes)
}

/// Keystrokes for the remote. View-only sessions send nothing (their status bar says so);
/// while the link is down nothing is kept either, so nothing typed blind runs later.
fn send_input(state: &mut State, bytes: Vec<u8>) -> Vec<Effect> {
    let connected = state.connection == Connection::Connected;
    let Some(viewer) = &mut state.viewer else {
        return Vec::new();
    };
    if viewer.input_blocked() || !connected || bytes.is_empty() {
        return Vec::new();
    }
    if viewer.term.scrollback() > 0 {
        viewer.term.scroll_to_bottom();
        state.dirty = true;
    }
    let Some(stream) = viewer.stream else {
        if viewer.unsent.len() + bytes.len() <= UNSENT_LIMIT {
            viewer.unsent.extend_from_slice(&bytes);
        }
        return Vec::new();
    };
    viewer.input_seq += 1;
    let frame = StreamFrame::TerminalInput {
        stream,
        seq: viewer.input_seq,
        bytes,
    };
    match stream::encode(&frame) {
        Ok(encoded) => vec![Effect::Net(NetCommand::SendFrame(encoded))],
        Err(e) => {
            set_status(state, StatusKind::Error, format!("Keys not sent: {e}."));
            Vec::new()
        }
    }
}

/// The live terminal's own action: the menu key.
pub(super) fn on_terminal_action(state: &mut State, action: Action) -> Vec<Effect> {
    if action == Action::TerminalMenu
        && let Some(viewer) = &mut state.viewer
    {
        viewer.mode = ViewerMode::Menu;
    }
    Vec::new()
}

pub(super) fn on_menu_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(viewer) = &mut state.viewer else {
        return Vec::new();
    };
    // A note about the zoom is stale once the zoom or the mode changes (said again if still so).
    if matches!(
        action,
        Action::ZoomIn | Action::ZoomOut | Action::Fit | Action::SwitchGlyphs
    ) && viewer
        .notice
        .as_ref()
        .is_some_and(|(_, text, _)| text.starts_with(ZOOM_NOTE))
    {
        viewer.notice = None;
        state.dirty = true;
    }
    match action {
        Action::Cancel | Action::TerminalMenu => viewer.mode = ViewerMode::Live,
        Action::ZoomIn | Action::ZoomOut => {
            let step = if action == Action::ZoomIn { 1 } else { -1 };
            let (cols, rows) = terminal_size(state.size);
            let Some(desktop) = &mut viewer.desktop else {
                return Vec::new();
            };
            let zoom = desktop.zoom;
            match desktop.zoom_by(step, cols, rows) {
                ZoomChange::Changed => {
                    viewer.watched = None;
                    return watch(state);
                }
                ZoomChange::AtEnd => {}
                // No more pixels to get: the zoom stays, and the status line says why.
                ZoomChange::Limited(limit) => {
                    let why = match limit {
                        ViewLimit::Hub => format!(
                            "the hub streams at most {} pixels a side",
                            desktop::MAX_VIEW_PIXELS
                        ),
                        _ => "it already shows every pixel of the remote screen".to_owned(),
                    };
                    notify(
                        state,
                        StatusKind::Info,
                        format!("{ZOOM_NOTE}{zoom}x: {why}."),
                    );
                }
            }
        }
        Action::PanLeft | Action::PanRight | Action::Up | Action::Down => {
            let (cols, rows) = terminal_size(state.size);
            let area = CellRect::new(0, 0, cols, rows);
            let (dx, dy) = match action {
                Action::PanLeft => (-i32::from(cols / 4).max(1), 0),
                Action::PanRight => (i32::from(cols / 4).max(1), 0),
                Action::Up => (0, -i32::from(rows / 4).max(1)),
                _ => (0, i32::from(rows / 4).max(1)),
            };
            if let Some(desktop) = &mut viewer.desktop {
                desktop.pan_by(area, dx, dy);
            }
        }
        Action::SwitchGlyphs => {
            if let Some(desktop) = &mut viewer.desktop {
                // The next mode this terminal supports, round.
                let modes = &state.render_modes;
                let next = modes
                    .iter()
                    .position(|m| *m == desktop.mode)
                    .and_then(|i| modes.get((i + 1) % modes.len()))
                    .or(modes.first())
                    .copied();
                match next {
                    Some(next) if next != desktop.mode => desktop.set_mode(next),
                    Some(_) => {}
                    None => desktop.toggle_glyphs(),
                }
                viewer.mode = ViewerMode::Live;
                // Ask for the picture at the new mode's pixel size.
                viewer.watched = None;
                return watch(state);
            }
        }
        Action::ScrollBack => {
            viewer.mode = ViewerMode::Scroll;
            let page = page(viewer);
            viewer.term.scroll(page);
        }
        Action::Fit => {
            if let Some(desktop) = &mut viewer.desktop {
                viewer.mode = ViewerMode::Live;
                desktop.pan = (0, 0);
                if desktop.zoom > 1 {
                    desktop.zoom = 1;
                    viewer.watched = None;
                    state.dirty = true;
                    return watch(state);
                }
            }
        }
        Action::ToggleViewOnly => {
            viewer.view_only = !viewer.view_only;
            viewer.mode = ViewerMode::Live;
            let text = if viewer.view_only {
                "View only: your keys and mouse stay here."
            } else if viewer.session.view_only {
                "This session is view only: keys and mouse are still not sent."
            } else {
                "Control: your keys and mouse go to the remote again."
            };
            notify(state, StatusKind::Info, text);
        }
        Action::SendCtrlAltDel => {
            viewer.mode = ViewerMode::Live;
            if viewer.input_blocked() {
                notify(
                    state,
                    StatusKind::Warning,
                    "View only: Ctrl-Alt-Del was not sent.",
                );
                return Vec::new();
            }
            let effects = send_events(state, desktop::ctrl_alt_del());
            if effects.is_empty() {
                notify(
                    state,
                    StatusKind::Warning,
                    "Not connected: Ctrl-Alt-Del was not sent.",
                );
            } else {
                notify(state, StatusKind::Info, "Ctrl-Alt-Del sent.");
            }
            return effects;
        }
        Action::Screenshot => {
            viewer.mode = ViewerMode::Live;
            state.dirty = true;
            let hostname = viewer.session.hostname.clone();
            let streaming = state.connection == Connection::Connected && viewer.stream.is_some();
            let session = viewer.session.id.clone();
            if let Some(desktop) = viewer.desktop.as_mut().filter(|_| streaming) {
                if desktop.grab.is_some() {
                    return Vec::new(); // one at a time
                }
                // The stream at the remote's own size (or the hub's largest) until one whole
                // picture has come.
                let ((width, height), scaled) = desktop.screenshot_size();
                desktop.grab = Some(desktop::Grab::new(state.now, (width, height)));
                desktop.asked = Some((width, height));
                desktop.shot_scaled = scaled.then_some((width, height));
                viewer.watched = None;
                let text = if scaled {
                    let ScreenSize {
                        width: sw,
                        height: sh,
                    } = desktop.screen;
                    format!(
                        "Taking a screenshot, scaled from {sw}x{sh} to {width}x{height} \
                         (the hub streams at most {} pixels a side)…",
                        desktop::MAX_VIEW_PIXELS
                    )
                } else {
                    "Taking a screenshot…".to_owned()
                };
                notify(state, StatusKind::Info, text);
                return vec![request(
                    state,
                    ConsoleRequest::Watch {
                        session: session.clone(),
                        view: ViewSpec::Pixels { width, height },
                    },
                    Pending::Watch { session },
                )];
            }
            // Not streaming (the link is down): the picture as last shown.
            let picture = viewer
                .desktop
                .as_ref()
                .map(|d| d.framebuffer.clone())
                .filter(|p| p.width() > 0 && p.height() > 0);
            let Some(picture) = picture else {
                notify(
                    state,
                    StatusKind::Warning,
                    "No picture yet: try the screenshot again in a moment.",
                );
                return Vec::new();
            };
            return vec![Effect::SaveScreenshot {
                picture,
                hostname,
                at: state.now,
            }];
        }
        Action::Detach => return detach(state),
        // Asking from inside a session: the end user answers on the agent while the technician
        // keeps working; the answer shows in the status line.
        Action::RequestAccess => {
            let id = viewer.session.workstation_id.clone();
            viewer.mode = ViewerMode::Live;
            let Some(w) = state.workstations.get(&id).cloned() else {
                return Vec::new();
            };
            super::ask_request_access_to(state, &w);
        }
        Action::EndSession => {
            let session = viewer.session.clone();
            close(state, None);
            return super::end_session(state, &session);
        }
        Action::Help => state.dialog = Some(crate::console::state::Dialog::Help { scroll: 0 }),
        _ => {}
    }
    Vec::new()
}

pub(super) fn on_scroll_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(viewer) = &mut state.viewer else {
        return Vec::new();
    };
    let page = page(viewer);
    match action {
        Action::Up => viewer.term.scroll(1),
        Action::Down => viewer.term.scroll(-1),
        Action::PageUp => viewer.term.scroll(page),
        Action::PageDown => viewer.term.scroll(-page),
        Action::First => viewer.term.scroll(i32::MAX),
        Action::Last => viewer.term.scroll_to_bottom(),
        Action::Cancel => {
            viewer.term.scroll_to_bottom();
            viewer.mode = ViewerMode::Live;
        }
        _ => {}
    }
    Vec::new()
}

/// A page of the remote terminal, less a line kept for context.
fn page(viewer: &Viewer) -> i32 {
    i32::from(viewer.term.size().1.saturating_sub(1).max(1))
}

/// Back to the list: the stream stops, the session stays open, its screen is kept for when the
/// technician opens it again.
pub(super) fn detach(state: &mut State) -> Vec<Effect> {
    let Some(viewer) = &state.viewer else {
        return Vec::new();
    };
    let effects: Vec<Effect> = viewer.stream.map(unwatch).into_iter().collect();
    let session = viewer.session.clone();
    close(state, Some(&session));
    // The row of the session is selected, so the keys the status line names apply to it.
    let visible = state
        .visible_workstations()
        .position(&session.workstation_id)
        .is_some();
    if visible {
        state.selected_workstation = Some(session.workstation_id.clone());
        super::scroll_into_view(state);
    }
    let open = key_hint(state, Action::Open, "o");
    let end = key_hint(state, Action::EndSession, "e");
    set_status(
        state,
        StatusKind::Info,
        format!(
            "Back to the list; your session on {} stays open ({open} opens it again, {end} ends it).",
            session.hostname
        ),
    );
    effects
}

/// The open viewer's session ended: its last screen stays, saying why, and it swallows every
/// key until dismissed, so what was typed for the remote never runs a command of the list.
fn end_viewer(state: &mut State, why: &str) {
    if let Some(viewer) = &mut state.viewer {
        viewer.ended = Some(why.trim_end_matches('.').to_owned());
        viewer.mode = ViewerMode::Live;
        viewer.stream = None;
        viewer.unsent.clear();
        viewer.early.clear();
        viewer.notice = None;
        state.dirty = true;
    }
}

/// Enter or Esc on an ended session's viewer: back to the list, the status line saying what
/// ended.
pub(super) fn dismiss_ended(state: &mut State) {
    let Some(viewer) = &state.viewer else {
        return;
    };
    let text = format!(
        "Your session on {} ended: {}.",
        viewer.session.hostname,
        viewer.ended.as_deref().unwrap_or("no reason given")
    );
    close(state, None);
    set_status(state, StatusKind::Warning, text);
}

/// Close the viewer; with `keep`, its screen is kept for that session.
pub(super) fn close(state: &mut State, keep: Option<&SessionInfo>) {
    if let Some(mut viewer) = state.viewer.take()
        && let Some(session) = keep
        && viewer.desktop.is_none()
    {
        viewer.term.scroll_to_bottom();
        state.screens.insert(session.id.clone(), viewer.term);
    }
    state.dirty = true;
}

/// The link to the hub dropped: the hub ended this console's streams. The last screen stays;
/// the stream is asked for again when the link is back.
pub(super) fn on_disconnected(state: &mut State) {
    if let Some(viewer) = &mut state.viewer {
        viewer.stream = None;
        viewer.watched = None;
        viewer.link_dropped = true;
        viewer.early.clear();
        viewer.unsent.clear();
        if let Some(desktop) = &mut viewer.desktop {
            desktop.early.clear();
            desktop.buttons = 0;
            desktop.last_pointer = None;
        }
    }
}

/// The screenshot was written (its path goes to the status line), or why not.
pub(super) fn on_screenshot_saved(
    state: &mut State,
    result: Result<std::path::PathBuf, String>,
) -> Vec<Effect> {
    let scaled = state
        .viewer
        .as_mut()
        .and_then(|v| v.desktop.as_mut())
        .and_then(|d| d.shot_scaled.take());
    match result {
        Ok(path) => {
            let note = scaled
                .map(|(w, h)| {
                    format!(
                        " (scaled to {w}x{h}: the hub streams at most {} pixels a side)",
                        desktop::MAX_VIEW_PIXELS
                    )
                })
                .unwrap_or_default();
            // The file's name first: a narrow status line cuts the folder, not the name.
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let folder = path
                .parent()
                .map(|p| format!(" in {}", p.display()))
                .unwrap_or_default();
            notify(
                state,
                StatusKind::Success,
                format!("Saved {name}{folder}{note}"),
            );
        }
        Err(e) => notify(
            state,
            StatusKind::Error,
            format!("Screenshot not saved: {e}"),
        ),
    }
    Vec::new()
}

/// How the status line's note about a zoom that cannot grow begins.
const ZOOM_NOTE: &str = "Zoom stays at ";

/// How long a screenshot may take to arrive.
const GRAB_SECONDS: i64 = 15;

/// How long a notice stays in the viewer's status line.
const NOTICE_SECONDS: i64 = 10;

/// A note in the open viewer's status line.
fn notify(state: &mut State, kind: StatusKind, text: impl Into<String>) {
    let now = state.now;
    if let Some(viewer) = &mut state.viewer {
        viewer.notice = Some((kind, text.into(), now));
        state.dirty = true;
    }
}

/// A second passed: the bytes/s shown is the last second's. Redraw only when it changed.
pub(super) fn on_tick(state: &mut State) -> Vec<Effect> {
    let now = state.now;
    let mut effects = Vec::new();
    let stalled = state
        .viewer
        .as_ref()
        .and_then(|v| v.desktop.as_ref())
        .and_then(|d| d.grab.as_ref())
        .is_some_and(|g| (now - g.since).num_seconds() >= GRAB_SECONDS);
    if stalled {
        if let Some(viewer) = &mut state.viewer {
            if let Some(desktop) = &mut viewer.desktop {
                desktop.grab = None;
                desktop.shot_scaled = None;
            }
            viewer.watched = None;
        }
        notify(
            state,
            StatusKind::Error,
            "Screenshot not saved: the picture did not come; try again.",
        );
        effects.extend(watch(state));
    }
    if let Some(viewer) = &mut state.viewer {
        if !viewer.stopped
            && viewer
                .notice
                .as_ref()
                .is_some_and(|(_, _, since)| (now - *since).num_seconds() >= NOTICE_SECONDS)
        {
            viewer.notice = None;
            state.dirty = true;
        }
        let rate = std::mem::take(&mut viewer.bytes_this_second);
        if rate != viewer.bytes_per_second {
            viewer.bytes_per_second = rate;
            state.dirty = true;
        }
        if let Some(desktop) = &mut viewer.desktop {
            let fps = std::mem::take(&mut desktop.frames_this_second);
            if fps != desktop.frames_per_second {
                desktop.frames_per_second = fps;
                state.dirty = true;
            }
        }
    }
    effects
}

/// The workstation ended the open stream (its screen would not start, or stopped): the last
/// picture stays, and the status line says why until a new stream starts (resizing the
/// console asks again).
pub(super) fn on_stream_ended(state: &mut State, stream: StreamId, reason: &str) {
    let Some(viewer) = state.viewer.as_mut().filter(|v| v.stream == Some(stream)) else {
        return; // a stream this console already left
    };
    viewer.stream = None;
    viewer.stopped = true;
    notify(
        state,
        StatusKind::Error,
        format!("The workstation stopped the stream: {reason}"),
    );
}

/// The session changed or ended. An ended session closes its terminal; returns whether the
/// open terminal was that session's.
pub(super) fn on_session(state: &mut State, session: &SessionInfo) -> bool {
    if session.ended_at.is_some() {
        state.screens.remove(&session.id);
    }
    let Some(viewer) = state.viewer.as_mut().filter(|v| v.session.id == session.id) else {
        return false;
    };
    if session.ended_at.is_some() {
        if state.ending.contains(&session.id) {
            // Ended from this console: nothing to explain.
            close(state, None);
        } else {
            let why = session
                .end_reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_owned());
            end_viewer(state, &why);
        }
    } else {
        viewer.session = session.clone();
        state.dirty = true;
    }
    true
}
