//! What a key can ask the console to do. Actions are data: the keymap binds keys to them, and
//! users rebind them by name in `config.toml` (`[keys]`, e.g. `quit = ["q", "ctrl-c"]`).

use serde::{Deserialize, Serialize};

/// Every action a key can be bound to. The serde name (snake_case) is the name used in
/// `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave the console (the hub connection is closed cleanly).
    Quit,
    /// Open or close the help overlay listing every binding.
    Help,
    /// Move the focus to the next pane (clients, workstations), or the next login field.
    FocusNext,
    /// Move the focus to the previous pane or login field.
    FocusPrev,
    /// Select the row above (or scroll up).
    Up,
    /// Select the row below (or scroll down).
    Down,
    /// Move a page up.
    PageUp,
    /// Move a page down.
    PageDown,
    /// Jump to the first row.
    First,
    /// Jump to the last row.
    Last,
    /// Start typing a filter for the workstations table.
    Filter,
    /// Ask for a new client's name and add it.
    AddClient,
    /// Issue and show an enrolment link for the selected client.
    ShowLink,
    /// In the enrolment link dialog: issue a new link for the client.
    IssueLink,
    /// Copy the shown value (an enrolment link) to the clipboard.
    Copy,
    /// Revoke the enrolment link shown.
    RevokeLink,
    /// Reload clients and workstations from the hub.
    Refresh,
    /// Switch to the next colour theme.
    CycleTheme,
    /// Connect to the selected workstation (asks for its passcode or password if it requires one).
    Connect,
    /// Connect to the selected workstation, view only.
    ConnectViewOnly,
    /// Ask the end user of the selected workstation for unattended access.
    RequestAccess,
    /// Withdraw unattended access to the selected workstation (asks first).
    WithdrawAccess,
    /// End a session: yours on the selected workstation, or the one selected in the sessions view.
    EndSession,
    /// Show or leave the team's open sessions.
    Sessions,
    /// Open the live terminal of your session on the selected workstation (re-attach).
    Open,
    /// In a live terminal: open the session menu. Every other key goes to the remote.
    TerminalMenu,
    /// Leave the live terminal for the list; the session stays open.
    Detach,
    /// Scroll the live terminal's history.
    ScrollBack,
    /// In a live desktop: switch between half blocks and sextants.
    SwitchGlyphs,
    /// In a live desktop: a larger picture, panned with the arrows.
    ZoomIn,
    /// In a live desktop: a smaller picture, down to the whole screen.
    ZoomOut,
    /// In a zoomed live desktop: look further left.
    PanLeft,
    /// In a zoomed live desktop: look further right.
    PanRight,
    /// In a live desktop: stop (or resume) sending keys and the mouse to the remote.
    ToggleViewOnly,
    /// In a live desktop: save the remote screen as a PNG file.
    Screenshot,
    /// In a live desktop: send Ctrl-Alt-Del to the remote.
    SendCtrlAltDel,
    /// In a live desktop: back to the whole screen (zoom 1, no pan).
    Fit,
    /// Accept: submit a form, keep a filter, close a notice.
    Confirm,
    /// Back out: close a dialog, clear the filter.
    Cancel,
    /// Answer yes to a question (trust this hub?).
    Yes,
    /// Answer no to a question.
    No,
    /// Open the user menu (Enable 2FA, audit log, users).
    UserMenu,
    /// Show or leave the users view (admins): each user's 2FA.
    Users,
    /// Show or leave the audit log.
    AuditLog,
    /// In the users view: require 2FA for the selected user, or stop requiring it.
    ToggleRequired,
    /// In the users view: require 2FA for everyone, or stop.
    ToggleGlobal,
    /// In the users view: add a user (admins).
    AddUser,
    /// In the users view: technician to admin, or back.
    ChangeRole,
    /// In the users view: disable the selected user, or enable them again.
    DisableUser,
    /// In the users view: remove the selected user for good.
    RemoveUser,
    /// Support credentials for the selected workstation, or for all of the selected client's.
    SupportCredentials,
    /// On the login form: switch between a technician's login and a guest's.
    GuestLogin,
    /// Turn the focused choice on or off.
    Toggle,
    /// The previous preset duration.
    Shorter,
    /// The next preset duration.
    Longer,
    /// One hour less.
    HourLess,
    /// One hour more.
    HourMore,
    /// Copy the hub's address.
    CopyHub,
    /// Copy the user name.
    CopyUser,
    /// Copy the password.
    CopyPassword,
    /// Copy the security code.
    CopyCode,
    /// Copy the expiry time.
    CopyExpiry,
    /// Revoke the support credentials shown.
    RevokeCredentials,
    /// Revoke the support credentials shown and issue new ones.
    RegenerateCredentials,
    /// One-time password for the selected workstation: request, resend or emergency.
    Otp,
    /// The hub's outbox: mail it kept instead of sending (admins).
    Outbox,
    /// In the one-time password dialog: request a new one.
    OtpRequest,
    /// In the one-time password dialog: send the current one again.
    OtpResend,
    /// In the one-time password dialog: emergency request, with a reason, to the admins.
    OtpEmergency,
    /// Require a one-time password for every connection to the selected workstation, or stop
    /// (admins).
    RequireOtp,
    /// In the users view: reset the selected user's 2FA (a lost phone; admins).
    ResetTwoFa,
    /// Show or leave the team's support credentials (revoke, regenerate).
    CredentialsList,
}

impl Action {
    /// The name used in `config.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::First => "first",
            Action::Last => "last",
            Action::Filter => "filter",
            Action::AddClient => "add_client",
            Action::ShowLink => "show_link",
            Action::IssueLink => "issue_link",
            Action::Copy => "copy",
            Action::RevokeLink => "revoke_link",
            Action::Refresh => "refresh",
            Action::CycleTheme => "cycle_theme",
            Action::Connect => "connect",
            Action::ConnectViewOnly => "connect_view_only",
            Action::RequestAccess => "request_access",
            Action::WithdrawAccess => "withdraw_access",
            Action::EndSession => "end_session",
            Action::Sessions => "sessions",
            Action::Open => "open",
            Action::TerminalMenu => "terminal_menu",
            Action::Detach => "detach",
            Action::ScrollBack => "scroll_back",
            Action::SwitchGlyphs => "switch_glyphs",
            Action::ZoomIn => "zoom_in",
            Action::ZoomOut => "zoom_out",
            Action::PanLeft => "pan_left",
            Action::PanRight => "pan_right",
            Action::ToggleViewOnly => "toggle_view_only",
            Action::Screenshot => "screenshot",
            Action::SendCtrlAltDel => "send_ctrl_alt_del",
            Action::Fit => "fit",
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
            Action::Yes => "yes",
            Action::No => "no",
            Action::UserMenu => "user_menu",
            Action::Users => "users",
            Action::AuditLog => "audit_log",
            Action::ToggleRequired => "toggle_required",
            Action::ToggleGlobal => "toggle_global",
            Action::AddUser => "add_user",
            Action::ChangeRole => "change_role",
            Action::DisableUser => "disable_user",
            Action::RemoveUser => "remove_user",
            Action::SupportCredentials => "support_credentials",
            Action::GuestLogin => "guest_login",
            Action::Toggle => "toggle",
            Action::Shorter => "shorter",
            Action::Longer => "longer",
            Action::HourLess => "hour_less",
            Action::HourMore => "hour_more",
            Action::CopyHub => "copy_hub",
            Action::CopyUser => "copy_user",
            Action::CopyPassword => "copy_password",
            Action::CopyCode => "copy_code",
            Action::CopyExpiry => "copy_expiry",
            Action::RevokeCredentials => "revoke_credentials",
            Action::RegenerateCredentials => "regenerate_credentials",
            Action::Otp => "otp",
            Action::Outbox => "outbox",
            Action::OtpRequest => "otp_request",
            Action::OtpResend => "otp_resend",
            Action::OtpEmergency => "otp_emergency",
            Action::RequireOtp => "require_otp",
            Action::ResetTwoFa => "reset_two_fa",
            Action::CredentialsList => "credentials_list",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_match_serde_names() {
        for action in [
            Action::Quit,
            Action::FocusNext,
            Action::ShowLink,
            Action::RevokeLink,
            Action::IssueLink,
            Action::CycleTheme,
            Action::ConnectViewOnly,
            Action::RequestAccess,
            Action::WithdrawAccess,
            Action::EndSession,
            Action::Sessions,
            Action::Open,
            Action::TerminalMenu,
            Action::Detach,
            Action::ScrollBack,
            Action::SwitchGlyphs,
            Action::ZoomIn,
            Action::ZoomOut,
            Action::PanLeft,
            Action::PanRight,
            Action::ToggleViewOnly,
            Action::Screenshot,
            Action::SendCtrlAltDel,
            Action::Fit,
            Action::SupportCredentials,
            Action::GuestLogin,
            Action::HourLess,
            Action::CopyPassword,
            Action::RegenerateCredentials,
            Action::ResetTwoFa,
            Action::CredentialsList,
            Action::AddUser,
            Action::ChangeRole,
            Action::DisableUser,
            Action::RemoveUser,
        ] {
            let json = serde_json::to_string(&action).expect("serialize");
            assert_eq!(json, format!("\"{}\"", action.name()));
        }
    }
}
