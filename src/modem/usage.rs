//! Per-SIM caps and pacing: carriers block SIMs that send too much (users report caps
//! like 500 SMS a day), so each `[[modem]]` may have `max_sms_per_day` (rolling 24 h),
//! `max_sms_per_hour` and `min_interval_ms` between two sends. A modem at its cap, or
//! inside its interval, takes no work; others do.
//!
//! Counted are SMS as the carrier counts them: parts. A multi-part message begun under
//! the cap is sent whole. The sends themselves are in the store (written with the
//! message's `sent` step), so the counts survive a restart: [`Usage::load`] takes them
//! back at start.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

const DAY: chrono::Duration = chrono::Duration::hours(24);
const HOUR: chrono::Duration = chrono::Duration::hours(1);

/// The caps of one modem, from its `[[modem]]` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub per_day: Option<u32>,
    pub per_hour: Option<u32>,
    pub min_interval: Duration,
}

/// Why a modem takes no work now, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// At a cap: no more until `until` (the oldest counted send leaves the window).
    Capped {
        window: &'static str,
        cap: u32,
        until: DateTime<Utc>,
    },
    /// Inside `min_interval_ms` of the last send.
    Pacing { until: DateTime<Utc> },
}

impl Held {
    pub fn until(&self) -> DateTime<Utc> {
        match self {
            Self::Capped { until, .. } | Self::Pacing { until } => *until,
        }
    }

    /// For operators: "at its cap of 500 SMS per day until 14:02:11 UTC".
    pub fn describe(&self) -> String {
        match self {
            Self::Capped { window, cap, until } => format!(
                "at its cap of {cap} SMS per {window} until {}",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            Self::Pacing { until } => format!("pacing until {}", until.format("%H:%M:%S%.3f UTC")),
        }
    }
}

/// The sends of one modem in the last 24 h, and its caps.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    caps: Caps,
    /// (when, parts), oldest first.
    sends: VecDeque<(DateTime<Utc>, u32)>,
}

impl Usage {
    pub fn new(caps: Caps) -> Self {
        Self {
            caps,
            sends: VecDeque::new(),
        }
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// The sends the store holds for this modem (any order).
    pub fn load(&mut self, mut sends: Vec<(DateTime<Utc>, u32)>) {
        sends.sort_by_key(|(at, _)| *at);
        self.sends = sends.into();
    }

    pub fn record(&mut self, at: DateTime<Utc>, parts: u32) {
        self.sends.push_back((at, parts));
    }

    fn forget_before(&mut self, now: DateTime<Utc>) {
        while self.sends.front().is_some_and(|(at, _)| *at <= now - DAY) {
            self.sends.pop_front();
        }
    }

    /// SMS (parts) sent in the last 24 hours and the last hour.
    pub fn counts(&mut self, now: DateTime<Utc>) -> (u64, u64) {
        self.forget_before(now);
        let since = |window: chrono::Duration| {
            self.sends
                .iter()
                .filter(|(at, _)| *at > now - window)
                .map(|(_, parts)| u64::from(*parts))
                .sum::<u64>()
        };
        (since(DAY), since(HOUR))
    }

    /// Whether the modem is held at `now`, and why; the cap before the pacing.
    pub fn held(&mut self, now: DateTime<Utc>) -> Option<Held> {
        self.capped(now).or_else(|| {
            let interval = chrono::Duration::from_std(self.caps.min_interval).ok()?;
            let (last, _) = self.sends.back()?;
            let until = *last + interval;
            (now < until).then_some(Held::Pacing { until })
        })
    }

    /// Whether the modem is at one of its caps (pacing aside).
    pub fn capped(&mut self, now: DateTime<Utc>) -> Option<Held> {
        self.forget_before(now);
        for (window, length, cap) in [
            ("day", DAY, self.caps.per_day),
            ("hour", HOUR, self.caps.per_hour),
        ] {
            let Some(cap) = cap else { continue };
            let in_window: Vec<&(DateTime<Utc>, u32)> = self
                .sends
                .iter()
                .filter(|(at, _)| *at > now - length)
                .collect();
            let mut counted: u64 = in_window.iter().map(|(_, parts)| u64::from(*parts)).sum();
            if counted < u64::from(cap) {
                continue;
            }
            // Under the cap again once enough of the oldest sends have left the window.
            let mut until = now;
            for (at, parts) in in_window {
                counted -= u64::from(*parts);
                until = *at + length;
                if counted < u64::from(cap) {
                    break;
                }
            }
            return Some(Held::Capped { window, cap, until });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
            + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn a_daily_cap_holds_until_the_oldest_send_leaves_the_rolling_day() {
        let mut usage = Usage::new(Caps {
            per_day: Some(3),
            ..Caps::default()
        });
        usage.record(at(0), 1);
        usage.record(at(10), 1);
        assert_eq!(usage.held(at(11)), None);
        usage.record(at(20), 1);
        assert_eq!(
            usage.held(at(21)),
            Some(Held::Capped {
                window: "day",
                cap: 3,
                until: at(24 * 60)
            })
        );
        assert_eq!(usage.counts(at(21)), (3, 3));
        // The first send leaves the window: one more may go.
        assert_eq!(usage.held(at(24 * 60 + 1)), None);
        assert_eq!(usage.counts(at(24 * 60 + 1)), (2, 0));
    }

    #[test]
    fn parts_count_and_the_hourly_cap_applies_too() {
        let mut usage = Usage::new(Caps {
            per_day: Some(100),
            per_hour: Some(4),
            ..Caps::default()
        });
        usage.record(at(0), 3);
        assert_eq!(usage.held(at(1)), None);
        usage.record(at(5), 2);
        let held = usage.held(at(6)).expect("held");
        // 5 parts in the hour; under 4 again once the 3-part send has left it.
        assert_eq!(held.until(), at(60));
        assert!(
            held.describe().contains("4 SMS per hour"),
            "{}",
            held.describe()
        );
        assert_eq!(usage.held(at(59)).map(|h| h.until()), Some(at(60)));
        assert_eq!(usage.held(at(61)), None);
    }

    #[test]
    fn pacing_holds_for_the_interval_after_the_last_send() {
        let mut usage = Usage::new(Caps {
            min_interval: Duration::from_secs(90),
            ..Caps::default()
        });
        assert_eq!(usage.held(at(0)), None);
        usage.record(at(0), 1);
        assert_eq!(
            usage.held(at(1)),
            Some(Held::Pacing {
                until: at(0) + chrono::Duration::seconds(90)
            })
        );
        assert_eq!(usage.held(at(2)), None);
        assert_eq!(usage.capped(at(1)), None, "pacing is not a cap");
    }

    #[test]
    fn loaded_history_counts_like_recorded_sends() {
        let mut usage = Usage::new(Caps {
            per_day: Some(2),
            ..Caps::default()
        });
        usage.load(vec![(at(30), 1), (at(-24 * 60 - 5), 1), (at(10), 1)]);
        assert_eq!(
            usage.counts(at(31)),
            (2, 2),
            "the send older than a day is gone"
        );
        assert!(usage.held(at(31)).is_some());
    }
}
