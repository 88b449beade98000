use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from, so expiry can be tested without waiting.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// How far this clock runs ahead of real time. A store that takes its time from a
    /// database server adds it to the server's `now()`, so tests move both clocks.
    fn shift(&self) -> Duration {
        Duration::zero()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Real time plus an offset that a test moves forward by hand: time still passes (so
/// retries fall due), and a test can jump over a lifetime or a cooldown at once.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self
            .offset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *offset += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.shift()
    }

    fn shift(&self) -> Duration {
        *self
            .offset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
