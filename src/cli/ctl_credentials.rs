//! `tether ctl credentials`: time-boxed support credentials for guests.

use clap::Subcommand;

use super::{Failure, hub_error, print_json, print_table, when};
use crate::client::HubClient;
use crate::protocol::credentials::parse_duration_minutes;
use crate::protocol::{
    ConsoleReply, ConsoleRequest, CredentialInfo, CredentialScopes, CredentialTarget,
    RevealedCredential,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// Watch only: keyboard and mouse refused.
    View,
    /// Keyboard and mouse.
    Control,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Issue credentials for one workstation (id or host name), or with --client for all of
    /// one client's. Prints the password and security code: the only time they are shown.
    Issue {
        #[arg(required_unless_present = "client", conflicts_with = "client")]
        workstation: Option<String>,
        /// Every workstation of this client (id or name).
        #[arg(long)]
        client: Option<String>,
        /// How long they last: 1h, 4h, 8h, 24h, 72h, or anything up to 7d (e.g. 90m, 2d).
        #[arg(long, default_value = "8h")]
        duration: String,
        #[arg(long, value_enum, default_value = "view")]
        scope: Scope,
        /// The guest may see chat.
        #[arg(long)]
        chat: bool,
        /// The guest may see the session history of the target.
        #[arg(long)]
        history: bool,
    },
    /// Your team's credentials: active ones, and those ended in the last 7 days.
    List,
    /// Revoke credentials: their guests are disconnected at once.
    Revoke { credential: String },
    /// Revoke and issue new ones for the same target, duration and scopes.
    Regenerate { credential: String },
}

fn print_reveal(reveal: &RevealedCredential, credential: &CredentialInfo) {
    println!("{}", reveal.block());
    eprintln!(
        "support credentials {} for {} ({}); shown only now. The guest logs in with:",
        credential.id,
        credential.target_label,
        credential.scopes.label()
    );
    eprintln!(
        "  tether login --guest --hub {} --fingerprint {} --user {} --code CODE --password-stdin",
        reveal.hub, reveal.fingerprint, reveal.user
    );
}

fn issued(reply: ConsoleReply, json: bool) -> Result<(), Failure> {
    match reply {
        ConsoleReply::CredentialsIssued { credential, reveal } => {
            if json {
                return print_json(&serde_json::json!({
                    "id": credential.id,
                    "credential": credential,
                    "reveal": reveal,
                }));
            }
            print_reveal(&reveal, &credential);
            Ok(())
        }
        ConsoleReply::CredentialsAlreadyActive {
            credential,
            message,
        } => {
            if json {
                print_json(&serde_json::json!({
                    "id": credential.id,
                    "already_active": true,
                    "message": message,
                    "credential": credential,
                }))?;
            }
            Err(Failure {
                message: format!(
                    "{message}: revoke them (tether ctl credentials revoke {id}) or regenerate them \
                     (tether ctl credentials regenerate {id})",
                    id = credential.id
                ),
                code: 1,
            })
        }
        _ => Err("unexpected answer".into()),
    }
}

pub async fn run(
    client: &HubClient,
    json: bool,
    limit: Option<u64>,
    command: CredentialsCommand,
) -> Result<(), Failure> {
    let ask = |body| async { client.request(body).await.map_err(hub_error) };
    match command {
        CredentialsCommand::Issue {
            workstation,
            client: for_client,
            duration,
            scope,
            chat,
            history,
        } => {
            let minutes = parse_duration_minutes(&duration)
                .map_err(|message| Failure { message, code: 2 })?;
            let target = match (workstation, for_client) {
                (Some(workstation), None) => CredentialTarget::Workstation { workstation },
                (None, Some(client)) => CredentialTarget::Client { client },
                _ => {
                    return Err(Failure {
                        message: "name a workstation, or a client with --client".into(),
                        code: 2,
                    });
                }
            };
            let scopes = CredentialScopes {
                control: scope == Scope::Control,
                chat,
                history,
            };
            let reply = ask(ConsoleRequest::IssueCredentials {
                target,
                minutes,
                scopes,
            })
            .await?;
            issued(reply, json)
        }
        CredentialsCommand::List => {
            let credentials = super::super::ctl_list::collect(limit, |page| async {
                match ask(ConsoleRequest::ListCredentials { page }).await? {
                    ConsoleReply::Credentials {
                        credentials, next, ..
                    } => Ok((credentials, next)),
                    _ => Err(Failure::from("unexpected answer")),
                }
            })
            .await?;
            if json {
                return print_json(&credentials);
            }
            let rows = credentials
                .into_iter()
                .map(|c| {
                    vec![
                        c.id,
                        c.user,
                        format!("{} {}", c.target.kind(), c.target_label),
                        c.scopes.label(),
                        c.state.label().into(),
                        c.issued_by,
                        when(c.expires_at),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID",
                    "GUEST",
                    "TARGET",
                    "SCOPES",
                    "STATE",
                    "ISSUED BY",
                    "EXPIRES",
                ],
                rows,
            );
            Ok(())
        }
        CredentialsCommand::Revoke { credential } => {
            let ConsoleReply::Credential { credential } =
                ask(ConsoleRequest::RevokeCredentials { credential }).await?
            else {
                return Err("unexpected answer".into());
            };
            if json {
                return print_json(&credential);
            }
            println!(
                "revoked support credentials {} ({} for {})",
                credential.id, credential.user, credential.target_label
            );
            Ok(())
        }
        CredentialsCommand::Regenerate { credential } => {
            let reply = ask(ConsoleRequest::RegenerateCredentials { credential }).await?;
            issued(reply, json)
        }
    }
}
