//! What `/2fa/verify`, `/2fa/cancel` and `/2fa/unlock` do: judge an attempt against
//! the stored hash, invalidate a live code, lift a number's lock.

use subtle::ConstantTimeEq;

use super::{scope, TwoFactor};
use crate::otp::{judge_attempt, AttemptVerdict, LockPolicy, ServiceName};
use crate::sms::PhoneNumber;
use crate::store::StoreError;

/// A validated verify request. The candidate code is kept as given; anything that is
/// not the code is simply a wrong code.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub service: ServiceName,
    pub number: PhoneNumber,
    pub code: String,
}

impl TwoFactor {
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
}
