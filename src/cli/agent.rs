//! `tether agent`: run the agent, or (with a subcommand) talk to the running agent through its
//! control socket in the same data dir.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{Failure, read_secret_line, runtime, shutdown_signal};
use crate::agent::consent::{Consent, ConsentPolicy};
use crate::agent::control::{self, ControlReply, ControlRequest, ControlSocket};
use crate::agent::{AgentShared, AgentStatus};
use crate::paths::Paths;
use crate::protocol::{Secret, UnattendedState};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// The enrolment link from your technician (needed on the first run only).
    #[arg(long, env = "TETHER_LINK")]
    pub link: Option<String>,
    /// Screen source: synthetic[:WIDTHxHEIGHT][@SEED], vnc://HOST:PORT (password from
    /// $TETHER_VNC_PASSWORD or ?password-file=PATH), x11[:DISPLAY], terminal, or none.
    #[arg(long, default_value = "synthetic")]
    pub screen: String,
    /// Data directory (identity, policy, control socket). Default: the data dir's `agent/`.
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Who answers technicians' requests: ask (the person at this computer), accept or deny
    /// (without asking). Default: ask when standard input is a terminal, else deny.
    #[arg(long, value_enum)]
    pub consent: Option<ConsentPolicy>,
    /// Whether technicians may open a shell (a terminal session) on this computer. Off: only
    /// the screen is shared, and a request for a shell is refused with the reason.
    #[arg(long, value_enum, default_value = "on")]
    pub shell: OnOff,
}

/// A switch on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Talk to the agent running with the same data dir.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Show the running agent: hub link, unattended access, secrets, questions, sessions.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Answer the agent's waiting question: yes.
    Grant,
    /// Answer the agent's waiting question: no.
    Deny,
    /// Take unattended access back (live sessions end).
    Revoke,
    /// The temporary passcode technicians must present.
    Passcode {
        #[command(subcommand)]
        action: PasscodeAction,
    },
    /// The permanent password technicians may present (unattended access with nobody present).
    Password {
        #[command(subcommand)]
        action: PasswordAction,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum PasscodeAction {
    /// Show the passcode in force.
    Show,
    /// Replace it now: the old one stops working at once.
    Refresh,
    /// Require a passcode for every connection (a new one is issued).
    On,
    /// Stop requiring a passcode.
    Off,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum PasswordAction {
    /// Set it (at least 8 characters), read from the first line of standard input.
    Set {
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove it.
    Clear,
}

pub fn run(paths: &Paths, args: AgentArgs) -> Result<(), Failure> {
    let data_dir = args.data.clone().unwrap_or_else(|| paths.agent_data());
    match args.command {
        Some(command) => control_command(&data_dir, command),
        None => run_agent(paths, data_dir, args),
    }
}

fn control_command(data_dir: &Path, command: AgentCommand) -> Result<(), Failure> {
    let (request, json) = match command {
        AgentCommand::Status { json } => (ControlRequest::Status, json),
        AgentCommand::Grant => (ControlRequest::Grant, false),
        AgentCommand::Deny => (ControlRequest::Deny, false),
        AgentCommand::Revoke => (ControlRequest::Revoke, false),
        AgentCommand::Passcode { action } => (
            match action {
                PasscodeAction::Show => ControlRequest::PasscodeShow,
                PasscodeAction::Refresh => ControlRequest::PasscodeRefresh,
                PasscodeAction::On => ControlRequest::PasscodeOn,
                PasscodeAction::Off => ControlRequest::PasscodeOff,
            },
            false,
        ),
        AgentCommand::Password { action } => (
            match action {
                PasswordAction::Set { .. } => ControlRequest::PasswordSet {
                    password: Secret::new(read_secret_line()?),
                },
                PasswordAction::Clear => ControlRequest::PasswordClear,
            },
            false,
        ),
    };
    let reply = runtime()?.block_on(control::send(data_dir, request))?;
    let text = match reply {
        ControlReply::Status { status } if json => serde_json::to_string_pretty(&status)?,
        ControlReply::Status { status } => control::describe_status(&status),
        ControlReply::Passcode {
            passcode,
            next_rotation,
        } => format!(
            "temporary passcode: {} (replaced at {})",
            passcode.expose(),
            next_rotation.format("%Y-%m-%d %H:%M UTC")
        ),
        ControlReply::Answered { question, yes } => {
            format!("{}: {}", if yes { "yes" } else { "no" }, question.text)
        }
        ControlReply::Unattended { state } => unattended_line(state).to_owned(),
        ControlReply::Done { message } => message,
        ControlReply::Error { message } => return Err(Failure::from(message)),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// How the agent tells the person at the machine about unattended access.
pub fn unattended_line(state: UnattendedState) -> &'static str {
    match state {
        UnattendedState::None => "No unattended access",
        UnattendedState::Requested => "Unattended access requested",
        UnattendedState::Granted => "Unattended access granted",
        UnattendedState::Denied => "Unattended access denied",
        UnattendedState::Withdrawn => "Unattended access withdrawn by the technicians",
        UnattendedState::Revoked => "Unattended access revoked",
    }
}

/// What the person at the machine sees, to print only what changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct View {
    unattended: UnattendedState,
    /// The passcode as shown, and when it is replaced.
    passcode: Option<(String, String)>,
    /// Live sessions: id to description.
    sessions: BTreeMap<String, String>,
}

fn view(shared: &AgentShared) -> View {
    let (unattended, passcode) = {
        let policy = shared.policy();
        (
            policy.unattended(),
            policy.passcode().map(|p| {
                (
                    p.formatted().expose().to_owned(),
                    p.expires_at().format("%Y-%m-%d %H:%M UTC").to_string(),
                )
            }),
        )
    };
    let sessions = shared
        .live_sessions()
        .into_iter()
        .map(|s| {
            let who = format!("{} ({})", s.technician.name, s.technician.email);
            let what = if s.view_only { "view only" } else { "control" };
            (s.id, format!("{who}, {what}, {}", s.method.label()))
        })
        .collect();
    View {
        unattended,
        passcode,
        sessions,
    }
}

/// The line about a new passcode. The code itself only on a terminal: a service's standard
/// output is a journal that others read and keep.
fn passcode_line(code: &str, next: &str, terminal: bool) -> String {
    if terminal {
        format!("temporary passcode: {code} (replaced at {next})")
    } else {
        tracing::info!(replaced_at = next, "a temporary passcode was issued");
        format!(
            "temporary passcode issued (replaced at {next}); see it with: tether agent passcode show"
        )
    }
}

fn changes(before: &View, after: &View, terminal: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if before.unattended != after.unattended {
        lines.push(unattended_line(after.unattended).to_owned());
    }
    if before.passcode != after.passcode {
        lines.push(match &after.passcode {
            Some((code, next)) => passcode_line(code, next, terminal),
            None => "temporary passcode off".to_owned(),
        });
    }
    for (id, desc) in &after.sessions {
        if !before.sessions.contains_key(id) {
            lines.push(format!("connected: {desc}"));
        }
    }
    for (id, desc) in &before.sessions {
        if !after.sessions.contains_key(id) {
            lines.push(format!("disconnected: {desc}"));
        }
    }
    lines
}

fn status_line(status: &AgentStatus) -> Option<String> {
    match status {
        AgentStatus::Connecting { attempt: 0 } => Some("connecting to the hub...".to_owned()),
        AgentStatus::Connecting { .. } => None,
        AgentStatus::Online {
            client,
            workstation_id,
        } => Some(format!("online: workstation {workstation_id} of {client}")),
        AgentStatus::Offline { reason, retry_in } => Some(format!(
            "offline ({reason}); retrying in {:.0} s",
            retry_in.as_secs_f64()
        )),
    }
}

/// Tell the person at the machine what the agent is doing, one line per change.
async fn show_changes(
    shared: std::sync::Arc<AgentShared>,
    mut status: tokio::sync::watch::Receiver<AgentStatus>,
    mut shown: tokio::sync::watch::Receiver<u64>,
) {
    let terminal = std::io::stdout().is_terminal();
    let mut before = view(&shared);
    if before.unattended != UnattendedState::None {
        println!("{}", unattended_line(before.unattended));
    }
    if let Some((code, next)) = &before.passcode {
        println!("{}", passcode_line(code, next, terminal));
    }
    loop {
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
                let line = status_line(&status.borrow_and_update());
                if let Some(line) = line {
                    println!("{line}");
                }
            }
            changed = shown.changed() => {
                if changed.is_err() {
                    return;
                }
                let after = view(&shared);
                for line in changes(&before, &after, terminal) {
                    println!("{line}");
                }
                before = after;
            }
        }
    }
}

fn run_agent(paths: &Paths, data_dir: PathBuf, args: AgentArgs) -> Result<(), Failure> {
    let interactive = std::io::stdin().is_terminal();
    let consent = args.consent.unwrap_or(if interactive {
        ConsentPolicy::Ask
    } else {
        ConsentPolicy::Deny
    });
    // Started by hand in a terminal: it shows only the agent's status and questions (whatever
    // the consent policy), the log goes to a file. A service (no terminal) logs to standard
    // error, for its journal.
    let by_hand = interactive || std::io::stdout().is_terminal();
    let _log_guard = if by_hand {
        let dir = paths.logs();
        let guard = crate::logging::to_file(&dir, "agent");
        if guard.is_some() {
            println!("Log: {}", dir.join("agent.*.log").display());
        }
        guard
    } else {
        crate::logging::to_stderr();
        None
    };
    let link = args
        .link
        .map(|l| l.parse::<crate::protocol::EnrolmentLink>())
        .transpose()?;
    let screen = args
        .screen
        .parse::<crate::agent::ScreenSource>()
        .map_err(|m| Failure {
            message: m,
            code: 2,
        })?;
    let opts = crate::agent::AgentOptions {
        data_dir: data_dir.clone(),
        link,
        screen,
        report: None,
        shell: args.shell == OnOff::On,
    };
    runtime()?.block_on(async move {
        let shutdown = shutdown_signal();
        // The socket first: it also tells whether another agent already runs on this data dir,
        // before loading the policy (which may issue and save a new passcode).
        let socket = ControlSocket::bind(&data_dir).await?;
        let shared = AgentShared::open(&data_dir, Consent::new(consent)).await?;
        println!(
            "control this agent with `tether agent status|grant|deny|revoke|passcode|password` \
             (socket {})",
            socket.path().display()
        );
        println!("technicians' requests: {}", consent.label());
        // Said once at start, so nobody shares a test picture believing it is their screen.
        let source = screen_line(&opts.screen, opts.shell);
        tracing::info!(screen = ?opts.screen, "{source}");
        println!("{source}");
        let (stop_control, control_stopped) = tokio::sync::oneshot::channel::<()>();
        let control = tokio::spawn(socket.serve(shared.clone(), async {
            let _ = control_stopped.await;
        }));
        let rotation = tokio::spawn(crate::agent::shared::rotate_passcode_daily(
            shared.clone(),
            chrono::Utc::now,
        ));
        // Subscribed before the hub link starts, so its first status is shown too.
        let shower = tokio::spawn(show_changes(
            shared.clone(),
            shared.status.subscribe(),
            shared.shown.subscribe(),
        ));
        let prompt = (interactive && consent == ConsentPolicy::Ask).then(|| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let lines = crate::agent::consent::stdin_lines();
                crate::agent::consent::prompt(&shared.consent, lines, std::io::stdout()).await;
            })
        });

        let result = crate::agent::run(opts, shared, shutdown).await;

        // Stop answering, and remove the socket file, before exiting.
        let _ = stop_control.send(());
        let _ = control.await;
        rotation.abort();
        shower.abort();
        if let Some(prompt) = prompt {
            prompt.abort();
        }
        result.map_err(Failure::from)
    })
}

/// What the agent shares, in the end user's words, with the way to a real screen when it is a
/// test picture.
fn screen_line(source: &crate::agent::ScreenSource, shell: bool) -> String {
    use crate::agent::ScreenSource;
    let shell_note = if shell {
        "technicians may also open a shell"
    } else {
        "no shell (--shell off)"
    };
    match source {
        ScreenSource::Synthetic { width, height, .. } => format!(
            "screen shared: a synthetic test desktop ({width}x{height}), not this computer's screen; \
             for the real one use --screen x11:0, --screen vnc://HOST:PORT or --screen terminal"
        ),
        ScreenSource::Vnc(target) => format!(
            "screen shared: the VNC server at {}:{}; {shell_note}",
            target.host, target.port
        ),
        ScreenSource::X11 { display: Some(d) } => {
            format!("screen shared: X display {d}; {shell_note}")
        }
        ScreenSource::X11 { display: None } => {
            format!("screen shared: the X display in $DISPLAY; {shell_note}")
        }
        ScreenSource::Terminal | ScreenSource::Headless if shell => {
            "no screen shared: technicians get a shell in a terminal on this computer".to_owned()
        }
        ScreenSource::Terminal | ScreenSource::Headless => {
            "no screen shared and no shell (--shell off): technicians can connect but see nothing"
                .to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_says_which_screen_it_shares() {
        let synthetic = screen_line(&"synthetic".parse().unwrap_or_default(), true);
        assert!(
            synthetic.contains("synthetic test desktop (1920x1080)"),
            "{synthetic}"
        );
        assert!(synthetic.contains("--screen x11:0"), "{synthetic}");
        let x = screen_line(&"x11:1".parse().unwrap_or_default(), true);
        assert!(x.contains("X display :1"), "{x}");
        let vnc = screen_line(&"vnc://127.0.0.1:5901".parse().unwrap_or_default(), false);
        assert!(
            vnc.contains("VNC server at 127.0.0.1:5901; no shell"),
            "{vnc}"
        );
        let text = screen_line(&crate::agent::ScreenSource::Terminal, true);
        assert!(
            text.starts_with("no screen shared: technicians get a shell"),
            "{text}"
        );
    }

    #[test]
    fn the_person_at_the_machine_sees_what_changed() {
        let before = View::default();
        let mut after = View {
            unattended: UnattendedState::Granted,
            passcode: Some(("K7P-4QX-9MZ".into(), "2026-03-02 09:00 UTC".into())),
            sessions: BTreeMap::new(),
        };
        after.sessions.insert(
            "se_1".into(),
            "Alice (alice@example.com), control, unattended".into(),
        );
        assert_eq!(
            changes(&before, &after, true),
            vec![
                "Unattended access granted".to_owned(),
                "temporary passcode: K7P-4QX-9MZ (replaced at 2026-03-02 09:00 UTC)".to_owned(),
                "connected: Alice (alice@example.com), control, unattended".to_owned(),
            ]
        );
        assert_eq!(
            changes(&after, &before, true),
            vec![
                "No unattended access".to_owned(),
                "temporary passcode off".to_owned(),
                "disconnected: Alice (alice@example.com), control, unattended".to_owned(),
            ]
        );
        assert!(changes(&after, &after, true).is_empty());
        // Not a terminal (a service's journal): that a passcode was issued, never the code.
        let journal = changes(&before, &after, false);
        assert!(
            journal[1].starts_with("temporary passcode issued"),
            "{journal:?}"
        );
        assert!(
            !journal.iter().any(|l| l.contains("K7P-4QX-9MZ")),
            "{journal:?}"
        );
    }

    #[test]
    fn subcommands_parse_with_data_after_them() {
        use clap::Parser;
        let cli = super::super::Cli::try_parse_from([
            "tether", "agent", "status", "--data", "/tmp/x", "--json",
        ])
        .expect("parse");
        let super::super::Command::Agent(args) = cli.command else {
            panic!("agent");
        };
        assert_eq!(args.data, Some(PathBuf::from("/tmp/x")));
        assert!(matches!(
            args.command,
            Some(AgentCommand::Status { json: true })
        ));
        let cli = super::super::Cli::try_parse_from([
            "tether",
            "agent",
            "password",
            "set",
            "--password-stdin",
        ])
        .expect("parse");
        let super::super::Command::Agent(args) = cli.command else {
            panic!("agent");
        };
        assert!(matches!(
            args.command,
            Some(AgentCommand::Password {
                action: PasswordAction::Set {
                    password_stdin: true
                }
            })
        ));
        assert!(
            super::super::Cli::try_parse_from(["tether", "agent", "--link", "x", "status"])
                .is_err(),
            "running options do not mix with commands"
        );
        let cli = super::super::Cli::try_parse_from([
            "tether",
            "agent",
            "--consent",
            "accept",
            "--data",
            "/d",
        ])
        .expect("parse");
        let super::super::Command::Agent(args) = cli.command else {
            panic!("agent");
        };
        assert_eq!(args.consent, Some(ConsentPolicy::Accept));
        assert!(args.command.is_none());
    }
}
