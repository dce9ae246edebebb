//! Time as an input: the engine reads the time from a [`Clock`], so tests can
//! move it.
//!
//! Does not know: anything else in cartwright.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long to wait before retry `attempt` (1 for the first retry) of a
/// command that lost to a concurrent one: a random duration of up to 1 ms,
/// doubling with each retry up to `2^max_doublings` ms (full jitter), so
/// contenders spread out instead of colliding again in step. Zero for
/// attempt 0.
pub(crate) fn retry_backoff(attempt: u32, max_doublings: u32) -> std::time::Duration {
    if attempt == 0 {
        return std::time::Duration::ZERO;
    }
    let cap_micros = 1_000_u64 << attempt.saturating_sub(1).min(max_doublings);
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    std::time::Duration::from_micros(random % (cap_micros + 1))
}

#[cfg(test)]
mod backoff_tests {
    use super::retry_backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_then_stops_growing() {
        assert_eq!(retry_backoff(0, 5), Duration::ZERO);
        for _ in 0..200 {
            assert!(retry_backoff(1, 5) <= Duration::from_millis(1));
            assert!(retry_backoff(3, 5) <= Duration::from_millis(4));
            assert!(retry_backoff(40, 5) <= Duration::from_millis(32));
            assert!(retry_backoff(40, 4) <= Duration::from_millis(16));
        }
    }
}
