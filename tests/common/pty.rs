//! The real binary in a pseudo-terminal: what a person at that terminal sees, and their keys.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Bytes the terminal showed, and a signal each time more came.
#[derive(Default)]
pub struct Shown {
    bytes: Mutex<Vec<u8>>,
    more: Condvar,
    ended: Mutex<bool>,
}

impl Shown {
    /// Wait until the text so far contains `what`; panics with it after `within`.
    pub fn wait_for(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut bytes = self.bytes.lock().expect("lock");
        loop {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if text.contains(what) {
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what:?}; shown:\n{text}"
            );
            bytes = self.more.wait_timeout(bytes, left).expect("lock").0;
        }
    }

    /// Wait until the program closed the terminal; everything it showed.
    pub fn wait_for_end(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut bytes = self.bytes.lock().expect("lock");
        while !*self.ended.lock().expect("lock") {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the program did not end within {within:?}");
            bytes = self.more.wait_timeout(bytes, left).expect("lock").0;
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A program in a 100x24 pseudo-terminal; killed on drop.
pub struct InPty {
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    pub keyboard: Box<dyn std::io::Write + Send>,
    pub shown: Arc<Shown>,
}

impl InPty {
    pub fn spawn(command: CommandBuilder) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 100,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let child = pty.slave.spawn_command(command).expect("spawn in the pty");
        drop(pty.slave);
        let keyboard = pty.master.take_writer().expect("pty writer");
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let shown = Arc::new(Shown::default());
        let sink = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // A test that failed holding the lock poisons it: keep reading all the same.
                sink.bytes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
                sink.more.notify_all();
            }
            *sink.ended.lock().unwrap_or_else(|p| p.into_inner()) = true;
            // Taken under the bytes' lock, so a waiter cannot miss the end.
            let _guard = sink.bytes.lock().unwrap_or_else(|p| p.into_inner());
            sink.more.notify_all();
        });
        Self {
            child,
            keyboard,
            shown,
        }
    }
}

impl Drop for InPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
