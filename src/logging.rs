//! Logging to a file under the state dir (never to a terminal the console owns).

use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Keeps the background log writer alive; drop it last so buffered lines are flushed.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Log to `dir/<role>.log` (daily files). Level from `TETHER_LOG` (default `info`).
/// Returns `None` when logging could not be set up: the program runs on without logs.
pub fn to_file(dir: &Path, role: &str) -> Option<LogGuard> {
    std::fs::create_dir_all(dir).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(role)
        .filename_suffix("log")
        .max_log_files(7)
        .build(dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Log to standard error: for the hub and agent when run in the foreground.
pub fn to_stderr() {
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal, not in files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
