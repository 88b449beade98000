//! Events on sled: one tree keyed by a sequence number, another holding each
//! endpoint's cursor.
//!
//! Order without gaps: the sequence number is taken, and the event written, while
//! holding [`EventLog::seq`], inside the same sled transaction as the change it
//! describes; so when a reader sees event `n`, every event before it is already in the
//! tree. A reader returns nothing that is not yet on disk (it waits for the flush).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{decode, encode, SledStore};
use crate::store::{
    EventBatch, EventCursor, EventFilter, EventGate, EventInterest, EventKind, EventStore,
    NewEvent, StoreError, StoredEvent,
};

/// Entries looked at per read: bounds the work of an endpoint whose filter skips most.
const SCAN_LIMIT: usize = 1000;

#[derive(Debug, Default)]
pub struct EventLog {
    /// The last sequence number handed out.
    seq: Mutex<u64>,
    pub gate: EventGate,
    /// This host's name, for the events' `host`.
    pub node: String,
}

impl EventLog {
    pub fn open(events: &::sled::Tree, node: &str) -> Result<Arc<Self>, StoreError> {
        let last = match events.last()? {
            Some((key, _)) => seq_of(&key),
            None => 0,
        };
        Ok(Arc::new(Self {
            seq: Mutex::new(last),
            gate: EventGate::default(),
            node: node.to_owned(),
        }))
    }
}

/// An event as the tree holds it; its data sealed under its id.
#[derive(Serialize, Deserialize)]
struct Row {
    id: String,
    account: Option<String>,
    kind: String,
    created_at: DateTime<Utc>,
    #[serde(with = "serde_bytes_hex")]
    sealed: Vec<u8>,
}

mod serde_bytes_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

fn seq_of(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// An event ready to be written in a transaction, in a [`Slot`] held until the
/// transaction that writes it is done.
pub(super) struct Pending<'a> {
    slot: Slot<'a>,
    bytes: Vec<u8>,
}

impl Pending<'_> {
    /// Write it in the transaction of the change it describes.
    pub fn write(
        &self,
        events: &::sled::transaction::TransactionalTree,
    ) -> Result<(), ::sled::transaction::UnabortableTransactionError> {
        events.insert(&self.slot.key, self.bytes.as_slice())?;
        Ok(())
    }
}

/// A sequence number taken, and its lock held, for an event decided only inside a
/// transaction (a delivery report's outcome).
pub(super) struct Slot<'a> {
    _seq: MutexGuard<'a, u64>,
    key: [u8; 8],
}

impl SledStore {
    /// A slot for an event a transaction may write, when some endpoint may want one.
    pub(super) fn event_slot(&self) -> Option<Slot<'_>> {
        if self.event_log.gate.is_off() {
            return None;
        }
        Some(self.take_slot())
    }

    /// The next sequence number, its lock held by the slot. A number lost to a
    /// transaction that wrote nothing is a harmless gap.
    fn take_slot(&self) -> Slot<'_> {
        let mut seq = self
            .event_log
            .seq
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *seq += 1;
        let key = seq.to_be_bytes();
        Slot { _seq: seq, key }
    }

    /// Write `event` into `slot` in the transaction, if some endpoint wants it.
    pub(super) fn write_in_slot(
        &self,
        slot: Option<&Slot<'_>>,
        events: &::sled::transaction::TransactionalTree,
        event: Option<NewEvent>,
    ) -> Result<(), ::sled::transaction::UnabortableTransactionError> {
        if let (Some(slot), Some(event)) = (slot, self.event_log.gate.keep(event)) {
            events.insert(&slot.key, self.event_row(event))?;
        }
        Ok(())
    }

    fn event_row(&self, event: NewEvent) -> Vec<u8> {
        encode(&Row {
            sealed: self
                .at_rest
                .seal_event(&event.id, &serde_json::Value::Object(event.data.clone())),
            id: event.id,
            account: event.account,
            kind: event.kind.name().to_owned(),
            created_at: self.clock.now(),
        })
    }

    /// Take the next sequence number for `event`, if some endpoint wants it. Hold the
    /// result until the transaction that writes it is done.
    pub(super) fn pending_event(&self, event: Option<NewEvent>) -> Option<Pending<'_>> {
        let event = self.event_log.gate.keep(event)?;
        Some(Pending {
            slot: self.take_slot(),
            bytes: self.event_row(event),
        })
    }

    /// Write `event` on its own (no other change goes with it), before the flush.
    pub(super) fn write_event(&self, event: Option<NewEvent>) -> Result<(), StoreError> {
        if let Some(pending) = self.pending_event(event) {
            self.events
                .insert(pending.slot.key, pending.bytes.as_slice())?;
        }
        Ok(())
    }

    /// The event at `key` if `filter` takes it; its data is unsealed only then.
    fn read_event(
        &self,
        key: &[u8],
        bytes: &[u8],
        filter: &EventFilter,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let row: Row = decode(bytes, "events")?;
        let Some(kind) = filter.takes(row.account.as_deref(), &row.kind) else {
            return Ok(None);
        };
        let data = match self.at_rest.unseal_event(&row.id, &row.sealed)? {
            serde_json::Value::Object(data) => data,
            _ => serde_json::Map::new(),
        };
        Ok(Some(StoredEvent {
            cursor: cursor_of(seq_of(key)),
            id: row.id,
            account: row.account,
            kind,
            created_at: row.created_at,
            data,
        }))
    }
}

fn cursor_of(seq: u64) -> EventCursor {
    EventCursor {
        major: i64::try_from(seq).unwrap_or(i64::MAX),
        minor: 0,
    }
}

fn seq_after(cursor: EventCursor) -> [u8; 8] {
    u64::try_from(cursor.major)
        .unwrap_or(0)
        .saturating_add(1)
        .to_be_bytes()
}

#[async_trait]
impl EventStore for SledStore {
    fn set_event_interest(&self, interest: EventInterest) {
        self.event_log.gate.set(interest);
    }

    fn wants_event(&self, account: Option<&str>, kind: EventKind) -> bool {
        self.event_log.gate.wants(account, kind)
    }

    async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        for event in events {
            self.write_event(Some(event.clone()))?;
        }
        self.durable().await
    }

    async fn webhook_cursor(&self, endpoint: &str) -> Result<EventCursor, StoreError> {
        if let Some(bytes) = self.webhooks.get(endpoint.as_bytes())? {
            return Ok(cursor_of(seq_of(&bytes)));
        }
        let last = match self.events.last()? {
            Some((key, _)) => seq_of(&key),
            None => 0,
        };
        self.webhooks
            .insert(endpoint.as_bytes(), &last.to_be_bytes())?;
        self.durable().await?;
        Ok(cursor_of(last))
    }

    async fn events_after(
        &self,
        cursor: EventCursor,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<EventBatch, StoreError> {
        let mut batch = EventBatch::default();
        for entry in self.events.range(seq_after(cursor)..).take(SCAN_LIMIT) {
            let (key, bytes) = entry?;
            let event = self.read_event(&key, &bytes, filter)?;
            if !batch.take(cursor_of(seq_of(&key)), event, limit) {
                break;
            }
        }
        if !batch.events.is_empty() {
            // Only what is on disk: an event is told once its change is durable (a
            // change still on its way to the flush may have written its event).
            self.durable().await?;
        }
        Ok(batch)
    }

    async fn events_pending(
        &self,
        cursor: EventCursor,
        filter: &EventFilter,
    ) -> Result<u64, StoreError> {
        let mut pending = 0;
        for entry in self.events.range(seq_after(cursor)..) {
            let (_, bytes) = entry?;
            let row: Row = decode(&bytes, "events")?;
            pending += u64::from(filter.takes(row.account.as_deref(), &row.kind).is_some());
        }
        Ok(pending)
    }

    async fn claim_webhook(
        &self,
        _endpoint: &str,
        _node: &str,
        _lease: chrono::Duration,
    ) -> Result<bool, StoreError> {
        // One host: it holds every endpoint.
        Ok(true)
    }

    async fn advance_webhook(
        &self,
        endpoint: &str,
        _node: &str,
        to: EventCursor,
    ) -> Result<bool, StoreError> {
        let seq = u64::try_from(to.major).unwrap_or(0);
        self.webhooks
            .insert(endpoint.as_bytes(), &seq.to_be_bytes())?;
        self.durable().await?;
        Ok(true)
    }

    async fn purge_events(&self, age: chrono::Duration) -> Result<usize, StoreError> {
        let before = self.clock.now() - age;
        let mut purged = 0;
        for entry in self.events.iter() {
            let (key, bytes) = entry?;
            let row: Row = decode(&bytes, "events")?;
            // Written in time order: the first one young enough ends the purge.
            if row.created_at >= before {
                break;
            }
            self.events.remove(key)?;
            purged += 1;
        }
        if purged > 0 {
            self.durable().await?;
        }
        Ok(purged)
    }
}
