//! What a scope (account, service, number) holds — its live code, if any, and its
//! consecutive wrong codes, which outlive a code (they count across resends) — and how
//! each request changes it. Every backend loads a scope's state, applies one of these
//! under its own atomicity (a compare-and-swap, a row lock), and stores the result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::CodeRecord;
use crate::otp::{AttemptVerdict, CodeState, FailureCount, LockPolicy};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeState {
    #[serde(default)]
    pub code: Option<CodeRecord>,
    #[serde(default)]
    pub failures: FailureCount,
}

impl ScopeState {
    /// Nothing worth keeping: the record can go.
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.failures == FailureCount::default()
    }

    /// One verification attempt: a locked number is refused before any code is looked
    /// at; otherwise `judge` decides on the stored state and hash. Approval consumes
    /// the code and clears the failure count; a wrong code counts against both. An
    /// expired code is left for housekeeping, so that it costs the same work as an
    /// unknown one.
    pub fn attempt(
        &mut self,
        now: DateTime<Utc>,
        lock: &LockPolicy,
        judge: impl FnOnce(Option<CodeState>, &[u8; 32]) -> AttemptVerdict,
    ) -> AttemptVerdict {
        if let Some(retry_after) = lock.locked(now, &mut self.failures) {
            return AttemptVerdict::NumberLocked { retry_after };
        }
        let state = self.code.as_ref().map(|c| CodeState {
            expires_at: c.expires_at,
            attempts: c.attempts,
            max_attempts: c.max_attempts,
        });
        let hash = self.code.as_ref().map(|c| c.hash).unwrap_or([0; 32]);
        let verdict = judge(state, &hash);
        match (verdict, self.code.as_mut()) {
            (AttemptVerdict::Approved, Some(_)) => {
                self.code = None;
                self.failures = FailureCount::default();
            }
            (AttemptVerdict::Wrong { .. }, Some(code)) => {
                code.attempts += 1;
                lock.record_failure(now, &mut self.failures);
            }
            _ => {}
        }
        verdict
    }

    /// Drop the live code. Whether one was live.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> bool {
        self.code.take().is_some_and(|code| now < code.expires_at)
    }

    /// Clear the failure count. Whether the number was locked.
    pub fn unlock(&mut self, now: DateTime<Utc>, lock: &LockPolicy) -> bool {
        let mut count = std::mem::take(&mut self.failures);
        lock.locked(now, &mut count).is_some()
    }

    /// Housekeeping found the code expired: it goes, and a lock that has run out with
    /// it (a count below the threshold stays: forgetting it would forgive guesses).
    pub fn purge_code(&mut self, now: DateTime<Utc>) {
        self.code = None;
        if self.failures.lock_ran_out(now) {
            self.failures = FailureCount::default();
        }
    }
}
