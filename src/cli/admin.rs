//! `tether admin`: operations on a hub's data directory, for headless operators and tests.

use std::path::PathBuf;

use clap::Subcommand;

use super::{Failure, read_secret_line};
use crate::hub::store::users::UserStore;
use crate::hub::store::{AuditVerdict, NewAudit, NewUser, SqliteStore, Store};
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
    /// Check the audit log's hash chain; names the first bad record.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole chain.
    Verify,
}

pub fn run(paths: &Paths, args: AdminArgs) -> Result<(), Failure> {
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
            let user = store.create_user(NewUser {
                name,
                email,
                role,
                team,
                password_hash,
            })?;
            store.append_audit(NewAudit {
                at: chrono::Utc::now(),
                actor: "admin-cli".into(),
                actor_email: None,
                team_id: Some(user.team_id.clone()),
                action: "user.create".into(),
                target: Some(user.id.clone()),
                detail: serde_json::json!({ "name": user.name, "role": user.role, "team": user.team }),
            })?;
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
            store.reset_login_failures(&user.info.id)?;
            store.append_audit(NewAudit {
                at: chrono::Utc::now(),
                actor: "admin-cli".into(),
                actor_email: None,
                team_id: Some(user.info.team_id.clone()),
                action: "user.unlock".into(),
                target: Some(user.info.id.clone()),
                detail: serde_json::json!({ "name": user.info.name, "failures": user.failed_logins }),
            })?;
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
            store.reset_two_factor(&user.info.id)?;
            // The running hub reads this and closes the user's open consoles within a second.
            let revoked = store.revoke_user_logins(
                &user.info.id,
                crate::hub::store::users::Revocation::TwoFactorReset,
            )?;
            store.append_audit(NewAudit {
                at: chrono::Utc::now(),
                actor: "admin-cli".into(),
                actor_email: None,
                team_id: Some(user.info.team_id.clone()),
                action: "2fa.reset".into(),
                target: Some(user.info.name.clone()),
                detail: serde_json::json!({ "name": user.info.name, "was_active": was_active, "logins_revoked": revoked }),
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
        AdminCommand::Audit {
            command: AuditCommand::Verify,
        } => match store.verify_audit()? {
            AuditVerdict::Intact { records } => {
                println!("audit log intact: {records} records, chain verified");
                Ok(())
            }
            AuditVerdict::Broken { id, reason } => Err(Failure {
                message: format!("audit log broken at record {id}: {reason}"),
                code: 1,
            }),
        },
    }
}
