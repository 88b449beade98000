//! What the trees hold, and how their keys are laid out so that range scans answer
//! the questions we ask (what is due, what has expired).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::otp::FailureCount;

/// The (account, service, number) a code belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeScope {
    pub account: String,
    pub service: String,
    /// E.164, full: this never leaves the process except towards the modem. Store keys
    /// hold its keyed digest ([`crate::otp::Pseudonymizer`]) instead.
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

/// `codes` key of a scope: account, service, and the number's digest.
pub fn scope_key(account: &str, service: &str, number_digest: &[u8]) -> Vec<u8> {
    length_prefixed(&[account.as_bytes(), service.as_bytes(), number_digest])
}

/// `limits` key of the send history of one number (by its digest), per account (not
/// across accounts: one account must not learn that another sends to a number).
pub fn number_history_key(account: &str, number_digest: &[u8]) -> Vec<u8> {
    let mut key = vec![b'n'];
    key.extend_from_slice(&scope_key(account, "", number_digest));
    key
}

/// `limits` key of an account's send budget.
pub fn account_history_key(account: &str) -> Vec<u8> {
    let mut key = vec![b'r'];
    key.extend_from_slice(account.as_bytes());
    key
}

/// What `codes` holds per scope: its live code, if any, and its consecutive wrong
/// codes, which outlive a code (they count across resends). One key, so that a
/// verification is a single compare-and-swap: sled's multi-tree transactions take a
/// process-wide write lock and roll the log buffer twice each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRecord {
    #[serde(default)]
    pub code: Option<CodeRecord>,
    #[serde(default)]
    pub failures: FailureCount,
}

impl ScopeRecord {
    /// Nothing worth keeping: the key can go.
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.failures == FailureCount::default()
    }
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

/// An SMS waiting in the outbox (or claimed, in `inflight`), as the rest of the
/// program sees it. On disk it is a [`SealedMessage`].
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

/// The stored form of an [`OutboundMessage`]: its numbers and text encrypted together
/// ([`SealedContent`]: nonce ‖ ciphertext ‖ tag, hex), so that neither a code nor a
/// phone number is ever written to the database in clear.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedMessage {
    pub id: String,
    pub account: String,
    pub sealed: String,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    #[serde(default)]
    pub unconfirmed: u32,
    #[serde(default)]
    pub last_modem: Option<String>,
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

/// What [`SealedMessage::sealed`] holds once opened.
#[derive(Serialize, Deserialize)]
pub struct SealedContent {
    pub from: String,
    pub to: String,
    pub text: String,
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

/// Big-endian milliseconds, so byte order is time order.
pub fn time_key(at: DateTime<Utc>) -> [u8; 8] {
    // Times before 1970 never occur here; clamp rather than wrap if one does.
    u64::try_from(at.timestamp_millis())
        .unwrap_or(0)
        .to_be_bytes()
}

/// `outbox` key: due time, then message id.
pub fn outbox_key(due: DateTime<Utc>, id: &str) -> Vec<u8> {
    let mut key = time_key(due).to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// `expiry` key: expiry time, then the code's scope key.
pub fn expiry_key(expires_at: DateTime<Utc>, scope_key: &[u8]) -> Vec<u8> {
    let mut key = time_key(expires_at).to_vec();
    key.extend_from_slice(scope_key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_cannot_collide_through_separators() {
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
        assert_ne!(
            scope_key("AC1", "a\0b", b"d"),
            scope_key("AC1\0a", "b", b"d")
        );
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

    #[test]
    fn time_keys_sort_by_time() {
        let early = Utc::now();
        let late = early + chrono::Duration::milliseconds(1);
        assert!(outbox_key(early, "SMz") < outbox_key(late, "SMa"));
    }
}
