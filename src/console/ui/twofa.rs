//! Issue 5's screens: the user menu, "Activate now / later", enrolment (a QR code drawn with
//! half blocks, black on white whatever the theme, so phones read it), the admin password
//! prompt, the users view and the audit log.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, HighlightSpacing, Paragraph, Row, Table, TableState,
};
use unicode_width::UnicodeWidthStr;

use super::{centered, hard_wrap, hints_line, truncate, word_wrap};
use crate::console::keymap::Layer;
use crate::console::state::{Dialog, State};
use crate::console::theme::{Role, Theme};
use crate::console::update::twofa::{EnrolDialog, menu_items};
use crate::protocol::TwoFactorState;
use crate::render::qr::QrModules;

/// A bordered box over the screen, cleared first; returns the inside (one column of padding).
fn popup(theme: &Theme, frame: &mut Frame, rect: Rect, title: &str, border: Role) -> Rect {
    let area = frame.area();
    super::clear_under(frame, area, rect, theme.style(Role::Text));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style(border))
        .style(theme.style(Role::Text))
        .title(Span::styled(format!(" {title} "), theme.style(Role::Title)));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    }
}

fn set_cursor(frame: &mut Frame, inner: Rect, row: usize, column: usize) {
    let position = Position {
        x: inner.x + u16::try_from(column).unwrap_or(0),
        y: inner.y + u16::try_from(row).unwrap_or(0),
    };
    if position.x < inner.right() && position.y < inner.bottom() {
        frame.set_cursor_position(position);
    }
}

fn field(theme: &Theme, value: &str, width: usize) -> Line<'static> {
    let shown = truncate(value, width);
    let pad = width.saturating_sub(shown.width());
    Line::from(Span::styled(
        format!("{shown}{}", " ".repeat(pad)),
        theme.style(Role::Input),
    ))
}

/// The dialogs of this module.
pub(super) fn draw_dialog(
    state: &State,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    dialog: &Dialog,
) {
    match dialog {
        Dialog::UserMenu { selected } => {
            let items = menu_items(state);
            let mut lines: Vec<Line> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let style = if i == *selected {
                        theme.style(Role::Selected)
                    } else {
                        theme.style(Role::Text)
                    };
                    Line::styled(format!(" {:<24}", item.label(state)), style)
                })
                .collect();
            lines.push(Line::default());
            lines.push(hints_line(state, theme, Layer::UserMenu, 28));
            let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
            let who = state.me().unwrap_or("you");
            let inner = popup(
                theme,
                frame,
                centered(area, 32, height),
                who,
                Role::BorderFocused,
            );
            frame.render_widget(Paragraph::new(lines), inner);
        }
        Dialog::TwoFactorOffer => {
            let width = 64u16.min(area.width.saturating_sub(2));
            let text_width = usize::from(width.saturating_sub(4));
            let mut lines = vec![Line::default()];
            lines.extend(
                word_wrap(
                    "Two-factor authentication is required for your account, and it is not active yet.",
                    text_width,
                )
                .into_iter()
                .map(Line::from),
            );
            lines.push(Line::default());
            lines.extend(
                word_wrap(
                    "Activate now: scan a QR code with an authenticator app, confirm one code, then log in again with 2FA.",
                    text_width,
                )
                .into_iter()
                .map(Line::from),
            );
            lines.extend(
                word_wrap(
                    "Activate later: you may browse, but the hub refuses every remote session until 2FA is active.",
                    text_width,
                )
                .into_iter()
                .map(|l| Line::styled(l, theme.style(Role::Warning))),
            );
            lines.push(Line::default());
            lines.push(hints_line(state, theme, Layer::TwoFactorOffer, width - 4));
            let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
            let inner = popup(
                theme,
                frame,
                centered(area, width, height),
                "Two-factor authentication required",
                Role::Warning,
            );
            frame.render_widget(Paragraph::new(lines), inner);
        }
        Dialog::Enrol(enrol) => draw_enrol(state, theme, frame, area, enrol),
        Dialog::AdminPassword(prompt) => {
            let width = 60u16.min(area.width.saturating_sub(2));
            let text_width = usize::from(width.saturating_sub(4));
            let mut lines: Vec<Line> = word_wrap(&prompt.change.describe(), text_width)
                .into_iter()
                .map(|l| Line::styled(l, theme.style(Role::Accent)))
                .collect();
            lines.push(Line::default());
            lines.push(Line::from(
                "Admin changes to 2FA need your own password again:",
            ));
            let row = lines.len();
            lines.push(field(
                theme,
                &"•".repeat(prompt.input.value.chars().count()),
                text_width,
            ));
            if let Some(error) = &prompt.error {
                lines.push(Line::styled(error.clone(), theme.style(Role::Danger)));
            }
            lines.push(Line::default());
            lines.push(hints_line(state, theme, Layer::AdminPassword, width - 4));
            let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
            let inner = popup(
                theme,
                frame,
                centered(area, width, height),
                "Your password",
                Role::BorderFocused,
            );
            frame.render_widget(Paragraph::new(lines), inner);
            set_cursor(frame, inner, row, prompt.input.cursor);
        }
        _ => {}
    }
}

/// The enrolment: the QR code on the left, the URI, the key and the code field on the right.
fn draw_enrol(state: &State, theme: &Theme, frame: &mut Frame, area: Rect, enrol: &EnrolDialog) {
    let qr = enrol
        .uri
        .as_deref()
        .and_then(|uri| QrModules::new(uri, 2).ok());
    let width = area.width.min(80);
    // A cropped QR code cannot be scanned: draw it whole or not at all (and say why).
    let (qr, cropped) = match qr {
        Some(q) if !qr_fits(&q, width, area.height) => (None, true),
        other => (other, false),
    };
    let (qr_cols, qr_rows) = qr.as_ref().map_or((0, 0), |q| {
        (
            u16::try_from(q.width).unwrap_or(u16::MAX),
            u16::try_from(q.width.div_ceil(2)).unwrap_or(u16::MAX),
        )
    });
    let text_cols = width.saturating_sub(qr_cols + 5).max(20);
    let text_width = usize::from(text_cols);

    let mut lines: Vec<Line> = Vec::new();
    let mut cursor = None;
    match (&enrol.uri, &enrol.secret) {
        (Some(uri), Some(secret)) => {
            if cropped {
                lines.extend(
                    word_wrap(
                        "The QR code does not fit: enlarge the terminal to scan it; or type the key below.",
                        text_width,
                    )
                    .into_iter()
                    .map(|l| Line::styled(l, theme.style(Role::Warning))),
                );
            } else {
                lines.extend(
                    word_wrap(
                        "Scan the code with your authenticator app, or type the key:",
                        text_width,
                    )
                    .into_iter()
                    .map(Line::from),
                );
            }
            let key: Vec<String> = secret
                .expose()
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            lines.extend(
                word_wrap(&key.join(" "), text_width)
                    .into_iter()
                    .map(|l| Line::styled(l, theme.style(Role::Accent))),
            );
            lines.push(Line::default());
            lines.extend(
                hard_wrap(uri, text_width)
                    .into_iter()
                    .map(|l| Line::styled(l, theme.style(Role::Muted))),
            );
            lines.push(Line::default());
            lines.push(Line::from("Then type the code it shows:"));
            cursor = Some((lines.len(), enrol.code.cursor));
            lines.push(field(theme, &enrol.code.value, 8.min(text_width)));
            if enrol.confirming {
                lines.push(Line::styled("Checking…", theme.style(Role::Accent)));
            }
            if let Some(error) = &enrol.error {
                lines.extend(
                    word_wrap(error, text_width)
                        .into_iter()
                        .map(|l| Line::styled(l, theme.style(Role::Danger))),
                );
            }
            lines.push(Line::default());
            lines.push(hints_line(state, theme, Layer::Enrol, text_cols));
        }
        _ => lines.push(Line::styled(
            "Asking the hub for a new secret…",
            theme.style(Role::Accent),
        )),
    }
    let text_rows = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let height = (qr_rows.max(text_rows) + 2).min(area.height);
    let inner = popup(
        theme,
        frame,
        centered(area, width, height),
        "Enable 2FA",
        Role::BorderFocused,
    );
    let [qr_area, _, text_area] = Layout::horizontal([
        Constraint::Length(qr_cols),
        Constraint::Length(if qr_cols > 0 { 1 } else { 0 }),
        Constraint::Fill(1),
    ])
    .areas(inner);
    if let Some(qr) = &qr {
        draw_qr(frame, qr_area, qr);
    }
    frame.render_widget(Paragraph::new(lines), text_area);
    if let Some((row, column)) = cursor {
        set_cursor(frame, text_area, row, column);
    }
}

/// Whether the whole QR code, its border and at least 20 columns of text beside it fit in a
/// dialog `width` wide on a screen `height` high.
fn qr_fits(qr: &QrModules, width: u16, height: u16) -> bool {
    let cols = u16::try_from(qr.width).unwrap_or(u16::MAX);
    let rows = u16::try_from(qr.width.div_ceil(2)).unwrap_or(u16::MAX);
    cols.saturating_add(5 + 20) <= width && rows.saturating_add(2) <= height
}

/// Dark modules black, light ones white, two per cell.
fn draw_qr(frame: &mut Frame, area: Rect, qr: &QrModules) {
    let style = Style::default()
        .fg(Color::Rgb(0, 0, 0))
        .bg(Color::Rgb(255, 255, 255));
    let buffer = frame.buffer_mut();
    for (row, cells) in qr.cells().into_iter().enumerate() {
        let Ok(dy) = u16::try_from(row) else { break };
        if dy >= area.height {
            break;
        }
        for (col, (top, bottom)) in cells.into_iter().enumerate() {
            let Ok(dx) = u16::try_from(col) else { break };
            if dx >= area.width {
                break;
            }
            let glyph = match (top, bottom) {
                (true, true) => "█",
                (true, false) => "▀",
                (false, true) => "▄",
                (false, false) => " ",
            };
            if let Some(cell) = buffer.cell_mut((area.x + dx, area.y + dy)) {
                cell.set_symbol(glyph).set_style(style);
            }
        }
    }
}

/// The users view's body.
pub(super) fn draw_users(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let title = if state.twofa.global {
        "Users · 2FA required for everyone"
    } else {
        "Users · 2FA"
    };
    let block = super::main::pane_block(theme, title, true);
    let rows = state.twofa.users.iter().map(|u| {
        let (label, role) = match u.state {
            // Disabled says more than any 2FA state: they cannot log in at all.
            _ if u.disabled => ("disabled", Role::Danger),
            TwoFactorState::Active => ("active", Role::Success),
            TwoFactorState::Pending => ("pending", Role::Warning),
            TwoFactorState::Off => ("off", Role::Muted),
        };
        let required = if state.twofa.global {
            "everyone"
        } else if u.required {
            "yes"
        } else {
            "-"
        };
        Row::new(vec![
            Cell::from(u.name.clone()),
            Cell::from(u.role.as_str()),
            Cell::from(u.team.clone()),
            Cell::from(Span::styled(label, theme.style(role))),
            Cell::from(required),
            Cell::from(u.email.clone()),
        ])
    });
    let header = Row::new(["NAME", "ROLE", "TEAM", "2FA", "REQUIRED", "EMAIL"])
        .style(theme.style(Role::TableHeader));
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(block)
    .row_highlight_style(theme.style(Role::Selected))
    .highlight_symbol("› ")
    .highlight_spacing(HighlightSpacing::Always);
    let mut table_state = TableState::default();
    if !state.twofa.users.is_empty() {
        table_state.select(Some(state.twofa.selected_user));
    }
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// The audit view's body: the filter line, then the records.
/// Who did it, as the table shows it: an agent (the end user at a workstation) by the
/// workstation's host name when this console knows it.
fn actor_label(state: &State, actor: &str) -> String {
    actor
        .strip_prefix("agent:")
        .and_then(|id| state.workstations.get(id))
        .map_or_else(|| actor.to_owned(), |w| format!("⌂{}", w.hostname))
}

pub(super) fn draw_audit(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let audit = &state.twofa.audit;
    let [filter_area, table_area, detail_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(3),
    ])
    .areas(area);
    let label = " Filter ";
    let (text, role) = match (&audit.error, audit.filter.value.is_empty(), audit.editing) {
        (Some(error), _, _) if !audit.editing => (error.clone(), Role::Danger),
        (_, true, false) => (
            "(none: / to filter by user:, ws:, kind:, since:, until:)".to_owned(),
            Role::Muted,
        ),
        _ => (audit.filter.value.clone(), Role::Input),
    };
    let width = usize::from(filter_area.width).saturating_sub(label.width());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(label, theme.style(Role::Key)),
            Span::styled(truncate(&text, width), theme.style(role)),
        ])),
        filter_area,
    );
    if audit.editing {
        let before: String = audit
            .filter
            .value
            .chars()
            .take(audit.filter.cursor)
            .collect();
        set_cursor(frame, filter_area, 0, label.width() + before.width());
    }
    let title = format!(
        "Audit log · {} record{}{}",
        audit.records.len(),
        if audit.records.len() == 1 { "" } else { "s" },
        if audit.loading { " · loading…" } else { "" }
    );
    let block = super::main::pane_block(theme, &title, true);
    let rows = audit.records.iter().map(|r| {
        let role = if r.action.ends_with("fail")
            || r.action.contains("refused")
            || r.action.contains("locked")
        {
            Role::Danger
        } else if r.action.starts_with("2fa") {
            Role::Accent
        } else {
            Role::Text
        };
        // Names a person reads: the workstation's host name, the guest of credentials.
        let target = ["hostname", "guest"]
            .iter()
            .find_map(|k| r.detail.get(*k).and_then(|h| h.as_str()))
            .map(str::to_owned)
            .or_else(|| r.target.clone())
            .unwrap_or_default();
        Row::new(vec![
            Cell::from(r.at.format("%m-%d %H:%M:%S").to_string()),
            Cell::from(actor_label(state, &r.actor)),
            Cell::from(Span::styled(r.action.clone(), theme.style(role))),
            Cell::from(target),
            Cell::from(detail_fields(&r.detail)),
        ])
    });
    let header = Row::new(["WHEN (UTC)", "WHO", "WHAT", "ON", "DETAIL"])
        .style(theme.style(Role::TableHeader));
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Length(18),
            Constraint::Length(12),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(block)
    .row_highlight_style(theme.style(Role::Selected))
    .highlight_symbol("› ")
    .highlight_spacing(HighlightSpacing::Always);
    let mut table_state = TableState::default();
    if !audit.records.is_empty() {
        table_state.select(Some(audit.selected));
    }
    frame.render_stateful_widget(table, table_area, &mut table_state);
    // The selected record in full: the table cuts its detail.
    if let Some(r) = audit.records.get(audit.selected) {
        let width = usize::from(detail_area.width.saturating_sub(2)).max(10);
        let head = format!(
            "#{} {} {}{} {}{}",
            r.id,
            r.at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.actor,
            r.actor_email
                .as_deref()
                .map(|e| format!(" <{e}>"))
                .unwrap_or_default(),
            r.action,
            r.target
                .as_deref()
                .map(|t| format!(" on {t}"))
                .unwrap_or_default(),
        );
        let mut lines = vec![Line::styled(
            truncate(&head, width),
            theme.style(Role::Accent),
        )];
        lines.extend(
            word_wrap(&detail_fields(&r.detail), width)
                .into_iter()
                .take(2)
                .map(|l| Line::styled(l, theme.style(Role::Muted))),
        );
        frame.render_widget(
            Paragraph::new(lines),
            Rect {
                x: detail_area.x + 1,
                width: detail_area.width.saturating_sub(2),
                ..detail_area
            },
        );
    }
}

/// An audit record's details as a person reads them: `reason: wrong code · client: Acme`, not
/// JSON. Text without quotes; lists and objects inside it stay compact JSON.
pub fn detail_fields(detail: &serde_json::Value) -> String {
    let value = |v: &serde_json::Value| match v {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match detail {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(key, v)| format!("{}: {}", key.replace('_', " "), value(v)))
            .collect::<Vec<_>>()
            .join(" · "),
        serde_json::Value::Null => String::new(),
        other => value(other),
    }
}

/// The footer of the users and audit views: their layer's keys.
pub(super) fn draw_footer(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let hints = hints_line(state, theme, state.layer(), area.width.saturating_sub(1));
    frame.render_widget(
        Paragraph::new(hints),
        Rect {
            x: area.x + 1,
            width: area.width.saturating_sub(1),
            ..area
        },
    );
}
