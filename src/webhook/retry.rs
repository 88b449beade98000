//! When to try an event again, as a pure decision: 5 s, doubling to an hour between
//! attempts, for a day after the event; then it is dropped.

use chrono::{DateTime, Duration, Utc};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryIn(Duration),
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub longest: Duration,
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::seconds(5),
            longest: Duration::hours(1),
            give_up_after: Duration::hours(24),
        }
    }
}

impl Backoff {
    /// After the `failures`th failed attempt (1 for the first) of an event written at
    /// `since`, at `now`.
    pub fn judge(&self, failures: u32, since: DateTime<Utc>, now: DateTime<Utc>) -> Next {
        if now - since >= self.give_up_after {
            return Next::Drop;
        }
        let doublings = failures.saturating_sub(1).min(20);
        let delay = self
            .first
            .checked_mul(1 << doublings)
            .unwrap_or(self.longest)
            .min(self.longest);
        Next::RetryIn(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_seconds_doubling_to_an_hour_for_a_day() {
        let backoff = Backoff::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let delays: Vec<Next> = (1..=12).map(|n| backoff.judge(n, t0, t0)).collect();
        let seconds: Vec<i64> = delays
            .iter()
            .map(|next| match next {
                Next::RetryIn(d) => d.num_seconds(),
                Next::Drop => -1,
            })
            .collect();
        assert_eq!(
            seconds,
            vec![5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(
            backoff.judge(40, t0, t0 + Duration::hours(23)),
            Next::RetryIn(Duration::hours(1))
        );
        assert_eq!(backoff.judge(41, t0, t0 + Duration::hours(24)), Next::Drop);
        assert_eq!(
            backoff.judge(u32::MAX, t0, t0),
            Next::RetryIn(Duration::hours(1))
        );
    }
}
