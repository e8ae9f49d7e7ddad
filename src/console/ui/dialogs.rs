//! Dialogs drawn over a screen: trust a new hub, certificate changed, add client, enrolment link.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{centered, hard_wrap, hints_line, spinner, word_wrap};
use crate::client::store::hub_key;
use crate::console::action::Action;
use crate::console::keymap::Layer;
use crate::console::state::{
    ConfirmDialog, ConnectingDialog, Dialog, LinkDialog, SecretPrompt, State,
};
use crate::console::theme::{Role, Theme};
use crate::console::update::secret_name;

/// Width of dialogs on wide terminals.
const WIDTH: u16 = 72;

pub(super) fn draw(state: &State, theme: &Theme, frame: &mut Frame, area: Rect, dialog: &Dialog) {
    let width = WIDTH.min(area.width.saturating_sub(4));
    // Text width inside the border and one column of padding each side.
    let text_width = usize::from(width.saturating_sub(4));
    let mut cursor = None;
    let (title, border, lines) = match dialog {
        Dialog::Trust { hub, fingerprint } => (
            Span::styled(" Trust this hub? ", theme.style(Role::Warning)),
            Role::Warning,
            trust(state, theme, text_width, hub, fingerprint),
        ),
        Dialog::Mismatch {
            hub,
            expected,
            seen,
        } => {
            let title = Span::styled(
                " ⚠ HUB CERTIFICATE CHANGED ",
                theme.style(Role::Danger).add_modifier(Modifier::REVERSED),
            );
            (
                title,
                Role::Danger,
                mismatch(state, theme, text_width, hub, expected, seen),
            )
        }
        Dialog::AddClient { name, error } => {
            let mut lines = vec![
                Line::from("Name of the company or person you support:"),
                Line::default(),
            ];
            let before: String = name.value.chars().take(name.cursor).collect();
            cursor = Some((lines.len(), before.width()));
            let pad = text_width.saturating_sub(name.value.width());
            lines.push(Line::from(Span::styled(
                format!("{}{}", name.value, " ".repeat(pad)),
                theme.style(Role::Input),
            )));
            if let Some(error) = error {
                lines.extend(
                    word_wrap(error, text_width)
                        .into_iter()
                        .map(|l| Line::styled(l, theme.style(Role::Danger))),
                );
            }
            lines.push(Line::default());
            lines.push(hints_line(
                state,
                theme,
                Layer::Input,
                width.saturating_sub(4),
            ));
            (
                Span::styled(" Add a client ", theme.style(Role::Title)),
                Role::BorderFocused,
                lines,
            )
        }
        Dialog::Link(link) => {
            let title = Span::styled(
                format!(" Enrolment link · {} ", link.client_name),
                theme.style(Role::Title),
            );
            (
                title,
                Role::BorderFocused,
                link_lines(state, theme, text_width, link),
            )
        }
        Dialog::Secret(prompt) => {
            let mut lines = secret_lines(theme, text_width, prompt);
            // The field is the line after the prose and a blank line.
            let field = lines
                .iter()
                .position(|l| l.style == theme.style(Role::Input))
                .unwrap_or(0);
            cursor = Some((field, prompt.input.cursor));
            lines.push(Line::default());
            lines.push(hints_line(
                state,
                theme,
                Layer::Secret,
                width.saturating_sub(4),
            ));
            let mode = if prompt.view_only { " (view only)" } else { "" };
            (
                Span::styled(
                    format!(" Connect to {}{mode} ", prompt.hostname),
                    theme.style(Role::Title),
                ),
                Role::BorderFocused,
                lines,
            )
        }
        Dialog::Connecting(dialog) => {
            let mode = if dialog.view_only { " (view only)" } else { "" };
            (
                Span::styled(
                    format!(" Connecting to {}{mode} ", dialog.hostname),
                    theme.style(Role::Title),
                ),
                Role::BorderFocused,
                connecting_lines(state, theme, text_width, dialog),
            )
        }
        Dialog::Confirm(confirm) => (
            Span::styled(format!(" {} ", confirm.title), theme.style(Role::Warning)),
            Role::Warning,
            confirm_lines(state, theme, text_width, confirm),
        ),
        Dialog::Credentials(dialog) => super::credentials::dialog(state, theme, text_width, dialog),
        Dialog::Otp(_) | Dialog::OtpPrompt(_) | Dialog::Outbox(_) => {
            let Some((title, border, lines, at)) = super::otp::draw(
                state,
                theme,
                text_width,
                width.saturating_sub(4),
                area.height,
                dialog,
            ) else {
                return;
            };
            cursor = at;
            (title, border, lines)
        }
        Dialog::Help { .. } => return,
        Dialog::Users(users) => {
            let (title, border, lines, at) =
                super::users::draw(state, theme, text_width, width.saturating_sub(4), users);
            cursor = at;
            (title, border, lines)
        }
        Dialog::UserMenu { .. }
        | Dialog::TwoFactorOffer
        | Dialog::Enrol(_)
        | Dialog::AdminPassword(_) => {
            return super::twofa::draw_dialog(state, theme, frame, area, dialog);
        }
    };
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, width + 2, height);
    // One column of margin around the box so it stands out from what is under it.
    super::clear_under(frame, area, rect, theme.style(Role::Text));
    let rect = Rect {
        x: rect.x + 1,
        width: rect.width.saturating_sub(2),
        ..rect
    };
    let border_type = if border == Role::Danger {
        BorderType::Thick
    } else {
        BorderType::Rounded
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(border_type)
        .border_style(theme.style(border))
        .title(title);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x + 1,
        width: inner.width.saturating_sub(2),
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

fn prose(text: &str, width: usize, style: Style) -> impl Iterator<Item = Line<'static>> {
    word_wrap(text, width)
        .into_iter()
        .map(move |l| Line::styled(l, style))
}

fn exact(text: &str, width: usize, style: Style) -> impl Iterator<Item = Line<'static>> {
    hard_wrap(text, width)
        .into_iter()
        .map(move |l| Line::styled(l, style))
}

fn trust(
    state: &State,
    theme: &Theme,
    width: usize,
    hub: &str,
    fingerprint: &str,
) -> Vec<Line<'static>> {
    let text = theme.style(Role::Text);
    let mut lines: Vec<Line> = prose(
        &format!(
            "First connection to {}. The certificate it presents has this fingerprint:",
            hub_key(hub)
        ),
        width,
        text,
    )
    .collect();
    lines.push(Line::default());
    lines.extend(exact(fingerprint, width, theme.style(Role::Accent)));
    lines.push(Line::default());
    lines.extend(prose(
        "Compare it with the fingerprint the hub printed when it started (ask its administrator). \
         If they match, trust it: from then on the console refuses any other certificate for this hub.",
        width,
        theme.style(Role::Muted),
    ));
    lines.push(Line::default());
    lines.push(hints_line(
        state,
        theme,
        Layer::Trust,
        u16::try_from(width).unwrap_or(u16::MAX),
    ));
    lines
}

fn mismatch(
    state: &State,
    theme: &Theme,
    width: usize,
    hub: &str,
    expected: &str,
    seen: &str,
) -> Vec<Line<'static>> {
    let danger = theme.style(Role::Danger);
    let mut lines: Vec<Line> = prose(
        &format!(
            "{} presented a different certificate from the one you trusted. Someone may be intercepting \
             the connection. Nothing was sent and you are not logged in.",
            hub_key(hub)
        ),
        width,
        danger,
    )
    .collect();
    lines.push(Line::default());
    lines.push(Line::styled("Trusted:", theme.style(Role::Muted)));
    lines.extend(exact(expected, width, theme.style(Role::Text)));
    lines.push(Line::styled("Presented now:", theme.style(Role::Muted)));
    lines.extend(exact(seen, width, danger));
    lines.push(Line::default());
    lines.extend(prose(
        "If the hub's administrator confirms the certificate was replaced on purpose, delete the hub's \
         line from the known_hubs file in Tether's state directory, then log in again.",
        width,
        theme.style(Role::Text),
    ));
    lines.push(Line::default());
    lines.push(hints_line(
        state,
        theme,
        Layer::Mismatch,
        u16::try_from(width).unwrap_or(u16::MAX),
    ));
    lines
}

/// The masked prompt's lines (without the key hints): what to type, the field, any error.
fn secret_lines(theme: &Theme, width: usize, prompt: &SecretPrompt) -> Vec<Line<'static>> {
    let text = theme.style(Role::Text);
    let muted = theme.style(Role::Muted);
    let name = secret_name(prompt.requires);
    let mut lines: Vec<Line> = prose(
        &format!("{} requires its {name}.", prompt.hostname),
        width,
        text,
    )
    .collect();
    let (passcode, password) = (prompt.requires.passcode, prompt.requires.password);
    let source = match (passcode, password) {
        (true, false) => "Ask the person at the computer: the agent shows the passcode.",
        (false, true) => "The end user set it in the agent; ask them or your records.",
        _ => "Either works: the passcode the agent shows, or the password the end user set.",
    };
    lines.extend(prose(source, width, muted));
    if prompt.attended {
        lines.extend(prose(
            "The end user is then asked to accept the connection.",
            width,
            muted,
        ));
    }
    lines.push(Line::default());
    // Masked: one dot per character typed, never the characters.
    let typed = prompt.input.value.chars().count();
    let dots = "•".repeat(typed.min(width));
    let pad = width.saturating_sub(dots.width());
    lines.push(Line::styled(
        format!("{dots}{}", " ".repeat(pad)),
        theme.style(Role::Input),
    ));
    if let Some(error) = &prompt.error {
        lines.extend(prose(error, width, theme.style(Role::Danger)));
    }
    lines
}

fn connecting_lines(
    state: &State,
    theme: &Theme,
    width: usize,
    dialog: &ConnectingDialog,
) -> Vec<Line<'static>> {
    let elapsed = (state.now - dialog.since).num_seconds().max(0);
    let waiting = if dialog.attended {
        "Waiting for the end user to accept…"
    } else {
        "Waiting for the workstation…"
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", spinner(state)), theme.style(Role::Warning)),
        Span::styled(waiting, theme.style(Role::Text)),
        Span::styled(format!(" {elapsed} s"), theme.style(Role::Accent)),
    ])];
    let detail = if dialog.attended {
        "The agent asks the person at the computer; without an answer within 60 s the connection is refused."
    } else {
        "Unattended access is granted: the agent opens the session without asking."
    };
    lines.push(Line::default());
    lines.extend(prose(detail, width, theme.style(Role::Muted)));
    lines.push(Line::default());
    lines.push(hints_line(
        state,
        theme,
        Layer::Connecting,
        u16::try_from(width).unwrap_or(u16::MAX),
    ));
    lines
}

/// The confirmation dialog: the question, its consequence, and its two answers. The keys are
/// the keymap's, the yes label the dialog's own ("quit", "withdraw").
fn confirm_lines(
    state: &State,
    theme: &Theme,
    width: usize,
    dialog: &ConfirmDialog,
) -> Vec<Line<'static>> {
    let key = |action| {
        state
            .keymap
            .key_for(Layer::Confirm, action)
            .unwrap_or_default()
    };
    let mut lines: Vec<Line> = prose(&dialog.text, width, theme.style(Role::Text)).collect();
    if let Some(warning) = &dialog.warning {
        lines.push(Line::default());
        lines.extend(prose(warning, width, theme.style(Role::Warning)));
    }
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled(key(Action::Yes), theme.style(Role::Key)),
        Span::styled(format!(" {}  ", dialog.yes), theme.style(Role::Muted)),
        Span::styled(key(Action::No), theme.style(Role::Key)),
        Span::styled(" no, change nothing", theme.style(Role::Muted)),
    ]));
    lines
}

/// "in 7 days", "in 5 hours", "expired": rounded to the nearest unit, so a link issued a few
/// seconds ago still reads "in 7 days".
fn until(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (then - now).num_seconds();
    let plural = |n: i64, unit: &str| format!("in {n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        ..=0 => "expired".to_owned(),
        1..=3_569 => plural(((secs + 30) / 60).max(1), "minute"),
        3_570..=84_599 => plural((secs + 1_800) / 3_600, "hour"),
        _ => plural((secs + 43_200) / 86_400, "day"),
    }
}

fn link_lines(
    state: &State,
    theme: &Theme,
    width: usize,
    dialog: &LinkDialog,
) -> Vec<Line<'static>> {
    let text = theme.style(Role::Text);
    let muted = theme.style(Role::Muted);
    let mut lines = Vec::new();
    let Some((link, url)) = &dialog.link else {
        if dialog.loading {
            lines.push(Line::styled(
                format!("Asking the hub about {}'s links…", dialog.client_name),
                theme.style(Role::Accent),
            ));
        } else {
            lines.extend(prose(
                &format!(
                    "{} has no valid enrolment link. Issue one to enrol a computer (tether agent --link LINK).",
                    dialog.client_name
                ),
                width,
                text,
            ));
        }
        lines.push(Line::default());
        lines.push(hints_line(
            state,
            theme,
            Layer::Link,
            u16::try_from(width).unwrap_or(u16::MAX),
        ));
        return lines;
    };
    lines.extend(prose(
        &format!(
            "Give this link to the person at {}'s computer. The agent started with it \
             (tether agent --link LINK) enrols the computer, which then appears in your list.",
            dialog.client_name
        ),
        width,
        text,
    ));
    lines.push(Line::default());
    let url_style = if link.revoked {
        muted.add_modifier(Modifier::CROSSED_OUT)
    } else {
        theme.style(Role::Accent)
    };
    match url {
        Some(url) => lines.extend(exact(url, width, url_style)),
        // The hub keeps only the link's hash: its text exists where it was issued.
        None => lines.extend(prose(
            "This valid link was issued elsewhere (or before this console started): the hub keeps only its hash, so it cannot be shown again. Use the copy you gave out, or issue a new one.",
            width,
            muted,
        )),
    }
    lines.push(Line::default());
    let uses = match link.uses {
        1 => "used once".to_owned(),
        n => format!("used {n} times"),
    };
    lines.push(Line::from(vec![
        Span::styled("Expires ", muted),
        Span::styled(
            link.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            text,
        ),
        Span::styled(
            format!(" ({}) · {uses}", until(state.now, link.expires_at)),
            muted,
        ),
    ]));
    if link.revoked {
        lines.extend(prose(
            "Revoked: this link can no longer enrol workstations.",
            width,
            theme.style(Role::Danger),
        ));
    } else if dialog.revoking {
        lines.push(Line::styled("Revoking…", theme.style(Role::Warning)));
    } else {
        lines.extend(prose(
            "Earlier links for this client stay valid until they expire or are revoked.",
            width,
            muted,
        ));
    }
    lines.push(Line::default());
    lines.push(hints_line(
        state,
        theme,
        Layer::Link,
        u16::try_from(width).unwrap_or(u16::MAX),
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn expiry_reads_naturally() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let ahead = |secs| until(now, now + Duration::seconds(secs));
        assert_eq!(ahead(7 * 86_400 - 5), "in 7 days");
        assert_eq!(ahead(86_400 + 3_600), "in 1 day");
        assert_eq!(ahead(5 * 3_600 - 10), "in 5 hours");
        assert_eq!(ahead(90), "in 2 minutes");
        assert_eq!(ahead(10), "in 1 minute");
        assert_eq!(ahead(-1), "expired");
    }
}
