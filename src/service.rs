//! What `/2fa/send` and `/2fa/verify` do, independent of HTTP: issue a code and queue
//! its SMS durably; judge a verification attempt.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::RngCore;
use tokio::sync::Notify;

use crate::config::{OtpConfig, SmsConfig};
use subtle::ConstantTimeEq;

use crate::otp::{
    destination_allowed, judge_attempt, AttemptVerdict, CodeHasher, LockPolicy, OtpCode,
    SendLimits, SendRefusal, ServiceName, Template,
};
use crate::sms::{self, PhoneNumber};
use crate::store::{
    Begin, CodeScope, MessageRecord, NewCode, NewMessage, SharedStore, StoreError, StoredAnswer,
};

/// A validated send request.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub service: ServiceName,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub body: Template,
}

impl SendRequest {
    /// SHA-256 over the fields, length-prefixed: the same request gives the same value
    /// whatever the JSON's key order or spacing.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for field in [
            self.service.as_str(),
            self.from.as_str(),
            self.to.as_str(),
            self.body.as_str(),
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// A validated verify request. The candidate code is kept as given; anything that is
/// not the code is simply a wrong code.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub service: ServiceName,
    pub number: PhoneNumber,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub message_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the SMS would need {parts_needed} parts; at most {max_parts} are allowed")]
    BodyTooLong {
        parts_needed: usize,
        max_parts: usize,
    },
    #[error("the destination is not in otp.allowed_prefixes")]
    DestinationNotAllowed,
    #[error("refused by a send limit: {0:?}")]
    Limited(SendRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Policy knobs taken from the config (reloadable as a whole).
#[derive(Debug, Clone)]
pub struct Policy {
    pub otp: OtpConfig,
    pub sms: SmsConfig,
}

impl Policy {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            otp: config.otp.clone(),
            sms: config.sms.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TwoFactor {
    store: SharedStore,
    hasher: CodeHasher,
    /// Swapped whole by [`TwoFactor::set_policy`] (SIGHUP).
    policy: Arc<std::sync::RwLock<Arc<Policy>>>,
    /// Wakes the dispatcher when a message is queued.
    queued: Arc<Notify>,
}

impl TwoFactor {
    pub fn new(
        store: SharedStore,
        hasher: CodeHasher,
        policy: Policy,
        queued: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            hasher,
            policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))),
            queued,
        }
    }

    /// The policy in force; a request keeps the one it read first.
    fn policy(&self) -> Arc<Policy> {
        // The lock only guards a pointer swap: a poisoned lock still holds a whole value.
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Apply new limits (a config reload); codes already issued keep their expiry.
    pub fn set_policy(&self, policy: Policy) {
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    /// Generate a code, store its hash and queue its SMS; returns once both are durable.
    pub async fn send(&self, account: &str, request: &SendRequest) -> Result<Issued, IssueError> {
        let policy = self.policy();
        if !destination_allowed(&policy.otp.allowed_prefixes, request.to.as_str()) {
            return Err(IssueError::DestinationNotAllowed);
        }
        let code = OtpCode::generate(policy.otp.code_length);
        let text = request.body.render(&code);
        let plan = sms::plan_with(&text, policy.sms.concat_reference_16bit);
        if plan.parts > policy.sms.max_parts {
            return Err(IssueError::BodyTooLong {
                parts_needed: plan.parts,
                max_parts: policy.sms.max_parts,
            });
        }
        let ttl = i64::try_from(policy.otp.ttl_secs).unwrap_or(i64::MAX);
        let scope = scope(account, &request.service, &request.to);
        let message_id = new_message_id();
        let new = NewCode {
            hash: self.hasher.hash_code(&scope.binding(), &code),
            ttl: chrono::Duration::seconds(ttl),
            max_attempts: policy.otp.max_attempts,
            message: NewMessage {
                id: message_id.clone(),
                account: account.to_owned(),
                from: request.from.as_str().to_owned(),
                to: request.to.as_str().to_owned(),
                text,
            },
            service: request.service.as_str().to_owned(),
            to_masked: request.to.masked(),
            scope,
        };
        let limits = SendLimits::from_config(&policy.otp);
        let lock = LockPolicy::from_config(&policy.otp);
        let issued = match self.store.issue_code(&new, &limits, &lock).await? {
            Ok(issued) => issued,
            Err(refusal) => {
                tracing::info!(to = %request.to, service = request.service.as_str(), refusal = ?refusal, "send refused by a limit");
                return Err(IssueError::Limited(refusal));
            }
        };
        self.queued.notify_one();
        tracing::info!(message_id = %message_id, to = %request.to, service = request.service.as_str(), "code issued, SMS queued");
        Ok(Issued {
            message_id,
            expires_at: issued.expires_at,
        })
    }

    /// Judge one attempt; what it changed is durable when this returns.
    pub async fn verify(
        &self,
        account: &str,
        request: &VerifyRequest,
    ) -> Result<AttemptVerdict, StoreError> {
        let scope = scope(account, &request.service, &request.number);
        // Hash the candidate whatever is stored, so an unknown number, an expired code
        // and a used one cost the same work.
        let candidate = self.hasher.hash(&scope.binding(), &request.code);
        let lock = LockPolicy::from_config(&self.policy().otp);
        let judge = move |state, stored: &[u8; 32], now| {
            judge_attempt(state, now, || candidate.ct_eq(stored).into())
        };
        let verdict = self.store.attempt(&scope, &lock, &judge).await?;
        tracing::info!(number = %request.number, service = request.service.as_str(), outcome = ?verdict, "verification attempt");
        Ok(verdict)
    }

    /// Invalidate the live code of (account, service, number). Returns whether one was live.
    pub async fn cancel(
        &self,
        account: &str,
        service: &ServiceName,
        number: &PhoneNumber,
    ) -> Result<bool, StoreError> {
        let cancelled = self
            .store
            .cancel_code(&scope(account, service, number))
            .await?;
        tracing::info!(number = %number, service = service.as_str(), cancelled, "code cancelled");
        Ok(cancelled)
    }

    /// Lift the lock of (account, service, number) and clear its failure count.
    /// Returns whether it was locked.
    pub async fn unlock(
        &self,
        account: &str,
        service: &ServiceName,
        number: &PhoneNumber,
    ) -> Result<bool, StoreError> {
        let lock = LockPolicy::from_config(&self.policy().otp);
        let was_locked = self
            .store
            .unlock(&scope(account, service, number), &lock)
            .await?;
        tracing::info!(number = %number, service = service.as_str(), was_locked, "number unlocked");
        Ok(was_locked)
    }

    /// Start a send under an `Idempotency-Key`; see [`Begin`].
    pub async fn begin_idempotent(
        &self,
        account: &str,
        key: &str,
        request: &SendRequest,
    ) -> Result<Begin, StoreError> {
        self.store
            .begin_idempotent(account, key, &request.fingerprint())
            .await
    }

    /// Record the first answer to a keyed send (`None` frees the key: nothing was sent).
    pub async fn finish_idempotent(
        &self,
        account: &str,
        key: &str,
        answer: Option<StoredAnswer>,
    ) -> Result<(), StoreError> {
        self.store.finish_idempotent(account, key, answer).await
    }

    /// The status history of a message, if it belongs to `account`.
    pub async fn message(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self
            .store
            .message(id)
            .await?
            .filter(|m| m.account == account))
    }
}

fn scope(account: &str, service: &ServiceName, number: &PhoneNumber) -> CodeScope {
    CodeScope {
        account: account.to_owned(),
        service: service.as_str().to_owned(),
        number: number.as_str().to_owned(),
    }
}

/// `SM` + 32 hex digits from the CSPRNG: unguessable, so one account cannot probe
/// another's message ids.
fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("SM{}", hex::encode(bytes))
}
