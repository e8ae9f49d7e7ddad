//! The `tether` binary: all the work is in the library (see `lib.rs` for the map).

fn main() -> std::process::ExitCode {
    tether::cli::main()
}
