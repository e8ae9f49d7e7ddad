//! The `?` overlay: every binding of every layer, generated from the keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{centered, hints_line, word_wrap};
use crate::console::keymap::Layer;
use crate::console::state::State;
use crate::console::theme::{Role, Theme};

/// The help's width inside its frame on a terminal `columns` wide (see [`draw`]).
fn text_width(columns: u16) -> usize {
    usize::from(76.min(columns.saturating_sub(4)).saturating_sub(4))
}

/// How many lines the help takes on a terminal `columns` wide (long descriptions wrap).
pub fn line_count(state: &State, columns: u16) -> usize {
    lines(state, None, text_width(columns)).len()
}

/// The help's lines, for drawing and for clamping the scroll: descriptions wider than `width`
/// wrap under themselves.
fn lines(state: &State, theme: Option<&Theme>, width: usize) -> Vec<Line<'static>> {
    let style = |role| theme.map(|t| t.style(role)).unwrap_or_default();
    let help = state.keymap.help();
    let keys_width = help
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(keys, _)| keys.width()))
        .max()
        .unwrap_or(0);
    let indent = keys_width + 4;
    let text_width = width.saturating_sub(indent).max(20);
    let mut lines = Vec::new();
    for (title, rows) in help {
        if rows.is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(Line::default());
        }
        lines.push(Line::styled(title, style(Role::Title)));
        for (keys, description) in rows {
            let pad = keys_width.saturating_sub(keys.width());
            let mut wrapped = word_wrap(description, text_width).into_iter();
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(keys, style(Role::Key)),
                Span::raw(" ".repeat(pad + 2)),
                Span::raw(wrapped.next().unwrap_or_default()),
            ]));
            for more in wrapped {
                lines.push(Line::from(vec![
                    Span::raw(" ".repeat(indent)),
                    Span::raw(more),
                ]));
            }
        }
    }
    lines
}

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect, scroll: u16) {
    let lines = lines(state, Some(theme), text_width(area.width));
    let rect = centered(
        area,
        76.min(area.width.saturating_sub(4)),
        area.height.saturating_sub(2),
    );
    super::clear_under(frame, area, rect, theme.style(Role::Text));
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
