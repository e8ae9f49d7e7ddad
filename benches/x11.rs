//! Reading an X screen's pixels: MIT-SHM (a segment the server makes, read back with `pread`)
//! against `GetImage` over the socket, on a real 1920x1080 Xvnc (Debian's
//! tigervnc-standalone-server), for the whole screen and for one 256x256 area (a typical damaged
//! region). Skipped, saying so, when Xvnc is not installed.
//!
//! `cargo bench --bench x11 -- --warm-up-time 1 --measurement-time 3`

#[allow(dead_code)]
#[path = "../tests/common/peers.rs"]
mod peers;
#[allow(dead_code)]
#[path = "../tests/common/xvnc.rs"]
mod xvnc;

use criterion::{Criterion, criterion_group, criterion_main};
use tether::agent::screen::grab::{Grabber, Transport};
use tether::frame::{Framebuffer, Rect};
use x11rb::protocol::xproto::EventMask;
use x11rb::wrapper::ConnectionExt as _;

fn grab(c: &mut Criterion) {
    let Some(server) = xvnc::Xvnc::start("bench x11", (1920, 1080), &["-SecurityTypes", "None"])
    else {
        return;
    };
    // Something on the screen besides the root: a few coloured windows.
    let x = server.x();
    for (i, colour) in [0xcc3333, 0x33cc66, 0x3366cc, 0xf0e68c]
        .into_iter()
        .enumerate()
    {
        let i = i as i16;
        x.window(
            100 + i * 300,
            80 + i * 150,
            640,
            400,
            colour,
            EventMask::NO_EVENT,
        );
    }
    x.conn.sync().expect("sync");

    let mut group = c.benchmark_group("x11");
    for (name, shm, want) in [
        ("shm", true, Transport::Shm),
        ("getimage", false, Transport::GetImage),
    ] {
        let mut grabber = Grabber::connect(Some(&server.display), shm).expect("connect");
        assert_eq!(grabber.transport(), want, "{name}");
        let mut fb = Framebuffer::new(1920, 1080);
        let all = fb.bounds();
        group.bench_function(format!("full 1920x1080 / {name}"), |b| {
            b.iter(|| grabber.fetch(&mut fb, all).expect("fetch"));
        });
        let tile = Rect::new(800, 400, 256, 256);
        group.bench_function(format!("256x256 / {name}"), |b| {
            b.iter(|| grabber.fetch(&mut fb, tile).expect("fetch"));
        });
    }
    group.finish();
}

criterion_group!(benches, grab);
criterion_main!(benches);
