//! `Idempotency-Key` records: the first answer to a send, replayed for the same key and
//! body within 24 hours.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::StoreError;

/// How long a key is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);
/// A request still "in flight" after this long died with its process; its key is free.
pub const ABANDONED_AFTER: Duration = Duration::seconds(60);

/// The first answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

/// What a request with an `Idempotency-Key` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use of the key: go ahead, then call
    /// [`IdempotencyStore::finish_idempotent`].
    Proceed,
    /// Same key, same body, answered before: answer the same again.
    Replay(StoredAnswer),
    /// Same key, same body, still being answered.
    InFlight,
    /// Same key, another body.
    Mismatch,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Take the key for a request whose body has `fingerprint`, or say why not.
    async fn begin_idempotent(
        &self,
        account: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Begin, StoreError>;

    /// Remember the answer (`Some`), or forget the key (`None`: a server error, which a
    /// retry with the same key should be allowed to redo). Durable when it returns.
    async fn finish_idempotent(
        &self,
        account: &str,
        key: &str,
        answer: Option<StoredAnswer>,
    ) -> Result<(), StoreError>;
}

/// A key's record as a backend stores it: the keyed digest of the first request's
/// fingerprint, when it came, and its answer once there is one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyRecord {
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub answer: Option<StoredAnswer>,
}

impl KeyRecord {
    /// What a request with `fingerprint` (digest) does with this record at `now`:
    /// `None` when the record no longer holds the key (older than the window, or a
    /// request that died in flight), so the new request takes it over.
    pub fn judge(&self, fingerprint: &str, now: DateTime<Utc>) -> Option<Begin> {
        let live = now - self.created_at < IDEMPOTENCY_WINDOW;
        let abandoned = self.answer.is_none() && now - self.created_at >= ABANDONED_AFTER;
        if !live || abandoned {
            return None;
        }
        if self.fingerprint != fingerprint {
            return Some(Begin::Mismatch);
        }
        Some(match &self.answer {
            Some(answer) => Begin::Replay(answer.clone()),
            None => Begin::InFlight,
        })
    }
}
