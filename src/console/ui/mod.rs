//! Drawing: `draw(&State, &Theme, &mut Frame)` paints the whole screen from the state alone. Pure:
//! no I/O, no clock (ages come from `state.now`), so snapshot tests are exact.

mod credentials;
mod dialogs;
mod help;
mod login;
mod main;
mod otp;
mod terminal;
mod twofa;
mod users;

pub use help::line_count as help_line_count;
pub use terminal::rate_label;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::action::Action;
use super::keymap::Layer;
use super::state::{Dialog, Screen, State};
use super::theme::{Role, Theme};

/// Below this the console shows "terminal too small" instead of a broken layout.
pub const MIN_WIDTH: u16 = 50;
pub const MIN_HEIGHT: u16 = 12;

/// Paint the whole screen.
pub fn draw(state: &State, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.style(Role::Text)), area);
    // A live terminal works at any size: the remote follows it.
    if state.screen == Screen::Main
        && let Some(viewer) = &state.viewer
        && area.height >= 2
    {
        terminal::draw(state, viewer, theme, frame, area);
        // A question asked from the session's menu (quit? ask the end user?) shows over it.
        match &state.dialog {
            None => {}
            Some(Dialog::Help { scroll }) => help::draw(state, theme, frame, area, *scroll),
            Some(dialog) => dialogs::draw(state, theme, frame, area, dialog),
        }
        return;
    }
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = vec![
            Line::from(Span::styled(
                "Terminal too small",
                theme.style(Role::Warning),
            )),
            Line::from(format!(
                "{}x{}; need {MIN_WIDTH}x{MIN_HEIGHT}",
                area.width, area.height
            )),
        ];
        let y = area.height.saturating_sub(2) / 2;
        let rect = Rect {
            y: area.y + y,
            height: area.height.saturating_sub(y).min(2),
            ..area
        };
        frame.render_widget(
            Paragraph::new(text)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            rect,
        );
        return;
    }
    match state.screen {
        Screen::Login => login::draw(state, theme, frame, area),
        Screen::Main => main::draw(state, theme, frame, area),
    }
    match &state.dialog {
        None => {}
        Some(Dialog::Help { scroll }) => help::draw(state, theme, frame, area, *scroll),
        Some(dialog) => dialogs::draw(state, theme, frame, area, dialog),
    }
}

/// Columns left beside a pop-up at most, for them to be cleared with it.
const SLIVER: u16 = 4;

/// Clear the screen under a pop-up at `rect` over `area`. Where only a sliver of the screen is
/// left beside it, the sliver is cleared too: a column or two of a table showing at the edge
/// reads as part of the pop-up.
fn clear_under(frame: &mut Frame, area: Rect, rect: Rect, style: ratatui::style::Style) {
    let left = rect.x.saturating_sub(area.x);
    let right = area.right().saturating_sub(rect.right());
    let band = if left.min(right) <= SLIVER {
        Rect {
            x: area.x,
            width: area.width,
            ..rect
        }
    } else {
        rect
    };
    frame.render_widget(ratatui::widgets::Clear, band);
    frame.render_widget(Block::default().style(style), band);
}

/// A rectangle of at most `width` x `height`, centred in `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// Key hints of a layer as one line (`q quit  ? help ...`), as many as fit in `width`.
fn hints_line(state: &State, theme: &Theme, layer: Layer, width: u16) -> Line<'static> {
    hints_line_where(state, theme, layer, width, |_| true)
}

/// Key hints of the actions `show` keeps, as many as fit in `width`.
fn hints_line_where(
    state: &State,
    theme: &Theme,
    layer: Layer,
    width: u16,
    show: impl Fn(Action) -> bool,
) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, hint) in state
        .keymap
        .hint_actions(layer)
        .into_iter()
        .filter(|(action, _, _)| show(*action))
        .map(|(_, key, hint)| (key, hint))
    {
        let cost = key.width() + 1 + hint.width() + if spans.is_empty() { 0 } else { 2 };
        if used + cost > usize::from(width) {
            break;
        }
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
        }
        used += cost;
        spans.push(Span::styled(key, theme.style(Role::Key)));
        spans.push(Span::styled(format!(" {hint}"), theme.style(Role::Muted)));
    }
    Line::from(spans)
}

/// Cut `text` into lines of at most `width` columns, breaking anywhere: for URLs and
/// fingerprints, which have no spaces and must stay exact.
fn hard_wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = vec![String::new()];
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            lines.push(String::new());
            used = 0;
        }
        if let Some(line) = lines.last_mut() {
            line.push(c);
        }
        used += w;
    }
    lines
}

/// A quarter-circle spinner, one step per tick of the injected clock.
fn spinner(state: &State) -> char {
    const FRAMES: [char; 4] = ['◐', '◓', '◑', '◒'];
    let step = usize::try_from(state.now.timestamp().rem_euclid(4)).unwrap_or(0);
    FRAMES[step]
}

/// `text` cut to `width` columns, with an ellipsis when it had to be cut.
fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_truncates_by_display_width() {
        assert_eq!(hard_wrap("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(truncate("workstation-01", 8), "worksta…");
        assert_eq!(truncate("short", 8), "short");
    }
}

/// Greedy word wrap to `width` columns; words longer than a line are cut with `hard_wrap`.
fn word_wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = if line.is_empty() {
            word.width()
        } else {
            line.width() + 1 + word.width()
        };
        if needed <= width {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if word.width() <= width {
            line.push_str(word);
        } else {
            let mut pieces = hard_wrap(word, width);
            line = pieces.pop().unwrap_or_default();
            lines.extend(pieces);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod wrap_tests {
    use super::*;

    #[test]
    fn word_wrap_keeps_words_whole() {
        assert_eq!(
            word_wrap("earlier links stay valid", 12),
            ["earlier", "links stay", "valid"]
        );
        assert_eq!(
            word_wrap("see tether://abcdefghij", 8),
            ["see", "tether:/", "/abcdefg", "hij"]
        );
        assert_eq!(word_wrap("", 8), [""]);
    }
}
