//! The `?` overlay: every binding of every layer, generated from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{centered, hints_line};
use crate::console::keymap::Layer;
use crate::console::state::State;
use crate::console::theme::{Role, Theme};

/// The help's lines, for drawing and for clamping the scroll.
pub(super) fn lines(state: &State, theme: &Theme) -> Vec<Line<'static>> {
    let help = state.keymap.help();
    let keys_width = help
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(keys, _)| keys.width()))
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (title, rows) in help {
        if rows.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::default());
        }
        lines.push(Line::styled(title, theme.style(Role::Title)));
        for (keys, description) in rows {
            let pad = keys_width.saturating_sub(keys.width());
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(keys, theme.style(Role::Key)),
                Span::raw(" ".repeat(pad + 2)),
                Span::raw(description),
            ]));
        }
    }
    lines
}

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect, scroll: u16) {
    let lines = lines(state, theme);
    let rect = centered(
        area,
        76.min(area.width.saturating_sub(4)),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    let hints = hints_line(state, theme, Layer::Help, rect.width.saturating_sub(4));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style(Role::BorderFocused))
        .style(theme.style(Role::Text))
        .title(Span::styled(" Keys ", theme.style(Role::Title)))
        .title_bottom(hints.centered());
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
        ..inner
    };
    // Clamp here rather than in update: how much fits depends on the frame.
    let max_scroll = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(inner.height);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll.min(max_scroll), 0)),
        inner,
    );
}
