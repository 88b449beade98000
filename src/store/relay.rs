//! Relayed SMS: a text an account wrote itself (`/sms/send`, `/cgi-bin/sendsms`),
//! queued under the number's daily cap and the account's rate, without a code.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::{MessageRecord, NewMessage, OutboundMessage, StoreError};
use crate::otp::{SendLimits, SendRefusal};

/// The name a relayed message's history shows as its service.
pub const RELAY_SERVICE: &str = "relay";

/// Everything a relay request stores.
#[derive(Debug, Clone)]
pub struct NewText {
    pub message: NewMessage,
    /// Unsent after this long (from the store's now), the message expires in the queue.
    pub ttl: Duration,
    pub to_masked: String,
}

impl NewText {
    /// The history (queued) and the message to send, as of the store's `now`.
    pub fn admitted_at(&self, now: DateTime<Utc>) -> (MessageRecord, OutboundMessage) {
        self.message
            .admitted_at(now, now + self.ttl, RELAY_SERVICE, &self.to_masked)
    }
}

/// A relayed text the limits admitted, stored and queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait RelayStore: Send + Sync {
    /// If the number's daily cap and the account's rate admit it (`limits`; a relay
    /// has no cooldown, so its `cooldown` is zero), count the send and queue the SMS.
    /// Durable when it returns; a refusal writes nothing.
    async fn queue_text(
        &self,
        new: &NewText,
        limits: &SendLimits,
    ) -> Result<Result<Queued, SendRefusal>, StoreError>;
}
