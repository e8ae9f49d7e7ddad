//! The support credentials dialogs: choose duration and scopes, see them once, or decide about
//! credentials that are already active.

use ratatui::text::{Line, Span};

use super::{hard_wrap, hints_line, spinner, word_wrap};
use crate::console::keymap::Layer;
use crate::console::state::{CredentialsChoice, CredentialsDialog, CredentialsStage, State};
use crate::console::theme::{Role, Theme};
use crate::console::update::hours_label;
use crate::protocol::CredentialTarget;
use crate::protocol::credentials::expires_in;

const LABEL: usize = 15;

/// Title, border role and lines of the dialog.
pub(super) fn dialog(
    state: &State,
    theme: &Theme,
    width: usize,
    dialog: &CredentialsDialog,
) -> (Span<'static>, Role, Vec<Line<'static>>) {
    let hints = |layer| {
        hints_line(
            state,
            theme,
            layer,
            u16::try_from(width).unwrap_or(u16::MAX),
        )
    };
    let target = match &dialog.target {
        CredentialTarget::Workstation { .. } => dialog.target_label.clone(),
        CredentialTarget::Client { .. } => {
            format!("all workstations of {}", dialog.target_label)
        }
    };
    match &dialog.stage {
        CredentialsStage::Choose(choice) => {
            let mut lines = prose(
                &format!(
                    "For someone without an account: they log in as a guest and see only {target}."
                ),
                width,
                theme.style(Role::Text),
            );
            lines.push(Line::default());
            lines.extend(choice_lines(state, theme, choice));
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsForm));
            (
                Span::styled(
                    format!(" Support credentials · {} ", dialog.target_label),
                    theme.style(Role::Title),
                ),
                Role::BorderFocused,
                lines,
            )
        }
        CredentialsStage::Waiting { what } => {
            let lines = vec![
                Line::styled(
                    format!("{} {what}", spinner(state)),
                    theme.style(Role::Accent),
                ),
                Line::default(),
                hints(Layer::CredentialsForm),
            ];
            (
                Span::styled(
                    format!(" Support credentials · {} ", dialog.target_label),
                    theme.style(Role::Title),
                ),
                Role::BorderFocused,
                lines,
            )
        }
        CredentialsStage::Revealed { credential, reveal } => {
            let mut lines = prose(
                &format!(
                    "Give these to the person you help with {target}. They are shown only now: \
                     the hub keeps only hashes, and nothing can show them again."
                ),
                width,
                theme.style(Role::Warning),
            );
            lines.push(Line::default());
            let until = format!(
                "{} (in {})",
                reveal.expires_at.format("%Y-%m-%d %H:%M UTC"),
                expires_in(state.now, reveal.expires_at)
            );
            let rows = [
                ("Hub", reveal.hub.clone(), Role::Accent),
                ("User name", reveal.user.clone(), Role::Accent),
                (
                    "Password",
                    reveal.password.expose().to_owned(),
                    Role::Accent,
                ),
                (
                    "Security code",
                    reveal.code.expose().to_owned(),
                    Role::Accent,
                ),
                ("Expires", until, Role::Text),
                ("Scopes", credential.scopes.label(), Role::Text),
                ("Certificate", reveal.fingerprint.clone(), Role::Muted),
            ];
            for (label, value, role) in rows {
                field(theme, width, label, &value, role, &mut lines);
            }
            lines.push(Line::default());
            lines.extend(prose(
                "They log in with tether console (Ctrl-G on the login form) or tether login --guest.",
                width,
                theme.style(Role::Muted),
            ));
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsReveal));
            (
                Span::styled(
                    format!(
                        " Support credentials · {} · shown once ",
                        dialog.target_label
                    ),
                    theme.style(Role::Warning),
                ),
                Role::Warning,
                lines,
            )
        }
        CredentialsStage::AlreadyActive {
            credential,
            message,
        } => {
            let mut lines = prose(&format!("{message}."), width, theme.style(Role::Text));
            lines.push(Line::default());
            field(
                theme,
                width,
                "Guest",
                &credential.user,
                Role::Accent,
                &mut lines,
            );
            field(
                theme,
                width,
                "Scopes",
                &credential.scopes.label(),
                Role::Text,
                &mut lines,
            );
            lines.push(Line::default());
            lines.extend(prose(
                "Revoke them (their guests are disconnected at once), regenerate them (revoke, \
                 then issue new ones), or keep them.",
                width,
                theme.style(Role::Muted),
            ));
            lines.push(Line::default());
            lines.push(hints(Layer::CredentialsActive));
            (
                Span::styled(
                    " Support credentials already active ",
                    theme.style(Role::Warning),
                ),
                Role::Warning,
                lines,
            )
        }
    }
}

fn prose(text: &str, width: usize, style: ratatui::style::Style) -> Vec<Line<'static>> {
    word_wrap(text, width)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// `Label          value`, the value hard-wrapped under itself when long.
fn field(
    theme: &Theme,
    width: usize,
    label: &str,
    value: &str,
    role: Role,
    lines: &mut Vec<Line<'static>>,
) {
    let room = width.saturating_sub(LABEL).max(8);
    for (i, part) in hard_wrap(value, room).into_iter().enumerate() {
        let head = if i == 0 { label } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("{head:<LABEL$}"), theme.style(Role::Muted)),
            Span::styled(part, theme.style(role)),
        ]));
    }
}

fn choice_lines(state: &State, theme: &Theme, choice: &CredentialsChoice) -> Vec<Line<'static>> {
    let check = |on: bool| if on { "[x]" } else { "[ ]" };
    let until = state.now + chrono::Duration::hours(i64::from(choice.hours));
    let rows = [
        (
            "Duration",
            format!("◂ {} ▸", hours_label(choice.hours)),
            format!("  until {}", until.format("%Y-%m-%d %H:%M UTC")),
        ),
        (
            "Control",
            check(choice.scopes.control).to_owned(),
            if choice.scopes.control {
                "  keyboard and mouse".to_owned()
            } else {
                "  off: view only".to_owned()
            },
        ),
        (
            "Chat",
            check(choice.scopes.chat).to_owned(),
            "  may see chat".to_owned(),
        ),
        (
            "History",
            check(choice.scopes.history).to_owned(),
            "  may see the session history".to_owned(),
        ),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (label, value, note))| {
            let focused = i == choice.row;
            let marker = if focused { "▸ " } else { "  " };
            Line::from(vec![
                Span::styled(
                    format!("{marker}{label:<11}"),
                    theme.style(if focused { Role::Accent } else { Role::Muted }),
                ),
                Span::styled(
                    value,
                    theme.style(if focused { Role::Selected } else { Role::Text }),
                ),
                Span::styled(note, theme.style(Role::Muted)),
            ])
        })
        .collect()
}
