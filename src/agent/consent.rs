//! Asking the end user: "may this technician connect?", "grant unattended access?".
//!
//! Questions wait in a queue, oldest first, visible to everyone who can answer them: the agent's
//! terminal ([`prompt`]) and the control socket (`tether agent grant|deny`). Each question is
//! answered at most once; nobody answering within the timeout (60 s) is a refusal
//! ([`Answer::NoAnswer`]). With [`ConsentPolicy::Accept`] or [`ConsentPolicy::Deny`] the agent
//! answers at once, without asking (unattended machines, tests).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::protocol::TechnicianRef;

/// How long a question waits for the end user (DOMAIN.md: no answer in 60 s = deny).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The confirmation asked after the end user grants unattended access.
pub const CONFIRM_CHANGES_QUESTION: &str =
    "Allow technicians to make changes to this computer while you are away?";

/// Who answers the agent's questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPolicy {
    /// Ask the end user (on the agent's terminal, or through `tether agent grant|deny`).
    Ask,
    /// Say yes to everything without asking.
    Accept,
    /// Say no to everything without asking.
    Deny,
}

impl ConsentPolicy {
    pub fn label(self) -> &'static str {
        match self {
            ConsentPolicy::Ask => "ask",
            ConsentPolicy::Accept => "accept",
            ConsentPolicy::Deny => "deny",
        }
    }
}

/// The end user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Yes,
    No,
    /// Nobody answered in time.
    NoAnswer,
}

/// A question waiting for the end user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub id: u64,
    pub text: String,
    pub asked_at: DateTime<Utc>,
    /// When it counts as unanswered.
    pub expires_at: DateTime<Utc>,
}

struct Waiting {
    question: Question,
    reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    waiting: VecDeque<Waiting>,
}

/// The agent's questions to the end user.
pub struct Consent {
    policy: ConsentPolicy,
    timeout: Duration,
    queue: Mutex<Queue>,
    /// Bumped whenever a question is added or leaves the queue.
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consent")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("pending", &self.pending().len())
            .finish()
    }
}

/// Removes its question from the queue when `ask` ends, however it ends (answered, timed out,
/// or the asker gave up, e.g. the hub link dropped).
struct Withdraw<'a> {
    consent: &'a Consent,
    id: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let mut queue = self.consent.lock();
        let before = queue.waiting.len();
        queue.waiting.retain(|w| w.question.id != self.id);
        let removed = queue.waiting.len() != before;
        drop(queue);
        if removed {
            self.consent.bump();
        }
    }
}

impl Consent {
    pub fn new(policy: ConsentPolicy) -> Self {
        Self::with_timeout(policy, DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(policy: ConsentPolicy, timeout: Duration) -> Self {
        Self {
            policy,
            timeout,
            queue: Mutex::new(Queue::default()),
            changed: watch::Sender::new(0),
        }
    }

    pub fn policy(&self) -> ConsentPolicy {
        self.policy
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue stays consistent even if a holder panicked: every change is one call.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Notified whenever a question is added or leaves the queue.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Ask the end user `question` and wait for the answer (at most the timeout).
    pub async fn ask(&self, question: impl Into<String>) -> Answer {
        match self.policy {
            ConsentPolicy::Accept => return Answer::Yes,
            ConsentPolicy::Deny => return Answer::No,
            ConsentPolicy::Ask => {}
        }
        let (reply, answer) = oneshot::channel();
        let now = Utc::now();
        let expires_at = chrono::TimeDelta::from_std(self.timeout)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        let id = {
            let mut queue = self.lock();
            queue.next_id += 1;
            let id = queue.next_id;
            queue.waiting.push_back(Waiting {
                question: Question {
                    id,
                    text: question.into(),
                    asked_at: now,
                    expires_at,
                },
                reply,
            });
            id
        };
        let _withdraw = Withdraw { consent: self, id };
        self.bump();
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(true)) => Answer::Yes,
            Ok(Ok(false)) => Answer::No,
            Ok(Err(_)) | Err(_) => Answer::NoAnswer,
        }
    }

    /// Ask for unattended access: first to grant it, then to confirm that technicians may make
    /// changes. `Yes` only when both are yes; the first `No` or `NoAnswer` ends it.
    pub async fn ask_unattended(&self, technician: &TechnicianRef) -> Answer {
        match self.ask(unattended_question(technician)).await {
            Answer::Yes => self.ask(CONFIRM_CHANGES_QUESTION).await,
            other => other,
        }
    }

    /// Ask whether a technician may connect now (attended access).
    pub async fn ask_connect(&self, technician: &TechnicianRef, view_only: bool) -> Answer {
        self.ask(connect_question(technician, view_only)).await
    }

    /// The questions waiting, oldest (the current one) first.
    pub fn pending(&self) -> Vec<Question> {
        self.lock()
            .waiting
            .iter()
            .map(|w| w.question.clone())
            .collect()
    }

    /// The question the next answer goes to.
    pub fn current(&self) -> Option<Question> {
        self.lock().waiting.front().map(|w| w.question.clone())
    }

    /// Answer the current (oldest) question; returns it, or `None` when nothing is waiting.
    pub fn answer_current(&self, yes: bool) -> Option<Question> {
        let waiting = self.lock().waiting.pop_front()?;
        self.bump();
        // The asker may have just timed out; the answer then simply goes nowhere.
        let _ = waiting.reply.send(yes);
        Some(waiting.question)
    }

    /// Answer one question by id; `false` when it is no longer waiting.
    pub fn answer(&self, id: u64, yes: bool) -> bool {
        let waiting = {
            let mut queue = self.lock();
            let Some(pos) = queue.waiting.iter().position(|w| w.question.id == id) else {
                return false;
            };
            queue.waiting.remove(pos)
        };
        let Some(waiting) = waiting else {
            return false;
        };
        self.bump();
        let _ = waiting.reply.send(yes);
        true
    }
}

/// Names come from the hub: keep terminal control characters out of what the agent prints.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn who(technician: &TechnicianRef) -> String {
    format!(
        "{} ({})",
        printable(&technician.name),
        printable(&technician.email)
    )
}

/// "TECH (email) asks for unattended access to this computer. Grant?"
pub fn unattended_question(technician: &TechnicianRef) -> String {
    format!(
        "{} asks for unattended access to this computer. Grant?",
        who(technician)
    )
}

/// "TECH (email) wants to connect [view only]. Accept?"
pub fn connect_question(technician: &TechnicianRef, view_only: bool) -> String {
    let mode = if view_only { " (view only)" } else { "" };
    format!("{} wants to connect{mode}. Accept?", who(technician))
}

/// Ask the agent's questions on a terminal: print each question as it becomes current, and
/// answer it from the `y`/`n` lines that arrive on `lines`. Runs until `lines` closes.
pub async fn prompt<W: std::io::Write>(
    consent: &Consent,
    mut lines: mpsc::Receiver<String>,
    mut output: W,
) {
    let mut changes = consent.subscribe();
    let mut shown: Option<u64> = None;
    loop {
        if let Some(q) = consent.current()
            && shown != Some(q.id)
        {
            let _ = writeln!(output, "\n{} [y/n]", q.text);
            let _ = output.flush();
            shown = Some(q.id);
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            line = lines.recv() => {
                let Some(line) = line else { return };
                let yes = match line.trim().to_ascii_lowercase().as_str() {
                    "y" | "yes" => true,
                    "n" | "no" => false,
                    "" => continue,
                    _ => {
                        let _ = writeln!(output, "answer y or n");
                        let _ = output.flush();
                        continue;
                    }
                };
                let reply = match consent.answer_current(yes) {
                    Some(_) if yes => "accepted",
                    Some(_) => "refused",
                    None => "no question is waiting",
                };
                let _ = writeln!(output, "{reply}");
                let _ = output.flush();
            }
        }
    }
}

/// Lines typed on standard input, read by a thread of their own: tokio's stdin would keep the
/// runtime from shutting down while it waits for a line, and a person may never type one.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("agent-stdin".into())
        .spawn(move || {
            use std::io::BufRead;
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(%e, "cannot read answers from the terminal");
    }
    rx
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn alice() -> TechnicianRef {
        TechnicianRef {
            name: "Alice".into(),
            email: "alice@example.com".into(),
        }
    }

    /// Wait (with a timeout) until `n` questions are pending.
    async fn until_pending(consent: &Consent, n: usize) {
        let mut changes = consent.subscribe();
        tokio::time::timeout(Duration::from_secs(5), async {
            while consent.pending().len() != n {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .expect("questions in time");
    }

    #[tokio::test]
    async fn accept_and_deny_answer_without_asking() {
        let yes = Consent::new(ConsentPolicy::Accept);
        assert_eq!(yes.ask("ok?").await, Answer::Yes);
        assert_eq!(yes.ask_unattended(&alice()).await, Answer::Yes);
        let no = Consent::new(ConsentPolicy::Deny);
        assert_eq!(no.ask_connect(&alice(), false).await, Answer::No);
        assert!(yes.pending().is_empty() && no.pending().is_empty());
    }

    #[tokio::test]
    async fn ask_is_answered_through_answer_current_in_order() {
        let consent = Arc::new(Consent::new(ConsentPolicy::Ask));
        let first = tokio::spawn({
            let c = consent.clone();
            async move { c.ask_connect(&alice(), true).await }
        });
        until_pending(&consent, 1).await;
        let second = tokio::spawn({
            let c = consent.clone();
            async move { c.ask("second?").await }
        });
        until_pending(&consent, 2).await;
        let pending = consent.pending();
        assert_eq!(
            pending[0].text,
            "Alice (alice@example.com) wants to connect (view only). Accept?"
        );
        assert_eq!(pending[1].text, "second?");
        assert!(pending[0].id < pending[1].id);

        let answered = consent.answer_current(true).expect("a question");
        assert_eq!(answered.id, pending[0].id);
        assert_eq!(first.await.expect("join"), Answer::Yes);
        assert_eq!(consent.current().map(|q| q.id), Some(pending[1].id));
        assert!(consent.answer_current(false).is_some());
        assert_eq!(second.await.expect("join"), Answer::No);
        assert!(consent.answer_current(true).is_none(), "nothing left");
    }

    #[tokio::test]
    async fn unattended_asks_to_grant_then_to_confirm() {
        let consent = Arc::new(Consent::new(ConsentPolicy::Ask));
        let asked = tokio::spawn({
            let c = consent.clone();
            async move { c.ask_unattended(&alice()).await }
        });
        until_pending(&consent, 1).await;
        assert_eq!(
            consent.current().expect("grant").text,
            "Alice (alice@example.com) asks for unattended access to this computer. Grant?"
        );
        consent.answer_current(true);
        until_pending(&consent, 1).await;
        assert_eq!(
            consent.current().expect("confirm").text,
            CONFIRM_CHANGES_QUESTION
        );
        consent.answer_current(false);
        assert_eq!(asked.await.expect("join"), Answer::No);
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_within_the_timeout_is_no_answer_and_leaves_the_queue() {
        let consent = Arc::new(Consent::new(ConsentPolicy::Ask));
        let asked = tokio::spawn({
            let c = consent.clone();
            async move { c.ask("anyone?").await }
        });
        until_pending(&consent, 1).await;
        tokio::time::advance(DEFAULT_TIMEOUT - Duration::from_secs(1)).await;
        assert_eq!(consent.pending().len(), 1, "still waiting at 59 s");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(asked.await.expect("join"), Answer::NoAnswer);
        assert!(consent.pending().is_empty());
        assert!(consent.answer_current(true).is_none());
    }

    #[tokio::test]
    async fn an_abandoned_question_leaves_the_queue() {
        let consent = Arc::new(Consent::new(ConsentPolicy::Ask));
        let asked = tokio::spawn({
            let c = consent.clone();
            async move { c.ask("anyone?").await }
        });
        until_pending(&consent, 1).await;
        asked.abort();
        until_pending(&consent, 0).await;
    }

    #[tokio::test]
    async fn answer_by_id() {
        let consent = Arc::new(Consent::new(ConsentPolicy::Ask));
        let asked = tokio::spawn({
            let c = consent.clone();
            async move { c.ask("by id?").await }
        });
        until_pending(&consent, 1).await;
        let id = consent.pending()[0].id;
        assert!(!consent.answer(id + 1, true));
        assert!(consent.answer(id, true));
        assert_eq!(asked.await.expect("join"), Answer::Yes);
        assert!(!consent.answer(id, true), "answered once only");
    }

    #[test]
    fn technician_names_cannot_carry_terminal_escapes() {
        let evil = TechnicianRef {
            name: "Eve\x1b[2J".into(),
            email: "eve@example.com\n".into(),
        };
        let q = unattended_question(&evil);
        assert!(!q.chars().any(char::is_control), "{q:?}");
    }

    #[tokio::test]
    async fn the_terminal_prompt_shows_questions_and_reads_answers() {
        let consent = Arc::new(Consent::new(ConsentPolicy::Ask));
        let (typing, input) = mpsc::channel(4);
        let output = Arc::new(Mutex::new(Vec::<u8>::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let prompt_task = tokio::spawn({
            let c = consent.clone();
            let out = Shared(output.clone());
            async move { prompt(&c, input, out).await }
        });
        let asked = tokio::spawn({
            let c = consent.clone();
            async move { c.ask_connect(&alice(), false).await }
        });
        until_pending(&consent, 1).await;
        typing.send("maybe".into()).await.expect("type");
        typing.send(" Y ".into()).await.expect("type");
        assert_eq!(asked.await.expect("join"), Answer::Yes);
        drop(typing);
        tokio::time::timeout(Duration::from_secs(5), prompt_task)
            .await
            .expect("prompt ends with its input")
            .expect("join");
        let shown = String::from_utf8(output.lock().expect("lock").clone()).expect("utf8");
        assert!(
            shown.contains("Alice (alice@example.com) wants to connect. Accept? [y/n]"),
            "{shown}"
        );
        assert!(shown.contains("answer y or n"), "{shown}");
        assert!(shown.contains("accepted"), "{shown}");
    }
}
