//! Encryption of the SMS text while it waits in the outbox: the text holds the code in
//! clear, and the database files (including pages sled has freed but not overwritten)
//! must not.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;

use super::SecretKey;

const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed text is too short")]
    Truncated,
    #[error("sealed text failed authentication (wrong key or corrupt record)")]
    Forged,
    #[error("sealed text is not UTF-8")]
    NotText,
}

/// ChaCha20-Poly1305 under a key derived from the secret key, with the message id as
/// associated data so a sealed text cannot be moved to another message.
#[derive(Clone)]
pub struct TextSealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for TextSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextSealer(<key>)")
    }
}

impl TextSealer {
    pub fn new(key: &SecretKey) -> Self {
        let derived = key.derive(b"sms2fa outbox text encryption v1");
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&derived)),
        }
    }

    /// Nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, message_id: &str, text: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: text.as_bytes(),
            aad: message_id.as_bytes(),
        };
        // Encryption fails only for inputs beyond ChaCha20's 256 GiB limit.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("SMS texts are far below the cipher's length limit");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, message_id: &str, sealed: &[u8]) -> Result<String, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Truncated);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: message_id.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SealError::Forged)?;
        String::from_utf8(plain).map_err(|_| SealError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_message_id() {
        let sealer = TextSealer::new(&SecretKey::from_bytes([3; 32]));
        let sealed = sealer.seal("SM1", "Your code is 123456");
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(sealer.open("SM1", &sealed).unwrap(), "Your code is 123456");
        assert_eq!(sealer.open("SM2", &sealed), Err(SealError::Forged));
        let other = TextSealer::new(&SecretKey::from_bytes([4; 32]));
        assert_eq!(other.open("SM1", &sealed), Err(SealError::Forged));
        assert_eq!(sealer.open("SM1", &sealed[..5]), Err(SealError::Truncated));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let sealer = TextSealer::new(&SecretKey::from_bytes([3; 32]));
        assert_ne!(sealer.seal("SM1", "x"), sealer.seal("SM1", "x"));
    }
}
