//! The signals that ask a role to stop: SIGTERM (`kill`, service managers), SIGHUP (the terminal
//! closed) and SIGINT (Ctrl-C outside raw mode, `kill -INT`). Each role awaits [`StopSignals`]
//! in its run loop and ends as it would on a normal stop: terminal restored, temporary data
//! removed, exit status 0.

use std::io;

/// A requested stop, by the signal that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Terminate,
    HangUp,
    Interrupt,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Terminate => "SIGTERM",
            Stop::HangUp => "SIGHUP",
            Stop::Interrupt => "SIGINT",
        }
    }
}

/// Listens for the stop signals from the moment it is made: a signal sent before
/// [`recv`](Self::recv) is awaited is kept, not lost. Several may exist at once (tokio tells
/// each of them).
#[cfg(unix)]
pub struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    hang_up: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    /// Must run inside a tokio runtime. Once made, these signals no longer end the process
    /// by themselves: the caller's loop must stop on [`recv`](Self::recv).
    pub fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            hang_up: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next stop signal.
    pub async fn recv(&mut self) -> Stop {
        tokio::select! {
            _ = self.terminate.recv() => Stop::Terminate,
            _ = self.hang_up.recv() => Stop::HangUp,
            _ = self.interrupt.recv() => Stop::Interrupt,
        }
    }
}

#[cfg(not(unix))]
pub struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    pub fn new() -> io::Result<Self> {
        Ok(Self)
    }

    pub async fn recv(&mut self) -> Stop {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Stop::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}

/// The next stop signal, or never when they cannot be listened for (logged): for loops that
/// must go on without them.
pub async fn stop_requested(signals: Option<&mut StopSignals>) -> Stop {
    match signals {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Listen for the stop signals, logging (not failing) when the system refuses.
pub fn listen() -> Option<StopSignals> {
    match StopSignals::new() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(%e, "cannot listen for stop signals: they will end the process abruptly");
            None
        }
    }
}
