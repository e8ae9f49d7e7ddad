//! A real VNC server for tests: Xvnc (Debian's tigervnc-standalone-server), which is also an X
//! display, so a test can draw with x11rb and read input back as X events. Each [`Xvnc`] runs
//! on a display the server picks (`-displayfd`) and a free port, and is killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, EventMask, WindowClass};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// How long the server gets to start.
const START: Duration = Duration::from_secs(15);

/// An Xvnc on a free display and port, killed on drop.
pub struct Xvnc {
    child: Child,
    pub display: String,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Xvnc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Xvnc {
    /// A `width` x `height` server (24-bit) with `security` options; `None` (after saying why)
    /// when Xvnc is not installed and peers are not required.
    pub fn start(test: &str, size: (u32, u32), security: &[&str]) -> Option<Xvnc> {
        if !super::peers::available("Xvnc", test) {
            return None;
        }
        // The port is free when probed; another process may take it before Xvnc binds it,
        // in which case Xvnc exits and the next attempt probes again.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("probe a free port")
                .port();
            if let Some(server) = Self::spawn(port, size, security) {
                return Some(server);
            }
        }
        panic!("{test}: Xvnc did not start");
    }

    /// A server on `port` (the caller checked that Xvnc is installed); panics when it does
    /// not start.
    pub fn start_on(test: &str, port: u16, size: (u32, u32), security: &[&str]) -> Xvnc {
        Self::spawn(port, size, security)
            .unwrap_or_else(|| panic!("{test}: Xvnc did not start on port {port}"))
    }

    fn spawn(port: u16, (width, height): (u32, u32), security: &[&str]) -> Option<Xvnc> {
        let dir = tempfile::tempdir().expect("tempdir");
        let geometry = format!("{width}x{height}");
        let mut child = Command::new("Xvnc")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-localhost"])
            .args(["-interface", "127.0.0.1", "-rfbport", &port.to_string()])
            .args(["-geometry", &geometry, "-depth", "24", "-AlwaysShared"])
            .args(security)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn Xvnc");
        let stdout = child.stdout.take().expect("stdout");
        // Xvnc writes the display number it took once it is ready for clients; a thread reads
        // it so that the wait has a timeout.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(START) {
            Ok(line) if !line.trim().is_empty() => {
                let server = Xvnc {
                    child,
                    display: format!(":{}", line.trim()),
                    port,
                    _dir: dir,
                };
                // Dropped (and killed) when the port is not its.
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .is_ok()
                    .then_some(server)
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// A new X client of this server.
    pub fn x(&self) -> X {
        let (conn, screen) = RustConnection::connect(Some(&self.display)).expect("connect to Xvnc");
        let root = conn.setup().roots[screen].root;
        X { conn, root }
    }

    /// The agent's `--screen` for this server.
    pub fn vnc_spec(&self) -> String {
        format!("vnc://127.0.0.1:{}", self.port)
    }
}

/// A test's own X client.
pub struct X {
    pub conn: RustConnection,
    pub root: u32,
}

impl X {
    /// A mapped override-redirect window of one colour selecting `events` (the server redraws
    /// window backgrounds itself, so nothing needs to handle Expose).
    pub fn window(&self, x: i16, y: i16, w: u16, h: u16, colour: u32, events: EventMask) -> u32 {
        let c = &self.conn;
        let id = c.generate_id().expect("id");
        let aux = CreateWindowAux::new()
            .background_pixel(colour)
            .override_redirect(1)
            .event_mask(events);
        c.create_window(
            0,
            id,
            self.root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &aux,
        )
        .expect("create window");
        c.map_window(id).expect("map");
        c.sync().expect("sync");
        id
    }

    /// Move the pointer to (`x`, `y`) on the root window.
    pub fn warp_pointer(&self, x: i16, y: i16) {
        self.conn
            .warp_pointer(x11rb::NONE, self.root, 0, 0, 0, 0, x, y)
            .expect("move the pointer");
        self.conn.sync().expect("sync");
    }

    /// The keycode the server's keymap gives `keysym` (unshifted or shifted column).
    pub fn keycode(&self, keysym: u32) -> u8 {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .expect("mapping")
            .reply()
            .expect("mapping reply");
        let per = usize::from(map.keysyms_per_keycode);
        map.keysyms
            .chunks(per)
            .position(|syms| syms.iter().take(2).any(|&s| s == keysym))
            .map(|i| min + i as u8)
            .expect("keysym in the keymap")
    }

    /// The keycodes of the modifier keys (a server may press Shift on its own to make a
    /// keysym; tests leave those out).
    pub fn modifier_keycodes(&self) -> Vec<u8> {
        self.conn
            .get_modifier_mapping()
            .expect("modifiers")
            .reply()
            .expect("modifiers reply")
            .keycodes
    }
}
