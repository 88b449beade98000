//! Codes and the limits that guard them: issuing (limits checked, then the code, its
//! history and its outbox message, in one durable step), attempts, cancel, unlock.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::{
    CodeRecord, CodeScope, MessageRecord, MessageStatus, OutboundMessage, StoreError, Transition,
};
use crate::otp::{AttemptVerdict, CodeState, LockPolicy, SendLimits, SendRefusal};

/// Everything a send request stores. Times are the store's: it sets `created_at` and
/// the expiry from its own clock (the database's, where several hosts share one).
#[derive(Debug, Clone)]
pub struct NewCode {
    pub scope: CodeScope,
    /// The code's keyed hash ([`crate::otp::CodeHasher`]); never the code.
    pub hash: [u8; 32],
    pub ttl: Duration,
    pub max_attempts: u32,
    pub message: NewMessage,
    pub service: String,
    pub to_masked: String,
}

/// What a new code becomes when the store admits it at `now`.
pub struct Admitted {
    pub code: CodeRecord,
    pub history: MessageRecord,
    pub outbound: OutboundMessage,
}

impl NewCode {
    /// The code record, the message's history (queued) and the message to send, as
    /// of `now`, the store's clock.
    pub fn admitted_at(&self, now: DateTime<Utc>) -> Admitted {
        let expires_at = now + self.ttl;
        let (history, outbound) =
            self.message
                .admitted_at(now, expires_at, &self.service, &self.to_masked);
        Admitted {
            code: CodeRecord {
                hash: self.hash,
                created_at: now,
                expires_at,
                attempts: 0,
                max_attempts: self.max_attempts,
                message_id: self.message.id.clone(),
            },
            history,
            outbound,
        }
    }
}

/// The SMS a new code (or a relayed text) goes out in. `from` may be empty: any
/// modem sends it.
#[derive(Clone)]
pub struct NewMessage {
    pub id: String,
    pub account: String,
    pub from: String,
    pub to: String,
    pub text: String,
}

impl std::fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMessage")
            .field("id", &self.id)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl NewMessage {
    /// The message's history (queued) and the message to send, admitted at `now` (the
    /// store's clock) to be sent before `expires_at`.
    pub fn admitted_at(
        &self,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        service: &str,
        to_masked: &str,
    ) -> (MessageRecord, OutboundMessage) {
        let history = MessageRecord {
            id: self.id.clone(),
            account: self.account.clone(),
            service: service.to_owned(),
            to_masked: to_masked.to_owned(),
            created_at: now,
            expires_at,
            status: MessageStatus::Queued,
            history: vec![Transition::new(now, MessageStatus::Queued)],
            parts: 0,
            delivered_parts: 0,
        };
        let outbound = OutboundMessage {
            id: self.id.clone(),
            account: self.account.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            text: self.text.clone(),
            expires_at,
            attempts: 0,
            unconfirmed: 0,
            last_modem: None,
        };
        (history, outbound)
    }
}

/// A code the limits admitted, stored and queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    pub expires_at: DateTime<Utc>,
}

/// Decides an attempt from the stored code's state, its hash and the store's `now`
/// ([`crate::otp::judge_attempt`] with the candidate's comparison).
pub type Judge<'a> =
    &'a (dyn Fn(Option<CodeState>, &[u8; 32], DateTime<Utc>) -> AttemptVerdict + Send + Sync);

#[async_trait]
pub trait CodeStore: Send + Sync {
    /// If the limits admit it, store a new code for its scope — replacing any live one,
    /// which stops verifying at once, while the failure count stays — and queue its
    /// SMS. Returns once all of it is durable; a refusal writes nothing.
    async fn issue_code(
        &self,
        new: &NewCode,
        limits: &SendLimits,
        lock: &LockPolicy,
    ) -> Result<Result<Issued, SendRefusal>, StoreError>;

    /// One verification attempt, applied atomically to the scope: a locked number is
    /// refused before any code is looked at; otherwise `judge` decides on the stored
    /// state. Approval consumes the code and clears the failure count; a wrong code
    /// counts against both the code and the number. What it changed is durable when
    /// it returns.
    async fn attempt(
        &self,
        scope: &CodeScope,
        lock: &LockPolicy,
        judge: Judge<'_>,
    ) -> Result<AttemptVerdict, StoreError>;

    /// Invalidate the live code of `scope`. Returns whether there was one.
    async fn cancel_code(&self, scope: &CodeScope) -> Result<bool, StoreError>;

    /// Clear the failure count (and lock) of `scope`. Returns whether it was locked.
    async fn unlock(&self, scope: &CodeScope, lock: &LockPolicy) -> Result<bool, StoreError>;

    /// The live code of `scope`, if any (tests and tools).
    async fn code(&self, scope: &CodeScope) -> Result<Option<CodeRecord>, StoreError>;

    /// Number of unpurged codes. Reads every one: for tests and benchmarks, not for a
    /// request path.
    async fn code_count(&self) -> Result<usize, StoreError>;
}
