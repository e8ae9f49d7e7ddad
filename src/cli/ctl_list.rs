//! Lists in `tether ctl`: the hub answers a page at a time, so every list fetches its pages in
//! turn until the last (or `--limit` rows), and JSON output streams as pages arrive: memory
//! stays bounded however large the team.

use std::future::Future;
use std::io::Write;

use serde::Serialize;

use super::Failure;
use crate::protocol::{Cursor, PageRequest};

/// How a list is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON array, written row by row as pages arrive.
    Json,
    /// One JSON record a line, flushed after each page.
    JsonLines,
}

impl Format {
    pub fn new(json: bool, jsonl: bool) -> Self {
        match (json, jsonl) {
            (_, true) => Self::JsonLines,
            (true, false) => Self::Json,
            (false, false) => Self::Table,
        }
    }
}

/// What `--limit` and the output format ask of a list.
#[derive(Debug, Clone, Copy)]
pub struct ListOptions {
    pub format: Format,
    /// Stop after this many rows; `None` lists everything.
    pub limit: Option<u64>,
}

/// One page as the hub returned it: its rows and where the next starts.
pub type Fetched<T> = (Vec<T>, Option<Cursor>);

/// Fetch pages until the last one (or `limit` rows), handing each page's rows to `on_rows`.
pub async fn each_page<T, Fut>(
    limit: Option<u64>,
    mut fetch: impl FnMut(PageRequest) -> Fut,
    mut on_rows: impl FnMut(Vec<T>) -> Result<(), Failure>,
) -> Result<(), Failure>
where
    Fut: Future<Output = Result<Fetched<T>, Failure>>,
{
    let mut after: Option<Cursor> = None;
    let mut left = limit;
    loop {
        if left == Some(0) {
            return Ok(());
        }
        let page = PageRequest {
            after: after.take(),
            limit: left.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        };
        let (mut rows, next) = fetch(page).await?;
        if let Some(n) = left {
            rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
            left = Some(n - rows.len() as u64);
        }
        let empty = rows.is_empty();
        on_rows(rows)?;
        match next {
            // A page with no rows but a cursor would loop forever: the hub never sends one.
            Some(cursor) if !empty => after = Some(cursor),
            _ => return Ok(()),
        }
    }
}

/// Every page's rows in one list (for the short lists whose output is not one row a line).
pub async fn collect<T, Fut>(
    limit: Option<u64>,
    fetch: impl FnMut(PageRequest) -> Fut,
) -> Result<Vec<T>, Failure>
where
    Fut: Future<Output = Result<Fetched<T>, Failure>>,
{
    let mut all = Vec::new();
    each_page(limit, fetch, |rows| {
        all.extend(rows);
        Ok(())
    })
    .await?;
    Ok(all)
}

/// Fetch and print a list: JSON streamed page by page, a table once every page is in (its
/// columns are as wide as the widest cell).
pub async fn print<T, Fut>(
    options: ListOptions,
    fetch: impl FnMut(PageRequest) -> Fut,
    header: &[&str],
    cells: impl Fn(T) -> Vec<String>,
) -> Result<(), Failure>
where
    T: Serialize,
    Fut: Future<Output = Result<Fetched<T>, Failure>>,
{
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut table = Vec::new();
    let mut first = true;
    if options.format == Format::Json {
        out.write_all(b"[")?;
    }
    each_page(options.limit, fetch, |rows| {
        for row in rows {
            match options.format {
                Format::Table => table.push(cells(row)),
                Format::Json => {
                    out.write_all(if first { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut out, &row)?;
                }
                Format::JsonLines => {
                    serde_json::to_writer(&mut out, &row)?;
                    out.write_all(b"\n")?;
                }
            }
            first = false;
        }
        out.flush()?;
        Ok(())
    })
    .await?;
    match options.format {
        Format::Table => super::ctl_output::print_table(header, table),
        Format::Json => {
            out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
            out.flush()?;
        }
        Format::JsonLines => {}
    }
    Ok(())
}
