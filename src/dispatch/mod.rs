//! The outbox worker: claims due messages, routes each to a ready modem, records the
//! outcome, and schedules retries for temporary failures within the code's lifetime.

mod retry;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::modem::{DeliveryReport, Held, ModemHandle, ModemState, SendError, SendJob};
use crate::otp::Clock;
use crate::sms::PhoneNumber;
use crate::store::{
    Claimed, Lease, OutboundMessage, ReportOutcome, SharedStore, Store, StoreError,
};
use crate::systemd::Heartbeat;

pub use retry::{Outcome, RetryPolicy};

/// Longest the worker sleeps without looking at the queue (covers clock jumps).
pub const MAX_IDLE: Duration = Duration::from_secs(5);
/// How long shutdown waits for sends in flight to report back.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(25);
/// How often expired leases (of hosts that died mid-send) are looked for.
const RECLAIM_EVERY: Duration = Duration::from_secs(2);
/// How long a report that matches no sent part is kept in case its send is recorded
/// just after it, and how many are kept.
const EARLY_REPORT_PATIENCE: Duration = Duration::from_secs(60);
const EARLY_REPORTS_MAX: usize = 256;
/// How long a report the store could not take is tried again.
const STORE_OUTAGE_PATIENCE: Duration = Duration::from_secs(600);

pub struct Dispatcher {
    store: SharedStore,
    modems: Vec<ModemHandle>,
    /// Notified when a message is queued or a modem changes state.
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    /// Reports that arrived before their send was recorded (a fast network can answer
    /// `+CDS` within milliseconds of `+CMGS`): matched again after each recorded send.
    early_reports: std::sync::Mutex<Vec<(tokio::time::Instant, DeliveryReport)>>,
    heartbeat: Heartbeat,
    /// How often a claim's lease is renewed while its modem works on it.
    renew_every: Duration,
}

struct Finished {
    modem_index: usize,
    message: OutboundMessage,
    lease: Lease,
    result: Result<Vec<u8>, SendError>,
}

impl Dispatcher {
    pub fn new(
        store: SharedStore,
        modems: Vec<ModemHandle>,
        wake: Arc<Notify>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            modems,
            wake,
            clock,
            policy: RetryPolicy::default(),
            early_reports: std::sync::Mutex::new(Vec::new()),
            heartbeat: Heartbeat::new(),
            renew_every: Duration::from_secs(5),
        }
    }

    /// Renew leases a third of `lease` apart, so that two renewals can fail before
    /// another host may take the message over.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.renew_every = (lease / 3).max(Duration::from_millis(100));
        self
    }

    /// The heartbeat this loop beats once per turn (for the systemd watchdog).
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Hand out due messages and record what comes back, including the delivery reports
    /// the modem tasks forward on `reports`, until `shutdown`. A store that is away
    /// (a database restarting or failing over) stops nothing: the loop waits, with
    /// backoff, and sends that came back meanwhile are recorded once it answers.
    pub async fn run(
        self,
        mut reports: mpsc::UnboundedReceiver<DeliveryReport>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Backoff::default();
        loop {
            match self.store.requeue_abandoned().await {
                Ok(0) => break,
                Ok(requeued) => {
                    tracing::warn!(
                        requeued,
                        "messages left in `sending` by the last run are queued again"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for messages the last run left; retrying");
                    if sleep_or_stop(&shutdown, backoff.next()).await {
                        return;
                    }
                }
            }
        }
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        let mut busy = vec![false; self.modems.len()];
        let mut unrecorded = std::collections::VecDeque::new();
        let mut next_reclaim = tokio::time::Instant::now();
        loop {
            self.heartbeat.beat();
            let turn = self
                .turn(&mut busy, &done_tx, &mut unrecorded, &mut next_reclaim)
                .await;
            let sleep_for = match turn {
                Ok(sleep_for) => {
                    backoff.reset();
                    sleep_for
                }
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(error = %e, retry_in = ?wait, unrecorded = unrecorded.len(), "the dispatcher cannot reach the store");
                    wait
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep_for) => {}
                Some(finished) = done_rx.recv() => {
                    busy[finished.modem_index] = false;
                    self.count_against_caps(&finished);
                    // The modem's next message is claimed while this one is recorded:
                    // on a database the two round-trip chains overlap instead of
                    // adding up. (A crash in between leaves this one `submitting`, as a
                    // crash before its record always did.)
                    let (recorded, handed_out) = tokio::join!(
                        self.record(&finished),
                        self.hand_out(&mut busy, &done_tx)
                    );
                    if let Err(e) = recorded {
                        tracing::warn!(error = %e, message_id = %finished.message.id, "cannot record a send yet; will retry");
                        unrecorded.push_back(finished);
                    }
                    if let Err(e) = handed_out {
                        tracing::warn!(error = %e, "cannot hand out work; will retry");
                    }
                }
                Some(report) = reports.recv() => {
                    if let Err(e) = self.record_report(report.clone()).await {
                        tracing::warn!(error = %e, "cannot record a delivery report yet; will retry");
                        self.park(tokio::time::Instant::now(), report);
                    }
                }
            }
        }
        // Record the sends still in flight (the modem tasks finish them, bounded by
        // their send timeout); any not back by the deadline stay claimed and are queued
        // again at the next start (or by another host when their lease runs out).
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
        while busy.iter().any(|&b| b) {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(finished)) => {
                    busy[finished.modem_index] = false;
                    self.count_against_caps(&finished);
                    unrecorded.push_back(finished);
                }
                _ => break,
            }
        }
        for finished in unrecorded {
            if let Err(e) = self.record(&finished).await {
                tracing::warn!(error = %e, message_id = %finished.message.id, "a send could not be recorded before stopping; it will be queued again");
            }
        }
    }

    /// One turn: record what could not be recorded before, put back other hosts'
    /// expired claims (every [`RECLAIM_EVERY`]), and hand out work. Returns how long
    /// to wait for the next due message.
    async fn turn(
        &self,
        busy: &mut [bool],
        done: &mpsc::UnboundedSender<Finished>,
        unrecorded: &mut std::collections::VecDeque<Finished>,
        next_reclaim: &mut tokio::time::Instant,
    ) -> Result<Duration, StoreError> {
        while let Some(finished) = unrecorded.front() {
            self.record(finished).await?;
            unrecorded.pop_front();
        }
        if tokio::time::Instant::now() >= *next_reclaim {
            let reclaimed = self.store.reclaim_expired().await?;
            if reclaimed > 0 {
                tracing::warn!(
                    reclaimed,
                    "messages whose host stopped renewing its lease are queued again"
                );
            }
            *next_reclaim = tokio::time::Instant::now() + RECLAIM_EVERY;
        }
        self.hand_out(busy, done).await?;
        let next_due = self.store.next_due().await?;
        let wait = next_due
            .map(|due| (due - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_IDLE);
        // A modem held by its pacing or caps takes work again at the end of the hold.
        let now = Utc::now();
        let released = self
            .modems
            .iter()
            .filter_map(|m| m.usage().held(now))
            .map(|held| (held.until() - now).to_std().unwrap_or(Duration::ZERO))
            .min()
            .unwrap_or(MAX_IDLE);
        Ok(wait.min(released).clamp(Duration::from_millis(1), MAX_IDLE))
    }

    /// Claim work for every idle ready modem.
    async fn hand_out(
        &self,
        busy: &mut [bool],
        done: &mpsc::UnboundedSender<Finished>,
    ) -> Result<(), StoreError> {
        loop {
            // Wall-clock time for the caps: the sends they count happened on it.
            let now = Utc::now();
            let idle: Vec<usize> = (0..self.modems.len())
                .filter(|&i| {
                    !busy[i]
                        && self.modems[i].status.borrow().state == ModemState::Ready
                        && self.modems[i].usage().held(now).is_none()
                })
                .collect();
            if idle.is_empty() {
                return Ok(());
            }
            let route = |message: &OutboundMessage| {
                self.route(message, &idle)
                    .map(|i| self.modems[i].name.clone())
            };
            // Durable when it returns: a crash from here on finds the claim.
            let Some(Claimed {
                message,
                modem,
                lease,
            }) = self.store.claim_next(&route).await?
            else {
                return Ok(());
            };
            let Some(index) = self.modems.iter().position(|m| m.name == modem) else {
                continue;
            };
            busy[index] = true;
            self.start_send(index, message, lease, done.clone());
        }
    }

    /// The modem that owns the `from` number, while that modem is up (waiting for it
    /// if it is busy) and did not just fail this message; otherwise the idle modem that
    /// has sent the least, another than the one that failed last.
    fn route(&self, message: &OutboundMessage, idle: &[usize]) -> Option<usize> {
        let owner = self.modems.iter().position(|m| {
            m.number
                .as_ref()
                .is_some_and(|n| n.as_str() == message.from)
        });
        let failed_on =
            |i: usize| message.last_modem.as_deref() == Some(self.modems[i].name.as_str());
        if let Some(owner) = owner.filter(|&owner| !failed_on(owner)) {
            let state = self.modems[owner].status.borrow().state;
            if matches!(state, ModemState::Ready | ModemState::Sending) {
                return idle.contains(&owner).then_some(owner);
            }
        }
        // A retry goes to another modem when one is free; otherwise the least used.
        idle.iter()
            .copied()
            .min_by_key(|&i| (failed_on(i), self.modems[i].status.borrow().sent))
    }

    fn start_send(
        &self,
        modem_index: usize,
        message: OutboundMessage,
        lease: Lease,
        done: mpsc::UnboundedSender<Finished>,
    ) {
        let jobs = self.modems[modem_index].jobs.clone();
        let store = self.store.clone();
        let renew_every = self.renew_every;
        tokio::spawn(async move {
            let result = hand_to_modem(&*store, &jobs, &message, &lease, renew_every).await;
            // The dispatcher is gone only at shutdown; the message stays claimed.
            let _ = done.send(Finished {
                modem_index,
                message,
                lease,
                result,
            });
        });
    }

    async fn record_report(&self, delivery: DeliveryReport) -> Result<(), StoreError> {
        self.match_report(delivery, tokio::time::Instant::now())
            .await
    }

    /// Keep a report to match again after the next recorded send (it came before its
    /// send was recorded, or while the store was away).
    fn park(&self, arrived: tokio::time::Instant, delivery: DeliveryReport) {
        let mut parked = self.early_reports.lock().unwrap_or_else(|p| p.into_inner());
        if parked.len() < EARLY_REPORTS_MAX {
            parked.push((arrived, delivery));
        }
    }

    /// Try the parked early reports again (after a send was recorded). One the store
    /// cannot take now is parked again.
    async fn retry_early_reports(&self) {
        let parked =
            std::mem::take(&mut *self.early_reports.lock().unwrap_or_else(|p| p.into_inner()));
        for (arrived, delivery) in parked {
            if let Err(e) = self.match_report(delivery.clone(), arrived).await {
                if arrived.elapsed() < STORE_OUTAGE_PATIENCE {
                    tracing::warn!(error = %e, "cannot record a delivery report yet; will retry");
                    self.park(arrived, delivery);
                } else {
                    tracing::warn!(error = %e, modem = %delivery.modem, "a delivery report could not be recorded for 10 minutes; dropped");
                }
            }
        }
    }

    async fn match_report(
        &self,
        delivery: DeliveryReport,
        arrived: tokio::time::Instant,
    ) -> Result<(), StoreError> {
        let outcome = self
            .store
            .record_report(&delivery.modem, &delivery.report)
            .await?;
        match &outcome {
            ReportOutcome::Unmatched if arrived.elapsed() < EARLY_REPORT_PATIENCE => {
                self.park(arrived, delivery);
            }
            ReportOutcome::Unmatched => tracing::debug!(
                modem = %delivery.modem,
                mr = delivery.report.message_reference,
                "delivery report for no known message"
            ),
            ReportOutcome::Delivered { message_id } => {
                if let Some(modem) = self.modems.iter().find(|m| m.name == delivery.modem) {
                    modem
                        .delivered
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tracing::info!(modem = %delivery.modem, %message_id, "SMS delivered")
            }
            ReportOutcome::Failed { message_id } => {
                tracing::warn!(modem = %delivery.modem, %message_id, "SMS not delivered")
            }
            ReportOutcome::PartDelivered { .. } | ReportOutcome::Pending { .. } => {}
        }
        Ok(())
    }

    /// A send the modem accepted counts against its caps at once (the store counts it
    /// with the `sent` step, for the next start).
    fn count_against_caps(&self, finished: &Finished) {
        if let Ok(references) = &finished.result {
            let parts = u32::try_from(references.len()).unwrap_or(u32::MAX);
            let modem = &self.modems[finished.modem_index];
            let mut usage = modem.usage();
            usage.record(Utc::now(), parts);
            if let Some(held @ Held::Capped { .. }) = usage.capped(Utc::now()) {
                tracing::warn!(modem = %modem.name, "{}; other modems take the work", held.describe());
            }
        }
    }

    async fn record(&self, finished: &Finished) -> Result<(), StoreError> {
        let Finished {
            modem_index,
            message,
            lease,
            result,
        } = finished;
        let modem = self.modems[*modem_index].name.as_str();
        let now = self.clock.now();
        match self.policy.judge(message, result, now) {
            Outcome::Sent(references) => {
                tracing::info!(message_id = %message.id, modem, parts = references.len(), "SMS sent");
                let held = self
                    .store
                    .mark_sent(lease, message, modem, references)
                    .await?;
                if !held {
                    tracing::warn!(message_id = %message.id, modem, "SMS sent after this host lost its lease; another host may send it too");
                }
                self.retry_early_reports().await;
            }
            Outcome::Retry { at, reason } => {
                tracing::warn!(message_id = %message.id, modem, %reason, retry_at = %at, "SMS send failed; will retry");
                let mut message = message.clone();
                if matches!(result, Err(SendError::Unconfirmed(_))) {
                    message.unconfirmed += 1;
                }
                self.store
                    .retry_later(lease, &message, Some(modem), &reason, at)
                    .await?;
            }
            Outcome::Failed(reason) => {
                tracing::warn!(message_id = %message.id, modem, %reason, "SMS failed");
                self.store.mark_failed(lease, Some(modem), &reason).await?;
            }
        }
        Ok(())
    }
}

/// Give one claimed message to a modem and wait for its answer. The submission is
/// recorded first: from then on a crash may leave the SMS sent, and whoever queues it
/// again must say it may arrive twice.
async fn hand_to_modem(
    store: &dyn Store,
    jobs: &mpsc::Sender<SendJob>,
    message: &OutboundMessage,
    lease: &Lease,
    renew_every: Duration,
) -> Result<Vec<u8>, SendError> {
    let to = PhoneNumber::parse(&message.to).map_err(|e| SendError::Encoding(e.to_string()))?;
    match store.begin_submit(lease).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(SendError::NotSent(
                "another host took this message over".to_owned(),
            ))
        }
        Err(e) => {
            return Err(SendError::NotSent(format!(
                "cannot record the submission: {e}"
            )))
        }
    }
    let (reply, answer) = oneshot::channel();
    let job = SendJob {
        to,
        text: message.text.clone(),
        expires_at: message.expires_at,
        reply,
    };
    if jobs.send(job).await.is_err() {
        return Err(SendError::NotSent("the modem task has stopped".to_owned()));
    }
    // Keep the lease while the modem works: a slow radio must not look like a dead
    // host. A renewal that fails is only logged: the modem has the PDU already, and
    // the outcome is recorded under the token whatever happened meanwhile.
    tokio::pin!(answer);
    let mut renewal =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    loop {
        tokio::select! {
            answer = &mut answer => {
                return answer.unwrap_or_else(|_| {
                    Err(SendError::NotSent("the modem task dropped the job".to_owned()))
                });
            }
            _ = renewal.tick() => match store.renew(lease).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(message_id = %message.id, "another host took this message over while its modem was sending it"),
                Err(e) => tracing::warn!(message_id = %message.id, error = %e, "cannot renew the lease on a message being sent"),
            },
        }
    }
}

/// Waits between turns while the store is away: 100 ms doubling to 10 s.
#[derive(Debug, Default)]
struct Backoff {
    current: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(10);

    fn next(&mut self) -> Duration {
        let next = self
            .current
            .map_or(Self::FIRST, |d| (d * 2).min(Self::MOST));
        self.current = Some(next);
        next
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

/// Sleep `wait` unless shutdown comes first; whether it did.
async fn sleep_or_stop(shutdown: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}
