//! `Idempotency-Key` records: the first answer to a send, replayed for the same key and
//! body within 24 hours.

use ::sled::transaction::{ConflictableTransactionError, Transactional};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::records::time_key;
use super::{decode, decode_tx, encode, SledStore};
use crate::store::idempotency::KeyRecord;
use crate::store::{
    length_prefixed, Begin, IdempotencyStore, StoreError, StoredAnswer, IDEMPOTENCY_WINDOW,
};

#[async_trait]
impl IdempotencyStore for SledStore {
    async fn begin_idempotent(
        &self,
        account: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Begin, StoreError> {
        let begin = self.begin_idempotent_at(account, key, fingerprint, self.clock.now())?;
        if begin == Begin::Proceed {
            self.durable().await?;
        }
        Ok(begin)
    }

    async fn finish_idempotent(
        &self,
        account: &str,
        key: &str,
        answer: Option<StoredAnswer>,
    ) -> Result<(), StoreError> {
        self.finish_idempotent_now(account, key, answer)?;
        self.durable().await
    }
}

impl SledStore {
    /// The record key of a client's `Idempotency-Key`: by digest, since a client may
    /// well put a phone number in it.
    fn record_key(&self, account: &str, key: &str) -> Vec<u8> {
        let digest = self.at_rest.idempotency_key_digest(key);
        length_prefixed(&[account.as_bytes(), &digest])
    }

    fn begin_idempotent_at(
        &self,
        account: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Begin, StoreError> {
        let record_key = self.record_key(account, key);
        let fingerprint = &self.at_rest.fingerprint_digest(fingerprint);
        let fresh = KeyRecord {
            fingerprint: fingerprint.to_owned(),
            created_at: now,
            answer: None,
        };
        let begin =
            (&self.idempotency, &self.idempotency_index).transaction(|(records, index)| {
                if let Some(bytes) = records.get(&record_key)? {
                    let old: KeyRecord = decode_tx(&bytes, "idempotency")?;
                    if let Some(begin) = old.judge(fingerprint, now) {
                        return Ok(begin);
                    }
                    index.remove(index_key(old.created_at, &record_key))?;
                }
                records.insert(record_key.as_slice(), encode(&fresh))?;
                index.insert(index_key(now, &record_key), &[])?;
                Ok::<_, ConflictableTransactionError<StoreError>>(Begin::Proceed)
            })?;
        Ok(begin)
    }

    fn finish_idempotent_now(
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
            let mut record: KeyRecord = decode_tx(&bytes, "idempotency")?;
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
    pub(super) fn purge_idempotency_at(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let horizon = time_key(now - IDEMPOTENCY_WINDOW).to_vec();
        let mut purged = 0;
        for entry in self.idempotency_index.range(..horizon) {
            let (index_entry, _) = entry?;
            let record_key = &index_entry[8..];
            if let Some(bytes) = self.idempotency.get(record_key)? {
                let record: KeyRecord = decode(&bytes, "idempotency")?;
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
