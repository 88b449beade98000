//! What only the sled backend shows: its trees, its files, its format stamp. Its
//! behaviour is tested with every backend's in `store::tests`.

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::*;
use crate::otp::ManualClock;
use crate::store::tests::{attempt, claim, issue, lock, new_code};
use crate::store::{CodeScope, CodeStore, MessageStatus, OutboxStore, RetentionStore, StoreError};

fn key() -> SecretKey {
    SecretKey::from_bytes([5; 32])
}

fn open() -> (SledStore, Arc<ManualClock>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let store = SledStore::open(&dir.path().join("db"), &key(), clock.clone()).unwrap();
    (store, clock, dir)
}

#[tokio::test]
async fn a_replaced_code_leaves_one_expiry_entry_and_a_used_up_code_writes_nothing() {
    let (store, _clock, _dir) = open();
    issue(&store, &new_code("SM1", "+15551111111", 1)).await;
    issue(&store, &new_code("SM2", "+15551111111", 2)).await;
    assert_eq!(store.expiry.len(), 1, "the old code's expiry entry is gone");
    let scope = CodeScope {
        account: "AC1".into(),
        service: "Login".into(),
        number: "+15551111111".into(),
    };
    for _ in 0..3 {
        attempt(&store, "+15551111111", 9).await;
    }
    let (_, wrote) = store
        .attempt_at(&scope, Utc::now(), &lock(), |state, _| {
            crate::otp::judge_attempt(state, Utc::now(), || true)
        })
        .unwrap();
    assert!(
        !wrote,
        "a used-up code changes nothing, so there is nothing to flush"
    );
}

#[tokio::test]
async fn the_message_sweep_resumes_where_its_slice_stopped() {
    let (store, clock, _dir) = open();
    for (id, number) in [
        ("SMa", "+15551111111"),
        ("SMb", "+15552222222"),
        ("SMc", "+15553333333"),
    ] {
        issue(&store, &new_code(id, number, 1)).await;
    }
    for _ in 0..3 {
        let claimed = claim(&store).await;
        store
            .mark_failed(&claimed.lease, Some("m0"), "refused")
            .await
            .unwrap();
    }
    clock.advance(Duration::days(8));
    let before = clock.now() - Duration::days(7);
    let first = store.sweep_messages_from(&[], 2, before).unwrap();
    assert_eq!((first.examined, first.removed), (2, 2));
    let resume = first.resume_at.clone().expect("one record left");
    let second = store.sweep_messages_from(&resume, 2, before).unwrap();
    assert_eq!(
        (second.examined, second.removed, second.resume_at),
        (1, 1, None)
    );
    // Through the trait, the cursor is kept between calls.
    assert!(
        store
            .sweep_messages(2, Duration::days(7))
            .await
            .unwrap()
            .pass_complete
    );
}

#[tokio::test]
async fn a_purged_scope_keeps_only_a_failure_count_below_the_threshold() {
    let (store, clock, _dir) = open();
    issue(&store, &new_code("SM1", "+15551111111", 1)).await;
    issue(&store, &new_code("SM2", "+15552222222", 2)).await;
    attempt(&store, "+15552222222", 7).await;
    clock.advance(Duration::hours(1));
    assert_eq!(store.purge_expired_codes(1000).await.unwrap(), 2);
    assert_eq!(store.codes.len(), 1, "only the failure count stays");
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    {
        let store = SledStore::open(&dir.path().join("db"), &key(), clock.clone()).unwrap();
        issue(&store, &new_code("SM1", "+15551111111", 1)).await;
    }
    let store = open_once_released(&dir.path().join("db")).await.unwrap();
    assert_eq!(store.code_count().await.unwrap(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

#[tokio::test]
async fn the_database_files_never_hold_the_text_or_the_number_in_clear() {
    let (store, _clock, dir) = open();
    let mut code = new_code("SM1", "+14155550002", 1);
    code.message.text = "Your code is 918273".into();
    issue(&store, &code).await;
    let claimed = claim(&store).await;
    assert_eq!(
        claimed.message.text, "Your code is 918273",
        "the dispatcher gets the text back"
    );
    let due = Utc::now();
    store
        .retry_later(&claimed.lease, &claimed.message, None, "test", due)
        .await
        .unwrap();
    let again = claim(&store).await;
    store
        .mark_sent(&again.lease, &again.message, "m0", vec![7])
        .await
        .unwrap();
    store.close().await.unwrap();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        for secret in [&b"918273"[..], b"4155550002"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} holds {:?} in clear",
                entry.display(),
                String::from_utf8_lossy(secret)
            );
        }
    }
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
    assert_eq!(
        store.message("SM1").await.unwrap().unwrap().status,
        MessageStatus::Sent
    );
}

#[tokio::test]
async fn a_database_of_another_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = ::sled::open(&path).unwrap();
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
        let db = ::sled::open(&older).unwrap();
        db.open_tree("codes").unwrap().insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    let error = open_once_released(&older).await.unwrap_err().to_string();
    assert!(error.contains("before format versions"), "{error}");

    // A new one is stamped, and opens again.
    let fresh = dir.path().join("fresh");
    drop(SledStore::open(&fresh, &key(), Arc::new(ManualClock::default())).unwrap());
    open_once_released(&fresh)
        .await
        .expect("our own format reopens");
}

/// Opens the store at `path` once the database dropped just before lets go of its
/// file lock. sled releases the lock from its background threads some time after the
/// last handle is dropped (the store's flusher thread, sled's own flusher), with no way
/// to wait for it; a fixed sleep lost that race on a loaded CI machine. Any other
/// error is returned at once.
async fn open_once_released(path: &std::path::Path) -> Result<SledStore, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledStore::open(path, &key(), Arc::new(ManualClock::default())) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
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
