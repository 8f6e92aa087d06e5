//! The time svc-notify decides by: quiet hours, due deliveries, retries. The system's, or in
//! tests the system's shifted by a fixed offset — time still flows at its real pace, so queue
//! delays stay true, but a test can stand a minute before a quiet window ends in Tokyo.

use chrono::{DateTime, Utc};

/// A clock: the system time, shifted by a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    offset: chrono::Duration,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The system's time shifted so that it reads `at` now.
    pub fn reading(at: DateTime<Utc>) -> Clock {
        Clock {
            offset: at - Utc::now(),
        }
    }

    /// The time now, to the microsecond (as Postgres keeps it).
    pub fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        (Utc::now() + self.offset).trunc_subsecs(6)
    }

    /// The time left until `at`, zero if past.
    pub fn until(&self, at: DateTime<Utc>) -> std::time::Duration {
        (at - self.now()).to_std().unwrap_or_default()
    }
}
