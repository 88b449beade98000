//! Received SMS in sled: `inbox` keyed by time then id, so the newest are read from
//! the end and the purge is a range from the start.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::usage::{purge_before, time_bytes};
use super::{decode, encode, SledStore};
use crate::store::{InboxStore, ReceivedSms, StoreError};

/// What the tree holds: the sender, text and time stamp only sealed.
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    modem: String,
    host: String,
    received_at: DateTime<Utc>,
    parts: u32,
    incomplete: bool,
    sealed: Vec<u8>,
}

fn key(at: DateTime<Utc>, id: &str) -> Vec<u8> {
    let mut key = time_bytes(at).to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

#[async_trait]
impl InboxStore for SledStore {
    async fn store_received(&self, sms: &ReceivedSms) -> Result<(), StoreError> {
        let stored = Stored {
            id: sms.id.clone(),
            modem: sms.modem.clone(),
            host: sms.host.clone(),
            received_at: sms.received_at,
            parts: sms.parts,
            incomplete: sms.incomplete,
            sealed: self
                .at_rest
                .seal_received(&sms.id, &sms.sender, &sms.text, &sms.sent_at),
        };
        self.inbox
            .insert(key(sms.received_at, &sms.id), encode(&stored))?;
        self.write_event(Some(crate::store::received_event(sms)))?;
        self.durable().await
    }

    async fn received(
        &self,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<ReceivedSms>, StoreError> {
        let mut out = Vec::new();
        for entry in self.inbox.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (_, value) = entry?;
            let stored: Stored = decode(&value, "inbox")?;
            if since.is_some_and(|since| stored.received_at <= since) {
                break;
            }
            let (sender, text, sent_at) =
                self.at_rest.unseal_received(&stored.id, &stored.sealed)?;
            out.push(ReceivedSms {
                id: stored.id,
                modem: stored.modem,
                host: stored.host,
                sender,
                text,
                received_at: stored.received_at,
                sent_at,
                parts: stored.parts,
                incomplete: stored.incomplete,
            });
        }
        Ok(out)
    }

    async fn purge_received(
        &self,
        retention: chrono::Duration,
        max: usize,
    ) -> Result<usize, StoreError> {
        let purged = purge_before(&self.inbox, self.clock.now() - retention, max)?;
        self.durable().await?;
        Ok(purged)
    }
}
