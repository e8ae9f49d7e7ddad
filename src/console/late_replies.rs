//! Terminal answers that arrive after the capability questions gave up waiting.
//!
//! The console asks the terminal what it can draw and waits at most 200 ms
//! ([`crate::render::detect::QUERY_TIMEOUT`]). Over a slow SSH link the answers can come later,
//! when crossterm already reads keys. Most are CSI sequences crossterm drops, but the kitty
//! graphics answer (`ESC _ G i=31;OK ESC \`) is an APC string, which crossterm reads as
//! keystrokes: Alt-`_`, `G`, `i`, `=`, ..., Alt-`\`. Those must not act as keys (`O` would
//! open the outbox). This filter drops such a run in the first seconds after the questions.
//! A person who really types Alt-`_` then loses at most what follows in the next second.

use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

/// How long after the questions an answer may still arrive.
pub const WINDOW: Duration = Duration::from_secs(5);
/// An answer is short and sent at once: a run longer than this is typing.
const MAX_RUN: Duration = Duration::from_secs(1);
const MAX_KEYS: usize = 128;

/// Drops keystrokes that are really a late APC answer from the terminal.
#[derive(Debug)]
pub struct LateReplies {
    until: Instant,
    /// Inside an answer: when it started and how many keys it had.
    run: Option<(Instant, usize)>,
}

fn alt(key: &KeyEvent, c: char) -> bool {
    key.code == KeyCode::Char(c) && key.modifiers.contains(KeyModifiers::ALT)
}

impl LateReplies {
    /// Watch for answers until `window` after `asked`.
    pub fn new(asked: Instant, window: Duration) -> Self {
        Self {
            until: asked + window,
            run: None,
        }
    }

    /// Nothing to watch for (the terminal was not asked).
    pub fn off() -> Self {
        Self::new(Instant::now(), Duration::ZERO)
    }

    /// Whether `event`, arriving at `now`, is part of a late answer (and so to be dropped).
    pub fn swallow(&mut self, event: &Event, now: Instant) -> bool {
        let Event::Key(key) = event else {
            return false;
        };
        match self.run {
            None if now <= self.until && alt(key, '_') => {
                self.run = Some((now, 0));
                true
            }
            None => false,
            Some(_) if alt(key, '\\') => {
                self.run = None;
                true
            }
            Some((start, keys)) => {
                if now.duration_since(start) > MAX_RUN || keys >= MAX_KEYS {
                    // Not an answer after all: a person typing.
                    self.run = None;
                    return false;
                }
                self.run = Some((start, keys + 1));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char, modifiers: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), modifiers))
    }

    /// The keys crossterm makes of `ESC _ G i=31;OK ESC \`.
    fn kitty_answer() -> Vec<Event> {
        let mut keys = vec![key('_', KeyModifiers::ALT)];
        keys.extend("Gi=31;OK".chars().map(|c| key(c, KeyModifiers::NONE)));
        keys.push(key('\\', KeyModifiers::ALT));
        keys
    }

    #[test]
    fn a_late_kitty_answer_is_dropped_and_typing_after_it_is_not() {
        let asked = Instant::now();
        let mut filter = LateReplies::new(asked, WINDOW);
        let now = asked + Duration::from_millis(700);
        for event in kitty_answer() {
            assert!(filter.swallow(&event, now), "{event:?}");
        }
        for c in "OG".chars() {
            assert!(!filter.swallow(&key(c, KeyModifiers::NONE), now));
        }
    }

    #[test]
    fn after_the_window_nothing_is_dropped() {
        let asked = Instant::now();
        let mut filter = LateReplies::new(asked, WINDOW);
        let later = asked + WINDOW + Duration::from_millis(1);
        assert!(!filter.swallow(&key('_', KeyModifiers::ALT), later));
        assert!(!filter.swallow(&key('O', KeyModifiers::NONE), later));
        let mut off = LateReplies::off();
        assert!(!off.swallow(
            &kitty_answer()[0],
            Instant::now() + Duration::from_millis(1)
        ));
    }

    #[test]
    fn a_person_typing_alt_underscore_gets_their_keys_back_soon() {
        let asked = Instant::now();
        let mut filter = LateReplies::new(asked, WINDOW);
        assert!(filter.swallow(&key('_', KeyModifiers::ALT), asked));
        assert!(filter.swallow(&key('a', KeyModifiers::NONE), asked));
        let later = asked + MAX_RUN + Duration::from_millis(1);
        assert!(!filter.swallow(&key('b', KeyModifiers::NONE), later));
        assert!(!filter.swallow(&key('c', KeyModifiers::NONE), later));
    }
}
