//! The users view's lifecycle dialogs (issue 11): add a user, their enrolment code (shown
//! once), and the question before a change that closes someone's consoles.

use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

use super::{hints_line, truncate, word_wrap};
use crate::console::keymap::Layer;
use crate::console::state::State;
use crate::console::theme::{Role, Theme};
use crate::console::update::users::{AddField, AddUserForm, UserChange, UsersDialog};

/// Title, border role, lines and the cursor (line, column).
type Drawn = (
    Span<'static>,
    Role,
    Vec<Line<'static>>,
    Option<(usize, usize)>,
);

fn prose(text: &str, width: usize, role: Role, theme: &Theme) -> Vec<Line<'static>> {
    word_wrap(text, width)
        .into_iter()
        .map(|l| Line::styled(l, theme.style(role)))
        .collect()
}

/// A labelled field; focused ones in the input style.
fn labelled(theme: &Theme, width: usize, label: &str, value: &str, focused: bool) -> Line<'static> {
    let label = format!("{label:<8}");
    let room = width.saturating_sub(label.width());
    let shown = truncate(value, room);
    let pad = room.saturating_sub(shown.width());
    let style = if focused {
        theme.style(Role::Input)
    } else {
        theme.style(Role::Text)
    };
    Line::from(vec![
        Span::styled(label, theme.style(Role::Muted)),
        Span::styled(format!("{shown}{}", " ".repeat(pad)), style),
    ])
}

pub(super) fn draw(
    state: &State,
    theme: &Theme,
    width: usize,
    hint_width: u16,
    dialog: &UsersDialog,
) -> Drawn {
    match dialog {
        UsersDialog::Add(form) => add(state, theme, width, hint_width, form),
        UsersDialog::Added {
            name,
            code,
            expires,
        } => {
            let mut lines = prose(
                &format!(
                    "{name} sets their password with this code, once, until {expires}. It is shown only now: give it to them privately."
                ),
                width,
                Role::Text,
                theme,
            );
            lines.push(Line::default());
            lines.extend(
                super::hard_wrap(code, width)
                    .into_iter()
                    .map(|l| Line::styled(l, theme.style(Role::Accent))),
            );
            lines.push(Line::default());
            lines.extend(prose(
                &format!("tether login --hub URL --user {name} --enrol CODE --password-stdin"),
                width,
                Role::Muted,
                theme,
            ));
            lines.push(Line::default());
            lines.push(hints_line(state, theme, Layer::UserAdded, hint_width));
            (
                Span::styled(format!(" {name} added "), theme.style(Role::Title)),
                Role::BorderFocused,
                lines,
                None,
            )
        }
        UsersDialog::Confirm { name, change } => {
            let mut lines = prose(&change.describe(name), width, Role::Text, theme);
            lines.push(Line::default());
            lines.push(hints_line(state, theme, Layer::UserConfirm, hint_width));
            let (title, border) = match change {
                UserChange::Enable => (" Enable a user? ", Role::BorderFocused),
                UserChange::Role(_) => (" Change a role? ", Role::Warning),
                UserChange::Disable => (" Disable a user? ", Role::Danger),
                UserChange::Remove => (" Remove a user? ", Role::Danger),
            };
            (
                Span::styled(title, theme.style(Role::Title)),
                border,
                lines,
                None,
            )
        }
    }
}

fn add(state: &State, theme: &Theme, width: usize, hint_width: u16, form: &AddUserForm) -> Drawn {
    let mut lines = prose(
        "A new user of your team. They set their own password with a one-time code shown next.",
        width,
        Role::Text,
        theme,
    );
    lines.push(Line::default());
    let name_row = lines.len();
    lines.push(labelled(
        theme,
        width,
        "Name",
        &form.name.value,
        form.focus == AddField::Name,
    ));
    lines.push(labelled(
        theme,
        width,
        "E-mail",
        &form.email.value,
        form.focus == AddField::Email,
    ));
    let role = format!("‹ {} ›", form.role().as_str());
    lines.push(labelled(
        theme,
        width,
        "Role",
        &role,
        form.focus == AddField::Role,
    ));
    let cursor = match form.focus {
        AddField::Name => Some((name_row, 8 + form.name.cursor)),
        AddField::Email => Some((name_row + 1, 8 + form.email.cursor)),
        AddField::Role => None,
    }
    .filter(|_| !form.waiting)
    .map(|(row, column)| (row, column.min(width)));
    if let Some(error) = &form.error {
        lines.extend(prose(error, width, Role::Danger, theme));
    }
    lines.push(Line::default());
    lines.push(hints_line(state, theme, Layer::UserAdd, hint_width));
    (
        Span::styled(" Add a user ", theme.style(Role::Title)),
        Role::BorderFocused,
        lines,
        cursor,
    )
}
