//! Events for webhooks: what happened, written in the same durable step as the change
//! it describes, then read in order by the endpoint that wants it.
//!
//! A backend writes an event only when some endpoint wants its type for its account
//! ([`EventInterest`], from the `[[webhook]]` config), so a gateway without webhooks
//! writes nothing more than before. Each endpoint keeps a cursor in the store; events
//! after it are delivered oldest first, and the cursor moves past an event once it is
//! delivered (or dropped after a day of retries). A backend must hand out events in an
//! order no later write can fall behind, so that a cursor never skips one.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{json, Map, Value};

use super::{MessageRecord, MessageStatus, StoreError, Transition};

/// The event types, by their names in payloads and in `[[webhook]] events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    MessageQueued,
    MessageSent,
    MessageDelivered,
    MessageFailed,
    VerificationApproved,
    VerificationMaxAttempts,
    NumberLocked,
    ModemReady,
    ModemDown,
    ModemFatal,
    ModemSignalLow,
    ModemCapReached,
    SmsReceived,
    QueueStalled,
}

impl EventKind {
    /// An account's events: about its messages and its users' verifications.
    pub const ACCOUNT: [Self; 7] = [
        Self::MessageQueued,
        Self::MessageSent,
        Self::MessageDelivered,
        Self::MessageFailed,
        Self::VerificationApproved,
        Self::VerificationMaxAttempts,
        Self::NumberLocked,
    ];

    /// The operator's events: about the gateway itself.
    pub const OPERATOR: [Self; 7] = [
        Self::ModemReady,
        Self::ModemDown,
        Self::ModemFatal,
        Self::ModemSignalLow,
        Self::ModemCapReached,
        Self::SmsReceived,
        Self::QueueStalled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MessageQueued => "message.queued",
            Self::MessageSent => "message.sent",
            Self::MessageDelivered => "message.delivered",
            Self::MessageFailed => "message.failed",
            Self::VerificationApproved => "verification.approved",
            Self::VerificationMaxAttempts => "verification.max_attempts",
            Self::NumberLocked => "number.locked",
            Self::ModemReady => "modem.ready",
            Self::ModemDown => "modem.down",
            Self::ModemFatal => "modem.fatal",
            Self::ModemSignalLow => "modem.signal_low",
            Self::ModemCapReached => "modem.cap_reached",
            Self::SmsReceived => "sms.received",
            Self::QueueStalled => "queue.stalled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ACCOUNT
            .into_iter()
            .chain(Self::OPERATOR)
            .find(|kind| kind.name() == name)
    }

    /// The event a message's move to `status` makes: `sent`, `delivered` and
    /// `failed` are told; `sending` and a retry's `queued` are not.
    pub fn of_transition(status: MessageStatus) -> Option<Self> {
        match status {
            MessageStatus::Sent => Some(Self::MessageSent),
            MessageStatus::Delivered => Some(Self::MessageDelivered),
            MessageStatus::Failed => Some(Self::MessageFailed),
            MessageStatus::Queued | MessageStatus::Sending => None,
        }
    }

    pub fn is_account_event(self) -> bool {
        Self::ACCOUNT.contains(&self)
    }
}

/// An event to write: for `account`'s endpoints, or the operator's (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `evt_` + 32 hex digits: the `webhook-id` of every attempt to deliver it.
    pub id: String,
    pub account: Option<String>,
    pub kind: EventKind,
    /// What the payload's `data` holds: ids, masked numbers, names, reasons; never a
    /// code, a code's SMS text or a full number.
    pub data: Map<String, Value>,
}

impl NewEvent {
    pub fn new(account: Option<&str>, kind: EventKind, data: Map<String, Value>) -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self {
            id: format!("evt_{}", hex::encode(bytes)),
            account: account.map(str::to_owned),
            kind,
            data,
        }
    }
}

/// An event as stored, with its place in the order and its time (the store's).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub cursor: EventCursor,
    pub id: String,
    pub account: Option<String>,
    pub kind: EventKind,
    pub created_at: DateTime<Utc>,
    pub data: Map<String, Value>,
}

impl StoredEvent {
    /// The delivered body: `{"type","timestamp","data"}`. The same bytes on every
    /// attempt; only `webhook-timestamp` changes.
    pub fn payload(&self) -> String {
        json!({
            "type": self.kind.name(),
            "timestamp": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
        .to_string()
    }
}

/// A place in a backend's event order: sled's sequence number, or PostgreSQL's
/// (transaction id, row id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor {
    pub major: i64,
    pub minor: i64,
}

/// Which events an endpoint reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// `Some`: that account's events; `None`: the operator's.
    pub account: Option<String>,
    pub kinds: Vec<EventKind>,
}

impl EventFilter {
    pub fn matches(&self, account: Option<&str>, kind: EventKind) -> bool {
        self.account.as_deref() == account && self.kinds.contains(&kind)
    }

    /// The kind of a stored row, if this build knows it (a newer one may have written
    /// it) and the filter takes it: decided before the row's data is unsealed.
    pub fn takes(&self, account: Option<&str>, kind: &str) -> Option<EventKind> {
        EventKind::parse(kind).filter(|kind| self.matches(account, *kind))
    }
}

/// Which events some endpoint wants, so that a backend writes no other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventInterest {
    by_account: HashMap<String, HashSet<EventKind>>,
    operator: HashSet<EventKind>,
}

impl EventInterest {
    pub fn of(filters: &[EventFilter]) -> Self {
        let mut interest = Self::default();
        for filter in filters {
            let kinds = match &filter.account {
                Some(account) => interest.by_account.entry(account.clone()).or_default(),
                None => &mut interest.operator,
            };
            kinds.extend(filter.kinds.iter().copied());
        }
        interest
    }

    pub fn wants(&self, account: Option<&str>, kind: EventKind) -> bool {
        match account {
            Some(account) => self
                .by_account
                .get(account)
                .is_some_and(|kinds| kinds.contains(&kind)),
            None => self.operator.contains(&kind),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_account.is_empty() && self.operator.is_empty()
    }
}

/// The event a message's transition makes, if any: `sent`, `delivered` and `failed`
/// (with the reason) are told; `sending` and a retry's `queued` are not.
pub fn message_event(
    record: &MessageRecord,
    transition: &Transition,
    host: &str,
) -> Option<NewEvent> {
    let kind = EventKind::of_transition(transition.status)?;
    Some(message_event_of(
        &record.account,
        &record.id,
        &record.service,
        &record.to_masked,
        kind,
        transition.modem.as_deref(),
        transition.detail.as_deref(),
        host,
    ))
}

/// `sms.received` (an operator event): the text is the operator's; the sender is
/// masked like every number in an event.
pub fn received_event(sms: &super::ReceivedSms) -> NewEvent {
    let sender = crate::sms::PhoneNumber::parse(&sms.sender)
        .map(|n| n.masked())
        .unwrap_or_else(|_| mask_other(&sms.sender));
    let mut data = Map::new();
    data.insert("sms_id".into(), sms.id.clone().into());
    data.insert("from".into(), sender.into());
    data.insert("text".into(), sms.text.clone().into());
    data.insert("modem".into(), sms.modem.clone().into());
    data.insert("host".into(), sms.host.clone().into());
    data.insert("parts".into(), sms.parts.into());
    data.insert("incomplete".into(), sms.incomplete.into());
    data.insert(
        "received_at".into(),
        sms.received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    NewEvent::new(None, EventKind::SmsReceived, data)
}

/// A sender that is not an E.164 number (a short code, an alphanumeric name) keeps
/// its first and last characters only when it is long enough to hide the rest.
fn mask_other(sender: &str) -> String {
    let chars: Vec<char> = sender.chars().collect();
    if chars.len() <= 4 || chars.iter().any(|c| c.is_alphabetic()) {
        return sender.to_owned();
    }
    let hidden = chars.len() - 4;
    format!(
        "{}{}{}",
        chars[..2].iter().collect::<String>(),
        "*".repeat(hidden),
        chars[chars.len() - 2..].iter().collect::<String>()
    )
}

/// `message.queued` for a message just admitted.
pub fn queued_event(record: &MessageRecord, host: &str) -> NewEvent {
    message_event_of(
        &record.account,
        &record.id,
        &record.service,
        &record.to_masked,
        EventKind::MessageQueued,
        None,
        None,
        host,
    )
}

/// A message's event from its parts (PostgreSQL reads them back from one statement).
#[allow(clippy::too_many_arguments)]
pub fn message_event_of(
    account: &str,
    message_id: &str,
    service: &str,
    to_masked: &str,
    kind: EventKind,
    modem: Option<&str>,
    reason: Option<&str>,
    host: &str,
) -> NewEvent {
    let mut data = Map::new();
    data.insert("message_id".into(), message_id.into());
    data.insert("service".into(), service.into());
    data.insert("number".into(), to_masked.into());
    data.insert("host".into(), host.into());
    if let Some(modem) = modem {
        data.insert("modem".into(), modem.into());
    }
    if kind == EventKind::MessageFailed {
        data.insert("reason".into(), reason.unwrap_or("failed").into());
    }
    NewEvent::new(Some(account), kind, data)
}

/// The events a verification attempt makes, from the scope's state before and after
/// it: `verification.approved`, `verification.max_attempts` (this attempt used the
/// last try) and `number.locked` (this attempt locked the number).
pub fn attempt_events(
    scope: &super::CodeScope,
    before: &super::ScopeState,
    after: &super::ScopeState,
    verdict: &crate::otp::AttemptVerdict,
    host: &str,
) -> Vec<NewEvent> {
    use crate::otp::AttemptVerdict;
    let number = crate::sms::PhoneNumber::parse(&scope.number)
        .map(|n| n.masked())
        .unwrap_or_else(|_| "***".to_owned());
    let event = |kind: EventKind, extra: Option<(&str, Value)>| {
        let mut data = Map::new();
        if let Some(code) = &before.code {
            data.insert("message_id".into(), code.message_id.clone().into());
        }
        data.insert("service".into(), scope.service.clone().into());
        data.insert("number".into(), number.clone().into());
        data.insert("host".into(), host.into());
        if let Some((key, value)) = extra {
            data.insert(key.into(), value);
        }
        NewEvent::new(Some(&scope.account), kind, data)
    };
    let mut events = Vec::new();
    match verdict {
        AttemptVerdict::Approved => events.push(event(EventKind::VerificationApproved, None)),
        AttemptVerdict::Wrong { remaining: 0 } => {
            events.push(event(EventKind::VerificationMaxAttempts, None));
        }
        _ => {}
    }
    if let Some(until) = after.failures.locked_until {
        if before.failures.locked_until != Some(until) {
            let until = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            events.push(event(
                EventKind::NumberLocked,
                Some(("locked_until", until.into())),
            ));
        }
    }
    events
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Which events to write from now on (at start and on reload).
    fn set_event_interest(&self, interest: EventInterest);

    /// Whether some endpoint wants `kind` for `account` (`None`: the operator), so
    /// that watching for it can be skipped otherwise.
    fn wants_event(&self, account: Option<&str>, kind: EventKind) -> bool;

    /// Write events that describe no other change of the store (a modem's state, the
    /// queue, a ping), if some endpoint wants them. Durable when it returns.
    async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError>;

    /// The endpoint's cursor: where it left off, or, for an endpoint never seen, the
    /// end of the events (it gets what happens from now on).
    async fn webhook_cursor(&self, endpoint: &str) -> Result<EventCursor, StoreError>;

    /// Up to `limit` events after `cursor` that `filter` takes, in order; only events
    /// whose change is durable (committed).
    async fn events_after(
        &self,
        cursor: EventCursor,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<EventBatch, StoreError>;

    /// How many events after `cursor` `filter` takes (a gauge).
    async fn events_pending(
        &self,
        cursor: EventCursor,
        filter: &EventFilter,
    ) -> Result<u64, StoreError>;

    /// Take the endpoint for `node` for `lease` (or keep it), so that one host
    /// delivers its events; `false` while another live host holds it.
    async fn claim_webhook(
        &self,
        endpoint: &str,
        node: &str,
        lease: chrono::Duration,
    ) -> Result<bool, StoreError>;

    /// Move the endpoint's cursor to `to` (an event delivered or dropped). `false`
    /// if `node` no longer holds the endpoint (then another host delivers).
    async fn advance_webhook(
        &self,
        endpoint: &str,
        node: &str,
        to: EventCursor,
    ) -> Result<bool, StoreError>;

    /// Forget events written more than `age` ago (past every retry), by the store's
    /// clock. Returns how many.
    async fn purge_events(&self, age: chrono::Duration) -> Result<usize, StoreError>;
}

/// Events are kept this long: a day of retries, and an hour's margin.
pub const EVENT_RETENTION: chrono::Duration = chrono::Duration::hours(25);

/// What a backend needs to decide whether to write an event: the interest in force.
#[derive(Debug, Default)]
pub struct EventGate {
    interest: std::sync::RwLock<std::sync::Arc<EventInterest>>,
}

impl EventGate {
    pub fn set(&self, interest: EventInterest) {
        *self
            .interest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(interest);
    }

    pub fn wants(&self, account: Option<&str>, kind: EventKind) -> bool {
        // The lock only guards a pointer swap: a poisoned lock still holds a whole value.
        self.interest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .wants(account, kind)
    }

    /// Whether no endpoint wants anything (then nothing need be read to decide).
    pub fn is_off(&self) -> bool {
        self.interest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// `event` if some endpoint wants it.
    pub fn keep(&self, event: Option<NewEvent>) -> Option<NewEvent> {
        event.filter(|e| self.wants(e.account.as_deref(), e.kind))
    }
}

/// What [`EventStore::events_after`] read: the events the filter takes, and how far
/// it looked (past events the filter skips, so that a cursor can move past them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBatch {
    pub events: Vec<StoredEvent>,
    pub scanned_to: Option<EventCursor>,
}

impl EventBatch {
    /// Take the row at `cursor`: its event if the filter took it (`None`: skipped).
    /// Whether the batch has room for more (`limit`).
    pub fn take(&mut self, cursor: EventCursor, event: Option<StoredEvent>, limit: usize) -> bool {
        self.scanned_to = Some(cursor);
        self.events.extend(event);
        self.events.len() < limit
    }
}
