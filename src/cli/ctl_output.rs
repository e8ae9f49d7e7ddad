//! What every `tether ctl` verb prints with: tables for people, JSON for scripts, times, and
//! the hub's errors turned into exit codes. At the bottom of the ctl files, so they import it
//! and it imports none of them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EXIT_NOT_LOGGED_IN, Failure};
use crate::client::ClientError;
use crate::protocol::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

pub(super) fn hub_error(e: ClientError) -> Failure {
    match &e {
        ClientError::Hub(p)
            if matches!(p.code, ErrorCode::Expired | ErrorCode::Unauthenticated) =>
        {
            Failure {
                message: format!("{e}: run tether login again"),
                code: EXIT_NOT_LOGGED_IN,
            }
        }
        _ => Failure::from(e),
    }
}

pub(super) fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Aligned columns for people.
pub(super) fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(w - cell.width() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
}

pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
