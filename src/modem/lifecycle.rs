//! The per-modem task: connect, initialise, wait for the network, then send what the
//! dispatcher hands over; recover a modem that stops answering; reconnect with capped
//! exponential backoff whenever the link breaks (including a udev symlink that now
//! points at another tty).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::handle::{ModemSettings, ModemState, ModemStatus, Outlets, SendError, SendJob};
use super::health;
use super::init::{initialize, InitError, PinGuard};
use super::port::Connector;
use super::session::{AtSession, CommandError, LinkStats};
use crate::config::ResetMode;

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the path of an unplugged modem is looked at. Opening a path that does not
/// exist costs nothing and bothers no modem, so this does not back off: a dongle
/// plugged back in (udev puts its link back) is used within this long, however long it
/// was away, instead of after a backoff grown while it was gone.
const ABSENT_POLL: Duration = Duration::from_millis(500);
/// How long each reset command (`[[modem]] reset`) may take.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an unregistered modem is asked again.
const SEARCH_POLL: Duration = Duration::from_secs(2);

pub(super) struct ModemTask {
    pub(super) settings: ModemSettings,
    pub(super) connector: Arc<dyn Connector>,
    pub(super) jobs: mpsc::Receiver<SendJob>,
    pub(super) status: watch::Sender<ModemStatus>,
    pub(super) outlets: Outlets,
    pub(super) shutdown: CancellationToken,
    /// Concatenation reference, rotated per multi-part message.
    pub(super) reference: u16,
    pub(super) pin_guard: PinGuard,
    pub(super) storage: super::storage::Storage,
    /// Received parts waiting for the rest of their SMS (kept across reconnects: the
    /// slots are in the modem's storage, which outlives a link).
    pub(super) reassembly: crate::sms::Reassembly<Option<super::storage::Slot>>,
}

/// Why a link was given up.
enum LinkEnd {
    Shutdown,
    Broken(InitError),
}

impl ModemTask {
    pub(super) async fn run(mut self) {
        let name = self.settings.name.clone();
        let mut backoff = BACKOFF_START;
        let mut absent = false;
        while !self.shutdown.is_cancelled() {
            // While the device is absent its state was published once, as it went;
            // publishing it again every poll would wake the dispatcher for nothing.
            if !absent {
                self.set_state(ModemState::Connecting, None);
            }
            let end = match self.connector.connect().await {
                Ok(port) => {
                    absent = false;
                    self.drive(AtSession::new(port), &mut backoff).await
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !absent {
                        tracing::warn!(modem = %name, device = %self.settings.device, poll = ?ABSENT_POLL, "modem device absent (unplugged?); watching for it");
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
        self.forget_storage();
        if let Err(e) = self.learn_message_service(&mut session).await {
            return self.unresponsive(&mut session, e).await;
        }
        if let Err(e) = self.look_after_storage(&mut session, true).await {
            return self.unresponsive(&mut session, e).await;
        }
        let mut health_tick = tokio::time::interval(self.settings.health_interval);
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut registered = false;
        let mut balance_tick = tokio::time::interval(self.settings.balance_interval);
        balance_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wants_balance = self.settings.balance_ussd.is_some();
        loop {
            self.take_unsolicited(&mut session);
            if let Err(e) = self.look_after_storage(&mut session, false).await {
                return self.unresponsive(&mut session, e).await;
            }
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
                    if let Err(e) = self.look_after_storage(&mut session, true).await {
                        return self.unresponsive(&mut session, e).await;
                    }
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
                _ = balance_tick.tick(), if wants_balance && registered => {
                    if let Err(e) = self.check_balance(&mut session).await {
                        return self.unresponsive(&mut session, e).await;
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

    /// Ask the balance USSD; the answer goes to the status (and `/modems`). Only a
    /// broken link is an error: a refusal or no answer is logged and tried next time.
    async fn check_balance<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<(), CommandError> {
        let Some(code) = self.settings.balance_ussd.clone() else {
            return Ok(());
        };
        match super::ussd::run_ussd(session, &code, self.settings.ussd_packed).await {
            Ok(answer) => {
                tracing::info!(modem = %self.settings.name, status = answer.status, "balance checked by USSD");
                self.status
                    .send_modify(|s| s.balance = Some((answer.text, chrono::Utc::now())));
                Ok(())
            }
            Err(super::ussd::UssdError::Command(e)) if e.link_is_broken() => Err(e),
            Err(e) => {
                tracing::warn!(modem = %self.settings.name, error = %e, "the balance USSD got no answer");
                Ok(())
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
            let commands: &[&str] = match self.settings.reset {
                ResetMode::Cfun11 => &["AT+CFUN=1,1"],
                ResetMode::Cfun01 => &["AT+CFUN=0", "AT+CFUN=1"],
                ResetMode::None => &[],
            };
            tracing::warn!(modem = %self.settings.name, reset = ?commands, "modem does not answer; resetting it and reopening the port");
            for command in commands {
                // Radio off and on can take seconds; a modem that stays silent is
                // reopened all the same.
                let _ = session.command(command, RESET_TIMEOUT).await;
            }
        }
        LinkEnd::Broken(InitError::Command(error))
    }

    /// Send one job; returns the link error if the link is in doubt.
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

    pub(super) fn set_state(&self, state: ModemState, error: Option<String>) {
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
        self.outlets.changed.notify_one();
    }

    fn publish_link(&self, link: LinkStats) {
        self.status.send_if_modified(|status| {
            let changed = status.link != link;
            status.link = link;
            changed
        });
    }
}
