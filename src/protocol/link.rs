//! The enrolment ("client app") link: `tether://HOST:PORT/enrol/TOKEN?fp=SHA256:HEX`.
//!
//! It carries everything an agent needs for a first, safe contact: where the hub is, the token
//! that proves the technician invited this machine, and the hub certificate's fingerprint to pin.

use std::fmt;
use std::str::FromStr;

const SCHEME: &str = "tether://";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentLink {
    /// `host:port` of the hub.
    pub hub: String,
    pub token: String,
    /// `SHA256:<hex>` of the hub's certificate.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("an enrolment link starts with tether:// (ask your technician for a new link)")]
    Scheme,
    #[error("the enrolment link has no hub address")]
    Hub,
    #[error("the enrolment link has no token")]
    Token,
    #[error("the enrolment link has no certificate fingerprint (fp=SHA256:...)")]
    Fingerprint,
}

impl EnrolmentLink {
    /// The WebSocket URL of the hub this link points to.
    pub fn hub_url(&self) -> String {
        format!("wss://{}", self.hub)
    }
}

impl fmt::Display for EnrolmentLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}{}/enrol/{}?fp={}",
            self.hub, self.token, self.fingerprint
        )
    }
}

impl FromStr for EnrolmentLink {
    type Err = LinkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.trim().strip_prefix(SCHEME).ok_or(LinkError::Scheme)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hub, token) = path.split_once("/enrol/").ok_or(LinkError::Token)?;
        if hub.is_empty() || hub.contains('/') {
            return Err(LinkError::Hub);
        }
        let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if token.is_empty() || !token.chars().all(is_token_char) {
            return Err(LinkError::Token);
        }
        let fingerprint = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("fp="))
            .filter(|fp| !fp.is_empty())
            .ok_or(LinkError::Fingerprint)?;
        Ok(Self {
            hub: hub.to_owned(),
            token: token.to_owned(),
            fingerprint: fingerprint.to_owned(),
        })
    }
}
