//! The wire protocol between hub, agents and consoles.
//!
//! Control messages are JSON text frames, one serde enum per direction. Every request carries a
//! [`RequestId`] so replies can be matched; the first request on a connection carries
//! [`PROTOCOL_VERSION`]. Pure types only: no tokio, no ratatui, so both ends (and tests) share them.

pub mod credentials;
mod link;
mod otp;
mod page;
pub mod stream;
mod twofa;
mod types;

pub use credentials::{
    CredentialId, CredentialInfo, CredentialScopes, CredentialState, CredentialTarget, GuestInfo,
    RevealedCredential,
};
pub use link::{EnrolmentLink, LinkError};
pub use otp::*;
pub use page::{Cursor, PageRequest};
pub use twofa::*;
pub use types::*;

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change; the hub refuses other versions with [`ErrorCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest control (JSON) message either side accepts. Larger ones are refused unparsed.
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// Largest WebSocket message (of any kind) the transport accepts before closing the connection.
pub const MAX_WS_MESSAGE: usize = 4 * 1024 * 1024;

/// Largest single WebSocket frame.
pub const MAX_WS_FRAME: usize = 1024 * 1024;

/// Largest pixel view (a side) a viewer may ask for; the hub refuses a larger `Watch`.
pub const MAX_VIEW_PIXELS: u32 = 4096;

/// Largest terminal view (a side, in cells) a viewer may ask for.
pub const MAX_VIEW_CELLS: u16 = 1000;

/// Matches a reply to its request. Chosen by the requester, echoed by the responder.
pub type RequestId = u64;

/// A request: the requester's id and what it asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request<B> {
    pub id: RequestId,
    pub body: B,
}

/// A typed protocol error: a stable code for programs, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait before trying again, where the error is a rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Why the workstation refused a connection, where it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
            refusal: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// The one answer to a failed login, whether the user is unknown or the password wrong.
    pub fn invalid_credentials() -> Self {
        Self::new(
            ErrorCode::InvalidCredentials,
            "invalid user name or password",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error on the hub; see the hub's log",
        )
    }
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message could not be parsed or is not allowed in this state.
    BadRequest,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// Authenticate first.
    Unauthenticated,
    /// Unknown user or wrong password (deliberately the same code for both).
    InvalidCredentials,
    /// The login token or enrolment link expired or was revoked.
    Expired,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// No such object (or not visible to this team: the same answer on purpose).
    NotFound,
    /// Already exists.
    Conflict,
    /// Too many attempts; see `retry_after_secs`.
    RateLimited,
    /// The message was larger than [`MAX_CONTROL_MESSAGE`].
    TooLarge,
    /// Something failed on the hub.
    Internal,
    /// The password was right; the 2FA code is missing (ask for it and log in again), wrong
    /// or already used.
    TwoFactorRequired,
    /// 2FA is required for this technician but not active yet: enrol first (sessions are
    /// refused until then).
    TwoFactorSetupRequired,
}

/// Encode a control message as a JSON text frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<String, ProtocolError> {
    serde_json::to_string(msg)
        .map_err(|e| ProtocolError::bad_request(format!("cannot encode: {e}")))
}

/// Decode a control message, enforcing [`MAX_CONTROL_MESSAGE`].
pub fn decode<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ProtocolError> {
    if text.len() > MAX_CONTROL_MESSAGE {
        return Err(ProtocolError::new(
            ErrorCode::TooLarge,
            format!(
                "message of {} bytes exceeds the limit of {MAX_CONTROL_MESSAGE}",
                text.len()
            ),
        ));
    }
    serde_json::from_str(text)
        .map_err(|e| ProtocolError::bad_request(format!("malformed message: {e}")))
}

/// The request id of a request or reply, read from the start of the message without parsing
/// the rest: for a message too large (or too broken) to decode, so that the request it carries
/// or answers fails at once rather than waiting out a timeout. Relies on serde_json's compact
/// output, which both ends use: `{"id":N,...}` (a request) or `{"type":"reply","id":N,...}`.
pub fn envelope_id(text: &str) -> Option<RequestId> {
    let rest = text
        .strip_prefix(r#"{"id":"#)
        .or_else(|| text.strip_prefix(r#"{"type":"reply","id":"#))?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..digits].parse().ok()
}

/// The error for a message over [`MAX_CONTROL_MESSAGE`], as the side that refused it says it.
pub fn too_large(what: &str, bytes: usize) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::TooLarge,
        format!("{what} of {bytes} bytes is over the limit of {MAX_CONTROL_MESSAGE}"),
    )
}

#[cfg(test)]
mod tests;
