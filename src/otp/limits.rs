//! Abuse limits, as pure functions of what was stored: send rate limits against SMS
//! pumping and inbox bombing, and the per-number lock against guessing across resends.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::OtpConfig;

/// Why a send was refused, and when it may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// A code went to this number less than `resend_cooldown_secs` ago.
    Cooldown { retry_after: Duration },
    /// `max_sends_per_number_per_day` codes went to this number in the last 24 h.
    NumberDailyCap { retry_after: Duration },
    /// The account sent `max_sends_per_account_per_minute` codes in the last minute.
    AccountRate { retry_after: Duration },
    /// Too many consecutive wrong codes: the number is locked.
    NumberLocked { retry_after: Duration },
}

impl SendRefusal {
    pub fn retry_after(&self) -> Duration {
        match *self {
            Self::Cooldown { retry_after }
            | Self::NumberDailyCap { retry_after }
            | Self::AccountRate { retry_after }
            | Self::NumberLocked { retry_after } => retry_after,
        }
    }
}

/// The send limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    pub cooldown: Duration,
    pub per_number_per_day: u32,
    pub per_account_per_minute: u32,
}

impl SendLimits {
    pub fn from_config(otp: &OtpConfig) -> Self {
        Self {
            cooldown: seconds(otp.resend_cooldown_secs),
            per_number_per_day: otp.max_sends_per_number_per_day,
            per_account_per_minute: otp.max_sends_per_account_per_minute,
        }
    }

    /// Judge a send at `now` and, if allowed, record it in both histories.
    pub fn admit(
        &self,
        now: DateTime<Utc>,
        number: &mut SendHistory,
        account: &mut SendHistory,
    ) -> Result<(), SendRefusal> {
        number.forget_before(now - Duration::days(1));
        account.forget_before(now - Duration::minutes(1));
        if let Some(&last) = number.sends.last() {
            let free_at = last + self.cooldown;
            if now < free_at {
                return Err(SendRefusal::Cooldown {
                    retry_after: free_at - now,
                });
            }
        }
        if let Some(retry_after) = window_full(
            now,
            &number.sends,
            self.per_number_per_day,
            Duration::days(1),
        ) {
            return Err(SendRefusal::NumberDailyCap { retry_after });
        }
        if let Some(retry_after) = window_full(
            now,
            &account.sends,
            self.per_account_per_minute,
            Duration::minutes(1),
        ) {
            return Err(SendRefusal::AccountRate { retry_after });
        }
        number.sends.push(now);
        account.sends.push(now);
        Ok(())
    }
}

/// When a sliding window of `limit` sends frees a slot, if it is full now.
fn window_full(
    now: DateTime<Utc>,
    sends: &[DateTime<Utc>],
    limit: u32,
    window: Duration,
) -> Option<Duration> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if sends.len() < limit {
        return None;
    }
    // The slot frees when the send `limit` places from the end leaves the window.
    let oldest_counted = sends[sends.len() - limit];
    Some((oldest_counted + window - now).max(Duration::seconds(1)))
}

/// Times of recent sends (to one number, or by one account), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendHistory {
    pub sends: Vec<DateTime<Utc>>,
}

impl SendHistory {
    fn forget_before(&mut self, horizon: DateTime<Utc>) {
        self.sends.retain(|&at| at > horizon);
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }
}

/// Consecutive wrong codes for one (account, service, number), across resends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCount {
    pub consecutive: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// The per-number lock rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    pub max_failures: u32,
    pub lock_for: Duration,
}

impl LockPolicy {
    pub fn from_config(otp: &OtpConfig) -> Self {
        Self {
            max_failures: otp.max_failures_per_number,
            lock_for: seconds(otp.lock_secs),
        }
    }

    /// How long the number stays locked, if it is locked at `now`. A lock that has run
    /// out clears the count, so the user starts afresh.
    pub fn locked(&self, now: DateTime<Utc>, count: &mut FailureCount) -> Option<Duration> {
        match count.locked_until {
            Some(until) if now < until => Some(until - now),
            Some(_) => {
                *count = FailureCount::default();
                None
            }
            None => None,
        }
    }

    /// Count a wrong code; locks the number when the count reaches the limit.
    pub fn record_failure(&self, now: DateTime<Utc>, count: &mut FailureCount) {
        count.consecutive = count.consecutive.saturating_add(1);
        if count.consecutive >= self.max_failures {
            count.locked_until = Some(now + self.lock_for);
        }
    }
}

/// Whether `number` (E.164) may receive codes under the allow-list.
pub fn destination_allowed(allowed_prefixes: &[String], number: &str) -> bool {
    allowed_prefixes.is_empty()
        || allowed_prefixes
            .iter()
            .any(|prefix| number.starts_with(prefix.as_str()))
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SendLimits {
        SendLimits {
            cooldown: Duration::seconds(30),
            per_number_per_day: 3,
            per_account_per_minute: 5,
        }
    }

    #[test]
    fn cooldown_gives_the_exact_wait() {
        let start = Utc::now();
        let (mut number, mut account) = (SendHistory::default(), SendHistory::default());
        limits().admit(start, &mut number, &mut account).unwrap();
        let refusal = limits()
            .admit(start + Duration::seconds(10), &mut number, &mut account)
            .unwrap_err();
        assert_eq!(
            refusal,
            SendRefusal::Cooldown {
                retry_after: Duration::seconds(20)
            }
        );
        limits()
            .admit(start + Duration::seconds(30), &mut number, &mut account)
            .unwrap();
    }

    #[test]
    fn daily_cap_frees_a_slot_24h_after_the_oldest_counted_send() {
        let start = Utc::now();
        let (mut number, mut account) = (SendHistory::default(), SendHistory::default());
        for hour in 0..3 {
            let mut fresh_account = SendHistory::default();
            limits()
                .admit(
                    start + Duration::hours(hour),
                    &mut number,
                    &mut fresh_account,
                )
                .unwrap();
        }
        let refusal = limits()
            .admit(start + Duration::hours(5), &mut number, &mut account)
            .unwrap_err();
        assert_eq!(
            refusal,
            SendRefusal::NumberDailyCap {
                retry_after: Duration::hours(19)
            }
        );
        limits()
            .admit(
                start + Duration::hours(24) + Duration::seconds(1),
                &mut number,
                &mut account,
            )
            .unwrap();
    }

    #[test]
    fn account_rate_is_a_sliding_minute() {
        let start = Utc::now();
        let mut account = SendHistory::default();
        for i in 0..5 {
            let mut number = SendHistory::default();
            limits()
                .admit(start + Duration::seconds(i), &mut number, &mut account)
                .unwrap();
        }
        let mut number = SendHistory::default();
        let refusal = limits()
            .admit(start + Duration::seconds(10), &mut number, &mut account)
            .unwrap_err();
        assert_eq!(
            refusal,
            SendRefusal::AccountRate {
                retry_after: Duration::seconds(50)
            }
        );
        assert!(number.is_empty(), "a refused send is not recorded");
    }

    #[test]
    fn number_locks_after_max_failures_and_unlocks_after_lock_for() {
        let policy = LockPolicy {
            max_failures: 3,
            lock_for: Duration::minutes(60),
        };
        let now = Utc::now();
        let mut count = FailureCount::default();
        for _ in 0..2 {
            policy.record_failure(now, &mut count);
            assert_eq!(policy.locked(now, &mut count), None);
        }
        policy.record_failure(now, &mut count);
        assert_eq!(policy.locked(now, &mut count), Some(Duration::minutes(60)));
        assert_eq!(policy.locked(now + Duration::minutes(60), &mut count), None);
        assert_eq!(
            count,
            FailureCount::default(),
            "an expired lock starts afresh"
        );
    }

    #[test]
    fn allow_list() {
        let prefixes = vec!["+1".to_owned(), "+44".to_owned()];
        assert!(destination_allowed(&prefixes, "+13216549878"));
        assert!(destination_allowed(&prefixes, "+447700900123"));
        assert!(!destination_allowed(&prefixes, "+4915112345678"));
        assert!(destination_allowed(&[], "+4915112345678"));
    }
}
