//! A technician's raw connection that sees binary stream frames: for live-session tests.

use std::time::Duration;

use futures_util::StreamExt;
use tether::protocol::stream::{self, StreamFrame};
use tether::protocol::{ConsoleReply, ConsoleRequest, PROTOCOL_VERSION, Request};
use tether::wire::{self, ClientStream};
use tokio_tungstenite::tungstenite::Message;

use super::TestHub;

/// A raw technician connection that can see binary frames.
pub async fn viewer(hub: &TestHub, user: &str) -> ClientStream {
    let (mut ws, _) = wire::connect(&hub.url, tether::protocol::CONSOLE_PATH, hub.pin())
        .await
        .expect("connect");
    let login = Request {
        id: 1,
        body: ConsoleRequest::Login {
            version: PROTOCOL_VERSION,
            user: user.into(),
            password: super::PASSWORD.into(),
            code: None,
            device: None,
        },
    };
    wire::send(&mut ws, &login).await.expect("login");
    reply(&mut ws, 1).await.expect("logged in");
    ws
}

pub async fn reply(
    ws: &mut ClientStream,
    id: u64,
) -> Result<ConsoleReply, tether::protocol::ProtocolError> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await.expect("open").expect("message") {
                Message::Text(t) => {
                    if let tether::protocol::HubToConsole::Reply { id: got, result } =
                        tether::protocol::decode(t.as_str()).expect("decode")
                        && got == id
                    {
                        return result;
                    }
                }
                Message::Binary(_) => panic!("unexpected frame while waiting for reply {id}"),
                _ => {}
            }
        }
    })
    .await
    .expect("reply in time")
}

/// The next stream frame, within 10 s (text messages are skipped).
pub async fn next_frame(ws: &mut ClientStream) -> StreamFrame {
    frame_within(ws, Duration::from_secs(10))
        .await
        .expect("a frame in time")
}

/// The next stream frame within `within`, if any (text messages are skipped).
pub async fn frame_within(ws: &mut ClientStream, within: Duration) -> Option<StreamFrame> {
    tokio::time::timeout(within, async {
        loop {
            if let Message::Binary(b) = ws.next().await.expect("open").expect("message") {
                return stream::decode(&b).expect("a valid frame");
            }
        }
    })
    .await
    .ok()
}

/// What a raw viewer receives next: a stream frame or a hub event.
pub enum Next {
    Frame(StreamFrame),
    Event(tether::protocol::HubEvent),
}

/// The next frame or event within `within`, if any (replies are skipped).
pub async fn next(ws: &mut ClientStream, within: Duration) -> Option<Next> {
    tokio::time::timeout(within, async {
        loop {
            match ws.next().await.expect("open").expect("message") {
                Message::Binary(b) => {
                    return Next::Frame(stream::decode(&b).expect("a valid frame"));
                }
                Message::Text(t) => {
                    if let tether::protocol::HubToConsole::Event { event } =
                        tether::protocol::decode(t.as_str()).expect("decode")
                    {
                        return Next::Event(event);
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .ok()
}

/// Send request `body` as `id`, not waiting for its reply.
pub async fn send(ws: &mut ClientStream, id: u64, body: ConsoleRequest) {
    wire::send(ws, &Request { id, body }).await.expect("send");
}

/// A hub with technicians of team "Desk" (the first an admin) and an agent showing `screen`,
/// with unattended access granted, so that connecting needs no question.
pub struct DesktopRig {
    pub hub: TestHub,
    pub agent: super::TestAgent,
    pub workstation: tether::protocol::WorkstationId,
    _dir: tempfile::TempDir,
}

impl DesktopRig {
    pub async fn start(screen: &str, hostname: &str, users: &[&str]) -> Self {
        Self::start_with(screen, hostname, users, true).await
    }

    /// The same, saying whether the agent offers a shell (`--shell on|off`).
    pub async fn start_with(screen: &str, hostname: &str, users: &[&str], shell: bool) -> Self {
        use tether::agent::consent::{Consent, ConsentPolicy};
        use tether::protocol::Role;
        let hub = TestHub::start().await;
        for (i, user) in users.iter().enumerate() {
            let role = if i == 0 {
                Role::Admin
            } else {
                Role::Technician
            };
            hub.add_user(user, role, "Desk").await;
        }
        let (tech, _) = hub.console(users[0]).await;
        let link = super::enrolment_link(&tech, "Acme").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut agent = super::TestAgent::start_shell(
            dir.path(),
            Some(link),
            hostname,
            Consent::new(ConsentPolicy::Ask),
            screen.parse().expect("screen"),
            shell,
        );
        let workstation = agent.online().await;
        tech.request(ConsoleRequest::RequestAccess {
            workstation: workstation.clone(),
        })
        .await
        .expect("request");
        super::answer_question(&agent.shared, true).await;
        super::answer_question(&agent.shared, true).await;
        Self {
            hub,
            agent,
            workstation,
            _dir: dir,
        }
    }

    /// `user` connects (raw, seeing frames) and watches at `width` x `height` pixels: the
    /// connection, the session and the stream.
    pub async fn connect_and_watch(
        &self,
        user: &str,
        (width, height): (u32, u32),
    ) -> (
        ClientStream,
        tether::protocol::SessionInfo,
        tether::protocol::StreamId,
    ) {
        let view = tether::protocol::ViewSpec::Pixels { width, height };
        self.connect_and_view(user, view).await
    }

    /// `user` connects (raw, seeing frames) and watches with `view`.
    pub async fn connect_and_view(
        &self,
        user: &str,
        view: tether::protocol::ViewSpec,
    ) -> (
        ClientStream,
        tether::protocol::SessionInfo,
        tether::protocol::StreamId,
    ) {
        let mut ws = viewer(&self.hub, user).await;
        let connect = ConsoleRequest::Connect {
            workstation: self.workstation.clone(),
            secret: None,
            view_only: false,
            otp: None,
        };
        wire::send(
            &mut ws,
            &Request {
                id: 2,
                body: connect,
            },
        )
        .await
        .expect("send");
        let ConsoleReply::Session { session } = reply(&mut ws, 2).await.expect("session") else {
            panic!("no session for {user}")
        };
        let watch = ConsoleRequest::Watch {
            session: session.id.clone(),
            view,
        };
        wire::send(&mut ws, &Request { id: 3, body: watch })
            .await
            .expect("send");
        let ConsoleReply::Watching { stream } = reply(&mut ws, 3).await.expect("watching") else {
            panic!("{user} is not watching")
        };
        (ws, session, stream)
    }
}
