//! What to do after a send attempt: done, retry later (within the code's lifetime), or
//! give up.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::at::{classify_cms, CmsClass};
use crate::modem::SendError;
use crate::store::OutboundMessage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent(Vec<u8>),
    Retry { at: DateTime<Utc>, reason: String },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_attempts: 8,
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
        match error {
            SendError::Encoding(_) => return Outcome::Failed(reason),
            SendError::Refused { code, .. } if classify_cms(*code) == CmsClass::Permanent => {
                return Outcome::Failed(reason)
            }
            _ => {}
        }
        if message.attempts >= self.max_attempts {
            return Outcome::Failed(format!(
                "{reason} (gave up after {} attempts)",
                message.attempts
            ));
        }
        let exponent = message.attempts.saturating_sub(1).min(16);
        let delay = self
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
            last_modem: None,
        }
    }

    #[test]
    fn temporary_error_is_retried_with_growing_delay() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let err = Err(SendError::Refused {
            code: 500,
            detail: String::new(),
        });
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
    fn permanent_error_fails_at_once() {
        let err = Err(SendError::Refused {
            code: 21,
            detail: String::new(),
        });
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
