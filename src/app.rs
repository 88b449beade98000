//! Wiring: open the store, start the modem tasks, the dispatcher, the purge task and
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

use crate::api::{self, Accounts, AppState};
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::modem::{spawn_modem, ModemHandle, ModemSettings};
use crate::otp::{Clock, CodeHasher, KeyError, SecretKey, SystemClock, TextSealer};
use crate::service::{Policy, TwoFactor};
use crate::store::{Store, StoreError};

const PURGE_INTERVAL: Duration = Duration::from_secs(60);

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
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    modems: Vec<ModemHandle>,
    background: Vec<JoinHandle<()>>,
    stop: CancellationToken,
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
        let store = Store::open(&state_dir.join("db"), TextSealer::new(&key))?;
        let stop = CancellationToken::new();
        let wake = Arc::new(Notify::new());

        let (reports_tx, reports_rx) = tokio::sync::mpsc::unbounded_channel();
        let modems: Vec<ModemHandle> = config
            .modems
            .iter()
            .map(|modem| {
                let settings = ModemSettings::from_config(modem, config.sms.max_parts);
                spawn_modem(
                    settings,
                    wake.clone(),
                    reports_tx.clone(),
                    stop.child_token(),
                )
            })
            .collect();

        let mut background = Vec::new();
        let dispatcher = Dispatcher::new(
            store.clone(),
            modems.clone(),
            wake.clone(),
            clock.clone(),
            reports_rx,
        );
        let dispatcher_stop = stop.child_token();
        background.push(tokio::spawn(async move {
            if let Err(e) = dispatcher.run(dispatcher_stop).await {
                tracing::error!(error = %e, "the dispatcher stopped on a storage error");
            }
        }));
        background.push(tokio::spawn(purge_expired(
            store.clone(),
            clock.clone(),
            stop.child_token(),
        )));

        let policy = Policy {
            otp: config.otp.clone(),
            sms: config.sms.clone(),
        };
        let twofa = TwoFactor::new(store.clone(), CodeHasher::new(key), clock, policy, wake);
        let state = AppState {
            accounts: Arc::new(Accounts::from_config(&config.accounts)),
            twofa,
        };
        let router = api::router(state, config.http.max_body_bytes);
        let listener = TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http.listen,
                source,
            })?;
        Ok(Self {
            listener,
            router,
            store,
            modems,
            background,
            stop,
        })
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
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.stop.cancel();
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.store.flush_now()?;
        tracing::info!("sms2fa stopped");
        served.map_err(StartError::Serve)
    }
}

async fn purge_expired(store: Store, clock: Arc<dyn Clock>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = store.clone();
        let now = clock.now();
        let purge = move || -> Result<usize, crate::store::StoreError> {
            Ok(store.purge_expired(now)? + store.purge_idempotency(now)?)
        };
        match tokio::task::spawn_blocking(purge).await {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => tracing::debug!(purged, "expired codes and idempotency keys purged"),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging expired codes failed"),
            Err(e) => tracing::warn!(error = %e, "the purge task panicked"),
        }
    }
}
