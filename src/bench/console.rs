//! `tether bench console --rows N`: the console's real `update` and `draw` (ratatui into a
//! `TestBackend` of the console's size, so the buffer diff is included) with a team of N
//! workstations: loading them, a filter keystroke, a presence event, and the idle second.
//!
//! The rows are made up from a seeded generator (client and host names of several shapes,
//! presences mixed), not from the fixtures the console's tests use.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{Report, ms, percentile};
use crate::console::keymap::Keymap;
use crate::console::net::{NetCommand, NetEvent};
use crate::console::state::State;
use crate::console::theme::Theme;
use crate::console::ui;
use crate::console::update::{Effect, Msg, Startup, start, update};
use crate::protocol::{
    ClientInfo, ConsoleReply, ConsoleRequest, Cursor, HubEvent, Presence, Role, UserInfo,
    WorkstationInfo,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workstations in the team.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Clients they belong to.
    #[arg(long, default_value_t = 800)]
    pub clients: usize,
    /// The console's size, COLSxROWS.
    #[arg(long, default_value = "120x40")]
    pub size: String,
    /// Presence events to time.
    #[arg(long, default_value_t = 2000)]
    pub events: usize,
}

/// A small xorshift generator: the same team every run, without a dependency.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

const PLACES: &[&str] = &[
    "reception",
    "xray",
    "till",
    "office",
    "lab",
    "warehouse",
    "front",
    "kitchen",
    "ward",
    "studio",
    "library",
    "surgery",
    "dispatch",
    "counter",
    "archive",
    "workshop",
];
const ORGS: &[&str] = &[
    "Dental",
    "Bakery",
    "Logistics",
    "Clinic",
    "Architects",
    "Pharmacy",
    "Garage",
    "Law",
    "School",
    "Hotel",
    "Brewery",
    "Florist",
    "Opticians",
    "Vets",
    "Print",
    "Transport",
];
const NAMES: &[&str] = &[
    "Acme",
    "Nordwind",
    "Baker & Sons",
    "Müller",
    "Sakura",
    "Kowalski",
    "O'Brien",
    "Lindqvist",
    "Rossi",
    "Dubois",
    "García",
    "Novak",
    "Haddad",
    "Okafor",
    "Tanaka",
    "Silva",
];
const SYSTEMS: &[&str] = &[
    "Windows 11 Pro",
    "Windows 10",
    "Ubuntu 24.04",
    "Debian 12",
    "macOS 14.5",
    "Fedora 40",
];
const USERS: &[&str] = &[
    "maria",
    "kasse",
    "jan.de.vries",
    "pat",
    "reception",
    "dr.ng",
    "ops",
    "s.kumar",
];

fn team(rows: usize, clients: usize) -> (Vec<ClientInfo>, Vec<WorkstationInfo>) {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .unwrap_or_default();
    let mut rng = Seeded(0x9e37_79b9_7f4a_7c15);
    let clients: Vec<ClientInfo> = (0..clients.max(1))
        .map(|i| ClientInfo {
            id: format!("c{i:05}"),
            name: format!(
                "{} {} {}",
                NAMES[rng.next(NAMES.len())],
                ORGS[rng.next(ORGS.len())],
                i
            ),
            created_at: at,
        })
        .collect();
    let workstations = (0..rows)
        .map(|i| {
            let client = &clients[rng.next(clients.len())];
            let presence = match rng.next(10) {
                0..=5 => Presence::Offline,
                6..=8 => Presence::Online,
                _ => Presence::InSession,
            };
            WorkstationInfo {
                id: format!("w{i:07}-{:x}", rng.next(1 << 20)),
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                hostname: format!(
                    "{}-{}-{:03}",
                    PLACES[rng.next(PLACES.len())],
                    ["pc", "ws", "lt", "srv", "kiosk"][rng.next(5)],
                    rng.next(1000)
                ),
                os: SYSTEMS[rng.next(SYSTEMS.len())].to_owned(),
                user: USERS[rng.next(USERS.len())].to_owned(),
                screen: None,
                agent_version: "0.1.0".into(),
                presence,
                last_seen: at,
                enrolled_at: at,
                unattended: Default::default(),
                requires: Default::default(),
                otp_required: false,
            }
        })
        .collect();
    (clients, workstations)
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn requests(effects: &[Effect]) -> Vec<(u64, ConsoleRequest)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Net(NetCommand::Request { id, body }) => Some((*id, body.clone())),
            _ => None,
        })
        .collect()
}

struct Console {
    state: State,
    terminal: Terminal<TestBackend>,
    theme: Theme,
}

impl Console {
    /// `update` with one message, then one draw, as the app loop does; the time of both.
    fn step(&mut self, msg: Msg) -> anyhow::Result<Duration> {
        Ok(self.step_with(msg)?.0)
    }

    /// As [`Console::step`], with the effects `update` asked for.
    fn step_with(&mut self, msg: Msg) -> anyhow::Result<(Duration, Vec<Effect>)> {
        let started = Instant::now();
        let effects = update(&mut self.state, msg);
        self.draw()?;
        Ok((started.elapsed(), effects))
    }

    fn draw(&mut self) -> anyhow::Result<()> {
        if self.state.dirty {
            let (state, theme) = (&self.state, &self.theme);
            self.terminal.draw(|frame| ui::draw(state, theme, frame))?;
            self.state.dirty = false;
        }
        Ok(())
    }
}

fn parse_size(size: &str) -> anyhow::Result<(u16, u16)> {
    let (w, h) = size
        .split_once('x')
        .ok_or_else(|| anyhow::anyhow!("--size is COLSxROWS, like 120x40"))?;
    Ok((w.parse()?, h.parse()?))
}

pub fn run(args: &Args) -> anyhow::Result<Report> {
    let (width, height) = parse_size(&args.size)?;
    let (clients, workstations) = team(args.rows, args.clients);
    let theme = Theme::builtin("dark").ok_or_else(|| anyhow::anyhow!("no dark theme"))?;
    let now = workstations
        .first()
        .map(|w| w.last_seen)
        .unwrap_or_else(Utc::now);
    let mut console = Console {
        state: State::new(now, Keymap::default(), vec!["dark".into()], 0),
        terminal: Terminal::new(TestBackend::new(width, height))?,
        theme,
    };
    update(&mut console.state, Msg::Resize { width, height });
    start(
        &mut console.state,
        Startup::Preset {
            hub: "wss://bench.invalid:7443".into(),
            fingerprint: "SHA256:bench".into(),
            token: "bench".into(),
        },
    );
    let effects = update(
        &mut console.state,
        Msg::Net(NetEvent::LoggedIn {
            user: UserInfo {
                id: "u1".into(),
                name: "ann".into(),
                email: "ann@example.com".into(),
                role: Role::Admin,
                team_id: "t1".into(),
                team: "Support desk".into(),
            },
            token: None,
        }),
    );
    let mut report = Report::new(
        "console",
        format!(
            "{} workstations of {} clients, real update + draw at {width}x{height} (TestBackend)",
            args.rows, args.clients
        ),
    );

    // The lists arrive as the hub sends them: pages cut by the hub's own pager (its byte
    // budget), each next page asked for by the console as the last one lands.
    let mut load = Duration::ZERO;
    let mut first_page = None;
    let mut queue: std::collections::VecDeque<(u64, ConsoleRequest)> = requests(&effects).into();
    while let Some((id, body)) = queue.pop_front() {
        let reply = match body {
            ConsoleRequest::ListClients { .. } => ConsoleReply::Clients {
                clients: clients.clone(),
                next: None,
                total: None,
            },
            ConsoleRequest::ListWorkstations { page, .. } => {
                let start: usize = page
                    .after
                    .as_ref()
                    .and_then(|c| c.0.parse().ok())
                    .unwrap_or(0);
                let cut = crate::hub::pager::paginate(
                    "workstations",
                    workstations[start.min(workstations.len())..]
                        .iter()
                        .cloned(),
                    crate::hub::pager::MAX_PAGE_ROWS,
                    crate::hub::pager::PAGE_BUDGET,
                    |w| w.id.clone(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let end = start + cut.rows.len();
                ConsoleReply::Workstations {
                    workstations: cut.rows,
                    next: (end < workstations.len()).then(|| Cursor(end.to_string())),
                    total: Some(workstations.len() as u64),
                }
            }
            ConsoleRequest::ListSessions { .. } => ConsoleReply::Sessions {
                sessions: Vec::new(),
                next: None,
                total: None,
            },
            _ => continue,
        };
        let (took, effects) = console.step_with(Msg::Net(NetEvent::Reply {
            id,
            result: Ok(reply),
        }))?;
        load += took;
        if first_page.is_none() && !console.state.workstations.is_empty() {
            first_page = Some(load);
        }
        queue.extend(requests(&effects));
    }
    report.add(
        "first page on screen (update + draw, from login)",
        ms(first_page.unwrap_or_default()),
        "ms",
        "",
    );
    report.add(
        "every page loaded (update + draw, all pages)",
        ms(load),
        "ms",
        "",
    );
    let shown = console.state.visible_workstations().len();
    anyhow::ensure!(
        shown == args.rows,
        "the console shows {shown} rows, not {}",
        args.rows
    );

    // A draw of an unchanged screen after a change elsewhere (the clock).
    let mut draws = Vec::new();
    for _ in 0..50 {
        console.state.dirty = true;
        let started = Instant::now();
        console.draw()?;
        draws.push(started.elapsed());
    }
    draws.sort();
    report.add("draw, p50", ms(percentile(&draws, 50.0)), "ms", "");

    // Filter keystrokes: typing a term that narrows step by step, then deleting it again.
    console.step(key(KeyCode::Char('/')))?;
    let mut typing = Vec::new();
    for c in "office-ws-1".chars() {
        typing.push(console.step(key(KeyCode::Char(c)))?);
    }
    let narrowed = console.state.visible_workstations().len();
    let mut deleting = Vec::new();
    for _ in 0.."office-ws-1".len() {
        deleting.push(console.step(key(KeyCode::Backspace))?);
    }
    console.step(key(KeyCode::Esc))?;
    typing.sort();
    deleting.sort();
    report.add(
        "filter keystroke, typing, p50",
        ms(percentile(&typing, 50.0)),
        "ms",
        "",
    );
    report.add(
        "filter keystroke, typing, max",
        ms(percentile(&typing, 100.0)),
        "ms",
        "<= 16 ms",
    );
    report.add(
        "filter keystroke, deleting, max",
        ms(percentile(&deleting, 100.0)),
        "ms",
        "<= 16 ms",
    );
    report.add("rows matching \"office-ws-1\"", narrowed as f64, "", "");

    // Presence events: random workstations going on and offline, each drawn.
    let mut rng = Seeded(0x51_7cc1_b727_220a);
    let mut events = Vec::with_capacity(args.events);
    for _ in 0..args.events {
        let mut w = workstations[rng.next(workstations.len())].clone();
        w.presence = match w.presence {
            Presence::Offline => Presence::Online,
            _ => Presence::Offline,
        };
        events.push(
            console.step(Msg::Net(NetEvent::Event(HubEvent::Workstation {
                workstation: w,
            })))?,
        );
    }
    report.add_p50_p99("presence event", &mut events, ("", "<= 1 ms"));

    // Idle: the loop's one-second tick is all that happens.
    let mut ticks = Vec::new();
    for s in 1..=20 {
        let at = now + chrono::Duration::seconds(s);
        ticks.push(console.step(Msg::Tick(at))?);
    }
    ticks.sort();
    let per_second = percentile(&ticks, 50.0);
    report.add(
        "idle: one tick (update + draw) a second",
        ms(per_second),
        "ms",
        "",
    );
    report.add(
        "idle CPU",
        per_second.as_secs_f64() * 100.0,
        "%",
        "<= 1 % of a core",
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_shows_every_row_and_fills_the_table() {
        let report = run(&Args {
            rows: 500,
            clients: 20,
            size: "80x24".into(),
            events: 50,
        })
        .expect("bench");
        assert!(
            report
                .rows
                .iter()
                .any(|r| r.figure.starts_with("presence event"))
        );
        assert!(report.table().contains("filter keystroke"));
        // The filter the bench types found exactly the rows that hold its text.
        let (_, rows) = team(500, 20);
        let holding = rows
            .iter()
            .filter(|w| {
                [&w.hostname, &w.user, &w.os, &w.client_name]
                    .iter()
                    .any(|f| f.to_lowercase().contains("office-ws-1"))
            })
            .count();
        let found = report
            .rows
            .iter()
            .find(|r| r.figure.starts_with("rows matching"))
            .map(|r| r.value);
        assert_eq!(found, Some(holding as f64));
        assert!(holding > 0, "the made-up team has rows to find");
    }

    #[test]
    fn the_made_up_team_has_unique_ids() {
        let (_, rows) = team(5000, 50);
        let ids: std::collections::HashSet<_> = rows.iter().map(|w| &w.id).collect();
        assert_eq!(ids.len(), 5000);
    }
}
