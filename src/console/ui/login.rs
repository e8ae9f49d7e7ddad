//! The login screen: hub address, user, masked password, and where the attempt is.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use super::{centered, hints_line};
use crate::console::keymap::Layer;
use crate::console::state::{LoginField, LoginPhase, State, TextInput};
use crate::console::theme::{Role, Theme};

const LABEL_WIDTH: usize = 10;

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let form = &state.login;
    let rect = centered(area, 66, 14);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style(Role::BorderFocused))
        .title(Span::styled(" Tether · log in to a hub ", theme.style(Role::Title)));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect { x: inner.x + 2, width: inner.width.saturating_sub(4), ..inner };
    let field_width = usize::from(inner.width).saturating_sub(LABEL_WIDTH);

    let mut lines = vec![Line::default()];
    let masked = TextInput { value: "•".repeat(form.password.value.chars().count()), cursor: form.password.cursor };
    let fields = [
        (LoginField::Hub, "Hub", &form.hub),
        (LoginField::User, "User", &form.user),
        (LoginField::Password, "Password", &masked),
    ];
    for (field, label, input) in fields {
        let focused = field == form.field && !form.phase.busy();
        let label_style = theme.style(if focused { Role::Accent } else { Role::Muted });
        let shown = visible_part(input, field_width);
        let pad = field_width.saturating_sub(shown.0.width());
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<LABEL_WIDTH$}"), label_style),
            Span::styled(format!("{}{}", shown.0, " ".repeat(pad)), theme.style(Role::Input)),
        ]));
        if focused && state.dialog.is_none() {
            let row = inner.y + u16::try_from(lines.len() - 1).unwrap_or(0);
            let x = inner.x + u16::try_from(LABEL_WIDTH + shown.1).unwrap_or(0);
            if row < inner.bottom() && x < inner.right() {
                frame.set_cursor_position(Position { x, y: row });
            }
        }
    }
    lines.push(Line::default());
    lines.push(hints_line(state, theme, Layer::Login, inner.width));
    lines.push(Line::default());
    let busy_text = match &form.phase {
        LoginPhase::Editing => None,
        LoginPhase::CheckingPin | LoginPhase::Probing => Some(format!("Contacting {}…", form.hub.value)),
        LoginPhase::AwaitingTrust => Some("Waiting for your answer about the hub's certificate…".to_owned()),
        LoginPhase::LoggingIn => Some(format!("Logging in as {}…", form.user.value.trim())),
        LoginPhase::Resuming { .. } => Some(format!("Resuming your login on {}…", form.hub.value)),
    };
    if let Some(text) = busy_text {
        lines.push(Line::from(Span::styled(text, theme.style(Role::Accent))));
    }
    if let Some(error) = &form.error {
        lines.push(Line::from(Span::styled(error.clone(), theme.style(Role::Danger))));
    }
    if let Some(notice) = &form.notice {
        lines.push(Line::from(Span::styled(notice.clone(), theme.style(Role::Warning))));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The part of a field that fits in `width` columns, scrolled so the cursor shows, and the
/// cursor's column within it.
fn visible_part(input: &TextInput, width: usize) -> (String, usize) {
    let chars: Vec<char> = input.value.chars().collect();
    let cursor = input.cursor.min(chars.len());
    let width = width.max(1);
    // Keep one column for the cursor after the last character.
    let start = (cursor + 1).saturating_sub(width);
    let mut used = 0;
    let shown: String = chars[start..]
        .iter()
        .take_while(|c| {
            used += unicode_width::UnicodeWidthChar::width(**c).unwrap_or(0);
            used <= width
        })
        .collect();
    let before: String = chars[start..cursor].iter().collect();
    (shown, before.width())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_scroll_to_the_cursor() {
        let input = TextInput::new("wss://a-very-long-hub-name.example.org:7443");
        let (shown, cursor) = visible_part(&input, 10);
        assert_eq!((shown.as_str(), cursor), (".org:7443", 9));
        let start = TextInput { cursor: 0, ..input };
        let (shown, cursor) = visible_part(&start, 10);
        assert_eq!((shown.as_str(), cursor), ("wss://a-ve", 0));
    }
}
