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

    /// Judge a send at `now` and, if allowed, record it in the number's history and
    /// the account's budget.
    pub fn admit(
        &self,
        now: DateTime<Utc>,
        number: &mut SendHistory,
        account: &mut AccountBudget,
    ) -> Result<(), SendRefusal> {
        self.check_number(now, number)?;
        account.tat_us = self.account_rate().admit(account.tat_us, now)?;
        self.record_number(now, number);
        Ok(())
    }

    /// The number's own limits (cooldown, then the daily cap), after forgetting sends
    /// older than a day. Records nothing.
    pub fn check_number(
        &self,
        now: DateTime<Utc>,
        number: &mut SendHistory,
    ) -> Result<(), SendRefusal> {
        let now_ms = now.timestamp_millis();
        number.forget_before(now_ms - Duration::days(1).num_milliseconds());
        if let Some(&last) = number.sends.last() {
            let free_at = last + self.cooldown.num_milliseconds();
            if now_ms < free_at {
                return Err(SendRefusal::Cooldown {
                    retry_after: Duration::milliseconds(free_at - now_ms),
                });
            }
        }
        let daily = self.daily();
        if number.sends.len() >= daily {
            // A slot frees when the send `daily` places from the end leaves the day.
            let oldest_counted = number.sends[number.sends.len() - daily];
            let free_at = oldest_counted + Duration::days(1).num_milliseconds();
            return Err(SendRefusal::NumberDailyCap {
                retry_after: Duration::milliseconds((free_at - now_ms).max(1000)),
            });
        }
        Ok(())
    }

    /// Count a send at `now` in the number's history.
    pub fn record_number(&self, now: DateTime<Utc>, number: &mut SendHistory) {
        number.sends.push(now.timestamp_millis());
        // Only the last `daily` sends can ever decide; older ones need not be kept.
        let excess = number.sends.len().saturating_sub(self.daily());
        number.sends.drain(..excess);
    }

    /// The account's send rate as a cell rate.
    pub fn account_rate(&self) -> Gcra {
        Gcra::per_minute(self.per_account_per_minute)
    }

    fn daily(&self) -> usize {
        usize::try_from(self.per_number_per_day).unwrap_or(usize::MAX)
    }
}

/// A generic cell rate algorithm: `per_minute` sends a minute in bursts of up to
/// `per_minute`, kept as one number (the theoretical arrival time of the next send).
/// A store may apply it in one conditional statement with these two parameters: a
/// send at `now` passes when `max(tat, now) - now <= tolerance`, and moves the state
/// to `max(tat, now) + interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval_us: i64,
    pub tolerance_us: i64,
}

impl Gcra {
    pub fn per_minute(per_minute: u32) -> Self {
        const WINDOW_US: i64 = 60_000_000;
        let interval_us = (WINDOW_US / i64::from(per_minute.max(1))).max(1);
        Self {
            interval_us,
            tolerance_us: WINDOW_US - interval_us,
        }
    }

    /// The new state if a send at `now` passes with the state at `tat_us`.
    pub fn admit(&self, tat_us: i64, now: DateTime<Utc>) -> Result<i64, SendRefusal> {
        let now_us = now.timestamp_micros();
        let tat = tat_us.max(now_us);
        if tat - now_us > self.tolerance_us {
            let wait_us = tat - now_us - self.tolerance_us;
            return Err(SendRefusal::AccountRate {
                retry_after: Duration::microseconds(wait_us),
            });
        }
        Ok(tat + self.interval_us)
    }
}

/// Times (Unix milliseconds) of the recent sends to one number, oldest first; never
/// more than the daily cap of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendHistory {
    pub sends: Vec<i64>,
}

impl SendHistory {
    fn forget_before(&mut self, horizon_ms: i64) {
        self.sends.retain(|&at| at > horizon_ms);
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    /// No send in the last day: the history can no longer refuse one.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let horizon_ms = (now - Duration::days(1)).timestamp_millis();
        self.sends.iter().all(|&at| at <= horizon_ms)
    }
}

/// An account's send rate as a generic cell rate algorithm (a token bucket kept as one
/// number): `limit` sends per minute, in bursts of up to `limit`. O(1) to check and to
/// store, however high the limit is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBudget {
    /// Theoretical arrival time of the next send, Unix microseconds.
    pub tat_us: i64,
}

impl AccountBudget {
    /// The whole burst is available again: the same as no record at all.
    pub fn is_full(&self, now: DateTime<Utc>) -> bool {
        self.tat_us <= now.timestamp_micros()
    }
}

/// Consecutive wrong codes for one (account, service, number), across resends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCount {
    pub consecutive: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl FailureCount {
    /// A lock that has run out: [`LockPolicy::locked`] would clear the count anyway.
    pub fn lock_ran_out(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until <= now)
    }
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
        let (mut number, mut account) = (SendHistory::default(), AccountBudget::default());
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
        let (mut number, mut account) = (SendHistory::default(), AccountBudget::default());
        for hour in 0..3 {
            let mut fresh_account = AccountBudget::default();
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
    fn account_rate_allows_a_burst_then_the_steady_rate() {
        // 5 per minute: one every 12 s, bursts of 5.
        let start = Utc::now();
        let mut account = AccountBudget::default();
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
        // The 5 sends used the budget up to t = 60 s; the burst allowance is 48 s.
        assert_eq!(
            refusal,
            SendRefusal::AccountRate {
                retry_after: Duration::seconds(2)
            }
        );
        assert!(number.is_empty(), "a refused send is not recorded");
        limits()
            .admit(start + Duration::seconds(12), &mut number, &mut account)
            .unwrap();
    }

    #[test]
    fn a_huge_limit_keeps_the_stored_state_small() {
        let limits = SendLimits {
            cooldown: Duration::zero(),
            per_number_per_day: 3,
            per_account_per_minute: 1_000_000,
        };
        let start = Utc::now();
        let (mut number, mut account) = (SendHistory::default(), AccountBudget::default());
        for i in 0..100 {
            limits
                .admit(start + Duration::hours(i * 9), &mut number, &mut account)
                .unwrap();
            assert!(number.sends.len() <= 3);
        }
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
