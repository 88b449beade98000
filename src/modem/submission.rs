//! Sending one SMS: the parts as the modem is given them (PDU or text mode), one
//! `AT+CMGS` each, and what a failure means for the message (refused, maybe sent,
//! never handed over).

use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncRead, AsyncWrite};

use super::handle::{SendError, SendJob};
use super::lifecycle::ModemTask;
use super::session::{AtSession, CommandError, SendPduError};
use crate::config::SmsMode;
use crate::sms::{self, SubmitOptions};

/// `+CMS ERROR: 322`, memory full.
const MEMORY_FULL: u16 = 322;

/// One part as the modem is given it.
struct Submission {
    setup: Vec<String>,
    command: String,
    body: String,
}

impl ModemTask {
    pub(super) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
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
            self.take_unsolicited(session);
            match result {
                Ok(mr) => references.push(mr),
                Err(SendPduError {
                    error: e,
                    pdu_written,
                }) => {
                    let outcome = if let Some(code) = e.cms_code() {
                        if code == MEMORY_FULL {
                            // Some modems stop sending while their storage is full:
                            // drain it, and the retry goes through.
                            tracing::warn!(modem = %self.settings.name, "the modem refused a send with memory full (+CMS ERROR: 322); draining its storage");
                            self.storage.drain_needed = true;
                        }
                        SendError::refused(code)
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
}
