//! What a key can ask the console to do. Actions are data: the keymap binds keys to them, and
//! users rebind them by name in `config.toml` (`[keys]`, e.g. `quit = ["q", "ctrl-c"]`).

use serde::{Deserialize, Serialize};

/// Every action a key can be bound to, with its name in the keymap file and `config.toml`
/// (its serde name). The list of actions is made from this one table.
macro_rules! actions {
    ($($(#[doc = $doc:literal])* $action:ident = $name:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Action {
            $($(#[doc = $doc])* #[serde(rename = $name)] $action,)*
        }

        impl Action {
            /// Every action, in the order they are declared.
            pub const ALL: [Action; [$($name),*].len()] = [$(Action::$action),*];

            /// The name used in the keymap file and `config.toml`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$action => $name,)*
                }
            }
        }
    };
}

actions! {
    /// Leave the console (the hub connection is closed cleanly).
    Quit = "quit";
    /// Open or close the help overlay listing every binding.
    Help = "help";
    /// Move the focus to the next pane (clients, workstations), or the next login field.
    FocusNext = "focus_next";
    /// Move the focus to the previous pane or login field.
    FocusPrev = "focus_prev";
    /// Select the row above (or scroll up).
    Up = "up";
    /// Select the row below (or scroll down).
    Down = "down";
    /// Move a page up.
    PageUp = "page_up";
    /// Move a page down.
    PageDown = "page_down";
    /// Jump to the first row.
    First = "first";
    /// Jump to the last row.
    Last = "last";
    /// Start typing a filter for the workstations table.
    Filter = "filter";
    /// Ask for a new client's name and add it.
    AddClient = "add_client";
    /// Issue and show an enrolment link for the selected client.
    ShowLink = "show_link";
    /// In the enrolment link dialog: issue a new link for the client.
    IssueLink = "issue_link";
    /// Copy the shown value (an enrolment link) to the clipboard.
    Copy = "copy";
    /// Revoke the enrolment link shown.
    RevokeLink = "revoke_link";
    /// Reload clients and workstations from the hub.
    Refresh = "refresh";
    /// Switch to the next colour theme.
    CycleTheme = "cycle_theme";
    /// Connect to the selected workstation (asks for its passcode or password if it requires one).
    Connect = "connect";
    /// Connect to the selected workstation, view only.
    ConnectViewOnly = "connect_view_only";
    /// Ask the end user of the selected workstation for unattended access.
    RequestAccess = "request_access";
    /// Withdraw unattended access to the selected workstation (asks first).
    WithdrawAccess = "withdraw_access";
    /// End a session: yours on the selected workstation, or the one selected in the sessions view.
    EndSession = "end_session";
    /// Show or leave the team's open sessions.
    Sessions = "sessions";
    /// Open the live terminal of your session on the selected workstation (re-attach).
    Open = "open";
    /// In a live terminal: open the session menu. Every other key goes to the remote.
    TerminalMenu = "terminal_menu";
    /// Leave the live terminal for the list; the session stays open.
    Detach = "detach";
    /// Scroll the live terminal's history.
    ScrollBack = "scroll_back";
    /// In a live desktop: switch between half blocks and sextants.
    SwitchGlyphs = "switch_glyphs";
    /// In a live desktop: a larger picture, panned with the arrows.
    ZoomIn = "zoom_in";
    /// In a live desktop: a smaller picture, down to the whole screen.
    ZoomOut = "zoom_out";
    /// In a zoomed live desktop: look further left.
    PanLeft = "pan_left";
    /// In a zoomed live desktop: look further right.
    PanRight = "pan_right";
    /// In a live desktop: stop (or resume) sending keys and the mouse to the remote.
    ToggleViewOnly = "toggle_view_only";
    /// In a live desktop: save the remote screen as a PNG file.
    Screenshot = "screenshot";
    /// In a live desktop: send Ctrl-Alt-Del to the remote.
    SendCtrlAltDel = "send_ctrl_alt_del";
    /// In a live desktop: back to the whole screen (zoom 1, no pan).
    Fit = "fit";
    /// Accept: submit a form, keep a filter, close a notice.
    Confirm = "confirm";
    /// Back out: close a dialog, clear the filter.
    Cancel = "cancel";
    /// Answer yes to a question (trust this hub?).
    Yes = "yes";
    /// Answer no to a question.
    No = "no";
    /// Open the user menu (Enable 2FA, audit log, users).
    UserMenu = "user_menu";
    /// Show or leave the users view (admins): each user's 2FA.
    Users = "users";
    /// Show or leave the audit log.
    AuditLog = "audit_log";
    /// In the users view: require 2FA for the selected user, or stop requiring it.
    ToggleRequired = "toggle_required";
    /// In the users view: require 2FA for everyone, or stop.
    ToggleGlobal = "toggle_global";
    /// In the users view: add a user (admins).
    AddUser = "add_user";
    /// In the users view: technician to admin, or back.
    ChangeRole = "change_role";
    /// In the users view: disable the selected user, or enable them again.
    DisableUser = "disable_user";
    /// In the users view: remove the selected user for good.
    RemoveUser = "remove_user";
    /// Support credentials for the selected workstation, or for all of the selected client's.
    SupportCredentials = "support_credentials";
    /// On the login form: switch between a technician's login and a guest's.
    GuestLogin = "guest_login";
    /// Turn the focused choice on or off.
    Toggle = "toggle";
    /// The previous preset duration.
    Shorter = "shorter";
    /// The next preset duration.
    Longer = "longer";
    /// One hour less.
    HourLess = "hour_less";
    /// One hour more.
    HourMore = "hour_more";
    /// Copy the hub's address.
    CopyHub = "copy_hub";
    /// Copy the user name.
    CopyUser = "copy_user";
    /// Copy the password.
    CopyPassword = "copy_password";
    /// Copy the security code.
    CopyCode = "copy_code";
    /// Copy the expiry time.
    CopyExpiry = "copy_expiry";
    /// Revoke the support credentials shown.
    RevokeCredentials = "revoke_credentials";
    /// Revoke the support credentials shown and issue new ones.
    RegenerateCredentials = "regenerate_credentials";
    /// One-time password for the selected workstation: request, resend or emergency.
    Otp = "otp";
    /// The hub's outbox: mail it kept instead of sending (admins).
    Outbox = "outbox";
    /// In the one-time password dialog: request a new one.
    OtpRequest = "otp_request";
    /// In the one-time password dialog: send the current one again.
    OtpResend = "otp_resend";
    /// In the one-time password dialog: emergency request, with a reason, to the admins.
    OtpEmergency = "otp_emergency";
    /// Require a one-time password for every connection to the selected workstation, or stop
    /// (admins).
    RequireOtp = "require_otp";
    /// In the users view: reset the selected user's 2FA (a lost phone; admins).
    ResetTwoFa = "reset_two_fa";
    /// Show or leave the team's support credentials (revoke, regenerate).
    CredentialsList = "credentials_list";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_match_serde_names() {
        for action in Action::ALL {
            let json = serde_json::to_string(&action).expect("serialize");
            assert_eq!(json, format!("\"{}\"", action.name()));
        }
    }
}
