//! `tether login` and `tether ctl`: the console's actions as commands, for scripts.
//! `--json` prints machine-readable records (each with its `id`); exit codes: 0 success,
//! 1 failure, 2 usage, 3 not logged in (or the login expired).

use chrono::Utc;
use clap::Subcommand;
use serde::Serialize;

use super::ctl_list::{self, Format, ListOptions};
use super::ctl_output::{OnOff, hub_error, print_json, print_table, when};
use super::{EXIT_NOT_LOGGED_IN, Failure, LoginArgs, read_secret_line};

#[path = "ctl_credentials.rs"]
mod credentials;
use crate::client::store::{LoginStore, StoredLogin, hub_url};
use crate::client::{ClientError, HubClient};
use crate::paths::Paths;
use crate::protocol::{
    ConsoleReply, ConsoleRequest, ErrorCode, PageRequest, SecretRequirements, SessionInfo,
    UserInfo, WorkstationInfo,
};
use crate::tls::{Pin, normalize_fingerprint, parse_fingerprint};

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print JSON lines: lists print one record a line, as the hub's pages arrive.
    #[arg(long, global = true)]
    pub jsonl: bool,
    /// Lists stop after N rows (default: every row, fetched a page at a time).
    #[arg(long, global = true, value_name = "N")]
    pub limit: Option<u64>,
    /// Hub to use; default: the last one logged in to.
    #[arg(long, global = true)]
    pub hub: Option<String>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Clients (customers) of your team.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Workstations of your team.
    Workstations {
        #[command(subcommand)]
        command: WorkstationsCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Unattended access to a workstation (id or host name).
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Open a session on a workstation; prints the session id. Waits while the end user is
    /// asked (up to a minute). The session stays open until ended, access is withdrawn or
    /// revoked, or nobody has viewed it for 10 minutes.
    Connect {
        workstation: String,
        /// Read the workstation's passcode or password from the first line of standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// Watch only: no keyboard or mouse.
        #[arg(long)]
        view_only: bool,
        /// The one-time password, where the workstation requires one (XXXX-XXXX-XXXX-XXXX).
        #[arg(long, value_name = "CODE")]
        otp: Option<String>,
    },
    /// Open sessions of your team.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// One live session: grab its screen.
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Groups' security defaults, applied to workstations as they enrol.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Your two-factor authentication (TOTP).
    #[command(name = "2fa")]
    TwoFa {
        #[command(subcommand)]
        command: super::ctl_twofa::TwoFaCommand,
    },
    /// Users and their 2FA (admins: their team's; the owner: every team's).
    Users {
        #[command(subcommand)]
        command: super::ctl_twofa::UsersCommand,
    },
    /// Hub-wide settings (the hub's owner).
    Settings {
        #[command(subcommand)]
        command: super::ctl_twofa::SettingsCommand,
    },
    /// Time-boxed support credentials for someone without an account.
    Credentials {
        #[command(subcommand)]
        command: credentials::CredentialsCommand,
    },
    /// One-time passwords for workstations that require one.
    Otp {
        #[command(subcommand)]
        command: super::ctl_otp::OtpCommand,
    },
    /// Your mail in the hub's outbox, kept instead of sent: your codes, and as an admin your
    /// team's emergency codes.
    Outbox {
        #[command(subcommand)]
        command: super::ctl_otp::OutboxCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Ask the end user for unattended access.
    Request { workstation: String },
    /// Withdraw unattended access for the whole team (ends its live sessions).
    Withdraw { workstation: String },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    List,
    /// End a session.
    End {
        session: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Save one frame of a workstation's screen, at its own size, as a PNG. Uses your open
    /// session there, or opens a view-only one for the grab and ends it afterwards.
    Snapshot {
        /// Workstation id or host name.
        workstation: String,
        /// The PNG file to write.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Read the workstation's passcode or password from the first line of standard input
        /// (when a session has to be opened and the workstation requires one).
        #[arg(long)]
        secret_stdin: bool,
        /// The one-time password, where the workstation requires one (and a session has to
        /// be opened).
        #[arg(long)]
        otp: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    List,
    /// Set the defaults of a client's group, or of the team's (without --client). Admins only.
    Set {
        #[arg(long)]
        client: Option<String>,
        /// Require the temporary passcode.
        #[arg(long, value_enum)]
        passcode: OnOff,
        /// Require the permanent password.
        #[arg(long, value_enum)]
        password: OnOff,
    },
    /// Require a one-time password for every connection to a client's group's workstations,
    /// or the whole team's (without --client). Admins only; applies at once.
    RequireOtp {
        #[arg(long)]
        client: Option<String>,
        #[arg(value_enum)]
        state: OnOff,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    List,
    /// Add a client.
    Add {
        name: String,
    },
    /// Issue a new enrolment link for a client (by id or name).
    Link {
        client: String,
        /// Days the link stays valid.
        #[arg(long)]
        days: Option<u32>,
    },
    /// List a client's enrolment links.
    Links {
        client: String,
    },
    /// Revoke an enrolment link.
    RevokeLink {
        link: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkstationsCommand {
    List {
        /// Only this client's (id or name).
        #[arg(long)]
        client: Option<String>,
        /// Only those whose host name, client, OS or user contains TEXT (in any case), as
        /// the console's `/` filter; the hub filters, so only matches are sent.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
    },
    /// Require a one-time password for every connection to a workstation. Admins only.
    RequireOtp {
        workstation: String,
        #[arg(value_enum)]
        state: OnOff,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest records, filtered (your team's; the hub's owner sees every team's).
    List(super::ctl_twofa::AuditFilters),
}

pub async fn login(paths: &Paths, args: LoginArgs) -> Result<(), Failure> {
    let store = LoginStore::new(paths.state.clone());
    let hub = hub_url(&args.hub);
    let interactive = !args.password_stdin && super::prompt::can_ask();
    let password = if args.password_stdin {
        read_secret_line()?
    } else if interactive {
        let what = if args.enrol.is_some() {
            "New password"
        } else {
            "Password"
        };
        super::prompt::secret(&format!("{what} for {} at {hub}: ", args.user))?
    } else {
        return Err(Failure {
            message: "standard input is not a terminal, so the password cannot be asked:                       pass --password-stdin and give it on standard input"
                .into(),
            code: 2,
        });
    };
    let pin = match (
        &args.fingerprint,
        store.known_fingerprint(&hub),
        args.accept_new,
    ) {
        (Some(fp), _, _) => Pin::Fingerprint(parse_fingerprint(fp)?),
        (None, Some(known), _) => Pin::Fingerprint(parse_fingerprint(&known)?),
        (None, None, true) => Pin::FirstUse,
        (None, None, false) => {
            return Err(Failure {
                message: format!(
                    "the certificate of {hub} is not known yet: pass --fingerprint SHA256:... (the hub prints it at \
                     start and keeps it in its data dir's hub.fingerprint), or --accept-new to trust it on first use"
                ),
                code: 2,
            });
        }
    };
    let (client, _events) = HubClient::connect(&hub, pin).await?;
    if args.guest {
        return guest_login(&store, &hub, &client, &args, &password).await;
    }
    if let Some(code) = &args.enrol {
        client
            .request(ConsoleRequest::RedeemEnrolment {
                version: crate::protocol::PROTOCOL_VERSION,
                user: args.user.clone(),
                code: code.clone().into(),
                password: password.clone().into(),
            })
            .await
            .map_err(hub_error)?;
    }
    let device = store.device_token(&hub, &args.user);
    let first = client
        .login_from_device(
            &args.user,
            &password,
            args.code.as_deref(),
            device.as_deref(),
        )
        .await;
    let asked_code = match &first {
        // The password was right and 2FA is on: ask for the code, as the console does.
        Err(ClientError::Hub(p))
            if p.code == ErrorCode::TwoFactorRequired && args.code.is_none() && interactive =>
        {
            Some(super::prompt::line("Code from your authenticator app: ")?)
        }
        _ => None,
    };
    let outcome = match asked_code {
        Some(code) => {
            client
                .login_from_device(&args.user, &password, Some(&code), device.as_deref())
                .await
        }
        None => first,
    };
    let (token, expires_at, user) = outcome.map_err(|e| match &e {
        ClientError::Hub(p) if p.code == ErrorCode::TwoFactorRequired => Failure {
            message: format!("{e} (tether login --code N)"),
            code: 1,
        },
        _ => Failure::from(e),
    })?;
    let fingerprint = normalize_fingerprint(client.fingerprint())?;
    store.trust(&hub, &fingerprint)?;
    store.save_login(StoredLogin {
        hub: hub.clone(),
        user: user.name.clone(),
        token,
        expires_at,
    })?;
    if args.json {
        return print_json(&serde_json::json!({
            "id": user.id,
            "hub": hub,
            "user": user,
            "guest": serde_json::Value::Null,
            "expires_at": expires_at,
            "fingerprint": fingerprint,
        }));
    }
    println!(
        "logged in to {hub} as {} ({}, team {}); certificate {fingerprint} pinned",
        user.name,
        user.role.as_str(),
        user.team
    );
    Ok(())
}

/// `tether login --guest`: support credentials (user, password, security code).
async fn guest_login(
    store: &LoginStore,
    hub: &str,
    client: &HubClient,
    args: &LoginArgs,
    password: &str,
) -> Result<(), Failure> {
    let Some(code) = args.code.as_deref() else {
        return Err(Failure {
            message: "a guest login needs the security code: --code NNNNNN".into(),
            code: 2,
        });
    };
    let login = client.guest_login(&args.user, password, code).await?;
    let fingerprint = normalize_fingerprint(client.fingerprint())?;
    store.trust(hub, &fingerprint)?;
    store.save_login(StoredLogin {
        hub: hub.to_owned(),
        user: login.user.name.clone(),
        token: login.token,
        expires_at: login.expires_at,
    })?;
    if args.json {
        return print_json(&serde_json::json!({
            "id": login.user.id,
            "hub": hub,
            "user": login.user,
            "guest": login.guest,
            "expires_at": login.expires_at,
            "fingerprint": fingerprint,
        }));
    }
    println!(
        "logged in to {hub} as guest {} for {} ({}) until {}; certificate {fingerprint} pinned",
        login.user.name,
        login.guest.target_label,
        login.guest.scopes.label(),
        when(login.expires_at)
    );
    Ok(())
}

async fn connect(paths: &Paths, hub: Option<&str>) -> Result<(HubClient, UserInfo), Failure> {
    let store = LoginStore::new(paths.state.clone());
    let login = match hub {
        Some(h) => store.login(h),
        None => store.last_login(),
    }
    .ok_or(Failure {
        message:
            "not logged in: run tether login --hub wss://HOST:PORT --user NAME --password-stdin"
                .into(),
        code: EXIT_NOT_LOGGED_IN,
    })?;
    let known = store.known_fingerprint(&login.hub).ok_or(Failure {
        message: format!(
            "no pinned certificate for {}: run tether login again",
            login.hub
        ),
        code: EXIT_NOT_LOGGED_IN,
    })?;
    let (client, _events) =
        HubClient::connect(&login.hub, Pin::Fingerprint(parse_fingerprint(&known)?)).await?;
    let me = client.resume(&login.token).await.map_err(hub_error)?;
    Ok((client, me))
}

pub async fn run(paths: &Paths, args: CtlArgs) -> Result<(), Failure> {
    let (client, me) = connect(paths, args.hub.as_deref()).await?;
    let json = args.json || args.jsonl;
    let list = ListOptions {
        format: Format::new(args.json, args.jsonl),
        limit: args.limit,
    };
    let ask = |body| async { client.request(body).await.map_err(hub_error) };
    match args.command {
        CtlCommand::Clients {
            command: ClientsCommand::List,
        } => {
            let fetch = |page| async {
                match ask(ConsoleRequest::ListClients { page }).await? {
                    ConsoleReply::Clients { clients, next, .. } => Ok((clients, next)),
                    _ => Err(Failure::from("unexpected answer")),
                }
            };
            ctl_list::print(list, fetch, &["ID", "NAME", "ADDED"], |c| {
                vec![c.id, c.name, when(c.created_at)]
            })
            .await?;
        }
        CtlCommand::Clients {
            command: ClientsCommand::Add { name },
        } => {
            let ConsoleReply::Client { client } = ask(ConsoleRequest::AddClient { name }).await?
            else {
                return Err("unexpected answer".into());
            };
            if json {
                return print_json(&client);
            }
            println!("added client {} ({})", client.name, client.id);
        }
        CtlCommand::Clients {
            command: ClientsCommand::Link { client, days },
        } => {
            let ConsoleReply::Link { link, url } = ask(ConsoleRequest::CreateLink {
                client,
                valid_days: days,
            })
            .await?
            else {
                return Err("unexpected answer".into());
            };
            if json {
                return print_json(&serde_json::json!({ "id": link.id, "url": url, "link": link }));
            }
            println!("{url}");
            eprintln!(
                "link {} valid until {}; give it to the person at the workstation:",
                link.id,
                when(link.expires_at)
            );
            eprintln!("  tether agent --link '{url}'");
        }
        CtlCommand::Clients {
            command: ClientsCommand::Links { client },
        } => {
            let fetch = |page| {
                let client = client.clone();
                async {
                    match ask(ConsoleRequest::ListLinks { client, page }).await? {
                        ConsoleReply::Links { links, next, .. } => Ok((links, next)),
                        _ => Err(Failure::from("unexpected answer")),
                    }
                }
            };
            let now = Utc::now();
            ctl_list::print(
                list,
                fetch,
                &["ID", "STATE", "USES", "CREATED", "EXPIRES"],
                |l| {
                    let state = if l.revoked {
                        "revoked"
                    } else if l.expires_at <= now {
                        "expired"
                    } else {
                        "valid"
                    };
                    vec![
                        l.id,
                        state.into(),
                        l.uses.to_string(),
                        when(l.created_at),
                        when(l.expires_at),
                    ]
                },
            )
            .await?;
        }
        CtlCommand::Clients {
            command: ClientsCommand::RevokeLink { link },
        } => {
            ask(ConsoleRequest::RevokeLink { link: link.clone() }).await?;
            if json {
                return print_json(&serde_json::json!({ "id": link, "revoked": true }));
            }
            println!("revoked link {link}");
        }
        CtlCommand::Workstations {
            command: WorkstationsCommand::List { client, filter },
        } => {
            let fetch = |page| {
                let (client, filter) = (client.clone(), filter.clone());
                async {
                    let body = ConsoleRequest::ListWorkstations {
                        client,
                        filter,
                        page,
                    };
                    match ask(body).await? {
                        ConsoleReply::Workstations {
                            workstations, next, ..
                        } => Ok((workstations, next)),
                        _ => Err(Failure::from("unexpected answer")),
                    }
                }
            };
            ctl_list::print(
                list,
                fetch,
                &[
                    "ID",
                    "HOSTNAME",
                    "CLIENT",
                    "OS",
                    "USER",
                    "PRESENCE",
                    "OTP",
                    "LAST SEEN",
                ],
                |w| {
                    vec![
                        w.id,
                        w.hostname,
                        w.client_name,
                        w.os,
                        w.user,
                        w.presence.label().into(),
                        super::ctl_otp::otp_cell(w.otp_required),
                        when(w.last_seen),
                    ]
                },
            )
            .await?;
        }
        CtlCommand::Audit {
            command: AuditCommand::List(filters),
        } => return super::ctl_twofa::audit(&client, list, filters).await,
        CtlCommand::TwoFa { command } => {
            return super::ctl_twofa::two_fa(&client, json, command).await;
        }
        CtlCommand::Users { command } => {
            return super::ctl_twofa::users(&client, json, list.limit, command).await;
        }
        CtlCommand::Settings { command } => {
            return super::ctl_twofa::settings(&client, json, command).await;
        }
        CtlCommand::Access { command } => {
            let (body, verb) = match command {
                AccessCommand::Request { workstation } => {
                    (ConsoleRequest::RequestAccess { workstation }, "requested")
                }
                AccessCommand::Withdraw { workstation } => {
                    (ConsoleRequest::WithdrawAccess { workstation }, "withdrew")
                }
            };
            let ConsoleReply::Workstation { workstation } = ask(body).await? else {
                return Err("unexpected answer".into());
            };
            if json {
                return print_json(&workstation);
            }
            println!(
                "{verb} unattended access to {} ({}): now {}",
                workstation.hostname,
                workstation.id,
                workstation.unattended.label()
            );
        }
        CtlCommand::Connect {
            workstation,
            secret_stdin,
            view_only,
            otp,
        } => {
            let secret = if secret_stdin {
                Some(read_secret_line()?.into())
            } else {
                None
            };
            let ConsoleReply::Session { session } = ask(ConsoleRequest::Connect {
                workstation,
                secret,
                view_only,
                otp: otp.map(Into::into),
            })
            .await?
            else {
                return Err("unexpected answer".into());
            };
            if json {
                return print_json(&session);
            }
            println!("{}", session.id);
            eprintln!(
                "session open on {} ({}{}{})",
                session.hostname,
                session.method.label(),
                if session.secrets.is_empty() {
                    ""
                } else {
                    ", with secret"
                },
                if session.view_only { ", view only" } else { "" }
            );
        }
        CtlCommand::Otp { command } => {
            return super::ctl_otp::otp(&client, json, command).await;
        }
        CtlCommand::Outbox { command } => {
            return super::ctl_otp::outbox(&client, json, list.limit, command).await;
        }
        CtlCommand::Workstations {
            command: WorkstationsCommand::RequireOtp { workstation, state },
        } => {
            return super::ctl_otp::require_workstation(&client, json, workstation, state).await;
        }
        CtlCommand::Groups {
            command:
                GroupsCommand::RequireOtp {
                    client: group,
                    state,
                },
        } => {
            return super::ctl_otp::require_group(&client, json, group, state).await;
        }
        CtlCommand::Sessions {
            command: SessionsCommand::List,
        } => {
            let sessions = ctl_list::collect(list.limit, |page| async {
                match ask(ConsoleRequest::ListSessions { page }).await? {
                    ConsoleReply::Sessions { sessions, next, .. } => Ok((sessions, next)),
                    _ => Err(Failure::from("unexpected answer")),
                }
            })
            .await?;
            if json {
                return print_json(&sessions);
            }
            let rows = sessions
                .into_iter()
                .map(|s| {
                    vec![
                        s.id,
                        s.hostname,
                        s.technician.name,
                        s.method.label().into(),
                        if s.view_only {
                            "view".into()
                        } else {
                            "control".into()
                        },
                        when(s.started_at),
                    ]
                })
                .collect();
            print_table(
                &["ID", "WORKSTATION", "TECHNICIAN", "METHOD", "MODE", "SINCE"],
                rows,
            );
        }
        CtlCommand::Sessions {
            command: SessionsCommand::End { session },
        } => {
            ask(ConsoleRequest::EndSession {
                session: session.clone(),
            })
            .await?;
            if json {
                return print_json(&serde_json::json!({ "id": session, "ended": true }));
            }
            println!("ended session {session}");
        }
        CtlCommand::Session {
            command:
                SessionCommand::Snapshot {
                    workstation,
                    out,
                    secret_stdin,
                    otp,
                },
        } => {
            let shot = snapshot(&client, &me, &workstation, &out, secret_stdin, otp).await?;
            if json {
                return print_json(&shot);
            }
            println!(
                "saved {}x{} screen of {} to {}",
                shot.width,
                shot.height,
                shot.hostname,
                out.display()
            );
        }
        CtlCommand::Credentials { command } => {
            return credentials::run(&client, json, list.limit, command).await;
        }
        CtlCommand::Groups {
            command: GroupsCommand::List,
        } => {
            let groups = ctl_list::collect(list.limit, |page| async {
                match ask(ConsoleRequest::ListGroups { page }).await? {
                    ConsoleReply::Groups { groups, next, .. } => Ok((groups, next)),
                    _ => Err(Failure::from("unexpected answer")),
                }
            })
            .await?;
            if json {
                return print_json(&groups);
            }
            let yes = |b: bool| if b { "required" } else { "-" }.to_owned();
            let rows = groups
                .into_iter()
                .map(|g| {
                    let name = g.client_name.unwrap_or_else(|| "(whole team)".into());
                    vec![
                        name,
                        yes(g.requires.passcode),
                        yes(g.requires.password),
                        yes(g.otp),
                    ]
                })
                .collect();
            print_table(&["GROUP", "PASSCODE", "PASSWORD", "OTP"], rows);
        }
        CtlCommand::Groups {
            command:
                GroupsCommand::Set {
                    client,
                    passcode,
                    password,
                },
        } => {
            let requires = SecretRequirements {
                passcode: passcode == OnOff::On,
                password: password == OnOff::On,
            };
            ask(ConsoleRequest::SetGroupDefaults {
                client: client.clone(),
                requires,
            })
            .await?;
            if json {
                return print_json(&serde_json::json!({ "client": client, "requires": requires }));
            }
            println!(
                "security defaults of {} set: {} required",
                client.as_deref().unwrap_or("the team"),
                requires.label()
            );
        }
    }
    Ok(())
}

/// What `ctl session snapshot` did.
#[derive(Debug, Serialize)]
struct Snapshot {
    workstation: String,
    hostname: String,
    session: String,
    /// A view-only session was opened for the grab (and ended after it).
    opened_session: bool,
    width: u32,
    height: u32,
    file: std::path::PathBuf,
}

/// How long to wait for the whole first frame.
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A workstation of the team by id or host name, page by page until found.
async fn find_workstation(
    client: &HubClient,
    workstation: &str,
) -> Result<Option<WorkstationInfo>, Failure> {
    let mut after = None;
    loop {
        let body = ConsoleRequest::ListWorkstations {
            client: None,
            filter: None,
            page: PageRequest { after, limit: None },
        };
        let ConsoleReply::Workstations {
            workstations, next, ..
        } = client.request(body).await.map_err(hub_error)?
        else {
            return Err("unexpected answer".into());
        };
        if let Some(ws) = workstations
            .into_iter()
            .find(|w| w.id == workstation || w.hostname == workstation)
        {
            return Ok(Some(ws));
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => return Ok(None),
        }
    }
}

async fn snapshot(
    client: &HubClient,
    me: &UserInfo,
    workstation: &str,
    out: &std::path::Path,
    secret_stdin: bool,
    otp: Option<String>,
) -> Result<Snapshot, Failure> {
    let ws = find_workstation(client, workstation)
        .await?
        .ok_or_else(|| Failure::from(format!("no workstation {workstation} in your team")))?;
    let Some(screen) = ws.screen else {
        return Err(format!(
            "{} has no screen (a terminal session): nothing to take a picture of",
            ws.hostname
        )
        .into());
    };
    let sessions = ctl_list::collect(None, |page| async {
        match client.request(ConsoleRequest::ListSessions { page }).await {
            Ok(ConsoleReply::Sessions { sessions, next, .. }) => Ok((sessions, next)),
            Ok(_) => Err(Failure::from("unexpected answer")),
            Err(e) => Err(hub_error(e)),
        }
    })
    .await?;
    let mine: Option<SessionInfo> = sessions.into_iter().find(|s| {
        // By name: user names are unique on a hub, e-mails need not be (a guest carries the
        // issuing technician's).
        s.workstation_id == ws.id && s.technician.name == me.name && s.ended_at.is_none()
    });
    let (session, opened) = match mine {
        Some(s) => (s, false),
        None => {
            let secret = if secret_stdin {
                Some(read_secret_line()?.into())
            } else {
                None
            };
            let ConsoleReply::Session { session } = client
                .request(ConsoleRequest::Connect {
                    workstation: ws.id.clone(),
                    secret,
                    otp: otp.map(Into::into),
                    view_only: true,
                })
                .await
                .map_err(hub_error)?
            else {
                return Err("unexpected answer".into());
            };
            (session, true)
        }
    };
    let grabbed = grab(client, &session, screen.width, screen.height).await;
    if opened {
        // Ended even when the grab failed: the session was only for it.
        if let Err(e) = client
            .request(ConsoleRequest::EndSession {
                session: session.id.clone(),
            })
            .await
        {
            tracing::warn!("the snapshot's session did not end: {e}");
        }
    }
    let picture = grabbed?;
    let png = crate::console::desktop::png_bytes(&picture)
        .map_err(|e| format!("cannot encode the picture: {e}"))?;
    std::fs::write(out, png).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(Snapshot {
        workstation: ws.id,
        hostname: ws.hostname,
        session: session.id,
        opened_session: opened,
        width: picture.width(),
        height: picture.height(),
        file: out.to_path_buf(),
    })
}

/// Watch `session` at `width` x `height` until one whole picture has arrived, then stop.
async fn grab(
    client: &HubClient,
    session: &SessionInfo,
    width: u32,
    height: u32,
) -> Result<crate::frame::Framebuffer, Failure> {
    use crate::protocol::ViewSpec;
    use crate::protocol::stream::{self, StreamFrame};

    let mut frames = client
        .take_frames()
        .ok_or_else(|| Failure::from("frames already taken"))?;
    let ConsoleReply::Watching { stream } = client
        .request(ConsoleRequest::Watch {
            session: session.id.clone(),
            view: ViewSpec::Pixels { width, height },
        })
        .await
        .map_err(hub_error)?
    else {
        return Err("unexpected answer".into());
    };
    let deadline = tokio::time::Instant::now() + SNAPSHOT_TIMEOUT;
    let mut picture = crate::frame::Framebuffer::new(0, 0);
    // The first update is the whole picture, maybe in several frames (bands): count pixels.
    let mut covered: u64 = 0;
    let result = loop {
        let bytes = match tokio::time::timeout_at(deadline, frames.recv()).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => break Err(Failure::from("the connection to the hub closed")),
            Err(_) => {
                break Err(Failure::from(format!(
                    "no whole picture from {} within {} s",
                    session.hostname,
                    SNAPSHOT_TIMEOUT.as_secs()
                )));
            }
        };
        let Ok(StreamFrame::Pixels {
            stream: from,
            seq,
            width: w,
            height: h,
            rects,
            ..
        }) = stream::decode(&bytes)
        else {
            continue;
        };
        if from != stream {
            continue;
        }
        if (picture.width(), picture.height()) != (w, h) {
            picture = crate::frame::Framebuffer::new(w, h);
            covered = 0;
        }
        let bounds = picture.bounds();
        for update in &rects {
            let r = update.rect;
            let fits = r.right() <= bounds.right() && r.bottom() <= bounds.bottom();
            if !fits || update.rgb.len() as u64 != u64::from(r.width) * u64::from(r.height) * 3 {
                continue;
            }
            for (i, px) in update.rgb.chunks_exact(3).enumerate() {
                let i = i as u32;
                picture.set_pixel(
                    r.x + i % r.width,
                    r.y + i / r.width,
                    [px[0], px[1], px[2], 255],
                );
            }
            covered += u64::from(r.width) * u64::from(r.height);
        }
        let _ = client.send_nowait(ConsoleRequest::Ack { stream, seq });
        if w > 0 && h > 0 && covered >= u64::from(w) * u64::from(h) {
            break Ok(std::mem::replace(
                &mut picture,
                crate::frame::Framebuffer::new(0, 0),
            ));
        }
    };
    let _ = client.send_nowait(ConsoleRequest::Unwatch { stream });
    result
}
