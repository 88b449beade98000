//! The per-modem task: connect, initialise, then send what the dispatcher hands over,
//! reconnecting with capped exponential backoff whenever the link breaks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::init::{initialize, InitError};
use super::port::open_port;
use super::session::{AtSession, CommandError, LinkStats};
use crate::sms::{self, PhoneNumber, SubmitOptions};

/// Radio time the network may take to accept one SMS.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ModemSettings {
    pub name: String,
    pub device: PathBuf,
    pub baud: u32,
    pub pin: Option<String>,
    pub number: Option<PhoneNumber>,
    pub max_parts: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModemState {
    Connecting,
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
    pub link: LinkStats,
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
    #[error("the modem refused the SMS: +CMS ERROR: {code}")]
    Refused { code: u16, detail: String },
    /// No clear answer after the PDU went out: the SMS may or may not have been sent.
    #[error("no answer after the SMS was handed to the modem: {0}")]
    Unconfirmed(String),
    /// The SMS never reached the modem (link down before the PDU was written).
    #[error("the modem link failed before the SMS was handed over: {0}")]
    NotSent(String),
    #[error("the text cannot be encoded as SMS: {0}")]
    Encoding(String),
}

/// What the dispatcher holds of a modem.
#[derive(Debug, Clone)]
pub struct ModemHandle {
    pub name: String,
    pub number: Option<PhoneNumber>,
    pub jobs: mpsc::Sender<SendJob>,
    pub status: watch::Receiver<ModemStatus>,
}

/// Start the task for one modem. `changed` is notified whenever its state changes, so
/// the dispatcher can hand out work as soon as it is ready.
pub fn spawn_modem(
    settings: ModemSettings,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
) -> ModemHandle {
    let (jobs_tx, jobs_rx) = mpsc::channel(1);
    let (status_tx, status_rx) = watch::channel(ModemStatus {
        state: ModemState::Connecting,
        last_error: None,
        sent: 0,
        link: LinkStats::default(),
    });
    let handle = ModemHandle {
        name: settings.name.clone(),
        number: settings.number.clone(),
        jobs: jobs_tx,
        status: status_rx,
    };
    let task = ModemTask {
        settings,
        jobs: jobs_rx,
        status: status_tx,
        changed,
        shutdown,
        reference: rand::random(),
    };
    tokio::spawn(task.run());
    handle
}

struct ModemTask {
    settings: ModemSettings,
    jobs: mpsc::Receiver<SendJob>,
    status: watch::Sender<ModemStatus>,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
    /// Concatenation reference, rotated per multi-part message.
    reference: u16,
}

impl ModemTask {
    async fn run(mut self) {
        let name = self.settings.name.clone();
        let mut backoff = BACKOFF_START;
        while !self.shutdown.is_cancelled() {
            self.set_state(ModemState::Connecting, None);
            let outcome = match open_port(&self.settings.device, self.settings.baud) {
                Ok(port) => self.drive(AtSession::new(port)).await,
                Err(e) => Err(InitError::Command(CommandError::Io(e))),
            };
            match outcome {
                Ok(()) => return,
                Err(e) if e.is_fatal() => {
                    tracing::error!(modem = %name, error = %e, "modem needs an operator; not retrying");
                    self.set_state(ModemState::Fatal, Some(e.to_string()));
                    self.refuse_jobs_until_shutdown().await;
                    return;
                }
                Err(e) => {
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

    /// Initialise and serve on an open link; returns when it breaks or on shutdown.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut session: AtSession<S>,
    ) -> Result<(), InitError> {
        initialize(&mut session, self.settings.pin.as_deref()).await?;
        tracing::info!(modem = %self.settings.name, "modem ready");
        self.set_state(ModemState::Ready, None);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                job = self.jobs.recv() => {
                    let Some(job) = job else { return Ok(()) };
                    self.set_state(ModemState::Sending, None);
                    let broken = self.send(&mut session, job).await;
                    self.publish_link(session.stats());
                    if let Some(e) = broken {
                        return Err(InitError::Command(e));
                    }
                    self.set_state(ModemState::Ready, None);
                }
                read = session.idle_read() => {
                    read?;
                    session.take_urcs();
                }
            }
        }
    }

    /// Send one job; returns the link error if the link must be re-established.
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
            max_parts: self.settings.max_parts,
            ..SubmitOptions::default()
        };
        self.reference = self.reference.wrapping_add(1);
        let pdus = match sms::encode_submit(&job.to, &job.text, self.reference, &options) {
            Ok(pdus) => pdus,
            Err(e) => {
                let _ = job.reply.send(Err(SendError::Encoding(e.to_string())));
                return None;
            }
        };
        let mut references = Vec::with_capacity(pdus.len());
        for pdu in &pdus {
            match session
                .send_pdu(pdu.tpdu_len, &pdu.to_hex(), SEND_TIMEOUT)
                .await
            {
                Ok(mr) => references.push(mr),
                Err(e) => {
                    let handed_over = matches!(
                        e,
                        CommandError::Timeout { .. } | CommandError::Closed | CommandError::Io(_)
                    );
                    let outcome = match e.cms_code() {
                        Some(code) => SendError::Refused {
                            code,
                            detail: e.to_string(),
                        },
                        None if handed_over => SendError::Unconfirmed(e.to_string()),
                        None => SendError::NotSent(e.to_string()),
                    };
                    let _ = job.reply.send(Err(outcome));
                    return e.link_is_broken().then_some(e);
                }
            }
        }
        self.status.send_modify(|status| status.sent += 1);
        // The dispatcher may have given up waiting (shutdown); nothing to do then.
        let _ = job.reply.send(Ok(references));
        None
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
            if error.is_some() {
                status.last_error = error;
            }
        });
        self.changed.notify_one();
    }

    fn publish_link(&self, link: LinkStats) {
        self.status.send_modify(|status| status.link = link);
    }
}
