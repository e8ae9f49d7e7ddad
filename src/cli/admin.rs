//! `tether admin`: operations on a hub's data directory, for headless operators and tests.

use crate::hub::audit::AuditEvent;
use std::path::PathBuf;

use clap::Subcommand;

use super::{Failure, read_secret_line};
use crate::hub::store::{
    AuditReport, AuditedChange, ChangeOutcome, NewAudit, NewUser, SqliteStore, Store,
};
use crate::paths::Paths;
use crate::protocol::Role;

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The hub's data directory. Default: the data dir's `hub/`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a technician, team admin or hub owner (`--role owner`: every team and the
    /// hub-wide settings; made only here, never over the network).
    CreateUser {
        name: String,
        #[arg(long)]
        role: Role,
        /// Team name; created if new.
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Clear an account's failed-login count and lock (after too many failures).
    UnlockUser { name: String },
    /// Turn an account's 2FA off (a lost phone); where 2FA is required, they enrol again.
    #[command(name = "reset-2fa")]
    Reset2fa { name: String },
    /// The audit log: verify its keyed chain and signed head, export it for an auditor.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole chain against its signed head; names truncation, deletion, reordering,
    /// edited records and a recomputed chain. Exits non-zero on any.
    Verify,
    /// Write the log as JSON lines an auditor can check offline (README, "Audit log"). Audited.
    Export {
        /// From the first record at or after this time: RFC 3339 or a date (2026-01-31).
        #[arg(long, value_parser = crate::protocol::parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Include the chain key, so links can be checked offline. Whoever holds it can compute
        /// links (not sign heads): give it only to the auditor. Audited as such.
        #[arg(long)]
        with_key: bool,
    },
    /// Check an export offline, without the hub's data: the head's signature under the public
    /// key you pinned, then every link under the chain key.
    Check {
        /// The export (JSON lines).
        file: PathBuf,
        /// The hub's audit public key (hex), as `verify` printed it when you pinned it.
        #[arg(long)]
        public_key: String,
        /// The chain key (hex), if the export does not carry it.
        #[arg(long)]
        chain_key: Option<String>,
    },
    /// After `verify` found damage and you have kept a copy: sign a new head over the log as
    /// it is, so the hub audits again. The reseal and what was found are the first record.
    Reseal {
        /// Why (kept in the record).
        #[arg(long)]
        reason: String,
    },
}

/// Print a report; a failure (exit 1) when anything was found.
fn report(what: &str, report: &AuditReport, public_key: &str) -> Result<(), Failure> {
    for note in &report.notes {
        println!("note: {note}");
    }
    if report.intact() {
        println!(
            "{what} intact: {} records, chain verified (keyed from record {}), head signed by {public_key}",
            report.records, report.keyed_from
        );
        return Ok(());
    }
    let found: Vec<String> = report.findings.iter().map(|f| format!("  {f}")).collect();
    Err(Failure {
        message: format!(
            "{what} NOT intact ({} records):\n{}",
            report.records,
            found.join("\n")
        ),
        code: 1,
    })
}

fn bad_hex(what: &str) -> Failure {
    Failure {
        message: format!("the {what} is not hex"),
        code: 2,
    }
}

fn check_export(
    file: &std::path::Path,
    public_key: &str,
    chain_key: Option<&str>,
) -> Result<(), Failure> {
    use std::io::BufRead;
    let pinned = hex::decode(public_key.trim()).map_err(|_| bad_hex("public key"))?;
    let text = std::fs::File::open(file).map_err(|e| Failure {
        message: format!("{}: {e}", file.display()),
        code: 1,
    })?;
    let lines: Vec<Result<String, String>> = std::io::BufReader::new(text)
        .lines()
        .map(|l| l.map_err(|e| e.to_string()))
        .collect();
    let carried =
        lines
            .first()
            .and_then(|l| l.as_ref().ok())
            .and_then(|l| match serde_json::from_str(l) {
                Ok(crate::hub::audit::ExportLine::Header { chain_key, .. }) => chain_key,
                _ => None,
            });
    let Some(key) = chain_key.map(str::to_owned).or(carried) else {
        return Err(Failure {
            message: "the export carries no chain key: pass --chain-key (or export --with-key)"
                .into(),
            code: 2,
        });
    };
    let key = hex::decode(key.trim()).map_err(|_| bad_hex("chain key"))?;
    let found = crate::hub::audit::verify_export(lines, &pinned, &key).map_err(|e| Failure {
        message: format!("{}: {e}", file.display()),
        code: 1,
    })?;
    report("audit export", &found, public_key)
}

pub fn run(paths: &Paths, args: AdminArgs) -> Result<(), Failure> {
    // An export is checked without any hub data (on the auditor's machine).
    if let AdminCommand::Audit {
        command:
            AuditCommand::Check {
                file,
                public_key,
                chain_key,
            },
    } = &args.command
    {
        return check_export(file, public_key, chain_key.as_deref());
    }
    let dir = args.data.unwrap_or_else(|| paths.hub_data());
    let store = SqliteStore::open_dir(&dir)?;
    match args.command {
        AdminCommand::CreateUser {
            name,
            role,
            team,
            email,
            password_stdin: _,
        } => {
            let name = name.trim().to_owned();
            if name.is_empty()
                || name.len() > 64
                || name.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Failure {
                    message: "a user name has 1 to 64 characters and no spaces".into(),
                    code: 2,
                });
            }
            if !email.contains('@') {
                return Err(Failure {
                    message: format!("{email:?} is not an e-mail address"),
                    code: 2,
                });
            }
            let password = read_secret_line()?;
            if let Some(problem) = crate::secrets::password_problem(&password) {
                return Err(Failure {
                    message: problem,
                    code: 2,
                });
            }
            let password_hash = crate::secrets::hash_password(&password)?;
            let change = AuditedChange::CreateUser {
                new: Box::new(NewUser {
                    name,
                    email,
                    role,
                    team,
                    password_hash,
                }),
            };
            // The user and their record in one commit: a failure to audit creates nobody.
            let outcome = store.commit_audited(change, &|outcome| {
                let ChangeOutcome::User(user) = outcome else {
                    return Vec::new();
                };
                vec![NewAudit {
                    at: chrono::Utc::now(),
                    actor: "admin-cli".into(),
                    actor_email: None,
                    team_id: Some(user.team_id.clone()),
                    action: AuditEvent::UserCreate,
                    target: Some(user.name.clone()),
                    detail: serde_json::json!({ "name": user.name, "user_id": user.id, "role": user.role, "team": user.team }),
                }]
            })?;
            let ChangeOutcome::User(user) = outcome else {
                return Err(Failure {
                    message: "the store did not return the new user".into(),
                    code: 1,
                });
            };
            println!(
                "created {} {} ({}) in team {}",
                user.role.as_str(),
                user.name,
                user.id,
                user.team
            );
            Ok(())
        }
        AdminCommand::UnlockUser { name } => {
            let user = store.user_by_name(&name)?.ok_or(Failure {
                message: format!("no user named {name:?}"),
                code: 1,
            })?;
            let record = NewAudit {
                at: chrono::Utc::now(),
                actor: "admin-cli".into(),
                actor_email: None,
                team_id: Some(user.info.team_id.clone()),
                action: AuditEvent::UserUnlock,
                target: Some(user.info.id.clone()),
                detail: serde_json::json!({ "name": user.info.name, "failures": user.failed_logins }),
            };
            let change = AuditedChange::UnlockUser {
                user: user.info.id.clone(),
            };
            store.commit_audited(change, &|_| vec![record.clone()])?;
            println!(
                "unlocked {} (after {} failed logins)",
                user.info.name, user.failed_logins
            );
            Ok(())
        }
        AdminCommand::Reset2fa { name } => {
            let user = store.user_by_name(&name)?.ok_or(Failure {
                message: format!("no user named {name:?}"),
                code: 1,
            })?;
            let was_active = store.two_factor(&user.info.id)?.secret.is_some();
            // 2FA off, the user's login tokens revoked and the record: one commit.
            let record = NewAudit {
                at: chrono::Utc::now(),
                actor: "admin-cli".into(),
                actor_email: None,
                team_id: Some(user.info.team_id.clone()),
                action: AuditEvent::TwoFactorReset,
                target: Some(user.info.name.clone()),
                detail: serde_json::json!({ "name": user.info.name, "was_active": was_active }),
            };
            let change = AuditedChange::ResetTwoFactor {
                user: user.info.id.clone(),
            };
            store.commit_audited(change, &|o| {
                let mut record = record.clone();
                if let Some(detail) = record.detail.as_object_mut() {
                    detail.insert("logins_revoked".into(), o.rows().into());
                }
                vec![record]
            })?;
            println!(
                "2FA reset for {}{}",
                user.info.name,
                if was_active {
                    ""
                } else {
                    " (it was not active)"
                }
            );
            Ok(())
        }
        AdminCommand::Audit { command } => audit(&store, command),
    }
}

fn audit(store: &SqliteStore, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify => report(
            "audit log",
            &store.verify_audit()?,
            &store.audit_public_key(),
        ),
        AuditCommand::Export {
            since,
            out,
            with_key,
        } => {
            // Audited first, so the export holds its own record.
            store.append_audit(NewAudit {
                at: chrono::Utc::now(),
                actor: "admin-cli".into(),
                actor_email: None,
                team_id: None,
                action: if with_key {
                    AuditEvent::AuditExportWithKey
                } else {
                    AuditEvent::AuditExport
                },
                target: out.as_ref().map(|p| p.display().to_string()),
                detail: serde_json::json!({ "since": since, "with_key": with_key }),
            })?;
            let n = match &out {
                Some(path) => {
                    let mut file = tempfile::NamedTempFile::new_in(
                        path.parent()
                            .filter(|p| !p.as_os_str().is_empty())
                            .unwrap_or(std::path::Path::new(".")),
                    )?;
                    let n = store.export_audit(
                        since,
                        with_key,
                        &mut std::io::BufWriter::new(file.as_file_mut()),
                    )?;
                    file.persist(path).map_err(|e| e.error)?;
                    n
                }
                None => store.export_audit(since, with_key, &mut std::io::stdout().lock())?,
            };
            eprintln!(
                "exported {n} audit records; pin the head's public key {}",
                store.audit_public_key()
            );
            Ok(())
        }
        AuditCommand::Check {
            file,
            public_key,
            chain_key,
        } => check_export(&file, &public_key, chain_key.as_deref()),
        AuditCommand::Reseal { reason } => {
            let record = store.reseal_audit("admin-cli", &reason)?;
            println!("audit head resealed at record {}", record.id);
            Ok(())
        }
    }
}
