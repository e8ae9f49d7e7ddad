//! The command line: clap definitions and the dispatch to each role. `main.rs` only calls
//! [`main`]. Errors reach the user here, in words that say what to do next.

mod admin;
mod agent;
mod ctl;
mod ctl_list;
mod ctl_otp;
mod ctl_output;
mod ctl_twofa;
mod ctl_users;
mod prompt;
mod render;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::paths::Paths;
pub use agent::{AgentArgs, AgentCommand, PasscodeAction, PasswordAction};

#[derive(Debug, Parser)]
#[command(
    name = "tether",
    version,
    about = "Remote support for technicians who live in a terminal"
)]
#[command(propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: the server consoles and agents connect to.
    Hub(HubArgs),
    /// Run the agent on a computer to be supported.
    Agent(AgentArgs),
    /// Open the technician's console.
    Console(ConsoleArgs),
    /// Run everything in one process with sample data: a hub, a fleet of agents and a console.
    Demo(DemoArgs),
    /// Administer a hub's data directly (create users, verify the audit log).
    Admin(admin::AdminArgs),
    /// Log in to a hub and store the login for `ctl` and the console.
    Login(LoginArgs),
    /// Scriptable console: every console action as a command.
    Ctl(ctl::CtlArgs),
    /// Draw a PNG picture in the terminal with the viewer's renderer (to stdout).
    Render(render::RenderArgs),
    /// Measure what users feel, end to end: keys, hub at size, a slow link, viewers, console.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct HubArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:7443")]
    pub listen: String,
    /// Data directory (database, certificate). Default: the data dir's `hub/`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// `host:port` that enrolment links send agents to (default: the listening address).
    #[arg(long)]
    pub public_addr: Option<String>,
    /// Connections open at once (agents and consoles); past it new ones are refused.
    #[arg(long, default_value_t = crate::hub::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Unauthenticated connections one address (IPv6: one /64) may hold open; past it new
    /// ones from there are refused (a desk behind one NAT may need more).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub preauth_per_source: u32,
    #[command(flatten)]
    pub otp: ctl_otp::HubOtpArgs,
}

#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Hub to use (wss://HOST:PORT); default: the last one logged in to.
    #[arg(long)]
    pub hub: Option<String>,
    /// Theme: dark, light, high-contrast, or a path to a theme file.
    #[arg(long)]
    pub theme: Option<String>,
    /// How to draw live desktops: auto (ask the terminal), sixel, kitty, halfblocks, quadrants,
    /// sextants.
    #[arg(long, value_name = "MODE")]
    pub render: Option<crate::render::RenderOverride>,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Theme: dark, light, high-contrast, or a path to a theme file.
    #[arg(long)]
    pub theme: Option<String>,
    /// How to draw live desktops: auto (ask the terminal), sixel, kitty, halfblocks, quadrants,
    /// sextants.
    #[arg(long, value_name = "MODE")]
    pub render: Option<crate::render::RenderOverride>,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Hub address, wss://HOST:PORT.
    #[arg(long)]
    pub hub: String,
    #[arg(long)]
    pub user: String,
    /// Read the password from the first line of standard input (for scripts). Without it the
    /// password is asked on the terminal, not shown as typed.
    #[arg(long)]
    pub password_stdin: bool,
    /// The hub's certificate fingerprint (SHA256:...), as the hub printed it.
    #[arg(long, conflicts_with = "accept_new")]
    pub fingerprint: Option<String>,
    /// Trust the certificate the hub presents now, on first use (as ssh's accept-new).
    #[arg(long)]
    pub accept_new: bool,
    /// Log in with support credentials (user name, password and --code) instead of an account.
    #[arg(long, requires = "code")]
    pub guest: bool,
    /// With --guest: the six-digit security code of the support credentials. Otherwise: the
    /// code from your authenticator app, where your 2FA is active.
    #[arg(long)]
    pub code: Option<String>,
    /// First set your password with the one-time enrolment code your admin gave you (the
    /// password on standard input), then log in with it.
    #[arg(long, value_name = "CODE", conflicts_with = "guest")]
    pub enrol: Option<String>,
    /// Print the login as JSON (without the token, which stays in the login store).
    #[arg(long)]
    pub json: bool,
}

/// Errors shown to the user, with the exit code they map to.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

/// Exit code when no (valid) login is stored.
pub const EXIT_NOT_LOGGED_IN: u8 = 3;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tether: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Threads for blocking work (store calls, files, password hashing queued by the hub).
const BLOCKING_THREADS: usize = 32;

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // The hub's store calls run here and take turns on one database connection: tokio's
        // default of 512 threads only made a reconnect storm start hundreds of threads that
        // wait (their stacks and allocator caches outliving the storm).
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?)
}

/// Read one secret line from standard input (no trailing newline).
pub(crate) fn read_secret_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(Failure {
            message: "no password on standard input".into(),
            code: 2,
        });
    }
    Ok(secret)
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    // Hub, agent, console and admin all date what they record: refuse a clock they cannot use.
    crate::clock::check_system()?;
    let paths = Paths::from_env();
    match cli.command {
        Command::Hub(args) => run_hub(&paths, args),
        Command::Agent(args) => agent::run(&paths, args),
        Command::Console(args) => {
            let opts = crate::console::ConsoleOptions {
                paths,
                hub: args.hub,
                preset: None,
                theme: args.theme,
                render: args.render,
            };
            runtime()?
                .block_on(crate::console::run(opts))
                .map_err(|e| Failure {
                    message: format!("{e:#}"),
                    code: 1,
                })
        }
        Command::Demo(args) => runtime()?
            .block_on(crate::demo::run(paths, args.theme, args.render))
            .map_err(|e| Failure {
                message: format!("{e:#}"),
                code: 1,
            }),
        Command::Admin(args) => admin::run(&paths, args),
        Command::Login(args) => runtime()?.block_on(ctl::login(&paths, args)),
        Command::Ctl(args) => runtime()?.block_on(ctl::run(&paths, args)),
        Command::Render(args) => render::run(args),
        Command::Bench(args) => crate::bench::run(args).map_err(|e| Failure {
            message: format!("{e:#}"),
            code: 1,
        }),
    }
}

/// Resolves on SIGTERM, SIGHUP or SIGINT (a requested stop: the role ends cleanly, status 0).
/// Listens from the call (inside the runtime), not from the first poll: a signal sent once the
/// role has said it is ready is never the default, abrupt end.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let mut signals = crate::signals::listen();
    async move {
        let stop = crate::signals::stop_requested(signals.as_mut()).await;
        tracing::info!(signal = stop.name(), "stopping on request");
    }
}

fn run_hub(paths: &Paths, args: HubArgs) -> Result<(), Failure> {
    crate::logging::to_stderr();
    if args.max_connections == 0 {
        return Err(Failure {
            message: "--max-connections must be at least 1".into(),
            code: 2,
        });
    }
    let data_dir = args.data.unwrap_or_else(|| paths.hub_data());
    let mut config = crate::hub::HubConfig {
        data_dir: data_dir.clone(),
        public_addr: args.public_addr,
        smtp: args.otp.smtp()?,
        ..Default::default()
    };
    config.limits.otp_ttl = args.otp.otp_ttl;
    config.limits.max_connections = args.max_connections;
    config.limits.preauth_per_source = args.preauth_per_source;
    let hub = crate::hub::Hub::open(config)?;
    runtime()?.block_on(async move {
        let shutdown = shutdown_signal();
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| Failure::from(format!("cannot listen on {}: {e}", args.listen)))?;
        let local = listener.local_addr()?;
        // The first lines a person (or a test) reads: where, and which certificate to pin.
        // Written, not println!-ed: a hub whose stdout was closed must keep serving.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "tether hub listening on {local}");
        let _ = writeln!(out, "certificate fingerprint: {}", hub.fingerprint());
        let fp_file = data_dir.join(crate::tls::FINGERPRINT_FILE);
        let _ = writeln!(out, "(also in {})", fp_file.display());
        let _ = out.flush();
        drop(out);
        crate::hub::run(hub, listener, shutdown).await?;
        Ok(())
    })
}
