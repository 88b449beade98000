//! Webhooks: events posted to the operator's and the applications' endpoints, signed
//! per the Standard Webhooks specification.
//!
//! The store writes each event in the same durable step as the change it describes
//! ([`crate::store::EventStore`]); here one task per endpoint ([`worker`]) reads the
//! events after the endpoint's cursor and posts them in order, at least once, with
//! retries ([`retry`]); [`emit`] writes the events no store change carries (modems,
//! the queue). With several hosts, one host at a time holds an endpoint (a lease in
//! the store), so each event is posted by one host.

mod emit;
mod endpoint;
mod post;
mod retry;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use emit::{modem_events, Condition, LOW_SIGNAL_DBM, STALLED_AFTER};
pub use endpoint::{Endpoint, EndpointError};
pub use post::{client, post, Attempt, TIMEOUT};
pub use retry::{Backoff, Next};
pub use worker::EndpointStats;

use crate::config::WebhookConfig;
use crate::modem::ModemHandle;
use crate::otp::Clock;
use crate::store::{EventFilter, EventInterest, SharedStore};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("cannot set up the webhook cursors: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The endpoints of `configs` (secret files read now).
fn endpoints(configs: &[WebhookConfig]) -> Result<Vec<Endpoint>, EndpointError> {
    configs.iter().map(Endpoint::from_config).collect()
}

/// One endpoint's numbers for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSample {
    pub endpoint: String,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub last_status: i64,
    pub disabled: bool,
}

struct Running {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    stats: Vec<(String, Arc<EndpointStats>)>,
}

/// The endpoints' workers, replaced whole on a reload.
pub struct Webhooks {
    store: SharedStore,
    clock: Arc<dyn Clock>,
    node: String,
    lease: chrono::Duration,
    client: reqwest::Client,
    parent: CancellationToken,
    running: Mutex<Running>,
}

impl Webhooks {
    /// Start a worker per `[[webhook]]`, and tell the store which events to write.
    /// Each endpoint's cursor exists when this returns, so that it gets every event
    /// written from then on (a new endpoint starts at the end).
    pub async fn start(
        store: SharedStore,
        clock: Arc<dyn Clock>,
        node: String,
        lease: chrono::Duration,
        configs: &[WebhookConfig],
        parent: CancellationToken,
    ) -> Result<Arc<Self>, StartError> {
        let endpoints = endpoints(configs)?;
        for endpoint in &endpoints {
            store.webhook_cursor(&endpoint.id).await?;
        }
        let webhooks = Arc::new(Self {
            store,
            clock,
            node,
            lease,
            client: client(),
            running: Mutex::new(Running {
                stop: parent.child_token(),
                tasks: Vec::new(),
                stats: Vec::new(),
            }),
            parent,
        });
        webhooks.install(endpoints);
        Ok(webhooks)
    }

    /// Replace the endpoints (SIGHUP): the old workers stop (an attempt in flight is
    /// cut off; its event is posted again by the new worker), new ones start from
    /// the cursors. A 410-disabled endpoint is enabled again. On an error (a secret
    /// file that cannot be read) the old endpoints stay.
    pub fn reload(&self, configs: &[WebhookConfig]) -> Result<(), EndpointError> {
        self.install(endpoints(configs)?);
        Ok(())
    }

    /// Stop the running workers and start one per endpoint.
    fn install(&self, endpoints: Vec<Endpoint>) {
        let filters: Vec<EventFilter> = endpoints.iter().map(|e| e.filter.clone()).collect();
        self.store.set_event_interest(EventInterest::of(&filters));
        let stop = self.parent.child_token();
        let mut stats = Vec::new();
        let mut tasks = Vec::new();
        for endpoint in endpoints {
            let endpoint_stats = Arc::new(EndpointStats::new());
            stats.push((endpoint.label.clone(), endpoint_stats.clone()));
            let worker = worker::Worker {
                endpoint,
                store: self.store.clone(),
                client: self.client.clone(),
                clock: self.clock.clone(),
                node: self.node.clone(),
                lease: self.lease,
                backoff: Backoff::default(),
                stats: endpoint_stats,
                held: std::sync::Mutex::new(None),
            };
            tasks.push(tokio::spawn(worker.run(stop.clone())));
        }
        let old = std::mem::replace(
            &mut *self.running.lock().unwrap_or_else(PoisonError::into_inner),
            Running { stop, tasks, stats },
        );
        old.stop.cancel();
    }

    /// Watch this host's modems and the queue for operator events until `stop`.
    pub fn watch(&self, modems: Vec<ModemHandle>, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(emit::run(
            self.store.clone(),
            modems,
            self.clock.clone(),
            self.node.clone(),
            stop,
        ))
    }

    pub fn samples(&self) -> Vec<WebhookSample> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .stats
            .iter()
            .map(|(label, stats)| WebhookSample {
                endpoint: label.clone(),
                pending: stats.pending.load(Ordering::Relaxed),
                delivered: stats.delivered.load(Ordering::Relaxed),
                failed: stats.failed.load(Ordering::Relaxed),
                dropped: stats.dropped.load(Ordering::Relaxed),
                last_status: stats.last_status.load(Ordering::Relaxed),
                disabled: stats.disabled.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Stop every worker and wait for them (they stop at once: nothing to finish).
    pub async fn stop(&self) {
        let tasks = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            running.stop.cancel();
            std::mem::take(&mut running.tasks)
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}
