//! One-time password dialogs (issue 5): the `p` dialog, the code prompt before connecting, and
//! the admins' outbox. Pure functions of the state, like every other dialog.

use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

use super::{hints_line, spinner, truncate, word_wrap};
use crate::console::action::Action;
use crate::console::keymap::Layer;
use crate::console::state::{Dialog, OtpDialog, OtpPrompt, OtpStep, OutboxDialog, State};
use crate::console::theme::{Role, Theme};
use crate::console::update::otp_also_needs;

/// Title, border role, lines and the cursor (line, column) of one of the OTP dialogs.
pub(super) type Drawn = (
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

/// `None` for dialogs that are not this module's.
pub(super) fn draw(
    state: &State,
    theme: &Theme,
    width: usize,
    hint_width: u16,
    height: u16,
    dialog: &Dialog,
) -> Option<Drawn> {
    match dialog {
        Dialog::Otp(d) => Some(otp_dialog(state, theme, width, hint_width, d)),
        Dialog::OtpPrompt(p) => Some(prompt(state, theme, width, hint_width, p)),
        Dialog::Outbox(o) => Some(outbox(state, theme, width, hint_width, height, o)),
        _ => None,
    }
}

fn field(theme: &Theme, width: usize, value: &str) -> Line<'static> {
    let shown = truncate(value, width);
    let pad = width.saturating_sub(shown.width());
    Line::styled(
        format!("{shown}{}", " ".repeat(pad)),
        theme.style(Role::Input),
    )
}

fn otp_dialog(state: &State, theme: &Theme, width: usize, hint_width: u16, d: &OtpDialog) -> Drawn {
    let title = Span::styled(
        format!(" One-time password · {} ", d.hostname),
        theme.style(Role::Title),
    );
    let mut lines = Vec::new();
    if let Some(reason) = &d.reason {
        lines.extend(prose(
            "Emergency access: why do you need it now? The admins receive the code with your \
             reason and pass it on; the request is flagged in the audit log.",
            width,
            Role::Text,
            theme,
        ));
        lines.push(Line::default());
        let before: String = reason.value.chars().take(reason.cursor).collect();
        let cursor = Some((lines.len(), before.width().min(width)));
        lines.push(field(theme, width, &reason.value));
        if let Some((text, true)) = &d.outcome {
            lines.extend(prose(text, width, Role::Danger, theme));
        }
        lines.push(Line::default());
        lines.push(hints_line(state, theme, Layer::OtpReason, hint_width));
        return (title, Role::Warning, lines, cursor);
    }
    lines.extend(prose(
        &format!(
            "{} requires a one-time password for every connection. Yours is bound to you and \
             to this workstation, works once, and expires 30 minutes after it is issued.",
            d.hostname
        ),
        width,
        Role::Text,
        theme,
    ));
    lines.push(Line::default());
    let key = |action| state.keymap.key_for(Layer::Otp, action).unwrap_or_default();
    for (action, text) in [
        (
            Action::OtpRequest,
            "Request a new one: e-mailed to you, or to the hub's outbox",
        ),
        (Action::OtpResend, "Send your current one again"),
        (
            Action::OtpEmergency,
            "Emergency: ask the admins, with a reason",
        ),
    ] {
        let k = key(action);
        lines.push(Line::from(vec![
            Span::styled(format!("{k:<3}"), theme.style(Role::Key)),
            Span::styled(
                truncate(text, width.saturating_sub(3)),
                theme.style(Role::Text),
            ),
        ]));
    }
    lines.push(Line::default());
    match (&d.step, &d.outcome) {
        (OtpStep::Sending, _) => lines.push(Line::styled(
            format!("{} Asking the hub…", spinner(state)),
            theme.style(Role::Muted),
        )),
        (_, Some((text, error))) => {
            let role = if *error { Role::Danger } else { Role::Success };
            lines.extend(prose(text, width, role, theme));
        }
        _ => lines.extend(prose(
            "At most one new code an hour; resending is always possible while it is valid.",
            width,
            Role::Muted,
            theme,
        )),
    }
    lines.push(Line::default());
    lines.push(hints_line(state, theme, Layer::Otp, hint_width));
    (title, Role::BorderFocused, lines, None)
}

fn prompt(state: &State, theme: &Theme, width: usize, hint_width: u16, p: &OtpPrompt) -> Drawn {
    let mode = if p.view_only { " (view only)" } else { "" };
    let title = Span::styled(
        format!(" Connect to {}{mode} ", p.hostname),
        theme.style(Role::Title),
    );
    let mut lines = prose(
        &format!(
            "{} requires a one-time password: XXXX-XXXX-XXXX-XXXX, from your e-mail or \
             from an admin (case and dashes do not matter).",
            p.hostname
        ),
        width,
        Role::Text,
        theme,
    );
    if let Some(secret) = otp_also_needs(p) {
        lines.extend(prose(
            &format!("Then its {secret}."),
            width,
            Role::Muted,
            theme,
        ));
    }
    lines.push(Line::default());
    // The code is shown as typed (upper case): it works once, for this technician only.
    let typed = p.input.value.to_uppercase();
    let before: String = typed.chars().take(p.input.cursor).collect();
    let cursor = Some((lines.len(), before.width().min(width)));
    lines.push(field(theme, width, &typed));
    if let Some(error) = &p.error {
        lines.extend(prose(error, width, Role::Danger, theme));
    }
    lines.push(Line::default());
    lines.push(hints_line(state, theme, Layer::OtpPrompt, hint_width));
    (title, Role::BorderFocused, lines, cursor)
}

fn outbox(
    state: &State,
    theme: &Theme,
    width: usize,
    hint_width: u16,
    height: u16,
    o: &OutboxDialog,
) -> Drawn {
    let count = o.messages.as_ref().map_or(0, Vec::len);
    let title = Span::styled(
        format!(
            " Outbox · {count} message{} ",
            if count == 1 { "" } else { "s" }
        ),
        theme.style(Role::Title),
    );
    let mut body: Vec<Line<'static>> = Vec::new();
    match &o.messages {
        None => body.push(Line::styled(
            format!("{} Loading…", spinner(state)),
            theme.style(Role::Muted),
        )),
        Some(messages) if messages.is_empty() && o.error.is_none() => body.extend(prose(
            "Nothing here: every one-time password was e-mailed.",
            width,
            Role::Muted,
            theme,
        )),
        Some(messages) => {
            for m in messages {
                let head = format!(
                    "#{} {}  {}",
                    m.id,
                    m.at.format("%Y-%m-%d %H:%M UTC"),
                    m.kind
                );
                let role = if m.kind == "emergency" {
                    Role::Warning
                } else {
                    Role::Accent
                };
                body.push(Line::styled(truncate(&head, width), theme.style(role)));
                body.push(Line::styled(
                    truncate(&format!("to {}", m.to), width),
                    theme.style(Role::Text),
                ));
                body.push(Line::styled(
                    truncate(&m.subject, width),
                    theme.style(Role::Text),
                ));
                body.push(Line::styled(
                    truncate(&format!("why: {}", m.why), width),
                    theme.style(Role::Muted),
                ));
                for line in m.body.lines() {
                    for l in word_wrap(line, width.saturating_sub(2)) {
                        body.push(Line::styled(format!("  {l}"), theme.style(Role::Text)));
                    }
                }
                body.push(Line::default());
            }
        }
    }
    if let Some(error) = &o.error {
        body.extend(prose(error, width, Role::Danger, theme));
    }
    // Fit the screen: border (2), a blank and the hints (2), one line of margin each side.
    let room = usize::from(height.saturating_sub(6)).max(1);
    let scroll = usize::from(o.scroll).min(body.len().saturating_sub(room));
    let mut lines: Vec<Line<'static>> = body.into_iter().skip(scroll).take(room).collect();
    lines.push(Line::default());
    lines.push(hints_line(state, theme, Layer::Outbox, hint_width));
    (title, Role::BorderFocused, lines, None)
}
