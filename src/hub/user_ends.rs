//! How a user's open console connections learn that their logins ended (disabled, removed,
//! 2FA reset, locked, role changed, 2FA activated): one watch per user with open connections,
//! signalled by the services that end logins and by the revocation log's watcher (users.rs).
//! Below the services, so none of them imports another to close connections.

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::Hub;
use super::store::users::Revocation;
use crate::protocol::UserId;

/// Tells a user's open console connections to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UserEnd {
    /// Sent to the console in the close.
    pub why: &'static str,
    /// Only connections that logged in without a second factor (2FA was just activated).
    pub password_only: bool,
    /// This connection stays (the one that activated 2FA).
    pub except: Option<u64>,
    /// When the logins ended: connections authenticated later stay (the revocation log is read
    /// again after this hub already signalled its own entries).
    pub at: DateTime<Utc>,
}

/// What a user's console is told when their logins end.
pub(super) fn message(why: Option<Revocation>) -> &'static str {
    match why {
        Some(Revocation::Disabled) => "an admin disabled your account",
        Some(Revocation::Removed) => "an admin removed your account",
        Some(Revocation::TwoFactorReset) => {
            "an admin reset your two-factor authentication: log in again"
        }
        Some(Revocation::Locked) => {
            "your account is locked after too many failed logins: an admin must unlock it"
        }
        Some(Revocation::RoleChanged) => "an admin changed your role: log in again",
        None => "your logins were ended",
    }
}

/// Whether `end` closes the connection `viewer` (that logged in with a second factor or not,
/// its authentication begun at `since`); the reason to send when it does.
pub(super) fn ends(
    end: Option<UserEnd>,
    viewer: u64,
    second_factor: bool,
    since: DateTime<Utc>,
) -> Option<&'static str> {
    let end = end?;
    if end.except == Some(viewer) || (end.password_only && second_factor) || end.at < since {
        return None;
    }
    Some(end.why)
}

/// Per user: the signal that closes their open console connections (and why). Owned here.
#[derive(Default)]
pub(super) struct UserEnds(
    std::sync::Mutex<std::collections::HashMap<UserId, watch::Sender<Option<UserEnd>>>>,
);

impl Hub {
    /// Learn when `user`'s logins are ended while a connection of theirs is open.
    pub(super) fn user_ends(&self, user: &UserId) -> watch::Receiver<Option<UserEnd>> {
        let mut ends = self.user_ends.0.lock().unwrap_or_else(|p| p.into_inner());
        // Users with no open connection left hold no memory.
        ends.retain(|_, tx| tx.receiver_count() > 0);
        ends.entry(user.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    fn signal_user(&self, user: &UserId, end: UserEnd) {
        let ends = self.user_ends.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = ends.get(user) {
            tx.send_replace(Some(end));
        }
    }

    /// Close every open console connection of `user`, saying `why`.
    pub(super) fn end_user_connections(&self, user: &UserId, why: &'static str) {
        self.end_user_connections_at(user, why, Utc::now());
    }

    /// Close the console connections of `user` authenticated before `at`, saying `why`.
    pub(super) fn end_user_connections_at(
        &self,
        user: &UserId,
        why: &'static str,
        at: DateTime<Utc>,
    ) {
        self.signal_user(
            user,
            UserEnd {
                why,
                password_only: false,
                except: None,
                at,
            },
        );
    }

    /// 2FA became active: the user's other connections that logged in without a code close.
    pub(super) fn end_password_only_connections(&self, user: &UserId, except: u64) {
        self.signal_user(
            user,
            UserEnd {
                why: "two-factor authentication is now active for you: log in again with your code",
                password_only: true,
                except: Some(except),
                at: Utc::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_closes_the_connections_it_names() {
        let at = Utc::now();
        let before = at - chrono::Duration::seconds(1);
        assert_eq!(ends(None, 1, false, before), None);
        let all = UserEnd {
            why: "x",
            password_only: false,
            except: None,
            at,
        };
        assert_eq!(ends(Some(all), 1, true, before), Some("x"));
        assert_eq!(
            ends(Some(all), 1, true, at),
            Some("x"),
            "authenticated as it ended"
        );
        let later = at + chrono::Duration::seconds(1);
        assert_eq!(
            ends(Some(all), 1, true, later),
            None,
            "a login after the end stays"
        );
        let activation = UserEnd {
            why: "y",
            password_only: true,
            except: Some(1),
            at,
        };
        let stays = ends(Some(activation), 1, false, before);
        assert_eq!(stays, None, "the activating connection stays");
        let with_code = ends(Some(activation), 2, true, before);
        assert_eq!(with_code, None, "a login with a code stays");
        assert_eq!(ends(Some(activation), 2, false, before), Some("y"));
    }
}
