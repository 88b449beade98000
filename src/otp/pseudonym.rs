//! Keyed digests of phone numbers (and of anything else a client sent that may hold
//! one), so that the store can key and compare by number without ever writing one: a
//! copy of the database without the secret key is not a list of its users' numbers,
//! and 10¹⁰ candidate numbers cannot be tried offline without the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SecretKey;

/// Bytes kept of each digest: 128 bits, far beyond any collision among numbers, and
/// short in keys.
pub const PSEUDONYM_LEN: usize = 16;

/// HMAC-SHA256 under a key derived from the secret key for this purpose alone.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key>)")
    }
}

impl Pseudonymizer {
    pub fn new(key: &SecretKey) -> Self {
        Self {
            key: key.derive(b"sms2fa number pseudonyms v1"),
        }
    }

    /// The digest of `value` in the domain `purpose` (so that a number and, say, an
    /// idempotency key with the same bytes do not share a digest).
    pub fn digest(&self, purpose: &str, value: &[u8]) -> [u8; PSEUDONYM_LEN] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&(purpose.len() as u64).to_be_bytes());
        mac.update(purpose.as_bytes());
        mac.update(value);
        let full = mac.finalize().into_bytes();
        let mut digest = [0u8; PSEUDONYM_LEN];
        digest.copy_from_slice(&full[..PSEUDONYM_LEN]);
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_on_key_purpose_and_value_and_holds_no_digit_run() {
        let a = Pseudonymizer::new(&SecretKey::from_bytes([1; 32]));
        let b = Pseudonymizer::new(&SecretKey::from_bytes([2; 32]));
        let number = b"+14155550002";
        assert_eq!(a.digest("number", number), a.digest("number", number));
        assert_ne!(a.digest("number", number), b.digest("number", number));
        assert_ne!(a.digest("number", number), a.digest("tail", number));
        assert_ne!(
            a.digest("number", number),
            a.digest("number", b"+14155550003")
        );
    }
}
