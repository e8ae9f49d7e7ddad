//! The live-session relay: routes each viewer's stream between its console and the agent.
//!
//! A console asks to watch an open session of its team; the hub gives the stream an id, tells
//! the agent, and from then on passes binary frames through by that id without decoding them
//! (it reads only the header). Flow control is end to end: the agent keeps sending while the
//! bytes its viewer has not acknowledged stay under a window sized to the link (and at most
//! `MAX_FRAMES_IN_FLIGHT` frames, well under a console connection's queue), so a slow link
//! skips frames at the source instead of queueing them here. When a viewer's connection is backed up all the same, the
//! hub drops the frame and tells the agent (`Dropped`), which sends that area again from its
//! latest picture (a terminal: redraws the viewer's screen). Every route is checked both ways: a frame from an agent must
//! be for a stream of its own workstation, input from a console for a stream it opened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::Hub;
use crate::protocol::stream::{FrameKind, peek_header};
use crate::protocol::{
    ErrorCode, HubEvent, HubToAgent, HubToConsole, InputEvent, ProtocolError, SessionId, StreamId,
    UserInfo, ViewSpec, WorkstationId,
};

pub use crate::protocol::{MAX_VIEW_CELLS, MAX_VIEW_PIXELS};

/// One viewer's stream.
pub(super) struct Route {
    session: SessionId,
    workstation: WorkstationId,
    viewer: u64,
    to_viewer: mpsc::Sender<Message>,
    view_only: bool,
    /// The session's count of relayed bytes (for its `session.end` audit record).
    relayed: Arc<AtomicU64>,
}

/// The relay's state: every viewer's stream, owned here.
pub(super) struct Routes {
    streams: std::sync::Mutex<std::collections::HashMap<StreamId, Route>>,
    next_stream: AtomicU64,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            streams: std::sync::Mutex::default(),
            next_stream: 1.into(),
        }
    }
}

fn forbidden(message: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::Forbidden, message)
}

fn check_view(view: ViewSpec) -> Result<(), ProtocolError> {
    let ok = match view {
        ViewSpec::Pixels { width, height } => {
            (1..=MAX_VIEW_PIXELS).contains(&width) && (1..=MAX_VIEW_PIXELS).contains(&height)
        }
        ViewSpec::Terminal { cols, rows } => {
            (1..=MAX_VIEW_CELLS).contains(&cols) && (1..=MAX_VIEW_CELLS).contains(&rows)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::bad_request(format!(
            "a view is 1 to {MAX_VIEW_PIXELS} pixels or 1 to {MAX_VIEW_CELLS} cells a side"
        )))
    }
}

impl Hub {
    /// A viewer starts (or resizes) watching an open session of its team.
    pub(super) fn watch(
        &self,
        user: &UserInfo,
        viewer: u64,
        to_viewer: &mpsc::Sender<Message>,
        session: &SessionId,
        view: ViewSpec,
    ) -> Result<StreamId, ProtocolError> {
        check_view(view)?;
        let (workstation, view_only, relayed) = self.join_session(user, session, viewer)?;
        let stream = {
            let mut streams = self
                .routes
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let existing = streams
                .iter()
                .find(|(_, r)| r.viewer == viewer && &r.session == session)
                .map(|(id, _)| *id);
            let id =
                existing.unwrap_or_else(|| self.routes.next_stream.fetch_add(1, Ordering::Relaxed));
            streams.insert(
                id,
                Route {
                    session: session.clone(),
                    workstation: workstation.clone(),
                    viewer,
                    to_viewer: to_viewer.clone(),
                    view_only,
                    relayed,
                },
            );
            id
        };
        let ask = HubToAgent::Watch {
            stream,
            session: session.clone(),
            view,
        };
        if !self.send_to_agent(&workstation, &ask) {
            self.routes
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&stream);
            return Err(ProtocolError::new(
                ErrorCode::Conflict,
                "the workstation is offline",
            ));
        }
        Ok(stream)
    }

    /// The route of `stream` if `viewer` owns it.
    fn owned_route<T>(
        &self,
        viewer: u64,
        stream: StreamId,
        f: impl FnOnce(&Route) -> T,
    ) -> Result<T, ProtocolError> {
        let streams = self
            .routes
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        streams
            .get(&stream)
            .filter(|r| r.viewer == viewer)
            .map(f)
            .ok_or_else(|| ProtocolError::not_found("stream"))
    }

    pub(super) fn unwatch(&self, viewer: u64, stream: StreamId) -> Result<(), ProtocolError> {
        let workstation = self.owned_route(viewer, stream, |r| r.workstation.clone())?;
        self.routes
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&stream);
        self.send_to_agent(&workstation, &HubToAgent::Unwatch { stream });
        Ok(())
    }

    pub(super) fn ack(&self, viewer: u64, stream: StreamId, seq: u64) -> Result<(), ProtocolError> {
        let workstation = self.owned_route(viewer, stream, |r| r.workstation.clone())?;
        self.send_to_agent(&workstation, &HubToAgent::Ack { stream, seq });
        Ok(())
    }

    pub(super) fn input(
        &self,
        viewer: u64,
        stream: StreamId,
        events: Vec<InputEvent>,
    ) -> Result<(), ProtocolError> {
        let (workstation, view_only) =
            self.owned_route(viewer, stream, |r| (r.workstation.clone(), r.view_only))?;
        if view_only {
            return Err(forbidden("this session is view only"));
        }
        self.send_to_agent(&workstation, &HubToAgent::Input { stream, events });
        Ok(())
    }

    /// A binary frame from an agent: pass it to its viewer (the same bytes, not a copy).
    pub(super) fn relay_from_agent(
        &self,
        from: &WorkstationId,
        bytes: Bytes,
    ) -> Result<(), ProtocolError> {
        let (kind, stream, seq) =
            peek_header(&bytes).map_err(|e| ProtocolError::bad_request(e.to_string()))?;
        if kind == FrameKind::TerminalInput {
            return Err(ProtocolError::bad_request(
                "terminal input goes to an agent, not from one",
            ));
        }
        let (to_viewer, relayed) = {
            let streams = self
                .routes
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match streams.get(&stream) {
                Some(r) if &r.workstation == from => (r.to_viewer.clone(), r.relayed.clone()),
                // A stream that just ended: the frame is simply late.
                _ => return Ok(()),
            }
        };
        let len = bytes.len() as u64;
        if to_viewer.try_send(Message::binary(bytes)).is_ok() {
            relayed.fetch_add(len, Ordering::Relaxed);
        } else {
            // The viewer's connection is backed up: drop this frame and say so, so the agent
            // sends that area again from its latest picture (an ack would leave it stale).
            self.send_to_agent(from, &HubToAgent::Dropped { stream, seq });
        }
        Ok(())
    }

    /// A binary frame from a viewer (keystrokes for a terminal session): pass it to the agent.
    pub(super) fn relay_from_viewer(&self, viewer: u64, bytes: Bytes) -> Result<(), ProtocolError> {
        let (kind, stream, _) =
            peek_header(&bytes).map_err(|e| ProtocolError::bad_request(e.to_string()))?;
        if kind != FrameKind::TerminalInput {
            return Err(ProtocolError::bad_request(
                "a viewer sends only terminal input frames",
            ));
        }
        let (workstation, view_only, relayed) = self.owned_route(viewer, stream, |r| {
            (r.workstation.clone(), r.view_only, r.relayed.clone())
        })?;
        if view_only {
            return Err(forbidden("this session is view only"));
        }
        let len = bytes.len() as u64;
        if self.send_binary_to_agent(&workstation, bytes) {
            relayed.fetch_add(len, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The agent ended a stream of its own (its screen could not start, or stopped): close
    /// the route and tell its viewer why.
    pub(super) fn stream_ended_by_agent(
        &self,
        from: &WorkstationId,
        stream: StreamId,
        reason: String,
    ) {
        let route = {
            let mut streams = self
                .routes
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if streams.get(&stream).is_none_or(|r| &r.workstation != from) {
                return; // not its stream, or already gone
            }
            streams.remove(&stream)
        };
        let Some(route) = route else { return };
        let event = HubToConsole::Event {
            event: HubEvent::StreamEnded { stream, reason },
        };
        let Ok(text) = crate::protocol::encode(&event) else {
            return;
        };
        // Waits for room rather than lose the reason; never holds up the agent's connection.
        tokio::spawn(async move {
            let _ = route.to_viewer.send(Message::text(text)).await;
        });
    }

    /// A console connection closed: its streams end.
    pub(super) fn drop_viewer_streams(&self, viewer: u64) {
        let gone: Vec<(StreamId, WorkstationId)> = {
            let mut streams = self
                .routes
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let ids: Vec<_> = streams
                .iter()
                .filter(|(_, r)| r.viewer == viewer)
                .map(|(id, r)| (*id, r.workstation.clone()))
                .collect();
            for (id, _) in &ids {
                streams.remove(id);
            }
            ids
        };
        for (stream, workstation) in gone {
            self.send_to_agent(&workstation, &HubToAgent::Unwatch { stream });
        }
    }

    /// A session ended: its streams end with it (the agent stops them on the session notice).
    pub(super) fn drop_session_streams(&self, session: &SessionId) {
        self.routes
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, r| &r.session != session);
    }

    /// How many streams are open (for tests and status).
    pub fn stream_count(&self) -> usize {
        self.routes.streams.lock().map(|s| s.len()).unwrap_or(0)
    }
}
