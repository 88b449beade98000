use chrono::{Duration, Utc};

use super::*;
use crate::otp::AttemptVerdict;

fn scope(number: &str) -> CodeScope {
    CodeScope {
        account: "AC1".into(),
        service: "Login".into(),
        number: number.into(),
    }
}

fn new_code(id: &str, number: &str, hash: u8) -> NewCode {
    let now = Utc::now();
    NewCode {
        scope: scope(number),
        record: CodeRecord {
            hash: [hash; 32],
            created_at: now,
            expires_at: now + Duration::minutes(10),
            attempts: 0,
            max_attempts: 3,
            message_id: id.into(),
        },
        message: OutboundMessage {
            id: id.into(),
            account: "AC1".into(),
            from: "+15550000000".into(),
            to: number.into(),
            text: "code 123456".into(),
            expires_at: now + Duration::minutes(10),
            attempts: 0,
            unconfirmed: 0,
            last_modem: None,
        },
        service: "Login".into(),
        to_masked: "+1555****111".into(),
    }
}

fn sealer() -> crate::otp::SecretKey {
    crate::otp::SecretKey::from_bytes([5; 32])
}

async fn open() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), &sealer()).unwrap();
    (store, dir)
}

fn limits() -> crate::otp::SendLimits {
    crate::otp::SendLimits {
        cooldown: Duration::zero(),
        per_number_per_day: 1000,
        per_account_per_minute: 1000,
    }
}

fn lock() -> crate::otp::LockPolicy {
    crate::otp::LockPolicy {
        max_failures: 100,
        lock_for: Duration::hours(1),
    }
}

fn issue(store: &Store, code: &NewCode) {
    store.issue_code(code, &limits(), &lock()).unwrap().unwrap();
}

fn judge_by_hash(
    expected: u8,
) -> impl Fn(Option<crate::otp::CodeState>, &[u8; 32]) -> AttemptVerdict {
    move |state, stored| crate::otp::judge_attempt(state, Utc::now(), || stored == &[expected; 32])
}

#[tokio::test]
async fn issue_queues_the_message_and_replaces_the_old_code() {
    let (store, _dir) = open().await;
    issue(&store, &new_code("SM1", "+15551111111", 1));
    issue(&store, &new_code("SM2", "+15551111111", 2));
    store.durable().await.unwrap();
    assert_eq!(store.code_count().unwrap(), 1);
    assert_eq!(store.expiry.len(), 1, "the old code's expiry entry is gone");
    assert_eq!(store.queue_depth(), 2);
    let verdict = store
        .attempt(
            &scope("+15551111111"),
            Utc::now(),
            &lock(),
            judge_by_hash(1),
        )
        .unwrap();
    assert!(
        matches!(verdict, (AttemptVerdict::Wrong { .. }, true)),
        "old code no longer verifies, and the attempt counts"
    );
    let verdict = store
        .attempt(
            &scope("+15551111111"),
            Utc::now(),
            &lock(),
            judge_by_hash(2),
        )
        .unwrap();
    assert_eq!(verdict, (AttemptVerdict::Approved, true));
    assert_eq!(store.code_count().unwrap(), 0, "approval consumes the code");
}

#[tokio::test]
async fn wrong_attempts_are_counted_durably() {
    let (store, _dir) = open().await;
    issue(&store, &new_code("SM1", "+15551111111", 1));
    for remaining in [2, 1, 0] {
        let verdict = store
            .attempt(
                &scope("+15551111111"),
                Utc::now(),
                &lock(),
                judge_by_hash(9),
            )
            .unwrap();
        assert_eq!(verdict, (AttemptVerdict::Wrong { remaining }, true));
    }
    let verdict = store
        .attempt(
            &scope("+15551111111"),
            Utc::now(),
            &lock(),
            judge_by_hash(1),
        )
        .unwrap();
    // A used-up code changes nothing, so there is nothing to flush.
    assert_eq!(verdict, (AttemptVerdict::Exhausted, false));
}

#[tokio::test]
async fn claim_send_and_requeue_after_a_crash() {
    let (store, _dir) = open().await;
    issue(&store, &new_code("SM1", "+15551111111", 1));
    issue(&store, &new_code("SM2", "+15552222222", 2));
    let now = Utc::now() + Duration::seconds(1);
    let Claim::Claimed { message, modem } = store.claim_next(now, |_| Some("m0".into())).unwrap()
    else {
        panic!("nothing claimed")
    };
    assert_eq!(
        (message.id.as_str(), modem.as_str(), message.attempts),
        ("SM1", "m0", 1)
    );
    assert_eq!(
        store.message("SM1").unwrap().unwrap().status,
        MessageStatus::Sending
    );
    store.mark_sent(&message, "m0", vec![7], now).unwrap();
    assert_eq!(
        store.message("SM1").unwrap().unwrap().status,
        MessageStatus::Sent
    );

    // SM2 is claimed, then the process "dies": it must come back.
    let Claim::Claimed { message, .. } = store.claim_next(now, |_| Some("m0".into())).unwrap()
    else {
        panic!("nothing claimed")
    };
    assert_eq!(message.id, "SM2");
    assert_eq!(store.queue_depth(), 0);
    assert_eq!(store.requeue_inflight(now).unwrap(), 1);
    assert_eq!(store.queue_depth(), 1);
    let history = store.message("SM2").unwrap().unwrap();
    assert_eq!(history.status, MessageStatus::Queued);
    assert!(history
        .history
        .last()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("may arrive twice"));
}

#[tokio::test]
async fn a_message_nobody_can_route_waits_without_blocking_others() {
    let (store, _dir) = open().await;
    issue(&store, &new_code("SM1", "+15551111111", 1));
    issue(&store, &new_code("SM2", "+15552222222", 2));
    let now = Utc::now() + Duration::seconds(1);
    let route = |m: &OutboundMessage| (m.id == "SM2").then(|| "m1".to_owned());
    let Claim::Claimed { message, .. } = store.claim_next(now, route).unwrap() else {
        panic!("nothing claimed")
    };
    assert_eq!(message.id, "SM2");
    assert_eq!(store.queue_depth(), 1);
}

#[tokio::test]
async fn expired_messages_are_failed_not_sent() {
    let (store, _dir) = open().await;
    issue(&store, &new_code("SM1", "+15551111111", 1));
    let later = Utc::now() + Duration::minutes(11);
    assert!(matches!(
        store.claim_next(later, |_| Some("m0".into())).unwrap(),
        Claim::Nothing
    ));
    let record = store.message("SM1").unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Failed);
    assert_eq!(store.queue_depth(), 0);
}

#[tokio::test]
async fn purge_removes_only_expired_codes() {
    let (store, _dir) = open().await;
    issue(&store, &new_code("SM1", "+15551111111", 1));
    let mut fresh = new_code("SM2", "+15552222222", 2);
    fresh.record.expires_at = Utc::now() + Duration::minutes(30);
    issue(&store, &fresh);
    assert_eq!(store.purge_expired(Utc::now()).unwrap(), 0);
    assert_eq!(
        store
            .purge_expired(Utc::now() + Duration::minutes(11))
            .unwrap(),
        1
    );
    assert_eq!(store.code_count().unwrap(), 1);
    assert!(store.code(&scope("+15552222222")).unwrap().is_some());
}

#[tokio::test]
async fn purge_works_in_batches_and_keeps_a_replacing_code() {
    let (store, _dir) = open().await;
    for i in 0..25 {
        issue(
            &store,
            &new_code(&format!("SM{i}"), &format!("+1555100{i:04}"), 1),
        );
    }
    // A resend to the first number replaces its code with one that lives longer: the
    // old index entry goes, the new code stays.
    let mut replacing = new_code("SMnew", "+15551000000", 9);
    replacing.record.expires_at = Utc::now() + Duration::minutes(30);
    issue(&store, &replacing);
    let later = Utc::now() + Duration::minutes(11);
    assert_eq!(store.purge_expired_batch(later, 10).unwrap(), 10);
    assert_eq!(store.purge_expired_batch(later, 10).unwrap(), 10);
    assert_eq!(store.purge_expired_batch(later, 10).unwrap(), 4);
    assert_eq!(store.purge_expired_batch(later, 10).unwrap(), 0);
    assert_eq!(store.code_count().unwrap(), 1);
    let kept = store.code(&scope("+15551000000")).unwrap().unwrap();
    assert_eq!(kept.hash, [9; 32]);
}

#[tokio::test]
async fn message_sweep_forgets_only_settled_histories_past_retention() {
    let (store, _dir) = open().await;
    for (id, number) in [
        ("SMa", "+15551111111"),
        ("SMb", "+15552222222"),
        ("SMc", "+15553333333"),
    ] {
        issue(&store, &new_code(id, number, 1));
    }
    let now = Utc::now() + Duration::seconds(1);
    // SMa is sent, SMb is failed, SMc stays queued.
    for _ in 0..2 {
        let Claim::Claimed { message, .. } = store.claim_next(now, |_| Some("m0".into())).unwrap()
        else {
            panic!("nothing claimed")
        };
        if message.id == "SMa" {
            store.mark_sent(&message, "m0", vec![1], now).unwrap();
        } else {
            store
                .mark_failed(&message.id, Some("m0"), "refused", now)
                .unwrap();
        }
    }
    let recent = store
        .sweep_messages(&[], 100, now - Duration::days(7))
        .unwrap();
    assert_eq!(
        (recent.examined, recent.removed, recent.resume_at),
        (3, 0, None)
    );

    // In slices of two: the sweep resumes where it stopped and covers every record.
    let old = now + Duration::days(8);
    let first = store
        .sweep_messages(&[], 2, old - Duration::days(7))
        .unwrap();
    assert_eq!(first.examined, 2);
    let resume = first.resume_at.clone().expect("one record left");
    let second = store
        .sweep_messages(&resume, 2, old - Duration::days(7))
        .unwrap();
    assert_eq!((second.examined, second.resume_at), (1, None));
    assert_eq!(first.removed + second.removed, 2);
    assert!(store.message("SMa").unwrap().is_none());
    assert!(store.message("SMb").unwrap().is_none());
    assert_eq!(
        store.message("SMc").unwrap().unwrap().status,
        MessageStatus::Queued
    );
}

#[tokio::test]
async fn limit_sweep_forgets_what_can_no_longer_refuse() {
    let (store, _dir) = open().await;
    let strict = crate::otp::SendLimits {
        cooldown: Duration::seconds(30),
        per_number_per_day: 10,
        per_account_per_minute: 10,
    };
    for (id, number) in [("SM1", "+15551111111"), ("SM2", "+15552222222")] {
        store
            .issue_code(&new_code(id, number, 1), &strict, &lock())
            .unwrap()
            .unwrap();
    }
    // Two send histories and one account budget; all still bite.
    let swept = store.sweep_limits(&[], 100, Utc::now()).unwrap();
    assert_eq!((swept.examined, swept.removed), (3, 0));
    let refused = store
        .issue_code(&new_code("SM3", "+15552222222", 3), &strict, &lock())
        .unwrap();
    assert!(refused.is_err(), "the cooldown must still hold");

    // Two days on, none can refuse anything: all go, and sending works again.
    let later = Utc::now() + Duration::days(2);
    let swept = store.sweep_limits(&[], 100, later).unwrap();
    assert_eq!((swept.examined, swept.removed), (3, 3));
    store
        .issue_code(&new_code("SM4", "+15552222222", 4), &strict, &lock())
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn purge_keeps_failure_counts_but_drops_run_out_locks() {
    let (store, _dir) = open().await;
    let policy = crate::otp::LockPolicy {
        max_failures: 2,
        lock_for: Duration::minutes(30),
    };
    issue(&store, &new_code("SM1", "+15551111111", 1));
    issue(&store, &new_code("SM2", "+15552222222", 2));
    // Lock +15551111111 with two wrong codes; one wrong code for +15552222222.
    for number in ["+15551111111", "+15551111111", "+15552222222"] {
        let (verdict, wrote) = store
            .attempt(&scope(number), Utc::now(), &policy, judge_by_hash(7))
            .unwrap();
        assert!(matches!(verdict, AttemptVerdict::Wrong { .. }) && wrote);
    }
    // An hour on both codes have expired and the lock has run out: the locked scope
    // is forgotten whole; the other keeps its count, so the next wrong code locks it.
    let later = Utc::now() + Duration::hours(1);
    assert_eq!(store.purge_expired(later).unwrap(), 2);
    assert_eq!(store.code_count().unwrap(), 0);
    assert_eq!(
        store.codes.len(),
        1,
        "only the count below the threshold stays"
    );
    issue(&store, &new_code("SM3", "+15552222222", 3));
    let (verdict, _) = store
        .attempt(
            &scope("+15552222222"),
            Utc::now(),
            &policy,
            judge_by_hash(7),
        )
        .unwrap();
    assert_eq!(verdict, AttemptVerdict::Wrong { remaining: 2 });
    let (after, _) = store
        .attempt(
            &scope("+15552222222"),
            Utc::now(),
            &policy,
            judge_by_hash(3),
        )
        .unwrap();
    assert!(
        matches!(after, AttemptVerdict::NumberLocked { .. }),
        "{after:?}"
    );
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&dir.path().join("db"), &sealer()).unwrap();
        issue(&store, &new_code("SM1", "+15551111111", 1));
        store.durable().await.unwrap();
    }
    let store = open_once_released(&dir.path().join("db")).await.unwrap();
    assert_eq!(store.code_count().unwrap(), 1);
    assert_eq!(store.queue_depth(), 1);
}

#[tokio::test]
async fn the_database_files_never_hold_the_text_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), &sealer()).unwrap();
    let mut code = new_code("SM1", "+15551111111", 1);
    code.message.text = "Your code is 918273".into();
    issue(&store, &code);
    let now = Utc::now() + Duration::seconds(1);
    let Claim::Claimed { message, .. } = store.claim_next(now, |_| Some("m0".into())).unwrap()
    else {
        panic!("nothing claimed")
    };
    assert_eq!(
        message.text, "Your code is 918273",
        "the dispatcher gets the text back"
    );
    store.retry_later(&message, None, "test", now, now).unwrap();
    store.durable().await.unwrap();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"918273"),
            "{} holds the code in clear",
            entry.display()
        );
    }
}

#[tokio::test]
async fn a_database_of_another_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta").unwrap().insert("format", "1").unwrap();
        db.flush().unwrap();
    }
    let error = open_once_released(&path).await.unwrap_err().to_string();
    assert!(error.contains("format 1"), "{error}");
    assert!(error.contains(&format!("reads format {FORMAT}")), "{error}");
    assert!(error.contains("move") && error.contains("aside"), "{error}");

    // A database from before format versions: data, and no stamp.
    let older = dir.path().join("older");
    {
        let db = sled::open(&older).unwrap();
        db.open_tree("codes").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    let error = open_once_released(&older).await.unwrap_err().to_string();
    assert!(error.contains("before format versions"), "{error}");

    // A new one is stamped, and opens again.
    let fresh = dir.path().join("fresh");
    drop(Store::open(&fresh, &sealer()).unwrap());
    open_once_released(&fresh)
        .await
        .expect("our own format reopens");
}

/// Opens the store at `path` once the database dropped just before lets go of
/// its file lock. sled releases the lock from its background threads some time
/// after the last handle is dropped (the store's flusher task, sled's own
/// flusher), with no way to wait for it; a fixed sleep lost that race on a
/// loaded CI machine. sled reports a busy lock only as text in an
/// `io::ErrorKind::Other`. Any other error is returned at once.
async fn open_once_released(path: &std::path::Path) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(path, &sealer()) {
            Err(StoreError::Open {
                source: sled::Error::Io(ref io),
                ..
            }) if io.to_string().contains("could not acquire lock")
                && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test]
async fn keys_and_records_hold_number_digests_and_reports_still_match() {
    let (store, _dir) = open().await;
    let number = "+14155550002";
    issue(&store, &new_code("SM1", number, 1));
    let now = Utc::now() + Duration::seconds(1);
    let Claim::Claimed { message, .. } = store.claim_next(now, |_| Some("m0".into())).unwrap()
    else {
        panic!("nothing claimed")
    };
    assert_eq!(message.to, number, "the dispatcher gets the number back");
    store.mark_sent(&message, "m0", vec![7], now).unwrap();
    for tree in [
        &store.codes,
        &store.limits,
        &store.expiry,
        &store.reports,
        &store.messages,
    ] {
        for entry in tree.iter() {
            let (key, value) = entry.unwrap();
            for bytes in [key.as_ref(), value.as_ref()] {
                assert!(
                    !bytes.windows(10).any(|w| w == b"4155550002"),
                    "a number in clear: {:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }
    // Reported in national form: the same subscriber by its trailing digits.
    let report = |recipient: &str| crate::sms::StatusReport {
        message_reference: 7,
        recipient: recipient.into(),
        status: crate::sms::DeliveryStatus::Delivered,
        service_centre_time: String::new(),
        discharge_time: String::new(),
    };
    assert_eq!(
        store
            .record_report("m0", &report("4155551234"), now)
            .unwrap(),
        ReportOutcome::Unmatched,
        "another subscriber"
    );
    assert_eq!(
        store
            .record_report("m0", &report("4155550002"), now)
            .unwrap(),
        ReportOutcome::Delivered {
            message_id: "SM1".into()
        }
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_expire() {
    let (store, _dir) = open().await;
    let now = Utc::now();
    let answer = StoredAnswer {
        status: 200,
        body: "{\"requestID\":\"SM1\"}".into(),
    };
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp1", now).unwrap(),
        Begin::Proceed
    );
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp1", now).unwrap(),
        Begin::InFlight
    );
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp2", now).unwrap(),
        Begin::Mismatch
    );
    assert_eq!(
        store.begin_idempotent("AC2", "k", "fp1", now).unwrap(),
        Begin::Proceed,
        "keys are per account"
    );
    store
        .finish_idempotent("AC1", "k", Some(answer.clone()))
        .unwrap();
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp1", now).unwrap(),
        Begin::Replay(answer)
    );
    let tomorrow = now + Duration::hours(24);
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp2", tomorrow).unwrap(),
        Begin::Proceed,
        "forgotten after 24 h"
    );
}

#[tokio::test]
async fn an_abandoned_idempotency_key_is_free_again_and_failures_free_it_at_once() {
    let (store, _dir) = open().await;
    let now = Utc::now();
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp", now).unwrap(),
        Begin::Proceed
    );
    let later = now + Duration::seconds(61);
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp", later).unwrap(),
        Begin::Proceed,
        "the first died in flight"
    );
    store.finish_idempotent("AC1", "k", None).unwrap();
    assert_eq!(
        store.begin_idempotent("AC1", "k", "fp", later).unwrap(),
        Begin::Proceed
    );
}

#[tokio::test]
async fn idempotency_purge_forgets_old_keys() {
    let (store, _dir) = open().await;
    let now = Utc::now();
    store.begin_idempotent("AC1", "old", "fp", now).unwrap();
    store
        .begin_idempotent("AC1", "new", "fp", now + Duration::hours(12))
        .unwrap();
    assert_eq!(
        store.purge_idempotency(now + Duration::hours(25)).unwrap(),
        1
    );
    assert_eq!(store.idempotency.len(), 1);
}

#[tokio::test]
async fn concurrent_sends_cannot_overrun_the_cooldown_or_the_account_rate() {
    let (store, _dir) = open().await;
    let strict = crate::otp::SendLimits {
        cooldown: Duration::seconds(30),
        per_number_per_day: 10,
        per_account_per_minute: 5,
    };
    let admitted = |codes: Vec<NewCode>| {
        std::thread::scope(|threads| {
            let handles: Vec<_> = codes
                .iter()
                .map(|code| {
                    let store = store.clone();
                    threads.spawn(move || store.issue_code(code, &strict, &lock()).unwrap())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(Result::is_ok)
                .count()
        })
    };
    // Eight sends to one number at once: the cooldown lets exactly one through.
    let same_number = (0..8)
        .map(|i| new_code(&format!("SMs{i}"), "+15551111111", 1))
        .collect();
    assert_eq!(admitted(same_number), 1);
    // Sixteen sends to different numbers at once: the account's burst of 5 holds
    // (one of it is already spent above).
    let many_numbers = (0..16)
        .map(|i| new_code(&format!("SMm{i}"), &format!("+1555200{i:04}"), 1))
        .collect();
    assert_eq!(admitted(many_numbers), 4);
    assert_eq!(store.queue_depth(), 5);
}
