//! SMS the modems received: kept `message_retention`, newest first for `GET
//! /sms/inbox`. The sender and the text are sealed like an outgoing message's (the
//! text may be anything a carrier or a person wrote; the sender is a phone number).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// One received SMS (its parts joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// `RX` + 32 hex digits, unique.
    pub id: String,
    /// The modem (`[[modem]] name`) that received it, and its host.
    pub modem: String,
    pub host: String,
    pub sender: String,
    pub text: String,
    /// When this gateway read it.
    pub received_at: DateTime<Utc>,
    /// The service centre's time stamp (RFC 3339), as the SMS carried it.
    pub sent_at: String,
    pub parts: u32,
    /// Parts never came; the text marks where.
    pub incomplete: bool,
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Keep `sms`; storing the same id twice keeps one.
    async fn store_received(&self, sms: &ReceivedSms) -> Result<(), StoreError>;

    /// Received SMS newest first, those received after `since` (all when `None`), at
    /// most `limit`.
    async fn received(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<ReceivedSms>, StoreError>;

    /// Forget up to `max` received SMS older than `retention`; how many went.
    async fn purge_received(
        &self,
        retention: chrono::Duration,
        max: usize,
    ) -> Result<usize, StoreError>;
}
