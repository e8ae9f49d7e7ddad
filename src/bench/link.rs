//! `tether bench link`: a window drag on the synthetic desktop, watched through a slow link.
//!
//! The rig's hub and agent (synthetic desktop, 30 frames a second) on loopback; the technician
//! reaches the hub through [`Throttle`], a proxy that carries `--rate` each way and delays each
//! way by half of `--rtt`. The technician drags a window 30 moves a second and draws every
//! frame as the console does (sixel at the screen's size, or half blocks on 200x60 cells),
//! acknowledging each once drawn. Reported: frames drawn a second, the link's use (bytes
//! carried towards the console, TLS included, against the rate), and latency from capture to
//! drawn.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::rig::{DRAG_MOVE, Drag, Drawing, LinkShape, Rig, Throttle, Watcher, login};
use super::{Report, ms};
use crate::protocol::stream::{StreamFrame, now_micros};
use crate::render::CellSize;

/// How the console draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Sixel at the screen's size (10x20-pixel cells).
    Sixel,
    /// Half blocks on a 200x60-cell terminal.
    Halfblocks,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The link's round trip (`100ms`, `0.25s`); each way is delayed by half.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub rtt: Duration,
    /// The link's rate each way, in bits (`10mbit`, `4mbit`, `512kbit`).
    #[arg(long, default_value = "10mbit", value_parser = parse_rate)]
    pub rate: f64,
    /// Seconds measured (after the first, whole picture is through).
    #[arg(long, default_value_t = 15.0)]
    pub secs: f64,
    /// The remote screen's size.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// How the console draws.
    #[arg(long, value_enum, default_value_t = Mode::Sixel)]
    pub mode: Mode,
}

/// The synthetic desktop's seed: the drag knows where its window is.
const SEED: u64 = 7;

/// `100ms`, `0.1s`, `250us` -> a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use a number and ms, s or us (100ms)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "us" | "µs" => n / 1_000_000.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}: use ms, s or us")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// `10mbit`, `512kbit`, `1gbit` (as tc writes rates) -> bytes a second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let n: f64 = number.parse().map_err(|_| {
        format!("{s:?} is not a rate: use a number and kbit, mbit or gbit (10mbit)")
    })?;
    let bits = match unit.trim() {
        "bit" => n,
        "kbit" => n * 1e3,
        "mbit" => n * 1e6,
        "gbit" => n * 1e9,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use kbit, mbit or gbit"
            ));
        }
    };
    if bits < 8_000.0 {
        return Err(format!("{s:?} is too slow to measure: at least 8kbit"));
    }
    Ok(bits / 8.0)
}

/// `1920x1080` -> (1920, 1080).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a size: use WIDTHxHEIGHT, as 1920x1080");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(64..=4096).contains(&w) || !(64..=4096).contains(&h) {
        return Err(format!("{s:?}: each side is 64 to 4096 pixels"));
    }
    Ok((w, h))
}

/// What one drag through the link gave.
pub struct DragFigures {
    pub frames: u64,
    pub secs: f64,
    pub bytes: u64,
    /// Capture to drawn, sorted.
    pub latency: Vec<Duration>,
    /// The first, whole picture: how long it took to be drawn.
    pub first: Duration,
}

/// Watch `rig`'s desktop at `url` as `mode` draws it, drag the window for `secs` and count.
pub async fn drag_through(
    rig: &Rig,
    throttle: &Throttle,
    size: (u32, u32),
    mode: Mode,
    secs: f64,
) -> anyhow::Result<DragFigures> {
    let mut drawing = match mode {
        Mode::Sixel => Drawing::sixel(
            (size.0 / 10) as u16,
            (size.1 / 20) as u16,
            CellSize::new(10, 20),
        ),
        Mode::Halfblocks => Drawing::text(200, 60),
    };
    let tech = login(&throttle.url(), rig.pin.clone()).await?;
    let (width, height) = drawing.pixels();
    let mut watcher = Watcher::open(tech, &rig.workstation, width, height).await?;
    let mut out = Vec::new();
    let start = Instant::now();
    // The first picture is whole: drawn before the drag starts.
    let first = watcher
        .next(start + Duration::from_secs(60))
        .await?
        .context("no picture within a minute")?;
    drawing.draw(&first, &mut out)?;
    watcher.ack(first.seq())?;
    let first = start.elapsed();

    let mut drag = Drag::new(size.0, size.1, SEED)?;
    watcher.input(drag.press())?;
    let begin = Instant::now();
    let bytes_at_start = throttle.sent_to_client();
    let deadline = begin + Duration::from_secs_f64(secs);
    let mut next_move = begin;
    let mut frames = 0u64;
    let mut latency = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_move {
            watcher.input(drag.next_move())?;
            next_move += DRAG_MOVE;
        }
        let Some(frame) = watcher.next(deadline.min(next_move)).await? else {
            continue;
        };
        if !matches!(frame, StreamFrame::Pixels { .. }) {
            continue;
        }
        out.clear();
        drawing.draw(&frame, &mut out)?;
        if let Some(age) = frame.capture_age(now_micros()) {
            latency.push(age);
        }
        watcher.ack(frame.seq())?;
        frames += 1;
    }
    let secs = begin.elapsed().as_secs_f64();
    let bytes = throttle.sent_to_client() - bytes_at_start;
    watcher.input(drag.release())?;
    latency.sort();
    Ok(DragFigures {
        frames,
        secs,
        bytes,
        latency,
        first,
    })
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let (w, h) = args.size;
    let rig = Rig::start(&format!("synthetic:{w}x{h}@{SEED}")).await?;
    let shape = LinkShape {
        bytes_per_second: args.rate,
        delay: args.rtt / 2,
    };
    let throttle = Throttle::start(rig.hub_addr()?, shape).await?;
    let mut figures = drag_through(&rig, &throttle, args.size, args.mode, args.secs).await?;
    let mbit = args.rate * 8.0 / 1e6;
    let mode = match args.mode {
        Mode::Sixel => format!("sixel at {w}x{h}"),
        Mode::Halfblocks => "half blocks on 200x60 cells".to_owned(),
    };
    let mut report = Report::new(
        "link",
        format!(
            "a window (~700x450) dragged 30 moves/s on a {w}x{h} synthetic desktop, drawn as {mode}, \
             through a proxy of {mbit} Mbit/s each way and {} ms round trip; {:.0} s measured",
            ms(args.rtt),
            figures.secs
        ),
    );
    let fps = figures.frames as f64 / figures.secs;
    let use_pct = figures.bytes as f64 / (args.rate * figures.secs) * 100.0;
    report.add(
        "frames drawn a second",
        fps,
        "fps",
        ">= 25 fps (1080p, 10 Mbit/s)",
    );
    report.add(
        "link use (towards the console)",
        use_pct,
        "%",
        ">= 80 % (4 Mbit/s)",
    );
    report.add(
        "bytes a frame",
        figures.bytes as f64 / figures.frames.max(1) as f64 / 1024.0,
        "KB",
        "",
    );
    report.add_p50_p99("latency (capture to drawn)", &mut figures.latency, ("", ""));
    report.add("first whole picture drawn", ms(figures.first), "ms", "");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_arguments_read_as_tc_writes_them() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_rate("10mbit"), Ok(1_250_000.0));
        assert_eq!(parse_rate("512kbit"), Ok(64_000.0));
        assert!(parse_rate("10 parsecs").is_err());
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert!(parse_size("1920").is_err());
    }
}
