//! Wiring: open the store, start the modem tasks, the dispatcher, the housekeeping task and
//! the HTTP server; run until the shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, Accounts, AppState, LiveAccounts, Ops};
use crate::capacity::Capacity;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::housekeeping::{self, Housekeeping};
use crate::metrics::Metrics;
use crate::modem::{spawn_modem, ModemHandle, ModemSettings, Outlets};
use crate::otp::{Clock, CodeHasher, KeyError, SecretKey, SystemClock};
use crate::service::{Policy, TwoFactor};
use crate::store::{SharedStore, StoreError};
use crate::systemd::{run_watchdog, Heartbeat, Liveness, Notifier};
use crate::webhook::Webhooks;

/// How long shutdown waits for a modem to finish the SMS it is sending; the unit's
/// `TimeoutStopSec=` leaves room for it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How often systemd's `STATUS=` line is refreshed (sent only when it changed).
const STATUS_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the state folder {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::StartError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    server_limits: crate::server::Limits,
    store: SharedStore,
    modems: Vec<ModemHandle>,
    background: Vec<JoinHandle<()>>,
    stop: CancellationToken,
    ops: Arc<Ops>,
    reloader: Reloader,
    liveness: Liveness,
}

/// Applies a reloaded config's accounts and limits; modems and storage stay as they
/// are (changing those needs a restart).
#[derive(Clone)]
pub struct Reloader {
    accounts: Arc<LiveAccounts>,
    twofa: Arc<TwoFactor>,
    metrics: Arc<Metrics>,
    webhooks: Arc<Webhooks>,
}

impl Reloader {
    pub fn apply(&self, config: &Config) {
        // The webhooks first: a secret file that cannot be read refuses the whole
        // reload, so that accounts and endpoints never disagree.
        if let Err(e) = self.webhooks.reload(&config.webhooks) {
            tracing::error!(error = %e, "configuration reload refused");
            self.refused();
            return;
        }
        let accounts = Accounts::from_config(&config.accounts);
        let count = accounts.len();
        self.accounts.replace(accounts);
        self.twofa.set_policy(Policy::from_config(config));
        self.metrics.reload_done("ok");
        tracing::info!(
            accounts = count,
            webhooks = config.webhooks.len(),
            "configuration reloaded: accounts, limits and webhooks"
        );
    }

    /// Count a reload that was refused (the caller logs why).
    pub fn refused(&self) {
        self.metrics.reload_done("error");
    }
}

impl Application {
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with time from `clock` (tests move it by hand).
    pub async fn build_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let state_dir = &config.storage.path;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| StartError::StateDir {
                path: state_dir.clone(),
                source,
            })?;
        let key = SecretKey::load_or_create(state_dir)?;
        let store =
            crate::store::open(&config.storage, &config.cluster, &key, clock.clone()).await?;
        let stop = CancellationToken::new();
        let wake = Arc::new(Notify::new());

        let (reports_tx, reports_rx) = tokio::sync::mpsc::unbounded_channel();
        let (incoming_tx, incoming_rx) = tokio::sync::mpsc::unbounded_channel();
        let outlets = Outlets {
            changed: wake.clone(),
            reports: reports_tx,
            incoming: incoming_tx,
        };
        let modems: Vec<ModemHandle> = config
            .modems
            .iter()
            .map(|modem| {
                let settings = ModemSettings::from_config(modem, &config.sms);
                spawn_modem(settings, outlets.clone(), stop.child_token())
            })
            .collect();
        drop(outlets);

        // The caps count what each modem sent in the last day, before this start too.
        for modem in &modems {
            let sends = store
                .modem_sends(&modem.name, clock.now() - crate::store::USAGE_WINDOW)
                .await?;
            modem.usage().load(sends);
        }

        let mut background = Vec::new();
        let dispatcher =
            Dispatcher::new(store.clone(), modems.clone(), wake.clone(), clock.clone())
                .with_lease(config.cluster.lease());
        let dispatcher_heartbeat = dispatcher.heartbeat();
        let dispatcher_stop = stop.child_token();
        background.push(tokio::spawn(dispatcher.run(reports_rx, dispatcher_stop)));
        let housekeeping_heartbeat = Heartbeat::new();
        let mut liveness = Liveness::default();
        // Housekeeping turns every INTERVAL; two missed turns mean it is stuck.
        liveness.watch(
            "housekeeping",
            housekeeping_heartbeat.clone(),
            housekeeping::INTERVAL * 5 / 2,
        );
        // The dispatcher turns at least every MAX_IDLE; a send in flight does not block
        // it (sends run in their own tasks).
        liveness.watch(
            "dispatcher",
            dispatcher_heartbeat,
            crate::dispatch::MAX_IDLE * 3,
        );
        background.push(tokio::spawn(
            Housekeeping::new(
                store.clone(),
                config.storage.message_retention(),
                housekeeping_heartbeat,
            )
            .run(stop.child_token()),
        ));

        let capacity = Arc::new(Capacity::new(
            modems.clone(),
            config.cluster.node_name(),
            Duration::from_secs(config.sms.unavailable_after_secs),
        ));
        background.push(tokio::spawn(crate::inbox::run(
            store.clone(),
            config.cluster.node_name(),
            clock.clone(),
            incoming_rx,
            stop.child_token(),
        )));
        background.push(tokio::spawn(crate::heartbeat::run(
            store.clone(),
            modems.clone(),
            capacity.clone(),
            stop.child_token(),
        )));
        let webhooks = Webhooks::start(
            store.clone(),
            clock.clone(),
            config.cluster.node_name(),
            chrono::Duration::from_std(config.cluster.lease())
                .unwrap_or(chrono::Duration::seconds(15)),
            &config.webhooks,
            stop.child_token(),
        )
        .await?;
        background.push(webhooks.watch(modems.clone(), stop.child_token()));
        let policy = Policy::from_config(config);
        // Shared behind one Arc: axum clones the state for every request.
        let twofa = Arc::new(
            TwoFactor::new(store.clone(), CodeHasher::new(key), policy, wake)
                .with_capacity(capacity.clone()),
        );
        let ops = Arc::new(Ops {
            store: store.clone(),
            modems: modems.clone(),
            clock,
            metrics: Arc::new(Metrics::new()),
            http_heartbeat: Heartbeat::new(),
            node: config.cluster.node_name(),
            capacity,
            webhooks: Some(webhooks.clone()),
        });
        let accounts = Arc::new(LiveAccounts::new(Accounts::from_config(&config.accounts)));
        let reloader = Reloader {
            accounts: accounts.clone(),
            twofa: twofa.clone(),
            metrics: ops.metrics.clone(),
            webhooks: webhooks.clone(),
        };
        let state = AppState {
            accounts,
            twofa,
            ops: ops.clone(),
        };
        let router = api::router(state, api::BodyLimits::from_config(&config.http));
        let server_limits = crate::server::Limits::from_config(&config.http);
        let listener = TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http.listen,
                source,
            })?;
        Ok(Self {
            listener,
            router,
            server_limits,
            store,
            modems,
            background,
            stop,
            ops,
            reloader,
            liveness,
        })
    }

    /// What `/metrics` and `/modems` see.
    pub fn ops(&self) -> Arc<Ops> {
        self.ops.clone()
    }

    /// Applies reloaded configs (SIGHUP) to the running daemon.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Report to systemd: `STATUS=` lines while running, and `WATCHDOG=1` pings while
    /// the loops make progress (when the unit sets `WatchdogSec=`). Call before
    /// [`Application::run_until`]; the tasks end with the daemon.
    pub fn supervise(&mut self, notifier: Arc<Notifier>) {
        if !notifier.is_enabled() {
            return;
        }
        let ops = self.ops.clone();
        let stop = self.stop.child_token();
        let status_notifier = notifier.clone();
        self.background.push(tokio::spawn(async move {
            let mut last = String::new();
            let mut tick = tokio::time::interval(STATUS_INTERVAL);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let line = ops.status_line().await;
                if line != last {
                    status_notifier.status(&line);
                    last = line;
                }
            }
        }));
        if let Some(timeout) = crate::systemd::watchdog_timeout() {
            let ops = self.ops.clone();
            let probe = move || {
                let ops = ops.clone();
                async move { ops.store_answers().await }
            };
            self.background.push(tokio::spawn(run_watchdog(
                notifier,
                timeout,
                self.liveness.clone(),
                probe,
                self.stop.child_token(),
            )));
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound TcpListener always has a local address.
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn modems(&self) -> &[ModemHandle] {
        &self.modems
    }

    /// Serve until `shutdown` resolves, then stop the workers and flush the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        tracing::info!(listen = %self.local_addr(), modems = self.modems.len(), "sms2fa is serving");
        crate::server::serve(self.listener, self.router, self.server_limits, shutdown).await;
        self.stop.cancel();
        if let Some(webhooks) = &self.ops.webhooks {
            webhooks.stop().await;
        }
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // A modem task ends (dropping its status sender) once the SMS it may be
        // sending is answered; wait for that, within bounds, before flushing.
        let drained = tokio::time::timeout(
            DRAIN_TIMEOUT,
            all_modems_stopped(self.modems.iter().map(|m| m.status.clone())),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("a modem was still busy after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
        self.store.close().await?;
        tracing::info!("sms2fa stopped");
        Ok(())
    }
}

/// Resolves when every modem task has ended (its status channel closed).
async fn all_modems_stopped(
    statuses: impl Iterator<Item = tokio::sync::watch::Receiver<crate::modem::ModemStatus>>,
) {
    for mut status in statuses {
        while status.changed().await.is_ok() {}
    }
}
