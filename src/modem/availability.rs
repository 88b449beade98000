//! Whether a modem could take a message now: ready, or down for less than `[sms]
//! unavailable_after_secs` (a registration that drops for a few seconds, a dongle
//! being re-plugged), and never when it needs an operator.

use std::time::Duration;

use tokio::time::Instant;

use super::{state_name, ModemHandle, ModemState, ModemStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Ready or sending.
    Ready,
    /// Down, but for less than the allowed time: what is queued for it waits.
    Recovering { down_for: Duration },
    /// Needs an operator, or down too long; the reason is for operators (no number).
    Unavailable { reason: String },
}

impl Availability {
    /// Whether a message accepted now would be expected to go out through this modem.
    pub fn can_take_work(&self) -> bool {
        !matches!(self, Self::Unavailable { .. })
    }
}

/// The judgement, pure: the modem's `state`, how long it has been down, the allowed
/// time, and the last error it reported.
pub fn judge(
    state: ModemState,
    down_for: Duration,
    unavailable_after: Duration,
    last_error: Option<&str>,
) -> Availability {
    let why = |what: String| match last_error {
        Some(error) => format!("{what}: {error}"),
        None => what,
    };
    match state {
        ModemState::Ready | ModemState::Sending => Availability::Ready,
        ModemState::Fatal => Availability::Unavailable {
            reason: why("needs an operator".to_owned()),
        },
        ModemState::Connecting | ModemState::Searching if down_for < unavailable_after => {
            Availability::Recovering { down_for }
        }
        ModemState::Connecting | ModemState::Searching => Availability::Unavailable {
            reason: why(format!(
                "{} for {} s",
                state_name(state),
                down_for.as_secs()
            )),
        },
    }
}

impl ModemHandle {
    /// This modem's [`Availability`] at this moment.
    pub fn availability(&self) -> Availability {
        self.availability_of(&self.status.borrow())
    }

    /// The [`Availability`] that `status` (this modem's, already borrowed) means now.
    pub(super) fn availability_of(&self, status: &ModemStatus) -> Availability {
        let down_for = status
            .unready_since
            .map_or(Duration::ZERO, |since| Instant::now().duration_since(since));
        judge(
            status.state,
            down_for,
            self.unavailable_after,
            status.last_error.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    #[test]
    fn ready_and_sending_take_work() {
        for state in [ModemState::Ready, ModemState::Sending] {
            assert_eq!(
                judge(state, Duration::ZERO, LIMIT, None),
                Availability::Ready
            );
        }
    }

    #[test]
    fn a_modem_down_for_less_than_the_limit_still_counts() {
        for state in [ModemState::Connecting, ModemState::Searching] {
            let verdict = judge(state, Duration::from_secs(59), LIMIT, None);
            assert!(verdict.can_take_work(), "{verdict:?}");
            let verdict = judge(state, LIMIT, LIMIT, Some("not registered"));
            assert!(!verdict.can_take_work(), "{verdict:?}");
            let Availability::Unavailable { reason } = verdict else {
                unreachable!()
            };
            assert!(reason.contains("for 60 s") && reason.contains("not registered"));
        }
    }

    #[test]
    fn a_fatal_modem_never_counts() {
        let verdict = judge(
            ModemState::Fatal,
            Duration::ZERO,
            LIMIT,
            Some("the SIM refused the configured PIN"),
        );
        assert_eq!(
            verdict,
            Availability::Unavailable {
                reason: "needs an operator: the SIM refused the configured PIN".into()
            }
        );
    }
}
