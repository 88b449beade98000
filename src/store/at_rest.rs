//! What every backend does to data before it reaches the disk: numbers (and anything
//! a client sent that may hold one) become keyed digests, and an outbound message's
//! numbers and text are sealed together. The same secret key gives the same digests
//! on every host, so hosts sharing a database find each other's records.

use serde::{Deserialize, Serialize};

use super::{OutboundMessage, StoreError};
use crate::otp::{Pseudonymizer, SecretKey, TextSealer, PSEUDONYM_LEN};

/// Purposes of [`Pseudonymizer::digest`], one per kind of value.
const NUMBER: &str = "number";
const NUMBER_TAIL: &str = "number tail";
const IDEMPOTENCY_KEY: &str = "idempotency key";
const FINGERPRINT: &str = "request fingerprint";
const KEY_FINGERPRINT: &[u8] = b"sms2fa key fingerprint v1";

/// Networks report the recipient national or international: the trailing digits both
/// forms share are what identifies the subscriber.
const SIGNIFICANT_DIGITS: usize = 7;

/// What a sealed message holds once opened.
#[derive(Serialize, Deserialize)]
struct SealedContent {
    from: String,
    to: String,
    text: String,
}

/// What a sealed received SMS holds once opened.
#[derive(Serialize, Deserialize)]
struct ReceivedContent {
    sender: String,
    text: String,
    sent_at: String,
}

#[derive(Debug, Clone)]
pub struct AtRest {
    sealer: TextSealer,
    pseudonyms: Pseudonymizer,
    fingerprint: String,
}

impl AtRest {
    pub fn new(key: &SecretKey) -> Self {
        Self {
            sealer: TextSealer::new(key),
            pseudonyms: Pseudonymizer::new(key),
            fingerprint: hex::encode(&key.derive(KEY_FINGERPRINT)[..16]),
        }
    }

    /// The digest that stands for `number` in keys.
    pub fn number_digest(&self, number: &str) -> [u8; PSEUDONYM_LEN] {
        self.pseudonyms.digest(NUMBER, number.as_bytes())
    }

    /// The keyed digest of a number's last [`SIGNIFICANT_DIGITS`] digits, hex: what a
    /// delivery report's recipient is compared by.
    pub fn subscriber_digest(&self, number: &str) -> String {
        let digits: Vec<u8> = number.bytes().filter(u8::is_ascii_digit).collect();
        let tail = &digits[digits.len().saturating_sub(SIGNIFICANT_DIGITS)..];
        hex::encode(self.pseudonyms.digest(NUMBER_TAIL, tail))
    }

    /// A client's `Idempotency-Key`, which may well be a phone number.
    pub fn idempotency_key_digest(&self, key: &str) -> [u8; PSEUDONYM_LEN] {
        self.pseudonyms.digest(IDEMPOTENCY_KEY, key.as_bytes())
    }

    /// A request fingerprint (which covers its numbers), hex.
    pub fn fingerprint_digest(&self, fingerprint: &str) -> String {
        hex::encode(self.pseudonyms.digest(FINGERPRINT, fingerprint.as_bytes()))
    }

    /// An HMAC of a fixed label under the secret key, hex: two hosts have the same key
    /// exactly when they have the same fingerprint, and it tells nothing of the key.
    pub fn key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `message`'s numbers and text, sealed under its id (nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, message: &OutboundMessage) -> Vec<u8> {
        let content = SealedContent {
            from: message.from.clone(),
            to: message.to.clone(),
            text: message.text.clone(),
        };
        // A struct of three strings always serializes.
        let content = serde_json::to_string(&content).expect("strings serialize");
        self.sealer.seal(&message.id, &content)
    }

    /// A received SMS's sender, text and time stamp, sealed under its id.
    pub fn seal_received(&self, id: &str, sender: &str, text: &str, sent_at: &str) -> Vec<u8> {
        let content = ReceivedContent {
            sender: sender.to_owned(),
            text: text.to_owned(),
            sent_at: sent_at.to_owned(),
        };
        // A struct of strings always serializes.
        let content = serde_json::to_string(&content).expect("strings serialize");
        self.sealer.seal(id, &content)
    }

    /// Open what [`AtRest::seal_received`] sealed: (sender, text, sent_at).
    pub fn unseal_received(
        &self,
        id: &str,
        sealed: &[u8],
    ) -> Result<(String, String, String), StoreError> {
        let unseal_error = |source| StoreError::Unseal {
            id: id.to_owned(),
            source,
        };
        let content = self.sealer.open(id, sealed).map_err(unseal_error)?;
        let content: ReceivedContent = serde_json::from_str(&content)
            .map_err(|_| unseal_error(crate::otp::SealError::NotText))?;
        Ok((content.sender, content.text, content.sent_at))
    }

    /// An event's data, sealed under its id: it may name a received SMS's text.
    pub fn seal_event(&self, id: &str, data: &serde_json::Value) -> Vec<u8> {
        self.sealer.seal(id, &data.to_string())
    }

    /// Open what [`AtRest::seal_event`] sealed.
    pub fn unseal_event(&self, id: &str, sealed: &[u8]) -> Result<serde_json::Value, StoreError> {
        let unseal_error = |source| StoreError::Unseal {
            id: id.to_owned(),
            source,
        };
        let content = self.sealer.open(id, sealed).map_err(unseal_error)?;
        serde_json::from_str(&content).map_err(|_| unseal_error(crate::otp::SealError::NotText))
    }

    /// Open what [`AtRest::seal`] sealed for message `id`: (from, to, text).
    pub fn unseal(&self, id: &str, sealed: &[u8]) -> Result<(String, String, String), StoreError> {
        let unseal_error = |source| StoreError::Unseal {
            id: id.to_owned(),
            source,
        };
        let content = self.sealer.open(id, sealed).map_err(unseal_error)?;
        let content: SealedContent = serde_json::from_str(&content)
            .map_err(|_| unseal_error(crate::otp::SealError::NotText))?;
        Ok((content.from, content.to, content.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_international_forms_are_one_subscriber() {
        let at_rest = AtRest::new(&SecretKey::from_bytes([1; 32]));
        assert_eq!(
            at_rest.subscriber_digest("+14155550002"),
            at_rest.subscriber_digest("4155550002")
        );
        assert_ne!(
            at_rest.subscriber_digest("+14155550002"),
            at_rest.subscriber_digest("+14155550003")
        );
    }

    #[test]
    fn the_key_fingerprint_depends_on_the_key_only() {
        let a = AtRest::new(&SecretKey::from_bytes([1; 32]));
        let b = AtRest::new(&SecretKey::from_bytes([2; 32]));
        assert_eq!(
            a.key_fingerprint(),
            AtRest::new(&SecretKey::from_bytes([1; 32])).key_fingerprint()
        );
        assert_ne!(a.key_fingerprint(), b.key_fingerprint());
        assert_eq!(a.key_fingerprint().len(), 32);
    }
}
