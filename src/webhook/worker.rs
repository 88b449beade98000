//! One endpoint's delivery loop: take the endpoint (one host at a time), read the
//! events after its cursor, post each until it is delivered or a day has passed, and
//! move the cursor past it. In order: the next event waits for the one before.
//!
//! Nothing else waits for it: each endpoint has its own task, every wait also listens
//! for shutdown, and an attempt is cut off after [`super::post::TIMEOUT`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::post::{post, Attempt};
use super::retry::{Backoff, Next};
use super::Endpoint;
use crate::otp::Clock;
use crate::store::{EventCursor, SharedStore, StoredEvent};

/// How often an idle endpoint looks for new events.
const POLL: Duration = Duration::from_millis(500);
/// Events read at once.
const BATCH: usize = 64;
/// How often the pending gauge is counted (a count over the events table).
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// What `/metrics` shows of one endpoint.
#[derive(Debug, Default)]
pub struct EndpointStats {
    pub pending: AtomicU64,
    pub delivered: AtomicU64,
    /// Failed attempts (each retry of an event counts).
    pub failed: AtomicU64,
    /// Events given up after a day of retries.
    pub dropped: AtomicU64,
    /// The last attempt's HTTP status; 0 for no answer, -1 before any attempt.
    pub last_status: AtomicI64,
    /// A 410 disabled it until the next reload.
    pub disabled: AtomicBool,
}

impl EndpointStats {
    pub fn new() -> Self {
        Self {
            last_status: AtomicI64::new(-1),
            ..Self::default()
        }
    }
}

pub struct Worker {
    pub endpoint: Endpoint,
    pub store: SharedStore,
    pub client: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub node: String,
    /// How long this host holds the endpoint without renewing (the cluster lease).
    pub lease: chrono::Duration,
    pub backoff: Backoff,
    pub stats: Arc<EndpointStats>,
    /// While this host holds the endpoint: its cursor, and when the lease was renewed.
    pub held: std::sync::Mutex<Option<Hold>>,
}

/// The endpoint as this host holds it: the cursor is kept here between store writes
/// (only the holder moves it), and the lease is renewed every third of its length
/// rather than on every poll.
#[derive(Debug, Clone, Copy)]
pub struct Hold {
    cursor: EventCursor,
    renewed: std::time::Instant,
}

/// Why the loop ended early.
enum Stop {
    Shutdown,
    Gone,
}

impl Worker {
    pub async fn run(self, stop: CancellationToken) {
        let mut last_count: Option<std::time::Instant> = None;
        loop {
            if last_count.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                self.count_pending().await;
                last_count = Some(std::time::Instant::now());
            }
            match self.turn(&stop).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(Stop::Shutdown) => return,
                Err(Stop::Gone) => {
                    self.stats.disabled.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        endpoint = %self.endpoint.label,
                        "the webhook endpoint answered 410 Gone: disabled until the configuration is reloaded"
                    );
                    return;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Deliver what is there. `Ok(true)` when there may be more at once.
    async fn turn(&self, stop: &CancellationToken) -> Result<bool, Stop> {
        let endpoint = &self.endpoint;
        // Another host delivers this endpoint's events now, or the store is away.
        let Some(cursor) = self.hold().await else {
            return Ok(false);
        };
        let batch = match self
            .store
            .events_after(cursor, &endpoint.filter, BATCH)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.label, error = %e, "cannot read webhook events");
                return Ok(false);
            }
        };
        if batch.events.is_empty() {
            // Skip what this endpoint does not take, so it is not read again.
            return Ok(match batch.scanned_to {
                Some(scanned) => self.record(scanned).await,
                None => false,
            });
        }
        // The cursor is recorded once per batch, and before any wait for a retry: one
        // store write per batch rather than per event. A crash in between posts the
        // batch's delivered events again (at least once; the webhook-id tells).
        let mut delivered = None;
        for event in &batch.events {
            if let Err(stopped) = self.deliver(event, stop, delivered).await {
                if let Some(cursor) = delivered {
                    self.record(cursor).await;
                }
                return Err(stopped);
            }
            delivered = Some(event.cursor);
        }
        Ok(match delivered {
            Some(cursor) => self.record(cursor).await,
            None => false,
        })
    }

    /// Take the endpoint, or keep it (renewing the lease when a third of it has
    /// passed); its cursor while this host holds it.
    async fn hold(&self) -> Option<EventCursor> {
        let held = *self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let lease = self.lease.to_std().unwrap_or(Duration::from_secs(15));
        if let Some(hold) = held.filter(|h| h.renewed.elapsed() < lease / 3) {
            return Some(hold.cursor);
        }
        let endpoint = &self.endpoint;
        let claimed = self
            .store
            .claim_webhook(&endpoint.id, &self.node, self.lease)
            .await;
        let cursor = match claimed {
            // Held all along: nobody else moved the cursor.
            Ok(true) => match held.filter(|h| h.renewed.elapsed() < lease) {
                Some(hold) => Ok(hold.cursor),
                // Taken anew (or after the lease could have run out): the store's.
                None => self.store.webhook_cursor(&endpoint.id).await,
            },
            Ok(false) => {
                self.forget();
                return None;
            }
            Err(e) => Err(e),
        };
        match cursor {
            Ok(cursor) => {
                self.keep(cursor);
                Some(cursor)
            }
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.label, error = %e, "cannot take the webhook endpoint");
                self.forget();
                None
            }
        }
    }

    fn keep(&self, cursor: EventCursor) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = Some(Hold {
            cursor,
            renewed: std::time::Instant::now(),
        });
    }

    fn forget(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Move the endpoint's cursor; whether this host still holds it.
    async fn record(&self, cursor: EventCursor) -> bool {
        let endpoint = &self.endpoint;
        match self
            .store
            .advance_webhook(&endpoint.id, &self.node, cursor)
            .await
        {
            Ok(true) => {
                if let Some(hold) = self
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_mut()
                {
                    hold.cursor = cursor;
                }
                true
            }
            Ok(false) => {
                self.forget();
                false
            }
            Err(e) => {
                // Delivered but not recorded: delivered again later (at least once).
                tracing::warn!(endpoint = %endpoint.label, error = %e, "cannot record delivered webhooks");
                self.forget();
                false
            }
        }
    }

    /// Post `event` until it is delivered or dropped. `delivered_before` (the batch's
    /// progress) is recorded before the first wait for a retry.
    async fn deliver(
        &self,
        event: &StoredEvent,
        stop: &CancellationToken,
        mut delivered_before: Option<EventCursor>,
    ) -> Result<(), Stop> {
        let endpoint = &self.endpoint;
        let body = event.payload();
        let mut failures = 0u32;
        loop {
            let timestamp = self.clock.now().timestamp();
            let attempt = tokio::select! {
                () = stop.cancelled() => return Err(Stop::Shutdown),
                attempt = post(&self.client, endpoint, &event.id, timestamp, body.clone()) => attempt,
            };
            self.stats
                .last_status
                .store(i64::from(attempt.status()), Ordering::Relaxed);
            let reason = match attempt {
                Attempt::Delivered(_) => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .pending
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                            Some(p.saturating_sub(1))
                        })
                        .ok();
                    return Ok(());
                }
                Attempt::Gone => return Err(Stop::Gone),
                Attempt::Failed(_, reason) => reason,
            };
            failures += 1;
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            match self
                .backoff
                .judge(failures, event.created_at, self.clock.now())
            {
                Next::Drop => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        endpoint = %endpoint.label,
                        event = %event.id,
                        kind = event.kind.name(),
                        failures,
                        %reason,
                        "webhook event dropped: not delivered within a day"
                    );
                    return Ok(());
                }
                Next::RetryIn(delay) => {
                    if let Some(cursor) = delivered_before.take() {
                        self.record(cursor).await;
                    }
                    tracing::info!(
                        endpoint = %endpoint.label,
                        event = %event.id,
                        failures,
                        %reason,
                        retry_in_secs = delay.num_seconds(),
                        "webhook attempt failed; will retry"
                    );
                    self.wait(delay, stop).await?;
                }
            }
        }
    }

    /// Sleep `delay`, keeping the endpoint's lease, unless shutdown comes first.
    async fn wait(&self, delay: chrono::Duration, stop: &CancellationToken) -> Result<(), Stop> {
        let until = tokio::time::Instant::now() + delay.to_std().unwrap_or(Duration::ZERO);
        let renew_every = (self.lease / 3).to_std().unwrap_or(Duration::from_secs(5));
        loop {
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(());
            }
            let step = (until - now).min(renew_every);
            tokio::select! {
                () = stop.cancelled() => return Err(Stop::Shutdown),
                () = tokio::time::sleep(step) => {}
            }
            self.hold().await;
        }
    }

    async fn count_pending(&self) {
        let held = *self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let cursor = match held {
            Some(hold) => hold.cursor,
            None => match self.store.webhook_cursor(&self.endpoint.id).await {
                Ok(cursor) => cursor,
                Err(_) => return,
            },
        };
        if let Ok(pending) = self
            .store
            .events_pending(cursor, &self.endpoint.filter)
            .await
        {
            self.stats.pending.store(pending, Ordering::Relaxed);
        }
    }
}
