//! The outbox: what is due, claiming under a lease, and recording each outcome.
//!
//! A claim is a lease with a fencing token. Every later write about the message is
//! conditional on that token, so a host that was presumed dead (its lease ran out and
//! another host took the message over) cannot overwrite what the other host did: its
//! write returns `false` and changes nothing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MessageRecord, OutboundMessage, StoreError};

/// The right to send one message, held until it is recorded or the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub message_id: String,
    /// Grows with every claim of any message: a stale holder's token is smaller than
    /// the current one.
    pub token: i64,
}

/// A message handed to this host for `modem`.
#[derive(Debug)]
pub struct Claimed {
    pub message: OutboundMessage,
    pub modem: String,
    pub lease: Lease,
}

/// Picks this host's modem for a due message, or `None` when none of them should
/// take it now.
pub type Route<'a> = &'a (dyn Fn(&OutboundMessage) -> Option<String> + Send + Sync);

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// When the earliest queued message is due, if any is queued.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Messages waiting (due or not), claimed ones not counted.
    async fn queue_depth(&self) -> Result<u64, StoreError>;

    /// Claim the first due message that `route` finds a modem for, marked `sending`,
    /// durably. Messages whose code expired in the queue are failed on the way (a stale
    /// code must not be sent).
    async fn claim_next(&self, route: Route<'_>) -> Result<Option<Claimed>, StoreError>;

    /// The PDU is about to be written: from now on a crash of this host means the SMS
    /// may arrive twice. Durable when it returns; `false` if the lease is lost (then
    /// the SMS must not be sent).
    async fn begin_submit(&self, lease: &Lease) -> Result<bool, StoreError>;

    /// Keep the lease while the modem works on the message. `false` if it is lost.
    async fn renew(&self, lease: &Lease) -> Result<bool, StoreError>;

    /// The modem accepted every part: the message is `sent`, and its parts are indexed
    /// by (modem, TP-MR) for delivery reports. `false` if the lease was lost.
    async fn mark_sent(
        &self,
        lease: &Lease,
        message: &OutboundMessage,
        modem: &str,
        message_references: Vec<u8>,
    ) -> Result<bool, StoreError>;

    /// The send failed for good: record why and drop the text.
    async fn mark_failed(
        &self,
        lease: &Lease,
        modem: Option<&str>,
        reason: &str,
    ) -> Result<bool, StoreError>;

    /// A temporary failure: back to the queue, due at `due`, with the attempt counters
    /// of `message`.
    async fn retry_later(
        &self,
        lease: &Lease,
        message: &OutboundMessage,
        modem: Option<&str>,
        reason: &str,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Put back claims that their holder will not finish: at start-up this host's own
    /// (it died or stopped mid-send), and any host's whose lease ran out. Those that
    /// may have reached the modem are queued with "may arrive twice" in their history.
    async fn requeue_abandoned(&self) -> Result<usize, StoreError>;

    /// Put back claims of any host whose lease ran out (run every few seconds, so a
    /// dead host's messages go out through the others). Returns how many.
    async fn reclaim_expired(&self) -> Result<usize, StoreError>;

    /// A message's status and history.
    async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError>;
}
