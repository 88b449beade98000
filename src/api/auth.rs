//! HTTP Basic authentication against the configured accounts (SID : auth token).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::AccountConfig;

/// Accounts by SID, each with the SHA-256 of its token (tokens in clear are hashed at
/// load, so both config forms are checked the same way) and what it may do.
#[derive(Clone, Default)]
pub struct Accounts {
    by_sid: HashMap<String, Account>,
}

#[derive(Clone)]
struct Account {
    token_digest: [u8; 32],
    receive: bool,
    relay: bool,
}

/// The authenticated caller of a request: an extractor, so a handler that names it
/// only runs for a caller whose credentials are right (401 otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sid: String,
    /// May read received SMS (`receive = true`).
    pub may_receive: bool,
    /// May send texts it writes itself (`relay = true`).
    pub may_relay: bool,
}

impl FromRequestParts<super::AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &super::AppState,
    ) -> Result<Self, ApiError> {
        state.accounts.current().authenticate(&parts.headers)
    }
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
                let token_digest = match (&account.token, &account.token_sha256) {
                    (Some(token), _) => Sha256::digest(token.as_bytes()).into(),
                    (None, Some(hex_digest)) => {
                        let mut digest = [0u8; 32];
                        hex::decode_to_slice(hex_digest, &mut digest).ok()?;
                        digest
                    }
                    (None, None) => return None,
                };
                let entry = Account {
                    token_digest,
                    receive: account.receive,
                    relay: account.relay,
                };
                Some((account.sid.clone(), entry))
            })
            .collect();
        Self { by_sid }
    }

    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }

    /// The caller, or 401.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let (sid, token) = basic_credentials(headers).ok_or_else(ApiError::unauthorized)?;
        self.check(&sid, &token).ok_or_else(ApiError::unauthorized)
    }

    /// The caller whose SID and token these are, if they are right. The token
    /// comparison is constant-time and runs for unknown SIDs too, so timing does not
    /// reveal which SIDs exist.
    pub fn check(&self, sid: &str, token: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let unknown = [0u8; 32];
        let account = self.by_sid.get(sid);
        let expected = account.map_or(&unknown, |a| &a.token_digest);
        let matches: bool = presented.ct_eq(expected).into();
        let account = account.filter(|_| matches)?;
        Some(Caller {
            sid: sid.to_owned(),
            may_receive: account.receive,
            may_relay: account.relay,
        })
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
}

/// The SID and token of an `Authorization: Basic` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
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
                relay: false,
            },
            AccountConfig {
                sid: "AC2".into(),
                token: None,
                token_sha256: Some(hex::encode(Sha256::digest(b"other"))),
                receive: false,
                relay: false,
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
            accounts().authenticate(&basic("AC1:secret")).unwrap().sid,
            "AC1"
        );
        assert_eq!(
            accounts().authenticate(&basic("AC2:other")).unwrap().sid,
            "AC2"
        );
    }

    #[test]
    fn live_accounts_swap_whole() {
        let live = LiveAccounts::new(accounts());
        assert!(live.current().authenticate(&basic("AC1:secret")).is_ok());
        live.replace(Accounts::from_config(&[AccountConfig {
            sid: "AC3".into(),
            token: Some("new".into()),
            token_sha256: None,
            receive: false,
            relay: false,
        }]));
        assert!(live.current().authenticate(&basic("AC1:secret")).is_err());
        assert_eq!(
            live.current().authenticate(&basic("AC3:new")).unwrap().sid,
            "AC3"
        );
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
