use std::time::Duration;

use super::synthetic::{SyntheticDesktop, glyph};
use super::*;

const WAIT: Duration = Duration::from_secs(5);

fn small_screen() -> (Publisher, Screen, mpsc::Receiver<InputEvent>) {
    let (publisher, frames) = Publisher::new(Framebuffer::new(64, 48));
    let (tx, rx) = mpsc::channel(4);
    let screen = Screen::assemble(frames, tx, publisher.ended(), None);
    (publisher, screen, rx)
}

#[test]
fn first_update_is_the_whole_picture_then_only_damage() {
    let (mut publisher, screen, _input) = small_screen();
    let mut viewer = screen.viewer();
    let first = viewer.try_update().expect("first picture");
    assert_eq!(
        (first.seq, first.damage.clone()),
        (0, vec![Rect::new(0, 0, 64, 48)])
    );
    assert!(viewer.try_update().is_none(), "nothing new yet");

    let mut work = Framebuffer::new(64, 48);
    work.fill(Rect::new(10, 10, 4, 4), [255, 0, 0, 255]);
    publisher.publish(&work, &[Rect::new(10, 10, 4, 4)]);
    let update = viewer.try_update().expect("second picture");
    assert_eq!(update.damage, vec![Rect::new(10, 10, 4, 4)]);
    assert_eq!(*update.fb, work);
    assert!(!update.resized);
}

#[test]
fn a_slow_viewer_skips_frames_but_gets_all_their_damage() {
    let (mut publisher, screen, _input) = small_screen();
    let mut slow = screen.viewer();
    let mut fast = screen.viewer();
    slow.try_update();
    fast.try_update();
    let mut work = Framebuffer::new(64, 48);
    for i in 0..5 {
        let r = Rect::new(i * 12, 0, 2, 2);
        work.fill(r, [0, 255, 0, 255]);
        publisher.publish(&work, &[r]);
        assert_eq!(fast.try_update().map(|u| u.damage), Some(vec![r]));
    }
    let update = slow.try_update().expect("latest picture");
    assert_eq!(update.seq, 5);
    assert_eq!(*update.fb, work, "the latest picture, not an old one");
    assert!(covers_changes(
        &Framebuffer::new(64, 48),
        &work,
        &update.damage
    ));
    assert!(slow.try_update().is_none());
}

#[test]
fn viewers_too_far_behind_or_across_a_resize_get_everything() {
    let (mut publisher, screen, _input) = small_screen();
    let mut viewer = screen.viewer();
    viewer.try_update();
    let mut work = Framebuffer::new(64, 48);
    for i in 0..DAMAGE_HISTORY as u32 + 2 {
        work.set_pixel(i % 64, 0, [i as u8, 1, 1, 255]);
        publisher.publish(&work, &[Rect::new(i % 64, 0, 1, 1)]);
    }
    let update = viewer.try_update().expect("latest");
    assert_eq!(update.damage, vec![work.bounds()]);

    let bigger = Framebuffer::new(80, 60);
    publisher.publish(&bigger, &[]);
    let update = viewer.try_update().expect("resized");
    assert!(update.resized);
    assert_eq!(update.damage, vec![Rect::new(0, 0, 80, 60)]);
    assert_eq!(
        screen.size(),
        ScreenSize {
            width: 80,
            height: 60
        }
    );
}

#[test]
fn publishing_reuses_the_previous_buffer_without_losing_pixels() {
    let (mut publisher, screen, _input) = small_screen();
    let mut viewer = screen.viewer();
    let mut work = Framebuffer::new(64, 48);
    // Alternate damage in different places: each published picture must equal `work` even
    // though the publisher recycles buffers and copies only damaged rectangles.
    for i in 0..20u32 {
        let r = Rect::new((i * 7) % 60, (i * 5) % 44, 4, 4);
        work.fill(r, [i as u8 * 10, 255 - i as u8, 7, 255]);
        publisher.publish(&work, &[r]);
        let update = viewer.try_update().expect("update");
        assert_eq!(*update.fb, work, "frame {i}");
    }
}

#[tokio::test]
async fn next_update_waits_for_a_frame_and_reports_the_end() {
    let (mut publisher, screen, _input) = small_screen();
    let mut viewer = screen.viewer();
    viewer.next_update().await.expect("first");
    let waiting = tokio::spawn(async move {
        let update = viewer.next_update().await;
        (update, viewer)
    });
    let work = Framebuffer::new(64, 48);
    let mut changed = work.clone();
    changed.set_pixel(1, 1, [9, 9, 9, 255]);
    publisher.publish(&changed, &[Rect::new(1, 1, 1, 1)]);
    let (update, mut viewer) = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("woken by the new frame")
        .expect("task");
    assert_eq!(update.expect("update").seq, 1);
    publisher.finish("VNC server went away");
    let end = tokio::time::timeout(WAIT, viewer.next_update())
        .await
        .expect("ends");
    assert_eq!(
        end.err(),
        Some(ScreenError::Ended("VNC server went away".into()))
    );
    assert_eq!(screen.ended().as_deref(), Some("VNC server went away"));
}

#[test]
fn input_is_refused_when_the_queue_is_full_or_the_source_gone() {
    let (publisher, screen, input) = small_screen();
    let key = InputEvent::Key {
        keysym: 0x61,
        down: true,
    };
    for _ in 0..4 {
        screen.input(key.clone()).expect("queued");
    }
    assert_eq!(screen.input(key.clone()), Err(ScreenError::InputBacklog));
    publisher.finish("gone");
    drop(input);
    assert_eq!(screen.input(key), Err(ScreenError::Ended("gone".into())));
}

#[test]
fn buttons_follow_the_rfb_convention() {
    let changes: Vec<_> = button_changes(0b0000_0001, 0b0001_0100).collect();
    assert_eq!(changes, vec![(1, false), (3, true), (5, true)]);
}

// --- the synthetic desktop ---

#[test]
fn synthetic_frames_depend_only_on_seed_and_frame_number() {
    let mut a = SyntheticDesktop::new(640, 400, 7);
    let mut b = SyntheticDesktop::new(640, 400, 7);
    for _ in 0..45 {
        a.advance();
        b.advance();
    }
    assert_eq!(a.framebuffer(), b.framebuffer());
    // Stepping frame by frame (redrawing only damage) lands on the same picture as drawing
    // frame 45 from scratch.
    assert_eq!(
        a.framebuffer(),
        SyntheticDesktop::at_frame(640, 400, 7, 45).framebuffer()
    );
    let other = SyntheticDesktop::at_frame(640, 400, 8, 45);
    assert_ne!(
        a.framebuffer(),
        other.framebuffer(),
        "another seed, another desktop"
    );
}

#[test]
fn synthetic_damage_covers_every_changed_pixel_and_stays_small() {
    let mut desk = SyntheticDesktop::new(640, 400, 3);
    let total = 640 * 400;
    let mut clock_ticks = 0;
    for _ in 0..70 {
        let before = desk.framebuffer().clone();
        let damage = desk.advance();
        assert!(
            covers_changes(&before, desk.framebuffer(), &damage),
            "frame {}",
            desk.frame_index()
        );
        let area: u32 = damage.iter().map(|r| r.width * r.height).sum();
        assert!(
            area * 20 < total,
            "damage {area} px of {total} at frame {}",
            desk.frame_index()
        );
        if desk.frame_index().is_multiple_of(synthetic::FPS) {
            clock_ticks += 1;
        }
    }
    assert_eq!(clock_ticks, 2);
    // The clock changed in those two seconds.
    let clock_area = Rect::new(640 - 8 * 16 - 12, 400 - 32, 8 * 16, 32);
    assert_ne!(
        SyntheticDesktop::at_frame(640, 400, 3, 0)
            .framebuffer()
            .crop(clock_area),
        desk.framebuffer().crop(clock_area)
    );
}

#[test]
fn synthetic_pointer_follows_input() {
    let mut desk = SyntheticDesktop::new(640, 400, 5);
    let before = desk.framebuffer().clone();
    let damage = desk.apply_input(&InputEvent::Pointer {
        x: 300,
        y: 200,
        buttons: 0,
    });
    assert!(covers_changes(&before, desk.framebuffer(), &damage));
    assert_eq!(desk.pointer(), (300, 200));
    // The arrow's outline at the hot spot, its white fill just inside.
    assert_eq!(desk.framebuffer().pixel(300, 200), [0, 0, 0, 255]);
    assert_eq!(desk.framebuffer().pixel(301, 205), [255, 255, 255, 255]);
    // Driven by the technician, it no longer wanders.
    desk.advance();
    assert_eq!(desk.pointer(), (300, 200));
}

#[test]
fn synthetic_keys_type_into_the_focused_window_and_clicks_move_the_focus() {
    let mut desk = SyntheticDesktop::new(800, 600, 11);
    let key = |desk: &mut SyntheticDesktop, c: char| {
        let before = desk.framebuffer().clone();
        let mut damage = desk.apply_input(&InputEvent::Key {
            keysym: c as u32,
            down: true,
        });
        damage.extend(desk.apply_input(&InputEvent::Key {
            keysym: c as u32,
            down: false,
        }));
        assert!(covers_changes(&before, desk.framebuffer(), &damage));
    };
    key(&mut desk, 'H');
    key(&mut desk, 'i');
    assert_eq!(desk.typed(0).as_deref(), Some("Hi"));
    // The glyphs are on screen, in the Notes window's text area.
    let (x, y) = desk.text_origin(0).expect("window 0");
    for (i, c) in "Hi".chars().enumerate() {
        let ox = x + i as u32 * 16;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                let px = desk.framebuffer().pixel(ox + col * 2, y + row as u32 * 2);
                let inked = px != [246, 246, 242, 255];
                assert_eq!(inked, bits & (1 << col) != 0, "{c:?} row {row} col {col}");
            }
        }
    }
    // Click the topmost window at a point only it covers: it takes the typing.
    let target = (0..3)
        .rev()
        .find_map(|i| {
            let r = desk.window_rect(i)?;
            let p = (r.x + r.width / 2, r.y + 4);
            let covered_by_later = (i + 1..3).any(|j| {
                desk.window_rect(j).is_some_and(|o| {
                    p.0 >= o.x && p.0 < o.right() && p.1 >= o.y && p.1 < o.bottom()
                })
            });
            (!covered_by_later && i != 0).then_some((i, p))
        })
        .expect("a window to click");
    let (i, (px, py)) = target;
    for buttons in [1, 0] {
        desk.apply_input(&InputEvent::Pointer {
            x: px,
            y: py,
            buttons,
        });
    }
    assert_eq!(desk.focused(), i);
    key(&mut desk, 'x');
    assert_eq!(desk.typed(i).as_deref(), Some("x"));
    assert_eq!(desk.typed(0).as_deref(), Some("Hi"));
}

#[test]
fn synthetic_windows_move_when_dragged_by_the_title_bar() {
    let mut desk = SyntheticDesktop::new(800, 600, 11);
    let start = desk.window_rect(2).expect("window 2");
    // Window 2 is drawn last, so its title bar is never covered.
    let grip = (start.x + 30, start.y + 5);
    let pointer = |desk: &mut SyntheticDesktop, (x, y): (u32, u32), buttons: u8| {
        let before = desk.framebuffer().clone();
        let damage = desk.apply_input(&InputEvent::Pointer { x, y, buttons });
        assert!(covers_changes(&before, desk.framebuffer(), &damage));
    };
    pointer(&mut desk, grip, 0);
    pointer(&mut desk, grip, 1);
    let to = (grip.0.saturating_sub(25), grip.1 + 40);
    pointer(&mut desk, to, 1);
    let moved = desk.window_rect(2).expect("window 2");
    assert_eq!((moved.x, moved.y), (start.x - 25, start.y + 40));
    assert_eq!((moved.width, moved.height), (start.width, start.height));
    // Released, the pointer moves alone.
    pointer(&mut desk, to, 0);
    pointer(&mut desk, (to.0 + 50, to.1 + 50), 0);
    assert_eq!(desk.window_rect(2), Some(moved));
    // A press in a window's body does not pick it up; and a window stays on the screen.
    let body = (moved.x + 20, moved.y + 60);
    pointer(&mut desk, body, 1);
    pointer(&mut desk, (body.0 + 30, body.1), 1);
    pointer(&mut desk, (body.0 + 30, body.1), 0);
    assert_eq!(desk.window_rect(2), Some(moved));
    let grip = (moved.x + 30, moved.y + 5);
    pointer(&mut desk, grip, 1);
    pointer(&mut desk, (799, 599), 1);
    let r = desk.window_rect(2).expect("window 2");
    assert!(r.right() <= 800 && r.bottom() <= 600 - 32, "{r:?}");
}

#[test]
fn synthetic_survives_tiny_screens() {
    let mut desk = SyntheticDesktop::new(16, 16, 0);
    for _ in 0..40 {
        desk.advance();
    }
    desk.apply_input(&InputEvent::Pointer {
        x: 100,
        y: 100,
        buttons: 1,
    });
    desk.apply_input(&InputEvent::Key {
        keysym: 0x41,
        down: true,
    });
}

#[tokio::test]
async fn synthetic_source_runs_and_reacts_to_input() {
    let screen = start(&"synthetic:320x240@4".parse().expect("spec"))
        .await
        .expect("start");
    assert_eq!(
        screen.size(),
        ScreenSize {
            width: 320,
            height: 240
        }
    );
    let mut viewer = screen.viewer();
    let first = viewer.next_update().await.expect("first");
    assert_eq!(first.damage, vec![Rect::new(0, 0, 320, 240)]);
    let next = tokio::time::timeout(WAIT, viewer.next_update())
        .await
        .expect("animates")
        .expect("update");
    assert!(next.seq > first.seq && !next.damage.is_empty());
    screen
        .input(InputEvent::Pointer {
            x: 100,
            y: 50,
            buttons: 0,
        })
        .expect("input");
    let moved = tokio::time::timeout(WAIT, async {
        loop {
            let update = viewer.next_update().await.expect("update");
            if update.fb.pixel(101, 55) == [255, 255, 255, 255]
                && update.fb.pixel(100, 50) == [0, 0, 0, 255]
            {
                return update;
            }
        }
    })
    .await
    .expect("the pointer is drawn where the technician put it");
    assert!(
        moved
            .damage
            .iter()
            .any(|r| r.x <= 100 && r.right() > 100 && r.y <= 50 && r.bottom() > 50)
    );
}

#[tokio::test]
async fn sources_without_pixels_do_not_start() {
    assert_eq!(
        start(&ScreenSource::Headless).await.err(),
        Some(ScreenError::NoScreen)
    );
    assert_eq!(
        start(&ScreenSource::Terminal).await.err(),
        Some(ScreenError::NotPixels)
    );
}

#[test]
fn screens_and_viewers_cross_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Screen>();
    send_sync::<Frame>();
    send::<ScreenViewer>();
    send::<Update>();
}

#[test]
fn updates_carry_the_capture_time_of_their_frame() {
    let (mut publisher, screen, _input) = small_screen();
    let mut viewer = screen.viewer();
    let before = now_micros();
    let mut work = Framebuffer::new(64, 48);
    work.fill(Rect::new(0, 0, 2, 2), [9, 9, 9, 255]);
    publisher.publish(&work, &[Rect::new(0, 0, 2, 2)]);
    let update = viewer.try_update().expect("an update");
    assert!(
        update.captured_at >= before && update.captured_at <= now_micros(),
        "{} not within the publish",
        update.captured_at
    );
    assert_eq!(update.captured_at, screen.latest().captured_at);
}

#[tokio::test]
async fn the_reported_size_comes_from_the_source() {
    let synthetic: ScreenSource = "synthetic:640x400@3".parse().expect("spec");
    assert_eq!(
        probe_size(&synthetic).await,
        Some(ScreenSize {
            width: 640,
            height: 400
        })
    );
    assert_eq!(probe_size(&ScreenSource::Terminal).await, None);
    assert_eq!(probe_size(&ScreenSource::Headless).await, None);
    // A VNC server that is not there: no size (and the agent still connects, reporting none).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe")
        .port();
    let gone: ScreenSource = format!("vnc://127.0.0.1:{port}").parse().expect("spec");
    assert_eq!(probe_size(&gone).await, None);
}
