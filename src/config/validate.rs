//! The rules a parsed config must meet, each failure located by section and key.

use super::{
    Backend, Config, Requirements, SmsMode, MAX_PARTS_LIMIT, MIN_INTERVAL_LIMIT_MS,
    RELAY_TTL_LIMIT, UNAVAILABLE_AFTER_LIMIT,
};
use crate::sms::PhoneNumber;

impl Config {
    fn validate_cluster(&self) -> Result<(), Problem> {
        let storage = &self.storage;
        if storage.backend == Backend::Postgres {
            let Some(url) = &storage.url else {
                return Err(Problem::new(
                    "storage",
                    "url",
                    "backend = \"postgres\" needs the database's url",
                ));
            };
            if let Err(e) = crate::store::postgres::ConnectOptions::parse(url) {
                return Err(Problem::new("storage", "url", &e.to_string()));
            }
        }
        if !(1..=1000).contains(&storage.pool_size) {
            return Err(Problem::new("storage", "pool_size", "must be 1 to 1000"));
        }
        if !(5..=3600).contains(&self.cluster.lease_secs) {
            return Err(Problem::new(
                "cluster",
                "lease_secs",
                "must be 5 to 3600 seconds",
            ));
        }
        if let Some(node) = &self.cluster.node {
            let fine = node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if node.is_empty() || node.len() > 63 || !fine {
                return Err(Problem::new(
                    "cluster",
                    "node",
                    "must be 1 to 63 letters, digits, '.', '_' or '-'",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn validate(&self, needs: Requirements) -> Result<(), Problem> {
        let otp = &self.otp;
        if !(6..=10).contains(&otp.code_length) {
            return Err(Problem::new("otp", "code_length", "must be 6 to 10 digits"));
        }
        let storage = &self.storage;
        if storage.message_retention.is_some() && storage.message_retention_days.is_some() {
            return Err(Problem::new(
                "storage",
                "message_retention_days",
                "set message_retention or message_retention_days, not both",
            ));
        }
        if let Some(days) = storage.message_retention_days {
            if !(1..=3650).contains(&days) {
                return Err(Problem::new(
                    "storage",
                    "message_retention_days",
                    "must be from 1 to 3650 days",
                ));
            }
        }
        let retention = storage.message_retention().as_secs();
        if !(60..=3650 * 86_400).contains(&retention) {
            return Err(Problem::new(
                "storage",
                "message_retention",
                "must be from 1 minute to 3650 days",
            ));
        }
        self.validate_cluster()?;
        if otp.ttl_secs == 0 {
            return Err(Problem::new("otp", "ttl_secs", "must be at least 1 second"));
        }
        if otp.ttl_secs > 600 && !otp.allow_long_ttl {
            return Err(Problem::new(
                "otp",
                "ttl_secs",
                "above 600 seconds needs `allow_long_ttl = true` (a long-lived code is easier to phish)",
            ));
        }
        if otp.max_attempts == 0 {
            return Err(Problem::new("otp", "max_attempts", "must be at least 1"));
        }
        if otp.max_failures_per_number == 0 || otp.max_failures_per_number > 100 {
            return Err(Problem::new(
                "otp",
                "max_failures_per_number",
                "must be 1 to 100 (NIST SP 800-63B caps failed attempts at 100)",
            ));
        }
        if otp.max_sends_per_number_per_day == 0 {
            return Err(Problem::new(
                "otp",
                "max_sends_per_number_per_day",
                "must be at least 1",
            ));
        }
        if otp.max_sends_per_account_per_minute == 0 {
            return Err(Problem::new(
                "otp",
                "max_sends_per_account_per_minute",
                "must be at least 1",
            ));
        }
        for prefix in &otp.allowed_prefixes {
            let digits = prefix.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Problem::new(
                    "otp",
                    "allowed_prefixes",
                    &format!("{prefix:?} is not '+' followed by 1 to 15 digits"),
                ));
            }
        }
        if !(1..=MAX_PARTS_LIMIT).contains(&self.sms.max_parts) {
            return Err(Problem::new(
                "sms",
                "max_parts",
                &format!("must be 1 to {MAX_PARTS_LIMIT}"),
            ));
        }
        if !(1..=UNAVAILABLE_AFTER_LIMIT).contains(&self.sms.unavailable_after_secs) {
            return Err(Problem::new(
                "sms",
                "unavailable_after_secs",
                &format!("must be 1 to {UNAVAILABLE_AFTER_LIMIT}"),
            ));
        }
        if !(60..=RELAY_TTL_LIMIT).contains(&self.sms.relay_ttl_secs) {
            return Err(Problem::new(
                "sms",
                "relay_ttl_secs",
                &format!("must be 60 to {RELAY_TTL_LIMIT}"),
            ));
        }
        if self.http.max_body_bytes < 256 {
            return Err(Problem::new(
                "http",
                "max_body_bytes",
                "must be at least 256",
            ));
        }
        for (key, secs) in [
            ("header_timeout_secs", self.http.header_timeout_secs),
            ("body_timeout_secs", self.http.body_timeout_secs),
            ("idle_timeout_secs", self.http.idle_timeout_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(Problem::new("http", key, "must be 1 to 3600 seconds"));
            }
        }
        if !(1..=1_000_000).contains(&self.http.max_connections) {
            return Err(Problem::new(
                "http",
                "max_connections",
                "must be 1 to 1000000",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(Problem::new(
                "log",
                "filter",
                &format!("invalid filter: {e}"),
            ));
        }

        let mut sids = std::collections::HashSet::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let at = |key: &str, message: &str| Problem::indexed("account", i, key, message);
            if account.sid.is_empty() || account.sid.chars().any(|c| c.is_control() || c == ':') {
                return Err(at(
                    "sid",
                    "must be non-empty, without ':' or control characters",
                ));
            }
            if !sids.insert(account.sid.as_str()) {
                return Err(at("sid", "is used by two accounts"));
            }
            match (&account.token, &account.token_sha256) {
                (Some(_), Some(_)) => {
                    return Err(at(
                        "token",
                        "give either `token` or `token_sha256`, not both",
                    ))
                }
                (None, None) => return Err(at("token", "missing: give `token` or `token_sha256`")),
                (Some(token), None) if token.is_empty() => {
                    return Err(at("token", "must not be empty"))
                }
                (None, Some(digest)) if !is_sha256_hex(digest) => {
                    return Err(at(
                        "token_sha256",
                        "must be 64 hex digits (sms2fa hash-token)",
                    ))
                }
                _ => {}
            }
        }

        let mut names = std::collections::HashSet::new();
        for (i, modem) in self.modems.iter().enumerate() {
            let at = |key: &str, message: &str| Problem::indexed("modem", i, key, message);
            if modem.name.is_empty() || modem.name.chars().any(|c| c.is_control()) {
                return Err(at("name", "must be non-empty, without control characters"));
            }
            if !names.insert(modem.name.as_str()) {
                return Err(at("name", "is used by two modems"));
            }
            if let Err(e) = crate::modem::Device::parse(&modem.device) {
                return Err(at("device", &e.to_string()));
            }
            if modem.baud == 0 {
                return Err(at("baud", "must be positive"));
            }
            if let Some(pin) = &modem.pin {
                if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(at("pin", "must be 4 to 8 digits"));
                }
            }
            for (key, value) in [("number", &modem.number), ("smsc", &modem.smsc)] {
                if let Some(Err(e)) = value.as_deref().map(PhoneNumber::parse) {
                    return Err(at(key, &e.to_string()));
                }
            }
            if modem.health_interval_secs == 0 {
                return Err(at("health_interval_secs", "must be at least 1"));
            }
            if modem.mode == SmsMode::Text && self.sms.max_parts > 1 {
                return Err(at(
                    "mode",
                    "text mode sends single-part SMS only: also set `max_parts = 1` in [sms]",
                ));
            }
            for (key, cap) in [
                ("max_sms_per_day", modem.max_sms_per_day),
                ("max_sms_per_hour", modem.max_sms_per_hour),
            ] {
                if cap == Some(0) {
                    return Err(at(key, "must be at least 1 (leave it out for no cap)"));
                }
            }
            if modem.min_interval_ms > MIN_INTERVAL_LIMIT_MS {
                return Err(at(
                    "min_interval_ms",
                    &format!("must be at most {MIN_INTERVAL_LIMIT_MS} (an hour)"),
                ));
            }
            if let Some(code) = &modem.balance_ussd {
                if crate::at::ussd_request(code, modem.ussd_packed).is_none() {
                    return Err(at(
                        "balance_ussd",
                        "must be a USSD code of visible ASCII characters without quotes, e.g. \"*100#\"",
                    ));
                }
            }
            if modem.balance_interval_secs < 60 {
                return Err(at("balance_interval_secs", "must be at least 60"));
            }
            if !(1..=300).contains(&modem.send_timeout_secs) {
                return Err(at("send_timeout_secs", "must be 1 to 300"));
            }
        }

        super::webhook::validate(&self.webhooks, &self.accounts)?;

        if needs == Requirements::AccountsAndModems {
            if self.accounts.is_empty() {
                return Err(Problem::new(
                    "account",
                    "sid",
                    "no [[account]] configured: nobody could call the API",
                ));
            }
            if self.modems.is_empty() {
                return Err(Problem::new(
                    "modem",
                    "device",
                    "no [[modem]] configured: no SMS could be sent",
                ));
            }
        }
        Ok(())
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A validation failure, located by section, array index and key.
pub(super) struct Problem {
    pub(super) section: String,
    pub(super) index: Option<usize>,
    pub(super) key: String,
    pub(super) message: String,
}

impl Problem {
    fn new(section: &str, key: &str, message: &str) -> Self {
        Self {
            section: section.to_owned(),
            index: None,
            key: key.to_owned(),
            message: message.to_owned(),
        }
    }

    pub(super) fn indexed(section: &str, index: usize, key: &str, message: &str) -> Self {
        Self {
            index: Some(index),
            ..Self::new(section, key, message)
        }
    }

    pub(super) fn dotted_key(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{}].{}", self.section, i, self.key),
            None => format!("{}.{}", self.section, self.key),
        }
    }
}
