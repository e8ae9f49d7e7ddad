//! Wire types of technician 2FA, the users admin view and the audit search (issue 5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Role, TeamId, UserId};

/// A technician's 2FA, as admins see it (DOMAIN.md: off, pending, active).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorState {
    /// Not required and not enabled.
    #[default]
    Off,
    /// Required (for everyone or for this user) but not active yet.
    Pending,
    /// Enrolled and confirmed: every login asks for a code.
    Active,
}

impl TwoFactorState {
    pub fn label(self) -> &'static str {
        match self {
            TwoFactorState::Off => "off",
            TwoFactorState::Pending => "pending",
            TwoFactorState::Active => "active",
        }
    }

    /// From whether 2FA is active and whether it is required.
    pub fn of(active: bool, required: bool) -> Self {
        match (active, required) {
            (true, _) => TwoFactorState::Active,
            (false, true) => TwoFactorState::Pending,
            (false, false) => TwoFactorState::Off,
        }
    }
}

/// The logged-in technician's own 2FA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorStatus {
    pub state: TwoFactorState,
    /// Required for this user (by the global setting or for them).
    pub required: bool,
    /// The admins' global setting: required for everyone.
    pub global: bool,
    /// An enrolment was started and waits for its confirming code.
    #[serde(default)]
    pub enrolling: bool,
}

/// One user in the admins' users view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTwoFactor {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub team_id: TeamId,
    pub team: String,
    pub state: TwoFactorState,
    /// Required for this user by an admin (the global setting aside).
    pub required: bool,
    /// Disabled by an admin: cannot log in.
    #[serde(default)]
    pub disabled: bool,
}

/// Filters of an audit search; every one that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Who did it (user name, `agent:<id>`, `hub`): exact.
    #[serde(default)]
    pub actor: Option<String>,
    /// A workstation, by id or host name.
    #[serde(default)]
    pub workstation: Option<String>,
    /// The action, exact (`login.fail`) or a prefix up to a dot (`login`, `2fa`).
    #[serde(default)]
    pub kind: Option<String>,
    /// At or after.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Before.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl AuditQuery {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// From the console's filter line: `user:bob ws:pc-1 kind:login since:2026-01-31
    /// until:2026-02-01T12:00:00Z`; empty text is no filter.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut query = Self::default();
        for word in text.split_whitespace() {
            let (key, value) = word.split_once(':').unwrap_or(("", word));
            if value.is_empty() {
                return Err(format!("{word:?} has no value after the colon"));
            }
            match key {
                "user" | "who" => query.actor = Some(value.to_owned()),
                "ws" | "workstation" => query.workstation = Some(value.to_owned()),
                "kind" => query.kind = Some(value.to_owned()),
                "since" => query.since = Some(parse_time(value)?),
                "until" => query.until = Some(parse_time(value)?),
                _ => {
                    return Err(format!(
                        "{word:?}: filter with user:NAME ws:HOST kind:KIND since:DATE until:DATE"
                    ));
                }
            }
        }
        Ok(query)
    }

    /// The filter line that `parse` reads back.
    pub fn to_line(&self) -> String {
        let mut words = Vec::new();
        if let Some(v) = &self.actor {
            words.push(format!("user:{v}"));
        }
        if let Some(v) = &self.workstation {
            words.push(format!("ws:{v}"));
        }
        if let Some(v) = &self.kind {
            words.push(format!("kind:{v}"));
        }
        if let Some(v) = self.since {
            words.push(format!(
                "since:{}",
                v.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        if let Some(v) = self.until {
            words.push(format!(
                "until:{}",
                v.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        words.join(" ")
    }
}

/// A time as people type it: RFC 3339 (`2026-01-31T08:00:00Z`) or a date (its midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a time: use 2026-01-31T08:00:00Z or 2026-01-31"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_dates() {
        assert_eq!(
            parse_time("2026-01-31").expect("date").to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-01-31T08:30:00+01:00")
                .expect("time")
                .to_rfc3339(),
            "2026-01-31T07:30:00+00:00"
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn filter_lines_parse_and_print_back() {
        let q = AuditQuery::parse("user:bob  ws:pc-1 kind:login since:2026-01-31").expect("parse");
        assert_eq!(q.actor.as_deref(), Some("bob"));
        assert_eq!(q.workstation.as_deref(), Some("pc-1"));
        assert_eq!(q.kind.as_deref(), Some("login"));
        assert_eq!(AuditQuery::parse(&q.to_line()), Ok(q));
        assert_eq!(AuditQuery::parse("  "), Ok(AuditQuery::default()));
        assert!(AuditQuery::parse("bob").is_err());
        assert!(AuditQuery::parse("user:").is_err());
        assert!(AuditQuery::parse("since:soon").is_err());
    }
}
