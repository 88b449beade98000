//! Events: written with the change they describe, only when some endpoint wants them,
//! read back in order after an endpoint's cursor, sealed at rest.

use chrono::Duration;
use serde_json::Map;

use super::{attempt, claim, issue, new_code, received, Fixture};
use crate::otp::AttemptVerdict;
use crate::store::{
    EventFilter, EventInterest, EventKind, NewEvent, NewMessage, NewText, StoredEvent,
};

fn account_filter() -> EventFilter {
    EventFilter {
        account: Some("AC1".into()),
        kinds: EventKind::ACCOUNT.to_vec(),
    }
}

fn operator_filter() -> EventFilter {
    EventFilter {
        account: None,
        kinds: EventKind::OPERATOR.to_vec(),
    }
}

/// The events after `cursor`, once at least `count` are visible: on PostgreSQL an
/// event shows once every older transaction of the cluster has ended, and the test
/// server is shared by tests running at once.
async fn eventually(
    store: &dyn crate::store::Store,
    cursor: crate::store::EventCursor,
    filter: &EventFilter,
    count: usize,
) -> crate::store::EventBatch {
    for _ in 0..100 {
        let batch = store.events_after(cursor, filter, 100).await.unwrap();
        if batch.events.len() >= count {
            return batch;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.events_after(cursor, filter, 100).await.unwrap()
}

async fn all_after(
    store: &dyn crate::store::Store,
    endpoint: &str,
    filter: &EventFilter,
) -> Vec<StoredEvent> {
    let cursor = store.webhook_cursor(endpoint).await.unwrap();
    store
        .events_after(cursor, filter, 100)
        .await
        .unwrap()
        .events
}

pub(super) async fn events_are_written_with_their_change_and_read_in_order(fx: Fixture) {
    let store = &*fx.store;
    // Nothing is wanted yet: a send writes no event.
    let cursor = store.webhook_cursor("before").await.unwrap();
    issue(store, &new_code("SM0", "+15551111110", 9)).await;
    let nothing = store
        .events_after(cursor, &account_filter(), 100)
        .await
        .unwrap();
    assert!(nothing.events.is_empty(), "{nothing:?}");

    store.set_event_interest(EventInterest::of(&[account_filter(), operator_filter()]));
    let account = account_filter();
    let start = store.webhook_cursor("hooks-a").await.unwrap();
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    let claimed = claim(store).await;
    let claimed = if claimed.message.id == "SM1" {
        claimed
    } else {
        claim(store).await
    };
    assert_eq!(claimed.message.id, "SM1");
    assert!(store
        .mark_sent(&claimed.lease, &claimed.message, "m0", vec![7])
        .await
        .unwrap());
    assert!(matches!(
        attempt(store, "+15551111111", 2).await,
        AttemptVerdict::Wrong { .. }
    ));
    assert_eq!(
        attempt(store, "+15551111111", 1).await,
        AttemptVerdict::Approved
    );
    store
        .queue_text(
            &NewText {
                message: NewMessage {
                    id: "SMr".into(),
                    account: "AC1".into(),
                    from: String::new(),
                    to: "+15552222222".into(),
                    text: "relayed".into(),
                },
                ttl: Duration::hours(1),
                to_masked: "+1555****222".into(),
            },
            &super::limits(),
        )
        .await
        .unwrap()
        .unwrap();
    // Another account's and the operator's events are not this endpoint's.
    let mut other = new_code("SMx", "+15553333333", 3);
    other.scope.account = "AC2".into();
    other.message.account = "AC2".into();
    issue(store, &other).await;
    store
        .record_events(&[NewEvent::new(None, EventKind::ModemReady, Map::new())])
        .await
        .unwrap();
    store
        .store_received(&received("RX1", fx.clock_now(), "STOP"))
        .await
        .unwrap();

    let batch = eventually(store, start, &account, 4).await;
    let kinds: Vec<(EventKind, Option<&str>)> = batch
        .events
        .iter()
        .map(|e| (e.kind, e.data.get("message_id").and_then(|v| v.as_str())))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::MessageQueued, Some("SM1")),
            (EventKind::MessageSent, Some("SM1")),
            (EventKind::VerificationApproved, Some("SM1")),
            (EventKind::MessageQueued, Some("SMr")),
        ]
    );
    let sent = &batch.events[1];
    assert_eq!(sent.data["modem"], "m0");
    assert_eq!(sent.data["service"], "Login");
    assert_eq!(sent.data["number"], "+1555****111");
    assert!(sent.id.starts_with("evt_"));
    let payload = sent.payload();
    assert!(payload.contains(r#""type":"message.sent""#), "{payload}");
    for secret in ["+15551111111", "code 123456", "relayed"] {
        assert!(!payload.contains(secret), "{payload}");
    }
    assert!(batch.events.windows(2).all(|w| w[0].cursor < w[1].cursor));
    assert!(batch.scanned_to.is_some());

    let operator = eventually(store, start, &operator_filter(), 2).await;
    let kinds: Vec<EventKind> = operator.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::ModemReady, EventKind::SmsReceived]);
    let sms = &operator.events[1];
    assert_eq!(sms.data["text"], "STOP");
    assert_eq!(sms.data["from"], "+4477*****123");

    // The cursor moves past a delivered event and stays there across a restart.
    assert!(store
        .claim_webhook("hooks-a", super::fixture::NODE, Duration::seconds(15))
        .await
        .unwrap());
    assert!(store
        .advance_webhook("hooks-a", super::fixture::NODE, batch.events[1].cursor)
        .await
        .unwrap());
    let store = fx.restart().await;
    let cursor = store.webhook_cursor("hooks-a").await.unwrap();
    assert_eq!(cursor, batch.events[1].cursor);
    let rest = eventually(&*store, cursor, &account, 2).await;
    assert_eq!(rest.events.len(), 2);
    assert_eq!(rest.events[0].kind, EventKind::VerificationApproved);

    // A new endpoint starts after what was written before it.
    assert!(all_after(&*store, "hooks-new", &account).await.is_empty());

    // Purged after their day of retries.
    fx.advance(Duration::hours(26));
    assert!(store.purge_events(Duration::hours(25)).await.unwrap() >= 6);
    assert!(store
        .events_after(start, &account, 100)
        .await
        .unwrap()
        .events
        .is_empty());
}

pub(super) async fn a_lock_and_the_last_try_are_told(fx: Fixture) {
    let store = &*fx.store;
    store.set_event_interest(EventInterest::of(&[account_filter()]));
    let start = store.webhook_cursor("hooks").await.unwrap();
    let mut code = new_code("SM1", "+15551111111", 1);
    code.max_attempts = 2;
    issue(store, &code).await;
    let lock = crate::otp::LockPolicy {
        max_failures: 2,
        lock_for: Duration::hours(1),
    };
    for _ in 0..2 {
        let judge = |state, stored: &[u8; 32], now| {
            crate::otp::judge_attempt(state, now, || stored == &[9; 32])
        };
        store
            .attempt(&super::scope("+15551111111"), &lock, &judge)
            .await
            .unwrap();
    }
    let events = eventually(store, start, &account_filter(), 3).await.events;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::MessageQueued,
            EventKind::VerificationMaxAttempts,
            EventKind::NumberLocked,
        ]
    );
    assert!(events[2].data["locked_until"].is_string());
}
