//! Several consoles on one desktop, end to end over the hub: each technician's view is scaled to
//! their own size and paced by their own acknowledgements (a viewer who stops acknowledging
//! holds up nobody else), and input from one reaches the desktop both see.

mod common;

use std::time::Duration;

use common::viewer::{DesktopRig, frame_within, send};
use tether::frame::Rect;
use tether::protocol::stream::StreamFrame;
use tether::protocol::{ConsoleRequest, InputEvent};

fn size_and_area(frame: &StreamFrame) -> ((u32, u32), u64) {
    let StreamFrame::Pixels {
        width,
        height,
        rects,
        ..
    } = frame
    else {
        panic!("not pixels: {frame:?}")
    };
    let area = rects
        .iter()
        .map(|r| u64::from(r.rect.width) * u64::from(r.rect.height))
        .sum();
    ((*width, *height), area)
}

#[tokio::test]
async fn two_consoles_watch_one_desktop_each_at_their_own_size_and_pace() {
    let rig = DesktopRig::start("synthetic:640x400@7", "desk-1", &["ann", "bob"]).await;
    let wait = Duration::from_secs(10);
    let (mut ann, _, ann_stream) = rig.connect_and_watch("ann", (320, 240)).await;
    let (mut bob, _, bob_stream) = rig.connect_and_watch("bob", (640, 400)).await;
    let first = frame_within(&mut ann, wait)
        .await
        .expect("ann's first frame");
    assert_eq!(size_and_area(&first), ((320, 200), 320 * 200));
    let mut bob_seq = 0;
    let mut bob_frames = 0;
    let mut id = 10;
    // Ann does not acknowledge; Bob keeps receiving at his own size.
    while bob_frames < 10 {
        let f = frame_within(&mut bob, wait)
            .await
            .expect("bob's frames go on");
        let ((w, h), _) = size_and_area(&f);
        assert_eq!((w, h), (640, 400));
        bob_seq = f.seq();
        bob_frames += 1;
        id += 1;
        send(
            &mut bob,
            id,
            ConsoleRequest::Ack {
                stream: bob_stream,
                seq: bob_seq,
            },
        )
        .await;
    }
    assert!(bob_seq >= 10);
    // Ann's frames stop once her window of unacknowledged frames is full (however small they
    // are, at most 32), and she gets no other until she acknowledges them.
    let mut ann_last = first.seq();
    let mut ann_frames = 1;
    while let Some(f) = frame_within(&mut ann, Duration::from_millis(300)).await {
        assert_eq!(size_and_area(&f).0, (320, 200));
        ann_last = f.seq();
        ann_frames += 1;
        assert!(ann_frames <= 32, "ann's unacknowledged frames are capped");
    }
    // Her acknowledgement brings the next frame: everything that changed meanwhile.
    id += 1;
    send(
        &mut ann,
        id,
        ConsoleRequest::Ack {
            stream: ann_stream,
            seq: ann_last,
        },
    )
    .await;
    let caught_up = frame_within(&mut ann, wait)
        .await
        .expect("ann's next frame");
    assert_eq!(size_and_area(&caught_up).0, (320, 200));
    id += 1;
    send(
        &mut ann,
        id,
        ConsoleRequest::Ack {
            stream: ann_stream,
            seq: caught_up.seq(),
        },
    )
    .await;

    // Bob moves the pointer to the bottom-right; Ann sees it redrawn there, at her scale.
    let to = vec![InputEvent::Pointer {
        x: 600,
        y: 360,
        buttons: 0,
    }];
    id += 1;
    send(
        &mut bob,
        id,
        ConsoleRequest::Input {
            stream: bob_stream,
            events: to,
        },
    )
    .await;
    let near = Rect::new(290, 170, 30, 30);
    let mut seen = false;
    for _ in 0..60 {
        let f = frame_within(&mut ann, wait)
            .await
            .expect("ann's frames go on");
        id += 1;
        send(
            &mut ann,
            id,
            ConsoleRequest::Ack {
                stream: ann_stream,
                seq: f.seq(),
            },
        )
        .await;
        if let StreamFrame::Pixels { rects, .. } = &f
            && rects.iter().any(|r| r.rect.intersect(&near).width > 0)
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "bob's pointer move reached the desktop ann watches");
}
