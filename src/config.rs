//! The TOML configuration (`/etc/sms2fa/sms2fa.toml`). Unknown keys are refused, and
//! every error names the file, the line and the key, because an operator reading
//! `journalctl` must be able to fix the file without reading our source.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sms::PhoneNumber;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub otp: OtpConfig,
    #[serde(default)]
    pub sms: SmsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountConfig>,
    #[serde(default, rename = "modem")]
    pub modems: Vec<ModemConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Request bodies larger than this are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body_bytes() -> usize {
    16 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default = "default_storage_path")]
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: default_storage_path(),
        }
    }
}

fn default_storage_path() -> PathBuf {
    PathBuf::from("/var/lib/sms2fa")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpConfig {
    #[serde(default = "default_code_length")]
    pub code_length: u8,
    #[serde(default = "default_ttl_secs")]
    pub ttl_secs: u64,
    #[serde(default)]
    pub allow_long_ttl: bool,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Consecutive wrong codes for one (account, service, number), across resends,
    /// before the number is locked (NIST SP 800-63B: at most 100).
    #[serde(default = "default_max_failures_per_number")]
    pub max_failures_per_number: u32,
    #[serde(default = "default_lock_secs")]
    pub lock_secs: u64,
    #[serde(default = "default_resend_cooldown_secs")]
    pub resend_cooldown_secs: u64,
    #[serde(default = "default_max_sends_per_number_per_day")]
    pub max_sends_per_number_per_day: u32,
    #[serde(default = "default_max_sends_per_account_per_minute")]
    pub max_sends_per_account_per_minute: u32,
    /// Destination prefixes allowed (`["+1", "+44"]`); empty allows every number.
    #[serde(default)]
    pub allowed_prefixes: Vec<String>,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            code_length: default_code_length(),
            ttl_secs: default_ttl_secs(),
            allow_long_ttl: false,
            max_attempts: default_max_attempts(),
            max_failures_per_number: default_max_failures_per_number(),
            lock_secs: default_lock_secs(),
            resend_cooldown_secs: default_resend_cooldown_secs(),
            max_sends_per_number_per_day: default_max_sends_per_number_per_day(),
            max_sends_per_account_per_minute: default_max_sends_per_account_per_minute(),
            allowed_prefixes: Vec::new(),
        }
    }
}

fn default_max_failures_per_number() -> u32 {
    100
}
fn default_lock_secs() -> u64 {
    3600
}
fn default_resend_cooldown_secs() -> u64 {
    30
}
fn default_max_sends_per_number_per_day() -> u32 {
    10
}
fn default_max_sends_per_account_per_minute() -> u32 {
    120
}

fn default_code_length() -> u8 {
    6
}
fn default_ttl_secs() -> u64 {
    600
}
fn default_max_attempts() -> u32 {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// A text that needs more concatenated parts than this is refused at `/2fa/send`.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Use the 16-bit concatenation reference (IE 0x08) instead of the 8-bit one.
    #[serde(default)]
    pub concat_reference_16bit: bool,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            max_parts: default_max_parts(),
            concat_reference_16bit: false,
        }
    }
}

fn default_max_parts() -> usize {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter, e.g. `info` or `sms2fa=debug,tower_http=warn`.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: default_log_filter(),
        }
    }
}

fn default_log_filter() -> String {
    "info".to_owned()
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub sid: String,
    /// The auth token in clear.
    pub token: Option<String>,
    /// Hex SHA-256 of the auth token, so the config file need not hold the token.
    pub token_sha256: Option<String>,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemConfig {
    pub name: String,
    pub device: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: u32,
    pub pin: Option<String>,
    pub number: Option<String>,
    /// Service centre number; by default the SIM's own.
    pub smsc: Option<String>,
    /// Ask for delivery reports (TP-SRR) and record delivered / failed.
    #[serde(default)]
    pub delivery_reports: bool,
    /// Seconds between signal and registration checks while idle.
    #[serde(default = "default_health_interval_secs")]
    pub health_interval_secs: u64,
    /// `pdu` (default) or `text`, for the rare modem without PDU mode (single-part SMS
    /// only).
    #[serde(default)]
    pub mode: SmsMode,
    /// How long `AT+CMGS` may take before the send counts as unanswered (the radio
    /// needs seconds; networks under load, tens of seconds).
    #[serde(default = "default_send_timeout_secs")]
    pub send_timeout_secs: u64,
}

/// How a modem is told to send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsMode {
    #[default]
    Pdu,
    Text,
}

fn default_send_timeout_secs() -> u64 {
    60
}

fn default_health_interval_secs() -> u64 {
    30
}

impl ModemConfig {
    /// A modem at `device` with every optional setting at its default.
    pub fn new(name: &str, device: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            device,
            baud: default_baud(),
            pin: None,
            number: None,
            smsc: None,
            delivery_reports: false,
            health_interval_secs: default_health_interval_secs(),
            send_timeout_secs: default_send_timeout_secs(),
            mode: SmsMode::Pdu,
        }
    }
}

impl std::fmt::Debug for ModemConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModemConfig")
            .field("name", &self.name)
            .field("device", &self.device)
            .field("baud", &self.baud)
            .field("pin", &self.pin.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}{}: `{key}`: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// What the daemon needs besides what the file says: `check-config` and `serve` want
/// at least one account and one modem; `serve --simulate` brings its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirements {
    AccountsAndModems,
    Nothing,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&source, path, Requirements::AccountsAndModems)
    }

    /// Parse and validate `source`; `path` only labels the errors.
    pub fn parse(source: &str, path: &Path, needs: Requirements) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(source).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config
            .validate(needs)
            .map_err(|problem| ConfigError::Invalid {
                path: path.to_owned(),
                line: locate_key(source, &problem.section, problem.index, &problem.key),
                key: problem.dotted_key(),
                message: problem.message,
            })?;
        Ok(config)
    }

    fn validate(&self, needs: Requirements) -> Result<(), Problem> {
        let otp = &self.otp;
        if !(6..=10).contains(&otp.code_length) {
            return Err(Problem::new("otp", "code_length", "must be 6 to 10 digits"));
        }
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
        if !(1..=255).contains(&self.sms.max_parts) {
            return Err(Problem::new("sms", "max_parts", "must be 1 to 255"));
        }
        if self.http.max_body_bytes < 256 {
            return Err(Problem::new(
                "http",
                "max_body_bytes",
                "must be at least 256",
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
            if !(1..=300).contains(&modem.send_timeout_secs) {
                return Err(at("send_timeout_secs", "must be 1 to 300"));
            }
        }

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
struct Problem {
    section: String,
    index: Option<usize>,
    key: String,
    message: String,
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

    fn indexed(section: &str, index: usize, key: &str, message: &str) -> Self {
        Self {
            index: Some(index),
            ..Self::new(section, key, message)
        }
    }

    fn dotted_key(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{}].{}", self.section, i, self.key),
            None => format!("{}.{}", self.section, self.key),
        }
    }
}

/// The 1-based line where `key` is set in `[section]` (or the `index`th `[[section]]`):
/// the key's own line if present, else the section header's line.
fn locate_key(source: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let header = match index {
        Some(_) => format!("[[{section}]]"),
        None => format!("[{section}]"),
    };
    let mut seen = 0usize;
    let mut header_line = None;
    for (n, raw) in source.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            if header_line.is_some() {
                break;
            }
            if line == header {
                if seen == index.unwrap_or(0) {
                    header_line = Some(n + 1);
                }
                seen += 1;
            }
            continue;
        }
        if header_line.is_some() {
            if let Some((name, _)) = line.split_once('=') {
                if name.trim() == key {
                    return Some(n + 1);
                }
            }
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[http]
listen = "127.0.0.1:8080"

[storage]
path = "/var/lib/sms2fa"

[otp]
code_length = 6
ttl_secs = 600
max_attempts = 5

[[account]]
sid = "ACxxxxxxxx"
token = "secret"

[[modem]]
name = "dongle0"
device = "/dev/gsm-modem"
baud = 115200
pin = "1234"
number = "+13216549878"
"#;

    fn parse(source: &str) -> Result<Config, ConfigError> {
        Config::parse(
            source,
            Path::new("sms2fa.toml"),
            Requirements::AccountsAndModems,
        )
    }

    #[test]
    fn parses_the_documented_example() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.otp.code_length, 6);
        assert_eq!(config.accounts[0].sid, "ACxxxxxxxx");
        assert_eq!(config.modems[0].device, PathBuf::from("/dev/gsm-modem"));
        assert_eq!(config.modems[0].number.as_deref(), Some("+13216549878"));
        assert_eq!(config.sms.max_parts, 4);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let source = GOOD.replace("max_attempts = 5", "max_attempts = 5\nmax_atempts = 3");
        let message = parse(&source).unwrap_err().to_string();
        assert!(message.contains("sms2fa.toml"), "{message}");
        assert!(message.contains("max_atempts"), "{message}");
        assert!(message.contains("line 12"), "{message}");
    }

    #[test]
    fn invalid_value_is_named_with_its_line() {
        let source = GOOD.replace("code_length = 6", "code_length = 4");
        let message = parse(&source).unwrap_err().to_string();
        assert_eq!(
            message,
            "sms2fa.toml, line 9: `otp.code_length`: must be 6 to 10 digits"
        );
    }

    #[test]
    fn second_modem_problem_points_at_that_modem() {
        let source = format!(
            "{GOOD}\n[[modem]]\nname = \"dongle1\"\ndevice = \"/dev/x\"\nnumber = \"12345\"\n"
        );
        let message = parse(&source).unwrap_err().to_string();
        assert!(message.contains("`modem[1].number`"), "{message}");
        assert!(message.contains("line 27"), "{message}");
    }

    #[test]
    fn text_mode_needs_single_part_messages() {
        let text = GOOD.replace("baud = 115200", "baud = 115200\nmode = \"text\"");
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.contains("`modem[0].mode`") && message.contains("max_parts = 1"),
            "{message}"
        );
        let fixed = format!("[sms]\nmax_parts = 1\n{text}");
        assert_eq!(parse(&fixed).unwrap().modems[0].mode, SmsMode::Text);
        let wrong = GOOD.replace("baud = 115200", "baud = 115200\nmode = \"binary\"");
        assert!(parse(&wrong).unwrap_err().to_string().contains("binary"));
    }

    #[test]
    fn long_ttl_needs_explicit_consent() {
        let source = GOOD.replace("ttl_secs = 600", "ttl_secs = 3600");
        assert!(parse(&source)
            .unwrap_err()
            .to_string()
            .contains("allow_long_ttl"));
        let source = source.replace("[otp]", "[otp]\nallow_long_ttl = true");
        assert_eq!(parse(&source).unwrap().otp.ttl_secs, 3600);
    }

    #[test]
    fn limits_have_defaults_and_bounds() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.otp.max_failures_per_number, 100);
        assert_eq!(config.otp.resend_cooldown_secs, 30);
        assert_eq!(config.otp.max_sends_per_number_per_day, 10);
        assert_eq!(config.otp.max_sends_per_account_per_minute, 120);
        assert!(config.otp.allowed_prefixes.is_empty());
        let too_many = GOOD.replace(
            "max_attempts = 5",
            "max_attempts = 5\nmax_failures_per_number = 101",
        );
        assert!(parse(&too_many).unwrap_err().to_string().contains("NIST"));
        let bad_prefix = GOOD.replace(
            "max_attempts = 5",
            "max_attempts = 5\nallowed_prefixes = [\"+1\", \"44\"]",
        );
        let message = parse(&bad_prefix).unwrap_err().to_string();
        assert!(
            message.contains("otp.allowed_prefixes") && message.contains("line 12"),
            "{message}"
        );
    }

    #[test]
    fn account_needs_exactly_one_token_form() {
        let both = GOOD.replace(
            "token = \"secret\"",
            "token = \"secret\"\ntoken_sha256 = \"00\"",
        );
        assert!(parse(&both).unwrap_err().to_string().contains("not both"));
        let bad_hash = GOOD.replace("token = \"secret\"", "token_sha256 = \"abc\"");
        assert!(parse(&bad_hash)
            .unwrap_err()
            .to_string()
            .contains("64 hex digits"));
    }

    #[test]
    fn serve_needs_accounts_and_modems_but_simulate_does_not() {
        assert!(parse("").unwrap_err().to_string().contains("[[account]]"));
        let config = Config::parse("", Path::new("x"), Requirements::Nothing).unwrap();
        assert_eq!(config.http.listen, default_listen());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = parse(GOOD).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(!debug.contains("1234\""), "{debug}");
    }
}
