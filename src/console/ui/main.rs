//! The main screen: header, clients pane, workstations table, status line and key hints.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, HighlightSpacing, List, ListItem, ListState, Paragraph, Row,
    Table, TableState, Wrap,
};
use unicode_width::UnicodeWidthStr;

use super::{hints_line, hints_line_where, spinner, truncate, word_wrap};
use crate::client::store::hub_key;
use crate::console::action::Action;
use crate::console::fleet::TextWidths;
use crate::console::keymap::Layer;
use crate::console::state::{Connection, Pane, State, StatusKind, View, relative_age};
use crate::console::theme::{Role, Theme};
use crate::console::update::secret_kind_label;
use crate::protocol::{
    Presence, SecretRequirements, SessionInfo, UnattendedState, WorkstationInfo,
};

const HIGHLIGHT: &str = "› ";

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    // A long status wraps onto a second line rather than losing its end (the next step, a
    // countdown).
    let (status_lines, status_role) = status_text(state, area.width.saturating_sub(1));
    let status_height = u16::try_from(status_lines.len()).unwrap_or(1);
    let [header, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(status_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let clients_width = (area.width / 4).clamp(16, 32);
    let [clients, table] =
        Layout::horizontal([Constraint::Length(clients_width), Constraint::Fill(1)]).areas(body);
    draw_header(state, theme, frame, header);
    if state.view == View::Sessions {
        draw_sessions(state, theme, frame, body);
    } else if state.view == View::Users {
        super::twofa::draw_users(state, theme, frame, body);
    } else if state.view == View::Audit {
        super::twofa::draw_audit(state, theme, frame, body);
    } else if state.view == View::Credentials {
        super::credentials::draw_list(state, theme, frame, body);
    } else {
        draw_clients(state, theme, frame, clients);
        draw_workstations(state, theme, frame, table);
    }
    frame.render_widget(
        Paragraph::new(
            status_lines
                .into_iter()
                .map(|l| Line::styled(l, theme.style(status_role)))
                .collect::<Vec<_>>(),
        ),
        status,
    );
    draw_footer(state, theme, frame, footer);
}

fn draw_header(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let base = theme.style(Role::Header);
    frame.render_widget(Block::default().style(base), area);
    let (dot, label, role) = match &state.connection {
        Connection::Connected => ("●", "connected", Role::Success),
        Connection::Connecting => ("◌", "connecting…", Role::Warning),
        Connection::Reconnecting { .. } => ("◌", "reconnecting…", Role::Warning),
        Connection::Offline => ("○", "offline", Role::Danger),
    };
    let right = Line::from(vec![Span::styled(
        format!("{dot} {label} "),
        theme.style(role),
    )]);
    let right_width = u16::try_from(right.width())
        .unwrap_or(area.width)
        .min(area.width);
    // Segments, most important first; the last ones are dropped when the header is narrow.
    let muted = theme.style(Role::Muted);
    let mut segments = vec![vec![
        Span::styled(" Tether ", theme.style(Role::Title)),
        Span::raw(" "),
    ]];
    if let Some(session) = &state.session
        && let Some(banner) = crate::console::update::guest_banner(state)
    {
        // A guest: what the support credentials allow comes first, then the hub.
        segments.push(vec![Span::styled(banner, theme.style(Role::Warning))]);
        segments.push(vec![
            Span::styled("  │  ", muted),
            Span::raw(hub_key(&session.hub)),
        ]);
    } else if let Some(session) = &state.session {
        segments.push(vec![Span::raw(hub_key(&session.hub))]);
        if let Some(user) = &session.user {
            segments.push(vec![
                Span::styled("  │  ", muted),
                Span::raw(user.name.clone()),
            ]);
            segments.push(vec![
                Span::styled(" · ", muted),
                Span::raw(format!("team {}", user.team)),
            ]);
            segments.push(vec![Span::styled(
                format!(" ({})", user.role.as_str()),
                muted,
            )]);
        }
    }
    let [left_area, _, right_area] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(right_width),
    ])
    .areas(area);
    let width = |segments: &[Vec<Span>]| segments.iter().flatten().map(Span::width).sum::<usize>();
    while segments.len() > 1 && width(&segments) > usize::from(left_area.width) {
        segments.pop();
    }
    let left: Vec<Span> = segments.into_iter().flatten().collect();
    frame.render_widget(Paragraph::new(Line::from(left)).style(base), left_area);
    frame.render_widget(
        Paragraph::new(right)
            .style(base)
            .alignment(Alignment::Right),
        right_area,
    );
}

pub(super) fn pane_block(theme: &Theme, title: &str, focused: bool) -> Block<'static> {
    let border = if focused {
        Role::BorderFocused
    } else {
        Role::Border
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style(border))
        .title(Span::styled(format!(" {title} "), theme.style(Role::Title)))
}

fn selection_style(theme: &Theme, focused: bool) -> Style {
    theme.style(if focused {
        Role::Selected
    } else {
        Role::SelectedUnfocused
    })
}

fn draw_clients(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let focused = state.focus == Pane::Clients && !state.filtering;
    let block = pane_block(theme, "Clients", focused);
    let inner_width = usize::from(area.width.saturating_sub(2)).saturating_sub(HIGHLIGHT.width());
    // Only the rows that fit are built (a desk may have thousands of clients); the window
    // ends at the selection when it is further down, as the list would scroll to it.
    let selected = state.selected_client_row();
    let height = usize::from(area.height.saturating_sub(2)).max(1);
    let start = (selected + 1).saturating_sub(height);
    let items: Vec<ListItem> = state
        .client_rows()
        .into_iter()
        .skip(start)
        .take(height)
        .map(|row| {
            // The name comes first: where it and its counts do not both fit, the counts go
            // (the table's title still counts the selected client's workstations).
            let counts = format!("{}/{}", row.online, row.total);
            let counts = if row.name.width() + 1 + counts.width() > inner_width {
                String::new()
            } else {
                counts
            };
            let name_width =
                inner_width.saturating_sub(counts.width() + usize::from(!counts.is_empty()));
            let name = truncate(&row.name, name_width);
            let pad = inner_width.saturating_sub(name.width() + counts.width());
            let name_style = if row.id.is_none() {
                theme.style(Role::Accent)
            } else {
                Style::default()
            };
            ListItem::new(Line::from(vec![
                Span::styled(name, name_style),
                Span::raw(" ".repeat(pad)),
                Span::styled(counts, theme.style(Role::Muted)),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(block)
        .highlight_symbol(HIGHLIGHT)
        .highlight_spacing(HighlightSpacing::Always)
        .highlight_style(selection_style(theme, focused));
    let mut list_state = ListState::default().with_selected(Some(selected - start));
    frame.render_stateful_widget(list, area, &mut list_state);
}

/// A table column: heading, width, and how to draw its cell for a row.
struct Column<'a> {
    title: &'static str,
    width: u16,
    right: bool,
    cell: Box<dyn Fn(&WorkstationInfo) -> Cell<'static> + 'a>,
}

impl<'a> Column<'a> {
    fn new(
        title: &'static str,
        width: u16,
        cell: impl Fn(&WorkstationInfo) -> Cell<'static> + 'a,
    ) -> Self {
        Self {
            title,
            width,
            right: false,
            cell: Box::new(cell),
        }
    }
}

fn text_cell(text: &str) -> Cell<'static> {
    Cell::from(text.to_owned())
}

/// Presence; with `age`, an offline row says how long ago it was seen instead (for when the
/// "Last seen" column does not fit).
fn presence_cell(state: &State, theme: &Theme, w: &WorkstationInfo, age: bool) -> Cell<'static> {
    let (mark, role) = match w.presence {
        Presence::Online => ("●", Role::Success),
        Presence::InSession => ("◆", Role::Accent),
        Presence::Offline => ("○", Role::Muted),
    };
    let label = if age && w.presence == Presence::Offline {
        relative_age(state.now, w.last_seen)
    } else {
        w.presence.label().to_owned()
    };
    Cell::from(Span::styled(format!("{mark} {label}"), theme.style(role)))
}

/// Unattended access as a glyph (animated while requested), its role and its label.
fn unattended_mark(state: &State, unattended: UnattendedState) -> (String, Role) {
    let (mark, role) = match unattended {
        UnattendedState::None => ("·".to_owned(), Role::Muted),
        UnattendedState::Requested => (spinner(state).to_string(), Role::Warning),
        UnattendedState::Granted => ("✓".to_owned(), Role::Success),
        UnattendedState::Denied => ("✗".to_owned(), Role::Danger),
        UnattendedState::Withdrawn => ("⊘".to_owned(), Role::Muted),
        UnattendedState::Revoked => ("⊘".to_owned(), Role::Danger),
    };
    (mark, role)
}

/// The secrets a workstation requires, as the Access column shows them (`+otp`: a one-time
/// password too).
fn secret_label(w: &WorkstationInfo) -> Option<&'static str> {
    let requires: SecretRequirements = w.requires;
    match (requires.passcode, requires.password, w.otp_required) {
        (false, false, false) => None,
        (true, false, false) => Some("passcode"),
        (false, true, false) => Some("password"),
        (true, true, false) => Some("either"),
        (false, false, true) => Some("otp"),
        (true, false, true) => Some("passcode+otp"),
        (false, true, true) => Some("password+otp"),
        (true, true, true) => Some("either+otp"),
    }
}

/// How much the Access column says: labels for both, a glyph for unattended access, or glyphs
/// only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AccessDetail {
    Full,
    Short,
    Glyphs,
}

/// Widths of the Access column's two parts (unattended, secret) at a level of detail.
fn access_widths(rows: &[&WorkstationInfo], detail: AccessDetail) -> (usize, usize) {
    let unattended = match detail {
        AccessDetail::Full => rows
            .iter()
            .map(|w| 2 + w.unattended.label().width())
            .max()
            .unwrap_or(0),
        _ => 1,
    };
    let secret = rows
        .iter()
        .filter_map(|w| secret_label(w))
        .map(|label| match detail {
            AccessDetail::Glyphs => 1,
            _ => 2 + label.width(),
        })
        .max()
        .unwrap_or(0);
    (unattended, secret)
}

fn access_cell(
    state: &State,
    theme: &Theme,
    w: &WorkstationInfo,
    detail: AccessDetail,
    unattended_width: usize,
) -> Cell<'static> {
    let (mark, role) = unattended_mark(state, w.unattended);
    let unattended = match detail {
        AccessDetail::Full => format!("{mark} {}", w.unattended.label()),
        _ => mark,
    };
    let pad = unattended_width.saturating_sub(unattended.width()) + 1;
    let mut spans = vec![
        Span::styled(unattended, theme.style(role)),
        Span::raw(" ".repeat(pad)),
    ];
    if let Some(label) = secret_label(w) {
        let text = match detail {
            AccessDetail::Glyphs => LOCK.to_owned(),
            _ => format!("{LOCK} {label}"),
        };
        spans.push(Span::styled(text, theme.style(Role::Accent)));
    }
    Cell::from(Line::from(spans))
}

/// A hostname another workstation on screen also has, with the start of its id: `pc-1 #3f9a2c`.
pub fn twin_label(w: &WorkstationInfo) -> String {
    let short: String = w.id.chars().filter(|c| *c != '-').take(6).collect();
    format!("{} #{short}", w.hostname)
}

/// Marks a workstation that requires a passcode or password: the asterisk of a masked field.
const LOCK: &str = "✱";

/// The columns that fit in `width`. Hostname, presence and access always (access with less
/// detail when narrow); then client (when all clients are shown), user and OS while they fit;
/// then "Last seen", which otherwise folds into the presence of offline rows. Text columns are
/// as wide as the widest text of the whole view (`widths`, kept by the fleet), so they hold
/// still while scrolling; the access column is sized by the rows on screen (`rows`).
fn columns<'a>(
    state: &'a State,
    theme: &'a Theme,
    rows: &[&WorkstationInfo],
    widths: TextWidths,
    width: u16,
    twins: &'a std::collections::HashSet<&str>,
) -> Vec<Column<'a>> {
    let fit = |title: &str, cap: usize, widest: usize| {
        let widest = widest.max(title.width()).min(cap);
        u16::try_from(widest).unwrap_or(u16::MAX)
    };
    let to_u16 = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let hostname_width = fit("Hostname", 28, widths.hostname).max(12);
    let presence_width = 12;
    let fixed = hostname_width + 1 + presence_width + 1;
    // The most detailed Access column that fits next to hostname and presence.
    let (detail, (unattended_width, secret_width)) = [
        AccessDetail::Full,
        AccessDetail::Short,
        AccessDetail::Glyphs,
    ]
    .into_iter()
    .map(|d| (d, access_widths(rows, d)))
    .find(|(_, (u, s))| {
        let access = u + if *s > 0 { 1 + s } else { 0 };
        fixed + to_u16(access.max(6)) <= width
    })
    .unwrap_or((
        AccessDetail::Glyphs,
        access_widths(rows, AccessDetail::Glyphs),
    ));
    let access_width = to_u16(
        (unattended_width
            + if secret_width > 0 {
                1 + secret_width
            } else {
                0
            })
        .max(6),
    );

    let mut used = fixed + access_width;
    let keep = |used: &mut u16, wanted: u16| {
        let fits = *used + 1 + wanted <= width;
        if fits {
            *used += 1 + wanted;
        }
        fits
    };
    let client_width = fit("Client", 22, widths.client);
    let client = (state.selected_client.is_none() && keep(&mut used, client_width)).then(|| {
        Column::new("Client", client_width, |w: &WorkstationInfo| {
            text_cell(&w.client_name)
        })
    });
    let user_width = fit("User", 16, widths.user);
    let user = keep(&mut used, user_width)
        .then(|| Column::new("User", user_width, |w: &WorkstationInfo| text_cell(&w.user)));
    // The OS column shrinks (down to 10) before it is dropped: "Windows 1…" still says a lot.
    let os_width = fit("OS", 22, widths.os);
    let room = width.saturating_sub(used + 1);
    let os = (room >= 10).then(|| {
        let os_width = os_width.min(room);
        used += 1 + os_width;
        Column::new("OS", os_width, |w: &WorkstationInfo| text_cell(&w.os))
    });
    let seen_width = 9;
    let seen = keep(&mut used, seen_width).then(|| Column {
        right: true,
        ..Column::new("Last seen", seen_width, move |w: &WorkstationInfo| {
            // A connected agent is seen now; its stored time is only the last report.
            let age = if w.presence == Presence::Offline {
                relative_age(state.now, w.last_seen)
            } else {
                "now".to_owned()
            };
            Cell::from(Line::from(age).alignment(Alignment::Right))
        })
    });
    let fold_age = seen.is_none();
    // The hostname takes what is left: it is what technicians scan for.
    let hostname = Column::new(
        "Hostname",
        hostname_width + width.saturating_sub(used),
        move |w: &WorkstationInfo| {
            if twins.contains(w.id.as_str()) {
                text_cell(&twin_label(w))
            } else {
                text_cell(&w.hostname)
            }
        },
    );
    let presence = Column::new("Presence", presence_width, move |w: &WorkstationInfo| {
        presence_cell(state, theme, w, fold_age)
    });
    let access = Column::new("Access", access_width, move |w: &WorkstationInfo| {
        access_cell(state, theme, w, detail, unattended_width)
    });
    [
        Some(hostname),
        client,
        os,
        user,
        Some(presence),
        Some(access),
        seen,
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn draw_workstations(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let focused = state.focus == Pane::Workstations || state.filtering;
    let rows = state.visible_workstations();
    let client_name = state
        .selected_client
        .as_ref()
        .and_then(|id| state.clients.iter().find(|c| &c.id == id))
        .map(|c| c.name.as_str());
    let title = match client_name {
        Some(name) => format!("Workstations · {name}"),
        None => "Workstations".to_owned(),
    };
    let mut block = pane_block(theme, &title, focused);
    let online = rows.online();
    let mut counts = vec![Span::styled(
        format!(" {online}/{} online ", rows.len()),
        theme.style(Role::Muted),
    )];
    // Later pages still on their way: say how far the list is.
    if let Some(total) = state.workstations_loading {
        let loaded = state.workstations.len();
        let text = match total {
            Some(total) => format!(" loading {loaded} of {total} "),
            None => format!(" loading: {loaded} so far "),
        };
        counts.insert(0, Span::styled(text, theme.style(Role::Accent)));
    }
    if !state.filter.value.is_empty() && !state.filtering {
        counts.insert(
            0,
            Span::styled(
                format!(" filter: {} ", state.filter.value),
                theme.style(Role::Accent),
            ),
        );
    }
    block = block.title_top(Line::from(counts).right_aligned());

    if rows.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let text = if state.filter.value.is_empty() {
            let link = state
                .keymap
                .key_for(Layer::Main, crate::console::action::Action::ShowLink)
                .unwrap_or_default();
            format!(
                "No workstations yet. Select a client and press {link} for an enrolment link: a computer whose \
                 agent starts with it appears here within a second."
            )
        } else {
            format!(
                "No workstation matches “{}”. Esc clears the filter.",
                state.filter.value
            )
        };
        let y = inner.height.saturating_sub(3) / 2;
        let rect = Rect {
            x: inner.x + 2,
            y: inner.y + y,
            width: inner.width.saturating_sub(4),
            height: inner.height - y,
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.style(Role::Muted))
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            rect,
        );
        return;
    }

    let table_width = area
        .width
        .saturating_sub(2)
        .saturating_sub(u16::try_from(HIGHLIGHT.width()).unwrap_or(2));
    // Only the rows that fit are built: a table of 100k rows costs what a screenful does.
    let height = usize::from(area.height.saturating_sub(3)).max(state.page_rows());
    let offset = state.table_offset.min(rows.len().saturating_sub(1));
    let window = rows.window(offset, height);
    // Workstations named alike on screen (and the rows just past it) get a short id: the same
    // hostname twice cannot be told apart otherwise.
    let near = rows.window(offset.saturating_sub(1), height + 2);
    let twins: std::collections::HashSet<&str> = near
        .iter()
        .filter(|w| {
            near.iter()
                .any(|o| o.id != w.id && o.hostname == w.hostname)
        })
        .map(|w| w.id.as_str())
        .collect();
    let columns = columns(state, theme, &window, rows.widths(), table_width, &twins);
    let header = Row::new(columns.iter().map(|c| {
        let cell = Line::from(c.title);
        Cell::from(if c.right {
            cell.alignment(Alignment::Right)
        } else {
            cell
        })
    }))
    .style(theme.style(Role::TableHeader));
    let body = window.iter().map(|w| {
        let row = Row::new(columns.iter().map(|c| (c.cell)(w)));
        if w.presence == Presence::Offline {
            row.style(theme.style(Role::Muted))
        } else {
            row
        }
    });
    let table = Table::new(body, columns.iter().map(|c| Constraint::Length(c.width)))
        .header(header)
        .block(block)
        .column_spacing(1)
        .highlight_symbol(HIGHLIGHT)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(selection_style(theme, focused));
    let mut table_state = TableState::default().with_offset(0).with_selected(
        state
            .selected_row(&rows)
            .and_then(|row| row.checked_sub(offset))
            .filter(|row| *row < window.len()),
    );
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// The status line's text, wrapped to at most two lines of `width`, and its role.
fn status_text(state: &State, width: u16) -> (Vec<String>, Role) {
    let (text, role) = match &state.status {
        Some(status) => {
            let (mark, role) = match status.kind {
                StatusKind::Info => ("", Role::Text),
                StatusKind::Success => ("✓ ", Role::Success),
                StatusKind::Warning => ("! ", Role::Warning),
                StatusKind::Error => ("✗ ", Role::Danger),
            };
            (format!("{mark}{}", status.text_at(state.now)), role)
        }
        None => {
            let all = &state.workstations;
            let counts = all.counts(None);
            let in_session = counts.in_session;
            let online = counts.online - in_session;
            let mut text = format!(
                "{} clients · {} workstations · {online} online · {in_session} in session",
                state.clients.len(),
                all.len()
            );
            let mine = state.sessions.iter().filter(|s| state.is_mine(s)).count();
            if mine > 0 {
                text.push_str(&format!(" · {mine} yours"));
            }
            (text, Role::Muted)
        }
    };
    let width = usize::from(width.max(10));
    let mut lines = word_wrap(&text, width);
    if lines.len() > 2 {
        let rest = lines[1..].join(" ");
        lines.truncate(1);
        lines.push(truncate(&rest, width));
    }
    // One column of margin, as the footer has.
    (lines.into_iter().map(|l| format!(" {l}")).collect(), role)
}

fn draw_footer(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    if matches!(state.view, View::Users | View::Audit | View::Credentials) {
        return super::twofa::draw_footer(state, theme, frame, area);
    }
    if state.view == View::Sessions || !state.filtering {
        let layer = if state.view == View::Sessions {
            Layer::Sessions
        } else {
            Layer::Main
        };
        // Only what the keys can do for the selected row, so the hints that matter fit.
        let hints = hints_line_where(
            state,
            theme,
            layer,
            area.width.saturating_sub(1),
            |action| match layer {
                Layer::Main => state.can(action),
                _ => action != Action::Open || state.can_open_selected_session(),
            },
        );
        frame.render_widget(
            Paragraph::new(hints),
            Rect {
                x: area.x + 1,
                width: area.width.saturating_sub(1),
                ..area
            },
        );
        return;
    }
    let hints = hints_line(state, theme, Layer::Filter, area.width / 2);
    let hints_width = u16::try_from(hints.width()).unwrap_or(0);
    let [input, hint_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(hints_width + 1)]).areas(area);
    let prompt = " / ";
    let line = Line::from(vec![
        Span::styled(prompt, theme.style(Role::Key)),
        Span::styled(state.filter.value.clone(), theme.style(Role::Input)),
    ]);
    frame.render_widget(Paragraph::new(line), input);
    frame.render_widget(Paragraph::new(hints), hint_area);
    let before: String = state
        .filter
        .value
        .chars()
        .take(state.filter.cursor)
        .collect();
    let x = input.x + u16::try_from(prompt.width() + before.width()).unwrap_or(0);
    if x < input.right() {
        frame.set_cursor_position(Position { x, y: input.y });
    }
}

/// The team's open sessions, newest first, over the whole body.
fn draw_sessions(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let team = state
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .map(|u| format!("Sessions · team {}", u.team))
        .unwrap_or_else(|| "Sessions".to_owned());
    let mine = state.sessions.iter().filter(|s| state.is_mine(s)).count();
    let block = pane_block(theme, &team, true).title_top(
        Line::from(Span::styled(
            format!(" {} open · {mine} yours ", state.sessions.len()),
            theme.style(Role::Muted),
        ))
        .right_aligned(),
    );
    if state.sessions.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let connect = state
            .keymap
            .key_for(Layer::Main, crate::console::action::Action::Connect)
            .unwrap_or_default();
        let back = state
            .keymap
            .key_for(Layer::Sessions, crate::console::action::Action::Cancel)
            .unwrap_or_default();
        let text = format!(
            "No open sessions in your team. Go back ({back}), select a workstation and press {connect} to connect."
        );
        let y = inner.height.saturating_sub(3) / 2;
        let rect = Rect {
            x: inner.x + 2,
            y: inner.y + y,
            width: inner.width.saturating_sub(4),
            height: inner.height - y,
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.style(Role::Muted))
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            rect,
        );
        return;
    }
    let width = usize::from(
        area.width
            .saturating_sub(2)
            .saturating_sub(u16::try_from(HIGHLIGHT.width()).unwrap_or(2)),
    );
    let client_of = |s: &SessionInfo| {
        state
            .workstations
            .get(&s.workstation_id)
            .map(|w| w.client_name.clone())
            .unwrap_or_default()
    };
    let technician = |s: &SessionInfo| {
        if state.is_mine(s) {
            format!("{} (you)", s.technician.name)
        } else {
            s.technician.name.clone()
        }
    };
    let secrets = |s: &SessionInfo| {
        if s.secrets.is_empty() {
            "—".to_owned()
        } else {
            s.secrets
                .iter()
                .map(|k| secret_kind_label(*k))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let widest = |title: &str, cap: usize, get: &dyn Fn(&SessionInfo) -> String| {
        state
            .sessions
            .iter()
            .map(|s| get(s).width())
            .max()
            .unwrap_or(0)
            .max(title.width())
            .min(cap)
    };
    let host_w = widest("Workstation", 28, &|s| s.hostname.clone()).max(12);
    let tech_w = widest("Technician", 20, &technician);
    let method_w = widest("Method", 10, &|s| s.method.label().to_owned());
    let secrets_w = widest("Secrets", 18, &secrets);
    let mode_w = 9;
    let since_w = 9;
    let client_w = widest("Client", 22, &client_of);
    let mut used = host_w + tech_w + method_w + mode_w + since_w + 4;
    let mut keep = |w: usize| {
        let fits = used + 1 + w <= width;
        if fits {
            used += 1 + w;
        }
        fits
    };
    let show_secrets = keep(secrets_w);
    // The client column shrinks (down to 10) before it is dropped.
    let room = width.saturating_sub(used + 1);
    let show_client = room >= 10;
    // Room to spare goes between the columns (the table's flex), not into one of them.
    let client_w = client_w.min(room);

    let mut titles = vec!["Workstation"];
    let mut widths = vec![host_w];
    if show_client {
        titles.push("Client");
        widths.push(client_w);
    }
    titles.extend(["Technician", "Method"]);
    widths.extend([tech_w, method_w]);
    if show_secrets {
        titles.push("Secrets");
        widths.push(secrets_w);
    }
    titles.extend(["Mode", "Started"]);
    widths.extend([mode_w, since_w]);

    let header = Row::new(titles.iter().map(|t| {
        let line = Line::from(*t);
        Cell::from(if *t == "Started" {
            line.alignment(Alignment::Right)
        } else {
            line
        })
    }))
    .style(theme.style(Role::TableHeader));
    let body = state.sessions.iter().map(|s| {
        let mut cells = vec![text_cell(&s.hostname)];
        if show_client {
            cells.push(text_cell(&truncate(&client_of(s), client_w)));
        }
        let tech_style = if state.is_mine(s) {
            theme.style(Role::Accent)
        } else {
            Style::default()
        };
        cells.push(Cell::from(Span::styled(technician(s), tech_style)));
        cells.push(text_cell(s.method.label()));
        if show_secrets {
            cells.push(text_cell(&secrets(s)));
        }
        let (mode, role) = if s.view_only {
            ("view only", Role::Muted)
        } else {
            ("control", Role::Warning)
        };
        cells.push(Cell::from(Span::styled(mode, theme.style(role))));
        cells.push(Cell::from(
            Line::from(relative_age(state.now, s.started_at)).alignment(Alignment::Right),
        ));
        Row::new(cells)
    });
    let table = Table::new(
        body,
        widths
            .into_iter()
            .map(|w| Constraint::Length(u16::try_from(w).unwrap_or(u16::MAX))),
    )
    .header(header)
    .block(block)
    .column_spacing(1)
    .flex(Flex::SpaceBetween)
    .highlight_symbol(HIGHLIGHT)
    .highlight_spacing(HighlightSpacing::Always)
    .row_highlight_style(selection_style(theme, true));
    let mut table_state = TableState::default().with_selected(state.selected_session_row());
    frame.render_stateful_widget(table, area, &mut table_state);
}
