//! Terminal sessions end to end on this machine: a real shell in a PTY (agent side) feeding the
//! console's `TerminalView`, and what that view sends to the technician's own terminal.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tether::agent::terminal::{TerminalSession, key_to_bytes};
use tether::console::terminal_view::TerminalView;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

/// Feed the session's output to the view until its screen shows `needle`. Panics on timeout
/// or if the shell's output ends first, showing the screen.
async fn read_until(session: &mut TerminalSession, view: &mut TerminalView, needle: &str) {
    let found = timeout(WAIT, async {
        loop {
            if view.text().contains(needle) {
                return true;
            }
            match session.read().await {
                Some(chunk) => view.feed(&chunk),
                None => return false,
            }
        }
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "{needle:?} not shown (timed out: {}); screen:\n{}",
        found.is_err(),
        view.text()
    );
}

/// What the technician's terminal would receive to show `view` in a `w` x `h` area.
fn terminal_bytes(view: &TerminalView, w: u16, h: u16) -> Vec<u8> {
    let area = Rect::new(0, 0, w, h);
    let mut buf = Buffer::empty(area);
    view.draw(area, &mut buf);
    let out = Captured::default();
    let mut backend = CrosstermBackend::new(out.clone());
    let blank = Buffer::empty(area);
    backend
        .draw(blank.diff(&buf).into_iter())
        .expect("draw to memory");
    Backend::flush(&mut backend).expect("flush to memory");
    out.0.borrow().clone()
}

/// The bytes a backend wrote.
#[derive(Clone, Default)]
struct Captured(Rc<RefCell<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every escape sequence in `bytes` is one the console's own drawing makes (CSI cursor moves
/// and colours), and no other control character is there.
fn assert_only_drawing_sequences(bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            assert_eq!(bytes.get(i + 1), Some(&b'['), "non-CSI escape at {i}");
            let mut j = i + 2;
            while bytes
                .get(j)
                .is_some_and(|c| c.is_ascii_digit() || *c == b';' || *c == b':')
            {
                j += 1;
            }
            assert!(
                matches!(bytes.get(j), Some(b'H' | b'm')),
                "unexpected sequence {:?}",
                String::from_utf8_lossy(&bytes[i..bytes.len().min(j + 1)])
            );
            i = j + 1;
            continue;
        }
        assert!(
            b >= 0x20 && b != 0x7f,
            "control byte {b:#04x} at {i} reached the technician's terminal"
        );
        i += 1;
    }
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
        "a C1 control reached the technician's terminal"
    );
}

#[tokio::test]
async fn a_terminal_session_to_a_headless_agent_runs_a_command_and_shows_its_output() {
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    let mut view = TerminalView::new(80, 24);
    // The arithmetic happens remotely: `tether-42` cannot be the echo of what was typed.
    session
        .write(b"echo tether-$((6*7))\r")
        .await
        .expect("type");
    read_until(&mut session, &mut view, "tether-42").await;
    assert!(view.text().contains("echo tether-$((6*7))"), "input echoed");

    session.write(b"exit 0\r").await.expect("type");
    let exit = timeout(WAIT, session.wait())
        .await
        .expect("shell exits in time")
        .expect("exit status");
    assert!(exit.success(), "{exit}");
    // The output then ends.
    let end = timeout(WAIT, async { while session.read().await.is_some() {} }).await;
    assert!(end.is_ok(), "output did not end after the shell exited");
    assert!(session.write(b"x").await.is_err() || session.exit_status().is_some());
}

#[tokio::test]
async fn the_users_login_shell_reports_its_exit_code() {
    let session = TerminalSession::spawn(80, 24, None).expect("spawn login shell");
    session.write(b"exit 3\r").await.expect("type");
    let exit = timeout(WAIT, session.wait())
        .await
        .expect("shell exits in time")
        .expect("exit status");
    assert_eq!(exit.code, 3);
    assert_eq!(exit.signal, None);
    assert!(session.exit_status().is_some_and(|s| s.is_ok()));
}

#[tokio::test]
async fn resize_reaches_the_shell() {
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    let mut view = TerminalView::new(80, 24);
    session.write(b"stty size\r").await.expect("type");
    read_until(&mut session, &mut view, "24 80").await;

    session.resize(100, 30).expect("resize");
    view.resize(100, 30);
    assert_eq!(session.size(), (100, 30));
    session.write(b"stty size\r").await.expect("type");
    read_until(&mut session, &mut view, "30 100").await;
    assert!(session.resize(0, 30).is_err());
}

#[tokio::test]
async fn keys_typed_in_the_console_drive_the_shell() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    let mut view = TerminalView::new(80, 24);
    // A long-running command, interrupted with Ctrl-C once it runs (it is the foreground job
    // when it prints), then a command typed key by key.
    session
        .write(b"sh -c 'echo ready-$((1+1)); exec sleep 600'\r")
        .await
        .expect("type");
    read_until(&mut session, &mut view, "ready-2").await;
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    session
        .write(&view.key_bytes(&ctrl_c).expect("ctrl-c bytes"))
        .await
        .expect("interrupt");
    for c in "echo k-$((2+3))".chars() {
        let key = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let bytes = key_to_bytes(&key, view.cursor_keys()).expect("char bytes");
        session.write(&bytes).await.expect("type");
    }
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    session
        .write(&view.key_bytes(&enter).expect("enter bytes"))
        .await
        .expect("enter");
    read_until(&mut session, &mut view, "k-5").await;
}

#[tokio::test]
async fn remote_escape_sequences_never_reach_the_technicians_terminal() {
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    let mut view = TerminalView::new(80, 24);
    // An OSC 52 clipboard write, a title, an alternate-screen switch and a DCS, assembled by
    // printf so the typed command line (echoed) does not contain them.
    let hostile = concat!(
        "printf '\\033]52;c;%s%s\\007\\033]0;%s%s\\007\\033P+q%s\\033\\\\' ",
        "aGVs bG8= pw ned 544e; echo done-$((2+3))\r"
    );
    session.write(hostile.as_bytes()).await.expect("type");
    read_until(&mut session, &mut view, "done-5").await;
    assert_eq!(view.title(), "pwned", "the title is parsed, kept aside");

    let bytes = terminal_bytes(&view, 80, 24);
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("aGVsbG8="), "clipboard payload drawn");
    assert!(!text.contains("pwned"), "title drawn");
    assert!(text.contains("done-5"));
    assert_only_drawing_sequences(&bytes);
}

#[tokio::test]
async fn heavy_output_arrives_whole_in_bounded_chunks() {
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    session
        .write(b"head -c 3000000 /dev/zero | tr '\\0' Q; echo; echo end-$((1+1))\r")
        .await
        .expect("type");
    let mut count = 0usize;
    let mut tail: Vec<u8> = Vec::new();
    let mut largest = 0usize;
    let done = timeout(Duration::from_secs(60), async {
        while let Some(chunk) = session.read().await {
            largest = largest.max(chunk.len());
            count += chunk.iter().filter(|&&b| b == b'Q').count();
            tail.extend_from_slice(&chunk);
            let keep = tail.len().saturating_sub(64);
            tail.drain(..keep);
            if String::from_utf8_lossy(&tail).contains("end-2") {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "output did not finish; {count} bytes seen");
    // Every byte made it (plus the one in the echoed command line).
    assert_eq!(count, 3_000_001);
    assert!(largest <= 128 * 1024, "a chunk of {largest} bytes");
}

#[test]
fn hostile_output_fed_directly_is_drawn_as_text_only() {
    let mut view = TerminalView::new(40, 6);
    let hostile: &[&[u8]] = &[
        b"\x1b]52;c;aGVsbG8=\x07",
        b"\x1b]52;c;?\x1b\\",
        b"\x1b]0;title\x07\x1b]2;title2\x1b\\",
        b"\x1b]8;;http://example.invalid\x1b\\link\x1b]8;;\x1b\\",
        b"\x1bP+q544e\x1b\\",
        b"\x1b_apc\x1b\\\x1b^pm\x1b\\",
        b"\x1b[?1000h\x1b[?2004h\x1b[6n\x1b[c",
        "\u{9b}31m\u{9d}0;c1title\u{9c}".as_bytes(),
        b"\x07\x0e\x0f",
        b"\x1b[1;32mvisible\x1b[0m",
    ];
    for chunk in hostile {
        view.feed(chunk);
    }
    let bytes = terminal_bytes(&view, 40, 6);
    assert!(String::from_utf8_lossy(&bytes).contains("visible"));
    assert_only_drawing_sequences(&bytes);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_session_ends_the_shell() {
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    let mut view = TerminalView::new(80, 24);
    session.write(b"echo up-$((1+1))\r").await.expect("type");
    read_until(&mut session, &mut view, "up-2").await;
    let pid = session.process_id().expect("pid");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    drop(session);
    // The session's own waiter reaps the shell, so its /proc entry goes away.
    let gone = timeout(WAIT, async {
        while proc_dir.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "shell {pid} still running after drop");
}

#[tokio::test]
async fn a_shell_that_ignores_the_hangup_is_killed() {
    let mut session = TerminalSession::spawn(80, 24, Some("/bin/sh")).expect("spawn shell");
    let mut view = TerminalView::new(80, 24);
    session
        .write(b"trap '' HUP; echo armed-$((1+1))\r")
        .await
        .expect("type");
    read_until(&mut session, &mut view, "armed-2").await;
    session.hang_up();
    let exit = timeout(WAIT, session.wait())
        .await
        .expect("shell killed in time")
        .expect("exit status");
    assert!(exit.signal.is_some(), "{exit}");
    assert!(!exit.success());
}
