//! Desktop sessions end to end over the hub: a real agent with the synthetic desktop streams
//! changed rectangles, scaled to the viewer's size, several frames in flight; input reaches the
//! desktop; revoking access ends the stream within a second.

mod common;

use std::time::Duration;

use common::viewer::{DesktopRig, Next, next};
use tether::frame::{Framebuffer, Rect};
use tether::protocol::stream::StreamFrame;
use tether::protocol::{AccessEvent, ConsoleRequest, HubEvent, InputEvent, Request};
use tether::wire::{self, ClientStream};

/// Apply a pixels frame to the viewer's copy of the screen; returns the damaged area.
fn apply(fb: &mut Framebuffer, frame: &StreamFrame) -> u64 {
    let StreamFrame::Pixels {
        width,
        height,
        rects,
        ..
    } = frame
    else {
        panic!("not pixels: {frame:?}")
    };
    assert_eq!(
        (*width, *height),
        (fb.width(), fb.height()),
        "frames come at the viewer's size"
    );
    let mut area = 0;
    for r in rects {
        let Rect { x, y, width: w, .. } = r.rect;
        for (i, px) in r.rgb.chunks_exact(3).enumerate() {
            let (dx, dy) = (i as u32 % w, i as u32 / w);
            fb.set_pixel(x + dx, y + dy, [px[0], px[1], px[2], 255]);
        }
        area += u64::from(r.rect.width) * u64::from(r.rect.height);
    }
    area
}

#[tokio::test]
async fn a_desktop_streams_damage_at_the_viewers_size_and_takes_input() {
    let rig = DesktopRig::start("synthetic:640x400@7", "desk-1", &["ann"]).await;
    let (hub, agent) = (&rig.hub, &rig.agent);
    // The viewer draws in 320 x 240: the 640 x 400 desktop arrives letterboxed to 320 x 200.
    let (mut ann, session, stream) = rig.connect_and_watch("ann", (320, 240)).await;

    let mut fb = Framebuffer::new(320, 200);
    let mut id = 10;
    let mut ack = async |ws: &mut ClientStream, seq: u64| {
        id += 1;
        wire::send(
            ws,
            &Request {
                id,
                body: ConsoleRequest::Ack { stream, seq },
            },
        )
        .await
        .expect("ack");
    };
    // The first picture covers the whole view.
    let Some(Next::Frame(first)) = next(&mut ann, Duration::from_secs(10)).await else {
        panic!("no first frame")
    };
    assert_eq!(apply(&mut fb, &first), 320 * 200);
    // Frames do not wait for the ack of the one before: the agent keeps a window of bytes in
    // flight (the whole first picture is well under it), so the next changes follow at once.
    let Some(Next::Frame(second)) = next(&mut ann, Duration::from_secs(10)).await else {
        panic!("no second frame before the first was acknowledged")
    };
    assert!(second.seq() > first.seq());
    apply(&mut fb, &second);
    ack(&mut ann, second.seq()).await;
    // Then only what changes: the clock and the pointer, a small part of the picture.
    let mut small = 0;
    for _ in 0..5 {
        let Some(Next::Frame(f)) = next(&mut ann, Duration::from_secs(10)).await else {
            panic!("no frame")
        };
        if apply(&mut fb, &f) < 320 * 200 / 4 {
            small += 1;
        }
        ack(&mut ann, f.seq()).await;
    }
    assert!(
        small >= 4,
        "updates carry damage, not whole pictures ({small} of 5 small)"
    );
    let colours: std::collections::HashSet<[u8; 4]> = (0..200)
        .flat_map(|y| (0..320).map(move |x| (x, y)))
        .map(|(x, y)| fb.pixel(x, y))
        .collect();
    assert!(
        colours.len() > 20,
        "a desktop, not a blank: {} colours",
        colours.len()
    );

    // A click moves the desktop's pointer: the next frames redraw around where it went.
    let click = vec![
        InputEvent::Pointer {
            x: 600,
            y: 360,
            buttons: 1,
        },
        InputEvent::Pointer {
            x: 600,
            y: 360,
            buttons: 0,
        },
    ];
    wire::send(
        &mut ann,
        &Request {
            id: 50,
            body: ConsoleRequest::Input {
                stream,
                events: click,
            },
        },
    )
    .await
    .expect("send");
    let near = |f: &StreamFrame| match f {
        StreamFrame::Pixels { rects, .. } => rects
            .iter()
            .any(|r| r.rect.intersect(&Rect::new(290, 170, 30, 30)).width > 0),
        _ => false,
    };
    let mut moved = false;
    for _ in 0..30 {
        let Some(Next::Frame(f)) = next(&mut ann, Duration::from_secs(10)).await else {
            continue;
        };
        apply(&mut fb, &f);
        ack(&mut ann, f.seq()).await;
        if near(&f) {
            moved = true;
            break;
        }
    }
    assert!(moved, "the pointer was redrawn where the click sent it");

    // Revoking access on the agent ends the stream within a second, and says why.
    agent
        .shared
        .apply_access_event(AccessEvent::Revoke)
        .expect("revoke");
    let ended = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match next(&mut ann, Duration::from_secs(1)).await {
                Some(Next::Event(HubEvent::Session { session: s }))
                    if s.id == session.id && s.ended_at.is_some() =>
                {
                    return s.end_reason.unwrap_or_default();
                }
                Some(_) => {}
                None => panic!("nothing came"),
            }
        }
    })
    .await
    .expect("the session ended within a second");
    assert!(ended.contains("revoked"), "{ended}");
    assert_eq!(hub.hub.stream_count(), 0);
}

/// A screen that cannot be captured (an X display that does not exist) ends the viewer's
/// stream with the reason, instead of leaving the viewer waiting for a picture.
#[tokio::test]
async fn a_screen_that_cannot_start_ends_the_stream_with_the_reason() {
    let rig = DesktopRig::start("x11::4093", "desk-2", &["ann"]).await;
    let hub = &rig.hub;
    let (mut ann, session, stream) = rig.connect_and_watch("ann", (320, 240)).await;
    let reason = loop {
        match next(&mut ann, Duration::from_secs(10)).await {
            Some(Next::Event(HubEvent::StreamEnded { stream: s, reason })) => {
                assert_eq!(s, stream);
                break reason;
            }
            Some(Next::Event(HubEvent::Session { session: s })) if s.id == session.id => {
                assert!(s.ended_at.is_none(), "the session itself goes on: {s:?}");
            }
            Some(Next::Event(_)) => {}
            Some(Next::Frame(f)) => panic!("a picture from a screen that is not there: {f:?}"),
            None => panic!("the viewer never learnt why no picture comes"),
        }
    };
    assert!(
        reason.starts_with("the screen source cannot start") && reason.contains(":4093"),
        "{reason}"
    );
    assert_eq!(hub.hub.stream_count(), 0, "the hub closed the stream");
}

/// A real X display changes resolution while it is watched (RandR, as a user would with
/// `xrandr`): the agent reports the new size, every console of the team learns it, and the
/// viewer's frames follow it.
#[tokio::test]
async fn a_resolution_change_is_reported_and_the_frames_follow() {
    let test = "a_resolution_change_is_reported_and_the_frames_follow";
    if !common::peers::available("xrandr", test) {
        return;
    }
    let Some(server) = common::xvnc::Xvnc::start(test, (640, 480), &["-SecurityTypes", "None"])
    else {
        return;
    };
    let rig = DesktopRig::start(&format!("x11:{}", server.display), "desk-3", &["ann"]).await;
    let (_tech, mut events) = rig.hub.console("ann").await;
    // Frames at the viewer's size: 640x480 letterboxed into 320x320 is 320x240.
    let (mut ann, _, stream) = rig.connect_and_watch("ann", (320, 320)).await;
    let mut id = 10;
    let mut ack = async |ws: &mut ClientStream, seq: u64| {
        id += 1;
        let body = ConsoleRequest::Ack { stream, seq };
        wire::send(ws, &Request { id, body }).await.expect("ack");
    };
    let size_of = |f: &StreamFrame| match f {
        StreamFrame::Pixels { width, height, .. } => (*width, *height),
        other => panic!("not pixels: {other:?}"),
    };
    let first = loop {
        if let Some(Next::Frame(f)) = next(&mut ann, Duration::from_secs(10)).await {
            break f;
        }
    };
    assert_eq!(size_of(&first), (320, 240));
    ack(&mut ann, first.seq()).await;

    let status = std::process::Command::new("xrandr")
        .args(["-display", &server.display, "-s", "1024x768"])
        .status()
        .expect("run xrandr");
    assert!(status.success(), "xrandr -s 1024x768");
    let reported = common::wait_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, HubEvent::Workstation { workstation } if workstation.id == rig.workstation
            && workstation.screen.is_some_and(|s| (s.width, s.height) == (1024, 768)))
    })
    .await;
    assert!(matches!(reported, HubEvent::Workstation { .. }));
    // The viewer's frames follow: 1024x768 letterboxed into 320x320 is 320x240 again, but the
    // picture is sent whole (a resize) at the new proportions' scale.
    let mut followed = false;
    for _ in 0..100 {
        let Some(Next::Frame(f)) = next(&mut ann, Duration::from_secs(10)).await else {
            continue;
        };
        ack(&mut ann, f.seq()).await;
        if let StreamFrame::Pixels { rects, .. } = &f {
            let area: u32 = rects.iter().map(|r| r.rect.width * r.rect.height).sum();
            if area >= 320 * 240 {
                followed = true;
                break;
            }
        }
    }
    assert!(followed, "a whole new picture after the resize");
}
