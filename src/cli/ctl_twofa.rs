//! `tether ctl 2fa | users | settings | audit list`: technician 2FA, the users admin view, the
//! hub's settings and the audit search (issue 5).

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::Failure;
use super::ctl_output::{OnOff, hub_error, print_json, print_table, when};
use super::ctl_users::Change;
use super::read_secret_line;
use crate::client::HubClient;
use crate::protocol::{AuditQuery, ConsoleReply, ConsoleRequest};

#[derive(Debug, Subcommand)]
pub enum TwoFaCommand {
    /// Start enrolment: prints the otpauth URI and its QR code (shown only this once).
    Enable,
    /// Confirm enrolment with the code your authenticator app shows.
    Confirm { code: String },
    /// Your 2FA: off, pending (required, not active) or active.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Every user with their 2FA state (admins).
    List,
    /// Require 2FA for a user (admins; your password on standard input).
    #[command(name = "require-2fa")]
    Require2fa {
        user: String,
        /// Read your own password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Stop requiring 2FA for a user (admins; your password on standard input).
    #[command(name = "unrequire-2fa")]
    Unrequire2fa {
        user: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Reset another user's 2FA (a lost phone): off again, or pending where required; their
    /// logins end (admins; your password on standard input).
    #[command(name = "reset-2fa")]
    Reset2fa {
        user: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Add a user to your team (admins). Without --password-stdin, prints a one-time
    /// enrolment code with which they set their own password (`tether login --enrol`).
    Add {
        name: String,
        /// technician or admin.
        #[arg(long)]
        role: crate::protocol::Role,
        #[arg(long)]
        email: Option<String>,
        /// Set the password yourself, from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (admins); their open consoles close.
    Role {
        name: String,
        role: crate::protocol::Role,
    },
    /// Disable a user (admins): their logins and open consoles end; they cannot log in.
    Disable { name: String },
    /// Enable a disabled or locked user again (admins).
    Enable { name: String },
    /// Remove a user for good (admins); their name stays in the audit log.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Require 2FA for everyone, or not (the hub's owner; your password on standard input).
    #[command(name = "require-2fa")]
    Require2fa {
        #[arg(value_enum)]
        value: OnOff,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// Filters of `ctl audit list`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditFilters {
    /// Who did it (a user name, agent:<id>, hub).
    #[arg(long)]
    pub user: Option<String>,
    /// A workstation, by id or host name.
    #[arg(long)]
    pub workstation: Option<String>,
    /// The kind of event: exact (login.fail) or a prefix (login, 2fa, connect).
    #[arg(long)]
    pub kind: Option<String>,
    /// From this time on: RFC 3339 (2026-01-31T08:00:00Z) or a date (2026-01-31).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Before this time (same forms).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
}

use crate::protocol::parse_time;

fn unexpected() -> Failure {
    "unexpected answer".into()
}

pub async fn two_fa(client: &HubClient, json: bool, command: TwoFaCommand) -> Result<(), Failure> {
    let ask = |body| async { client.request(body).await.map_err(hub_error) };
    match command {
        TwoFaCommand::Enable => {
            let ConsoleReply::TwoFactorEnrolment { uri, secret } =
                ask(ConsoleRequest::TwoFactorEnable).await?
            else {
                return Err(unexpected());
            };
            if json {
                return print_json(
                    &serde_json::json!({ "uri": uri.expose(), "secret": secret.expose() }),
                );
            }
            let qr = crate::render::qr::QrModules::new(uri.expose(), 2).map_err(Failure::from)?;
            for line in qr.text_lines() {
                println!("{line}");
            }
            println!("{}", uri.expose());
            eprintln!(
                "scan the code (or type the secret {}) into your authenticator app, then run: tether ctl 2fa confirm CODE",
                secret.expose()
            );
        }
        TwoFaCommand::Confirm { code } => {
            let ConsoleReply::TwoFactor { status } =
                ask(ConsoleRequest::TwoFactorConfirm { code: code.into() }).await?
            else {
                return Err(unexpected());
            };
            if json {
                return print_json(&status);
            }
            println!(
                "2FA is {}: every login now asks for a code",
                status.state.label()
            );
        }
        TwoFaCommand::Status => {
            let ConsoleReply::TwoFactor { status } = ask(ConsoleRequest::TwoFactorStatus).await?
            else {
                return Err(unexpected());
            };
            if json {
                return print_json(&status);
            }
            println!(
                "2FA: {}{}{}",
                status.state.label(),
                if status.required {
                    if status.global {
                        " (required for everyone)"
                    } else {
                        " (required for you)"
                    }
                } else {
                    ""
                },
                if status.enrolling {
                    "; enrolment waits for its code"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

pub async fn users(
    client: &HubClient,
    json: bool,
    limit: Option<u64>,
    command: UsersCommand,
) -> Result<(), Failure> {
    let ask = |body| async { client.request(body).await.map_err(hub_error) };
    let (user, required) = match command {
        UsersCommand::List => {
            let (users, global) = all_users(client, limit).await?;
            if json {
                return print_json(&serde_json::json!({ "global": global, "users": users }));
            }
            let rows = users
                .into_iter()
                .map(|u| {
                    vec![
                        u.name,
                        u.email,
                        u.role.as_str().into(),
                        u.team,
                        u.state.label().into(),
                        if global {
                            "everyone".into()
                        } else if u.required {
                            "yes".into()
                        } else {
                            "-".into()
                        },
                    ]
                })
                .collect();
            print_table(&["NAME", "EMAIL", "ROLE", "TEAM", "2FA", "REQUIRED"], rows);
            return Ok(());
        }
        UsersCommand::Require2fa { user, .. } => (user, true),
        UsersCommand::Unrequire2fa { user, .. } => (user, false),
        UsersCommand::Reset2fa { user, .. } => return reset(client, json, &user).await,
        UsersCommand::Add {
            name,
            role,
            email,
            password_stdin,
        } => {
            let change = Change::Add {
                name,
                role,
                email,
                password_stdin,
            };
            return super::ctl_users::run(client, json, change).await;
        }
        UsersCommand::Role { name, role } => {
            return super::ctl_users::run(client, json, Change::Role { name, role }).await;
        }
        UsersCommand::Disable { name } => {
            return super::ctl_users::run(client, json, Change::Disable { name }).await;
        }
        UsersCommand::Enable { name } => {
            return super::ctl_users::run(client, json, Change::Enable { name }).await;
        }
        UsersCommand::Remove { name } => {
            return super::ctl_users::run(client, json, Change::Remove { name }).await;
        }
    };
    let password = read_secret_line()?;
    ask(ConsoleRequest::SetUserTwoFactor {
        user: user.clone(),
        required,
        password: password.into(),
    })
    .await?;
    if json {
        return print_json(&serde_json::json!({ "user": user, "required": required }));
    }
    println!(
        "2FA {} for {user}",
        if required {
            "required"
        } else {
            "no longer required"
        }
    );
    Ok(())
}

/// Every user (or the first `limit`), page by page, and whether 2FA is required of everyone.
async fn all_users(
    client: &HubClient,
    limit: Option<u64>,
) -> Result<(Vec<crate::protocol::UserTwoFactor>, bool), Failure> {
    let global = std::cell::Cell::new(false);
    let users = super::ctl_list::collect(limit, |page| {
        let global = &global;
        async move {
            match client.request(ConsoleRequest::ListUsers { page }).await {
                Ok(ConsoleReply::Users {
                    users,
                    global: g,
                    next,
                    ..
                }) => {
                    global.set(g);
                    Ok((users, next))
                }
                Ok(_) => Err(unexpected()),
                Err(e) => Err(hub_error(e)),
            }
        }
    })
    .await?;
    Ok((users, global.get()))
}

/// `users reset-2fa NAME`: then the user's 2FA state as it is now.
async fn reset(client: &HubClient, json: bool, user: &str) -> Result<(), Failure> {
    let ask = |body| async { client.request(body).await.map_err(hub_error) };
    let password = read_secret_line()?;
    ask(ConsoleRequest::ResetUserTwoFactor {
        user: user.to_owned(),
        password: password.into(),
    })
    .await?;
    let (users, _) = all_users(client, None).await?;
    let now = users
        .into_iter()
        .find(|u| u.name == user || u.id == user)
        .ok_or_else(unexpected)?;
    if json {
        return print_json(&serde_json::json!({
            "id": now.id,
            "user": now.name,
            "reset": true,
            "state": now.state,
        }));
    }
    println!(
        "2FA reset for {}: now {}; their logins were ended{}",
        now.name,
        now.state.label(),
        if now.state == crate::protocol::TwoFactorState::Pending {
            " (2FA is required: they enrol again at their next login)"
        } else {
            ""
        }
    );
    Ok(())
}

pub async fn settings(
    client: &HubClient,
    json: bool,
    command: SettingsCommand,
) -> Result<(), Failure> {
    let SettingsCommand::Require2fa { value, .. } = command;
    let required = value == OnOff::On;
    let password = read_secret_line()?;
    client
        .request(ConsoleRequest::SetGlobalTwoFactor {
            required,
            password: password.into(),
        })
        .await
        .map_err(hub_error)?;
    if json {
        return print_json(&serde_json::json!({ "require_2fa": required }));
    }
    println!(
        "2FA {} for everyone",
        if required {
            "required"
        } else {
            "no longer required"
        }
    );
    Ok(())
}

pub async fn audit(
    client: &HubClient,
    list: super::ctl_list::ListOptions,
    f: AuditFilters,
) -> Result<(), Failure> {
    let query = AuditQuery {
        actor: f.user,
        workstation: f.workstation,
        kind: f.kind,
        since: f.since,
        until: f.until,
    };
    let fetch = |page| {
        let query = query.clone();
        async move {
            let body = ConsoleRequest::SearchAudit {
                query,
                limit: crate::hub::pager::MAX_PAGE_ROWS,
                before: None,
                page,
            };
            match client.request(body).await {
                Ok(ConsoleReply::Audit { records, next, .. }) => Ok((records, next)),
                Ok(_) => Err(unexpected()),
                Err(e) => Err(hub_error(e)),
            }
        }
    };
    super::ctl_list::print(
        list,
        fetch,
        &["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
        |r| {
            vec![
                r.id.to_string(),
                when(r.at),
                r.actor,
                r.action,
                r.target.unwrap_or_default(),
                r.detail.to_string(),
            ]
        },
    )
    .await
}
