//! `Idempotency-Key` records: the first answer to a send, replayed for the same key and
//! body within 24 hours.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, Transactional};

use super::records::length_prefixed;
use super::records::time_key;
use super::{decode, decode_tx, encode, Store, StoreError};

/// How long a key is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);
/// A request still "in flight" after this long died with its process; its key is free.
const ABANDONED_AFTER: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyRecord {
    /// Keyed digest of the request's fingerprint (which covers its numbers), hex.
    fingerprint: String,
    created_at: DateTime<Utc>,
    answer: Option<StoredAnswer>,
}

/// The first answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}

/// What a request with an `Idempotency-Key` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use of the key: go ahead, then call [`Store::finish_idempotent`].
    Proceed,
    /// Same key, same body, answered before: answer the same again.
    Replay(StoredAnswer),
    /// Same key, same body, still being answered.
    InFlight,
    /// Same key, another body.
    Mismatch,
}

impl Store {
    /// The record key of a client's `Idempotency-Key`: by digest, since a client may
    /// well put a phone number in it.
    fn record_key(&self, account: &str, key: &str) -> Vec<u8> {
        let digest = self
            .pseudonyms
            .digest(super::IDEMPOTENCY_KEY, key.as_bytes());
        length_prefixed(&[account.as_bytes(), &digest])
    }

    pub fn begin_idempotent(
        &self,
        account: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Begin, StoreError> {
        let record_key = self.record_key(account, key);
        let fingerprint = &hex::encode(
            self.pseudonyms
                .digest(super::FINGERPRINT, fingerprint.as_bytes()),
        );
        let fresh = IdempotencyRecord {
            fingerprint: fingerprint.to_owned(),
            created_at: now,
            answer: None,
        };
        let begin =
            (&self.idempotency, &self.idempotency_index).transaction(|(records, index)| {
                if let Some(bytes) = records.get(&record_key)? {
                    let old: IdempotencyRecord = decode_tx(&bytes, "idempotency")?;
                    let live = now - old.created_at < IDEMPOTENCY_WINDOW;
                    let abandoned = old.answer.is_none() && now - old.created_at >= ABANDONED_AFTER;
                    if live && !abandoned {
                        if &old.fingerprint != fingerprint {
                            return Ok(Begin::Mismatch);
                        }
                        return Ok(match old.answer {
                            Some(answer) => Begin::Replay(answer),
                            None => Begin::InFlight,
                        });
                    }
                    index.remove(index_key(old.created_at, &record_key))?;
                }
                records.insert(record_key.as_slice(), encode(&fresh))?;
                index.insert(index_key(now, &record_key), &[])?;
                Ok::<_, ConflictableTransactionError<StoreError>>(Begin::Proceed)
            })?;
        Ok(begin)
    }

    /// Remember the answer (`Some`), or forget the key (`None`: a server error, which a
    /// retry with the same key should be allowed to redo).
    pub fn finish_idempotent(
        &self,
        account: &str,
        key: &str,
        answer: Option<StoredAnswer>,
    ) -> Result<(), StoreError> {
        let record_key = self.record_key(account, key);
        (&self.idempotency, &self.idempotency_index).transaction(|(records, index)| {
            let Some(bytes) = records.get(&record_key)? else {
                return Ok(());
            };
            let mut record: IdempotencyRecord = decode_tx(&bytes, "idempotency")?;
            match &answer {
                Some(answer) => {
                    record.answer = Some(answer.clone());
                    records.insert(record_key.as_slice(), encode(&record))?;
                }
                None => {
                    records.remove(record_key.as_slice())?;
                    index.remove(index_key(record.created_at, &record_key))?;
                }
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    /// Forget keys older than the window. Returns how many.
    pub fn purge_idempotency(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let horizon = time_key(now - IDEMPOTENCY_WINDOW).to_vec();
        let mut purged = 0;
        for entry in self.idempotency_index.range(..horizon) {
            let (index_entry, _) = entry?;
            let record_key = &index_entry[8..];
            if let Some(bytes) = self.idempotency.get(record_key)? {
                let record: IdempotencyRecord = decode(&bytes, "idempotency")?;
                if index_key(record.created_at, record_key) == index_entry.as_ref() {
                    self.idempotency.remove(record_key)?;
                }
            }
            self.idempotency_index.remove(index_entry)?;
            purged += 1;
        }
        Ok(purged)
    }
}

fn index_key(created_at: DateTime<Utc>, record_key: &[u8]) -> Vec<u8> {
    let mut key = time_key(created_at).to_vec();
    key.extend_from_slice(record_key);
    key
}
