//! What the API's routes do, independent of HTTP: the one send path for codes and
//! relayed texts ([`send`]), and the judging of verifications ([`verify`]).

mod send;
mod verify;

use std::sync::Arc;

use rand::RngCore;
use tokio::sync::Notify;

use crate::capacity::Capacity;
use crate::config::{OtpConfig, SmsConfig};
use crate::otp::{CodeHasher, ServiceName};
use crate::sms::PhoneNumber;
use crate::store::{CodeScope, MessageRecord, SharedStore, StoreError};

pub use send::{Accepted, IdempotencyKey, Issued, Outgoing, RelayRequest, SendError, SendRequest};
pub use verify::VerifyRequest;

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
    /// Whether some modem could send now; without it (tools, benchmarks) every send
    /// is queued.
    capacity: Option<Arc<Capacity>>,
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
            capacity: None,
        }
    }

    /// Refuse sends (`no_modem_available`) while `capacity` says no modem could send.
    pub fn with_capacity(mut self, capacity: Arc<Capacity>) -> Self {
        self.capacity = Some(capacity);
        self
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
