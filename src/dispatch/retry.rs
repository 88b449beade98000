//! What to do after a send attempt: done, retry later (within the code's lifetime), or
//! give up.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::modem::SendError;
use crate::store::OutboundMessage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent(Vec<u8>),
    Retry { at: DateTime<Utc>, reason: String },
    Failed(String),
}

/// How many attempts a failure earns and how long to wait before the first retry
/// (doubling after each, up to `max_delay`), per kind of failure, in the style of
/// jasmin's per-error table: congestion clears in seconds, a lost network takes
/// longer and is better left to another modem, and an unanswered send is retried
/// sparingly because each retry may duplicate the SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub max_attempts: u32,
    pub first_delay: Duration,
}

const fn schedule(max_attempts: u32, first_delay_secs: u64) -> Schedule {
    Schedule {
        max_attempts,
        first_delay: Duration::from_secs(first_delay_secs),
    }
}

/// `+CMS ERROR` codes with a schedule of their own; other temporary codes get
/// [`OTHER_TEMPORARY`].
const CMS_SCHEDULES: &[(u16, Schedule)] = &[
    (41, schedule(10, 1)),  // temporary failure
    (42, schedule(10, 1)),  // congestion
    (47, schedule(10, 1)),  // resources unavailable
    (314, schedule(10, 1)), // SIM busy
    (38, schedule(6, 5)),   // network out of order
    (331, schedule(6, 5)),  // no network service
    (332, schedule(6, 5)),  // network timeout
];
const OTHER_TEMPORARY: Schedule = schedule(4, 2);
/// Nothing reached the modem: retrying cannot duplicate.
const NOT_SENT: Schedule = schedule(20, 1);
/// The modem never answered after the PDU: the SMS may be out already. Counted apart
/// from the message's other attempts: a retry that may duplicate is what this budget
/// limits, and a congestion answer earlier takes nothing from it.
const UNCONFIRMED: Schedule = schedule(3, 5);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub fn judge(
        &self,
        message: &OutboundMessage,
        result: &Result<Vec<u8>, SendError>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let error = match result {
            Ok(references) => return Outcome::Sent(references.clone()),
            Err(error) => error,
        };
        let reason = error.to_string();
        let schedule = match error {
            SendError::Encoding(_) => return Outcome::Failed(reason),
            SendError::Refused {
                permanent: true, ..
            } => return Outcome::Failed(reason),
            SendError::Refused { code, .. } => CMS_SCHEDULES
                .iter()
                .find(|(c, _)| c == code)
                .map_or(OTHER_TEMPORARY, |(_, s)| *s),
            SendError::NotSent(_) => NOT_SENT,
            SendError::Unconfirmed(_) => UNCONFIRMED,
        };
        let spent = match error {
            SendError::Unconfirmed(_) => message.unconfirmed + 1,
            _ => message.attempts,
        };
        if spent >= schedule.max_attempts {
            return Outcome::Failed(format!(
                "{reason} (gave up after {} attempts)",
                message.attempts
            ));
        }
        let exponent = message.attempts.saturating_sub(1).min(16);
        let delay = schedule
            .first_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        let at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        if at >= message.expires_at {
            return Outcome::Failed(format!(
                "{reason} (the code expires before another attempt)"
            ));
        }
        Outcome::Retry { at, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attempts: u32, expires_in_secs: i64) -> OutboundMessage {
        OutboundMessage {
            id: "SM1".into(),
            account: "AC1".into(),
            from: "+15550000000".into(),
            to: "+15551111111".into(),
            text: String::new(),
            expires_at: Utc::now() + chrono::Duration::seconds(expires_in_secs),
            attempts,
            unconfirmed: 0,
            last_modem: None,
        }
    }

    #[test]
    fn temporary_error_is_retried_with_growing_delay() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let err = Err(SendError::refused(500));
        let Outcome::Retry { at: first, .. } = policy.judge(&message(1, 600), &err, now) else {
            panic!("expected a retry")
        };
        let Outcome::Retry { at: third, .. } = policy.judge(&message(3, 600), &err, now) else {
            panic!("expected a retry")
        };
        assert_eq!(first - now, chrono::Duration::seconds(2));
        assert_eq!(third - now, chrono::Duration::seconds(8));
    }

    #[test]
    fn each_kind_of_failure_has_its_own_schedule() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let refused = |code| Err(SendError::refused(code));
        let delay = |attempts, result: &Result<Vec<u8>, SendError>| match policy.judge(
            &message(attempts, 3600),
            result,
            now,
        ) {
            Outcome::Retry { at, .. } => Some((at - now).num_seconds()),
            _ => None,
        };
        assert_eq!(delay(1, &refused(42)), Some(1), "congestion: retry soon");
        assert_eq!(delay(9, &refused(42)), Some(60), "capped at max_delay");
        assert_eq!(delay(10, &refused(42)), None, "10 attempts for congestion");
        assert_eq!(delay(1, &refused(331)), Some(5), "no network: wait longer");
        assert_eq!(delay(6, &refused(331)), None);
        assert_eq!(delay(4, &refused(500)), None, "unknown errors: 4 attempts");
        let unconfirmed = Err(SendError::Unconfirmed("silent".into()));
        assert_eq!(delay(1, &unconfirmed), Some(5));
        let judged = |attempts, unconfirmed_before| {
            let mut m = message(attempts, 3600);
            m.unconfirmed = unconfirmed_before;
            policy.judge(&m, &unconfirmed, now)
        };
        assert!(
            matches!(judged(3, 2), Outcome::Failed(_)),
            "each retry may duplicate: only 3"
        );
        assert!(
            matches!(judged(3, 0), Outcome::Retry { .. }),
            "two congestion answers before take nothing from that budget"
        );
        let not_sent = Err(SendError::NotSent("port gone".into()));
        assert_eq!(delay(19, &not_sent), Some(60));
    }

    #[test]
    fn permanent_error_fails_at_once() {
        let err = Err(SendError::refused(21));
        assert!(matches!(
            RetryPolicy::default().judge(&message(1, 600), &err, Utc::now()),
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn no_retry_past_the_codes_lifetime() {
        let err = Err(SendError::NotSent("port gone".into()));
        assert!(matches!(
            RetryPolicy::default().judge(&message(1, 1), &err, Utc::now()),
            Outcome::Failed(_)
        ));
    }
}
