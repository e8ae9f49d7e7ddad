//! Frames per second through a 10 Mbit/s link with desktop activity: the latency bench's rig
//! (hub, agent with the synthetic 1920x1080 desktop at 30 frames a second, a technician
//! watching as the console does) with a throttling TCP proxy between technician and hub: a
//! token bucket of 10 Mbit/s each way (16 KiB burst). Activity: the desktop's own animation
//! (a wandering pointer, a clock, a progress bar, a blinking caret) plus, in turn, the
//! technician typing ten keys a second into a window, and the technician dragging a window
//! (about 700x450 pixels) around by its title bar, 30 moves a second: a large area repainted
//! every frame, as when moving windows or scrolling. Reports frames drawn a second, the bytes a second the
//! link carried towards the console (TLS included), and capture-to-draw latency, for a text
//! console (half blocks, 200x60 cells) and a sixel console (1920x1080 pixels).
//!
//! `cargo bench --bench throughput` (`TETHER_BENCH_SECS`, default 15, per mode;
//! `TETHER_BENCH_MBIT`, default 10).

use std::time::{Duration, Instant};

use tether::agent::screen::synthetic::SyntheticDesktop;
use tether::bench::percentile;
use tether::bench::rig::{Drawing, LinkShape, Rig, Throttle, Watcher, login};
use tether::protocol::InputEvent;
use tether::protocol::stream::now_micros;
use tether::render::CellSize;

/// Time to let the first (whole) picture through before measuring.
const WARM_UP: Duration = Duration::from_secs(3);

/// What the technician does while the frames are counted.
#[derive(Clone, Copy, Debug)]
enum Activity {
    /// Ten keys a second into the focused window.
    Typing,
    /// A window dragged around by its title bar, 30 moves a second.
    Dragging,
}

/// A value bouncing between 0 and `span` as `v` grows.
fn bounce(v: u32, span: u32) -> u32 {
    let m = v % (2 * span);
    if m < span { m } else { 2 * span - m }
}

/// Where the dragging pointer is at move `step`, starting from `grip`.
fn drag_point(grip: (u32, u32), step: u32) -> (u32, u32) {
    (
        (grip.0 + bounce(step * 11, 600)).saturating_sub(300),
        (grip.1 + bounce(step * 7, 240)).saturating_sub(120),
    )
}

fn main() {
    let env = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(default)
    };
    let secs = env("TETHER_BENCH_SECS", 15.0);
    let mbit = env("TETHER_BENCH_MBIT", 10.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let rig = Rig::start("synthetic:1920x1080@7").await.expect("rig");
        let hub_addr = rig
            .url
            .trim_start_matches("wss://")
            .parse()
            .expect("hub address");
        let throttle = Throttle::start(
            hub_addr,
            LinkShape {
                bytes_per_second: mbit * 1_000_000.0 / 8.0,
                delay: Duration::ZERO,
            },
        )
        .await
        .expect("proxy");
        let url = format!("wss://{}", throttle.addr);
        // The dragged window: the synthetic desktop is deterministic, so the bench knows where
        // the agent's window 2 ("Inbox", drawn last, never covered) is.
        let window = SyntheticDesktop::new(1920, 1080, 7)
            .window_rect(2)
            .expect("window 2");
        let grip = (window.x + 40, window.y + 6);
        let runs = [Activity::Typing, Activity::Dragging].into_iter().flat_map(|activity| {
            [
                ("half blocks, 200x60 cells", Drawing::text(200, 60)),
                (
                    "sixel, 192x54 cells of 10x20 (1920x1080 px)",
                    Drawing::sixel(192, 54, CellSize::new(10, 20)),
                ),
            ]
            .map(|(name, drawing)| (activity, name, drawing))
        });
        for (activity, name, mut drawing) in runs {
            let tech = login(&url, rig.pin.clone()).await.expect("login");
            let (width, height) = drawing.pixels();
            let mut watcher = Watcher::open(tech, &rig.workstation, width, height)
                .await
                .expect("watch");
            let mut out = Vec::new();
            let start = Instant::now();
            // The first picture is the whole screen, as after opening a maximised window:
            // timed until its rectangles cover the picture.
            let bytes_at_watch = throttle.sent_to_client();
            let mut covered = 0u64;
            let mut whole: Option<(Duration, u64)> = None;
            let measure_from = start + WARM_UP;
            let deadline = measure_from + Duration::from_secs_f64(secs);
            let mut frames = 0u64;
            let mut bytes_at_start = None;
            let mut samples = Vec::new();
            let mut next_key = start;
            let text = b"the quick brown fox jumps over the lazy dog ";
            let mut typed = 0usize;
            let mut step = 0u32;
            let (gx, gy) = grip;
            if let Activity::Dragging = activity {
                for buttons in [0, 1] {
                    watcher.input(vec![InputEvent::Pointer { x: gx, y: gy, buttons }]).expect("input");
                }
            }
            loop {
                // Type ten keys a second, or move the window 30 times a second, between frames.
                let now = Instant::now();
                if now >= next_key {
                    match activity {
                        Activity::Typing => {
                            let keysym = u32::from(text[typed % text.len()]);
                            typed += 1;
                            watcher.input(vec![
                                InputEvent::Key { keysym, down: true },
                                InputEvent::Key {
                                    keysym,
                                    down: false,
                                },
                            ]).expect("input");
                            next_key = now + Duration::from_millis(100);
                        }
                        Activity::Dragging => {
                            step += 1;
                            let (x, y) = drag_point(grip, step);
                            watcher.input(vec![InputEvent::Pointer { x, y, buttons: 1 }]).expect("input");
                            next_key = now + Duration::from_millis(33);
                        }
                    }
                }
                let Some(frame) = watcher.next(deadline.min(next_key)).await.expect("stream") else {
                    if Instant::now() >= deadline {
                        break;
                    }
                    continue;
                };
                out.clear();
                drawing.draw(&frame, &mut out).expect("draw");
                if whole.is_none()
                    && let tether::protocol::stream::StreamFrame::Pixels {
                        width, height, rects, ..
                    } = &frame
                {
                    covered += rects
                        .iter()
                        .map(|r| u64::from(r.rect.width) * u64::from(r.rect.height))
                        .sum::<u64>();
                    if covered >= u64::from(*width) * u64::from(*height) {
                        whole = Some((start.elapsed(), throttle.sent_to_client() - bytes_at_watch));
                    }
                }
                let age = frame.capture_age(now_micros()).expect("capture time");
                watcher.ack(frame.seq()).expect("ack");
                if Instant::now() >= measure_from {
                    bytes_at_start.get_or_insert(throttle.sent_to_client());
                    frames += 1;
                    samples.push(age);
                }
            }
            if let Activity::Dragging = activity {
                // Put the window back where it was, for the next run.
                for buttons in [1, 0] {
                    watcher.input(vec![InputEvent::Pointer { x: gx, y: gy, buttons }]).expect("input");
                }
            }
            let elapsed = secs;
            let bytes = throttle.sent_to_client() - bytes_at_start.unwrap_or(0);
            samples.sort();
            println!(
                "throughput {activity:?}, {name} through {mbit} Mbit/s: {:.1} fps ({frames} frames in {elapsed:.0} s), {:.0} KB/s on the link ({:.0}% of it), {:.1} KB a frame, latency p50 {} p99 {}",
                frames as f64 / elapsed,
                bytes as f64 / elapsed / 1024.0,
                bytes as f64 / elapsed * 8.0 / (mbit * 1_000_000.0) * 100.0,
                bytes as f64 / frames.max(1) as f64 / 1024.0,
                ms(percentile(&samples, 50.0)),
                ms(percentile(&samples, 99.0)),
            );
            if let Some((took, bytes)) = whole {
                println!(
                    "throughput {activity:?}, {name}: the first, whole picture took {} through the link ({:.0} KB)",
                    ms(took),
                    bytes as f64 / 1024.0
                );
            }
        }
    });
}

/// A duration in milliseconds, as text.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", tether::bench::ms(d))
}
