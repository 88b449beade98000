//! The heartbeat task: every [`INTERVAL`] this host tells the store it is alive and how
//! its modems are doing. Other hosts list those modems in `GET /modems`, leave
//! messages sent `from` a ready modem's number to the host that has it, and count a
//! host whose heartbeat is older than the lease as down. It also reads the others'
//! beats back, for [`Capacity`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::capacity::Capacity;
use crate::modem::{ModemHandle, ModemState};
use crate::store::{ModemBeat, SharedStore, StoreError};

/// Time between heartbeats: well inside the default 15 s lease.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// What this host's modems look like now.
pub fn beats(modems: &[ModemHandle]) -> Vec<ModemBeat> {
    modems
        .iter()
        .map(|modem| ModemBeat {
            name: modem.name.clone(),
            number: modem.number.as_ref().map(|n| n.as_str().to_owned()),
            ready: matches!(
                modem.status.borrow().state,
                ModemState::Ready | ModemState::Sending
            ),
            status: modem.describe(),
        })
        .collect()
}

/// Beat every [`INTERVAL`]; after each beat, read the other hosts' beats into
/// `capacity`, so that this host knows whether any modem anywhere could send.
pub async fn run(
    store: SharedStore,
    modems: Vec<ModemHandle>,
    capacity: Arc<Capacity>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.heartbeat(&beats(&modems)).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("heartbeats reach the store again");
            }
            Ok(()) => {}
            Err(e @ StoreError::NodeTaken { .. }) => {
                tracing::error!(error = %e, "this host's name was taken over: another process runs under it, or this one was presumed dead");
                failing = true;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot write this host's heartbeat");
                failing = true;
            }
            Err(_) => {}
        }
        // A failed read keeps the last view, which goes stale on its own.
        if let Ok(hosts) = store.hosts().await {
            capacity.record_hosts(&hosts);
        }
    }
}
