//! The TOML configuration (`/etc/sms2fa/sms2fa.toml`). Unknown keys are refused, and
//! every error names the file, the line and the key, because an operator reading
//! `journalctl` must be able to fix the file without reading our source.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod locate;
mod validate;
mod webhook;

pub use webhook::{secret_is_valid, WebhookConfig};

use locate::locate_key;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
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
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Request bodies larger than this are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A connection whose request headers are not complete this long after it opened
    /// (or after the first byte of a later request) is closed.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// A request body not complete this long after its headers is answered 408.
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// A keep-alive connection with no request for this long is closed.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Connections served at once; more are answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            header_timeout_secs: default_header_timeout_secs(),
            body_timeout_secs: default_body_timeout_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_header_timeout_secs() -> u64 {
    10
}

fn default_body_timeout_secs() -> u64 {
    30
}

fn default_idle_timeout_secs() -> u64 {
    60
}

fn default_max_connections() -> usize {
    1024
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
    /// Where the store lives: `sled` (embedded, one host) or `postgres` (shared by
    /// several hosts).
    #[serde(default)]
    pub backend: Backend,
    /// The state folder: sled's `db/`, and `secret.key` with either backend.
    #[serde(default = "default_storage_path")]
    pub path: PathBuf,
    /// How long a message's status history stays readable (`GET /2fa/messages/{id}`)
    /// after it was sent or failed: `"7d"`, `"12h"`, `"30m"`. Default 7 days.
    #[serde(default)]
    pub message_retention: Option<Retention>,
    /// The same in whole days (the older key); not together with `message_retention`.
    #[serde(default)]
    pub message_retention_days: Option<u32>,
    /// PostgreSQL: a libpq-style URL, several hosts allowed
    /// (`postgresql://sms2fa@db1:5432,db2:5432/sms2fa?target_session_attrs=read-write`).
    #[serde(default)]
    pub url: Option<String>,
    /// PostgreSQL: a file holding the password (a trailing newline is ignored). Default:
    /// `$CREDENTIALS_DIRECTORY/sms2fa-db-password` when systemd passes that credential.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: connections kept open at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Sled,
    Postgres,
}

fn default_pool_size() -> usize {
    16
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::default(),
            path: default_storage_path(),
            message_retention: None,
            message_retention_days: None,
            url: None,
            password_file: None,
            pool_size: default_pool_size(),
        }
    }
}

/// This host among several that share one database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This host's name, unique among the hosts; default: the hostname.
    #[serde(default)]
    pub node: Option<String>,
    /// How long a claimed SMS stays this host's without renewal; a host whose
    /// heartbeat is older counts as down.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node: None,
            lease_secs: default_lease_secs(),
        }
    }
}

fn default_lease_secs() -> u64 {
    15
}

impl ClusterConfig {
    /// The node name in force: the configured one, or the hostname.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(hostname)
    }

    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_secs)
    }
}

fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

impl StorageConfig {
    /// The retention in force, whichever key gave it.
    pub fn message_retention(&self) -> std::time::Duration {
        match (self.message_retention, self.message_retention_days) {
            (Some(Retention(period)), _) => period,
            (None, Some(days)) => std::time::Duration::from_secs(u64::from(days) * 86_400),
            (None, None) => DEFAULT_MESSAGE_RETENTION,
        }
    }
}

const DEFAULT_MESSAGE_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// A period written the way people write one: `"7d"`, `"36h"`, `"90m"`, `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub std::time::Duration);

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(Retention)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a period ({e}); write e.g. \"7d\", \"12h\" or \"30m\""
                ))
            })
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
    /// A modem that has been disconnected or unregistered this long (or since start)
    /// no longer counts as one that could send; with none left, `/2fa/send` answers
    /// `503 no_modem_available` instead of queueing a code nobody will send.
    #[serde(default = "default_unavailable_after_secs")]
    pub unavailable_after_secs: u64,
    /// A relayed SMS (`/sms/send`, `/cgi-bin/sendsms`) still unsent after this long
    /// expires in the queue, as a code's SMS does when its code expires.
    #[serde(default = "default_relay_ttl_secs")]
    pub relay_ttl_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            max_parts: default_max_parts(),
            concat_reference_16bit: false,
            unavailable_after_secs: default_unavailable_after_secs(),
            relay_ttl_secs: default_relay_ttl_secs(),
        }
    }
}

fn default_relay_ttl_secs() -> u64 {
    3600
}

/// The longest `[sms] relay_ttl_secs`: a day, the window of the number's daily cap.
pub const RELAY_TTL_LIMIT: u64 = 86_400;

fn default_unavailable_after_secs() -> u64 {
    60
}

/// The longest `[sms] unavailable_after_secs`: past a day, a code would have expired
/// long before the gateway admits it cannot send it.
pub const UNAVAILABLE_AFTER_LIMIT: u64 = 86_400;

fn default_max_parts() -> usize {
    4
}

/// The most parts `[sms] max_parts` may allow: ten parts are 1,530 GSM characters, far
/// past any code's text, and a bound keeps one request from holding a modem for
/// minutes.
pub const MAX_PARTS_LIMIT: usize = 10;

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
    /// May read the SMS the modems received (`GET /sms/inbox`).
    #[serde(default)]
    pub receive: bool,
    /// May send SMS whose text it writes itself (`/sms/send`, `/cgi-bin/sendsms`).
    #[serde(default)]
    pub relay: bool,
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
    /// What is done to a modem that stops answering, before its port is reopened.
    #[serde(default)]
    pub reset: ResetMode,
    /// The most SMS (parts) this SIM sends in any 24 hours; at the cap it takes no work.
    pub max_sms_per_day: Option<u32>,
    /// The most SMS (parts) this SIM sends in any hour.
    pub max_sms_per_hour: Option<u32>,
    /// The least time between the starts of two sends on this SIM.
    #[serde(default)]
    pub min_interval_ms: u64,
    /// A USSD code (`*100#`) that asks a prepaid SIM's balance, run while idle every
    /// `balance_interval_secs`; the answer shows in `/modems`.
    pub balance_ussd: Option<String>,
    #[serde(default = "default_balance_interval_secs")]
    pub balance_interval_secs: u64,
    /// Give USSD codes to this modem as GSM 7-bit packed hex (some Huawei firmware).
    #[serde(default)]
    pub ussd_packed: bool,
}

fn default_balance_interval_secs() -> u64 {
    86_400
}

/// The longest `min_interval_ms`: an hour.
pub const MIN_INTERVAL_LIMIT_MS: u64 = 3_600_000;

/// How a modem that stopped answering is reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResetMode {
    /// `AT+CFUN=1,1`: full functionality with a reset of the module.
    #[default]
    Cfun11,
    /// `AT+CFUN=0` then `AT+CFUN=1`: the radio off and on, without a module reboot
    /// (some Huawei sticks come back from `AT+CFUN=1,1` as a mass-storage device,
    /// gammu#687).
    Cfun01,
    /// Nothing is sent: the port is only reopened.
    None,
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
            reset: ResetMode::default(),
            max_sms_per_day: None,
            max_sms_per_hour: None,
            min_interval_ms: 0,
            balance_ussd: None,
            balance_interval_secs: default_balance_interval_secs(),
            ussd_packed: false,
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
}

#[cfg(test)]
mod tests;
