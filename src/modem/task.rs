//! The per-modem task: connect, initialise, wait for the network, then send what the
//! dispatcher hands over; recover a modem that stops answering; reconnect with capped
//! exponential backoff whenever the link breaks (including a udev symlink that now
//! points at another tty).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::{self, Health};
use super::init::{initialize, InitError, ModemIdentity, PinGuard};
use super::port::open_port;
use super::session::{AtSession, CommandError, LinkStats, SendPduError};
use crate::config::{ModemConfig, SmsConfig, SmsMode};
use crate::sms::{self, PhoneNumber, StatusReport, SubmitOptions};

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the path of an unplugged modem is looked at. Opening a path that does not
/// exist costs nothing and bothers no modem, so this does not back off: a dongle
/// plugged back in (udev puts its link back) is used within this long, however long it
/// was away, instead of after a backoff grown while it was gone.
const ABSENT_POLL: Duration = Duration::from_millis(500);
/// How often an unregistered modem is asked again.
const SEARCH_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ModemSettings {
    pub name: String,
    pub device: PathBuf,
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
}

impl ModemSettings {
    /// Settings from a validated `[[modem]]` section.
    pub fn from_config(modem: &ModemConfig, sms: &SmsConfig) -> Self {
        // Numbers were validated when the config was loaded.
        let number = |n: &Option<String>| n.as_deref().and_then(|n| PhoneNumber::parse(n).ok());
        Self {
            name: modem.name.clone(),
            device: modem.device.clone(),
            baud: modem.baud,
            pin: modem.pin.clone(),
            number: number(&modem.number),
            smsc: number(&modem.smsc),
            max_parts: sms.max_parts,
            concat_ref16: sms.concat_reference_16bit,
            mode: modem.mode,
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
    /// The modem refused with `+CMS ERROR: <code>`.
    #[error("the modem refused the SMS: {detail}")]
    Refused { code: u16, detail: String },
    /// No clear answer after the PDU went out: the SMS may or may not have been sent.
    #[error("no answer after the SMS was handed to the modem ({0}); it may arrive twice")]
    Unconfirmed(String),
    /// The SMS never reached the modem (link down before the PDU was written).
    #[error("the SMS was not handed to the modem: {0}")]
    NotSent(String),
    #[error("the text cannot be encoded as SMS: {0}")]
    Encoding(String),
}

/// One part as the modem is given it.
struct Submission {
    setup: Vec<String>,
    command: String,
    body: String,
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
}

/// Start the task for one modem. `changed` is notified whenever its state changes, so
/// the dispatcher can hand out work as soon as it is ready; delivery reports go to
/// `reports`.
pub fn spawn_modem(
    settings: ModemSettings,
    changed: Arc<Notify>,
    reports: mpsc::UnboundedSender<DeliveryReport>,
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
    });
    let handle = ModemHandle {
        name: settings.name.clone(),
        number: settings.number.clone(),
        jobs: jobs_tx,
        status: status_rx,
        delivered: Arc::new(AtomicU64::new(0)),
        unavailable_after: settings.unavailable_after,
    };
    let task = ModemTask {
        settings,
        jobs: jobs_rx,
        status: status_tx,
        changed,
        reports,
        shutdown,
        reference: rand::random(),
        pin_guard: PinGuard::default(),
    };
    tokio::spawn(task.run());
    handle
}

struct ModemTask {
    settings: ModemSettings,
    jobs: mpsc::Receiver<SendJob>,
    status: watch::Sender<ModemStatus>,
    changed: Arc<Notify>,
    reports: mpsc::UnboundedSender<DeliveryReport>,
    shutdown: CancellationToken,
    /// Concatenation reference, rotated per multi-part message.
    reference: u16,
    pin_guard: PinGuard,
}

/// Why a link was given up.
enum LinkEnd {
    Shutdown,
    Broken(InitError),
}

impl ModemTask {
    async fn run(mut self) {
        let name = self.settings.name.clone();
        let mut backoff = BACKOFF_START;
        let mut absent = false;
        while !self.shutdown.is_cancelled() {
            // While the device is absent its state was published once, as it went;
            // publishing it again every poll would wake the dispatcher for nothing.
            if !absent {
                self.set_state(ModemState::Connecting, None);
            }
            let end = match open_port(&self.settings.device, self.settings.baud) {
                Ok(port) => {
                    absent = false;
                    self.drive(AtSession::new(port), &mut backoff).await
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !absent {
                        tracing::warn!(modem = %name, device = %self.settings.device.display(), poll = ?ABSENT_POLL, "modem device absent (unplugged?); watching for it");
                        self.set_state(
                            ModemState::Connecting,
                            Some(format!("the device is absent: {e}")),
                        );
                        absent = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(ABSENT_POLL) => continue,
                        () = self.shutdown.cancelled() => return,
                    }
                }
                Err(e) => LinkEnd::Broken(InitError::Command(CommandError::Io(e))),
            };
            match end {
                LinkEnd::Shutdown => return,
                LinkEnd::Broken(e) if e.is_fatal() => {
                    tracing::error!(modem = %name, error = %e, "modem needs an operator; not retrying");
                    self.set_state(ModemState::Fatal, Some(e.to_string()));
                    self.refuse_jobs_until_shutdown().await;
                    return;
                }
                LinkEnd::Broken(e) => {
                    tracing::warn!(modem = %name, error = %e, retry_in = ?backoff, "modem link down");
                    self.set_state(ModemState::Connecting, Some(e.to_string()));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Initialise and serve on an open link until it breaks or shutdown.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut session: AtSession<S>,
        backoff: &mut Duration,
    ) -> LinkEnd {
        let init = initialize(
            &mut session,
            self.settings.pin.as_deref(),
            &mut self.pin_guard,
            self.settings.delivery_reports,
            self.settings.mode,
        );
        let identity = tokio::select! {
            () = self.shutdown.cancelled() => return LinkEnd::Shutdown,
            identity = init => match identity {
                Ok(identity) => identity,
                Err(e) => return LinkEnd::Broken(e),
            },
        };
        self.status.send_modify(|s| s.identity = identity);
        // The link works: the next outage starts its backoff afresh.
        *backoff = BACKOFF_START;
        let mut health_tick = tokio::time::interval(self.settings.health_interval);
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut registered = false;
        loop {
            self.forward_reports(&mut session);
            self.publish_link(session.stats());
            if !registered {
                match self.await_registration(&mut session).await {
                    Ok(true) => {
                        registered = true;
                        tracing::info!(modem = %self.settings.name, "modem ready");
                        self.set_state(ModemState::Ready, None);
                        health_tick.reset();
                    }
                    Ok(false) => return LinkEnd::Shutdown,
                    Err(e) => return self.unresponsive(&mut session, e).await,
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return LinkEnd::Shutdown,
                job = self.jobs.recv() => {
                    let Some(job) = job else { return LinkEnd::Shutdown };
                    self.set_state(ModemState::Sending, None);
                    if let Some(e) = self.send(&mut session, job).await {
                        return self.unresponsive(&mut session, e).await;
                    }
                    self.set_state(ModemState::Ready, None);
                }
                _ = health_tick.tick() => {
                    match health::check(&mut session).await {
                        Ok(health) => {
                            registered = health.registered();
                            self.status.send_modify(|s| s.health = health);
                            if !registered {
                                tracing::warn!(modem = %self.settings.name, "modem lost its network registration");
                                self.set_state(ModemState::Searching, Some("not registered".to_owned()));
                            }
                        }
                        Err(e) => return self.unresponsive(&mut session, e).await,
                    }
                }
                read = session.idle_read() => {
                    if let Err(e) = read {
                        return LinkEnd::Broken(InitError::Command(e));
                    }
                }
            }
        }
    }

    /// Poll until registered (true) or shutdown (false).
    async fn await_registration<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<bool, CommandError> {
        let mut unanswered = 0;
        loop {
            let health = health::check(session).await?;
            // No registration line at all, three times over: the replies are not what
            // was asked (out of step) — start the link afresh rather than wait forever.
            unanswered = if health.registration.is_none() {
                unanswered + 1
            } else {
                0
            };
            if unanswered >= 3 {
                return Err(CommandError::Rejected {
                    command: "AT+CREG?".to_owned(),
                    result: crate::at::FinalResult::Other(
                        "no registration state in the reply".to_owned(),
                    ),
                });
            }
            let registered = health.registered();
            self.status.send_modify(|s| s.health = health);
            if registered {
                return Ok(true);
            }
            self.set_state(
                ModemState::Searching,
                Some("not registered to a network".to_owned()),
            );
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(false),
                () = tokio::time::sleep(SEARCH_POLL) => {}
                job = self.jobs.recv() => match job {
                    Some(job) => {
                        let _ = job.reply.send(Err(SendError::NotSent("the modem is not registered".to_owned())));
                    }
                    None => return Ok(false),
                },
            }
        }
    }

    /// The modem stopped answering (or the port failed): ask once more with `AT`; if
    /// it still says nothing, reset its radio stack (`AT+CFUN=1,1`) and reopen the port.
    async fn unresponsive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        error: CommandError,
    ) -> LinkEnd {
        if matches!(error, CommandError::Timeout { .. }) {
            let _ = session.cancel_prompt().await;
            if session.command("AT", Duration::from_secs(2)).await.is_ok() {
                // It answers again: re-initialise on the same port (the modem may have
                // rebooted and lost its settings).
                tracing::warn!(modem = %self.settings.name, error = %error, "modem was silent, answers again");
                return LinkEnd::Broken(InitError::Command(error));
            }
            tracing::warn!(modem = %self.settings.name, "modem does not answer; resetting it (AT+CFUN=1,1)");
            let _ = session.command("AT+CFUN=1,1", Duration::from_secs(2)).await;
        }
        LinkEnd::Broken(InitError::Command(error))
    }

    /// Send one job; returns the link error if the link is in doubt.
    async fn send<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        job: SendJob,
    ) -> Option<CommandError> {
        let validity = (job.expires_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let options = SubmitOptions {
            validity: Some(validity),
            status_report: self.settings.delivery_reports,
            smsc: self.settings.smsc.clone(),
            concat_ref16: self.settings.concat_ref16,
            max_parts: self.settings.max_parts,
        };
        self.reference = self.reference.wrapping_add(1);
        let submissions = match self.submissions(&job, &options) {
            Ok(submissions) => submissions,
            Err(e) => {
                let _ = job.reply.send(Err(SendError::Encoding(e.to_string())));
                return None;
            }
        };
        let mut references = Vec::with_capacity(submissions.len());
        for (index, submission) in submissions.iter().enumerate() {
            let result = self.submit(session, submission).await;
            self.forward_reports(session);
            match result {
                Ok(mr) => references.push(mr),
                Err(SendPduError {
                    error: e,
                    pdu_written,
                }) => {
                    let outcome = if let Some(code) = e.cms_code() {
                        SendError::Refused {
                            code,
                            detail: describe_refusal(code),
                        }
                    } else if pdu_written || index > 0 {
                        // No answer after the PDU went out (or after a part was
                        // accepted): the user may get it, so it may arrive twice.
                        SendError::Unconfirmed(e.to_string())
                    } else {
                        SendError::NotSent(e.to_string())
                    };
                    self.status.send_modify(|s| {
                        s.failed += 1;
                        s.last_error = Some(outcome.to_string());
                    });
                    let _ = job.reply.send(Err(outcome));
                    return e.link_is_broken().then_some(e);
                }
            }
        }
        self.status.send_modify(|s| {
            s.sent += 1;
            s.last_sent_at = Some(Utc::now());
        });
        // The dispatcher may have given up waiting (shutdown); nothing to do then.
        let _ = job.reply.send(Ok(references));
        None
    }

    /// What to write for each part: set-up commands, the `AT+CMGS` line, the body.
    fn submissions(
        &self,
        job: &SendJob,
        options: &SubmitOptions,
    ) -> Result<Vec<Submission>, sms::EncodeError> {
        match self.settings.mode {
            SmsMode::Pdu => Ok(
                sms::encode_submit(&job.to, &job.text, self.reference, options)?
                    .into_iter()
                    .map(|pdu| Submission {
                        setup: Vec::new(),
                        command: format!("AT+CMGS={}", pdu.tpdu_len),
                        body: pdu.to_hex(),
                    })
                    .collect(),
            ),
            SmsMode::Text => {
                let text = sms::text_mode_submit(&job.to, &job.text, options)?;
                Ok(vec![Submission {
                    setup: vec![text.cscs_command(), text.csmp_command()],
                    command: text.cmgs_command(),
                    body: text.payload,
                }])
            }
        }
    }

    async fn submit<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut AtSession<S>,
        submission: &Submission,
    ) -> Result<u8, SendPduError> {
        for command in &submission.setup {
            session
                .command(command, super::init::QUERY_TIMEOUT)
                .await
                .map_err(|error| SendPduError {
                    error,
                    pdu_written: false,
                })?;
        }
        session
            .submit(
                &submission.command,
                &submission.body,
                self.settings.send_timeout,
            )
            .await
    }

    fn forward_reports<S: AsyncRead + AsyncWrite + Unpin>(&self, session: &mut AtSession<S>) {
        for urc in session.take_urcs() {
            let Some(pdu) = urc.pdu.as_deref().filter(|_| urc.line.starts_with("+CDS")) else {
                continue;
            };
            match hex::decode(pdu.trim())
                .map_err(|_| sms::DecodeError::BadHex)
                .and_then(|b| sms::decode_status_report(&b))
            {
                Ok(report) => {
                    let _ = self.reports.send(DeliveryReport {
                        modem: self.settings.name.clone(),
                        report,
                    });
                }
                Err(e) => {
                    tracing::warn!(modem = %self.settings.name, error = %e, "undecodable status report")
                }
            }
        }
    }

    async fn refuse_jobs_until_shutdown(&mut self) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                job = self.jobs.recv() => match job {
                    Some(job) => {
                        let _ = job.reply.send(Err(SendError::NotSent("modem needs an operator".to_owned())));
                    }
                    None => return,
                },
            }
        }
    }

    fn set_state(&self, state: ModemState, error: Option<String>) {
        self.status.send_modify(|status| {
            status.state = state;
            if matches!(state, ModemState::Ready | ModemState::Sending) {
                status.unready_since = None;
            } else if status.unready_since.is_none() {
                status.unready_since = Some(Instant::now());
            }
            if error.is_some() {
                status.last_error = error;
            }
        });
        self.changed.notify_one();
    }

    fn publish_link(&self, link: LinkStats) {
        self.status.send_if_modified(|status| {
            let changed = status.link != link;
            status.link = link;
            changed
        });
    }
}

/// `+CMS ERROR: 42 (congestion)`, from the AT layer's table.
fn describe_refusal(code: u16) -> String {
    crate::at::describe_cms_error(&crate::at::ErrorCode::Numeric(code))
}
