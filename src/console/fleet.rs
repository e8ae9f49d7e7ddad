//! The team's workstations as the console holds them: indexed by id, kept sorted by client then
//! hostname, lower-cased once per change, with per-client counts and a cached view (the selected
//! client's rows matching the filter).
//!
//! A desk may have 100k workstations: a presence event must not search or sort the list, a
//! filter keystroke must not lower-case every row, and a draw must not touch more than the rows
//! it shows. So every change updates the index, the order, the counts and the current view in
//! place (O(log n) to find, one `memmove` to insert), and a filter that only grows (the
//! technician typing) narrows the rows it already had instead of scanning all of them.

use std::cell::{Ref, RefCell};
use std::collections::HashMap;

use memchr::memmem::Finder;
use unicode_width::UnicodeWidthStr as _;

use crate::protocol::{ClientId, Presence, WorkstationId, WorkstationInfo};

/// One workstation and what sorting and filtering need of it, computed when it changes.
#[derive(Debug, Clone)]
struct Entry {
    info: WorkstationInfo,
    /// Lower-cased client name and hostname, then the id (unique), as the table sorts.
    key: (String, String, WorkstationId),
    /// Lower-cased hostname, user, OS and client name, `\n`-separated: what the filter searches.
    hay: String,
    /// The widths of its text columns, measured once.
    widths: TextWidths,
}

impl Entry {
    fn new(info: WorkstationInfo) -> Self {
        let key = (
            info.client_name.to_lowercase(),
            info.hostname.to_lowercase(),
            info.id.clone(),
        );
        let hay = format!(
            "{}\n{}\n{}\n{}",
            info.hostname, info.user, info.os, info.client_name
        )
        .to_lowercase();
        let widths = TextWidths {
            hostname: info.hostname.width(),
            client: info.client_name.width(),
            user: info.user.width(),
            os: info.os.width(),
        };
        Self {
            info,
            key,
            hay,
            widths,
        }
    }

    /// Whether its text (what sorting and filtering see) is the same as `other`'s.
    fn same_text(&self, other: &Entry) -> bool {
        self.key == other.key && self.hay == other.hay
    }

    /// Whether it belongs to a view: its client, and every filter term (one finder each, made
    /// once per filter) somewhere in its text.
    fn matches(&self, client: Option<&ClientId>, finders: &[Finder<'static>]) -> bool {
        client.is_none_or(|c| &self.info.client_id == c)
            && finders
                .iter()
                .all(|f| f.find(self.hay.as_bytes()).is_some())
    }
}

/// Online, in-session and total workstations (of the team, or of one client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connected: online or in a session.
    pub online: usize,
    pub in_session: usize,
    pub total: usize,
}

impl Counts {
    fn add(&mut self, presence: Presence, sign: isize) {
        let step = |n: &mut usize| *n = n.saturating_add_signed(sign);
        step(&mut self.total);
        if presence != Presence::Offline {
            step(&mut self.online);
        }
        if presence == Presence::InSession {
            step(&mut self.in_session);
        }
    }
}

/// The widest text of each column among a view's rows (in terminal cells).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextWidths {
    pub hostname: usize,
    pub client: usize,
    pub user: usize,
    pub os: usize,
}

impl TextWidths {
    fn grow(&mut self, other: TextWidths) {
        self.hostname = self.hostname.max(other.hostname);
        self.client = self.client.max(other.client);
        self.user = self.user.max(other.user);
        self.os = self.os.max(other.os);
    }
}

/// The rows of one view (client + filter), in table order.
#[derive(Debug, Clone, Default)]
struct ViewCache {
    /// The fleet's generation these rows reflect; `None`: never built.
    generation: Option<u64>,
    client: Option<ClientId>,
    /// The filter as typed, lower-cased.
    filter: String,
    /// A finder for each of its terms.
    finders: Vec<Finder<'static>>,
    /// Indices into `Fleet::entries`, in table order.
    rows: Vec<usize>,
    online: usize,
    widths: TextWidths,
}

/// How many earlier views are kept (a filter typed that long can be deleted without a search).
const RECENT_VIEWS: usize = 32;

/// The team's workstations. See the module comment for why it is shaped so.
#[derive(Debug, Default)]
pub struct Fleet {
    entries: Vec<Entry>,
    by_id: HashMap<WorkstationId, usize>,
    /// Indices into `entries`, sorted by `Entry::key`.
    order: Vec<usize>,
    /// Bumped by every change of membership, order or text.
    generation: u64,
    team: Counts,
    per_client: HashMap<ClientId, Counts>,
    /// The last view asked for; refreshed on demand, kept current by small changes.
    view: RefCell<ViewCache>,
    /// Earlier views of this generation (the filter as it was typed), newest last: deleting
    /// a character of the filter finds its view here instead of searching every row again.
    recent: RefCell<Vec<ViewCache>>,
}

impl Clone for Fleet {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            by_id: self.by_id.clone(),
            order: self.order.clone(),
            generation: self.generation,
            team: self.team,
            per_client: self.per_client.clone(),
            view: RefCell::new(ViewCache::default()),
            recent: RefCell::new(Vec::new()),
        }
    }
}

/// The `n`th workstation in the order they were added (not the table's order).
impl std::ops::Index<usize> for Fleet {
    type Output = WorkstationInfo;
    fn index(&self, n: usize) -> &WorkstationInfo {
        &self.entries[n].info
    }
}

impl From<Vec<WorkstationInfo>> for Fleet {
    fn from(rows: Vec<WorkstationInfo>) -> Self {
        let mut fleet = Fleet::default();
        fleet.extend(rows);
        fleet
    }
}

impl Fleet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every workstation, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &WorkstationInfo> {
        self.entries.iter().map(|e| &e.info)
    }

    pub fn get(&self, id: &str) -> Option<&WorkstationInfo> {
        self.by_id.get(id).map(|&i| &self.entries[i].info)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Team-wide counts, or one client's.
    pub fn counts(&self, client: Option<&ClientId>) -> Counts {
        match client {
            None => self.team,
            Some(c) => self.per_client.get(c).copied().unwrap_or_default(),
        }
    }

    pub fn clear(&mut self) {
        *self = Self {
            generation: self.generation + 1,
            ..Self::default()
        };
    }

    /// Add a workstation or replace the one with its id; returns the one replaced.
    pub fn upsert(&mut self, info: WorkstationInfo) -> Option<WorkstationInfo> {
        let entry = Entry::new(info);
        match self.by_id.get(&entry.info.id).copied() {
            Some(index) => Some(self.replace(index, entry)),
            None => {
                self.insert(entry);
                None
            }
        }
    }

    /// Change one workstation in place; false when there is none with that id.
    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut WorkstationInfo)) -> bool {
        let Some(index) = self.by_id.get(id).copied() else {
            return false;
        };
        let mut info = self.entries[index].info.clone();
        change(&mut info);
        self.replace(index, Entry::new(info));
        true
    }

    /// Change the `n`th workstation in the order they were added (tests and fixtures).
    pub fn update_nth(&mut self, n: usize, change: impl FnOnce(&mut WorkstationInfo)) -> bool {
        match self.entries.get(n).map(|e| e.info.id.clone()) {
            Some(id) => self.update(&id, change),
            None => false,
        }
    }

    /// Every workstation of a client shows its new name.
    pub fn rename_client(&mut self, client: &ClientId, name: &str) {
        let theirs: Vec<WorkstationId> = self
            .entries
            .iter()
            .filter(|e| &e.info.client_id == client && e.info.client_name != name)
            .map(|e| e.info.id.clone())
            .collect();
        if theirs.is_empty() {
            return;
        }
        for id in theirs {
            if let Some(&index) = self.by_id.get(&id) {
                self.entries[index].info.client_name = name.to_owned();
                let info = self.entries[index].info.clone();
                self.entries[index] = Entry::new(info);
            }
        }
        self.rebuild_order();
    }

    /// Keep only the workstations `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&WorkstationInfo) -> bool) {
        let entries = std::mem::take(&mut self.entries);
        let kept: Vec<WorkstationInfo> = entries
            .into_iter()
            .map(|e| e.info)
            .filter(|w| keep(w))
            .collect();
        self.clear();
        self.extend(kept);
    }

    /// Add or replace many at once (a page of a list): new ones are sorted among themselves and
    /// merged into the order, so a page costs O(n + k log k), not a sort of everything.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = WorkstationInfo>) {
        let mut fresh: Vec<usize> = Vec::new();
        let start = self.entries.len();
        for info in rows {
            let entry = Entry::new(info);
            match self.by_id.get(&entry.info.id).copied() {
                // Twice in this batch: the later copy wins; it is not in the order yet.
                Some(index) if index >= start => {
                    let old = self.entries[index].info.clone();
                    self.count(&old, -1);
                    self.count(&entry.info, 1);
                    self.entries[index] = entry;
                    continue;
                }
                Some(index) => {
                    self.replace(index, entry);
                    continue;
                }
                None => {}
            }
            let index = self.entries.len();
            self.count(&entry.info, 1);
            self.by_id.insert(entry.info.id.clone(), index);
            self.entries.push(entry);
            fresh.push(index);
        }
        if fresh.is_empty() {
            return;
        }
        let entries = &self.entries;
        fresh.sort_unstable_by(|&a, &b| entries[a].key.cmp(&entries[b].key));
        let previous = self.generation;
        self.order = merge_by_key(&self.order, &fresh, entries);
        self.generation += 1;
        // The view, if current, takes the new rows that belong to it the same way.
        let view = self.view.get_mut();
        if view.generation == Some(previous) {
            let belong: Vec<usize> = fresh
                .into_iter()
                .filter(|&i| entries[i].matches(view.client.as_ref(), &view.finders))
                .collect();
            for &i in &belong {
                view.widths.grow(entries[i].widths);
                if entries[i].info.presence != Presence::Offline {
                    view.online += 1;
                }
            }
            view.rows = merge_by_key(&view.rows, &belong, entries);
            view.generation = Some(self.generation);
        }
    }

    /// The rows of a view: `client` (None: all) and a filter (whitespace-separated terms, each
    /// matched case-insensitively against hostname, user, OS and client name).
    pub fn view(&self, client: Option<&ClientId>, filter: &str) -> Visible<'_> {
        let filter = filter.to_lowercase();
        let current = {
            let view = self.view.borrow();
            view.generation == Some(self.generation)
                && view.client.as_ref() == client
                && view.filter == filter
        };
        if !current {
            match self.view.try_borrow_mut() {
                Ok(mut view) => {
                    let mut recent = self.recent.borrow_mut();
                    recent.retain(|v| v.generation == Some(self.generation));
                    let earlier = recent
                        .iter()
                        .rposition(|v| v.client.as_ref() == client && v.filter == filter);
                    let fresh = match earlier {
                        Some(at) => recent.remove(at),
                        None => self.build_view(&view, client, filter),
                    };
                    let old = std::mem::replace(&mut *view, fresh);
                    if old.generation == Some(self.generation) {
                        recent.push(old);
                        if recent.len() > RECENT_VIEWS {
                            recent.remove(0);
                        }
                    }
                }
                // Another view of a different client or filter is still held (rare): this one
                // is built for the caller alone.
                Err(_) => {
                    let fresh = self.build_view(&ViewCache::default(), client, filter);
                    return Visible {
                        fleet: self,
                        rows: Rows::Owned(fresh),
                    };
                }
            }
        }
        Visible {
            fleet: self,
            rows: Rows::Cached(self.view.borrow()),
        }
    }

    fn build_view(&self, old: &ViewCache, client: Option<&ClientId>, filter: String) -> ViewCache {
        // Typing more only narrows: search the rows the shorter filter left.
        // (Only when that leaves few rows: reading many rows in table order jumps around
        // memory, and a pass in memory order is then faster.)
        let narrows = old.generation == Some(self.generation)
            && old.client.as_ref() == client
            && filter.starts_with(&old.filter)
            && old.rows.len() < self.entries.len() / 4;
        let finders = finders(&filter);
        let mut widths = TextWidths::default();
        let mut online = 0;
        let mut take = |entry: &Entry| {
            widths.grow(entry.widths);
            online += usize::from(entry.info.presence != Presence::Offline);
        };
        let rows: Vec<usize> = if narrows {
            old.rows
                .iter()
                .copied()
                .filter(|&i| {
                    let entry = &self.entries[i];
                    let hit = entry.matches(client, &finders);
                    if hit {
                        take(entry);
                    }
                    hit
                })
                .collect()
        } else {
            // Every row: read in memory order (the rows' text lies roughly in that order, so
            // the reads stream instead of jumping), then picked out in table order.
            let hits: Vec<bool> = self
                .entries
                .iter()
                .map(|entry| {
                    let hit = entry.matches(client, &finders);
                    if hit {
                        take(entry);
                    }
                    hit
                })
                .collect();
            self.order.iter().copied().filter(|&i| hits[i]).collect()
        };
        ViewCache {
            generation: Some(self.generation),
            client: client.cloned(),
            filter,
            finders,
            rows,
            online,
            widths,
        }
    }

    fn count(&mut self, info: &WorkstationInfo, sign: isize) {
        self.team.add(info.presence, sign);
        self.per_client
            .entry(info.client_id.clone())
            .or_default()
            .add(info.presence, sign);
    }

    fn insert(&mut self, entry: Entry) {
        let index = self.entries.len();
        self.count(&entry.info, 1);
        let entries = &self.entries;
        let at = self.order.partition_point(|&i| entries[i].key < entry.key);
        self.by_id.insert(entry.info.id.clone(), index);
        self.entries.push(entry);
        self.order.insert(at, index);
        self.generation += 1;
        let entries = &self.entries;
        let view = self.view.get_mut();
        if view.generation == Some(self.generation - 1) {
            view.generation = Some(self.generation);
            let entry = &entries[index];
            if entry.matches(view.client.as_ref(), &view.finders) {
                let at = view.rows.partition_point(|&i| entries[i].key < entry.key);
                view.rows.insert(at, index);
                view.widths.grow(entry.widths);
                view.online += usize::from(entry.info.presence != Presence::Offline);
            }
        }
    }

    /// Put `entry` in slot `index`; returns what was there.
    fn replace(&mut self, index: usize, entry: Entry) -> WorkstationInfo {
        let old_online = self.entries[index].info.presence != Presence::Offline;
        let new_online = entry.info.presence != Presence::Offline;
        let old_info = self.entries[index].info.clone();
        self.count(&old_info, -1);
        self.count(&entry.info, 1);
        if self.entries[index].same_text(&entry) {
            // Presence, access, last seen: the order and every view's rows stay; only the
            // view's online count may move.
            if old_online != new_online {
                let generation = self.generation;
                let recent = self.recent.get_mut();
                for view in recent.iter_mut().chain([self.view.get_mut()]) {
                    if view.generation != Some(generation) {
                        continue;
                    }
                    if entry.matches(view.client.as_ref(), &view.finders) {
                        view.online = if new_online {
                            view.online + 1
                        } else {
                            view.online.saturating_sub(1)
                        };
                    }
                }
            }
            self.entries[index] = entry;
            return old_info;
        }
        // Its text changed (a rename): take it out of the order and put it back in its place.
        let entries = &self.entries;
        let old_key = entries[index].key.clone();
        let at = self.order.partition_point(|&i| entries[i].key < old_key);
        if self.order.get(at) == Some(&index) {
            self.order.remove(at);
        } else {
            self.order.retain(|&i| i != index);
        }
        self.entries[index] = entry;
        let entries = &self.entries;
        let key = &entries[index].key;
        let at = self.order.partition_point(|&i| &entries[i].key < key);
        self.order.insert(at, index);
        self.generation += 1;
        old_info
    }

    fn rebuild_order(&mut self) {
        let entries = &self.entries;
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by(|&a, &b| entries[a].key.cmp(&entries[b].key));
        self.order = order;
        self.generation += 1;
    }
}

/// One finder per whitespace-separated term of a (lower-cased) filter.
fn finders(filter: &str) -> Vec<Finder<'static>> {
    filter
        .split_whitespace()
        .map(|t| Finder::new(t.as_bytes()).into_owned())
        .collect()
}

/// Merge two index lists, each sorted by their entries' keys. `b` is a page (small) and `a`
/// the whole fleet (large): each of `b` finds its place in `a` by binary search, and the runs of
/// `a` between are copied whole, so a page costs O(k log n) comparisons, not O(n).
fn merge_by_key(a: &[usize], b: &[usize], entries: &[Entry]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut from = 0;
    for &new in b {
        let key = &entries[new].key;
        let at = from + a[from..].partition_point(|&i| entries[i].key <= *key);
        out.extend_from_slice(&a[from..at]);
        out.push(new);
        from = at;
    }
    out.extend_from_slice(&a[from..]);
    out
}

enum Rows<'a> {
    Cached(Ref<'a, ViewCache>),
    Owned(ViewCache),
}

impl std::ops::Deref for Rows<'_> {
    type Target = ViewCache;
    fn deref(&self) -> &ViewCache {
        match self {
            Rows::Cached(r) => r,
            Rows::Owned(v) => v,
        }
    }
}

/// The rows of one view, in table order (see [`Fleet::view`]).
pub struct Visible<'a> {
    fleet: &'a Fleet,
    rows: Rows<'a>,
}

impl std::fmt::Debug for Visible<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visible")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Visible<'a> {
    pub fn len(&self) -> usize {
        self.rows.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.rows.is_empty()
    }

    pub fn get(&self, row: usize) -> Option<&'a WorkstationInfo> {
        let fleet: &'a Fleet = self.fleet;
        self.rows.rows.get(row).map(|&i| &fleet.entries[i].info)
    }

    pub fn first(&self) -> Option<&'a WorkstationInfo> {
        self.get(0)
    }

    /// The rows from `start`, at most `count` of them (what a table window shows).
    pub fn window(&self, start: usize, count: usize) -> Vec<&'a WorkstationInfo> {
        let fleet: &'a Fleet = self.fleet;
        let rows = &self.rows.rows;
        let start = start.min(rows.len());
        let end = start.saturating_add(count).min(rows.len());
        rows[start..end]
            .iter()
            .map(|&i| &fleet.entries[i].info)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a WorkstationInfo> + '_ {
        let fleet: &'a Fleet = self.fleet;
        self.rows.rows.iter().map(move |&i| &fleet.entries[i].info)
    }

    /// The row a workstation is on, found by its key (O(log n)).
    pub fn position(&self, id: &str) -> Option<usize> {
        let index = *self.fleet.by_id.get(id)?;
        let entries = &self.fleet.entries;
        let key = &entries[index].key;
        let rows = &self.rows.rows;
        let at = rows.partition_point(|&i| &entries[i].key < key);
        (rows.get(at) == Some(&index)).then_some(at)
    }

    /// Rows that are connected (online or in a session).
    pub fn online(&self) -> usize {
        self.rows.online
    }

    /// The widest hostname, client, user and OS among the rows.
    pub fn widths(&self) -> TextWidths {
        self.rows.widths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn ws(id: &str, client: &str, host: &str, presence: Presence) -> WorkstationInfo {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        WorkstationInfo {
            id: id.into(),
            client_id: format!("c-{client}"),
            client_name: client.into(),
            hostname: host.into(),
            os: "Debian 12".into(),
            user: "ann".into(),
            screen: None,
            agent_version: "0.1.0".into(),
            presence,
            last_seen: at,
            enrolled_at: at,
            unattended: Default::default(),
            requires: Default::default(),
            otp_required: false,
        }
    }

    fn hosts(v: &Visible) -> Vec<String> {
        v.iter().map(|w| w.hostname.clone()).collect()
    }

    /// The same rows computed the slow way: filter then sort everything.
    fn naive(rows: &[WorkstationInfo], client: Option<&str>, filter: &str) -> Vec<String> {
        let terms: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
        let mut out: Vec<&WorkstationInfo> = rows
            .iter()
            .filter(|w| client.is_none_or(|c| w.client_id == c))
            .filter(|w| {
                terms.iter().all(|t| {
                    [&w.hostname, &w.user, &w.os, &w.client_name]
                        .iter()
                        .any(|f| f.to_lowercase().contains(t.as_str()))
                })
            })
            .collect();
        out.sort_by_key(|w| {
            (
                w.client_name.to_lowercase(),
                w.hostname.to_lowercase(),
                w.id.clone(),
            )
        });
        out.into_iter().map(|w| w.hostname.clone()).collect()
    }

    #[test]
    fn rows_are_sorted_by_client_then_hostname_whatever_the_order_they_came_in() {
        let fleet = Fleet::from(vec![
            ws("3", "beta", "zeta", Presence::Online),
            ws("1", "Alpha", "b-host", Presence::Offline),
            ws("2", "alpha", "A-host", Presence::Online),
        ]);
        let view = fleet.view(None, "");
        assert_eq!(hosts(&view), ["A-host", "b-host", "zeta"]);
        assert_eq!(view.online(), 2);
        assert_eq!(view.position("3"), Some(2));
        assert_eq!(view.position("nope"), None);
    }

    #[test]
    fn presence_changes_keep_the_order_and_move_the_counts() {
        let mut fleet = Fleet::from(vec![
            ws("1", "a", "one", Presence::Offline),
            ws("2", "a", "two", Presence::Online),
            ws("3", "b", "three", Presence::Online),
        ]);
        assert_eq!(fleet.view(Some(&"c-a".into()), "").online(), 1);
        fleet.upsert(ws("1", "a", "one", Presence::InSession));
        let view = fleet.view(Some(&"c-a".into()), "");
        assert_eq!(view.online(), 2);
        assert_eq!(hosts(&view), ["one", "two"]);
        drop(view);
        assert_eq!(
            fleet.counts(None),
            Counts {
                online: 3,
                in_session: 1,
                total: 3
            }
        );
        assert_eq!(fleet.counts(Some(&"c-b".into())).total, 1);
    }

    #[test]
    fn the_cached_view_always_equals_filtering_and_sorting_everything() {
        // A pseudo-random walk of inserts, renames, presence changes, pages and filters: after
        // every step the incremental view is compared with the naive one.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut fleet = Fleet::new();
        let mut truth: Vec<WorkstationInfo> = Vec::new();
        let filters = ["", "h1", "h1 a", "h1 a deb", "2", "b", "zz"];
        let mut filter = "";
        let mut client: Option<String> = None;
        for step in 0..2000 {
            match next(6) {
                0 | 1 => {
                    let id = next(300).to_string();
                    let c = ["a", "b", "C"][next(3) as usize];
                    let w = ws(
                        &id,
                        c,
                        &format!("h{}", next(50)),
                        [Presence::Online, Presence::Offline][next(2) as usize],
                    );
                    fleet.upsert(w.clone());
                    match truth.iter_mut().find(|t| t.id == w.id) {
                        Some(t) => *t = w,
                        None => truth.push(w),
                    }
                }
                2 => {
                    let page: Vec<WorkstationInfo> = (0..next(20))
                        .map(|_| {
                            ws(
                                &next(300).to_string(),
                                "b",
                                &format!("H{}", next(50)),
                                Presence::Online,
                            )
                        })
                        .collect();
                    fleet.extend(page.clone());
                    for w in page {
                        match truth.iter_mut().find(|t| t.id == w.id) {
                            Some(t) => *t = w,
                            None => truth.push(w),
                        }
                    }
                }
                3 => filter = filters[next(filters.len() as u64) as usize],
                4 => {
                    client = [None, Some("c-a".to_owned()), Some("c-b".to_owned())]
                        [next(3) as usize]
                        .clone()
                }
                _ => {
                    // Typing one more character of the current filter.
                    if let Some(longer) = filters
                        .iter()
                        .find(|f| f.len() > filter.len() && f.starts_with(filter))
                    {
                        filter = longer;
                    }
                }
            }
            let view = fleet.view(client.as_ref(), filter);
            assert_eq!(
                hosts(&view),
                naive(&truth, client.as_deref(), filter),
                "step {step}, filter {filter:?}, client {client:?}"
            );
            let online = truth
                .iter()
                .filter(|w| client.as_ref().is_none_or(|c| &w.client_id == c))
                .filter(|w| view.position(&w.id).is_some())
                .filter(|w| w.presence != Presence::Offline)
                .count();
            assert_eq!(view.online(), online, "step {step}");
        }
        assert_eq!(fleet.len(), truth.len());
    }

    #[test]
    fn renaming_a_client_moves_its_rows() {
        let mut fleet = Fleet::from(vec![
            ws("1", "a", "one", Presence::Online),
            ws("2", "b", "two", Presence::Online),
        ]);
        assert_eq!(hosts(&fleet.view(None, "")), ["one", "two"]);
        fleet.rename_client(&"c-a".into(), "z");
        assert_eq!(hosts(&fleet.view(None, "")), ["two", "one"]);
        assert_eq!(fleet.get("1").map(|w| w.client_name.as_str()), Some("z"));
    }

    #[test]
    fn two_views_held_at_once_do_not_panic() {
        let fleet = Fleet::from(vec![
            ws("1", "a", "one", Presence::Online),
            ws("2", "b", "two", Presence::Online),
        ]);
        let all = fleet.view(None, "");
        let some = fleet.view(None, "two");
        assert_eq!(all.len(), 2);
        assert_eq!(hosts(&some), ["two"]);
    }
}
