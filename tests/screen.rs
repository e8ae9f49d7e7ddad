//! Screen sources against a real VNC server: Xvnc (Debian's tigervnc-standalone-server), which
//! is also an X display, so one server checks both the `vnc://` and the `x11:` source. Each
//! test starts its own Xvnc on a display the server picks (`-displayfd`) and a free port, and
//! kills it on drop. The test draws with x11rb and reads input back as X events.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tether::agent::screen::{self, Screen, ScreenError, ScreenSource, ScreenViewer, Update};
use tether::frame::{Framebuffer, Rect};
use tether::protocol::InputEvent;
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, EventMask, InputFocus, KeyButMask,
};
use x11rb::wrapper::ConnectionExt as _;

use common::peers;
use common::xvnc::{X, Xvnc};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const WAIT: Duration = Duration::from_secs(15);

const ROOT_COLOUR: u32 = 0x3366cc;
/// Test windows: position, size, colour.
const PATCHES: [(i16, i16, u16, u16, u32); 3] = [
    (50, 60, 200, 100, 0xcc3333),
    (300, 200, 40, 40, 0x33cc66),
    (420, 30, 120, 300, 0xf0e68c),
];
/// The server draws its cursor into the VNC picture; the test parks the pointer in the
/// bottom-right corner and leaves this square out of comparisons.
const CURSOR_CORNER: u32 = 32;

/// Paint the known picture: a solid root and three solid windows (the server redraws
/// window backgrounds itself, so nothing needs to handle Expose).
fn paint_known_picture(x: &X) {
    let c = &x.conn;
    c.change_window_attributes(
        x.root,
        &ChangeWindowAttributesAux::new().background_pixel(ROOT_COLOUR),
    )
    .expect("root colour");
    c.clear_area(false, x.root, 0, 0, 0, 0).expect("clear root");
    for (px, py, w, h, colour) in PATCHES {
        x.window(px, py, w, h, colour, EventMask::NO_EVENT);
    }
    x.warp_pointer(WIDTH as i16 - 1, HEIGHT as i16 - 1);
}

/// The picture [`paint_known_picture`] draws.
fn expected_picture() -> Framebuffer {
    let rgba = |c: u32| [(c >> 16) as u8, (c >> 8) as u8, c as u8, 255];
    let mut fb = Framebuffer::new(WIDTH, HEIGHT);
    fb.fill(fb.bounds(), rgba(ROOT_COLOUR));
    for (x, y, w, h, colour) in PATCHES {
        fb.fill(
            Rect::new(x as u32, y as u32, u32::from(w), u32::from(h)),
            rgba(colour),
        );
    }
    fb
}

/// Whether two pictures agree everywhere outside the cursor corner.
fn same_outside_cursor(a: &Framebuffer, b: &Framebuffer) -> bool {
    let (w, h) = (a.width(), a.height());
    (w, h) == (b.width(), b.height())
        && (0..h).all(|y| {
            (0..w).all(|x| {
                (x + CURSOR_CORNER >= w && y + CURSOR_CORNER >= h) || a.pixel(x, y) == b.pixel(x, y)
            })
        })
}

/// The next update satisfying `good`, or a failure after [`WAIT`].
async fn wait_for(viewer: &mut ScreenViewer, what: &str, good: impl Fn(&Update) -> bool) -> Update {
    tokio::time::timeout(WAIT, async {
        loop {
            let update = viewer.next_update().await.expect("source running");
            if good(&update) {
                return update;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn start(spec: &str) -> Screen {
    let spec: ScreenSource = spec.parse().expect("spec");
    screen::start(&spec).await.expect("start the source")
}

/// The known picture arrives exactly (lossless encodings, 24-bit colour end to end), and a
/// small change afterwards arrives as small damage that covers it.
async fn check_known_picture(screen: &Screen, x: &X) {
    let expected = expected_picture();
    let mut viewer = screen.viewer();
    let shown = wait_for(&mut viewer, "the known picture", |u| {
        same_outside_cursor(&u.fb, &expected)
    })
    .await;
    let before: Arc<Framebuffer> = shown.fb;

    x.window(100, 300, 20, 10, 0x000000, EventMask::NO_EVENT);
    let mut damage: Vec<Rect> = Vec::new();
    let after = tokio::time::timeout(WAIT, async {
        loop {
            let update = viewer.next_update().await.expect("source running");
            damage.extend(update.damage.iter().copied());
            if update.fb.pixel(110, 305) == [0, 0, 0, 255] {
                return update;
            }
        }
    })
    .await
    .expect("the new window shows");
    assert!(
        screen::covers_changes(&before, &after.fb, &damage),
        "damage {damage:?} misses a change"
    );
    let area: u32 = damage.iter().map(|r| r.width * r.height).sum();
    assert!(
        area < WIDTH * HEIGHT / 8,
        "damage of a 20x10 window is {area} px: {damage:?}"
    );
}

/// A click and two keys sent through `screen` arrive at an X window as events.
async fn check_input_reaches_x(server: &Xvnc, screen: &Screen) {
    let x = server.x();
    let events = EventMask::BUTTON_PRESS | EventMask::KEY_PRESS;
    let window = x.window(100, 100, 200, 100, 0x808080, events);
    x.conn
        .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
        .expect("focus");
    x.conn.sync().expect("sync");
    let a = x.keycode(0x61);
    for event in [
        InputEvent::Pointer {
            x: 150,
            y: 130,
            buttons: 0,
        },
        InputEvent::Pointer {
            x: 150,
            y: 130,
            buttons: 1,
        },
        InputEvent::Pointer {
            x: 150,
            y: 130,
            buttons: 0,
        },
        InputEvent::Key {
            keysym: 0x61,
            down: true,
        },
        InputEvent::Key {
            keysym: 0x61,
            down: false,
        },
        InputEvent::Key {
            keysym: 0x41,
            down: true,
        },
        InputEvent::Key {
            keysym: 0x41,
            down: false,
        },
    ] {
        screen.input(event).expect("input accepted");
    }
    // Modifier keys the server presses on its own to make an "A" are not what is checked.
    let modifiers = x.modifier_keycodes();
    // X's event wait blocks; it runs on a blocking thread under the test's timeout (when
    // the test ends, killing Xvnc ends that wait too).
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match x.conn.wait_for_event().expect("X event") {
                Event::ButtonPress(e) => seen.push(format!(
                    "button {} at {},{}",
                    e.detail, e.event_x, e.event_y
                )),
                Event::KeyPress(e) if !modifiers.contains(&e.detail) => {
                    // Shift or Caps Lock: either makes the second column's keysym.
                    let upper = u16::from(KeyButMask::SHIFT | KeyButMask::LOCK);
                    let shifted = u16::from(e.state) & upper != 0;
                    seen.push(format!(
                        "key {}{}",
                        e.detail,
                        if shifted { " shifted" } else { "" }
                    ));
                }
                _ => {}
            }
        }
        seen
    });
    let seen = tokio::time::timeout(WAIT, seen)
        .await
        .expect("the X server saw the input")
        .expect("event thread");
    assert_eq!(
        seen,
        vec![
            "button 1 at 50,30".to_string(),
            format!("key {a}"),
            format!("key {a} shifted")
        ]
    );
}

#[tokio::test]
async fn vnc_source_shows_the_x_picture() {
    let Some(server) = Xvnc::start(
        "vnc_source_shows_the_x_picture",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let x = server.x();
    paint_known_picture(&x);
    let screen = start(&server.vnc_spec()).await;
    assert_eq!((screen.size().width, screen.size().height), (WIDTH, HEIGHT));
    check_known_picture(&screen, &x).await;
}

#[tokio::test]
async fn x11_source_shows_the_x_picture() {
    let Some(server) = Xvnc::start(
        "x11_source_shows_the_x_picture",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let x = server.x();
    paint_known_picture(&x);
    let screen = start(&format!("x11:{}", server.display)).await;
    assert_eq!((screen.size().width, screen.size().height), (WIDTH, HEIGHT));
    check_known_picture(&screen, &x).await;
}

#[tokio::test]
async fn vnc_and_x11_sources_agree() {
    let Some(server) = Xvnc::start(
        "vnc_and_x11_sources_agree",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let x = server.x();
    paint_known_picture(&x);
    let expected = expected_picture();
    let vnc = start(&server.vnc_spec()).await;
    let x11 = start(&format!("x11:{}", server.display)).await;
    let from_vnc = wait_for(&mut vnc.viewer(), "VNC picture", |u| {
        same_outside_cursor(&u.fb, &expected)
    })
    .await;
    let from_x11 = wait_for(&mut x11.viewer(), "X11 picture", |u| {
        same_outside_cursor(&u.fb, &expected)
    })
    .await;
    assert!(same_outside_cursor(&from_vnc.fb, &from_x11.fb));
}

#[tokio::test]
async fn vnc_source_input_reaches_the_x_server() {
    let Some(server) = Xvnc::start(
        "vnc_source_input_reaches_the_x_server",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let screen = start(&server.vnc_spec()).await;
    check_input_reaches_x(&server, &screen).await;
}

#[tokio::test]
async fn x11_source_input_reaches_the_x_server() {
    let Some(server) = Xvnc::start(
        "x11_source_input_reaches_the_x_server",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let screen = start(&format!("x11:{}", server.display)).await;
    check_input_reaches_x(&server, &screen).await;
}

#[tokio::test]
async fn vnc_password_auth() {
    const TEST: &str = "vnc_password_auth";
    if !peers::available("vncpasswd", TEST) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let passwd = dir.path().join("passwd");
    let made = Command::new("vncpasswd")
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"plum7tea\n")?;
            child.wait_with_output()
        })
        .expect("vncpasswd");
    std::fs::write(&passwd, made.stdout).expect("write the password file");
    let passwd_arg = passwd.display().to_string();
    let Some(server) = Xvnc::start(
        TEST,
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "VncAuth", "-rfbauth", &passwd_arg],
    ) else {
        return;
    };
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "plum7tea\n").expect("write");
    std::fs::write(&bad, "wrong-pw\n").expect("write");
    let with =
        |file: &std::path::Path| format!("{}?password-file={}", server.vnc_spec(), file.display());

    let screen = start(&with(&good)).await;
    assert_eq!(screen.size().width, WIDTH);

    let refused = screen::start(&with(&bad).parse().expect("spec"))
        .await
        .err();
    assert!(
        matches!(refused, Some(ScreenError::VncAuth { .. })),
        "{refused:?}"
    );

    let unset = format!(
        "{}?password-env=TETHER_TEST_NO_SUCH_PASSWORD",
        server.vnc_spec()
    );
    let needed = screen::start(&unset.parse().expect("spec")).await.err();
    assert!(
        matches!(needed, Some(ScreenError::VncPasswordNeeded { .. })),
        "{needed:?}"
    );
}

#[tokio::test]
async fn vnc_source_reports_an_unreachable_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe")
        .port();
    let spec: ScreenSource = format!("vnc://127.0.0.1:{port}").parse().expect("spec");
    let error = screen::start(&spec).await.err();
    assert!(
        matches!(error, Some(ScreenError::VncConnect { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_vnc_source_ends_when_the_server_goes() {
    let Some(server) = Xvnc::start(
        "the_vnc_source_ends_when_the_server_goes",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let screen = start(&server.vnc_spec()).await;
    let mut viewer = screen.viewer();
    viewer.next_update().await.expect("first picture");
    drop(server);
    let end = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = viewer.next_update().await {
                return e;
            }
        }
    })
    .await
    .expect("the source notices");
    assert!(matches!(end, ScreenError::Ended(_)), "{end:?}");
    assert!(screen.ended().is_some());
}

#[tokio::test]
async fn the_x11_source_ends_when_the_display_goes() {
    let Some(server) = Xvnc::start(
        "the_x11_source_ends_when_the_display_goes",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let screen = start(&format!("x11:{}", server.display)).await;
    let mut viewer = screen.viewer();
    viewer.next_update().await.expect("first picture");
    // Something must be drawn for the capture thread to talk to the server again.
    server
        .x()
        .window(0, 0, 10, 10, 0xffffff, EventMask::NO_EVENT);
    drop(server);
    let end = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(e) = viewer.next_update().await {
                return e;
            }
        }
    })
    .await
    .expect("the source notices");
    assert!(
        matches!(end, ScreenError::Ended(ref m) if m.contains("X display")),
        "{end:?}"
    );
}

#[tokio::test]
async fn x11_source_reports_a_missing_display() {
    let spec: ScreenSource = "x11::4093".parse().expect("spec");
    let error = screen::start(&spec).await.err();
    assert!(
        matches!(error, Some(ScreenError::X11Connect { .. })),
        "{error:?}"
    );
}

/// On a local display the X11 source reads pixels through MIT-SHM (a segment the server makes,
/// read back with `pread`), and they are exactly what `GetImage` reads, whole screen or part.
#[test]
fn x11_pixels_come_through_shared_memory_and_match_get_image() {
    use tether::agent::screen::grab::{Grabber, Transport};
    let Some(server) = Xvnc::start(
        "x11_pixels_come_through_shared_memory_and_match_get_image",
        (WIDTH, HEIGHT),
        &["-SecurityTypes", "None"],
    ) else {
        return;
    };
    let x = server.x();
    paint_known_picture(&x);
    x.conn.sync().expect("sync");

    let mut shm = Grabber::connect(Some(&server.display), true).expect("connect");
    assert_eq!(shm.transport(), Transport::Shm, "Xvnc offers MIT-SHM 1.2");
    let mut plain = Grabber::connect(Some(&server.display), false).expect("connect");
    assert_eq!(plain.transport(), Transport::GetImage);

    let mut by_shm = Framebuffer::new(WIDTH, HEIGHT);
    let mut by_get = Framebuffer::new(WIDTH, HEIGHT);
    let all = by_shm.bounds();
    shm.fetch(&mut by_shm, all).expect("shm fetch");
    plain.fetch(&mut by_get, all).expect("GetImage fetch");
    assert!(same_outside_cursor(&by_shm, &expected_picture()));
    assert!(by_shm == by_get, "both transports read the same pixels");

    // A part of the screen lands in its place and nowhere else.
    let part = Rect::new(40, 50, 230, 130);
    let mut partial = Framebuffer::new(WIDTH, HEIGHT);
    shm.fetch(&mut partial, part).expect("shm fetch of a part");
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let inside = x >= part.x && x < part.right() && y >= part.y && y < part.bottom();
            let want = if inside {
                by_get.pixel(x, y)
            } else {
                [0, 0, 0, 255]
            };
            assert_eq!(partial.pixel(x, y), want, "pixel {x},{y}");
        }
    }
    assert_eq!(shm.transport(), Transport::Shm, "still on shared memory");
}
