//! The `tether` binary: all the work is in the library (see `lib.rs` for the map).

/// jemalloc instead of glibc's malloc: with its background threads it gives memory freed after
/// a load back to the system within seconds (measured by `tether bench hub`: 60 s after 19,500
/// agents left, glibc kept 14.6x the idle resident set, jemalloc under 1.5x).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    // One purging thread is enough for a process that mostly idles between loads.
    let _ = tikv_jemalloc_ctl::max_background_threads::write(1);
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("tether: memory will be returned to the system more slowly: {e}");
    }
    tether::cli::main()
}
