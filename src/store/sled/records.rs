//! What the trees hold beyond the shared records, and how their keys are laid out so
//! that range scans answer the questions we ask (what is due, what has expired).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::length_prefixed;

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

/// The stored form of an [`crate::store::OutboundMessage`]: its numbers and text
/// encrypted together ([`crate::store::AtRest::seal`]: nonce ‖ ciphertext ‖ tag, hex),
/// so that neither a code nor a phone number is ever written to the database in clear.
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
        assert_ne!(
            scope_key("AC1", "a\0b", b"d"),
            scope_key("AC1\0a", "b", b"d")
        );
    }

    #[test]
    fn time_keys_sort_by_time() {
        let early = Utc::now();
        let late = early + chrono::Duration::milliseconds(1);
        assert!(outbox_key(early, "SMz") < outbox_key(late, "SMa"));
    }
}
