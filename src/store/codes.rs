//! Codes: issuing (limits checked, code + outbox message in one transaction), attempts,
//! cancel, unlock.

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, Transactional, TransactionalTree};

use super::records::{
    account_history_key, expiry_key, failures_key, number_history_key, outbox_key,
};
use super::{decode, decode_tx, encode, CodeRecord, CodeScope, MessageRecord, MessageStatus};
use super::{OutboundMessage, Store, StoreError, Transition};
use crate::otp::{
    AccountBudget, AttemptVerdict, CodeState, FailureCount, LockPolicy, SendHistory, SendLimits,
    SendRefusal,
};

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

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
    /// If the limits admit it, store a new code for its scope — replacing any live one,
    /// which stops verifying at once, while the failure count stays — and queue its SMS.
    /// Call [`Store::durable`] before answering.
    pub fn issue_code(
        &self,
        new: &NewCode,
        send_limits: &SendLimits,
        lock: &LockPolicy,
    ) -> Result<Result<(), SendRefusal>, StoreError> {
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
            parts: 0,
            delivered_parts: 0,
        };
        let record_bytes = encode(&new.record);
        let message_bytes = self.seal(&new.message);
        let history_bytes = encode(&message_record);
        let number_key = number_history_key(&new.scope.account, &new.scope.number);
        let account_key = account_history_key(&new.scope.account);
        let failures = failures_key(&scope_key);
        let trees = (
            &self.codes,
            &self.expiry,
            &self.outbox,
            &self.messages,
            &self.limits,
        );
        let outcome = trees.transaction(|(codes, expiry, outbox, messages, limits)| {
            let mut count: FailureCount = read_or_default(limits, &failures)?;
            if let Some(retry_after) = lock.locked(now, &mut count) {
                return Ok(Err(SendRefusal::NumberLocked { retry_after }));
            }
            let mut number_sends: SendHistory = read_or_default(limits, &number_key)?;
            let mut account_budget: AccountBudget = read_or_default(limits, &account_key)?;
            if let Err(refusal) = send_limits.admit(now, &mut number_sends, &mut account_budget) {
                return Ok(Err(refusal));
            }
            limits.insert(number_key.as_slice(), encode(&number_sends))?;
            limits.insert(account_key.as_slice(), encode(&account_budget))?;
            if let Some(old) = codes.get(&scope_key)? {
                let old: CodeRecord = decode_tx(&old, "codes")?;
                expiry.remove(expiry_key(old.expires_at, &scope_key))?;
            }
            codes.insert(scope_key.as_slice(), record_bytes.as_slice())?;
            expiry.insert(expiry_key(new.record.expires_at, &scope_key), &[])?;
            outbox.insert(outbox_key(now, &new.message.id), message_bytes.as_slice())?;
            messages.insert(new.message.id.as_bytes(), history_bytes.as_slice())?;
            Ok(Ok(()))
        })?;
        Ok(outcome)
    }

    /// One verification attempt, applied atomically: a locked number is refused before
    /// any code is looked at; otherwise `judge` decides on the stored state. Approval
    /// consumes the code and clears the failure count; a wrong code counts against both
    /// the code and the number. Expired codes are left to housekeeping, so that an
    /// expired code costs the same work as an unknown one.
    /// Call [`Store::durable`] before answering.
    pub fn attempt(
        &self,
        scope: &CodeScope,
        now: DateTime<Utc>,
        lock: &LockPolicy,
        judge: impl Fn(Option<CodeState>, &[u8; 32]) -> AttemptVerdict,
    ) -> Result<AttemptVerdict, StoreError> {
        let scope_key = scope.to_key();
        let failures = failures_key(&scope_key);
        let verdict =
            (&self.codes, &self.expiry, &self.limits).transaction(|(codes, expiry, limits)| {
                let mut count: FailureCount = read_or_default(limits, &failures)?;
                if let Some(retry_after) = lock.locked(now, &mut count) {
                    return Ok(AttemptVerdict::NumberLocked { retry_after });
                }
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
                match (verdict, record) {
                    (AttemptVerdict::Approved, Some(record)) => {
                        codes.remove(scope_key.as_slice())?;
                        expiry.remove(expiry_key(record.expires_at, &scope_key))?;
                        limits.remove(failures.as_slice())?;
                    }
                    (AttemptVerdict::Wrong { .. }, Some(mut record)) => {
                        record.attempts += 1;
                        codes.insert(scope_key.as_slice(), encode(&record))?;
                        lock.record_failure(now, &mut count);
                        limits.insert(failures.as_slice(), encode(&count))?;
                    }
                    _ => {}
                }
                Ok(verdict)
            })?;
        Ok(verdict)
    }

    /// Invalidate the live code of `scope`. Returns whether there was one.
    pub fn cancel_code(&self, scope: &CodeScope, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let scope_key = scope.to_key();
        let cancelled = (&self.codes, &self.expiry).transaction(|(codes, expiry)| {
            let Some(bytes) = codes.remove(scope_key.as_slice())? else {
                return Ok(false);
            };
            let record: CodeRecord = decode_tx(&bytes, "codes")?;
            expiry.remove(expiry_key(record.expires_at, &scope_key))?;
            Ok(now < record.expires_at)
        })?;
        Ok(cancelled)
    }

    /// Clear the failure count (and lock) of `scope`. Returns whether it was locked.
    pub fn unlock(
        &self,
        scope: &CodeScope,
        now: DateTime<Utc>,
        lock: &LockPolicy,
    ) -> Result<bool, StoreError> {
        let failures = failures_key(&scope.to_key());
        let Some(bytes) = self.limits.remove(failures)? else {
            return Ok(false);
        };
        let mut count: FailureCount = decode(&bytes, "limits")?;
        Ok(lock.locked(now, &mut count).is_some())
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

fn read_or_default<T: serde::de::DeserializeOwned + Default>(
    tree: &TransactionalTree,
    key: &[u8],
) -> TxResult<T> {
    match tree.get(key)? {
        Some(bytes) => decode_tx(&bytes, "limits"),
        None => Ok(T::default()),
    }
}
