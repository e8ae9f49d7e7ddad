//! `tether ctl users add | role | disable | enable | remove` (issue 11): the user lifecycle,
//! for admins of the team.

use super::Failure;
use super::ctl_output::{hub_error, print_json};
use super::read_secret_line;
use crate::client::HubClient;
use crate::protocol::{ConsoleReply, ConsoleRequest, Role};

/// A lifecycle change, as `UsersCommand` parsed it.
pub enum Change {
    Add {
        name: String,
        role: Role,
        email: Option<String>,
        password_stdin: bool,
    },
    Role {
        name: String,
        role: Role,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    Remove {
        name: String,
    },
}

pub async fn run(client: &HubClient, json: bool, change: Change) -> Result<(), Failure> {
    let ask = |body| async { client.request(body).await.map_err(hub_error) };
    let (request, name, done) = match change {
        Change::Add {
            name,
            role,
            email,
            password_stdin,
        } => {
            let password = match password_stdin {
                true => Some(read_secret_line()?.into()),
                false => None,
            };
            let reply = ask(ConsoleRequest::AddUser {
                name,
                role,
                email,
                password,
            })
            .await?;
            let ConsoleReply::UserAdded { user, enrolment } = reply else {
                return Err("unexpected answer".into());
            };
            if json {
                return print_json(&serde_json::json!({
                    "user": user,
                    "enrolment": enrolment.as_ref().map(|e| serde_json::json!({
                        "code": e.code.expose(),
                        "expires_at": e.expires_at,
                    })),
                }));
            }
            println!(
                "added {} {} to team {}",
                user.role.as_str(),
                user.name,
                user.team
            );
            if let Some(e) = enrolment {
                println!(
                    "enrolment code (shown only now; valid until {}): {}",
                    e.expires_at.format("%Y-%m-%d %H:%M UTC"),
                    e.code.expose()
                );
                println!(
                    "give it to {} privately; they set their password with: tether login --hub URL --user {} --enrol CODE --password-stdin",
                    user.name, user.name
                );
            }
            return Ok(());
        }
        Change::Role { name, role } => (
            ConsoleRequest::SetUserRole {
                user: name.clone(),
                role,
            },
            name,
            format!("is now {}; their open consoles were closed", role.as_str()),
        ),
        Change::Disable { name } => (
            ConsoleRequest::DisableUser { user: name.clone() },
            name,
            "is disabled; their logins and open consoles were ended".to_owned(),
        ),
        Change::Enable { name } => (
            ConsoleRequest::EnableUser { user: name.clone() },
            name,
            "is enabled (and unlocked)".to_owned(),
        ),
        Change::Remove { name } => (
            ConsoleRequest::RemoveUser { user: name.clone() },
            name,
            "is removed; their name stays in the audit log".to_owned(),
        ),
    };
    ask(request).await?;
    if json {
        return print_json(&serde_json::json!({ "user": name, "done": done }));
    }
    println!("{name} {done}");
    Ok(())
}
