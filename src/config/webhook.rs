//! `[[webhook]]`: where events are posted, signed per the Standard Webhooks
//! specification.

use std::path::PathBuf;

use serde::Deserialize;

use super::validate::Problem;
use crate::store::EventKind;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://`.
    pub url: String,
    /// `whsec_` and the base64 of the key.
    pub secret: Option<String>,
    /// A file holding the secret (a trailing newline is ignored).
    pub secret_file: Option<PathBuf>,
    /// This account's events; absent: the operator's.
    pub account: Option<String>,
    /// Event types to post; absent: every one of its kind.
    pub events: Option<Vec<String>>,
    /// The endpoint's name in `/metrics` and logs (default: the URL's host and a
    /// digest of the whole URL, which may hold a token).
    pub name: Option<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// The event types this endpoint gets: those it names, or all of its kind.
    pub fn kinds(&self) -> Vec<EventKind> {
        match &self.events {
            Some(names) => names.iter().filter_map(|n| EventKind::parse(n)).collect(),
            None if self.account.is_some() => EventKind::ACCOUNT.to_vec(),
            None => EventKind::OPERATOR.to_vec(),
        }
    }
}

/// Whether `secret` is `whsec_` and base64 of at least 16 bytes.
pub fn secret_is_valid(secret: &str) -> bool {
    use base64::Engine;
    secret
        .strip_prefix("whsec_")
        .and_then(|key| base64::engine::general_purpose::STANDARD.decode(key).ok())
        .is_some_and(|key| key.len() >= 16)
}

pub(super) fn validate(
    webhooks: &[WebhookConfig],
    accounts: &[super::AccountConfig],
) -> Result<(), Problem> {
    let mut names = std::collections::HashSet::new();
    for (i, webhook) in webhooks.iter().enumerate() {
        let at = |key: &str, message: &str| Problem::indexed("webhook", i, key, message);
        let url = reqwest::Url::parse(&webhook.url)
            .map_err(|e| at("url", &format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(at("url", "must be http:// or https:// with a host"));
        }
        match (&webhook.secret, &webhook.secret_file) {
            (Some(_), Some(_)) => return Err(at("secret", "set secret or secret_file, not both")),
            (None, None) => {
                return Err(at(
                    "secret",
                    "is required (or secret_file): whsec_ and the base64 of a random key",
                ))
            }
            (Some(secret), None) if !secret_is_valid(secret) => {
                return Err(at(
                    "secret",
                    "must be whsec_ and the base64 of at least 16 random bytes",
                ))
            }
            _ => {}
        }
        if let Some(account) = &webhook.account {
            if !accounts.iter().any(|a| &a.sid == account) {
                return Err(at("account", "names no [[account]] sid"));
            }
        }
        if let Some(events) = &webhook.events {
            if events.is_empty() {
                return Err(at(
                    "events",
                    "is empty: omit it to get every event of its kind",
                ));
            }
            for name in events {
                let Some(kind) = EventKind::parse(name) else {
                    return Err(at("events", &format!("{name:?} is not an event type")));
                };
                match (kind.is_account_event(), webhook.account.is_some()) {
                    (true, false) => {
                        return Err(at(
                            "events",
                            &format!("{name} is an account event: set account"),
                        ))
                    }
                    (false, true) => {
                        return Err(at(
                            "events",
                            &format!("{name} is an operator event: omit account"),
                        ))
                    }
                    _ => {}
                }
            }
        }
        if let Some(name) = &webhook.name {
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(at("name", "must be non-empty, without control characters"));
            }
            if !names.insert(name.as_str()) {
                return Err(at("name", "is used by two webhooks"));
            }
        }
    }
    Ok(())
}
