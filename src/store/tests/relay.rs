//! Relayed texts: queued like a code's SMS, under the number's daily cap (shared with
//! codes) and the account's rate, without a cooldown.

use chrono::Duration;

use super::{claim, issue, limits, lock, new_code, status, Fixture};
use crate::otp::{SendLimits, SendRefusal};
use crate::store::{MessageStatus, NewMessage, NewText, RELAY_SERVICE};

fn new_text(id: &str, to: &str, text: &str) -> NewText {
    NewText {
        message: NewMessage {
            id: id.into(),
            account: "AC1".into(),
            from: String::new(),
            to: to.into(),
            text: text.into(),
        },
        ttl: Duration::hours(1),
        to_masked: "+1555****111".into(),
    }
}

pub(super) async fn relayed_texts_queue_under_the_daily_cap_and_the_account_rate(fx: Fixture) {
    let store = &*fx.store;
    let capped = SendLimits {
        per_number_per_day: 3,
        ..limits()
    };
    let queued = store
        .queue_text(&new_text("SMr1", "+15551111111", "first"), &capped)
        .await
        .unwrap()
        .unwrap();
    let expected = fx.clock_now() + Duration::hours(1);
    assert!((queued.expires_at - expected).num_seconds().abs() <= 2);
    let history = store.message("SMr1").await.unwrap().expect("a history");
    assert_eq!(history.service, RELAY_SERVICE);
    assert_eq!(history.status, MessageStatus::Queued);
    assert_eq!(history.to_masked, "+1555****111");

    let claimed = claim(store).await;
    assert_eq!(claimed.message.id, "SMr1");
    assert_eq!(claimed.message.text, "first");
    assert_eq!(claimed.message.to, "+15551111111");
    assert_eq!(claimed.message.from, "");

    // A code to the same number counts against the same daily cap.
    issue(store, &new_code("SMc1", "+15551111111", 1)).await;
    store
        .queue_text(&new_text("SMr2", "+15551111111", "second"), &capped)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .queue_text(&new_text("SMr3", "+15551111111", "third"), &capped)
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(SendRefusal::NumberDailyCap { .. })),
        "{refused:?}"
    );
    assert!(
        store.message("SMr3").await.unwrap().is_none(),
        "a refusal writes nothing"
    );
    assert_eq!(status(store, "SMr2").await, MessageStatus::Queued);
    let code_refused = store
        .issue_code(&new_code("SMc2", "+15551111111", 2), &capped, &lock())
        .await
        .unwrap();
    assert!(matches!(
        code_refused,
        Err(SendRefusal::NumberDailyCap { .. })
    ));

    // The account's rate is shared by every number.
    let slow = SendLimits {
        per_account_per_minute: 1,
        ..limits()
    };
    fx.advance(Duration::minutes(5));
    store
        .queue_text(&new_text("SMr4", "+15552222222", "a"), &slow)
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .queue_text(&new_text("SMr5", "+15553333333", "b"), &slow)
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(SendRefusal::AccountRate { .. })),
        "{refused:?}"
    );
}
