//! Questions on the terminal for `tether login`: the password without echo, the 2FA code.
//!
//! Written on crossterm (already ours) rather than `rpassword`: in raw mode Ctrl-C arrives as
//! a key, so a cancelled prompt restores the terminal itself, where a signal during
//! `rpassword`'s no-echo read leaves the terminal without echo.

use std::io::{IsTerminal, Write};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal;

use super::Failure;

/// Whether a person can be asked: standard input is a terminal.
pub(crate) fn can_ask() -> bool {
    std::io::stdin().is_terminal()
}

/// Puts the terminal back into cooked mode when dropped, however the prompt ends.
struct RawMode;

impl RawMode {
    fn enter() -> std::io::Result<Self> {
        terminal::enable_raw_mode()?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
    }
}

/// What one key does to a line being typed.
#[derive(Debug, PartialEq, Eq)]
enum Edit {
    Done,
    Cancel,
    Changed,
    Ignored,
}

/// Apply `key` to `line`: characters, Backspace, Ctrl-U (clear), Enter (done), Ctrl-C, Ctrl-D
/// on an empty line, and Esc (cancel).
fn edit(line: &mut String, key: &KeyEvent) -> Edit {
    if key.kind == KeyEventKind::Release {
        return Edit::Ignored;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Enter => Edit::Done,
        KeyCode::Esc => Edit::Cancel,
        KeyCode::Char('c') if ctrl => Edit::Cancel,
        KeyCode::Char('d') if ctrl && line.is_empty() => Edit::Cancel,
        KeyCode::Char('u') if ctrl => {
            line.clear();
            Edit::Changed
        }
        KeyCode::Char(_) if ctrl => Edit::Ignored,
        KeyCode::Char(c) => {
            line.push(c);
            Edit::Changed
        }
        KeyCode::Backspace => {
            line.pop();
            Edit::Changed
        }
        _ => Edit::Ignored,
    }
}

/// Ask for a secret: `question` on standard error, the answer typed without echo (nothing is
/// shown, as ssh and sudo do). Cancelled by Ctrl-C or Esc.
pub(crate) fn secret(question: &str) -> Result<String, Failure> {
    let mut err = std::io::stderr();
    let mut line = String::new();
    let outcome = (|| -> std::io::Result<Edit> {
        // Echo off before the question shows: an answer typed the moment it appears is not
        // echoed by the terminal before we read it.
        let _raw = RawMode::enter()?;
        write!(err, "{question}")?;
        err.flush()?;
        loop {
            if let Event::Key(key) = event::read()? {
                match edit(&mut line, &key) {
                    Edit::Done => return Ok(Edit::Done),
                    Edit::Cancel => return Ok(Edit::Cancel),
                    Edit::Changed | Edit::Ignored => {}
                }
            }
        }
    })();
    // The Enter typed was not echoed either: end the question's line.
    let _ = writeln!(err);
    match outcome {
        Ok(Edit::Done) if !line.is_empty() => Ok(line),
        Ok(Edit::Done) => Err(Failure {
            message: "no password typed".into(),
            code: 2,
        }),
        Ok(_) => Err(Failure {
            message: "cancelled".into(),
            code: 130,
        }),
        Err(e) => Err(Failure::from(format!("cannot read from the terminal: {e}"))),
    }
}

/// Ask for a short answer shown as typed (a one-time code): one line of standard input.
pub(crate) fn line(question: &str) -> Result<String, Failure> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let answer = answer.trim().to_owned();
    if answer.is_empty() {
        return Err(Failure {
            message: "no code typed".into(),
            code: 2,
        });
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn typing_edits_the_line_and_ctrl_c_cancels() {
        let mut line = String::new();
        for c in "pa$x".chars() {
            assert_eq!(
                edit(&mut line, &key(KeyCode::Char(c), KeyModifiers::NONE)),
                Edit::Changed
            );
        }
        edit(&mut line, &key(KeyCode::Backspace, KeyModifiers::NONE));
        edit(&mut line, &key(KeyCode::Char('S'), KeyModifiers::SHIFT));
        assert_eq!(line, "pa$S");
        assert_eq!(
            edit(&mut line, &key(KeyCode::Enter, KeyModifiers::NONE)),
            Edit::Done
        );
        edit(&mut line, &key(KeyCode::Char('u'), KeyModifiers::CONTROL));
        assert_eq!(line, "");
        assert_eq!(
            edit(&mut line, &key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Edit::Cancel
        );
        assert_eq!(
            edit(&mut line, &key(KeyCode::Char('d'), KeyModifiers::CONTROL)),
            Edit::Cancel
        );
    }
}
