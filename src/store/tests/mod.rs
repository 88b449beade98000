//! The store's behaviour, written once against the traits and run against every
//! backend (`behaviour!` below makes one test per backend and case). What only one
//! backend can show (its files, its key layout) is tested beside that backend.

mod events;
pub mod fixture;
mod relay;

use std::sync::Arc;

use chrono::Duration;

use events::{
    a_lock_and_the_last_try_are_told, events_are_written_with_their_change_and_read_in_order,
};
pub use fixture::Fixture;
use relay::relayed_texts_queue_under_the_daily_cap_and_the_account_rate;

use super::*;
use crate::otp::{AttemptVerdict, LockPolicy, SendLimits, SendRefusal};
use crate::sms::{DeliveryStatus, StatusReport};

pub fn scope(number: &str) -> CodeScope {
    CodeScope {
        account: "AC1".into(),
        service: "Login".into(),
        number: number.into(),
    }
}

pub fn new_code(id: &str, number: &str, hash: u8) -> NewCode {
    NewCode {
        scope: scope(number),
        hash: [hash; 32],
        ttl: Duration::minutes(10),
        max_attempts: 3,
        message: NewMessage {
            id: id.into(),
            account: "AC1".into(),
            from: "+15550000000".into(),
            to: number.into(),
            text: "code 123456".into(),
        },
        service: "Login".into(),
        to_masked: "+1555****111".into(),
    }
}

pub fn limits() -> SendLimits {
    SendLimits {
        cooldown: Duration::zero(),
        per_number_per_day: 1000,
        per_account_per_minute: 1000,
    }
}

pub fn lock() -> LockPolicy {
    LockPolicy {
        max_failures: 100,
        lock_for: Duration::hours(1),
    }
}

pub async fn issue(store: &dyn Store, code: &NewCode) -> Issued {
    store
        .issue_code(code, &limits(), &lock())
        .await
        .unwrap()
        .unwrap()
}

pub async fn attempt(store: &dyn Store, number: &str, hash: u8) -> AttemptVerdict {
    attempt_under(store, number, hash, &lock()).await
}

async fn attempt_under(
    store: &dyn Store,
    number: &str,
    hash: u8,
    lock: &LockPolicy,
) -> AttemptVerdict {
    let judge = move |state, stored: &[u8; 32], now| {
        crate::otp::judge_attempt(state, now, || stored == &[hash; 32])
    };
    store.attempt(&scope(number), lock, &judge).await.unwrap()
}

pub async fn claim(store: &dyn Store) -> Claimed {
    store
        .claim_next(&|_| Some("m0".into()))
        .await
        .unwrap()
        .expect("a message to claim")
}

async fn status(store: &dyn Store, id: &str) -> MessageStatus {
    store.message(id).await.unwrap().expect("a history").status
}

/// One `#[tokio::test]` per backend and case; each case is an `async fn(Fixture)`.
macro_rules! behaviour {
    ($($case:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Fixture::sled()).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Fixture::postgres().await).await
                }
            )*
        }
    };
}

behaviour!(
    issue_queues_the_message_and_replaces_the_old_code,
    wrong_attempts_are_counted_and_a_used_up_code_stays_used_up,
    claim_send_and_requeue_after_a_crash,
    a_message_nobody_can_route_waits_without_blocking_others,
    expired_messages_are_failed_not_sent,
    retries_come_back_when_due_with_their_counters,
    purge_removes_only_expired_codes,
    purge_works_in_batches_and_keeps_a_replacing_code,
    message_sweep_forgets_only_settled_histories_past_retention,
    limit_sweep_forgets_what_can_no_longer_refuse,
    purge_keeps_failure_counts_but_drops_run_out_locks,
    cancel_and_unlock,
    reports_match_by_modem_reference_and_subscriber,
    idempotency_keys_replay_refuse_and_expire,
    an_abandoned_idempotency_key_is_free_again_and_failures_free_it_at_once,
    idempotency_purge_forgets_old_keys,
    concurrent_sends_cannot_overrun_the_cooldown_or_the_account_rate,
    forty_concurrent_verifies_of_one_code_approve_exactly_once,
    twenty_concurrent_sends_to_one_number_admit_exactly_one,
    sends_count_per_modem_across_a_restart_and_age_out,
    received_sms_are_kept_sealed_listed_newest_first_and_purged,
    relayed_texts_queue_under_the_daily_cap_and_the_account_rate,
    events_are_written_with_their_change_and_read_in_order,
    a_lock_and_the_last_try_are_told,
);

fn received(id: &str, at: chrono::DateTime<chrono::Utc>, text: &str) -> ReceivedSms {
    ReceivedSms {
        id: id.into(),
        modem: "m0".into(),
        host: "h1".into(),
        sender: "+447700900123".into(),
        text: text.into(),
        received_at: at,
        sent_at: "2026-12-05T10:00:00+01:00".into(),
        parts: 1,
        incomplete: false,
    }
}

async fn received_sms_are_kept_sealed_listed_newest_first_and_purged(fx: Fixture) {
    use chrono::SubsecRound;
    let store = &*fx.store;
    // Whole milliseconds: PostgreSQL keeps microseconds.
    let start = fx.clock_now().trunc_subsecs(3);
    let first = received("RX1", start, "Balance low");
    let second = received("RX2", start + Duration::seconds(1), "Привет");
    let third = received("RX3", start + Duration::seconds(2), "Third");
    for sms in [&first, &second, &third] {
        store.store_received(sms).await.unwrap();
    }
    store.store_received(&second).await.unwrap();
    let restarted = fx.restart().await;
    let all = restarted.received(None, 10).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["RX3", "RX2", "RX1"],
        "newest first, stored twice kept once"
    );
    assert_eq!(all[1], second, "read back whole");
    let newer = restarted
        .received(Some(first.received_at), 10)
        .await
        .unwrap();
    assert_eq!(newer.len(), 2);
    assert_eq!(restarted.received(None, 1).await.unwrap()[0].id, "RX3");
    assert_eq!(
        restarted
            .purge_received(Duration::days(1), 10)
            .await
            .unwrap(),
        0
    );
    fx.advance(Duration::days(1) + Duration::milliseconds(1500));
    assert_eq!(
        restarted
            .purge_received(Duration::days(1), 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(restarted.received(None, 10).await.unwrap().len(), 1);
}

/// Each `sent` step counts the message's parts against its modem; the counts are read
/// back after a restart, and purged once older than a day.
async fn sends_count_per_modem_across_a_restart_and_age_out(fx: Fixture) {
    let store = &*fx.store;
    let start = fx.clock_now();
    for (id, number, modem, parts) in [
        ("SM1", "+15551111111", "m0", vec![1]),
        ("SM2", "+15552222222", "m0", vec![2, 3]),
        ("SM3", "+15553333333", "m1", vec![4]),
    ] {
        issue(store, &new_code(id, number, 1)).await;
        let claimed = store
            .claim_next(&|_: &OutboundMessage| Some(modem.to_owned()))
            .await
            .unwrap()
            .expect("claimed");
        assert!(store.begin_submit(&claimed.lease).await.unwrap());
        assert!(store
            .mark_sent(&claimed.lease, &claimed.message, modem, parts)
            .await
            .unwrap());
        fx.advance(Duration::minutes(1));
    }
    let since = start - Duration::hours(24);
    let parts = |sends: Vec<(chrono::DateTime<chrono::Utc>, u32)>| -> u32 {
        sends.iter().map(|(_, p)| p).sum()
    };
    let restarted = fx.restart().await;
    assert_eq!(parts(restarted.modem_sends("m0", since).await.unwrap()), 3);
    assert_eq!(parts(restarted.modem_sends("m1", since).await.unwrap()), 1);
    assert!(restarted.modem_sends("m9", since).await.unwrap().is_empty());
    let recent = restarted
        .modem_sends("m0", start + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(parts(recent), 2, "only SM2 is after the cut");
    assert_eq!(restarted.purge_modem_sends(100).await.unwrap(), 0);
    fx.advance(Duration::hours(24));
    assert_eq!(restarted.purge_modem_sends(2).await.unwrap(), 2);
    assert_eq!(restarted.purge_modem_sends(100).await.unwrap(), 1);
    assert!(restarted.modem_sends("m0", since).await.unwrap().is_empty());
}

async fn issue_queues_the_message_and_replaces_the_old_code(fx: Fixture) {
    let store = &*fx.store;
    let first = issue(store, &new_code("SM1", "+15551111111", 1)).await;
    let expected = fx.clock_now() + Duration::minutes(10);
    assert!((first.expires_at - expected).num_seconds().abs() <= 2);
    issue(store, &new_code("SM2", "+15551111111", 2)).await;
    assert_eq!(store.code_count().await.unwrap(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    assert_eq!(status(store, "SM1").await, MessageStatus::Queued);
    assert!(
        matches!(
            attempt(store, "+15551111111", 1).await,
            AttemptVerdict::Wrong { .. }
        ),
        "the old code no longer verifies, and the attempt counts"
    );
    assert_eq!(
        attempt(store, "+15551111111", 2).await,
        AttemptVerdict::Approved
    );
    assert_eq!(
        store.code_count().await.unwrap(),
        0,
        "approval consumes the code"
    );
    assert_eq!(
        attempt(store, "+15551111111", 2).await,
        AttemptVerdict::NotFound,
        "single use"
    );
}

async fn wrong_attempts_are_counted_and_a_used_up_code_stays_used_up(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    for remaining in [2, 1, 0] {
        assert_eq!(
            attempt(store, "+15551111111", 9).await,
            AttemptVerdict::Wrong { remaining }
        );
    }
    assert_eq!(
        attempt(store, "+15551111111", 1).await,
        AttemptVerdict::Exhausted
    );
    let code = store.code(&scope("+15551111111")).await.unwrap().unwrap();
    assert_eq!((code.attempts, code.max_attempts), (3, 3));
}

async fn claim_send_and_requeue_after_a_crash(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    fx.advance(Duration::milliseconds(5));
    issue(store, &new_code("SM2", "+15552222222", 2)).await;
    let Claimed {
        message,
        modem,
        lease,
    } = claim(store).await;
    assert_eq!(
        (message.id.as_str(), modem.as_str(), message.attempts),
        ("SM1", "m0", 1)
    );
    assert_eq!(message.to, "+15551111111", "the dispatcher gets the number");
    assert_eq!(message.text, "code 123456", "and the text");
    assert_eq!(status(store, "SM1").await, MessageStatus::Sending);
    assert!(store.begin_submit(&lease).await.unwrap());
    assert!(store
        .mark_sent(&lease, &message, "m0", vec![7])
        .await
        .unwrap());
    let history = store.message("SM1").await.unwrap().unwrap();
    assert_eq!(history.status, MessageStatus::Sent);
    assert_eq!(history.history.last().unwrap().message_references, vec![7]);

    // SM2 is claimed and handed to the modem, then the process "dies": it must come
    // back, saying it may arrive twice.
    let claimed = claim(store).await;
    assert_eq!(claimed.message.id, "SM2");
    assert!(store.begin_submit(&claimed.lease).await.unwrap());
    assert_eq!(store.queue_depth().await.unwrap(), 0);
    let restarted = fx.restart().await;
    assert_eq!(restarted.requeue_abandoned().await.unwrap(), 1);
    assert_eq!(restarted.queue_depth().await.unwrap(), 1);
    let history = restarted.message("SM2").await.unwrap().unwrap();
    assert_eq!(history.status, MessageStatus::Queued);
    assert!(history
        .history
        .last()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("may arrive twice"));
    let again = claim(&*restarted).await;
    assert_eq!(
        (again.message.id.as_str(), again.message.attempts),
        ("SM2", 2)
    );
}

async fn a_message_nobody_can_route_waits_without_blocking_others(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    fx.advance(Duration::milliseconds(5));
    issue(store, &new_code("SM2", "+15552222222", 2)).await;
    let route = |m: &OutboundMessage| (m.id == "SM2").then(|| "m1".to_owned());
    let claimed = store.claim_next(&route).await.unwrap().expect("SM2");
    assert_eq!(
        (claimed.message.id.as_str(), claimed.modem.as_str()),
        ("SM2", "m1")
    );
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    assert!(store.claim_next(&route).await.unwrap().is_none());
}

async fn expired_messages_are_failed_not_sent(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    fx.advance(Duration::minutes(11));
    assert!(store
        .claim_next(&|_| Some("m0".into()))
        .await
        .unwrap()
        .is_none());
    let record = store.message("SM1").await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Failed);
    assert_eq!(
        record.history.last().unwrap().detail.as_deref(),
        Some(EXPIRED_IN_QUEUE)
    );
    assert_eq!(store.queue_depth().await.unwrap(), 0);
}

async fn retries_come_back_when_due_with_their_counters(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    let Claimed {
        mut message, lease, ..
    } = claim(store).await;
    message.unconfirmed = 1;
    let due = fx.clock_now() + Duration::seconds(30);
    assert!(store
        .retry_later(&lease, &message, Some("m0"), "no answer", due)
        .await
        .unwrap());
    let next_due = store.next_due().await.unwrap().expect("queued");
    assert!((next_due - due).num_milliseconds().abs() <= 1);
    assert!(
        store
            .claim_next(&|_| Some("m0".into()))
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    fx.advance(Duration::seconds(31));
    let again = claim(store).await;
    assert_eq!(
        (
            again.message.attempts,
            again.message.unconfirmed,
            again.message.last_modem.as_deref()
        ),
        (2, 1, Some("m0"))
    );
    assert!(store
        .mark_failed(&again.lease, Some("m0"), "refused for good")
        .await
        .unwrap());
    let record = store.message("SM1").await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Failed);
    let statuses: Vec<MessageStatus> = record.history.iter().map(|t| t.status).collect();
    use MessageStatus::*;
    assert_eq!(statuses, vec![Queued, Sending, Queued, Sending, Failed]);
}

async fn purge_removes_only_expired_codes(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    let mut fresh = new_code("SM2", "+15552222222", 2);
    fresh.ttl = Duration::minutes(30);
    issue(store, &fresh).await;
    assert_eq!(store.purge_expired_codes(1000).await.unwrap(), 0);
    fx.advance(Duration::minutes(11));
    assert_eq!(store.purge_expired_codes(1000).await.unwrap(), 1);
    assert_eq!(store.code_count().await.unwrap(), 1);
    assert!(store.code(&scope("+15552222222")).await.unwrap().is_some());
}

async fn purge_works_in_batches_and_keeps_a_replacing_code(fx: Fixture) {
    let store = &*fx.store;
    for i in 0..25 {
        issue(
            store,
            &new_code(&format!("SM{i}"), &format!("+1555100{i:04}"), 1),
        )
        .await;
    }
    // A resend to the first number replaces its code with one that lives longer: the
    // old code goes, the new one stays.
    let mut replacing = new_code("SMnew", "+15551000000", 9);
    replacing.ttl = Duration::minutes(30);
    issue(store, &replacing).await;
    fx.advance(Duration::minutes(11));
    let mut handled = Vec::new();
    loop {
        let batch = store.purge_expired_codes(10).await.unwrap();
        handled.push(batch);
        if batch < 10 {
            break;
        }
    }
    assert_eq!(handled.iter().sum::<usize>(), 24, "{handled:?}");
    assert!(handled.iter().all(|&n| n <= 10), "{handled:?}");
    assert_eq!(store.code_count().await.unwrap(), 1);
    let kept = store.code(&scope("+15551000000")).await.unwrap().unwrap();
    assert_eq!(kept.hash, [9; 32]);
}

async fn message_sweep_forgets_only_settled_histories_past_retention(fx: Fixture) {
    let store = &*fx.store;
    for (id, number) in [
        ("SMa", "+15551111111"),
        ("SMb", "+15552222222"),
        ("SMc", "+15553333333"),
    ] {
        issue(store, &new_code(id, number, 1)).await;
        fx.advance(Duration::milliseconds(5));
    }
    // SMa is sent, SMb is failed, SMc stays queued.
    for _ in 0..2 {
        let Claimed { message, lease, .. } = claim(store).await;
        if message.id == "SMa" {
            store
                .mark_sent(&lease, &message, "m0", vec![1])
                .await
                .unwrap();
        } else {
            store
                .mark_failed(&lease, Some("m0"), "refused")
                .await
                .unwrap();
        }
    }
    let week = Duration::days(7);
    let recent = sweep_messages_fully(store, week).await;
    assert_eq!(recent, 0, "nothing is old enough");

    fx.advance(Duration::days(8));
    assert_eq!(sweep_messages_fully(store, week).await, 2);
    assert!(store.message("SMa").await.unwrap().is_none());
    assert!(store.message("SMb").await.unwrap().is_none());
    assert_eq!(status(store, "SMc").await, MessageStatus::Queued);
}

/// Sweep in slices of two until a pass completes; returns how many were removed.
async fn sweep_messages_fully(store: &dyn Store, retention: Duration) -> usize {
    let mut removed = 0;
    for _ in 0..10 {
        let slice = store.sweep_messages(2, retention).await.unwrap();
        assert!(slice.examined <= 2 && slice.removed <= slice.examined);
        removed += slice.removed;
        if slice.pass_complete {
            return removed;
        }
    }
    panic!("the sweep never completed a pass");
}

async fn limit_sweep_forgets_what_can_no_longer_refuse(fx: Fixture) {
    let store = &*fx.store;
    let strict = SendLimits {
        cooldown: Duration::seconds(30),
        per_number_per_day: 10,
        per_account_per_minute: 10,
    };
    for (id, number) in [("SM1", "+15551111111"), ("SM2", "+15552222222")] {
        store
            .issue_code(&new_code(id, number, 1), &strict, &lock())
            .await
            .unwrap()
            .unwrap();
    }
    // Two send histories and one account budget; all still bite.
    assert_eq!(sweep_limits_fully(store).await, 0);
    let refused = store
        .issue_code(&new_code("SM3", "+15552222222", 3), &strict, &lock())
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(SendRefusal::Cooldown { .. })),
        "the cooldown must still hold: {refused:?}"
    );

    // Two days on, none can refuse anything: all go, and sending works again.
    fx.advance(Duration::days(2));
    assert_eq!(sweep_limits_fully(store).await, 3);
    store
        .issue_code(&new_code("SM4", "+15552222222", 4), &strict, &lock())
        .await
        .unwrap()
        .unwrap();
}

async fn sweep_limits_fully(store: &dyn Store) -> usize {
    let mut removed = 0;
    for _ in 0..10 {
        let slice = store.sweep_limits(100).await.unwrap();
        removed += slice.removed;
        if slice.pass_complete {
            return removed;
        }
    }
    panic!("the sweep never completed a pass");
}

async fn purge_keeps_failure_counts_but_drops_run_out_locks(fx: Fixture) {
    let store = &*fx.store;
    let policy = LockPolicy {
        max_failures: 2,
        lock_for: Duration::minutes(30),
    };
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    issue(store, &new_code("SM2", "+15552222222", 2)).await;
    // Lock +15551111111 with two wrong codes; one wrong code for +15552222222.
    for number in ["+15551111111", "+15551111111", "+15552222222"] {
        let verdict = attempt_under(store, number, 7, &policy).await;
        assert!(
            matches!(verdict, AttemptVerdict::Wrong { .. }),
            "{verdict:?}"
        );
    }
    assert!(matches!(
        attempt_under(store, "+15551111111", 1, &policy).await,
        AttemptVerdict::NumberLocked { .. }
    ));
    // An hour on both codes have expired and the lock has run out: the locked scope
    // is forgotten whole; the other keeps its count, so its next wrong code locks it.
    fx.advance(Duration::hours(1));
    assert_eq!(store.purge_expired_codes(1000).await.unwrap(), 2);
    assert_eq!(store.code_count().await.unwrap(), 0);
    issue(store, &new_code("SM3", "+15552222222", 3)).await;
    assert_eq!(
        attempt_under(store, "+15552222222", 7, &policy).await,
        AttemptVerdict::Wrong { remaining: 2 }
    );
    let after = attempt_under(store, "+15552222222", 3, &policy).await;
    assert!(
        matches!(after, AttemptVerdict::NumberLocked { .. }),
        "{after:?}"
    );
    // The other number starts afresh: one wrong code does not lock it.
    issue(store, &new_code("SM4", "+15551111111", 4)).await;
    assert_eq!(
        attempt_under(store, "+15551111111", 7, &policy).await,
        AttemptVerdict::Wrong { remaining: 2 }
    );
}

async fn cancel_and_unlock(fx: Fixture) {
    let store = &*fx.store;
    issue(store, &new_code("SM1", "+15551111111", 1)).await;
    assert!(store.cancel_code(&scope("+15551111111")).await.unwrap());
    assert!(!store.cancel_code(&scope("+15551111111")).await.unwrap());
    assert_eq!(
        attempt(store, "+15551111111", 1).await,
        AttemptVerdict::NotFound
    );
    let policy = LockPolicy {
        max_failures: 1,
        lock_for: Duration::hours(1),
    };
    issue(store, &new_code("SM2", "+15551111111", 2)).await;
    attempt_under(store, "+15551111111", 9, &policy).await;
    assert!(matches!(
        attempt_under(store, "+15551111111", 2, &policy).await,
        AttemptVerdict::NumberLocked { .. }
    ));
    let refused = store
        .issue_code(&new_code("SM3", "+15551111111", 3), &limits(), &policy)
        .await
        .unwrap();
    assert!(matches!(refused, Err(SendRefusal::NumberLocked { .. })));
    assert!(store.unlock(&scope("+15551111111"), &policy).await.unwrap());
    assert!(!store.unlock(&scope("+15551111111"), &policy).await.unwrap());
    assert_eq!(
        attempt_under(store, "+15551111111", 2, &policy).await,
        AttemptVerdict::Approved,
        "the code survives a lock and an unlock"
    );
}

async fn reports_match_by_modem_reference_and_subscriber(fx: Fixture) {
    let store = &*fx.store;
    let number = "+14155550002";
    issue(store, &new_code("SM1", number, 1)).await;
    let Claimed { message, lease, .. } = claim(store).await;
    store
        .mark_sent(&lease, &message, "m0", vec![7])
        .await
        .unwrap();
    let report = |recipient: &str, status| StatusReport {
        message_reference: 7,
        recipient: recipient.into(),
        status,
        service_centre_time: String::new(),
        discharge_time: String::new(),
    };
    let delivered = DeliveryStatus::Delivered;
    assert_eq!(
        store
            .record_report("m0", &report("4155551234", delivered))
            .await
            .unwrap(),
        ReportOutcome::Unmatched,
        "another subscriber"
    );
    assert_eq!(
        store
            .record_report("m1", &report("4155550002", delivered))
            .await
            .unwrap(),
        ReportOutcome::Unmatched,
        "another modem"
    );
    assert_eq!(
        store
            .record_report("m0", &report("4155550002", DeliveryStatus::Pending(0x20)))
            .await
            .unwrap(),
        ReportOutcome::Pending {
            message_id: "SM1".into()
        }
    );
    // Reported in national form: the same subscriber by its trailing digits.
    assert_eq!(
        store
            .record_report("m0", &report("4155550002", delivered))
            .await
            .unwrap(),
        ReportOutcome::Delivered {
            message_id: "SM1".into()
        }
    );
    assert_eq!(status(store, "SM1").await, MessageStatus::Delivered);

    // A two-part message is delivered when both parts are; a failure report fails it.
    issue(store, &new_code("SM2", "+14155550003", 2)).await;
    let Claimed { message, lease, .. } = claim(store).await;
    store
        .mark_sent(&lease, &message, "m0", vec![8, 9])
        .await
        .unwrap();
    let part = |mr, status| StatusReport {
        message_reference: mr,
        ..report("+14155550003", status)
    };
    assert_eq!(
        store
            .record_report("m0", &part(8, delivered))
            .await
            .unwrap(),
        ReportOutcome::PartDelivered {
            message_id: "SM2".into()
        }
    );
    assert_eq!(status(store, "SM2").await, MessageStatus::Sent);
    assert_eq!(
        store
            .record_report("m0", &part(9, DeliveryStatus::Failed(0x45)))
            .await
            .unwrap(),
        ReportOutcome::Failed {
            message_id: "SM2".into()
        }
    );
    assert_eq!(status(store, "SM2").await, MessageStatus::Failed);
}

async fn idempotency_keys_replay_refuse_and_expire(fx: Fixture) {
    let store = &*fx.store;
    let answer = StoredAnswer {
        status: 200,
        body: "{\"requestID\":\"SM1\"}".into(),
    };
    let begin = |account: &'static str, fingerprint: &'static str| async move {
        store
            .begin_idempotent(account, "k", fingerprint)
            .await
            .unwrap()
    };
    assert_eq!(begin("AC1", "fp1").await, Begin::Proceed);
    assert_eq!(begin("AC1", "fp1").await, Begin::InFlight);
    assert_eq!(begin("AC1", "fp2").await, Begin::Mismatch);
    assert_eq!(
        begin("AC2", "fp1").await,
        Begin::Proceed,
        "keys are per account"
    );
    store
        .finish_idempotent("AC1", "k", Some(answer.clone()))
        .await
        .unwrap();
    assert_eq!(begin("AC1", "fp1").await, Begin::Replay(answer));
    fx.advance(Duration::hours(24));
    assert_eq!(
        begin("AC1", "fp2").await,
        Begin::Proceed,
        "forgotten after 24 h"
    );
}

async fn an_abandoned_idempotency_key_is_free_again_and_failures_free_it_at_once(fx: Fixture) {
    let store = &*fx.store;
    let begin = || async { store.begin_idempotent("AC1", "k", "fp").await.unwrap() };
    assert_eq!(begin().await, Begin::Proceed);
    fx.advance(Duration::seconds(61));
    assert_eq!(begin().await, Begin::Proceed, "the first died in flight");
    store.finish_idempotent("AC1", "k", None).await.unwrap();
    assert_eq!(begin().await, Begin::Proceed);
}

async fn idempotency_purge_forgets_old_keys(fx: Fixture) {
    let store = &*fx.store;
    store.begin_idempotent("AC1", "old", "fp").await.unwrap();
    fx.advance(Duration::hours(12));
    store.begin_idempotent("AC1", "new", "fp").await.unwrap();
    let answer = StoredAnswer {
        status: 200,
        body: "{}".into(),
    };
    store
        .finish_idempotent("AC1", "new", Some(answer.clone()))
        .await
        .unwrap();
    fx.advance(Duration::hours(13));
    assert_eq!(store.purge_idempotency().await.unwrap(), 1);
    assert_eq!(store.purge_idempotency().await.unwrap(), 0);
    assert_eq!(
        store.begin_idempotent("AC1", "new", "fp").await.unwrap(),
        Begin::Replay(answer),
        "the newer key is kept"
    );
}

/// Run `codes` through `issue_code` all at once; how many were admitted.
async fn admitted_at_once(store: &SharedStore, codes: Vec<NewCode>, limits: SendLimits) -> usize {
    let start = Arc::new(tokio::sync::Barrier::new(codes.len()));
    let tasks: Vec<_> = codes
        .into_iter()
        .map(|code| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.issue_code(&code, &limits, &lock()).await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap().is_ok());
    }
    admitted
}

async fn concurrent_sends_cannot_overrun_the_cooldown_or_the_account_rate(fx: Fixture) {
    let strict = SendLimits {
        cooldown: Duration::seconds(30),
        per_number_per_day: 10,
        per_account_per_minute: 5,
    };
    // Eight sends to one number at once: the cooldown lets exactly one through.
    let same_number = (0..8)
        .map(|i| new_code(&format!("SMs{i}"), "+15551111111", 1))
        .collect();
    assert_eq!(admitted_at_once(&fx.store, same_number, strict).await, 1);
    // Sixteen sends to different numbers at once: the account's burst of 5 holds (one
    // of it is already spent above).
    let many_numbers = (0..16)
        .map(|i| new_code(&format!("SMm{i}"), &format!("+1555200{i:04}"), 1))
        .collect();
    assert_eq!(admitted_at_once(&fx.store, many_numbers, strict).await, 4);
    assert_eq!(fx.store.queue_depth().await.unwrap(), 5);
}

async fn twenty_concurrent_sends_to_one_number_admit_exactly_one(fx: Fixture) {
    let with_cooldown = SendLimits {
        cooldown: Duration::seconds(30),
        ..limits()
    };
    let codes = (0..20)
        .map(|i| new_code(&format!("SM{i}"), "+15551111111", 1))
        .collect();
    assert_eq!(admitted_at_once(&fx.store, codes, with_cooldown).await, 1);
    assert_eq!(fx.store.queue_depth().await.unwrap(), 1);
    assert_eq!(fx.store.code_count().await.unwrap(), 1);
}

async fn forty_concurrent_verifies_of_one_code_approve_exactly_once(fx: Fixture) {
    issue(&*fx.store, &new_code("SM1", "+15551111111", 1)).await;
    let start = Arc::new(tokio::sync::Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (store, start) = (fx.store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                attempt(&*store, "+15551111111", 1).await
            })
        })
        .collect();
    let mut verdicts = Vec::new();
    for task in tasks {
        verdicts.push(task.await.unwrap());
    }
    let approved = verdicts
        .iter()
        .filter(|v| **v == AttemptVerdict::Approved)
        .count();
    assert_eq!(approved, 1, "{verdicts:?}");
    assert!(verdicts
        .iter()
        .all(|v| matches!(v, AttemptVerdict::Approved | AttemptVerdict::NotFound)));
}
