//! The records every backend stores and returns, as the rest of the program sees them.
//! How a backend lays them out (keys, tables, sealed columns) is its own business.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The (account, service, number) a code belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeScope {
    pub account: String,
    pub service: String,
    /// E.164, full: this never leaves the process except towards the modem. Backends
    /// key by its keyed digest ([`super::AtRest::number_digest`]) instead.
    pub number: String,
}

impl CodeScope {
    /// The bytes a code's keyed hash is bound to, so that a stored hash is worthless
    /// for any other scope. Never written anywhere.
    pub fn binding(&self) -> Vec<u8> {
        length_prefixed(&[
            self.account.as_bytes(),
            self.service.as_bytes(),
            self.number.as_bytes(),
        ])
    }
}

/// Parts with length prefixes, so that no choice of service name can make two keys
/// collide.
pub fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| 2 + p.len()).sum());
    for part in parts {
        // Fields are bounded far below 64 KiB by the API and the config.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(part);
    }
    key
}

/// A live code. Only its keyed hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    #[serde(with = "hex_digest")]
    pub hash: [u8; 32],
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub message_id: String,
}

/// A digest as 64 hex digits rather than serde's array of 32 numbers: half the bytes,
/// and read on every verification.
mod hex_digest {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(digest: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(digest))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text, &mut digest).map_err(D::Error::custom)?;
        Ok(digest)
    }
}

/// An SMS waiting in the outbox (or claimed by a dispatcher), as the rest of the
/// program sees it. At rest its numbers and text are sealed ([`super::AtRest::seal`]).
#[derive(Clone)]
pub struct OutboundMessage {
    pub id: String,
    pub account: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub expires_at: DateTime<Utc>,
    /// Send attempts made so far.
    pub attempts: u32,
    /// Of those, the ones the modem never answered after the PDU: each may have sent
    /// the SMS, so they have a budget of their own.
    pub unconfirmed: u32,
    /// The modem of the last failed attempt: a retry prefers another one.
    pub last_modem: Option<String>,
}

impl std::fmt::Debug for OutboundMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
}

impl MessageStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One step of a message's life, as shown by `GET /2fa/messages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_references: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Transition {
    pub fn new(at: DateTime<Utc>, status: MessageStatus) -> Self {
        Self {
            at,
            status,
            modem: None,
            message_references: Vec::new(),
            detail: None,
        }
    }

    /// Handed to `modem`, for the `attempt`-th time.
    pub fn sending(at: DateTime<Utc>, modem: &str, attempt: u32) -> Self {
        let sending = Self::new(at, MessageStatus::Sending).on(Some(modem));
        if attempt > 1 {
            sending.because(format!("attempt {attempt}"))
        } else {
            sending
        }
    }

    pub fn on(mut self, modem: Option<&str>) -> Self {
        self.modem = modem.map(str::to_owned);
        self
    }

    pub fn because(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A message's status and history. Holds no text and only the masked number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: String,
    pub account: String,
    pub service: String,
    pub to_masked: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: MessageStatus,
    pub history: Vec<Transition>,
    /// SMS parts the message went out as, and how many were reported delivered.
    #[serde(default)]
    pub parts: u8,
    #[serde(default)]
    pub delivered_parts: u8,
}

impl MessageRecord {
    pub fn push(&mut self, transition: Transition) {
        self.status = transition.status;
        self.history.push(transition);
    }
}

/// What a requeue after a crash writes in the history: the modem may or may not have
/// sent the SMS.
pub const MAY_ARRIVE_TWICE: &str =
    "the daemon stopped while this message was being sent; it may arrive twice";

/// What a message whose code expired in the queue is failed with.
pub const EXPIRED_IN_QUEUE: &str = "the code expired before the SMS could be sent";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_cannot_collide_through_separators() {
        let a = CodeScope {
            account: "AC1".into(),
            service: "a\0b".into(),
            number: "+15551234567".into(),
        };
        let b = CodeScope {
            account: "AC1\0a".into(),
            service: "b".into(),
            number: "+15551234567".into(),
        };
        assert_ne!(a.binding(), b.binding());
    }

    #[test]
    fn a_code_record_stores_its_digest_as_hex_and_reads_it_back() {
        let record = CodeRecord {
            hash: [0xAB; 32],
            created_at: Utc::now(),
            expires_at: Utc::now(),
            attempts: 1,
            max_attempts: 5,
            message_id: "SM1".into(),
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(
            json.contains(&format!("\"hash\":\"{}\"", "ab".repeat(32))),
            "{json}"
        );
        let back: CodeRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.hash, record.hash);
        let truncated = json.replace(&"ab".repeat(32), "abab");
        assert!(serde_json::from_str::<CodeRecord>(&truncated).is_err());
    }
}
