//! The live terminal, full screen: the remote shell over every row but the last, a status bar
//! (workstation, technician, method, mode, bytes/s, the menu key), and the menu over it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{centered, hints_line, truncate};
use crate::console::action::Action;
use crate::console::keymap::Layer;
use crate::console::state::{Connection, State, StatusKind, Viewer, ViewerMode};
use crate::console::theme::{Role, Theme};

pub(super) fn draw(state: &State, viewer: &Viewer, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [screen, bar] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    let menu = match &viewer.desktop {
        Some(desktop) => {
            // Letterboxed: centred, the rest left blank.
            desktop.render(screen, frame.buffer_mut());
            Layer::DesktopMenu
        }
        None => {
            frame.render_widget(&viewer.term, screen);
            Layer::TerminalMenu
        }
    };
    draw_bar(state, viewer, theme, frame, bar);
    if let Some(why) = &viewer.ended {
        draw_ended(state, viewer, theme, frame, screen, why);
    } else if viewer.mode == ViewerMode::Menu {
        draw_menu(state, viewer, theme, frame, screen, menu);
    }
}

/// The session ended: a box over its last screen says so and why, and that keys are ignored
/// until it is dismissed.
fn draw_ended(
    state: &State,
    viewer: &Viewer,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    why: &str,
) {
    let width = 60.min(area.width.saturating_sub(2)).max(10);
    let text_width = usize::from(width.saturating_sub(4));
    let mut lines: Vec<Line> = super::word_wrap(
        &format!("Your session on {} ended: {why}.", viewer.session.hostname),
        text_width,
    )
    .into_iter()
    .map(|l| Line::styled(l, theme.style(Role::Text)))
    .collect();
    lines.push(Line::default());
    lines.extend(
        super::word_wrap(
            "Nothing you type reaches it, and nothing typed runs here.",
            text_width,
        )
        .into_iter()
        .map(|l| Line::styled(l, theme.style(Role::Muted))),
    );
    lines.push(Line::default());
    lines.push(hints_line(
        state,
        theme,
        Layer::SessionEnded,
        width.saturating_sub(4),
    ));
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Thick)
        .border_style(theme.style(Role::Danger))
        .title(Span::styled(" Session ended ", theme.style(Role::Danger)))
        .style(theme.style(Role::Text));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

/// "1.2 KB/s": the last second's output.
pub fn rate_label(bytes_per_second: u64) -> String {
    const UNITS: [&str; 3] = ["KB/s", "MB/s", "GB/s"];
    if bytes_per_second < 1000 {
        return format!("{bytes_per_second} B/s");
    }
    let mut value = bytes_per_second as f64 / 1000.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

fn draw_bar(state: &State, viewer: &Viewer, theme: &Theme, frame: &mut Frame, area: Rect) {
    let base = theme.style(Role::Header);
    frame.render_widget(Block::default().style(base), area);
    let muted = theme.style(Role::Muted);
    let session = &viewer.session;

    // Right: where the stream is, then the key out. Always shown.
    let menu_key = state
        .keymap
        .key_for(Layer::Terminal, Action::TerminalMenu)
        .unwrap_or_default();
    let mut right: Vec<Span> = match (&state.connection, viewer.mode) {
        _ if viewer.ended.is_some() => {
            vec![Span::styled("■ session ended ", theme.style(Role::Danger))]
        }
        (Connection::Connected, ViewerMode::Scroll) => {
            let lines = viewer.term.scrollback();
            let mut spans = vec![
                Span::styled(
                    format!("↑ {lines} line{} ", if lines == 1 { "" } else { "s" }),
                    theme.style(Role::Accent),
                ),
                Span::styled("│ ", muted),
            ];
            spans.extend(hints_line(state, theme, Layer::TerminalScroll, area.width / 2).spans);
            spans.push(Span::raw(" "));
            spans
        }
        // The notice takes the rates' room for its few seconds.
        (Connection::Connected, _) if viewer.notice.is_some() => Vec::new(),
        (Connection::Connected, _) if viewer.stream.is_none() => {
            vec![Span::styled("◌ opening… ", theme.style(Role::Warning))]
        }
        (Connection::Connected, _) => {
            let (fps, latency) = viewer
                .desktop
                .as_ref()
                .map(|d| {
                    let latency = match d.latency {
                        Some(l) if l.as_millis() == 0 => " · lat <1 ms".to_owned(),
                        Some(l) => format!(" · lat {} ms", l.as_millis()),
                        None => " · lat —".to_owned(),
                    };
                    (format!("{} fps · ", d.frames_per_second), latency)
                })
                .unwrap_or_default();
            vec![Span::styled(
                format!("↓ {fps}{}{latency} ", rate_label(viewer.bytes_per_second)),
                muted,
            )]
        }
        // Keys typed now are dropped, not kept to run later.
        _ => vec![Span::styled("◌ reconnecting… ", theme.style(Role::Warning))],
    };
    if viewer.mode != ViewerMode::Scroll && viewer.ended.is_none() {
        right.push(Span::styled("│ ", muted));
        right.push(Span::styled(menu_key, theme.style(Role::Key)));
        right.push(Span::styled(" menu ", muted));
    }
    let right = Line::from(right);
    let right_width = u16::try_from(right.width())
        .unwrap_or(area.width)
        .min(area.width);

    // Left: what this session is, most important first; the rest is dropped when narrow.
    let mut segments: Vec<Vec<Span>> = vec![vec![
        Span::styled(" ◆ ", theme.style(Role::Accent)),
        Span::styled(session.hostname.clone(), theme.style(Role::Title)),
    ]];
    let (mode, mode_role) = match (viewer.input_blocked(), &viewer.desktop) {
        (true, None) => ("view only: keys are not sent", Role::Warning),
        (true, Some(_)) => ("view only", Role::Warning),
        (false, _) => ("control", Role::Text),
    };
    segments.push(vec![
        Span::styled(" · ", muted),
        Span::styled(mode, theme.style(mode_role)),
    ]);
    // A notice (screenshot saved, Ctrl-Alt-Del sent) comes before the rest.
    if let Some((kind, text, _)) = &viewer.notice {
        let role = match kind {
            StatusKind::Error => Role::Danger,
            StatusKind::Warning => Role::Warning,
            StatusKind::Success => Role::Success,
            StatusKind::Info => Role::Accent,
        };
        // Cut to what is left beside the host and the mode, at its end: a saved file's name
        // comes before its folder, so the name stays.
        let used: usize = segments.iter().flatten().map(Span::width).sum();
        let room = usize::from(area.width.saturating_sub(right_width + 1))
            .saturating_sub(used + 3)
            .max(8);
        let shown = truncate(text, room);
        segments.push(vec![
            Span::styled(" · ", muted),
            Span::styled(shown, theme.style(role)),
        ]);
    }
    if let Some(desktop) = &viewer.desktop {
        segments.push(vec![
            Span::styled(" · ", muted),
            Span::raw(desktop.mode_label()),
        ]);
    }
    segments.push(vec![
        Span::styled(" · ", muted),
        Span::raw(session.technician.name.clone()),
    ]);
    segments.push(vec![
        Span::styled(" · ", muted),
        Span::raw(session.method.label()),
    ]);
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
    let mut left: Vec<Span> = segments.into_iter().flatten().collect();
    if width(std::slice::from_ref(&left)) > usize::from(left_area.width)
        && let Some(host) = left.get_mut(1)
    {
        let room = usize::from(left_area.width).saturating_sub(3);
        *host = Span::styled(truncate(&session.hostname, room), host.style);
    }
    frame.render_widget(Paragraph::new(Line::from(left)).style(base), left_area);
    frame.render_widget(
        Paragraph::new(right).style(base).right_aligned(),
        right_area,
    );
}

/// The menu: every key of the menu layer with what it does, from the keymap.
fn draw_menu(
    state: &State,
    viewer: &Viewer,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    layer: Layer,
) {
    let bindings: Vec<_> = state
        .keymap
        .bindings(layer)
        .filter(|b| !b.keys.is_empty() && b.action != Action::TerminalMenu)
        .collect();
    // One binding a row where they fit; on a short terminal (40x10) the short labels, packed.
    if bindings.len() + 2 > usize::from(area.height) {
        return draw_packed_menu(viewer, theme, frame, area, &bindings);
    }
    let rows: Vec<(String, &str)> = bindings
        .iter()
        .map(|b| (b.keys_label(), b.description))
        .collect();
    let keys_width = rows.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    let text_width = rows
        .iter()
        .map(|(_, d)| keys_width + 2 + d.width())
        .max()
        .unwrap_or(0);
    let width = u16::try_from(text_width + 4)
        .unwrap_or(u16::MAX)
        .min(area.width.saturating_sub(2));
    let inner_width = usize::from(width.saturating_sub(4));
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(keys, description)| {
            let pad = keys_width.saturating_sub(keys.width()) + 2;
            let room = inner_width.saturating_sub(keys_width + 2);
            Line::from(vec![
                Span::styled(keys, theme.style(Role::Key)),
                Span::raw(" ".repeat(pad)),
                Span::raw(truncate(description, room)),
            ])
        })
        .collect();
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    draw_menu_box(viewer, theme, frame, centered(area, width, height), lines);
}

/// The menu on a terminal too short for a row per binding: each binding's first key and short
/// label, packed into lines, so every key still shows.
fn draw_packed_menu(
    viewer: &Viewer,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    bindings: &[&crate::console::keymap::Binding],
) {
    let width = area.width.saturating_sub(2).max(4);
    let inner_width = usize::from(width.saturating_sub(4)).max(1);
    let mut lines: Vec<Line> = Vec::new();
    let mut line: Vec<Span> = Vec::new();
    let mut used = 0;
    for binding in bindings {
        let key = binding
            .keys
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        // The footer's short label; a binding without one gets the start of its description.
        let label = match binding.hint {
            Some(hint) => truncate(hint, inner_width.saturating_sub(key.width() + 1).max(1)),
            None => truncate(binding.description, 14),
        };
        let cost = key.width() + 1 + label.width() + if line.is_empty() { 0 } else { 2 };
        if used + cost > inner_width && !line.is_empty() {
            lines.push(Line::from(std::mem::take(&mut line)));
            used = 0;
        }
        if !line.is_empty() {
            line.push(Span::raw("  "));
            used += 2;
        }
        used += key.width() + 1 + label.width();
        line.push(Span::styled(key, theme.style(Role::Key)));
        line.push(Span::raw(format!(" {label}")));
    }
    if !line.is_empty() {
        lines.push(Line::from(line));
    }
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    draw_menu_box(viewer, theme, frame, centered(area, width, height), lines);
}

/// The session menu's box (titled with the workstation), cleared under it, with `lines` inside.
fn draw_menu_box(viewer: &Viewer, theme: &Theme, frame: &mut Frame, rect: Rect, lines: Vec<Line>) {
    frame.render_widget(Clear, rect);
    let title = format!(" {} ", viewer.session.hostname);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style(Role::BorderFocused))
        .style(theme.style(Role::Text))
        .title(Span::styled(
            truncate(&title, usize::from(rect.width.saturating_sub(2))),
            theme.style(Role::Title),
        ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_naturally() {
        assert_eq!(rate_label(0), "0 B/s");
        assert_eq!(rate_label(999), "999 B/s");
        assert_eq!(rate_label(1_234), "1.2 KB/s");
        assert_eq!(rate_label(56_000), "56 KB/s");
        assert_eq!(rate_label(3_400_000), "3.4 MB/s");
    }
}
