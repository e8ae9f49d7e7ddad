//! One-time passwords in the console (issue 5): the `p` dialog (request, resend, emergency),
//! the code prompt before connecting, and the admins' outbox (`O`).
//!
//! A typed code lives in its prompt only until it is sent, like a passcode; the dialog that
//! requests one never sees the code (it goes out of band).

use super::{
    ConnectAttempt, Effect, key_hint, request, secret_name, selected_or_hint, send_connect,
    sentence, set_status,
};
use crate::console::action::Action;
use crate::console::keymap::Layer;
use crate::console::state::{
    ConfirmDialog, Confirmed, Dialog, OtpDialog, OtpPrompt, OtpStep, OutboxDialog, Pane, Pending,
    SecretPrompt, State, StatusKind, TextInput,
};
use crate::protocol::{
    ClientId, ConsoleReply, ConsoleRequest, ErrorCode, OtpChannel, OtpIssued, ProtocolError, Role,
    Secret, WorkstationId, normalize_otp,
};

/// `p`: the dialog for the selected workstation.
pub(super) fn open(state: &mut State) -> Vec<Effect> {
    let Some(w) = selected_or_hint(state) else {
        return Vec::new();
    };
    if !w.otp_required {
        set_status(
            state,
            StatusKind::Info,
            format!("{} does not require a one-time password.", w.hostname),
        );
        return Vec::new();
    }
    state.dialog = Some(Dialog::Otp(OtpDialog {
        workstation: w.id,
        hostname: w.hostname,
        step: OtpStep::Choose,
        reason: None,
        outcome: None,
    }));
    Vec::new()
}

/// `P`: require a one-time password for every connection to the selected workstation, or
/// stop (admins; the hub audits it and refuses anyone else).
/// `P`: whether a workstation (or, in the clients pane, a group) requires a one-time password
/// for every connection. It changes every technician's way in, so it asks first.
pub(super) fn ask_toggle_required(state: &mut State) {
    if !is_admin(state) {
        set_status(
            state,
            StatusKind::Warning,
            "Only admins change whether a workstation requires a one-time password.",
        );
        return;
    }
    let (title, text, then) = if state.focus == Pane::Clients {
        let client = state.selected_client.clone();
        let label = match &client {
            None => "the team".to_owned(),
            Some(id) => state
                .clients
                .iter()
                .find(|c| &c.id == id)
                .map_or_else(|| id.clone(), |c| c.name.clone()),
        };
        (
            "Change the one-time password rule?".to_owned(),
            format!(
                "Turn the one-time password requirement of {label}'s group on or off (the opposite of what the hub has now)? It applies to every technician's connections."
            ),
            Confirmed::GroupOtp { client, label },
        )
    } else {
        let Some(w) = selected_or_hint(state) else {
            return;
        };
        let required = !w.otp_required;
        let name = super::display_name(state, &w);
        let text = if required {
            format!(
                "Require a one-time password for every connection to {name}? Every technician then needs one from the end user or an admin."
            )
        } else {
            format!("Stop requiring a one-time password for connections to {name}?")
        };
        (
            if required {
                "Require a one-time password?".to_owned()
            } else {
                "Stop requiring a one-time password?".to_owned()
            },
            text,
            Confirmed::RequireOtp {
                workstation: w.id,
                hostname: w.hostname,
                required,
            },
        )
    };
    state.dialog = Some(Dialog::Confirm(ConfirmDialog {
        title,
        text,
        warning: None,
        yes: "change".to_owned(),
        then,
    }));
}

/// Confirmed: require (or stop requiring) a one-time password on a workstation.
pub(super) fn set_required(
    state: &mut State,
    workstation: WorkstationId,
    hostname: String,
    required: bool,
) -> Vec<Effect> {
    vec![request(
        state,
        ConsoleRequest::SetWorkstationOtp {
            workstation,
            required,
        },
        Pending::RequireOtp { hostname, required },
    )]
}

/// Confirmed `P` in the clients pane: the selected client's group (its workstations, and those
/// it enrols later), or the team's own group on "All clients". The hub's setting is read first,
/// so the key toggles what is really set, not what the table suggests.
pub(super) fn toggle_group(
    state: &mut State,
    client: Option<ClientId>,
    label: String,
) -> Vec<Effect> {
    set_status(
        state,
        StatusKind::Info,
        format!("Reading the one-time password setting of {label}'s group…"),
    );
    vec![request(
        state,
        ConsoleRequest::ListGroups {
            page: crate::protocol::PageRequest::first(),
        },
        Pending::GroupOtp {
            client,
            label,
            required: None,
        },
    )]
}

/// The hub's answers to [`toggle_group`]: the groups (then the change is sent), or done.
pub(super) fn on_group_reply(
    state: &mut State,
    pending: Pending,
    reply: ConsoleReply,
) -> Vec<Effect> {
    let Pending::GroupOtp {
        client,
        label,
        required,
    } = pending
    else {
        return Vec::new();
    };
    match (required, reply) {
        (None, ConsoleReply::Groups { groups, .. }) => {
            let now = groups
                .iter()
                .find(|g| g.client_id == client)
                .is_some_and(|g| g.otp);
            let required = !now;
            vec![request(
                state,
                ConsoleRequest::SetGroupOtp {
                    client: client.clone(),
                    required,
                },
                Pending::GroupOtp {
                    client,
                    label,
                    required: Some(required),
                },
            )]
        }
        (Some(required), ConsoleReply::Done) => {
            let again = key_hint(state, Action::RequireOtp, "P");
            let text = if required {
                format!(
                    "Every workstation of {label}'s group now requires a one-time password for every connection ({again} again to stop)."
                )
            } else {
                format!(
                    "{label}'s group no longer requires a one-time password (workstations that require one themselves still do)."
                )
            };
            set_status(state, StatusKind::Success, text);
            Vec::new()
        }
        (_, reply) => {
            set_status(
                state,
                StatusKind::Error,
                format!(
                    "The hub answered the group's one-time password setting with {}; please report this bug.",
                    super::reply_kind(&reply)
                ),
            );
            Vec::new()
        }
    }
}

fn is_admin(state: &State) -> bool {
    state
        .session
        .as_ref()
        .and_then(|s| s.user.as_ref())
        .is_some_and(|u| u.role == Role::Admin)
}

/// `O`: the outbox (admins).
pub(super) fn open_outbox(state: &mut State) -> Vec<Effect> {
    if !is_admin(state) {
        set_status(
            state,
            StatusKind::Warning,
            "Only admins read the hub's outbox.",
        );
        return Vec::new();
    }
    state.dialog = Some(Dialog::Outbox(OutboxDialog {
        messages: None,
        scroll: 0,
        error: None,
    }));
    vec![request(
        state,
        ConsoleRequest::ListOutbox {
            limit: 100,
            page: crate::protocol::PageRequest::first(),
        },
        Pending::Outbox,
    )]
}

pub(super) fn on_action(state: &mut State, layer: Layer, action: Action) -> Vec<Effect> {
    match layer {
        Layer::Otp => on_dialog_action(state, action),
        Layer::OtpReason => on_reason_action(state, action),
        Layer::OtpPrompt => on_prompt_action(state, action),
        Layer::Outbox => on_outbox_action(state, action),
        _ => Vec::new(),
    }
}

fn on_dialog_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Otp(d)) = &mut state.dialog else {
        return Vec::new();
    };
    if action == Action::Cancel {
        state.dialog = None;
        return Vec::new();
    }
    if d.step == OtpStep::Sending {
        return Vec::new();
    }
    let (workstation, hostname) = (d.workstation.clone(), d.hostname.clone());
    let body = match action {
        Action::OtpRequest => ConsoleRequest::RequestOtp {
            workstation: workstation.clone(),
            emergency: None,
        },
        Action::OtpResend => ConsoleRequest::ResendOtp {
            workstation: workstation.clone(),
        },
        Action::OtpEmergency => {
            d.reason = Some(TextInput::default());
            d.outcome = None;
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    d.step = OtpStep::Sending;
    d.outcome = None;
    vec![request(
        state,
        body,
        Pending::Otp {
            workstation,
            hostname,
        },
    )]
}

fn on_reason_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Otp(d)) = &mut state.dialog else {
        return Vec::new();
    };
    match action {
        Action::Cancel => {
            d.reason = None;
            d.outcome = None;
        }
        Action::Confirm => {
            let reason = d
                .reason
                .as_ref()
                .map(|r| r.value.trim().to_owned())
                .unwrap_or_default();
            if reason.is_empty() {
                d.outcome = Some((
                    "Say why you need access now: the admins read it.".into(),
                    true,
                ));
                return Vec::new();
            }
            d.reason = None;
            d.step = OtpStep::Sending;
            d.outcome = None;
            let (workstation, hostname) = (d.workstation.clone(), d.hostname.clone());
            return vec![request(
                state,
                ConsoleRequest::RequestOtp {
                    workstation: workstation.clone(),
                    emergency: Some(reason),
                },
                Pending::Otp {
                    workstation,
                    hostname,
                },
            )];
        }
        _ => {}
    }
    Vec::new()
}

/// Where a code went, in a sentence.
pub fn delivery_text(otp: &OtpIssued) -> String {
    let whom = if otp.delivery.to.is_empty() {
        "nobody with an e-mail address".to_owned()
    } else {
        otp.delivery.to.join(", ")
    };
    let what = match (otp.resent, otp.emergency) {
        (true, _) => "Sent again",
        (false, true) => "Emergency request sent",
        (false, false) => "Requested",
    };
    let how = match otp.delivery.channel {
        OtpChannel::Email => format!("e-mailed to {whom}"),
        OtpChannel::Outbox => {
            format!("in the hub's outbox for {whom}: an admin passes it on")
        }
    };
    let until = otp.expires_at.format("%H:%M UTC");
    format!("{what}: {how}. Valid once, until {until}.")
}

fn on_outbox_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::Outbox(d)) = &mut state.dialog else {
        return Vec::new();
    };
    match action {
        Action::Cancel => state.dialog = None,
        Action::Up => d.scroll = d.scroll.saturating_sub(1),
        Action::Down => d.scroll = d.scroll.saturating_add(1),
        Action::Refresh => {
            d.messages = None;
            d.error = None;
            return vec![request(
                state,
                ConsoleRequest::ListOutbox {
                    limit: 100,
                    page: crate::protocol::PageRequest::first(),
                },
                Pending::Outbox,
            )];
        }
        _ => {}
    }
    Vec::new()
}

/// The next step of a connection: ask for what is still missing (the code, the workstation's
/// secret), else send.
pub(super) fn connect_step(
    state: &mut State,
    attempt: ConnectAttempt,
    secret: Option<Secret>,
    otp: Option<Secret>,
) -> Vec<Effect> {
    let otp_required = state
        .workstations
        .get(&attempt.workstation)
        .is_some_and(|w| w.otp_required);
    if otp_required && otp.is_none() {
        state.dialog = Some(Dialog::OtpPrompt(OtpPrompt {
            workstation: attempt.workstation,
            hostname: attempt.hostname,
            requires: attempt.requires,
            view_only: attempt.view_only,
            attended: attempt.attended,
            input: TextInput::default(),
            error: None,
            secret,
        }));
        return Vec::new();
    }
    if attempt.requires.any() && secret.is_none() {
        state.dialog = Some(Dialog::Secret(SecretPrompt {
            workstation: attempt.workstation,
            hostname: attempt.hostname,
            requires: attempt.requires,
            view_only: attempt.view_only,
            attended: attempt.attended,
            input: TextInput::default(),
            error: None,
            otp,
        }));
        return Vec::new();
    }
    send_connect(state, attempt, secret, otp)
}

fn on_prompt_action(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(Dialog::OtpPrompt(prompt)) = &mut state.dialog else {
        return Vec::new();
    };
    match action {
        // Dropping the prompt drops what was typed.
        Action::Cancel => state.dialog = None,
        Action::Confirm => {
            if let Err(problem) = normalize_otp(&prompt.input.value) {
                let request = key_hint(state, Action::Otp, "p");
                let Some(Dialog::OtpPrompt(prompt)) = &mut state.dialog else {
                    return Vec::new();
                };
                prompt.error = Some(if prompt.input.value.is_empty() {
                    format!("Type the code first. No code yet? Esc, then {request} to request one.")
                } else {
                    format!("{}.", sentence(&problem).trim_end_matches('.'))
                });
                return Vec::new();
            }
            let Some(Dialog::OtpPrompt(prompt)) = state.dialog.take() else {
                return Vec::new();
            };
            let attempt = ConnectAttempt {
                workstation: prompt.workstation,
                hostname: prompt.hostname,
                requires: prompt.requires,
                view_only: prompt.view_only,
                attended: prompt.attended,
            };
            let otp = Secret::from(prompt.input.value);
            return connect_step(state, attempt, prompt.secret, Some(otp));
        }
        _ => {}
    }
    Vec::new()
}

/// The hub refused a connection for the code: ask for it (again), saying why.
pub(super) fn on_refused(
    state: &mut State,
    attempt: ConnectAttempt,
    error: &ProtocolError,
    missing: bool,
) {
    let request = key_hint(state, Action::Otp, "p");
    let why = if missing {
        format!(
            "{} requires a one-time password. No code yet? Esc, then {request} to request one.",
            attempt.hostname
        )
    } else {
        format!("{} ", sentence(&error.message))
            .trim_end()
            .to_owned()
    };
    set_status(
        state,
        StatusKind::Error,
        format!(
            "{} refused the connection: {}",
            attempt.hostname,
            sentence(&error.message)
        ),
    );
    state.dialog = Some(Dialog::OtpPrompt(OtpPrompt {
        workstation: attempt.workstation,
        hostname: attempt.hostname,
        requires: attempt.requires,
        view_only: attempt.view_only,
        attended: attempt.attended,
        input: TextInput::default(),
        error: Some(why),
        secret: None,
    }));
}

pub(super) fn on_reply(state: &mut State, pending: Pending, reply: ConsoleReply) {
    match (pending, reply) {
        (Pending::Otp { workstation, .. }, ConsoleReply::Otp { otp }) => {
            let text = delivery_text(&otp);
            let failed = otp.delivery.error.clone();
            if let Some(Dialog::Otp(d)) = &mut state.dialog
                && d.workstation == workstation
            {
                d.step = OtpStep::Done;
                d.outcome = Some(match &failed {
                    Some(e) => (format!("The e-mail failed: {e}. {text}"), true),
                    None => (text.clone(), false),
                });
            }
            match failed {
                Some(e) => set_status(
                    state,
                    StatusKind::Error,
                    format!(
                        "One-time password for {}: the e-mail failed: {e}",
                        otp.hostname
                    ),
                ),
                None => set_status(
                    state,
                    StatusKind::Success,
                    format!("One-time password for {}: {text}", otp.hostname),
                ),
            }
        }
        (Pending::RequireOtp { hostname, required }, ConsoleReply::Workstation { workstation }) => {
            state.workstations.update(&workstation.id, |w| {
                w.otp_required = workstation.otp_required;
            });
            let text = match (required, workstation.otp_required) {
                (true, _) => {
                    format!("{hostname} now requires a one-time password for every connection.")
                }
                (false, true) => format!(
                    "{hostname} no longer requires one itself, but its group still does (tether ctl groups require-otp)."
                ),
                (false, false) => {
                    format!("{hostname} no longer requires a one-time password.")
                }
            };
            set_status(state, StatusKind::Success, text);
        }
        (Pending::Outbox, ConsoleReply::Outbox { messages, .. }) => {
            if let Some(Dialog::Outbox(d)) = &mut state.dialog {
                d.messages = Some(messages);
                d.error = None;
            }
        }
        (pending, reply) => set_status(
            state,
            StatusKind::Error,
            format!(
                "The hub answered {pending:?} with {}; please report this bug.",
                super::reply_kind(&reply)
            ),
        ),
    }
}

pub(super) fn on_failed(state: &mut State, pending: Pending, error: &ProtocolError) {
    match pending {
        Pending::Otp {
            workstation,
            hostname,
        } => {
            let mut text = sentence(&error.message);
            if error.code == ErrorCode::RateLimited {
                text.push_str(" In an emergency, e asks the admins.");
            }
            if let Some(Dialog::Otp(d)) = &mut state.dialog
                && d.workstation == workstation
            {
                d.step = OtpStep::Done;
                d.outcome = Some((text, true));
            } else {
                set_status(
                    state,
                    StatusKind::Error,
                    format!("One-time password for {hostname}: {text}"),
                );
            }
        }
        Pending::Outbox => {
            if let Some(Dialog::Outbox(d)) = &mut state.dialog {
                d.messages = Some(Vec::new());
                d.error = Some(sentence(&error.message));
            }
        }
        Pending::GroupOtp { label, .. } => set_status(
            state,
            StatusKind::Error,
            format!(
                "{label}'s group: the one-time password setting did not change: {}",
                sentence(&error.message)
            ),
        ),
        Pending::RequireOtp { hostname, .. } => set_status(
            state,
            StatusKind::Error,
            format!(
                "{hostname}: the one-time password setting did not change: {}",
                sentence(&error.message)
            ),
        ),
        _ => {}
    }
}

/// "temporary passcode" etc., re-exported for the prompt's text.
pub fn also_needs(prompt: &OtpPrompt) -> Option<&'static str> {
    prompt
        .requires
        .any()
        .then(|| secret_name(prompt.requires))
        .filter(|_| prompt.secret.is_none())
}
