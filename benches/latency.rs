//! Agent frame -> console draw latency on loopback: a hub, an agent with the animated synthetic
//! 1920x1080 desktop (30 frames a second) and a technician watching it as the console does,
//! in one process over real loopback TLS. For each frame: from the agent's capture time
//! (`captured_at` in the frame) to the frame applied to the console's framebuffer and drawn as
//! terminal bytes, in half blocks (a 200x60 console) and in sixel (the same console with 10x20
//! pixel cells: 192x54 cells, 1920x1080 pixels).
//!
//! `cargo bench --bench latency` (`TETHER_BENCH_SECS`, default 15, per mode).

use std::time::{Duration, Instant};

use tether::bench::percentile;
use tether::bench::rig::{Drawing, Rig, Watcher, login};
use tether::protocol::stream::now_micros;
use tether::render::CellSize;

fn main() {
    let secs: u64 = std::env::var("TETHER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let rig = Rig::start("synthetic:1920x1080@7").await.expect("rig");
        let modes = [
            ("half blocks, 200x60 cells", Drawing::text(200, 60)),
            (
                "sixel, 192x54 cells of 10x20 (1920x1080 px)",
                Drawing::sixel(192, 54, CellSize::new(10, 20)),
            ),
        ];
        for (name, mut drawing) in modes {
            let tech = login(&rig.url, rig.pin.clone()).await.expect("login");
            let (width, height) = drawing.pixels();
            let mut watcher = Watcher::open(tech, &rig.workstation, width, height)
                .await
                .expect("watch");
            let mut samples: Vec<Duration> = Vec::new();
            let mut first = None;
            let mut out = Vec::new();
            let mut terminal_bytes = 0u64;
            let start = Instant::now();
            let deadline = start + Duration::from_secs(secs);
            while let Some(frame) = watcher.next(deadline).await.expect("stream") {
                out.clear();
                drawing.draw(&frame, &mut out).expect("draw");
                terminal_bytes += out.len() as u64;
                let age = frame
                    .capture_age(now_micros())
                    .expect("frames carry their capture time");
                watcher.ack(frame.seq()).expect("ack");
                if first.is_none() {
                    // The whole picture, scaled and sent from scratch: reported apart.
                    first = Some(age);
                    continue;
                }
                samples.push(age);
            }
            let elapsed = start.elapsed().as_secs_f64();
            samples.sort();
            println!(
                "latency {name}: {} frames in {elapsed:.1} s ({:.1} fps), p50 {}, p99 {}, max {}; first picture {}; {:.0} KB/s to the terminal",
                samples.len(),
                samples.len() as f64 / elapsed,
                ms(percentile(&samples, 50.0)),
                ms(percentile(&samples, 99.0)),
                ms(samples.last().copied().unwrap_or_default()),
                ms(first.unwrap_or_default()),
                terminal_bytes as f64 / elapsed / 1024.0,
            );
        }
    });
}

/// A duration in milliseconds, as text.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", tether::bench::ms(d))
}
