//! The agent's side of live sessions: one stream per viewer, fed from the session's source.
//!
//! A terminal session runs one shell per session, shared by every viewer of it (as tmux shares
//! a window). Its output is a byte stream that must not lose bytes, so flow control is a
//! window: each viewer may have [`TERMINAL_WINDOW`] frames unacknowledged, and the shell is
//! read only while every viewer has room, so a slow viewer makes the shell wait instead of
//! filling memory. A frame the hub had to drop (the viewer's connection was backed up) is
//! made good by redrawing that viewer's screen from the session's terminal model. (Desktop
//! pictures, where the latest frame wins, arrive with the screen capture.) A stream that
//! cannot go on (the screen will not start, or stops) is reported to the hub with the reason,
//! for its viewer.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::pixels::{self, PixelCommand, WindowLimits};
use super::screen::{self, Screen, ScreenSource};
use super::terminal::TerminalSession;
use super::views::Views;
use crate::protocol::stream::{self, StreamFrame};
use crate::protocol::{AgentRequest, InputEvent, ScreenSize, SessionId, StreamId, ViewSpec};

/// Frames a terminal viewer may have unacknowledged.
pub const TERMINAL_WINDOW: u64 = 16;

enum TerminalCommand {
    Attach(StreamId, u16, u16),
    Detach(StreamId),
    Ack(StreamId, u64),
    Dropped(StreamId, u64),
    Input(Vec<u8>),
}

struct TerminalHandle {
    commands: mpsc::UnboundedSender<TerminalCommand>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TerminalHandle {
    fn drop(&mut self) {
        // Dropping the task drops the shell, which hangs it up.
        self.task.abort();
    }
}

/// The streams of one hub connection.
pub(super) struct Streams {
    frames: mpsc::Sender<Vec<u8>>,
    /// Requests for the hub (a stream ended here, and why).
    to_hub: mpsc::UnboundedSender<AgentRequest>,
    terminals: HashMap<SessionId, TerminalHandle>,
    sessions: HashMap<StreamId, SessionId>,
    /// Where desktop pictures come from, and the capture while anyone watches it (one
    /// capture, shared by every desktop viewer).
    source: ScreenSource,
    screen: Arc<tokio::sync::Mutex<Option<Screen>>>,
    desktops: HashMap<StreamId, PixelHandle>,
    /// The screen scaled once per distinct viewer size, shared by the viewers at that size.
    views: Arc<Views>,
    /// Technicians may open a shell here (`tether agent --shell on`).
    shell: bool,
    /// Where a capture reports the screen's size when it starts and when it changes.
    sizes: Option<mpsc::Sender<ScreenSize>>,
}

impl Streams {
    /// `frames` carries encoded frames to the hub link, which writes them as binary messages;
    /// `to_hub` requests it sends as they are.
    pub(super) fn new(
        frames: mpsc::Sender<Vec<u8>>,
        to_hub: mpsc::UnboundedSender<AgentRequest>,
        source: ScreenSource,
        shell: bool,
    ) -> Self {
        Self {
            frames,
            to_hub,
            terminals: HashMap::new(),
            sessions: HashMap::new(),
            source,
            screen: Arc::default(),
            desktops: HashMap::new(),
            views: Arc::default(),
            shell,
            sizes: None,
        }
    }

    /// Report the screen's size (as each capture starts, and on every resolution change) to
    /// `sizes`, for the hub and the consoles.
    pub(super) fn reporting_sizes_to(mut self, sizes: mpsc::Sender<ScreenSize>) -> Self {
        self.sizes = Some(sizes);
        self
    }

    /// A viewer starts watching (or resizes).
    pub(super) fn watch(&mut self, stream: StreamId, session: SessionId, view: ViewSpec) {
        match view {
            ViewSpec::Terminal { cols, rows } => {
                if !self.shell {
                    let reason = "this computer offers no shell: its agent runs with --shell off";
                    tracing::info!(stream, "a shell was asked for and refused (--shell off)");
                    self.end(stream, reason.into());
                    return;
                }
                if self
                    .terminals
                    .get(&session)
                    .is_none_or(|t| t.task.is_finished())
                {
                    match TerminalSession::spawn(cols, rows, None) {
                        Ok(shell) => {
                            let (commands, rx) = mpsc::unbounded_channel();
                            let task = tokio::spawn(run_terminal(shell, rx, self.frames.clone()));
                            self.terminals
                                .insert(session.clone(), TerminalHandle { commands, task });
                        }
                        Err(e) => {
                            tracing::error!(%e, "cannot start a shell for the session");
                            self.end(stream, format!("the shell cannot start: {e}"));
                            return;
                        }
                    }
                }
                if let Some(t) = self.terminals.get(&session) {
                    let _ = t.commands.send(TerminalCommand::Attach(stream, cols, rows));
                }
                self.sessions.insert(stream, session);
            }
            ViewSpec::Pixels { width, height } => {
                if let Some(d) = self.desktops.get(&stream).filter(|d| !d.task.is_finished()) {
                    let _ = d.commands.send(PixelCommand::Resize(width, height));
                    return;
                }
                let (commands, rx) = mpsc::unbounded_channel();
                let (shared, source, frames, to_hub, sizes, views) = (
                    self.screen.clone(),
                    self.source.clone(),
                    self.frames.clone(),
                    self.to_hub.clone(),
                    self.sizes.clone(),
                    self.views.clone(),
                );
                let task = tokio::spawn(async move {
                    let screen = {
                        let mut slot = shared.lock().await;
                        match slot.as_ref().filter(|s| s.ended().is_none()) {
                            Some(s) => Ok(s.clone()),
                            None => match screen::start(&source).await {
                                Ok(s) => {
                                    if let Some(sizes) = sizes {
                                        report_sizes(&s, sizes);
                                    }
                                    Ok(slot.insert(s).clone())
                                }
                                Err(e) => {
                                    tracing::error!(%e, "cannot capture the screen");
                                    Err(format!("the screen source cannot start: {e}"))
                                }
                            },
                        }
                    };
                    let ended = match screen {
                        Ok(screen) => {
                            let area = (width, height);
                            let limits = WindowLimits::default();
                            pixels::run(screen, stream, area, rx, frames, views, limits).await
                        }
                        Err(reason) => Some(reason),
                    };
                    // The viewer would otherwise wait for a picture that is not coming.
                    if let Some(reason) = ended {
                        let _ = to_hub.send(AgentRequest::StreamEnded { stream, reason });
                    }
                });
                self.desktops.insert(stream, PixelHandle { commands, task });
                self.sessions.insert(stream, session);
            }
        }
    }

    /// Tell the hub (and so the viewer) that `stream` ended here, and why.
    fn end(&self, stream: StreamId, reason: String) {
        let _ = self
            .to_hub
            .send(AgentRequest::StreamEnded { stream, reason });
    }

    fn terminal_of(&self, stream: StreamId) -> Option<&TerminalHandle> {
        self.sessions
            .get(&stream)
            .and_then(|s| self.terminals.get(s))
    }

    /// Keyboard and mouse for a desktop stream.
    pub(super) fn input(&mut self, stream: StreamId, events: Vec<InputEvent>) {
        if let Some(d) = self.desktops.get(&stream) {
            let _ = d.commands.send(PixelCommand::Input(events));
        }
    }

    /// Drop the shared capture once no desktop viewer is left.
    fn release_screen_if_unwatched(&mut self) {
        self.desktops.retain(|_, d| !d.task.is_finished());
        if self.desktops.is_empty()
            && let Ok(mut slot) = self.screen.try_lock()
        {
            *slot = None;
        }
    }

    pub(super) fn unwatch(&mut self, stream: StreamId) {
        self.desktops.remove(&stream);
        self.release_screen_if_unwatched();
        if let Some(t) = self.terminal_of(stream) {
            let _ = t.commands.send(TerminalCommand::Detach(stream));
        }
        self.sessions.remove(&stream);
    }

    pub(super) fn ack(&mut self, stream: StreamId, seq: u64) {
        if let Some(d) = self.desktops.get(&stream) {
            let _ = d.commands.send(PixelCommand::Ack(seq));
            return;
        }
        if let Some(t) = self.terminal_of(stream) {
            let _ = t.commands.send(TerminalCommand::Ack(stream, seq));
        }
    }

    /// The hub dropped frame `seq` of `stream` on its way to the viewer.
    pub(super) fn dropped(&mut self, stream: StreamId, seq: u64) {
        if let Some(d) = self.desktops.get(&stream) {
            let _ = d.commands.send(PixelCommand::Dropped(seq));
            return;
        }
        if let Some(t) = self.terminal_of(stream) {
            let _ = t.commands.send(TerminalCommand::Dropped(stream, seq));
        }
    }

    /// A binary frame from a viewer: keystrokes for its terminal.
    pub(super) fn viewer_input(&mut self, bytes: &[u8]) {
        match stream::decode(bytes) {
            Ok(StreamFrame::TerminalInput { stream, bytes, .. }) => {
                if let Some(t) = self.terminal_of(stream) {
                    let _ = t.commands.send(TerminalCommand::Input(bytes));
                }
            }
            Ok(_) => tracing::warn!("unexpected frame from the hub"),
            Err(e) => tracing::warn!(%e, "unreadable frame from the hub"),
        }
    }

    /// A session ended: its shell is hung up and its streams end.
    pub(super) fn session_ended(&mut self, session: &SessionId) {
        self.terminals.remove(session);
        let ended: Vec<StreamId> = self
            .sessions
            .iter()
            .filter(|(_, s)| *s == session)
            .map(|(id, _)| *id)
            .collect();
        for stream in ended {
            self.desktops.remove(&stream);
        }
        self.release_screen_if_unwatched();
        self.sessions.retain(|_, s| s != session);
    }
}

struct PixelHandle {
    commands: mpsc::UnboundedSender<PixelCommand>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PixelHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Viewer {
    sent: u64,
    acked: u64,
    /// The last frame that redrew the whole screen: a frame dropped before it is made good.
    redrawn: u64,
}

/// What a viewer's terminal needs to show the session's screen: its state as a redraw, or a
/// clear screen while the shell has drawn nothing.
fn redraw_of(shell: &TerminalSession) -> Vec<u8> {
    shell
        .replay()
        .unwrap_or_else(|| b"\x1b[0m\x1b[H\x1b[2J".to_vec())
}

/// Send one viewer its screen as a redraw; false once the link to the hub is gone.
async fn send_redraw(
    frames: &mpsc::Sender<Vec<u8>>,
    stream: StreamId,
    v: &mut Viewer,
    bytes: Vec<u8>,
) -> bool {
    v.sent += 1;
    v.redrawn = v.sent;
    let frame = StreamFrame::TerminalOutput {
        stream,
        seq: v.sent,
        bytes,
    };
    match stream::encode(&frame) {
        Ok(encoded) => frames.send(encoded).await.is_ok(),
        Err(e) => {
            tracing::error!(%e, "cannot encode the screen replay");
            true
        }
    }
}

/// One shell, fanned out to its viewers.
async fn run_terminal(
    mut shell: TerminalSession,
    mut commands: mpsc::UnboundedReceiver<TerminalCommand>,
    frames: mpsc::Sender<Vec<u8>>,
) {
    let mut viewers: HashMap<StreamId, Viewer> = HashMap::new();
    loop {
        // Read the shell only when someone watches and every viewer has room.
        let room =
            !viewers.is_empty() && viewers.values().all(|v| v.sent - v.acked < TERMINAL_WINDOW);
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(TerminalCommand::Attach(stream, cols, rows)) => {
                    let new = !viewers.contains_key(&stream);
                    let v = viewers.entry(stream).or_insert(Viewer { sent: 0, acked: 0, redrawn: 0 });
                    if shell.size() != (cols, rows)
                        && let Err(e) = shell.resize(cols, rows)
                    {
                        tracing::warn!(%e, "cannot resize the shell");
                    }
                    // A viewer joining a running shell first gets its current screen.
                    if new
                        && let Some(bytes) = shell.replay()
                        && !send_redraw(&frames, stream, v, bytes).await
                    {
                        return;
                    }
                }
                Some(TerminalCommand::Detach(stream)) => {
                    viewers.remove(&stream);
                }
                Some(TerminalCommand::Ack(stream, seq)) => {
                    if let Some(v) = viewers.get_mut(&stream) {
                        v.acked = v.acked.max(seq.min(v.sent));
                    }
                }
                Some(TerminalCommand::Dropped(stream, seq)) => {
                    // Output is lost to this viewer: redraw its screen from the model (which
                    // has every byte read so far), once for all the frames sent before.
                    if let Some(v) = viewers.get_mut(&stream)
                        && seq > v.redrawn
                        && seq <= v.sent
                    {
                        // That frame is never acked: count it as done, or the window shrinks.
                        v.acked = v.acked.max(seq);
                        if !send_redraw(&frames, stream, v, redraw_of(&shell)).await {
                            return;
                        }
                    }
                }
                Some(TerminalCommand::Input(bytes)) => {
                    if let Err(e) = shell.write(&bytes).await {
                        tracing::warn!(%e, "cannot write to the shell");
                    }
                }
            },
            output = shell.read(), if room => {
                let (bytes, ended) = match output {
                    Some(bytes) => (bytes, false),
                    None => (b"\r\n[the shell has ended]\r\n".to_vec(), true),
                };
                for (stream, v) in &mut viewers {
                    v.sent += 1;
                    let frame = StreamFrame::TerminalOutput { stream: *stream, seq: v.sent, bytes: bytes.clone() };
                    match stream::encode(&frame) {
                        Ok(encoded) => {
                            if frames.send(encoded).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::error!(%e, "cannot encode terminal output"),
                    }
                }
                if ended {
                    return;
                }
            }
        }
    }
}

/// Send `screen`'s size to `sizes` now and whenever it changes, until the capture ends.
fn report_sizes(screen: &Screen, sizes: mpsc::Sender<ScreenSize>) {
    let mut viewer = screen.viewer();
    let mut last = None;
    tokio::spawn(async move {
        while let Ok(update) = viewer.next_update().await {
            let size = ScreenSize {
                width: update.fb.width(),
                height: update.fb.height(),
            };
            if last != Some(size) {
                last = Some(size);
                if sizes.send(size).await.is_err() {
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::console::terminal_view::TerminalView;

    /// The next output frame for the viewer: its stream, seq and bytes.
    async fn next(frames: &mut mpsc::Receiver<Vec<u8>>) -> (StreamId, u64, Vec<u8>) {
        let frame = tokio::time::timeout(Duration::from_secs(10), frames.recv())
            .await
            .expect("output in time")
            .expect("open");
        match stream::decode(&frame).expect("decode") {
            StreamFrame::TerminalOutput { stream, seq, bytes } => (stream, seq, bytes),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_dropped_terminal_frame_redraws_that_viewers_screen() {
        let shell = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
        let (commands, rx) = mpsc::unbounded_channel();
        let (frames_tx, mut frames) = mpsc::channel(64);
        let _task = tokio::spawn(run_terminal(shell, rx, frames_tx));
        commands
            .send(TerminalCommand::Attach(1, 80, 24))
            .expect("attach");
        commands
            .send(TerminalCommand::Input(b"echo tether-$((6*7))\r".to_vec()))
            .expect("type");
        // The viewer draws everything but the frame with the answer: that one the hub dropped.
        let mut view = TerminalView::new(80, 24);
        let mut shown = String::new();
        let lost = loop {
            let (stream, seq, bytes) = next(&mut frames).await;
            assert_eq!(stream, 1);
            shown.push_str(&String::from_utf8_lossy(&bytes));
            commands
                .send(TerminalCommand::Ack(stream, seq))
                .expect("ack");
            if shown.contains("tether-42") {
                break seq;
            }
            view.feed(&bytes);
        };
        view.feed(b"\r\nstale junk");
        assert!(!view.text().contains("tether-42"));

        commands
            .send(TerminalCommand::Dropped(1, lost))
            .expect("dropped");
        let (stream, seq, redraw) = next(&mut frames).await;
        assert_eq!(stream, 1);
        assert!(seq > lost, "a new frame, after what was sent");
        view.feed(&redraw);
        let text = view.text();
        assert!(
            text.contains("tether-42"),
            "the lost output is back:\n{text}"
        );
        assert!(
            !text.contains("stale junk"),
            "the screen was redrawn:\n{text}"
        );

        // A frame dropped before that redraw is already made good by it.
        commands
            .send(TerminalCommand::Dropped(1, lost))
            .expect("dropped");
        commands
            .send(TerminalCommand::Input(b"echo next-$((2*3))\r".to_vec()))
            .expect("type");
        let mut after = String::new();
        while !after.contains("next-6") {
            let (_, seq, bytes) = next(&mut frames).await;
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("tether-42"), "no second redraw: {text:?}");
            after.push_str(&text);
            commands.send(TerminalCommand::Ack(1, seq)).expect("ack");
        }
    }
}
