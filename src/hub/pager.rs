//! One pager for every list the hub returns: rows in cursor order are cut into a page by a row
//! limit and a byte budget, so a reply can never outgrow [`MAX_CONTROL_MESSAGE`] however large
//! the team. Cursors are the sort key of the last row sent, tagged with the list they belong
//! to, in base64: opaque to clients, checked when they come back.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{Cursor, MAX_CONTROL_MESSAGE, PageRequest, ProtocolError};

/// Bytes of serialized rows a page may hold: the rest of the message limit is left for the
/// envelope (request id, reply type, `next`, `total`).
pub const PAGE_BUDGET: usize = 48 * 1024;

/// Rows a page holds at most, whatever the client asks: bounds the rows read from the store.
pub const MAX_PAGE_ROWS: u32 = 1000;

/// Longest cursor the hub hands out; a longer sort key is cut short, never sent.
pub const MAX_CURSOR: usize = 4 * 1024;

// The envelope around a page must fit beside the budget.
const _: () = assert!(PAGE_BUDGET + 2 * MAX_CURSOR + 1024 <= MAX_CONTROL_MESSAGE);

/// One page of a list, and where the next starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<Cursor>,
}

/// How many rows to read from the store for one page: the page's row limit plus one, to know
/// whether more follow.
pub fn fetch_rows(page: &PageRequest) -> u32 {
    rows_wanted(page) + 1
}

/// The page's row limit: what the client asked, within `1..=MAX_PAGE_ROWS`.
pub fn rows_wanted(page: &PageRequest) -> u32 {
    page.limit.unwrap_or(MAX_PAGE_ROWS).clamp(1, MAX_PAGE_ROWS)
}

/// The cursor after a row whose sort key is `key`, in the list `list`.
pub fn cursor<K: Serialize>(list: &str, key: &K) -> Result<Cursor, ProtocolError> {
    let json = serde_json::to_vec(&(list, key)).map_err(|_| ProtocolError::internal())?;
    let text = URL_SAFE_NO_PAD.encode(json);
    if text.len() > MAX_CURSOR {
        return Err(ProtocolError::internal());
    }
    Ok(Cursor(text))
}

/// The sort key a cursor of `list` carries; a cursor the hub did not make for this list is a
/// bad request.
pub fn key<K: DeserializeOwned>(list: &str, cursor: &Cursor) -> Result<K, ProtocolError> {
    let bad = || {
        ProtocolError::bad_request(format!(
            "not a cursor of the {list} list: pass back the `next` of the page before"
        ))
    };
    if cursor.0.len() > MAX_CURSOR {
        return Err(bad());
    }
    let json = URL_SAFE_NO_PAD.decode(&cursor.0).map_err(|_| bad())?;
    let (tag, key): (String, K) = serde_json::from_slice(&json).map_err(|_| bad())?;
    if tag != list {
        return Err(bad());
    }
    Ok(key)
}

/// The key a request's cursor carries, or `None` for the first page.
pub fn start<K: DeserializeOwned>(
    list: &str,
    page: &PageRequest,
) -> Result<Option<K>, ProtocolError> {
    page.after.as_ref().map(|c| key(list, c)).transpose()
}

/// Cut one page from `rows` (in cursor order, starting after the request's cursor; more than
/// fit is fine). Rows are taken while the page has fewer than `limit` and their serialized
/// bytes, with the commas between them, stay within `budget`. `sort_key` gives a row's key for
/// the next cursor. A first row larger than `budget` is an error for this request: a reply over
/// the limit is never built.
pub fn paginate<T, K, I>(
    list: &str,
    rows: I,
    limit: u32,
    budget: usize,
    sort_key: impl Fn(&T) -> K,
) -> Result<Page<T>, ProtocolError>
where
    T: Serialize,
    K: Serialize,
    I: IntoIterator<Item = T>,
{
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let mut taken = Vec::new();
    let mut used = 0usize;
    let mut more = false;
    for row in rows {
        if taken.len() >= limit {
            more = true;
            break;
        }
        let size = serde_json::to_vec(&row)
            .map_err(|_| ProtocolError::internal())?
            .len();
        let comma = usize::from(!taken.is_empty());
        if used + comma + size > budget {
            if taken.is_empty() {
                return Err(ProtocolError::new(
                    crate::protocol::ErrorCode::TooLarge,
                    format!(
                        "a row of the {list} list is {size} bytes, more than a page may hold ({budget})"
                    ),
                ));
            }
            more = true;
            break;
        }
        used += comma + size;
        taken.push(row);
    }
    let next = match (more, taken.last()) {
        (true, Some(last)) => Some(cursor(list, &sort_key(last))?),
        _ => None,
    };
    Ok(Page { rows: taken, next })
}

/// A page of a list the hub holds whole in memory (small lists: groups, open sessions, users):
/// sorted by `sort_key`, the rows after the request's cursor, then [`paginate`].
pub fn page_in_memory<T, K>(
    list: &str,
    mut rows: Vec<T>,
    page: &PageRequest,
    sort_key: impl Fn(&T) -> K,
) -> Result<Page<T>, ProtocolError>
where
    T: Serialize,
    K: Serialize + DeserializeOwned + Ord,
{
    rows.sort_by_key(|r| sort_key(r));
    let after: Option<K> = start(list, page)?;
    if let Some(after) = after {
        rows.retain(|r| sort_key(r) > after);
    }
    paginate(list, rows, rows_wanted(page), PAGE_BUDGET, sort_key)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::protocol::{
        ConsoleReply, HubToConsole, MAX_CONTROL_MESSAGE, Presence, WorkstationInfo, encode,
    };

    fn workstation(i: usize, hostname_len: usize) -> WorkstationInfo {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 30, 0)
            .single()
            .expect("valid time");
        WorkstationInfo {
            id: format!("ws_{i:08}"),
            client_id: "cl_1".into(),
            client_name: "Acme \"quoted\" \u{e9}".into(),
            hostname: "h".repeat(hostname_len),
            os: "Debian 12".into(),
            user: "alice".into(),
            screen: None,
            agent_version: "0.1.0".into(),
            presence: Presence::Online,
            last_seen: t,
            enrolled_at: t,
            unattended: Default::default(),
            requires: Default::default(),
            otp_required: false,
        }
    }

    /// The whole reply as it goes on the wire, with the largest id and total.
    fn reply_bytes(page: Page<WorkstationInfo>) -> usize {
        encode(&HubToConsole::Reply {
            id: u64::MAX,
            result: Ok(ConsoleReply::Workstations {
                workstations: page.rows,
                next: page.next,
                total: Some(u64::MAX),
            }),
        })
        .expect("encode")
        .len()
    }

    #[test]
    fn replies_built_from_pages_never_exceed_the_message_limit() {
        // A small deterministic generator: rows of random sizes, from tiny to near the budget.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next_len = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).expect("fits") % 12_000
        };
        for round in 0..20 {
            let rows: Vec<_> = (0..300).map(|i| workstation(i, next_len())).collect();
            let mut after: Option<Cursor> = None;
            let mut seen = 0;
            loop {
                let request = PageRequest {
                    after: after.clone(),
                    limit: None,
                };
                let start: Option<String> = start("workstations", &request).expect("own cursor");
                let remaining = rows
                    .iter()
                    .filter(|w| start.as_ref().is_none_or(|s| w.id > *s))
                    .cloned();
                let page = paginate("workstations", remaining, 1000, PAGE_BUDGET, |w| {
                    w.id.clone()
                })
                .expect("page");
                assert!(
                    !page.rows.is_empty(),
                    "round {round}: an empty page mid-list"
                );
                seen += page.rows.len();
                after = page.next.clone();
                let bytes = reply_bytes(page);
                assert!(
                    bytes <= MAX_CONTROL_MESSAGE,
                    "round {round}: a reply of {bytes} bytes"
                );
                if after.is_none() {
                    break;
                }
            }
            assert_eq!(seen, rows.len(), "round {round}: every row listed once");
        }
    }

    #[test]
    fn a_row_larger_than_the_budget_is_an_error_not_an_oversized_reply() {
        let rows = vec![workstation(1, 70 * 1024)];
        let err = paginate("workstations", rows, 10, PAGE_BUDGET, |w| w.id.clone())
            .expect_err("too large");
        assert_eq!(err.code, crate::protocol::ErrorCode::TooLarge);
        assert!(err.message.contains("more than a page may hold"), "{err}");
    }

    #[test]
    fn an_oversized_row_after_others_ends_the_page_before_it() {
        let rows = vec![workstation(1, 10), workstation(2, 70 * 1024)];
        let page = paginate("workstations", rows, 10, PAGE_BUDGET, |w| w.id.clone()).expect("page");
        assert_eq!(page.rows.len(), 1);
        let after: String = key("workstations", page.next.as_ref().expect("more")).expect("key");
        assert_eq!(after, "ws_00000001");
    }

    #[test]
    fn an_empty_list_is_one_empty_last_page() {
        let page = paginate(
            "workstations",
            Vec::<WorkstationInfo>::new(),
            10,
            PAGE_BUDGET,
            |w| w.id.clone(),
        )
        .expect("page");
        assert!(page.rows.is_empty());
        assert_eq!(page.next, None);
    }

    #[test]
    fn rows_that_fill_the_budget_exactly_fit_and_one_byte_more_does_not() {
        let row = workstation(1, 100);
        let size = serde_json::to_vec(&row).expect("json").len();
        let rows = || {
            vec![
                workstation(1, 100),
                workstation(2, 100),
                workstation(3, 100),
            ]
        };
        // Three rows and two commas: exactly the budget.
        let exact = 3 * size + 2;
        let page = paginate("workstations", rows(), 10, exact, |w| w.id.clone()).expect("page");
        assert_eq!(page.rows.len(), 3);
        assert_eq!(page.next, None, "everything fit: the last page");
        let page = paginate("workstations", rows(), 10, exact - 1, |w| w.id.clone()).expect("page");
        assert_eq!(page.rows.len(), 2);
        assert!(page.next.is_some());
    }

    #[test]
    fn the_row_limit_ends_a_page_with_a_cursor_and_a_full_last_page_has_none() {
        let rows = || (0..5).map(|i| workstation(i, 5)).collect::<Vec<_>>();
        let page =
            paginate("workstations", rows(), 3, PAGE_BUDGET, |w| w.id.clone()).expect("page");
        assert_eq!(page.rows.len(), 3);
        assert!(page.next.is_some());
        let page =
            paginate("workstations", rows(), 5, PAGE_BUDGET, |w| w.id.clone()).expect("page");
        assert_eq!(page.rows.len(), 5);
        assert_eq!(page.next, None);
    }

    #[test]
    fn cursors_round_trip_and_foreign_or_forged_ones_are_refused() {
        let c = cursor("audit", &42_i64).expect("cursor");
        assert_eq!(key::<i64>("audit", &c).expect("key"), 42);
        let err = key::<i64>("workstations", &c).expect_err("another list");
        assert_eq!(err.code, crate::protocol::ErrorCode::BadRequest);
        assert!(key::<i64>("audit", &Cursor("!!not base64".into())).is_err());
        assert!(key::<i64>("audit", &Cursor("x".repeat(MAX_CURSOR + 1))).is_err());
    }

    #[test]
    fn in_memory_lists_page_in_key_order_after_the_cursor() {
        let rows: Vec<u32> = (0..2500).rev().collect();
        let first = page_in_memory("n", rows.clone(), &PageRequest::default(), |n| *n).expect("p");
        assert_eq!(first.rows.len(), MAX_PAGE_ROWS as usize);
        assert_eq!(first.rows[0], 0);
        let next = first.next.expect("more");
        let second = page_in_memory("n", rows, &PageRequest::after(next), |n| *n).expect("p");
        assert_eq!(second.rows[0], MAX_PAGE_ROWS);
    }
}
