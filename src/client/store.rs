//! Local login state, in the state dir: `known_hubs` (pinned certificate per hub, as ssh's
//! known_hosts), `logins.json` (one login token per hub, file mode 0600) and `devices.json`
//! (this console's device token per hub and user, 0600: kept through logouts, so the hub keeps
//! trusting this device).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stored login for one hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    pub hub: String,
    pub user: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The login store under a state directory.
#[derive(Debug, Clone)]
pub struct LoginStore {
    dir: PathBuf,
}

impl LoginStore {
    pub fn new(state_dir: PathBuf) -> Self {
        Self { dir: state_dir }
    }
}

impl LoginStore {
    fn known_hubs_path(&self) -> PathBuf {
        self.dir.join("known_hubs")
    }

    fn logins_path(&self) -> PathBuf {
        self.dir.join("logins.json")
    }

    fn devices_path(&self) -> PathBuf {
        self.dir.join("devices.json")
    }

    /// This console's device token for `user` on `hub`, made (256 random bits from the OS) and
    /// kept on first use. Presented at every password login: once one succeeded, the hub
    /// checks this device's logins ahead of a login flood. `None` when it cannot be kept (the
    /// login then goes ahead as from a new device).
    pub fn device_token(&self, hub: &str, user: &str) -> Option<String> {
        let key = format!("{} {user}", hub_key(hub));
        let mut all: std::collections::BTreeMap<String, String> =
            std::fs::read(self.devices_path())
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default();
        if let Some(token) = all.get(&key) {
            return Some(token.clone());
        }
        let token = crate::secrets::new_token().ok()?;
        all.insert(key, token.clone());
        let json = serde_json::to_vec_pretty(&all).ok()?;
        crate::paths::write_private(&self.devices_path(), &json).ok()?;
        Some(token)
    }

    /// The pinned fingerprint for `hub` (`host:port`, scheme stripped), if trusted before.
    pub fn known_fingerprint(&self, hub: &str) -> Option<String> {
        let key = hub_key(hub);
        let text = std::fs::read_to_string(self.known_hubs_path()).ok()?;
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once(char::is_whitespace))
            .find(|(h, _)| *h == key)
            .map(|(_, fp)| fp.trim().to_owned())
    }

    /// Pin `fingerprint` for `hub`, replacing any earlier pin.
    pub fn trust(&self, hub: &str, fingerprint: &str) -> std::io::Result<()> {
        let key = hub_key(hub);
        let old = std::fs::read_to_string(self.known_hubs_path()).unwrap_or_default();
        let mut out: String = old
            .lines()
            .filter(|l| l.split_once(char::is_whitespace).map(|(h, _)| h) != Some(key.as_str()))
            .map(|l| format!("{l}\n"))
            .collect();
        out.push_str(&format!("{key} {fingerprint}\n"));
        crate::paths::write_private(&self.known_hubs_path(), out.as_bytes())
    }

    fn all_logins(&self) -> Vec<StoredLogin> {
        std::fs::read(self.logins_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The stored login for `hub`, if any (expired or not: the hub decides).
    pub fn login(&self, hub: &str) -> Option<StoredLogin> {
        let key = hub_key(hub);
        self.all_logins()
            .into_iter()
            .find(|l| hub_key(&l.hub) == key)
    }

    /// The most recently saved login, for commands run without `--hub`.
    pub fn last_login(&self) -> Option<StoredLogin> {
        self.all_logins().pop()
    }

    /// Save (or replace) the login for its hub; it becomes the most recent one.
    pub fn save_login(&self, login: StoredLogin) -> std::io::Result<()> {
        let key = hub_key(&login.hub);
        let mut all: Vec<_> = self
            .all_logins()
            .into_iter()
            .filter(|l| hub_key(&l.hub) != key)
            .collect();
        all.push(login);
        let json = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        crate::paths::write_private(&self.logins_path(), &json)
    }

    /// Forget the login for `hub` (after logout, or when the hub refuses the token).
    pub fn forget_login(&self, hub: &str) -> std::io::Result<()> {
        let key = hub_key(hub);
        let all: Vec<_> = self
            .all_logins()
            .into_iter()
            .filter(|l| hub_key(&l.hub) != key)
            .collect();
        let json = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        crate::paths::write_private(&self.logins_path(), &json)
    }
}

/// `wss://host:port/anything` -> `host:port`: the form known_hubs is keyed by.
pub fn hub_key(hub: &str) -> String {
    let rest = hub.split_once("://").map_or(hub, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

/// `host:port` or `wss://host:port` -> `wss://host:port`.
pub fn hub_url(hub: &str) -> String {
    format!("wss://{}", hub_key(hub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_token_is_made_once_per_hub_and_user_and_kept_through_logout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LoginStore::new(dir.path().to_path_buf());
        let ann = store.device_token("wss://a:1", "ann").expect("made");
        assert_eq!(ann.len(), 43, "256 bits, base64url");
        assert_eq!(
            store.device_token("A:1", "ann").as_deref(),
            Some(ann.as_str())
        );
        assert_ne!(
            store.device_token("a:1", "bob").as_deref(),
            Some(ann.as_str())
        );
        assert_ne!(
            store.device_token("b:2", "ann").as_deref(),
            Some(ann.as_str())
        );
        store.forget_login("a:1").expect("logout");
        let again = LoginStore::new(dir.path().to_path_buf());
        assert_eq!(
            again.device_token("a:1", "ann").as_deref(),
            Some(ann.as_str())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("devices.json"))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private");
        }
    }

    #[test]
    fn pins_and_logins_persist_per_hub() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LoginStore::new(dir.path().to_path_buf());
        assert_eq!(store.known_fingerprint("wss://a:1"), None);
        store.trust("wss://a:1", "SHA256:aa").expect("trust");
        store.trust("b:2", "SHA256:bb").expect("trust");
        store.trust("A:1", "SHA256:cc").expect("re-trust replaces");
        assert_eq!(store.known_fingerprint("a:1").as_deref(), Some("SHA256:cc"));
        assert_eq!(
            store.known_fingerprint("wss://b:2/v1/console").as_deref(),
            Some("SHA256:bb")
        );

        let login = |hub: &str, user: &str| StoredLogin {
            hub: hub.into(),
            user: user.into(),
            token: format!("tok-{user}"),
            expires_at: Utc::now(),
        };
        store.save_login(login("wss://a:1", "ann")).expect("save");
        store.save_login(login("wss://b:2", "bob")).expect("save");
        assert_eq!(store.login("a:1").map(|l| l.user), Some("ann".into()));
        assert_eq!(store.last_login().map(|l| l.user), Some("bob".into()));
        store.save_login(login("wss://a:1", "amy")).expect("save");
        assert_eq!(store.last_login().map(|l| l.user), Some("amy".into()));
        store.forget_login("a:1").expect("forget");
        assert_eq!(store.login("a:1"), None);
        assert_eq!(store.login("b:2").map(|l| l.user), Some("bob".into()));
    }
}
