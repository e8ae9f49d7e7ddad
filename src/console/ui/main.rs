//! The main screen: header, clients pane, workstations table, status line and key hints.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, HighlightSpacing, List, ListItem, ListState, Paragraph, Row,
    Table, TableState, Wrap,
};
use unicode_width::UnicodeWidthStr;

use super::{hints_line, truncate};
use crate::client::store::hub_key;
use crate::console::keymap::Layer;
use crate::console::state::{Connection, Pane, State, StatusKind, relative_age};
use crate::console::theme::{Role, Theme};
use crate::protocol::{Presence, WorkstationInfo};

const HIGHLIGHT: &str = "› ";

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [header, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let clients_width = (area.width / 4).clamp(16, 32);
    let [clients, table] =
        Layout::horizontal([Constraint::Length(clients_width), Constraint::Fill(1)]).areas(body);
    draw_header(state, theme, frame, header);
    draw_clients(state, theme, frame, clients);
    draw_workstations(state, theme, frame, table);
    draw_status(state, theme, frame, status);
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
    if let Some(session) = &state.session {
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

fn pane_block(theme: &Theme, title: &str, focused: bool) -> Block<'static> {
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
    let items: Vec<ListItem> = state
        .client_rows()
        .into_iter()
        .map(|row| {
            let counts = format!("{}/{}", row.online, row.total);
            let name_width = inner_width.saturating_sub(counts.width() + 1);
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
    let mut list_state = ListState::default().with_selected(Some(state.selected_client_row()));
    frame.render_stateful_widget(list, area, &mut list_state);
}

/// A table column: heading, width, and how to get the cell text.
struct Column {
    title: &'static str,
    width: u16,
    cell: fn(&State, &Theme, &WorkstationInfo) -> Cell<'static>,
}

fn text_cell(text: &str) -> Cell<'static> {
    Cell::from(text.to_owned())
}

fn presence_cell(theme: &Theme, presence: Presence) -> Cell<'static> {
    let (mark, role) = match presence {
        Presence::Online => ("●", Role::Success),
        Presence::InSession => ("◆", Role::Accent),
        Presence::Offline => ("○", Role::Muted),
    };
    Cell::from(Span::styled(
        format!("{mark} {}", presence.label()),
        theme.style(role),
    ))
}

/// The columns that fit in `width`: hostname, presence and last seen always; then client (when
/// all clients are shown), user and OS, dropped in the reverse of that order when narrow.
fn columns(state: &State, rows: &[&WorkstationInfo], width: u16) -> Vec<Column> {
    let fit = |title: &str, cap: usize, get: fn(&WorkstationInfo) -> &str| {
        let widest = rows
            .iter()
            .map(|w| get(w).width())
            .max()
            .unwrap_or(0)
            .max(title.width())
            .min(cap);
        u16::try_from(widest).unwrap_or(u16::MAX)
    };
    let mut hostname = Column {
        title: "Hostname",
        width: fit("Hostname", 28, |w| &w.hostname).max(12),
        cell: |_, _, w| text_cell(&w.hostname),
    };
    let client = Column {
        title: "Client",
        width: fit("Client", 22, |w| &w.client_name),
        cell: |_, _, w| text_cell(&w.client_name),
    };
    let os = Column {
        title: "OS",
        width: fit("OS", 22, |w| &w.os),
        cell: |_, _, w| text_cell(&w.os),
    };
    let user = Column {
        title: "User",
        width: fit("User", 16, |w| &w.user),
        cell: |_, _, w| text_cell(&w.user),
    };
    let presence = Column {
        title: "Presence",
        width: 12,
        cell: |_, theme, w| presence_cell(theme, w.presence),
    };
    let seen = Column {
        title: "Last seen",
        width: 9,
        cell: |state, _, w| {
            // A connected agent is seen now; its stored time is only the last report.
            let age = if w.presence == Presence::Offline {
                relative_age(state.now, w.last_seen)
            } else {
                "now".to_owned()
            };
            Cell::from(Line::from(age).alignment(Alignment::Right))
        },
    };

    let mut used = hostname.width + presence.width + seen.width + 2;
    // Kept in priority order (client, user, OS) while they fit.
    let mut keep = |column: Option<Column>| {
        let column = column.filter(|c| used + 1 + c.width <= width)?;
        used += 1 + column.width;
        Some(column)
    };
    let client = keep(state.selected_client.is_none().then_some(client));
    let user = keep(Some(user));
    // The OS column shrinks (down to 10) before it is dropped: "Windows 1…" still says a lot.
    let room = width.saturating_sub(used + 1);
    let os = (room >= 10).then(|| {
        used += 1 + os.width.min(room);
        Column {
            width: os.width.min(room),
            ..os
        }
    });
    // The hostname takes what is left: it is what technicians scan for.
    hostname.width += width.saturating_sub(used);
    [Some(hostname), client, os, user, Some(presence), Some(seen)]
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
    let online = rows
        .iter()
        .filter(|w| w.presence != Presence::Offline)
        .count();
    let mut counts = vec![Span::styled(
        format!(" {online}/{} online ", rows.len()),
        theme.style(Role::Muted),
    )];
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
    let columns = columns(state, &rows, table_width);
    let header = Row::new(columns.iter().map(|c| {
        let cell = Line::from(c.title);
        Cell::from(if c.title == "Last seen" {
            cell.alignment(Alignment::Right)
        } else {
            cell
        })
    }))
    .style(theme.style(Role::TableHeader));
    let body = rows.iter().map(|w| {
        let row = Row::new(columns.iter().map(|c| (c.cell)(state, theme, w)));
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
    let mut table_state = TableState::default()
        .with_offset(state.table_offset)
        .with_selected(state.selected_row(&rows));
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn draw_status(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match &state.status {
        Some(status) => {
            let (mark, role) = match status.kind {
                StatusKind::Info => ("", Role::Text),
                StatusKind::Success => ("✓ ", Role::Success),
                StatusKind::Warning => ("! ", Role::Warning),
                StatusKind::Error => ("✗ ", Role::Danger),
            };
            Line::from(Span::styled(
                format!(" {mark}{}", status.text),
                theme.style(role),
            ))
        }
        None => {
            let all = &state.workstations;
            let online = all
                .iter()
                .filter(|w| w.presence == Presence::Online)
                .count();
            let in_session = all
                .iter()
                .filter(|w| w.presence == Presence::InSession)
                .count();
            let text = format!(
                " {} clients · {} workstations · {online} online · {in_session} in session",
                state.clients.len(),
                all.len()
            );
            Line::from(Span::styled(text, theme.style(Role::Muted)))
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_footer(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    if !state.filtering {
        let hints = hints_line(state, theme, Layer::Main, area.width.saturating_sub(1));
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
