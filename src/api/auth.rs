//! HTTP Basic authentication against the configured accounts (SID : auth token).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::AccountConfig;

/// Accounts by SID, each with the SHA-256 of its token (tokens in clear are hashed at
/// load, so both config forms are checked the same way).
#[derive(Clone, Default)]
pub struct Accounts {
    by_sid: HashMap<String, [u8; 32]>,
    /// SIDs with `receive = true`.
    receivers: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("count", &self.by_sid.len())
            .finish()
    }
}

impl Accounts {
    /// Accounts from a validated config (token or 64-hex-digit token_sha256).
    pub fn from_config(accounts: &[AccountConfig]) -> Self {
        let by_sid = accounts
            .iter()
            .filter_map(|account| {
                let digest = match (&account.token, &account.token_sha256) {
                    (Some(token), _) => Sha256::digest(token.as_bytes()).into(),
                    (None, Some(hex_digest)) => {
                        let mut digest = [0u8; 32];
                        hex::decode_to_slice(hex_digest, &mut digest).ok()?;
                        digest
                    }
                    (None, None) => return None,
                };
                Some((account.sid.clone(), digest))
            })
            .collect();
        let receivers = accounts
            .iter()
            .filter(|a| a.receive)
            .map(|a| a.sid.clone())
            .collect();
        Self { by_sid, receivers }
    }

    /// Whether `sid` may read received SMS.
    pub fn may_receive(&self, sid: &str) -> bool {
        self.receivers.contains(sid)
    }

    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }

    /// The SID of the caller, or 401. The token comparison is constant-time and runs
    /// for unknown SIDs too, so timing does not reveal which SIDs exist.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let (sid, token) = basic_credentials(headers).ok_or_else(ApiError::unauthorized)?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let unknown = [0u8; 32];
        let (expected, known) = match self.by_sid.get(&sid) {
            Some(digest) => (digest, true),
            None => (&unknown, false),
        };
        let matches: bool = presented.ct_eq(expected).into();
        if matches && known {
            Ok(sid)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// The accounts in force. SIGHUP swaps in a new set; a request in flight keeps the
/// set it started with.
#[derive(Debug, Default)]
pub struct LiveAccounts {
    current: RwLock<Arc<Accounts>>,
}

impl LiveAccounts {
    pub fn new(accounts: Accounts) -> Self {
        Self {
            current: RwLock::new(Arc::new(accounts)),
        }
    }

    pub fn current(&self) -> Arc<Accounts> {
        // The lock only guards a pointer swap, so a poisoned lock still holds a
        // complete value.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, accounts: Accounts) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(accounts);
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        self.current().authenticate(headers)
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (sid, token) = decoded.split_once(':')?;
    Some((sid.to_owned(), token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accounts() -> Accounts {
        Accounts::from_config(&[
            AccountConfig {
                sid: "AC1".into(),
                token: Some("secret".into()),
                token_sha256: None,
                receive: false,
            },
            AccountConfig {
                sid: "AC2".into(),
                token: None,
                token_sha256: Some(hex::encode(Sha256::digest(b"other"))),
                receive: false,
            },
        ])
    }

    fn basic(user_pass: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[test]
    fn accepts_both_token_forms() {
        assert_eq!(
            accounts().authenticate(&basic("AC1:secret")).unwrap(),
            "AC1"
        );
        assert_eq!(accounts().authenticate(&basic("AC2:other")).unwrap(), "AC2");
    }

    #[test]
    fn live_accounts_swap_whole() {
        let live = LiveAccounts::new(accounts());
        assert!(live.authenticate(&basic("AC1:secret")).is_ok());
        live.replace(Accounts::from_config(&[AccountConfig {
            sid: "AC3".into(),
            token: Some("new".into()),
            token_sha256: None,
            receive: false,
        }]));
        assert!(live.authenticate(&basic("AC1:secret")).is_err());
        assert_eq!(live.authenticate(&basic("AC3:new")).unwrap(), "AC3");
        assert_eq!(live.current().len(), 1);
    }

    #[test]
    fn refuses_wrong_or_missing_credentials() {
        let accounts = accounts();
        assert!(accounts.authenticate(&basic("AC1:wrong")).is_err());
        assert!(accounts.authenticate(&basic("AC1:other")).is_err());
        assert!(accounts.authenticate(&basic("AC9:secret")).is_err());
        assert!(accounts.authenticate(&basic("AC1")).is_err());
        assert!(accounts.authenticate(&HeaderMap::new()).is_err());
    }
}
