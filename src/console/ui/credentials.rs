//! The support credentials dialogs: choose duration and scopes, see them once, or decide about
//! credentials that are already active; and the list of the team's credentials (`C`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

use super::{hard_wrap, hints_line, spinner, truncate, word_wrap};
use crate::console::keymap::Layer;
use crate::console::state::{CredentialsChoice, CredentialsDialog, CredentialsStage, State};
use crate::console::theme::{Role, Theme};
use crate::console::update::{credential_state_at, hours_label};
use crate::protocol::credentials::expires_in;
use crate::protocol::{CredentialInfo, CredentialState, CredentialTarget};

const LABEL: usize = 15;

/// Title, border role and lines of the dialog.
pub(super) fn dialog(
    state: &State,
    theme: &Theme,
    width: usize,
    dialog: &CredentialsDialog,
) -> (Span<'static>, Role, Vec<Line<'static>>) {
    let hints = |layer| {
        hints_line(
            state,
            theme,
            layer,
            u16::try_from(width).unwrap_or(u16::MAX),
        )
    };
    let target = match &dialog.target {
        CredentialTarget::Workstation { .. } => dialog.target_label.clone(),
        CredentialTarget::Client { .. } => {
            format!("all workstations of {}", dialog.target_label)
        }
    };
    match &dialog.stage {
        CredentialsStage::Choose(choice) => {
            let mut lines = prose(
                &format!(
                    "For someone without an account: they log in as a guest and see only {target}."
                ),
                width,
                theme.style(Role::Text),
            );
            lines.push(Line::default());
            lines.extend(choice_lines(state, theme, choice));
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsForm));
            (
                Span::styled(
                    format!(" Support credentials · {} ", dialog.target_label),
                    theme.style(Role::Title),
                ),
                Role::BorderFocused,
                lines,
            )
        }
        CredentialsStage::Waiting { what } => {
            let lines = vec![
                Line::styled(
                    format!("{} {what}", spinner(state)),
                    theme.style(Role::Accent),
                ),
                Line::default(),
                hints(Layer::CredentialsForm),
            ];
            (
                Span::styled(
                    format!(" Support credentials · {} ", dialog.target_label),
                    theme.style(Role::Title),
                ),
                Role::BorderFocused,
                lines,
            )
        }
        CredentialsStage::Revealed { credential, reveal } => {
            let mut lines = prose(
                &format!(
                    "Give these to the person you help with {target}. They are shown only now: \
                     the hub keeps only hashes, and nothing can show them again."
                ),
                width,
                theme.style(Role::Warning),
            );
            lines.push(Line::default());
            let until = format!(
                "{} (in {})",
                reveal.expires_at.format("%Y-%m-%d %H:%M UTC"),
                expires_in(state.now, reveal.expires_at)
            );
            let rows = [
                ("Hub", reveal.hub.clone(), Role::Accent),
                ("User name", reveal.user.clone(), Role::Accent),
                (
                    "Password",
                    reveal.password.expose().to_owned(),
                    Role::Accent,
                ),
                (
                    "Security code",
                    reveal.code.expose().to_owned(),
                    Role::Accent,
                ),
                ("Expires", until, Role::Text),
                ("Scopes", credential.scopes.label(), Role::Text),
                ("Certificate", reveal.fingerprint.clone(), Role::Muted),
            ];
            for (label, value, role) in rows {
                field(theme, width, label, &value, role, &mut lines);
            }
            lines.push(Line::default());
            lines.extend(prose(
                "They log in with tether console (Ctrl-G on the login form) or tether login --guest.",
                width,
                theme.style(Role::Muted),
            ));
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsReveal));
            (
                Span::styled(
                    format!(
                        " Support credentials · {} · shown once ",
                        dialog.target_label
                    ),
                    theme.style(Role::Warning),
                ),
                Role::Warning,
                lines,
            )
        }
        CredentialsStage::AlreadyActive {
            credential,
            message,
        } => {
            let mut lines = prose(&format!("{message}."), width, theme.style(Role::Text));
            lines.push(Line::default());
            field(
                theme,
                width,
                "Guest",
                &credential.user,
                Role::Accent,
                &mut lines,
            );
            field(
                theme,
                width,
                "Scopes",
                &credential.scopes.label(),
                Role::Text,
                &mut lines,
            );
            lines.push(Line::default());
            lines.extend(prose(
                "Revoke them (their guests are disconnected at once), regenerate them (revoke, \
                 then issue new ones), or keep them.",
                width,
                theme.style(Role::Muted),
            ));
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsActive));
            (
                Span::styled(
                    " Support credentials already active ",
                    theme.style(Role::Warning),
                ),
                Role::Warning,
                lines,
            )
        }
        CredentialsStage::Confirm {
            credential,
            regenerate,
        } => {
            let (title, text) = if *regenerate {
                (
                    " Regenerate support credentials? ",
                    format!(
                        "Regenerate the support credentials of {} for {target}? They are revoked \
                         (their guests are disconnected at once) and new ones with the same \
                         duration and scopes are issued; the new password and code are shown once.",
                        credential.user
                    ),
                )
            } else {
                (
                    " Revoke support credentials? ",
                    format!(
                        "Revoke the support credentials of {} for {target}? Their guests are \
                         disconnected at once, and they cannot log in again.",
                        credential.user
                    ),
                )
            };
            let mut lines = prose(&text, width, theme.style(Role::Text));
            lines.push(Line::default());
            field(
                theme,
                width,
                "Scopes",
                &credential.scopes.label(),
                Role::Text,
                &mut lines,
            );
            field(
                theme,
                width,
                "Issued by",
                &credential.issued_by,
                Role::Text,
                &mut lines,
            );
            field(
                theme,
                width,
                "Expires",
                &expiry_long(state, credential),
                Role::Text,
                &mut lines,
            );
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsConfirm));
            (
                Span::styled(title, theme.style(Role::Warning)),
                Role::Warning,
                lines,
            )
        }
    }
}

/// "2026-03-03 09:30 UTC (in 24 hours)", or when they ended.
fn expiry_long(state: &State, credential: &CredentialInfo) -> String {
    let at = credential.expires_at.format("%Y-%m-%d %H:%M UTC");
    match credential_state_at(credential, state.now) {
        CredentialState::Active => {
            format!("{at} (in {})", expires_in(state.now, credential.expires_at))
        }
        CredentialState::Expired => format!("{at} (expired)"),
        CredentialState::Revoked => match credential.revoked_at {
            Some(when) => format!("{at} (revoked {})", when.format("%Y-%m-%d %H:%M UTC")),
            None => format!("{at} (revoked)"),
        },
    }
}

/// The expiry column: when, and for active ones how long is left; shorter when narrow.
fn expiry_cell(state: &State, credential: &CredentialInfo, wide: bool) -> String {
    let ends = match credential_state_at(credential, state.now) {
        CredentialState::Revoked => credential.revoked_at.unwrap_or(credential.expires_at),
        _ => credential.expires_at,
    };
    let at = ends.format("%m-%d %H:%M").to_string();
    match (credential_state_at(credential, state.now), wide) {
        (CredentialState::Active, true) => {
            format!("{at} · in {}", expires_in(state.now, credential.expires_at))
        }
        (CredentialState::Active, false) => {
            // "in 23 h": 7 days fit the column too.
            let left = expires_in(state.now, credential.expires_at)
                .replace(" hours", " h")
                .replace(" hour", " h")
                .replace(" minutes", " min")
                .replace(" minute", " min");
            format!("in {left}")
        }
        _ => at,
    }
}

/// The support credentials view's body: the team's credentials, newest first.
pub(super) fn draw_list(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let list = &state.credential_list;
    let active = list
        .items
        .iter()
        .filter(|c| credential_state_at(c, state.now) == CredentialState::Active)
        .count();
    let team = state
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .map(|u| format!(" · team {}", u.team))
        .unwrap_or_default();
    let title = format!(
        "Support credentials{team} · {active} active of {}{}",
        list.items.len(),
        if list.loading { " · loading…" } else { "" }
    );
    let block = super::main::pane_block(theme, &title, true);
    if list.items.is_empty() {
        let text = match (&list.error, list.loading) {
            (Some(error), _) => Line::styled(error.clone(), theme.style(Role::Danger)),
            (None, true) => Line::styled("Loading…", theme.style(Role::Muted)),
            (None, false) => Line::styled(
                "No support credentials in the last 7 days. Select a workstation and press c to issue some.",
                theme.style(Role::Muted),
            ),
        };
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    // At 80 columns the date goes from the expiry and the columns narrow; wider, each gets room.
    let wide = area.width >= 110;
    let widths = if wide {
        [
            Constraint::Length(16),
            Constraint::Fill(1),
            Constraint::Length(24),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(25),
        ]
    } else {
        [
            Constraint::Length(14),
            Constraint::Fill(1),
            Constraint::Length(16),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(11),
        ]
    };
    let header = Row::new([
        "GUEST",
        "TARGET",
        "SCOPES",
        if wide { "ISSUED BY" } else { "BY" },
        "STATE",
        "EXPIRES",
    ])
    .style(theme.style(Role::TableHeader));
    let fixed: u16 = widths
        .iter()
        .map(|w| match w {
            Constraint::Length(n) => *n,
            _ => 0,
        })
        .sum();
    // Borders, the highlight symbol and the gaps between the six columns.
    let target_width = area.width.saturating_sub(2 + 2 + 5 + fixed);
    let width_of = |i: usize| match widths[i] {
        Constraint::Length(n) => usize::from(n),
        _ => usize::from(target_width),
    };
    let rows = list.items.iter().map(|c| {
        let now_state = credential_state_at(c, state.now);
        let (role, text) = match now_state {
            CredentialState::Active => (Role::Success, Role::Text),
            CredentialState::Expired => (Role::Muted, Role::Muted),
            CredentialState::Revoked => (Role::Danger, Role::Muted),
        };
        let target = match &c.target {
            CredentialTarget::Workstation { .. } => c.target_label.clone(),
            CredentialTarget::Client { .. } => format!("{} (all)", c.target_label),
        };
        let cell = |text_value: String, i: usize, role: Role| {
            Cell::from(Span::styled(
                truncate(&text_value, width_of(i)),
                theme.style(role),
            ))
        };
        Row::new(vec![
            cell(c.user.clone(), 0, text),
            cell(target, 1, text),
            cell(c.scopes.label(), 2, text),
            cell(c.issued_by.clone(), 3, text),
            cell(now_state.label().to_owned(), 4, role),
            cell(expiry_cell(state, c, wide), 5, text),
        ])
    });
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.style(Role::Selected))
        .highlight_symbol("› ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut table_state = TableState::default();
    table_state.select(Some(list.selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn prose(text: &str, width: usize, style: ratatui::style::Style) -> Vec<Line<'static>> {
    word_wrap(text, width)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// `Label          value`, the value hard-wrapped under itself when long.
fn field(
    theme: &Theme,
    width: usize,
    label: &str,
    value: &str,
    role: Role,
    lines: &mut Vec<Line<'static>>,
) {
    let room = width.saturating_sub(LABEL).max(8);
    for (i, part) in hard_wrap(value, room).into_iter().enumerate() {
        let head = if i == 0 { label } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("{head:<LABEL$}"), theme.style(Role::Muted)),
            Span::styled(part, theme.style(role)),
        ]));
    }
}

fn choice_lines(state: &State, theme: &Theme, choice: &CredentialsChoice) -> Vec<Line<'static>> {
    let check = |on: bool| if on { "[x]" } else { "[ ]" };
    let until = state.now + chrono::Duration::hours(i64::from(choice.hours));
    let rows = [
        (
            "Duration",
            format!("◂ {} ▸", hours_label(choice.hours)),
            format!("  until {}", until.format("%Y-%m-%d %H:%M UTC")),
        ),
        (
            "Control",
            check(choice.scopes.control).to_owned(),
            if choice.scopes.control {
                "  keyboard and mouse".to_owned()
            } else {
                "  off: view only".to_owned()
            },
        ),
        (
            "Chat",
            check(choice.scopes.chat).to_owned(),
            "  may see chat".to_owned(),
        ),
        (
            "History",
            check(choice.scopes.history).to_owned(),
            "  may see the session history".to_owned(),
        ),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (label, value, note))| {
            let focused = i == choice.row;
            let marker = if focused { "▸ " } else { "  " };
            Line::from(vec![
                Span::styled(
                    format!("{marker}{label:<11}"),
                    theme.style(if focused { Role::Accent } else { Role::Muted }),
                ),
                Span::styled(
                    value,
                    theme.style(if focused { Role::Selected } else { Role::Text }),
                ),
                Span::styled(note, theme.style(Role::Muted)),
            ])
        })
        .collect()
}
