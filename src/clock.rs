//! The system clock, checked before anything dates a record: a clock set before 1970 is an
//! error at start, said in words, never a panic deep inside (chrono's `Utc::now` panics on it).

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "this computer's clock is set {secs} s before 1970: set the date (timedatectl set-ntp true, or date -s) and start again"
)]
pub struct ClockBefore1970 {
    pub secs: u64,
}

/// Whether `now` can be used as a date: after the Unix epoch.
pub fn check(now: SystemTime) -> Result<(), ClockBefore1970> {
    match now.duration_since(UNIX_EPOCH) {
        Ok(_) => Ok(()),
        Err(e) => Err(ClockBefore1970 {
            secs: e.duration().as_secs(),
        }),
    }
}

/// [`check`] on the system clock now.
pub fn check_system() -> Result<(), ClockBefore1970> {
    check(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_clock_before_1970_is_an_error_that_says_what_to_do() {
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        let err = check(before).expect_err("before 1970");
        assert_eq!(err.secs, 86_400);
        assert!(err.to_string().contains("set the date"), "{err}");
        assert!(check(UNIX_EPOCH + Duration::from_secs(1)).is_ok());
        assert!(
            check_system().is_ok(),
            "the test machine's clock is after 1970"
        );
    }
}
