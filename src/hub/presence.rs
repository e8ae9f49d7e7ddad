//! Presence: which agents are connected now (and the way to each), and every team's live
//! event stream. This service owns those maps and their locks; the rest of the hub goes
//! through the methods here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message};

use super::Hub;
use crate::protocol::{HubEvent, HubToAgent, Presence, TeamId, WorkstationId, WorkstationInfo};

/// An agent's live connection, as presence knows it.
pub(super) struct OnlineAgent {
    conn: u64,
    /// Closing a connection that a newer one with the same key replaced.
    kick: Option<oneshot::Sender<()>>,
    /// The connection's writer: messages for the agent.
    out: mpsc::Sender<Message>,
}

/// Presence's state: connected agents, each team's event stream, connection numbers.
pub(super) struct PresenceState {
    online: Mutex<HashMap<WorkstationId, OnlineAgent>>,
    teams: Mutex<HashMap<TeamId, broadcast::Sender<HubEvent>>>,
    next_conn: AtomicU64,
}

impl Default for PresenceState {
    fn default() -> Self {
        Self {
            online: Mutex::default(),
            teams: Mutex::default(),
            next_conn: 1.into(),
        }
    }
}

impl Hub {
    /// Receive the live events of one team.
    pub(super) fn subscribe(&self, team: &TeamId) -> broadcast::Receiver<HubEvent> {
        let mut teams = self
            .presence_state
            .teams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        teams
            .entry(team.clone())
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }

    /// Tell every console of a team. No subscribers is fine: nobody is watching.
    pub(super) fn publish(&self, team: &TeamId, event: HubEvent) {
        let teams = self
            .presence_state
            .teams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = teams.get(team) {
            let _ = tx.send(event);
        }
    }

    pub(super) fn presence(&self, id: &WorkstationId) -> Presence {
        let online = self.is_online(id);
        let in_session = self.has_session_on(id);
        match (online, in_session) {
            (false, _) => Presence::Offline,
            (true, true) => Presence::InSession,
            (true, false) => Presence::Online,
        }
    }

    /// Fill live presence into stored workstation listings.
    pub(super) fn with_presence(&self, mut info: WorkstationInfo) -> WorkstationInfo {
        info.presence = self.presence(&info.id);
        if info.presence != Presence::Offline {
            info.last_seen = self.now();
        }
        info
    }

    /// Mark a workstation online under a new connection; a previous connection with the same
    /// key is told to close. Returns the connection number and the signal that closes it.
    pub(super) fn agent_online(
        &self,
        id: &WorkstationId,
        out: mpsc::Sender<Message>,
    ) -> (u64, oneshot::Receiver<()>) {
        let conn = self
            .presence_state
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (kick, kicked) = oneshot::channel();
        let mut online = self
            .presence_state
            .online
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let old = online.insert(
            id.clone(),
            OnlineAgent {
                conn,
                kick: Some(kick),
                out,
            },
        );
        if let Some(mut old) = old
            && let Some(k) = old.kick.take()
        {
            let _ = k.send(());
        }
        (conn, kicked)
    }

    /// Send a message to a workstation's agent; false when it is not connected or its
    /// connection is backed up. Never waits: a lost stream ack or drop notice is made good by
    /// the agent's in-flight timeout.
    pub(super) fn send_to_agent(&self, id: &WorkstationId, msg: &HubToAgent) -> bool {
        let out = {
            let online = self
                .presence_state
                .online
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            online.get(id).map(|o| o.out.clone())
        };
        let Some(out) = out else { return false };
        match crate::protocol::encode(msg) {
            Ok(text) => match out.try_send(Message::text(text)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(workstation = %id, "agent connection backed up: message dropped");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
            Err(_) => false,
        }
    }

    /// Pass a binary stream frame to a workstation's agent; false when it is not connected
    /// or its connection is backed up (the frame is dropped: latest wins).
    pub(super) fn send_binary_to_agent(
        &self,
        id: &WorkstationId,
        bytes: tungstenite::Bytes,
    ) -> bool {
        let out = {
            let online = self
                .presence_state
                .online
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            online.get(id).map(|o| o.out.clone())
        };
        out.is_some_and(|out| out.try_send(Message::binary(bytes)).is_ok())
    }

    /// A new connection number (consoles and agents share the sequence).
    pub(super) fn new_conn(&self) -> u64 {
        self.presence_state
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Mark a workstation offline if `conn` is still its connection. True when it was.
    pub(super) fn agent_offline(&self, id: &WorkstationId, conn: u64) -> bool {
        let mut online = self
            .presence_state
            .online
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match online.get(id) {
            Some(o) if o.conn == conn => {
                online.remove(id);
                true
            }
            _ => false,
        }
    }

    /// After a load: give back the room the presence maps grew to (a map keeps its largest
    /// capacity otherwise; 20k agents leave ~2 MB of empty table).
    pub(super) fn shrink_presence(&self) {
        let mut online = self
            .presence_state
            .online
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        online.shrink_to_fit();
    }

    /// Whether a workstation's agent is connected now.
    pub(super) fn is_online(&self, id: &WorkstationId) -> bool {
        self.presence_state
            .online
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// Room the connected-agents map holds (for the memory tests).
    #[cfg(test)]
    pub(super) fn presence_capacity(&self) -> usize {
        self.presence_state
            .online
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity()
    }
}
