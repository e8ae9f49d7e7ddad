//! Time-boxed support credentials (DOMAIN.md, "Time-boxed support credentials"): what a
//! technician issues to someone without an account, and what that guest sees of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ClientId, Secret, WorkstationId};

pub type CredentialId = String;

/// Longest a technician may make credentials last: 7 days, in minutes.
pub const MAX_CREDENTIAL_MINUTES: u32 = 7 * 24 * 60;

/// The durations the console offers, in hours (custom: anything up to 7 days).
pub const CREDENTIAL_PRESET_HOURS: [u32; 5] = [1, 4, 8, 24, 72];

/// What the credentials open: one workstation, or every workstation of one client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CredentialTarget {
    Workstation { workstation: WorkstationId },
    Client { client: ClientId },
}

impl CredentialTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialTarget::Workstation { .. } => "workstation",
            CredentialTarget::Client { .. } => "client",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            CredentialTarget::Workstation { workstation } => workstation,
            CredentialTarget::Client { client } => client,
        }
    }
}

/// What a guest may do. Control without it is view only; the hub enforces control and
/// history. Chat is stored and shown (there is no chat feature yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CredentialScopes {
    /// Keyboard and mouse; without it every session is view only.
    #[serde(default)]
    pub control: bool,
    #[serde(default)]
    pub chat: bool,
    /// Past sessions on the target.
    #[serde(default)]
    pub history: bool,
}

impl CredentialScopes {
    /// "control, chat, history" / "view only".
    pub fn label(self) -> String {
        let mut parts = vec![if self.control { "control" } else { "view only" }];
        if self.chat {
            parts.push("chat");
        }
        if self.history {
            parts.push("history");
        }
        parts.join(", ")
    }
}

/// Where a set of credentials stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialState {
    Active,
    Expired,
    Revoked,
}

impl CredentialState {
    pub fn label(self) -> &'static str {
        match self {
            CredentialState::Active => "active",
            CredentialState::Expired => "expired",
            CredentialState::Revoked => "revoked",
        }
    }
}

/// Support credentials as listed: never the password or code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub id: CredentialId,
    /// The guest's user name.
    pub user: String,
    pub target: CredentialTarget,
    /// The workstation's host name or the client's name.
    pub target_label: String,
    pub scopes: CredentialScopes,
    /// The technician who issued them.
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
    pub state: CredentialState,
}

/// Shown once, when issued: the hub keeps only hashes of the password and the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedCredential {
    /// `wss://host:port` to log in to.
    pub hub: String,
    /// The hub's certificate fingerprint, to pin at the guest's first login.
    pub fingerprint: String,
    pub user: String,
    pub password: Secret,
    /// Six digits.
    pub code: Secret,
    pub expires_at: DateTime<Utc>,
}

impl RevealedCredential {
    /// The whole block as text, for the clipboard or a terminal.
    pub fn block(&self) -> String {
        format!(
            "Hub: {}\nCertificate: {}\nUser name: {}\nPassword: {}\nSecurity code: {}\nExpires: {}",
            self.hub,
            self.fingerprint,
            self.user,
            self.password.expose(),
            self.code.expose(),
            self.expires_at.format("%Y-%m-%d %H:%M UTC"),
        )
    }
}

/// What a logged-in guest is allowed, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub credential: CredentialId,
    pub target: CredentialTarget,
    pub target_label: String,
    pub scopes: CredentialScopes,
    pub issued_by: String,
    pub expires_at: DateTime<Utc>,
}

/// "in 8 hours" / "in 45 minutes": how far away `until` is from `now`, rounded up.
pub fn expires_in(now: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let mins = (until - now).num_seconds().max(0).div_euclid(60)
        + i64::from((until - now).num_seconds().max(0) % 60 != 0);
    if mins >= 120 {
        let hours = (mins + 59) / 60;
        format!("{hours} hours")
    } else if mins == 60 {
        "1 hour".into()
    } else if mins == 1 {
        "1 minute".into()
    } else {
        format!("{mins} minutes")
    }
}

/// The answer when the same technician asks again for the same target while valid.
pub fn already_active_message(info: &CredentialInfo, now: DateTime<Utc>) -> String {
    format!(
        "Support credentials for {} are already active and will expire in {} ({})",
        info.target_label,
        expires_in(now, info.expires_at),
        info.expires_at.format("%Y-%m-%d %H:%M UTC"),
    )
}

/// Parse a duration as typed: `8h`, `90m`, `2d`, or a bare number of hours.
pub fn parse_duration_minutes(text: &str) -> Result<u32, String> {
    let t = text.trim().to_ascii_lowercase();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t.as_str(), "h"),
    };
    let n: u32 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 8h, 90m or 2d"))?;
    let mins = match unit.trim() {
        "m" | "min" | "mins" | "minutes" => Some(n),
        "h" | "hour" | "hours" => n.checked_mul(60),
        "d" | "day" | "days" => n.checked_mul(24 * 60),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?} is not a duration: use e.g. 8h, 90m or 2d"))?;
    check_duration_minutes(mins)?;
    Ok(mins)
}

/// Between one minute and seven days.
pub fn check_duration_minutes(mins: u32) -> Result<(), String> {
    if mins == 0 || mins > MAX_CREDENTIAL_MINUTES {
        return Err("support credentials last from 1 minute to 7 days".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_are_bounded() {
        assert_eq!(parse_duration_minutes("8h"), Ok(480));
        assert_eq!(parse_duration_minutes("90m"), Ok(90));
        assert_eq!(parse_duration_minutes("7d"), Ok(MAX_CREDENTIAL_MINUTES));
        assert_eq!(parse_duration_minutes("24"), Ok(24 * 60));
        assert!(parse_duration_minutes("8d").is_err());
        assert!(parse_duration_minutes("0h").is_err());
        assert!(parse_duration_minutes("soon").is_err());
        assert!(parse_duration_minutes("99999999999h").is_err());
    }

    #[test]
    fn expiry_reads_in_hours_or_minutes() {
        let now = Utc::now();
        assert_eq!(expires_in(now, now + chrono::Duration::hours(8)), "8 hours");
        assert_eq!(
            expires_in(now, now + chrono::Duration::minutes(45)),
            "45 minutes"
        );
        assert_eq!(
            expires_in(now, now + chrono::Duration::minutes(60)),
            "1 hour"
        );
        assert_eq!(
            expires_in(now, now + chrono::Duration::minutes(7 * 60 + 10)),
            "8 hours"
        );
    }

    #[test]
    fn requests_and_replies_round_trip_and_never_print_secrets() {
        use crate::protocol::{ConsoleReply, ConsoleRequest, Request};
        let login = Request {
            id: 3,
            body: ConsoleRequest::GuestLogin {
                version: 1,
                user: "guest-ab".into(),
                password: "Zq7pW3mK9xR2tB6nV4cH".into(),
                code: "402913".into(),
            },
        };
        let json = serde_json::to_string(&login).expect("encode");
        assert_eq!(
            serde_json::from_str::<Request<ConsoleRequest>>(&json).expect("decode"),
            login
        );
        assert!(!format!("{login:?}").contains("Zq7pW3"), "redacted in logs");
        assert!(!format!("{login:?}").contains("402913"), "redacted in logs");
        let now = Utc::now();
        let reveal = RevealedCredential {
            hub: "wss://h:1".into(),
            fingerprint: "SHA256:aa".into(),
            user: "guest-ab".into(),
            password: "Zq7pW3mK9xR2tB6nV4cH".into(),
            code: "402913".into(),
            expires_at: now,
        };
        let info = CredentialInfo {
            id: "sc_1".into(),
            user: "guest-ab".into(),
            target: CredentialTarget::Workstation {
                workstation: "ws_1".into(),
            },
            target_label: "pc".into(),
            scopes: CredentialScopes::default(),
            issued_by: "ann".into(),
            issued_at: now,
            expires_at: now,
            revoked_at: None,
            state: CredentialState::Active,
        };
        let reply = ConsoleReply::CredentialsIssued {
            credential: Box::new(info),
            reveal: Box::new(reveal.clone()),
        };
        let json = serde_json::to_string(&reply).expect("encode");
        assert_eq!(
            serde_json::from_str::<ConsoleReply>(&json).expect("decode"),
            reply
        );
        assert!(!format!("{reply:?}").contains("Zq7pW3"));
        assert!(reveal.block().contains("Security code: 402913"));
    }

    #[test]
    fn targets_and_scopes_round_trip() {
        let t = CredentialTarget::Client {
            client: "cl_1".into(),
        };
        let json = serde_json::to_string(&t).expect("encode");
        assert_eq!(json, r#"{"type":"client","client":"cl_1"}"#);
        assert_eq!(
            serde_json::from_str::<CredentialTarget>(&json).expect("decode"),
            t
        );
        let s: CredentialScopes = serde_json::from_str("{}").expect("defaults");
        assert_eq!(s.label(), "view only");
    }
}
