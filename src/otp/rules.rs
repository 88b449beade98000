use chrono::{DateTime, Utc};

/// What the rules need to know about a stored code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeState {
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub max_attempts: u32,
}

/// The outcome of one verification attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    /// No live code: never sent, expired, or already used. One answer for all three,
    /// so a caller cannot tell which.
    NotFound,
    /// The code's attempts are used up; it cannot be verified any more.
    Exhausted,
    /// The right code: it is used up now.
    Approved,
    /// A wrong code; `remaining` tries are left.
    Wrong { remaining: u32 },
    /// Too many consecutive wrong codes for this number, across resends: refused
    /// before any code is looked at (see [`super::LockPolicy`]).
    NumberLocked { retry_after: chrono::Duration },
}

/// Decide an attempt. `code_matches` is evaluated only for a live code with tries left,
/// and only after the expiry check, so an expired code is never compared.
pub fn judge_attempt(
    state: Option<CodeState>,
    now: DateTime<Utc>,
    code_matches: impl FnOnce() -> bool,
) -> AttemptVerdict {
    let Some(state) = state else {
        return AttemptVerdict::NotFound;
    };
    if now >= state.expires_at {
        return AttemptVerdict::NotFound;
    }
    if state.attempts >= state.max_attempts {
        return AttemptVerdict::Exhausted;
    }
    if code_matches() {
        AttemptVerdict::Approved
    } else {
        AttemptVerdict::Wrong {
            remaining: state.max_attempts - state.attempts - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn state(attempts: u32) -> CodeState {
        CodeState {
            expires_at: Utc::now() + Duration::minutes(10),
            attempts,
            max_attempts: 3,
        }
    }

    #[test]
    fn verdicts() {
        let now = Utc::now();
        assert_eq!(judge_attempt(None, now, || true), AttemptVerdict::NotFound);
        assert_eq!(
            judge_attempt(Some(state(0)), now, || true),
            AttemptVerdict::Approved
        );
        assert_eq!(
            judge_attempt(Some(state(0)), now, || false),
            AttemptVerdict::Wrong { remaining: 2 }
        );
        assert_eq!(
            judge_attempt(Some(state(2)), now, || false),
            AttemptVerdict::Wrong { remaining: 0 }
        );
        assert_eq!(
            judge_attempt(Some(state(3)), now, || true),
            AttemptVerdict::Exhausted
        );
    }

    #[test]
    fn expired_code_is_not_found_and_never_compared() {
        let expired = CodeState {
            expires_at: Utc::now() - Duration::seconds(1),
            attempts: 0,
            max_attempts: 3,
        };
        let verdict = judge_attempt(Some(expired), Utc::now(), || {
            panic!("compared an expired code")
        });
        assert_eq!(verdict, AttemptVerdict::NotFound);
    }
}
