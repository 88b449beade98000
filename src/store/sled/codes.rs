//! Codes: issuing (limits checked, then the code, its history and its outbox message),
//! attempts, cancel, unlock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::records::{account_history_key, expiry_key, number_history_key, outbox_key};
use super::{decode, decode_or_default, encode, SledStore};
use crate::otp::{AccountBudget, AttemptVerdict, LockPolicy, SendHistory, SendLimits, SendRefusal};
use crate::store::{
    attempt_events, queued_event, CodeRecord, CodeScope, CodeStore, Issued, Judge, NewCode,
    ScopeState, StoreError,
};

#[async_trait]
impl CodeStore for SledStore {
    async fn issue_code(
        &self,
        new: &NewCode,
        limits: &SendLimits,
        lock: &LockPolicy,
    ) -> Result<Result<Issued, SendRefusal>, StoreError> {
        let issued = self.issue_code_at(new, limits, lock, self.clock.now())?;
        if issued.is_ok() {
            // Nothing is answered before the flush.
            self.durable().await?;
        }
        Ok(issued)
    }

    async fn attempt(
        &self,
        scope: &CodeScope,
        lock: &LockPolicy,
        judge: Judge<'_>,
    ) -> Result<AttemptVerdict, StoreError> {
        let now = self.clock.now();
        let ((verdict, before, after), wrote) = self.update_scope(scope, |record| {
            let before = record.clone();
            let verdict = record.attempt(now, lock, |state, hash| judge(state, hash, now));
            (verdict, before, record.clone())
        })?;
        // An attempt that changed nothing (unknown, expired, used up, locked) has
        // nothing to make durable, and nothing to tell.
        if wrote {
            // Written before the flush that makes the attempt durable: both are on disk
            // together, or neither is answered.
            for event in attempt_events(scope, &before, &after, &verdict, &self.event_log.node) {
                self.write_event(Some(event))?;
            }
            self.durable().await?;
        }
        Ok(verdict)
    }

    async fn cancel_code(&self, scope: &CodeScope) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let (cancelled, wrote) = self.update_scope(scope, |record| record.cancel(now))?;
        if wrote {
            self.durable().await?;
        }
        Ok(cancelled)
    }

    async fn unlock(&self, scope: &CodeScope, lock: &LockPolicy) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let (was_locked, wrote) = self.update_scope(scope, |record| record.unlock(now, lock))?;
        if wrote {
            self.durable().await?;
        }
        Ok(was_locked)
    }

    async fn code(&self, scope: &CodeScope) -> Result<Option<CodeRecord>, StoreError> {
        Ok(self
            .codes
            .get(self.scope_key(scope))?
            .map(|bytes| decode::<ScopeState>(&bytes, "codes"))
            .transpose()?
            .and_then(|record| record.code))
    }

    async fn code_count(&self) -> Result<usize, StoreError> {
        let mut live = 0;
        for entry in self.codes.iter().values() {
            let record: ScopeState = decode(&entry?, "codes")?;
            live += usize::from(record.code.is_some());
        }
        Ok(live)
    }
}

impl SledStore {
    /// [`CodeStore::issue_code`] at `now`, before the flush.
    fn issue_code_at(
        &self,
        new: &NewCode,
        send_limits: &SendLimits,
        lock: &LockPolicy,
        now: DateTime<Utc>,
    ) -> Result<Result<Issued, SendRefusal>, StoreError> {
        let scope_key = self.scope_key(&new.scope);
        let admitted = new.admitted_at(now);
        let expires_at = admitted.code.expires_at;
        let record = admitted.code;
        let message_record = admitted.history;
        let message_bytes = self.seal(&admitted.outbound);
        let history_bytes = encode(&message_record);
        let message_record = &message_record;
        let number_key = number_history_key(
            &new.scope.account,
            &self.at_rest.number_digest(&new.scope.number),
        );
        let account_key = account_history_key(&new.scope.account);
        // Sends to one number take turns, so that two cannot both pass its cooldown;
        // everything else here is a single-key write. No sled transaction: those take
        // a process-wide write lock and roll the log buffer twice each. The outbox
        // entry is written last, so a send that fails half-way leaves nothing to
        // deliver, only records that expire; nothing is answered before the flush.
        let _turn = self.send_turns.take(&number_key);
        let scope_record: ScopeState =
            decode_or_default(self.codes.get(&scope_key)?.as_ref(), "codes")?;
        if let Some(retry_after) = lock.locked(now, &mut scope_record.failures.clone()) {
            return Ok(Err(SendRefusal::NumberLocked { retry_after }));
        }
        if let Err(refusal) = self.admit_send(&number_key, &account_key, send_limits, now)? {
            return Ok(Err(refusal));
        }
        let (replaced, _) =
            self.update_scope(&new.scope, |scope| scope.code.replace(record.clone()))?;
        if let Some(old) = replaced {
            self.expiry.remove(expiry_key(old.expires_at, &scope_key))?;
        }
        self.expiry
            .insert(expiry_key(expires_at, &scope_key), &[])?;
        self.messages
            .insert(new.message.id.as_bytes(), history_bytes)?;
        self.outbox
            .insert(outbox_key(now, &new.message.id), message_bytes)?;
        self.write_event(Some(queued_event(message_record, &self.event_log.node)))?;
        Ok(Ok(Issued { expires_at }))
    }

    /// Judge a send to the number under `number_key` by `send_limits` and, if they
    /// admit it, count it in the number's history and the account's budget. The
    /// caller holds the number's turn; the account's budget is a compare-and-swap,
    /// shared with every other number of the account.
    pub(super) fn admit_send(
        &self,
        number_key: &[u8],
        account_key: &[u8],
        send_limits: &SendLimits,
        now: DateTime<Utc>,
    ) -> Result<Result<(), SendRefusal>, StoreError> {
        let number_sends: SendHistory =
            decode_or_default(self.limits.get(number_key)?.as_ref(), "limits")?;
        let number_sends = loop {
            let current = self.limits.get(account_key)?;
            let mut budget: AccountBudget = decode_or_default(current.as_ref(), "limits")?;
            let mut sends = number_sends.clone();
            if let Err(refusal) = send_limits.admit(now, &mut sends, &mut budget) {
                return Ok(Err(refusal));
            }
            let swapped =
                self.limits
                    .compare_and_swap(account_key, current, Some(encode(&budget)))?;
            if swapped.is_ok() {
                break sends;
            }
        };
        self.limits.insert(number_key, encode(&number_sends))?;
        Ok(Ok(()))
    }

    /// [`CodeStore::attempt`] at `now`, before the flush. Expired codes are left to
    /// housekeeping, so that an expired code costs the same work as an unknown one.
    /// Returns the verdict and whether anything was written.
    #[cfg(test)]
    pub(super) fn attempt_at(
        &self,
        scope: &CodeScope,
        now: DateTime<Utc>,
        lock: &LockPolicy,
        judge: impl Fn(Option<crate::otp::CodeState>, &[u8; 32]) -> AttemptVerdict,
    ) -> Result<(AttemptVerdict, bool), StoreError> {
        self.update_scope(scope, |record| record.attempt(now, lock, &judge))
    }

    /// Read-modify-write of one scope's record by compare-and-swap, retried if another
    /// request changed it meanwhile (so `change` may run more than once and must only
    /// look at the record). Returns what `change` returned and whether it wrote.
    fn update_scope<T>(
        &self,
        scope: &CodeScope,
        change: impl Fn(&mut ScopeState) -> T,
    ) -> Result<(T, bool), StoreError> {
        self.update_scope_at(&self.scope_key(scope), change)
    }

    /// [`SledStore::update_scope`] by the scope's key (housekeeping has only the key).
    pub(super) fn update_scope_at<T>(
        &self,
        key: &[u8],
        change: impl Fn(&mut ScopeState) -> T,
    ) -> Result<(T, bool), StoreError> {
        loop {
            let current = self.codes.get(key)?;
            let before: ScopeState = decode_or_default(current.as_ref(), "codes")?;
            let mut after = before.clone();
            let outcome = change(&mut after);
            if after == before {
                return Ok((outcome, false));
            }
            let replacement = (!after.is_empty()).then(|| encode(&after));
            if self
                .codes
                .compare_and_swap(key, current, replacement)?
                .is_ok()
            {
                return Ok((outcome, true));
            }
        }
    }
}
