//! Whether a modem could take a message now: ready, or down for less than `[sms]
//! unavailable_after_secs` (a registration that drops for a few seconds, a dongle
//! being re-plugged), and never when it needs an operator.

use std::time::Duration;

use tokio::time::Instant;

use super::{state_name, Held, ModemHandle, ModemState, ModemStatus};

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
    capped: Option<&Held>,
) -> Availability {
    if let Some(held) = capped {
        return Availability::Unavailable {
            reason: held.describe(),
        };
    }
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
        let capped = self.usage().capped(chrono::Utc::now());
        judge(
            status.state,
            down_for,
            self.unavailable_after,
            status.last_error.as_deref(),
            capped.as_ref(),
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
                judge(state, Duration::ZERO, LIMIT, None, None),
                Availability::Ready
            );
        }
    }

    #[test]
    fn a_modem_down_for_less_than_the_limit_still_counts() {
        for state in [ModemState::Connecting, ModemState::Searching] {
            let verdict = judge(state, Duration::from_secs(59), LIMIT, None, None);
            assert!(verdict.can_take_work(), "{verdict:?}");
            let verdict = judge(state, LIMIT, LIMIT, Some("not registered"), None);
            assert!(!verdict.can_take_work(), "{verdict:?}");
            let Availability::Unavailable { reason } = verdict else {
                unreachable!()
            };
            assert!(reason.contains("for 60 s") && reason.contains("not registered"));
        }
    }

    #[test]
    fn a_ready_modem_at_its_cap_does_not_count() {
        let held = Held::Capped {
            window: "day",
            cap: 500,
            until: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        let verdict = judge(ModemState::Ready, Duration::ZERO, LIMIT, None, Some(&held));
        let Availability::Unavailable { reason } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(reason.contains("cap of 500 SMS per day"), "{reason}");
    }

    #[test]
    fn a_fatal_modem_never_counts() {
        let verdict = judge(
            ModemState::Fatal,
            Duration::ZERO,
            LIMIT,
            Some("the SIM refused the configured PIN"),
            None,
        );
        assert_eq!(
            verdict,
            Availability::Unavailable {
                reason: "needs an operator: the SIM refused the configured PIN".into()
            }
        );
    }
}
