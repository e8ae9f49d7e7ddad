//! Everything the console knows, in one plain struct: `update` changes it, `ui::draw` paints it.
//! No I/O handles live here, so tests build it from messages alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::desktop::DesktopView;
use super::fleet::Visible;
use super::keymap::{Keymap, Layer};
use super::terminal_view::TerminalView;
use crate::protocol::{
    ClientId, ClientInfo, LinkId, LinkInfo, Presence, RequestId, SecretRequirements, SessionId,
    SessionInfo, StreamId, UnattendedState, UserInfo, WorkstationId, WorkstationInfo,
};
use crate::render::{CellSize, ColorDepth, RenderMode};

/// The whole screen's state. (Not `Clone`: a live terminal's screen model is not.)
#[derive(Debug)]
pub struct State {
    /// The injected clock: set by `Msg::Tick`, read by draw for "last seen" ages.
    pub now: DateTime<Utc>,
    pub keymap: Keymap,
    /// Colours for pictures drawn as text (a live desktop); set by the app from the
    /// environment.
    pub color_depth: ColorDepth,
    /// The render modes this terminal supports for a live desktop, the one to start with
    /// first (set by the app from the capability detection and `--render`).
    pub render_modes: Vec<RenderMode>,
    /// Why pictures are drawn as text although graphics were possible (tmux would not pass
    /// them): said in the viewer's status line when a desktop opens.
    pub render_note: Option<String>,
    /// Pixels per terminal cell, as the terminal said (graphics modes size pictures by it).
    pub cell: CellSize,
    pub theme_names: Vec<String>,
    /// Index into `theme_names`.
    pub theme: usize,
    pub screen: Screen,
    pub login: LoginForm,
    /// The hub we log in to (or are logged in to), once chosen.
    pub session: Option<Session>,
    pub connection: Connection,
    /// Sorted by name.
    pub clients: Vec<ClientInfo>,
    /// Indexed, sorted and counted as it changes (a desk may have 100k).
    pub workstations: super::fleet::Fleet,
    /// `None` is "All clients".
    pub selected_client: Option<ClientId>,
    pub selected_workstation: Option<WorkstationId>,
    /// First visible row of the workstations table; kept so the view only scrolls when the
    /// selection would leave it.
    pub table_offset: usize,
    pub focus: Pane,
    /// What the body shows: workstations (with the clients pane) or the team's sessions.
    pub view: View,
    /// The team's open sessions, newest first.
    pub sessions: Vec<SessionInfo>,
    /// More pages of the workstation list are on their way: the hub's total, where it gave
    /// one (the pane shows "loaded of total" meanwhile).
    pub workstations_loading: Option<Option<u64>>,
    pub selected_session: Option<SessionId>,
    /// Sessions this console asked to end, so their end reads as expected, not as news.
    pub ending: Vec<SessionId>,
    /// The live terminal, full screen, while it is open.
    pub viewer: Option<Viewer>,
    /// Screens of sessions the technician went back to the list from, shown again (and kept
    /// up to date from then on) when they open them again. Dropped when the session ends.
    pub screens: BTreeMap<SessionId, TerminalView>,
    /// Lock-outs after repeated wrong secrets: until when, per workstation.
    pub lockouts: BTreeMap<WorkstationId, DateTime<Utc>>,
    pub filter: TextInput,
    /// The filter field has the keyboard.
    pub filtering: bool,
    pub dialog: Option<Dialog>,
    pub status: Option<Status>,
    /// Requests sent and not yet answered, by id.
    pub pending: BTreeMap<RequestId, Pending>,
    pub next_request_id: RequestId,
    /// Terminal size in cells, from `Msg::Resize`.
    pub size: (u16, u16),
    pub quitting: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
    /// 2FA, the users view and the audit view (issue 5).
    pub twofa: super::update::twofa::TwoFaState,
    /// Logged in as a guest with support credentials: what they allow.
    pub guest: Option<crate::protocol::GuestInfo>,
    /// The support credentials view (`C`).
    pub credential_list: CredentialList,
    /// Enrolment links this console issued, with their URLs, so `l` can show them again (the
    /// hub keeps only their hashes).
    pub issued_links: BTreeMap<LinkId, String>,
    /// `tether demo`: its user's random password, filled in on the login form.
    pub demo_password: Option<crate::protocol::Secret>,
    /// The hub and certificate of a login made elsewhere (the demo's): trusted for this run
    /// when the console logs in there again, never written to the known hubs.
    pub preset_pin: Option<(String, String)>,
    /// A problem found at start (a keymap file refused), shown once logged in.
    pub startup_warning: Option<String>,
}

impl State {
    pub fn new(now: DateTime<Utc>, keymap: Keymap, theme_names: Vec<String>, theme: usize) -> Self {
        Self {
            now,
            keymap,
            theme_names,
            theme,
            screen: Screen::Login,
            login: LoginForm::default(),
            session: None,
            connection: Connection::Offline,
            clients: Vec::new(),
            workstations: super::fleet::Fleet::new(),
            workstations_loading: None,
            selected_client: None,
            selected_workstation: None,
            table_offset: 0,
            focus: Pane::Workstations,
            view: View::Workstations,
            sessions: Vec::new(),
            selected_session: None,
            ending: Vec::new(),
            viewer: None,
            screens: BTreeMap::new(),
            lockouts: BTreeMap::new(),
            filter: TextInput::default(),
            filtering: false,
            dialog: None,
            status: None,
            pending: BTreeMap::new(),
            next_request_id: 1,
            size: (80, 24),
            quitting: false,
            dirty: true,
            color_depth: ColorDepth::TrueColor,
            render_modes: vec![
                RenderMode::HalfBlock,
                RenderMode::Quadrant,
                RenderMode::Sextant,
            ],
            render_note: None,
            cell: CellSize::DEFAULT,
            twofa: super::update::twofa::TwoFaState::default(),
            guest: None,
            credential_list: CredentialList::default(),
            issued_links: BTreeMap::new(),
            demo_password: None,
            startup_warning: None,
            preset_pin: None,
        }
    }

    /// Who has the keyboard now.
    pub fn layer(&self) -> Layer {
        match (&self.dialog, self.screen) {
            (Some(Dialog::Help { .. }), _) => Layer::Help,
            (Some(Dialog::Trust { .. }), _) => Layer::Trust,
            (Some(Dialog::Mismatch { .. }), _) => Layer::Mismatch,
            (Some(Dialog::AddClient { .. }), _) => Layer::Input,
            (Some(Dialog::Link(_)), _) => Layer::Link,
            (Some(Dialog::Secret(_)), _) => Layer::Secret,
            (Some(Dialog::Connecting(_)), _) => Layer::Connecting,
            (Some(Dialog::Confirm(_)), _) => Layer::Confirm,
            (Some(Dialog::UserMenu { .. }), _) => Layer::UserMenu,
            (Some(Dialog::TwoFactorOffer), _) => Layer::TwoFactorOffer,
            (Some(Dialog::Enrol(_)), _) => Layer::Enrol,
            (Some(Dialog::AdminPassword(_)), _) => Layer::AdminPassword,
            (Some(Dialog::Credentials(dialog)), _) => dialog.layer(),
            (Some(Dialog::Otp(d)), _) if d.reason.is_some() => Layer::OtpReason,
            (Some(Dialog::Otp(_)), _) => Layer::Otp,
            (Some(Dialog::OtpPrompt(_)), _) => Layer::OtpPrompt,
            (Some(Dialog::Outbox(_)), _) => Layer::Outbox,
            (Some(Dialog::Users(d)), _) => d.layer(),
            (None, Screen::Login) => Layer::Login,
            // An ended session's viewer stays until dismissed: what was typed for the remote
            // must not run the list's commands.
            (None, Screen::Main) if self.viewer.as_ref().is_some_and(|v| v.ended.is_some()) => {
                Layer::SessionEnded
            }
            (None, Screen::Main) if self.viewer.as_ref().is_some_and(|v| v.desktop.is_some()) => {
                match self.viewer.as_ref().map(|v| v.mode) {
                    Some(ViewerMode::Menu) => Layer::DesktopMenu,
                    _ => Layer::Desktop,
                }
            }
            (None, Screen::Main) if self.viewer.is_some() => {
                match self.viewer.as_ref().map(|v| v.mode) {
                    Some(ViewerMode::Menu) => Layer::TerminalMenu,
                    Some(ViewerMode::Scroll) => Layer::TerminalScroll,
                    _ => Layer::Terminal,
                }
            }
            (None, Screen::Main) if self.view == View::Sessions => Layer::Sessions,
            (None, Screen::Main) if self.view == View::Users => Layer::Users,
            (None, Screen::Main) if self.view == View::Audit && self.twofa.audit.editing => {
                Layer::AuditFilter
            }
            (None, Screen::Main) if self.view == View::Audit => Layer::Audit,
            (None, Screen::Main) if self.view == View::Credentials => Layer::CredentialsList,
            (None, Screen::Main) if self.filtering => Layer::Filter,
            (None, Screen::Main) => Layer::Main,
        }
    }

    pub fn theme_name(&self) -> &str {
        self.theme_names
            .get(self.theme)
            .map_or("dark", String::as_str)
    }

    /// The clients pane: "All clients" first, then each client, with online/total counts.
    pub fn client_rows(&self) -> Vec<ClientRow> {
        let counts = self.workstations.counts(None);
        let mut rows = vec![ClientRow {
            id: None,
            name: "All clients".to_owned(),
            online: counts.online,
            total: counts.total,
        }];
        rows.extend(self.clients.iter().map(|c| {
            let counts = self.workstations.counts(Some(&c.id));
            ClientRow {
                id: Some(c.id.clone()),
                name: c.name.clone(),
                online: counts.online,
                total: counts.total,
            }
        }));
        rows
    }

    /// The workstations table's rows: the selected client's, matching the filter, sorted by
    /// client then hostname (kept by the fleet as it changes, not sorted here).
    pub fn visible_workstations(&self) -> Visible<'_> {
        self.workstations
            .view(self.selected_client.as_ref(), &self.filter.value)
    }

    /// Index of the selected row among `visible_workstations`.
    pub fn selected_row(&self, rows: &Visible<'_>) -> Option<usize> {
        let id = self.selected_workstation.as_ref()?;
        rows.position(id)
    }

    /// The workstation selected in the table, if it is visible.
    pub fn selected(&self) -> Option<&WorkstationInfo> {
        let id = self.selected_workstation.as_ref()?;
        let rows = self.visible_workstations();
        rows.position(id).and_then(|row| rows.get(row))
    }

    /// The logged-in technician's name.
    pub fn me(&self) -> Option<&str> {
        self.session
            .as_ref()
            .and_then(|s| s.user.as_ref())
            .map(|u| u.name.as_str())
    }

    /// Whether a session is this technician's.
    pub fn is_mine(&self, session: &SessionInfo) -> bool {
        self.me().is_some_and(|me| session.technician.name == me)
    }

    /// This technician's newest open session on a workstation.
    pub fn my_session_on(&self, workstation: &WorkstationId) -> Option<&SessionInfo> {
        self.sessions
            .iter()
            .filter(|s| &s.workstation_id == workstation && self.is_mine(s))
            .max_by_key(|s| s.started_at)
    }

    /// Index of the selected session in `sessions`.
    pub fn selected_session_row(&self) -> Option<usize> {
        let id = self.selected_session.as_ref()?;
        self.sessions.iter().position(|s| &s.id == id)
    }

    /// Whether a main-screen action can do something for the selected row now; the footer
    /// shows only those, so its hints fit and never promise what a key won't do.
    pub fn can(&self, action: super::action::Action) -> bool {
        use super::action::Action as A;
        let selected = self.selected();
        match action {
            // A guest's support credentials allow none of a technician's verbs.
            A::RequestAccess
            | A::WithdrawAccess
            | A::AddClient
            | A::ShowLink
            | A::SupportCredentials
            | A::CredentialsList
                if self.guest.is_some() =>
            {
                false
            }
            A::Connect | A::ConnectViewOnly => {
                selected.is_some_and(|w| w.presence != Presence::Offline)
            }
            A::RequestAccess => selected
                .is_some_and(|w| w.presence != Presence::Offline && w.unattended.can_request()),
            A::WithdrawAccess => selected.is_some_and(|w| {
                matches!(
                    w.unattended,
                    UnattendedState::Granted | UnattendedState::Requested
                )
            }),
            A::EndSession | A::Open => {
                selected.is_some_and(|w| self.my_session_on(&w.id).is_some())
            }
            _ => true,
        }
    }

    /// Whether the session selected in the sessions view can be opened here (it is yours).
    pub fn can_open_selected_session(&self) -> bool {
        self.selected_session_row()
            .and_then(|i| self.sessions.get(i))
            .is_some_and(|s| self.is_mine(s))
    }

    /// Index of the selected client among `client_rows`.
    pub fn selected_client_row(&self) -> usize {
        match &self.selected_client {
            None => 0,
            Some(id) => self
                .clients
                .iter()
                .position(|c| &c.id == id)
                .map_or(0, |i| i + 1),
        }
    }

    /// Rows of the workstations table that fit on screen (for page up/down).
    pub fn page_rows(&self) -> usize {
        // header, status, footer, two borders and the column headings
        usize::from(self.size.1.saturating_sub(6)).max(1)
    }

    /// How far the help can scroll: its lines less what fits (the overlay leaves a row above and
    /// below, plus its border).
    pub fn help_max_scroll(&self) -> u16 {
        u16::try_from(crate::console::ui::help_line_count(self, self.size.0))
            .unwrap_or(u16::MAX)
            .saturating_sub(self.size.1.saturating_sub(4))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Main,
}

/// What the main screen's body shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Workstations,
    Sessions,
    /// Users and their 2FA (admins).
    Users,
    /// The audit log, filtered.
    Audit,
    /// The team's support credentials.
    Credentials,
}

/// The support credentials view: the team's credentials as the hub lists them (active ones,
/// and those ended in the last 7 days), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialList {
    pub items: Vec<crate::protocol::CredentialInfo>,
    pub selected: usize,
    /// A `ListCredentials` is on its way.
    pub loading: bool,
    /// The last load failed: why.
    pub error: Option<String>,
}

impl CredentialList {
    pub fn selected(&self) -> Option<&crate::protocol::CredentialInfo> {
        self.items.get(self.selected)
    }
}

/// A live terminal session shown full screen: the remote shell over all rows but the last,
/// which is its status bar.
#[derive(Debug)]
pub struct Viewer {
    /// The session as the hub last described it (hostname, technician, method, view only).
    pub session: SessionInfo,
    /// The hub's stream id, once `Watching` arrived; `None` while asking and after the link
    /// to the hub dropped (the hub ends a console's streams with its connection).
    pub stream: Option<StreamId>,
    /// The size last asked for with `Watch` (cols, rows).
    pub watched: Option<(u16, u16)>,
    /// The link to the hub dropped since the stream was opened (so a refused `Watch` means
    /// the session ended meanwhile).
    pub link_dropped: bool,
    /// The remote screen.
    pub term: TerminalView,
    pub mode: ViewerMode,
    /// Sequence number of the last keystroke frame sent.
    pub input_seq: u64,
    /// Keys typed before the stream was known, sent as soon as it is.
    pub unsent: Vec<u8>,
    /// Output frames that arrived before the `Watching` reply named their stream (frames and
    /// replies travel separately); kept until it does. At most the agent's window.
    pub early: Vec<(StreamId, u64, Vec<u8>)>,
    /// Bytes of output received since the last tick, and in the last full second.
    pub bytes_this_second: u64,
    pub bytes_per_second: u64,
    /// A remote desktop instead of a terminal (the workstation has a screen).
    pub desktop: Option<DesktopView>,
    /// The technician chose view only here: no key or pointer event leaves the console (the
    /// session itself may still allow control).
    pub view_only: bool,
    /// A note for the status line (screenshot saved, Ctrl-Alt-Del sent), with when it was
    /// set: shown for a few seconds in place of the rates.
    pub notice: Option<(StatusKind, String, DateTime<Utc>)>,
    /// The workstation ended the stream (its screen would not start, or stopped): its notice
    /// stays in the status line until a new stream starts.
    pub stopped: bool,
    /// The session ended, and why: the last screen stays, every key but the dismiss keys is
    /// swallowed, so typing meant for the remote never runs a command here.
    pub ended: Option<String>,
}

/// What the live terminal's keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerMode {
    /// Keys go to the remote.
    Live,
    /// The menu is open (back to the list, end the session, scroll back).
    Menu,
    /// Scrolling the history.
    Scroll,
}

impl Viewer {
    pub fn new(session: SessionInfo, term: TerminalView) -> Self {
        Self {
            session,
            stream: None,
            watched: None,
            link_dropped: false,
            term,
            mode: ViewerMode::Live,
            input_seq: 0,
            unsent: Vec::new(),
            early: Vec::new(),
            bytes_this_second: 0,
            bytes_per_second: 0,
            desktop: None,
            view_only: false,
            notice: None,
            stopped: false,
            ended: None,
        }
    }

    /// Nothing typed or clicked is sent: the session is view only, or the technician said so.
    pub fn input_blocked(&self) -> bool {
        self.view_only || self.session.view_only
    }
}

/// The size of the remote terminal for a console of `size` (cols, rows): all rows but the
/// status bar.
pub fn terminal_size(size: (u16, u16)) -> (u16, u16) {
    (size.0.max(1), size.1.saturating_sub(1).max(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Clients,
    Workstations,
}

/// One entry of the clients pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: Option<ClientId>,
    pub name: String,
    pub online: usize,
    pub total: usize,
}

/// The hub the console talks to and who is logged in there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `wss://host:port`.
    pub hub: String,
    /// The pinned certificate fingerprint.
    pub fingerprint: String,
    /// Set once logged in.
    pub user: Option<UserInfo>,
    /// Store the login token after a password login (not for a login made elsewhere).
    pub remember: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Offline,
    Connecting,
    Connected,
    /// The link dropped; the link task is retrying.
    Reconnecting {
        reason: String,
    },
}

/// The login form and where a login attempt is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginForm {
    pub hub: TextInput,
    pub user: TextInput,
    pub password: TextInput,
    /// The 2FA code (a technician, once the hub said one is needed) or the security code of
    /// support credentials (a guest).
    pub code: TextInput,
    /// The hub asked for a 2FA code: the form has a code field.
    pub needs_code: bool,
    pub field: LoginField,
    pub phase: LoginPhase,
    /// Why the last attempt failed, and what to do.
    pub error: Option<String>,
    /// Neutral news (a saved login was refused, a hub was not trusted).
    pub notice: Option<String>,
    /// Guest login: support credentials (user, password and security code) instead of an
    /// account.
    pub guest: bool,
}

impl LoginForm {
    /// The form has a code field: a guest's security code, or the 2FA code the hub asked for.
    pub fn has_code_field(&self) -> bool {
        self.guest || self.needs_code
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoginField {
    #[default]
    Hub,
    User,
    Password,
    /// The 2FA code (a technician, once the hub asks) or the security code (a guest).
    Code,
}

impl LoginField {
    pub fn next(self) -> Self {
        match self {
            LoginField::Hub => LoginField::User,
            LoginField::User => LoginField::Password,
            LoginField::Password => LoginField::Code,
            LoginField::Code => LoginField::Hub,
        }
    }

    pub fn prev(self) -> Self {
        match self {
            LoginField::Hub => LoginField::Code,
            LoginField::User => LoginField::Hub,
            LoginField::Password => LoginField::User,
            LoginField::Code => LoginField::Password,
        }
    }
}

/// Where a login attempt is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LoginPhase {
    /// The form is being filled in.
    #[default]
    Editing,
    /// Looking up whether the hub is already trusted.
    CheckingPin,
    /// Asked the hub for its certificate (first contact).
    Probing,
    /// Waiting for the technician to answer "trust this hub?".
    AwaitingTrust,
    /// Password login sent.
    LoggingIn,
    /// Token login sent; `fallback` says whether failure returns to the form quietly.
    Resuming { fallback: bool },
}

impl LoginPhase {
    pub fn busy(&self) -> bool {
        !matches!(self, LoginPhase::Editing)
    }
}

/// A dialog on top of the screen; it has the keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// First contact with a hub: pin this certificate?
    Trust {
        hub: String,
        fingerprint: String,
    },
    /// The hub's certificate is not the pinned one.
    Mismatch {
        hub: String,
        expected: String,
        seen: String,
    },
    AddClient {
        name: TextInput,
        error: Option<String>,
    },
    Link(LinkDialog),
    Help {
        scroll: u16,
    },
    /// Asks for the workstation's passcode or password before connecting.
    Secret(SecretPrompt),
    /// A connection is under way: the end user or the workstation has not answered yet.
    Connecting(ConnectingDialog),
    /// "Are you sure?" before an action that changes things for others or cannot be undone.
    Confirm(ConfirmDialog),
    /// The user menu (Enable 2FA, audit log, users).
    UserMenu {
        selected: usize,
    },
    /// 2FA is required but not active: "Activate now / Activate later".
    TwoFactorOffer,
    /// 2FA enrolment: the QR code, the URI and a code field.
    Enrol(super::update::twofa::EnrolDialog),
    /// An admin 2FA change asks for the admin's password again.
    AdminPassword(super::update::twofa::AdminPasswordPrompt),
    /// Support credentials: choose, see them once, or decide about active ones.
    Credentials(CredentialsDialog),
    /// One-time password for a workstation: request, resend, emergency (`p`).
    Otp(OtpDialog),
    /// Asks for the one-time password before connecting.
    OtpPrompt(OtpPrompt),
    /// The hub's outbox (admins, `O`).
    Outbox(OutboxDialog),
    /// The users view's lifecycle dialogs: add, the new user's code, confirm a change.
    Users(super::update::users::UsersDialog),
}

/// The one confirmation dialog: `y`/Enter does it, `n`/Esc does not; any other key does
/// nothing, so a stray key never answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmDialog {
    /// The title: the question in a few words ("Quit?").
    pub title: String,
    /// What will happen, in a sentence or two.
    pub text: String,
    /// A consequence to stress (sessions that end), shown as a warning.
    pub warning: Option<String>,
    /// What the yes key does, for the footer ("quit", "withdraw").
    pub yes: String,
    pub then: Confirmed,
}

/// What a confirmation dialog does on yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Leave the console although sessions are open (they stay open on the hub).
    Quit,
    /// Withdraw (or cancel the request for) unattended access for the whole team.
    Withdraw {
        workstation: WorkstationId,
        hostname: String,
    },
    /// Ask the end user of a workstation for unattended access (a question on their screen).
    RequestAccess { workstation: WorkstationId },
    /// Require (or stop requiring) a one-time password on a workstation.
    RequireOtp {
        workstation: WorkstationId,
        hostname: String,
        required: bool,
    },
    /// Toggle a group's one-time password requirement (the hub's setting is read first).
    GroupOtp {
        client: Option<ClientId>,
        label: String,
    },
    /// Revoke the enrolment link shown (the link dialog comes back to show it revoked).
    RevokeLink { dialog: LinkDialog },
    /// Issue a new enrolment link for a client (earlier links stay valid).
    NewLink {
        client: ClientId,
        client_name: String,
    },
}

/// The masked secret prompt. The typed value lives here only until it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPrompt {
    pub workstation: WorkstationId,
    pub hostname: String,
    pub requires: SecretRequirements,
    pub view_only: bool,
    /// The end user will be asked to accept (no unattended grant).
    pub attended: bool,
    pub input: TextInput,
    pub error: Option<String>,
    /// The one-time password already typed, sent with the secret.
    pub otp: Option<crate::protocol::Secret>,
}

/// Never print what was typed, even in a debug log or a failing test.
impl std::fmt::Debug for SecretPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretPrompt")
            .field("workstation", &self.workstation)
            .field("hostname", &self.hostname)
            .field("requires", &self.requires)
            .field("view_only", &self.view_only)
            .field("attended", &self.attended)
            .field("typed", &self.input.value.chars().count())
            .field("error", &self.error)
            .field("otp", &self.otp.is_some())
            .finish()
    }
}

/// The "waiting for the end user / the workstation" dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectingDialog {
    /// The `Connect` request this dialog waits for.
    pub request: RequestId,
    pub hostname: String,
    pub view_only: bool,
    /// The end user is asked (no unattended grant).
    pub attended: bool,
    pub since: DateTime<Utc>,
}

/// The enrolment link dialog: the client's newest valid link first, a new one on request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDialog {
    pub client_id: ClientId,
    pub client_name: String,
    /// The link shown, with its URL when this console issued it (the hub keeps only a hash, so
    /// a link issued elsewhere cannot be shown again). `None` while loading or issuing.
    pub link: Option<(LinkInfo, Option<String>)>,
    /// The hub's answer is on its way (the client's links, or a new link).
    pub loading: bool,
    pub revoking: bool,
}

/// A request waiting for its reply, and what to do with the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The users view's lifecycle requests (issue 11).
    Users(super::update::users::UsersPending),
    /// The first page of a list (it replaces what is shown); the `More` forms are the pages
    /// after it, requested as each arrives (they append).
    ListClients,
    ListWorkstations,
    MoreClients,
    MoreWorkstations,
    /// The filter's matches, asked of the hub while the team is still loading.
    FilterOnHub,
    MoreSessions,
    AddClient {
        name: String,
    },
    CreateLink {
        client: ClientId,
    },
    /// The client's links, to show its current valid one before issuing another.
    ListLinks {
        client: ClientId,
    },
    RevokeLink {
        link: LinkId,
    },
    ListSessions,
    RequestAccess {
        workstation: WorkstationId,
        hostname: String,
    },
    WithdrawAccess {
        workstation: WorkstationId,
        hostname: String,
    },
    /// `abandoned`: the technician stopped waiting; a session that opens anyway is ended.
    Connect {
        workstation: WorkstationId,
        hostname: String,
        requires: SecretRequirements,
        view_only: bool,
        attended: bool,
        abandoned: bool,
    },
    EndSession {
        session: SessionId,
        hostname: String,
    },
    /// `Watch` for the live terminal (opening it, or a new size).
    Watch {
        session: SessionId,
    },
    /// 2FA, users and audit requests (issue 5).
    TwoFa(super::update::twofa::TwoFaPending),
    /// Issue, revoke or regenerate support credentials (the dialog shows the answer).
    Credentials {
        target_label: String,
    },
    /// A one-time password request, resend or emergency request.
    Otp {
        workstation: WorkstationId,
        hostname: String,
    },
    /// The outbox listing.
    Outbox,
    /// The support credentials view's list: its first page, then the pages after it.
    ListCredentials,
    MoreCredentials,
    /// An admin requires (or stops requiring) a one-time password on a workstation.
    RequireOtp {
        hostname: String,
        required: bool,
    },
    /// An admin toggles a group's one-time password requirement: first the groups are read
    /// (`required` `None`), then the opposite of the group's setting is sent.
    GroupOtp {
        client: Option<ClientId>,
        /// "Acme Dental", or "the team" for the team's own group.
        label: String,
        required: Option<bool>,
    },
}

/// The status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub kind: StatusKind,
    pub since: DateTime<Utc>,
    /// A lock-out: the line counts down to its end from `State::now`.
    pub countdown: Option<Countdown>,
}

/// A wait shown in the status line, and what the line says when it is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countdown {
    pub until: DateTime<Utc>,
    pub then: String,
}

impl Status {
    /// The line as shown at `now`: with the time left when it counts down.
    pub fn text_at(&self, now: DateTime<Utc>) -> String {
        match &self.countdown {
            Some(countdown) => format!(
                "{} Try again in {}.",
                self.text,
                wait_label((countdown.until - now).num_seconds().max(1))
            ),
            None => self.text.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Success,
    Warning,
    Error,
}

/// A one-line text field with a cursor (in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    pub value: String,
    pub cursor: usize,
}

impl TextInput {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let cursor = value.chars().count();
        Self { value, cursor }
    }

    pub fn clear(&mut self) {
        self.value.clear();
        self.cursor = 0;
    }

    fn byte_index(&self, char_index: usize) -> usize {
        self.value
            .char_indices()
            .nth(char_index)
            .map_or(self.value.len(), |(i, _)| i)
    }

    pub fn insert_str(&mut self, text: &str) {
        for c in text.chars().filter(|c| !c.is_control()) {
            let at = self.byte_index(self.cursor);
            self.value.insert(at, c);
            self.cursor += 1;
        }
    }

    /// Apply an editing key; returns whether the field changed (value or cursor).
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        let len = self.value.chars().count();
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => self.clear(),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = len,
            KeyCode::Char('w') if ctrl => {
                let chars: Vec<char> = self.value.chars().collect();
                let mut start = self.cursor;
                while start > 0 && chars[start - 1].is_whitespace() {
                    start -= 1;
                }
                while start > 0 && !chars[start - 1].is_whitespace() {
                    start -= 1;
                }
                let (from, to) = (self.byte_index(start), self.byte_index(self.cursor));
                self.value.replace_range(from..to, "");
                self.cursor = start;
            }
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                self.insert_str(&c.to_string());
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_index(self.cursor);
                self.value.remove(at);
            }
            KeyCode::Delete if self.cursor < len => {
                let at = self.byte_index(self.cursor);
                self.value.remove(at);
            }
            KeyCode::Left if self.cursor > 0 => self.cursor -= 1,
            KeyCode::Right if self.cursor < len => self.cursor += 1,
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            _ => return false,
        }
        true
    }
}

/// The support credentials dialog (`c` on the main screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsDialog {
    pub target: crate::protocol::CredentialTarget,
    /// The workstation's host name or the client's name.
    pub target_label: String,
    pub stage: CredentialsStage,
}

impl CredentialsDialog {
    pub fn layer(&self) -> Layer {
        match self.stage {
            CredentialsStage::Choose(_) | CredentialsStage::Waiting { .. } => {
                Layer::CredentialsForm
            }
            CredentialsStage::Revealed { .. } => Layer::CredentialsReveal,
            CredentialsStage::AlreadyActive { .. } => Layer::CredentialsActive,
            CredentialsStage::Confirm { .. } => Layer::CredentialsConfirm,
        }
    }
}

/// Where the support credentials dialog is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsStage {
    /// Choosing the duration and the scopes.
    Choose(CredentialsChoice),
    /// The hub is issuing, revoking or regenerating (`what` says which).
    Waiting { what: String },
    /// Shown once: after the dialog closes nothing can show them again.
    Revealed {
        credential: crate::protocol::CredentialInfo,
        reveal: crate::protocol::RevealedCredential,
    },
    /// This technician's credentials for the target are still valid.
    AlreadyActive {
        credential: crate::protocol::CredentialInfo,
        message: String,
    },
    /// From the list: "revoke (or regenerate) these?"
    Confirm {
        credential: crate::protocol::CredentialInfo,
        regenerate: bool,
    },
}

/// The choices of the support credentials form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsChoice {
    /// 1 to 168 (7 days).
    pub hours: u32,
    pub scopes: crate::protocol::CredentialScopes,
    /// The focused row: 0 duration, 1 control, 2 chat, 3 history.
    pub row: usize,
}

impl Default for CredentialsChoice {
    fn default() -> Self {
        Self {
            hours: 8,
            scopes: crate::protocol::CredentialScopes::default(),
            row: 0,
        }
    }
}

/// A wait in words that fit a status line: "9 s", "2 min 05 s", "1 h 02 min".
pub fn wait_label(secs: i64) -> String {
    match secs {
        ..=59 => format!("{} s", secs.max(0)),
        60..=3_599 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3_600, (secs % 3_600) / 60),
    }
}

/// "12s ago", "3m ago", "5h ago", "2d ago": short enough for a table column.
pub fn relative_age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    match secs {
        ..=0 => "just now".to_owned(),
        1..=59 => format!("{secs}s ago"),
        60..=3_599 => format!("{}m ago", secs / 60),
        3_600..=86_399 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn relative_ages() {
        let now = Utc
            .with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
            .single()
            .expect("valid date");
        let ago = |secs| relative_age(now, now - chrono::Duration::seconds(secs));
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(-5), "just now", "clock skew never shows a negative age");
        assert_eq!(ago(12), "12s ago");
        assert_eq!(ago(180), "3m ago");
        assert_eq!(ago(5 * 3600 + 10), "5h ago");
        assert_eq!(ago(2 * 86_400 + 5), "2d ago");
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_label(9), "9 s");
        assert_eq!(wait_label(125), "2 min 05 s");
        assert_eq!(wait_label(900), "15 min 00 s");
        assert_eq!(wait_label(3_720), "1 h 02 min");
    }

    #[test]
    fn text_input_edits_at_the_cursor() {
        let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
        let mut input = TextInput::new("hélo");
        assert!(input.edit(&key(KeyCode::Left)));
        assert!(input.edit(&key(KeyCode::Char('l'))));
        assert_eq!(input.value, "héllo");
        assert!(input.edit(&key(KeyCode::Home)));
        assert!(input.edit(&key(KeyCode::Delete)));
        assert_eq!(input.value, "éllo");
        assert!(
            !input.edit(&key(KeyCode::Backspace)),
            "nothing before the cursor"
        );
        input.insert_str("w h\n");
        assert_eq!(
            input.value, "w héllo",
            "control characters from a paste are dropped"
        );
        assert!(input.edit(&KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL)));
        assert_eq!((input.value.as_str(), input.cursor), ("w éllo", 2));
    }
}

/// What the one-time password dialog is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpStep {
    /// Choose: request, resend, emergency.
    Choose,
    /// Waiting for the hub.
    Sending,
    /// The hub answered (see `outcome`).
    Done,
}

/// The one-time password dialog (`p`): never holds a code, only where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpDialog {
    pub workstation: WorkstationId,
    pub hostname: String,
    pub step: OtpStep,
    /// Typing an emergency reason.
    pub reason: Option<TextInput>,
    /// What happened: the delivery, or why it failed (`true`: an error).
    pub outcome: Option<(String, bool)>,
}

/// The masked one-time password prompt before connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpPrompt {
    pub workstation: WorkstationId,
    pub hostname: String,
    pub requires: SecretRequirements,
    pub view_only: bool,
    pub attended: bool,
    pub input: TextInput,
    pub error: Option<String>,
    /// The passcode or password already typed, sent with the code.
    pub secret: Option<crate::protocol::Secret>,
}

/// Never print what was typed.
impl std::fmt::Debug for OtpPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpPrompt")
            .field("workstation", &self.workstation)
            .field("hostname", &self.hostname)
            .field("typed", &self.input.value.chars().count())
            .field("error", &self.error)
            .field("secret", &self.secret.is_some())
            .finish()
    }
}

/// The outbox screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxDialog {
    /// `None` while loading.
    pub messages: Option<Vec<crate::protocol::OutboxMessage>>,
    pub scroll: u16,
    pub error: Option<String>,
}
