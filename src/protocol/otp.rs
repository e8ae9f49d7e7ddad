//! One-time passwords on the wire (DOMAIN.md, "One-time passwords (OTP)"): what a technician
//! asks for, what the hub answers, the outbox admins read, and the typed form of a code.
//!
//! A code is 16 characters from a 32-letter alphabet without look-alikes (80 bits), shown in
//! four groups (`XXXX-XXXX-XXXX-XXXX`). Input is accepted in any case, with or without dashes
//! and spaces.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::WorkstationId;

/// The characters a code is made of: no 0/O or 1/I look-alikes.
pub const OTP_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters in a code (5 bits each: 80 bits).
pub const OTP_LEN: usize = 16;

/// A code as typed, in its canonical form (upper case, no separators), or why it cannot be one.
pub fn normalize_otp(input: &str) -> Result<String, String> {
    let mut out = String::with_capacity(OTP_LEN);
    for c in input.chars() {
        if c == '-' || c == ' ' {
            continue;
        }
        let up = c.to_ascii_uppercase();
        if !up.is_ascii() || !OTP_ALPHABET.contains(&(up as u8)) {
            return Err(format!(
                "{c:?} is not in a one-time password: they use 2-9 and A-Z without I and O"
            ));
        }
        out.push(up);
    }
    if out.len() != OTP_LEN {
        return Err(format!(
            "a one-time password has {OTP_LEN} characters (XXXX-XXXX-XXXX-XXXX), this has {}",
            out.len()
        ));
    }
    Ok(out)
}

/// A canonical code in groups of four: `ABCD-EFGH-JKMN-PQRS`.
pub fn format_otp(canonical: &str) -> String {
    let chars: Vec<char> = canonical.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// How a code was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtpChannel {
    /// By e-mail over SMTP.
    Email,
    /// Into the hub's outbox, for an admin to pass on.
    Outbox,
}

/// Where a code went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpDelivery {
    pub channel: OtpChannel,
    /// The e-mail addresses it was (or was meant to be) sent to.
    pub to: Vec<String>,
    /// Why it is in the outbox: no mail server, or the e-mail failed (then the requester is told).
    #[serde(default)]
    pub error: Option<String>,
}

/// The hub's answer to an OTP request or resend. Never carries the code itself: that goes out
/// of band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpIssued {
    pub id: String,
    pub workstation_id: WorkstationId,
    pub hostname: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Asked for with a reason and delivered to the admins.
    pub emergency: bool,
    /// The same code sent again.
    pub resent: bool,
    pub delivery: OtpDelivery,
}

/// A message in the hub's outbox (mail the hub could not, or was not set up to, send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who it is for (e-mail addresses, comma-separated).
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `otp` or `emergency`.
    pub kind: String,
    /// Why it is here rather than sent.
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_has_32_distinct_characters_without_look_alikes() {
        let mut seen = std::collections::HashSet::new();
        for c in OTP_ALPHABET {
            assert!(seen.insert(*c), "{} twice", *c as char);
            assert!(!b"01IO".contains(c), "{} is a look-alike", *c as char);
        }
    }

    #[test]
    fn input_is_case_and_dash_insensitive() {
        let code = "ABCD-EFGH-JKMN-PQRS";
        assert_eq!(normalize_otp(code).as_deref(), Ok("ABCDEFGHJKMNPQRS"));
        assert_eq!(
            normalize_otp("abcdefghjkmnpqrs").as_deref(),
            Ok("ABCDEFGHJKMNPQRS")
        );
        assert_eq!(
            normalize_otp(" abcd efgh-jkmn pqrs ").as_deref(),
            Ok("ABCDEFGHJKMNPQRS")
        );
        assert_eq!(format_otp("ABCDEFGHJKMNPQRS"), code);
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        assert!(
            normalize_otp("ABCD-EFGH-JKMN-PQR")
                .expect_err("refused")
                .contains("16")
        );
        assert!(
            normalize_otp("0BCD-EFGH-JKMN-PQRS")
                .expect_err("refused")
                .contains("'0'")
        );
        assert!(normalize_otp("ÄBCD-EFGH-JKMN-PQRS").is_err());
    }
}
