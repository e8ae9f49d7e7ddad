//! The login screen: hub address, user, masked password, and where the attempt is.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{centered, hints_line, word_wrap};
use crate::console::keymap::Layer;
use crate::console::state::{LoginField, LoginPhase, State, TextInput};
use crate::console::theme::{Role, Theme};

const LABEL_WIDTH: usize = 10;

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect) {
    let form = &state.login;
    let width = 66.min(area.width);
    // Inside the border, with two columns of padding each side.
    let text_width = width.saturating_sub(6);
    let field_width = usize::from(text_width).saturating_sub(LABEL_WIDTH);

    let mut lines = vec![Line::default()];
    let mut cursor = None;
    let masked = TextInput {
        value: "•".repeat(form.password.value.chars().count()),
        cursor: form.password.cursor,
    };
    let mut fields = vec![
        (LoginField::Hub, "Hub", &form.hub),
        (LoginField::User, "User", &form.user),
        (LoginField::Password, "Password", &masked),
    ];
    // A guest's security code, or the 2FA code once the hub asked for one.
    if form.guest {
        fields.push((LoginField::Code, "Code", &form.code));
    } else if form.needs_code {
        fields.push((LoginField::Code, "2FA code", &form.code));
    }
    for (field, label, input) in fields {
        let focused = field == form.field && !form.phase.busy();
        let label_style = theme.style(if focused { Role::Accent } else { Role::Muted });
        let (shown, column) = visible_part(input, field_width);
        let pad = field_width.saturating_sub(shown.width());
        if focused && state.dialog.is_none() {
            cursor = Some((lines.len(), LABEL_WIDTH + column));
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<LABEL_WIDTH$}"), label_style),
            Span::styled(
                format!("{shown}{}", " ".repeat(pad)),
                theme.style(Role::Input),
            ),
        ]));
    }
    lines.push(Line::default());
    lines.push(hints_line(state, theme, Layer::Login, text_width));
    let busy_text = match &form.phase {
        LoginPhase::Editing => None,
        LoginPhase::CheckingPin | LoginPhase::Probing => {
            Some(format!("Contacting {}…", form.hub.value))
        }
        LoginPhase::AwaitingTrust => {
            Some("Waiting for your answer about the hub's certificate…".to_owned())
        }
        LoginPhase::LoggingIn => Some(format!("Logging in as {}…", form.user.value.trim())),
        LoginPhase::Resuming { .. } => Some(format!("Resuming your login on {}…", form.hub.value)),
    };
    let stop = state
        .keymap
        .key_for(Layer::Login, crate::console::action::Action::Cancel);
    let busy_text = match (busy_text, stop) {
        (Some(text), Some(key)) if form.phase != LoginPhase::AwaitingTrust => {
            Some(format!("{text} ({key} stops)"))
        }
        (text, _) => text,
    };
    let messages = [
        (busy_text, Role::Accent),
        (form.error.clone(), Role::Danger),
        (form.notice.clone(), Role::Warning),
    ];
    let mut first = true;
    for (text, role) in messages {
        let Some(text) = text else { continue };
        if std::mem::take(&mut first) {
            lines.push(Line::default());
        }
        let wrapped = word_wrap(&text, usize::from(text_width));
        lines.extend(
            wrapped
                .into_iter()
                .map(|l| Line::styled(l, theme.style(role))),
        );
    }
    lines.push(Line::default());

    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, width, height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.style(Role::BorderFocused))
        .title(Span::styled(
            if form.guest {
                " Tether · guest login (support credentials) "
            } else {
                " Tether · log in to a hub "
            },
            theme.style(Role::Title),
        ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 2,
        width: inner.width.saturating_sub(4),
        ..inner
    };
    frame.render_widget(Paragraph::new(lines), inner);
    if let Some((row, column)) = cursor {
        let position = Position {
            x: inner.x + u16::try_from(column).unwrap_or(0),
            y: inner.y + u16::try_from(row).unwrap_or(0),
        };
        if position.x < inner.right() && position.y < inner.bottom() {
            frame.set_cursor_position(position);
        }
    }
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
