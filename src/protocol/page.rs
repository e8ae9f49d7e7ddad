//! Paged lists: every list the hub returns comes a page at a time, each page under a byte
//! budget, so no reply can outgrow [`super::MAX_CONTROL_MESSAGE`] however large a team grows.

use serde::{Deserialize, Serialize};

/// Where the next page of a list starts: the `next` of the page before, passed back as it is.
/// Opaque to clients; the hub refuses one it did not make with a bad-request error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

/// Which page of a list to return. The default is the first page, as large as the hub allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Continue after this cursor; `None` starts at the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Cursor>,
    /// At most this many rows (the hub may return fewer: a page also stops at its byte budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl PageRequest {
    /// The first page.
    pub fn first() -> Self {
        Self::default()
    }

    /// The page after `cursor` (a previous reply's `next`).
    pub fn after(cursor: Cursor) -> Self {
        Self {
            after: Some(cursor),
            limit: None,
        }
    }

    /// At most `limit` rows.
    #[must_use]
    pub fn limit(mut self, limit: Option<u32>) -> Self {
        self.limit = limit;
        self
    }

    /// The first page with no row limit: the form requests took before lists were paged.
    pub fn is_first(&self) -> bool {
        self.after.is_none() && self.limit.is_none()
    }
}
