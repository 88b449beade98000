//! The dispatcher's side of a modem: its settings, the state it publishes, the jobs it
//! takes and the errors a send ends with, and the [`ModemHandle`] that holds them.
//! The task that acts on them is in `lifecycle` (connect, initialise, recover),
//! `submission` (one SMS) and `reports` (what the modem tells unasked).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use super::init::{ModemIdentity, PinGuard};
use super::lifecycle::ModemTask;
use super::port::{Connector, Device, DeviceConnector};
use super::session::LinkStats;
use super::usage::{Caps, Usage};
use crate::config::{ModemConfig, ResetMode, SmsConfig, SmsMode};
use crate::sms::{PhoneNumber, StatusReport};

#[derive(Debug, Clone)]
pub struct ModemSettings {
    pub name: String,
    pub device: Device,
    pub baud: u32,
    pub pin: Option<String>,
    pub number: Option<PhoneNumber>,
    pub smsc: Option<PhoneNumber>,
    pub max_parts: usize,
    pub delivery_reports: bool,
    pub health_interval: Duration,
    /// How long the modem may be down before it no longer counts as able to send.
    pub unavailable_after: Duration,
    /// Radio time the network may take to accept one SMS.
    pub send_timeout: Duration,
    pub mode: SmsMode,
    pub concat_ref16: bool,
    pub reset: ResetMode,
    pub caps: Caps,
    /// The balance USSD code and how often it runs.
    pub balance_ussd: Option<String>,
    pub balance_interval: Duration,
    pub ussd_packed: bool,
}

impl ModemSettings {
    /// Settings from a validated `[[modem]]` section.
    pub fn from_config(modem: &ModemConfig, sms: &SmsConfig) -> Self {
        // Numbers were validated when the config was loaded.
        let number = |n: &Option<String>| n.as_deref().and_then(|n| PhoneNumber::parse(n).ok());
        Self {
            name: modem.name.clone(),
            // Validated when the config was loaded; a path is what is left otherwise.
            device: Device::parse(&modem.device)
                .unwrap_or_else(|_| Device::Serial(modem.device.clone())),
            baud: modem.baud,
            pin: modem.pin.clone(),
            number: number(&modem.number),
            smsc: number(&modem.smsc),
            max_parts: sms.max_parts,
            concat_ref16: sms.concat_reference_16bit,
            mode: modem.mode,
            reset: modem.reset,
            balance_ussd: modem.balance_ussd.clone(),
            balance_interval: Duration::from_secs(modem.balance_interval_secs),
            ussd_packed: modem.ussd_packed,
            caps: Caps {
                per_day: modem.max_sms_per_day,
                per_hour: modem.max_sms_per_hour,
                min_interval: Duration::from_millis(modem.min_interval_ms),
            },
            delivery_reports: modem.delivery_reports,
            health_interval: Duration::from_secs(modem.health_interval_secs),
            unavailable_after: Duration::from_secs(sms.unavailable_after_secs),
            send_timeout: Duration::from_secs(modem.send_timeout_secs),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModemState {
    Connecting,
    /// Up, but not registered to a network.
    Searching,
    Ready,
    Sending,
    /// Needs an operator (wrong PIN, PUK); the task will not touch the SIM again.
    Fatal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemStatus {
    pub state: ModemState,
    pub last_error: Option<String>,
    pub sent: u64,
    pub failed: u64,
    pub identity: ModemIdentity,
    pub health: Health,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub link: LinkStats,
    /// Since when the modem has not been ready (at start: since the task began);
    /// `None` while it is ready or sending.
    pub unready_since: Option<Instant>,
    /// The last answer to `balance_ussd`, and when it came.
    pub balance: Option<(String, DateTime<Utc>)>,
}

/// One SMS for the modem to send.
#[derive(Debug)]
pub struct SendJob {
    pub to: PhoneNumber,
    pub text: String,
    /// The code's expiry: the SMS's validity period ends then too.
    pub expires_at: DateTime<Utc>,
    pub reply: oneshot::Sender<Result<Vec<u8>, SendError>>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The modem refused with `+CMS ERROR: <code>`; `permanent` when sending the same
    /// message again can only fail again (classified here, at the modem's edge, from
    /// the AT layer's table).
    #[error("the modem refused the SMS: {detail}")]
    Refused {
        code: u16,
        detail: String,
        permanent: bool,
    },
    /// No clear answer after the PDU went out: the SMS may or may not have been sent.
    #[error("no answer after the SMS was handed to the modem ({0}); it may arrive twice")]
    Unconfirmed(String),
    /// The SMS never reached the modem (link down before the PDU was written).
    #[error("the SMS was not handed to the modem: {0}")]
    NotSent(String),
    #[error("the text cannot be encoded as SMS: {0}")]
    Encoding(String),
}

/// A delivery report the modem received, for the dispatcher to match.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    pub modem: String,
    pub report: StatusReport,
}

/// What the dispatcher holds of a modem.
#[derive(Debug, Clone)]
pub struct ModemHandle {
    pub name: String,
    pub number: Option<PhoneNumber>,
    pub jobs: mpsc::Sender<SendJob>,
    pub status: watch::Receiver<ModemStatus>,
    /// SMS whose delivery reports said delivered (counted by the dispatcher, which
    /// matches the reports).
    pub delivered: Arc<AtomicU64>,
    /// `[sms] unavailable_after_secs`.
    pub unavailable_after: Duration,
    /// What it sent lately, against its caps; the dispatcher records each send.
    pub usage: Arc<Mutex<Usage>>,
}

impl ModemHandle {
    /// This modem's usage, locked for a moment.
    pub fn usage(&self) -> MutexGuard<'_, Usage> {
        // Holders only read or push: a poisoned lock still holds whole counts.
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a modem task tells what happened: `changed` is notified whenever its state
/// changes (so the dispatcher hands out work as soon as it is ready), delivery reports
/// go to `reports`, received SMS to `incoming`.
#[derive(Debug, Clone)]
pub struct Outlets {
    pub changed: Arc<Notify>,
    pub reports: mpsc::UnboundedSender<DeliveryReport>,
    pub incoming: mpsc::UnboundedSender<IncomingSms>,
}

/// A received SMS (parts joined) for the inbox. The modem deletes its parts from
/// storage only once `kept` answers true: the SMS is durable elsewhere by then.
#[derive(Debug)]
pub struct IncomingSms {
    pub modem: String,
    pub sender: String,
    pub text: String,
    /// The service centre's time stamp, RFC 3339.
    pub sent_at: String,
    pub parts: u32,
    pub incomplete: bool,
    pub kept: oneshot::Sender<bool>,
}

/// Start the task for one modem on its configured device.
pub fn spawn_modem(
    settings: ModemSettings,
    outlets: Outlets,
    shutdown: CancellationToken,
) -> ModemHandle {
    let connector = DeviceConnector {
        device: settings.device.clone(),
        baud: settings.baud,
    };
    spawn_modem_with(settings, Arc::new(connector), outlets, shutdown)
}

/// [`spawn_modem`] on links that `connector` opens (tests: the simulator over an
/// in-memory pipe) instead of the configured device.
pub fn spawn_modem_with(
    settings: ModemSettings,
    connector: Arc<dyn Connector>,
    outlets: Outlets,
    shutdown: CancellationToken,
) -> ModemHandle {
    let (jobs_tx, jobs_rx) = mpsc::channel(1);
    let (status_tx, status_rx) = watch::channel(ModemStatus {
        state: ModemState::Connecting,
        last_error: None,
        sent: 0,
        failed: 0,
        identity: ModemIdentity::default(),
        health: Health::default(),
        last_sent_at: None,
        link: LinkStats::default(),
        unready_since: Some(Instant::now()),
        balance: None,
    });
    let handle = ModemHandle {
        name: settings.name.clone(),
        number: settings.number.clone(),
        jobs: jobs_tx,
        status: status_rx,
        delivered: Arc::new(AtomicU64::new(0)),
        unavailable_after: settings.unavailable_after,
        usage: Arc::new(Mutex::new(Usage::new(settings.caps))),
    };
    let task = ModemTask {
        settings,
        connector,
        jobs: jobs_rx,
        status: status_tx,
        outlets,
        shutdown,
        reference: rand::random(),
        pin_guard: PinGuard::default(),
        storage: Default::default(),
        reassembly: Default::default(),
    };
    tokio::spawn(task.run());
    handle
}

impl SendError {
    /// The refusal `+CMS ERROR: <code>` means: `+CMS ERROR: 42 (congestion)`, and
    /// whether it is permanent.
    pub fn refused(code: u16) -> Self {
        Self::Refused {
            code,
            detail: crate::at::describe_cms_error(&crate::at::ErrorCode::Numeric(code)),
            permanent: crate::at::classify_cms(code) == crate::at::CmsClass::Permanent,
        }
    }
}
