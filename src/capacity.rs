//! Whether anything could send a message accepted now: a modem of this host, or of
//! another live host as its last heartbeat described it. `/2fa/send` refuses with
//! `503 no_modem_available` when nothing could, rather than queue a code that nobody
//! will send; `/readyz` says why it is not ready.
//!
//! During the first `[sms] unavailable_after_secs` after start a modem still coming up
//! counts (its down time starts with the process), and until the other hosts' beats
//! were read once, everything is accepted; a modem at its cap or needing an operator
//! does not count, whenever.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::modem::{Availability, ModemHandle};
use crate::store::HostBeat;

/// Another host's view is used while it is this fresh: a few heartbeat intervals.
const REMOTE_FRESH: Duration = Duration::from_secs(10);

pub struct Capacity {
    local: Vec<ModemHandle>,
    node: String,
    started: Instant,
    grace: Duration,
    remote: Mutex<RemoteView>,
}

#[derive(Default)]
struct RemoteView {
    read_at: Option<Instant>,
    modems: Vec<RemoteModem>,
}

#[derive(Debug, Clone)]
struct RemoteModem {
    /// `host/modem`.
    label: String,
    state: String,
    ready: bool,
    available: bool,
}

impl Capacity {
    pub fn new(local: Vec<ModemHandle>, node: String, grace: Duration) -> Self {
        Self {
            local,
            node,
            started: Instant::now(),
            grace,
            remote: Mutex::default(),
        }
    }

    /// Take the other live hosts' modems from the hosts' last heartbeats.
    pub fn record_hosts(&self, hosts: &[HostBeat]) {
        let modems = hosts
            .iter()
            .filter(|host| host.node != self.node && !host.down)
            .flat_map(|host| {
                host.modems.iter().map(|(name, status)| RemoteModem {
                    label: format!("{}/{name}", host.node),
                    state: status["state"].as_str().unwrap_or("unknown").to_owned(),
                    ready: matches!(status["state"].as_str(), Some("ready" | "sending"))
                        && status["available"].as_bool().unwrap_or(false),
                    available: status["available"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        *self.lock() = RemoteView {
            read_at: Some(Instant::now()),
            modems,
        };
    }

    /// `Ok` when a message accepted now is expected to go out; otherwise why not, for
    /// operators and the client (modem names and states, never a number).
    pub fn can_send(&self) -> Result<(), String> {
        // Before the other hosts' beats were read, they may have modems that can send.
        if self.lock().read_at.is_none() && self.started.elapsed() < self.grace {
            return Ok(());
        }
        let mut reasons = Vec::new();
        for modem in &self.local {
            match modem.availability() {
                Availability::Unavailable { reason } => {
                    reasons.push(format!("{}: {reason}", modem.name));
                }
                Availability::Ready | Availability::Recovering { .. } => return Ok(()),
            }
        }
        for modem in self.remote_modems() {
            if modem.available {
                return Ok(());
            }
            reasons.push(format!("{}: {}", modem.label, modem.state));
        }
        Err(no_modem(&reasons))
    }

    /// The modems ready this moment, this host's by name and others' as `host/modem`;
    /// or why there are none.
    pub fn ready_modems(&self) -> Result<Vec<String>, String> {
        let mut ready: Vec<String> = self
            .local
            .iter()
            // Ready means ready or sending and not at a cap (a capped modem is up but
            // takes no work).
            .filter(|m| m.availability() == Availability::Ready)
            .map(|m| m.name.clone())
            .collect();
        let remote = self.remote_modems();
        ready.extend(remote.iter().filter(|m| m.ready).map(|m| m.label.clone()));
        if !ready.is_empty() {
            return Ok(ready);
        }
        let mut reasons: Vec<String> = self
            .local
            .iter()
            .map(|modem| match modem.availability() {
                Availability::Unavailable { reason } => format!("{}: {reason}", modem.name),
                Availability::Recovering { down_for } => {
                    let status = modem.status.borrow();
                    format!(
                        "{}: {} for {} s",
                        modem.name,
                        crate::modem::state_name(status.state),
                        down_for.as_secs()
                    )
                }
                Availability::Ready => format!("{}: ready", modem.name),
            })
            .collect();
        reasons.extend(remote.iter().map(|m| format!("{}: {}", m.label, m.state)));
        Err(no_modem(&reasons))
    }

    fn remote_modems(&self) -> Vec<RemoteModem> {
        let view = self.lock();
        match view.read_at {
            Some(at) if at.elapsed() < REMOTE_FRESH => view.modems.clone(),
            _ => Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RemoteView> {
        // A holder only swaps or clones the view, so a poisoned lock still holds a
        // whole one.
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn no_modem(reasons: &[String]) -> String {
    if reasons.is_empty() {
        "no modem is configured on any live host".to_owned()
    } else {
        format!("no modem can send: {}", reasons.join("; "))
    }
}
