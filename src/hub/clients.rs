//! The team's directory: clients, enrolment links, workstation listings and the groups'
//! security defaults. Requests arrive here already authorized (hub/dispatch.rs) and act in the
//! asking user's team only: another team's client is "not found".

use super::Hub;
use super::pager;
use super::store::{
    AuditedChange, ChangeOutcome, NewLink, WorkstationFilter, WorkstationKey, workstation_key,
};
use crate::hub::audit::AuditEvent;
use crate::protocol::{
    ClientId, ConsoleReply, EnrolmentLink, GroupDefaults, HubEvent, LinkId, PageRequest,
    ProtocolError, SecretRequirements, UserInfo,
};
use crate::secrets;

/// A client name as typed: trimmed, 1 to 100 characters, no control characters.
pub(super) fn client_name(name: &str) -> Result<String, ProtocolError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ProtocolError::bad_request(
            "a client name has 1 to 100 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}

/// The team's clients.
pub(super) async fn list_clients(
    hub: &Hub,
    user: &UserInfo,
    page: PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let team = user.team_id.clone();
    let clients = hub.db(move |s| s.clients(&team)).await?;
    clients_page(clients, &page)
}

/// One page of `clients`, in list order (name in any case, then id).
pub(super) fn clients_page(
    clients: Vec<crate::protocol::ClientInfo>,
    page: &PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let total = clients.len() as u64;
    let page = pager::page_in_memory("clients", clients, page, |c| {
        (c.name.to_lowercase(), c.id.clone())
    })?;
    Ok(ConsoleReply::Clients {
        clients: page.rows,
        next: page.next,
        total: Some(total),
    })
}

/// A new client of the team.
pub(super) async fn add_client(
    hub: &Hub,
    user: &UserInfo,
    name: String,
) -> Result<ConsoleReply, ProtocolError> {
    let team = user.team_id.clone();
    let name = client_name(&name)?;
    let id = secrets::new_id("cl").map_err(|_| ProtocolError::internal())?;
    let at = hub.now();
    let detail = serde_json::json!({ "name": name });
    let record = hub.user_record(user, AuditEvent::ClientAdd, Some(id.clone()), detail);
    let change = AuditedChange::CreateClient {
        id,
        team: team.clone(),
        name,
        at,
    };
    let ChangeOutcome::Client(client) = hub.commit(change, move |_| vec![record.clone()]).await?
    else {
        return Err(ProtocolError::internal());
    };
    hub.publish(
        &team,
        HubEvent::Client {
            client: client.clone(),
        },
    );
    Ok(ConsoleReply::Client { client })
}

/// A new enrolment link for one of the team's clients (`valid_days`: 7 by default).
pub(super) async fn create_link(
    hub: &Hub,
    user: &UserInfo,
    client: ClientId,
    valid_days: Option<u32>,
) -> Result<ConsoleReply, ProtocolError> {
    let team = user.team_id.clone();
    let days = valid_days.unwrap_or(hub.limits.default_link_days);
    if days == 0 || days > hub.limits.max_link_days {
        return Err(ProtocolError::bad_request(format!(
            "a link is valid for 1 to {} days",
            hub.limits.max_link_days
        )));
    }
    let t = team.clone();
    let client = hub
        .db(move |s| s.client(&t, &client))
        .await?
        .ok_or_else(|| ProtocolError::not_found("client"))?;
    let token = secrets::new_token().map_err(|_| ProtocolError::internal())?;
    let now = hub.now();
    let new = NewLink {
        id: secrets::new_id("ln").map_err(|_| ProtocolError::internal())?,
        client_id: client.id.clone(),
        token_hash: secrets::hash_token(&token),
        created_by: user.id.clone(),
        created_at: now,
        expires_at: now + chrono::Duration::days(i64::from(days)),
    };
    let detail =
        serde_json::json!({ "link": new.id, "expires_at": new.expires_at, "client": client.name });
    let record = hub.user_record(user, AuditEvent::LinkCreate, Some(client.id), detail);
    let change = AuditedChange::CreateLink(new);
    let ChangeOutcome::Link(link) = hub.commit(change, move |_| vec![record.clone()]).await? else {
        return Err(ProtocolError::internal());
    };
    let url = EnrolmentLink {
        hub: hub.public_addr().to_owned(),
        token,
        fingerprint: hub.fingerprint().to_owned(),
    }
    .to_string();
    Ok(ConsoleReply::Link { link, url })
}

/// The enrolment links of one of the team's clients, newest first.
pub(super) async fn list_links(
    hub: &Hub,
    user: &UserInfo,
    client: ClientId,
    page: PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let team = user.team_id.clone();
    let t = team.clone();
    let links = hub
        .db(move |s| match s.client(&t, &client)? {
            Some(c) => s.links(&c.id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ProtocolError::not_found("client"))?;
    let total = links.len() as u64;
    // Newest first, as the store lists them.
    let page = pager::page_in_memory("links", links, &page, |l| {
        (std::cmp::Reverse(l.created_at), l.id.clone())
    })?;
    Ok(ConsoleReply::Links {
        links: page.rows,
        next: page.next,
        total: Some(total),
    })
}

/// Revoke one of the team's enrolment links.
pub(super) async fn revoke_link(
    hub: &Hub,
    user: &UserInfo,
    link: LinkId,
) -> Result<ConsoleReply, ProtocolError> {
    let change = AuditedChange::RevokeLink {
        team: user.team_id.clone(),
        link,
    };
    let record = hub.user_record(user, AuditEvent::LinkRevoke, None, serde_json::json!({}));
    let outcome = hub
        .commit(change, move |outcome| match outcome {
            ChangeOutcome::Link(revoked) => {
                let mut record = record.clone();
                record.target = Some(revoked.id.clone());
                record.detail = serde_json::json!({ "client": revoked.client_id });
                vec![record]
            }
            _ => Vec::new(),
        })
        .await?;
    if !outcome.changed() {
        return Err(ProtocolError::not_found("link"));
    }
    Ok(ConsoleReply::Done)
}

/// The team's groups and their security defaults.
pub(super) async fn list_groups(
    hub: &Hub,
    user: &UserInfo,
    page: PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let team = user.team_id.clone();
    let groups = hub
        .db(move |s| {
            let clients = s.clients(&team)?;
            let name = |id: &str| clients.iter().find(|c| c.id == id).map(|c| c.name.clone());
            let otp = s.otp_groups(&team)?;
            let mut groups: Vec<GroupDefaults> = s
                .list_security_defaults(&team)?
                .into_iter()
                .map(|(client_id, requires)| GroupDefaults {
                    client_name: client_id.as_deref().and_then(name),
                    otp: otp.contains(&client_id),
                    client_id,
                    requires,
                })
                .collect();
            for client_id in otp {
                if !groups.iter().any(|g| g.client_id == client_id) {
                    groups.push(GroupDefaults {
                        client_name: client_id.as_deref().and_then(name),
                        client_id,
                        requires: crate::protocol::SecretRequirements::default(),
                        otp: true,
                    });
                }
            }
            Ok(groups)
        })
        .await?;
    let total = groups.len() as u64;
    // The team's own group (no client) first, then by client id.
    let page = pager::page_in_memory("groups", groups, &page, |g| g.client_id.clone())?;
    Ok(ConsoleReply::Groups {
        groups: page.rows,
        next: page.next,
        total: Some(total),
    })
}

/// Set a group's security defaults: a client's of the team, or the team's own (`None`).
pub(super) async fn set_group_defaults(
    hub: &Hub,
    user: &UserInfo,
    client: Option<ClientId>,
    requires: SecretRequirements,
) -> Result<ConsoleReply, ProtocolError> {
    let team = user.team_id.clone();
    let t = team.clone();
    let client = match client {
        None => None,
        Some(c) => Some(
            hub.db(move |s| s.client(&t, &c))
                .await?
                .ok_or_else(|| ProtocolError::not_found("client"))?,
        ),
    };
    let detail = serde_json::json!({
        "group": client.as_ref().map_or_else(|| "team".to_owned(), |c| c.name.clone()),
        "require_passcode": requires.passcode,
        "require_password": requires.password,
    });
    let cid = client.map(|c| c.id);
    let record = hub.user_record(user, AuditEvent::GroupDefaults, cid.clone(), detail);
    let change = AuditedChange::SetSecurityDefaults {
        team,
        client: cid,
        requires,
    };
    hub.commit(change, move |_| vec![record.clone()]).await?;
    Ok(ConsoleReply::Done)
}

/// One page of the team's workstations, with their live presence: keyset paging in the store,
/// so a 20,000-workstation team is never read whole to answer a page.
pub(super) async fn list_workstations(
    hub: &Hub,
    team: String,
    client: Option<String>,
    filter: Option<String>,
    page: PageRequest,
) -> Result<ConsoleReply, ProtocolError> {
    let after: Option<WorkstationKey> = pager::start("workstations", &page)?;
    let fetch = pager::fetch_rows(&page);
    let filter = filter.as_deref().and_then(WorkstationFilter::new);
    let unfiltered = filter.is_none();
    let (rows, total) = hub
        .db(move |s| {
            let client_id = match client {
                Some(c) => match s.client(&team, &c)? {
                    Some(found) => Some(found.id),
                    None => return Ok(None),
                },
                None => None,
            };
            let rows = s.workstations_page(
                &team,
                client_id.as_ref(),
                filter.as_ref(),
                after.as_ref(),
                fetch,
            )?;
            // Counting a filtered list would read it whole: only the plain count is cheap.
            let total = match unfiltered {
                true => Some(s.count_workstations(&team, client_id.as_ref())?),
                false => None,
            };
            Ok(Some((rows, total)))
        })
        .await?
        .ok_or_else(|| ProtocolError::not_found("client"))?;
    // Measured as sent: with live presence filled in.
    let infos = rows.into_iter().map(|r| hub.with_presence(r.info));
    let page = pager::paginate(
        "workstations",
        infos,
        pager::rows_wanted(&page),
        pager::PAGE_BUDGET,
        workstation_key,
    )?;
    Ok(ConsoleReply::Workstations {
        workstations: page.rows,
        next: page.next,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_checked() {
        assert_eq!(client_name("  Acme  ").expect("ok"), "Acme");
        assert!(client_name("").is_err());
        assert!(client_name("a\nb").is_err());
        assert!(client_name(&"x".repeat(101)).is_err());
    }
}
