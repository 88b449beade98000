//! The operator's events that no store change carries: a modem's state, signal and
//! caps (`modem.*`), and a queue that stopped moving (`queue.stalled`). Watched once
//! a second, told on the edge (once when it happens, again only after it recovered).

use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::modem::{ModemHandle, ModemState};
use crate::otp::Clock;
use crate::store::{EventKind, NewEvent, SharedStore};

/// At or below this the signal is low (CSQ 4: calls drop, SMS may fail)...
pub const LOW_SIGNAL_DBM: i16 = -105;
/// ...and it is fine again at or above this (so a signal at the edge is not told
/// every second).
pub const SIGNAL_RECOVERED_DBM: i16 = -100;
/// The oldest due SMS has waited this long: the queue is stalled.
pub const STALLED_AFTER: chrono::Duration = chrono::Duration::minutes(1);

const WATCH_EVERY: Duration = Duration::from_secs(1);

/// What is watched of one modem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    pub state: Option<ModemState>,
    pub signal_low: bool,
    /// The cap it is at, described.
    pub capped: Option<String>,
}

impl Condition {
    fn up(&self) -> bool {
        matches!(self.state, Some(ModemState::Ready | ModemState::Sending))
    }
}

/// The modem's condition now, given whether its signal was low before (hysteresis).
pub fn observe(
    modem: &ModemHandle,
    was_low: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Condition {
    let status = modem.status.borrow().clone();
    let signal_low = match status.health.signal_dbm {
        Some(dbm) if was_low => dbm < SIGNAL_RECOVERED_DBM,
        Some(dbm) => dbm <= LOW_SIGNAL_DBM,
        None => false,
    };
    let capped = modem.usage().capped(now).map(|held| held.describe());
    Condition {
        state: Some(status.state),
        signal_low: signal_low && matches!(status.state, ModemState::Ready | ModemState::Sending),
        capped,
    }
}

/// The events between two observations of modem `name`.
pub fn modem_events(
    name: &str,
    host: &str,
    before: &Condition,
    after: &Condition,
    detail: Option<&str>,
) -> Vec<NewEvent> {
    let event = |kind: EventKind, extra: &[(&str, Value)]| {
        let mut data = Map::new();
        data.insert("modem".into(), name.into());
        data.insert("host".into(), host.into());
        for (key, value) in extra {
            data.insert((*key).into(), value.clone());
        }
        NewEvent::new(None, kind, data)
    };
    let mut events = Vec::new();
    if after.state != before.state {
        let reason: Vec<(&str, Value)> = detail
            .map(|d| vec![("reason", Value::from(d))])
            .unwrap_or_default();
        if after.state == Some(ModemState::Fatal) {
            events.push(event(EventKind::ModemFatal, &reason));
        } else if after.up() && !before.up() {
            events.push(event(EventKind::ModemReady, &[]));
        } else if before.up() && !after.up() {
            events.push(event(EventKind::ModemDown, &reason));
        }
    }
    if after.signal_low && !before.signal_low {
        events.push(event(EventKind::ModemSignalLow, &[]));
    }
    if let (Some(cap), None) = (&after.capped, &before.capped) {
        events.push(event(
            EventKind::ModemCapReached,
            &[("reason", cap.clone().into())],
        ));
    }
    events
}

/// Watch this host's modems and the queue until `stop`; write what happens.
pub async fn run(
    store: SharedStore,
    modems: Vec<ModemHandle>,
    clock: std::sync::Arc<dyn Clock>,
    host: String,
    stop: CancellationToken,
) {
    let mut seen: Vec<Condition> = vec![Condition::default(); modems.len()];
    let mut stalled = false;
    loop {
        let now = clock.now();
        let mut events = Vec::new();
        for (modem, before) in modems.iter().zip(seen.iter_mut()) {
            let after = observe(modem, before.signal_low, now);
            let detail = modem.status.borrow().last_error.clone();
            events.extend(modem_events(
                &modem.name,
                &host,
                before,
                &after,
                detail.as_deref(),
            ));
            *before = after;
        }
        // The queue is read only while some endpoint wants to hear it stalled.
        let watch_queue = store.wants_event(None, EventKind::QueueStalled);
        if !watch_queue {
            stalled = false;
        } else if let Ok(due) = store.next_due().await {
            let waited = due.map(|due| now - due);
            let is_stalled = waited.is_some_and(|w| w > STALLED_AFTER);
            if is_stalled && !stalled {
                let queued = store.queue_depth().await.unwrap_or(0);
                let mut data = Map::new();
                data.insert("host".into(), host.clone().into());
                data.insert("queued".into(), queued.into());
                data.insert(
                    "waited_secs".into(),
                    waited.map_or(0, |w| w.num_seconds()).into(),
                );
                events.push(NewEvent::new(None, EventKind::QueueStalled, data));
            }
            stalled = is_stalled;
        }
        if !events.is_empty() {
            if let Err(e) = store.record_events(&events).await {
                tracing::warn!(error = %e, "cannot record {} operator events", events.len());
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: ModemState) -> Condition {
        Condition {
            state: Some(state),
            ..Condition::default()
        }
    }

    fn kinds(events: &[NewEvent]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn state_edges_make_ready_down_and_fatal_once() {
        let start = Condition::default();
        let connecting = at(ModemState::Connecting);
        let ready = at(ModemState::Ready);
        let sending = at(ModemState::Sending);
        let searching = at(ModemState::Searching);
        let fatal = at(ModemState::Fatal);
        assert!(modem_events("m", "h", &start, &connecting, None).is_empty());
        assert_eq!(
            kinds(&modem_events("m", "h", &connecting, &ready, None)),
            vec![EventKind::ModemReady]
        );
        assert!(modem_events("m", "h", &ready, &sending, None).is_empty());
        assert!(modem_events("m", "h", &sending, &ready, None).is_empty());
        let down = modem_events("m", "h", &ready, &searching, Some("not registered"));
        assert_eq!(kinds(&down), vec![EventKind::ModemDown]);
        assert_eq!(down[0].data["reason"], "not registered");
        assert_eq!(down[0].data["modem"], "m");
        assert!(down[0].account.is_none());
        assert!(modem_events("m", "h", &searching, &connecting, None).is_empty());
        assert_eq!(
            kinds(&modem_events("m", "h", &connecting, &fatal, Some("PIN"))),
            vec![EventKind::ModemFatal]
        );
    }

    #[test]
    fn signal_and_caps_are_told_on_their_edge() {
        let ready = at(ModemState::Ready);
        let low = Condition {
            signal_low: true,
            ..ready.clone()
        };
        assert_eq!(
            kinds(&modem_events("m", "h", &ready, &low, None)),
            vec![EventKind::ModemSignalLow]
        );
        assert!(modem_events("m", "h", &low, &low, None).is_empty());
        let capped = Condition {
            capped: Some("at its cap of 5 SMS per hour".into()),
            ..ready.clone()
        };
        let events = modem_events("m", "h", &ready, &capped, None);
        assert_eq!(kinds(&events), vec![EventKind::ModemCapReached]);
        assert_eq!(events[0].data["reason"], "at its cap of 5 SMS per hour");
        assert!(modem_events("m", "h", &capped, &capped, None).is_empty());
    }
}
