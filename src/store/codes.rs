//! Codes: issuing (code + outbox message in one transaction), attempts, purge.

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, Transactional};

use super::records::{expiry_key, outbox_key, time_key};
use super::{decode, decode_tx, encode, CodeRecord, CodeScope, MessageRecord, MessageStatus};
use super::{OutboundMessage, Store, StoreError, Transition};
use crate::otp::{AttemptVerdict, CodeState};

/// Everything a send request stores, atomically.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub scope: CodeScope,
    pub record: CodeRecord,
    pub message: OutboundMessage,
    pub service: String,
    pub to_masked: String,
}

impl Store {
    /// Store a new code for its scope — replacing any live one, which stops verifying at
    /// once — and queue its SMS. Call [`Store::durable`] before answering.
    pub fn issue_code(&self, new: &NewCode) -> Result<(), StoreError> {
        let scope_key = new.scope.to_key();
        let now = new.record.created_at;
        let message_record = MessageRecord {
            id: new.message.id.clone(),
            account: new.message.account.clone(),
            service: new.service.clone(),
            to_masked: new.to_masked.clone(),
            created_at: now,
            expires_at: new.record.expires_at,
            status: MessageStatus::Queued,
            history: vec![Transition {
                at: now,
                status: MessageStatus::Queued,
                modem: None,
                message_references: Vec::new(),
                detail: None,
            }],
        };
        let record_bytes = encode(&new.record);
        let message_bytes = self.seal(&new.message);
        let history_bytes = encode(&message_record);
        (&self.codes, &self.expiry, &self.outbox, &self.messages).transaction(
            |(codes, expiry, outbox, messages)| {
                if let Some(old) = codes.get(&scope_key)? {
                    let old: CodeRecord = decode_tx(&old, "codes")?;
                    expiry.remove(expiry_key(old.expires_at, &scope_key))?;
                }
                codes.insert(scope_key.as_slice(), record_bytes.as_slice())?;
                expiry.insert(expiry_key(new.record.expires_at, &scope_key), &[])?;
                outbox.insert(outbox_key(now, &new.message.id), message_bytes.as_slice())?;
                messages.insert(new.message.id.as_bytes(), history_bytes.as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            },
        )?;
        Ok(())
    }

    /// One verification attempt, decided by `judge` on the stored state, applied
    /// atomically: approval consumes the code, a wrong code counts an attempt, an
    /// expired code is removed. Call [`Store::durable`] before answering.
    pub fn attempt(
        &self,
        scope: &CodeScope,
        now: DateTime<Utc>,
        judge: impl Fn(Option<CodeState>, &[u8; 32]) -> AttemptVerdict,
    ) -> Result<AttemptVerdict, StoreError> {
        let scope_key = scope.to_key();
        let verdict = (&self.codes, &self.expiry).transaction(|(codes, expiry)| {
            let record: Option<CodeRecord> = match codes.get(&scope_key)? {
                Some(bytes) => Some(decode_tx(&bytes, "codes")?),
                None => None,
            };
            let state = record.as_ref().map(|r| CodeState {
                expires_at: r.expires_at,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
            });
            let hash = record.as_ref().map(|r| r.hash).unwrap_or([0; 32]);
            let verdict = judge(state, &hash);
            if let Some(mut record) = record {
                let remove = verdict == AttemptVerdict::Approved
                    || (verdict == AttemptVerdict::NotFound && now >= record.expires_at);
                if remove {
                    codes.remove(scope_key.as_slice())?;
                    expiry.remove(expiry_key(record.expires_at, &scope_key))?;
                } else if let AttemptVerdict::Wrong { .. } = verdict {
                    record.attempts += 1;
                    codes.insert(scope_key.as_slice(), encode(&record))?;
                }
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(verdict)
        })?;
        Ok(verdict)
    }

    /// Remove every code that expired before `now`, through the expiry index. Returns
    /// how many were removed.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut purged = 0;
        for entry in self.expiry.range(..time_key(now).to_vec()) {
            let (index_key, _) = entry?;
            let scope_key = &index_key[8..];
            (&self.codes, &self.expiry).transaction(|(codes, expiry)| {
                if let Some(bytes) = codes.get(scope_key)? {
                    let record: CodeRecord = decode_tx(&bytes, "codes")?;
                    // A newer code may have replaced the expired one under the same scope.
                    if expiry_key(record.expires_at, scope_key) == index_key.as_ref() {
                        codes.remove(scope_key)?;
                    }
                }
                expiry.remove(index_key.as_ref())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })?;
            purged += 1;
        }
        Ok(purged)
    }

    /// Number of live (unpurged) codes.
    pub fn code_count(&self) -> usize {
        self.codes.len()
    }

    pub fn code(&self, scope: &CodeScope) -> Result<Option<CodeRecord>, StoreError> {
        self.codes
            .get(scope.to_key())?
            .map(|bytes| decode(&bytes, "codes"))
            .transpose()
    }
}
