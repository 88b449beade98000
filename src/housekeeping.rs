//! The housekeeping task (mini-redis's purge task, grown up): every turn it forgets
//! expired codes and idempotency keys, and sweeps the next slice of message histories
//! and limit records, so the store stays the size of what is live.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::store::{SharedStore, StoreError};
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
    store: SharedStore,
    message_retention: chrono::Duration,
    heartbeat: Heartbeat,
}

/// What one turn did.
#[derive(Debug, Default)]
struct Turn {
    codes: usize,
    modem_sends: usize,
    received: usize,
    events: usize,
    backlog_left: bool,
    idempotency_keys: usize,
    messages: usize,
    limits: usize,
}

impl Housekeeping {
    pub fn new(
        store: SharedStore,
        message_retention: std::time::Duration,
        heartbeat: Heartbeat,
    ) -> Self {
        Self {
            store,
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
            backlog = false;
            match self.turn().await {
                Ok(done) => {
                    backlog = done.backlog_left;
                    if done.codes
                        + done.idempotency_keys
                        + done.messages
                        + done.limits
                        + done.modem_sends
                        > 0
                    {
                        tracing::debug!(
                            codes = done.codes,
                            idempotency_keys = done.idempotency_keys,
                            message_histories = done.messages,
                            limit_records = done.limits,
                            modem_sends = done.modem_sends,
                            received_sms = done.received,
                            more_expired_codes = done.backlog_left,
                            "housekeeping removed expired records"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    }

    async fn turn(&self) -> Result<Turn, StoreError> {
        let mut done = Turn::default();
        let started = Instant::now();
        loop {
            let handled = self.store.purge_expired_codes(CODE_BATCH).await?;
            done.codes += handled;
            if handled < CODE_BATCH {
                break;
            }
            if started.elapsed() >= TURN_BUDGET {
                done.backlog_left = true;
                break;
            }
        }
        done.idempotency_keys = self.store.purge_idempotency().await?;
        done.messages = self
            .store
            .sweep_messages(SWEEP_SLICE, self.message_retention)
            .await?
            .removed;
        done.limits = self.store.sweep_limits(SWEEP_SLICE).await?.removed;
        done.modem_sends = self.store.purge_modem_sends(SWEEP_SLICE).await?;
        done.received = self
            .store
            .purge_received(self.message_retention, SWEEP_SLICE)
            .await?;
        done.events = self
            .store
            .purge_events(crate::store::EVENT_RETENTION)
            .await?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::otp::SecretKey;
    use crate::service::{Policy, SendRequest, TwoFactor};

    #[tokio::test]
    async fn a_turn_forgets_expired_codes_and_old_histories_but_keeps_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_bytes([3; 32]);
        let clock = Arc::new(crate::otp::ManualClock::default());
        let storage = crate::config::StorageConfig {
            path: dir.path().to_owned(),
            ..Default::default()
        };
        let store = crate::store::open(&storage, &Default::default(), &key, clock.clone())
            .await
            .unwrap();
        let policy = Policy {
            otp: crate::config::OtpConfig::default(),
            sms: crate::config::SmsConfig::default(),
        };
        let twofa = TwoFactor::new(
            store.clone(),
            crate::otp::CodeHasher::new(key),
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
        let claimed = store
            .claim_next(&|_| Some("m0".into()))
            .await
            .unwrap()
            .expect("a message to claim");
        store
            .mark_failed(&claimed.lease, Some("m0"), "refused")
            .await
            .unwrap();

        clock.advance(chrono::Duration::days(8));
        let housekeeping = Housekeeping::new(
            store.clone(),
            std::time::Duration::from_secs(7 * 86_400),
            Heartbeat::new(),
        );
        let done = housekeeping.turn().await.unwrap();
        assert_eq!((done.codes, done.backlog_left), (2, false));
        // The failed message's history goes; the one still queued stays.
        assert_eq!(done.messages, 1);
        assert_eq!(store.queue_depth().await.unwrap(), 1);
        // Both numbers' histories and the account budget no longer refuse anything.
        assert_eq!(done.limits, 3);
        assert_eq!(store.code_count().await.unwrap(), 0);
    }
}
