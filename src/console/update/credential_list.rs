//! The support credentials view (`C`): everything `tether ctl credentials list | revoke |
//! regenerate` does, as a table. Revoking and regenerating ask first, then go through the
//! credentials dialog (its waiting line, and the reveal-once dialog for new secrets).

use chrono::{DateTime, Utc};

use super::{Effect, request, sentence, set_status};
use crate::console::action::Action;
use crate::console::state::{
    CredentialsDialog, CredentialsStage, Dialog, Pending, State, StatusKind, View,
};
use crate::protocol::{
    ConsoleReply, ConsoleRequest, CredentialInfo, CredentialState, ProtocolError,
};

/// Where credentials stand by the console's clock: the hub said active, but they may have
/// expired since the list was loaded.
pub fn state_at(credential: &CredentialInfo, now: DateTime<Utc>) -> CredentialState {
    match credential.state {
        CredentialState::Active if credential.expires_at <= now => CredentialState::Expired,
        other => other,
    }
}

/// `C`: open the view and ask the hub for the list.
pub(super) fn open(state: &mut State) -> Vec<Effect> {
    if state.guest.is_some() {
        set_status(
            state,
            StatusKind::Warning,
            "Support credentials are listed for technicians, not with support credentials.",
        );
        return Vec::new();
    }
    state.view = View::Credentials;
    load(state)
}

fn load(state: &mut State) -> Vec<Effect> {
    // Pages of an earlier load would mix into this one: their replies are dropped.
    state
        .pending
        .retain(|_, p| !matches!(p, Pending::ListCredentials | Pending::MoreCredentials));
    state.credential_list.loading = true;
    vec![request(
        state,
        ConsoleRequest::ListCredentials {
            page: crate::protocol::PageRequest::first(),
        },
        Pending::ListCredentials,
    )]
}

/// After a revoke or regenerate answered: the list shows what changed, if it is open.
pub(super) fn reload_if_open(state: &mut State) -> Vec<Effect> {
    if state.view == View::Credentials && state.guest.is_none() {
        load(state)
    } else {
        Vec::new()
    }
}

/// Keys in the view.
pub(super) fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    let list = &mut state.credential_list;
    let last = list.items.len().saturating_sub(1);
    match action {
        Action::Up => list.selected = list.selected.saturating_sub(1),
        Action::Down => list.selected = (list.selected + 1).min(last),
        Action::First => list.selected = 0,
        Action::Last => list.selected = last,
        Action::Refresh => return load(state),
        Action::Cancel | Action::CredentialsList => state.view = View::Workstations,
        Action::Help => state.dialog = Some(Dialog::Help { scroll: 0 }),
        Action::UserMenu => state.dialog = Some(Dialog::UserMenu { selected: 0 }),
        Action::RevokeCredentials => ask(state, false),
        Action::RegenerateCredentials => ask(state, true),
        _ => {}
    }
    Vec::new()
}

/// "Revoke (or regenerate) these?" for the selected credentials.
fn ask(state: &mut State, regenerate: bool) {
    let Some(credential) = state.credential_list.selected().cloned() else {
        set_status(
            state,
            StatusKind::Warning,
            "No support credentials to select.",
        );
        return;
    };
    let now_state = state_at(&credential, state.now);
    if !regenerate && now_state != CredentialState::Active {
        set_status(
            state,
            StatusKind::Warning,
            format!(
                "The support credentials of {} are already {}; nothing to revoke.",
                credential.user,
                now_state.label()
            ),
        );
        return;
    }
    state.dialog = Some(Dialog::Credentials(CredentialsDialog {
        target: credential.target.clone(),
        target_label: credential.target_label.clone(),
        stage: CredentialsStage::Confirm {
            credential,
            regenerate,
        },
    }));
}

/// The hub's list, a page at a time: the `first` page replaces what is shown, each later one
/// adds to it, and the next is asked for as each arrives.
pub(super) fn on_reply(
    state: &mut State,
    first: bool,
    result: Result<ConsoleReply, ProtocolError>,
) -> Vec<Effect> {
    state.dirty = true;
    let list = &mut state.credential_list;
    list.loading = false;
    match result {
        Ok(ConsoleReply::Credentials {
            mut credentials,
            next,
            ..
        }) => {
            if !first {
                let ids: std::collections::HashSet<&str> =
                    credentials.iter().map(|c| c.id.as_str()).collect();
                list.items.retain(|c| !ids.contains(c.id.as_str()));
                credentials.append(&mut list.items);
            }
            // Newest first; the selection stays on the same credentials when they are still
            // listed.
            credentials.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then_with(|| b.id.cmp(&a.id)));
            let selected_id = list.selected().map(|c| c.id.clone());
            list.selected = selected_id
                .and_then(|id| credentials.iter().position(|c| c.id == id))
                .unwrap_or(list.selected)
                .min(credentials.len().saturating_sub(1));
            list.items = credentials;
            list.error = None;
            if let Some(cursor) = next {
                list.loading = true;
                return vec![request(
                    state,
                    ConsoleRequest::ListCredentials {
                        page: crate::protocol::PageRequest::after(cursor),
                    },
                    Pending::MoreCredentials,
                )];
            }
        }
        Ok(reply) => {
            set_status(
                state,
                StatusKind::Error,
                format!(
                    "The hub answered the support credentials list with {}; please report this bug.",
                    super::reply_kind(&reply)
                ),
            );
        }
        Err(error) => {
            let text = format!(
                "Loading support credentials failed: {}",
                sentence(&error.message)
            );
            list.error = Some(text.clone());
            set_status(state, StatusKind::Error, text);
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use crossterm::event::KeyCode;

    use super::super::{Msg, update};
    use super::*;
    use crate::console::keymap::{Keymap, Layer};
    use crate::console::net::NetEvent;
    use crate::console::state::Screen;
    use crate::console::update::test_support::{key, reply, requests, status_text, t0};
    use crate::protocol::{CredentialScopes, CredentialTarget, RevealedCredential};

    fn credential(id: &str, user: &str, issued_hours_ago: i64, hours: i64) -> CredentialInfo {
        let issued_at = t0() - Duration::hours(issued_hours_ago);
        CredentialInfo {
            id: id.into(),
            user: user.into(),
            target: CredentialTarget::Workstation {
                workstation: "w1".into(),
            },
            target_label: "reception".into(),
            scopes: CredentialScopes::default(),
            issued_by: "ann".into(),
            issued_at,
            expires_at: issued_at + Duration::hours(hours),
            revoked_at: None,
            state: CredentialState::Active,
        }
    }

    /// Oldest first, as a hub might send them: sc_1 (2 h ago, 8 h), sc_2 (1 h ago, 1 h: it
    /// ends now by the console's clock), sc_3 (just now, 24 h).
    fn listed() -> Vec<CredentialInfo> {
        vec![
            credential("sc_1", "guest-aaaa1111", 2, 8),
            credential("sc_2", "guest-bbbb2222", 1, 1),
            credential("sc_3", "guest-cccc3333", 0, 24),
        ]
    }

    /// On the main screen, `C` pressed and the list answered.
    fn open_view() -> State {
        let mut state = State::new(t0(), Keymap::default(), vec!["dark".into()], 0);
        state.screen = Screen::Main;
        let effects = key(&mut state, KeyCode::Char('C'));
        let [(id, ConsoleRequest::ListCredentials { .. })] = &requests(&effects)[..] else {
            panic!("C asks for the list: {effects:?}")
        };
        assert_eq!(state.view, View::Credentials);
        assert_eq!(state.layer(), Layer::CredentialsList);
        assert!(state.credential_list.loading);
        reply(
            &mut state,
            *id,
            Ok(ConsoleReply::Credentials {
                next: None,
                total: None,
                credentials: listed(),
            }),
        );
        state
    }

    #[test]
    fn a_long_list_arrives_a_page_at_a_time_and_shows_whole() {
        let mut state = State::new(t0(), Keymap::default(), vec!["dark".into()], 0);
        state.screen = Screen::Main;
        let effects = key(&mut state, KeyCode::Char('C'));
        let [(id, ConsoleRequest::ListCredentials { .. })] = &requests(&effects)[..] else {
            panic!("C asks for the list: {effects:?}")
        };
        let cursor = crate::protocol::Cursor("after-sc_2".into());
        let mut first = listed();
        let last = first.split_off(2);
        let effects = reply(
            &mut state,
            *id,
            Ok(ConsoleReply::Credentials {
                next: Some(cursor.clone()),
                total: Some(3),
                credentials: first,
            }),
        );
        assert_eq!(
            ids(&state),
            ["sc_2", "sc_1"],
            "the first page shows at once"
        );
        let [(id, ConsoleRequest::ListCredentials { page })] = &requests(&effects)[..] else {
            panic!("the next page is asked for: {effects:?}")
        };
        assert_eq!(page.after.as_ref(), Some(&cursor));
        assert!(state.credential_list.loading, "still loading");
        reply(
            &mut state,
            *id,
            Ok(ConsoleReply::Credentials {
                next: None,
                total: Some(3),
                credentials: last,
            }),
        );
        assert_eq!(ids(&state), ["sc_3", "sc_2", "sc_1"]);
        assert!(!state.credential_list.loading);
    }

    fn ids(state: &State) -> Vec<&str> {
        state
            .credential_list
            .items
            .iter()
            .map(|c| c.id.as_str())
            .collect()
    }

    #[test]
    fn the_reply_fills_the_table_newest_first_and_expiry_follows_the_clock() {
        let mut state = open_view();
        assert!(!state.credential_list.loading);
        assert_eq!(ids(&state), ["sc_3", "sc_2", "sc_1"]);
        assert_eq!(state.credential_list.selected, 0);
        let sc_2 = &state.credential_list.items[1];
        assert_eq!(state_at(sc_2, t0()), CredentialState::Expired);
        assert_eq!(
            state_at(sc_2, t0() - Duration::minutes(1)),
            CredentialState::Active
        );
        // Selection moves and stays in bounds; Esc goes back.
        for _ in 0..5 {
            key(&mut state, KeyCode::Char('j'));
        }
        assert_eq!(state.credential_list.selected, 2);
        key(&mut state, KeyCode::Up);
        assert_eq!(state.credential_list.selected, 1);
        // Revoking an expired one is refused without asking the hub.
        assert!(requests(&key(&mut state, KeyCode::Char('r'))).is_empty());
        assert!(state.dialog.is_none());
        assert!(
            status_text(&state).contains("already expired"),
            "{:?}",
            state.status
        );
        key(&mut state, KeyCode::Esc);
        assert_eq!(state.view, View::Workstations);
    }

    #[test]
    fn revoke_asks_first_then_revokes_and_reloads() {
        let mut state = open_view();
        key(&mut state, KeyCode::End);
        assert_eq!(
            state.credential_list.selected().map(|c| c.id.as_str()),
            Some("sc_1")
        );
        assert!(requests(&key(&mut state, KeyCode::Char('r'))).is_empty());
        assert_eq!(state.layer(), Layer::CredentialsConfirm);
        // No keeps them.
        assert!(requests(&key(&mut state, KeyCode::Char('n'))).is_empty());
        assert!(state.dialog.is_none());
        key(&mut state, KeyCode::Char('r'));
        let effects = key(&mut state, KeyCode::Char('y'));
        let [(id, ConsoleRequest::RevokeCredentials { credential })] = &requests(&effects)[..]
        else {
            panic!("revoke: {effects:?}")
        };
        assert_eq!(credential, "sc_1");
        let mut revoked = listed().remove(0);
        revoked.state = CredentialState::Revoked;
        revoked.revoked_at = Some(t0());
        let effects = update(
            &mut state,
            Msg::Net(NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::Credential {
                    credential: Box::new(revoked.clone()),
                }),
            }),
        );
        assert!(state.dialog.is_none());
        assert!(
            status_text(&state).contains("Revoked"),
            "{:?}",
            state.status
        );
        // The list is asked again, and shows the change; the selection stays on sc_1.
        let [(id, ConsoleRequest::ListCredentials { .. })] = &requests(&effects)[..] else {
            panic!("reload: {effects:?}")
        };
        let mut now_listed = listed();
        now_listed[0] = revoked;
        reply(
            &mut state,
            *id,
            Ok(ConsoleReply::Credentials {
                next: None,
                total: None,
                credentials: now_listed,
            }),
        );
        let selected = state.credential_list.selected().expect("selected");
        assert_eq!(
            (selected.id.as_str(), selected.state),
            ("sc_1", CredentialState::Revoked)
        );
    }

    #[test]
    fn regenerate_asks_first_and_reveals_the_new_secrets_once() {
        let mut state = open_view();
        assert!(requests(&key(&mut state, KeyCode::Char('g'))).is_empty());
        assert_eq!(state.layer(), Layer::CredentialsConfirm);
        let effects = key(&mut state, KeyCode::Enter);
        let [(id, ConsoleRequest::RegenerateCredentials { credential })] = &requests(&effects)[..]
        else {
            panic!("regenerate: {effects:?}")
        };
        assert_eq!(credential, "sc_3");
        let new = credential_new();
        let effects = update(
            &mut state,
            Msg::Net(NetEvent::Reply {
                id: *id,
                result: Ok(ConsoleReply::CredentialsIssued {
                    credential: Box::new(new.clone()),
                    reveal: Box::new(RevealedCredential {
                        hub: "wss://hub.example.org:7443".into(),
                        fingerprint: "SHA256:aa".into(),
                        user: new.user.clone(),
                        password: "Zq7pW3mK9xR2tB6nV4cH".into(),
                        code: "402913".into(),
                        expires_at: new.expires_at,
                    }),
                }),
            }),
        );
        assert_eq!(state.layer(), Layer::CredentialsReveal);
        assert!(matches!(
            &requests(&effects)[..],
            [(_, ConsoleRequest::ListCredentials { .. })]
        ));
        // Closing the reveal goes back to the list.
        key(&mut state, KeyCode::Esc);
        assert_eq!(state.layer(), Layer::CredentialsList);
    }

    fn credential_new() -> CredentialInfo {
        let mut new = credential("sc_4", "guest-dddd4444", 0, 24);
        new.issued_at = t0() + Duration::seconds(1);
        new
    }

    #[test]
    fn a_guest_has_no_list() {
        let mut state = State::new(t0(), Keymap::default(), vec!["dark".into()], 0);
        state.screen = Screen::Main;
        state.guest = Some(crate::protocol::GuestInfo {
            credential: "sc_1".into(),
            target: CredentialTarget::Workstation {
                workstation: "w1".into(),
            },
            target_label: "reception".into(),
            scopes: CredentialScopes::default(),
            issued_by: "ann".into(),
            expires_at: t0() + Duration::hours(8),
        });
        assert!(requests(&key(&mut state, KeyCode::Char('C'))).is_empty());
        assert_eq!(state.view, View::Workstations);
        assert!(!state.can(Action::CredentialsList));
    }
}
