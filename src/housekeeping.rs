//! The housekeeping task (mini-redis's purge task, grown up): every turn it forgets
//! expired codes and idempotency keys, and sweeps the next slice of message histories
//! and limit records, so the store stays the size of what is live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::otp::Clock;
use crate::store::{Store, StoreError};
use crate::systemd::Heartbeat;

/// Time between turns.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Expired codes removed per batch: small enough that a batch is a few milliseconds.
const CODE_BATCH: usize = 1_000;
/// How long one turn may remove expired codes. A larger backlog (after a long stop)
/// is worked off in further turns that start at once, with a heartbeat in between.
const TURN_BUDGET: Duration = Duration::from_secs(2);
/// Records of each swept tree looked at per turn: a full pass over a million
/// messages takes 100 turns, and a turn's slice costs milliseconds.
const SWEEP_SLICE: usize = 10_000;

pub struct Housekeeping {
    store: Store,
    clock: Arc<dyn Clock>,
    message_retention: chrono::Duration,
    heartbeat: Heartbeat,
}

/// Where the incremental sweeps stand between turns.
#[derive(Debug, Default, Clone)]
struct Cursors {
    messages: Vec<u8>,
    limits: Vec<u8>,
}

/// What one turn did.
#[derive(Debug, Default)]
struct Turn {
    codes: usize,
    backlog_left: bool,
    idempotency_keys: usize,
    messages: usize,
    limits: usize,
}

impl Housekeeping {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        message_retention: std::time::Duration,
        heartbeat: Heartbeat,
    ) -> Self {
        Self {
            store,
            clock,
            // Bounded to 3650 days by the config: always representable.
            message_retention: chrono::Duration::from_std(message_retention)
                .unwrap_or(chrono::Duration::MAX),
            heartbeat,
        }
    }

    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(INTERVAL);
        // After a long backlog, one turn is enough: not one per missed tick.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursors = Cursors::default();
        let mut backlog = false;
        loop {
            if !backlog {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
            } else if stop.is_cancelled() {
                return;
            }
            self.heartbeat.beat();
            let store = self.store.clone();
            let now = self.clock.now();
            let retention = self.message_retention;
            let from = cursors.clone();
            let outcome =
                tokio::task::spawn_blocking(move || turn(&store, now, retention, from)).await;
            backlog = false;
            match outcome {
                Ok(Ok((done, next))) => {
                    cursors = next;
                    backlog = done.backlog_left;
                    if done.codes + done.idempotency_keys + done.messages + done.limits > 0 {
                        tracing::debug!(
                            codes = done.codes,
                            idempotency_keys = done.idempotency_keys,
                            message_histories = done.messages,
                            limit_records = done.limits,
                            more_expired_codes = done.backlog_left,
                            "housekeeping removed expired records"
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
                Err(e) => tracing::warn!(error = %e, "the housekeeping task panicked"),
            }
        }
    }
}

fn turn(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
    message_retention: chrono::Duration,
    from: Cursors,
) -> Result<(Turn, Cursors), StoreError> {
    let mut done = Turn::default();
    let started = Instant::now();
    loop {
        let handled = store.purge_expired_batch(now, CODE_BATCH)?;
        done.codes += handled;
        if handled < CODE_BATCH {
            break;
        }
        if started.elapsed() >= TURN_BUDGET {
            done.backlog_left = true;
            break;
        }
    }
    done.idempotency_keys = store.purge_idempotency(now)?;
    let messages = store.sweep_messages(&from.messages, SWEEP_SLICE, now - message_retention)?;
    let limits = store.sweep_limits(&from.limits, SWEEP_SLICE, now)?;
    done.messages = messages.removed;
    done.limits = limits.removed;
    let next = Cursors {
        messages: messages.resume_at.unwrap_or_default(),
        limits: limits.resume_at.unwrap_or_default(),
    };
    Ok((done, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::SecretKey;
    use crate::service::{Policy, SendRequest, TwoFactor};

    #[tokio::test]
    async fn a_turn_forgets_expired_codes_and_old_histories_but_keeps_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_bytes([3; 32]);
        let store = Store::open(&dir.path().join("db"), &key).unwrap();
        let clock = Arc::new(crate::otp::ManualClock::default());
        let policy = Policy {
            otp: crate::config::OtpConfig::default(),
            sms: crate::config::SmsConfig::default(),
        };
        let twofa = TwoFactor::new(
            store.clone(),
            crate::otp::CodeHasher::new(key),
            clock.clone(),
            policy,
            Arc::new(tokio::sync::Notify::new()),
        );
        let request = |to: &str| SendRequest {
            service: crate::otp::ServiceName::parse("Login").unwrap(),
            from: crate::sms::PhoneNumber::parse("+15550000000").unwrap(),
            to: crate::sms::PhoneNumber::parse(to).unwrap(),
            body: crate::otp::Template::parse("code {code}").unwrap(),
        };
        twofa.send("AC1", &request("+15551111111")).await.unwrap();
        twofa.send("AC1", &request("+15552222222")).await.unwrap();
        let crate::store::Claim::Claimed { message, .. } = store
            .claim_next(clock.now(), |_| Some("m0".into()))
            .unwrap()
        else {
            panic!("nothing to claim")
        };
        store
            .mark_failed(&message.id, Some("m0"), "refused", clock.now())
            .unwrap();

        clock.advance(chrono::Duration::days(8));
        let (done, next) = turn(
            &store,
            clock.now(),
            chrono::Duration::days(7),
            Cursors::default(),
        )
        .unwrap();
        assert_eq!((done.codes, done.backlog_left), (2, false));
        // The failed message's history goes; the one still queued stays.
        assert_eq!(done.messages, 1);
        assert_eq!(store.queue_depth(), 1);
        // Both numbers' histories and the account budget no longer refuse anything.
        assert_eq!(done.limits, 3);
        assert!(next.messages.is_empty() && next.limits.is_empty());
        assert_eq!(store.code_count().unwrap(), 0);
    }
}
