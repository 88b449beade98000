//! One AT dialogue over a byte stream: write a command, feed the [`Digester`] what the
//! modem says, until the command's final result or a timeout. URCs seen on the way are
//! kept for the caller.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::at::{parse_cmgs, Digester, ErrorCode, Event, FinalResult, Urc};

const CTRL_Z: u8 = 0x1a;
const ESC: u8 = 0x1b;

/// After ESC: the line counts as settled after this long without a byte…
const SETTLE_QUIET: Duration = Duration::from_millis(200);
/// …or after this long in all, if the modem keeps talking (a URC storm).
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// How long the line must stay quiet after the information line of a query that some
/// families answer without a final result code (Wavecom's `+CPIN:`) before that line
/// is taken as the whole answer. Modems that do append `OK` send it in the same burst.
const UNTERMINATED_QUIET: Duration = Duration::from_millis(500);

/// How long the modem may take to show the `> ` prompt after `AT+CMGS=<n>`.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no answer to {command} within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    #[error("the port failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the port was closed")]
    Closed,
    #[error("{command} was answered {result:?}")]
    Rejected {
        command: String,
        result: FinalResult,
    },
}

impl CommandError {
    /// The `+CMS ERROR` code, when the modem refused with one.
    pub fn cms_code(&self) -> Option<u16> {
        match self {
            Self::Rejected {
                result: FinalResult::CmsError(ErrorCode::Numeric(code)),
                ..
            } => Some(*code),
            _ => None,
        }
    }

    /// The link itself is in doubt (no answer, port gone): reconnect before going on.
    pub fn link_is_broken(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Io(_) | Self::Closed)
    }
}

/// Traffic counters, for benchmarks and `/modems`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    pub commands: u64,
    pub bytes_written: u64,
}

pub struct AtSession<S> {
    stream: S,
    digester: Digester,
    urcs: Vec<Urc>,
    stats: LinkStats,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AtSession<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            digester: Digester::new(),
            urcs: Vec::new(),
            stats: LinkStats::default(),
        }
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// URCs collected since the last call. Call between commands: what the modem sent
    /// right after a final result code (a `+CDS` behind `+CMGS: 7` `OK`, in the same
    /// read) sits whole in the digester, and would otherwise wait there until the next
    /// bytes arrive, which may be the next health check.
    pub fn take_urcs(&mut self) -> Vec<Urc> {
        while let Some(event) = self.digester.next_event() {
            self.keep_unsolicited(event);
        }
        std::mem::take(&mut self.urcs)
    }

    /// Take the first collected URC that `wanted` picks, leaving the others for
    /// [`Self::take_urcs`].
    pub fn take_urc(&mut self, wanted: impl Fn(&Urc) -> bool) -> Option<Urc> {
        while let Some(event) = self.digester.next_event() {
            self.keep_unsolicited(event);
        }
        let at = self.urcs.iter().position(wanted)?;
        Some(self.urcs.remove(at))
    }

    /// ESC cancels a `> ` prompt that a killed process may have left open; Ctrl-Z
    /// would instead send whatever half-PDU was typed.
    ///
    /// Whatever the modem answers to it (some say `OK`, some nothing) and any reply
    /// still on its way from an abandoned command is read off here, until the line has
    /// been quiet for a moment; otherwise that stray `OK` would be taken as the answer
    /// to the next command and every later reply would be one out of step.
    pub async fn cancel_prompt(&mut self) -> Result<(), CommandError> {
        self.digester.reset();
        self.write(&[ESC]).await?;
        let give_up = Instant::now() + SETTLE_MAX;
        let mut buf = [0u8; 512];
        loop {
            let quiet_until = (Instant::now() + SETTLE_QUIET).min(give_up);
            match tokio::time::timeout_at(quiet_until, self.stream.read(&mut buf)).await {
                // Quiet (or settled long enough): the line is in step again.
                Err(_) => break,
                Ok(Ok(0)) => return Err(CommandError::Closed),
                Ok(Ok(n)) => {
                    // No command is pending, so every line is kept as unsolicited:
                    // a `+CDS` arriving now is not lost.
                    self.digester.feed(&buf[..n]);
                    while let Some(event) = self.digester.next_event() {
                        self.keep_unsolicited(event);
                    }
                }
                Ok(Err(e)) => return Err(CommandError::Io(e)),
            }
            if Instant::now() >= give_up {
                break;
            }
        }
        self.digester.reset();
        Ok(())
    }

    /// Run `command` (without `\r`) and return its information lines on `OK`.
    pub async fn command(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, CommandError> {
        self.start(command).await?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline, command, timeout).await? {
                Event::Response { lines, result } => return finish(command, lines, result),
                // A prompt we did not ask for: leave it, and say the command failed.
                Event::Prompt => {
                    self.cancel_prompt().await?;
                    return Err(CommandError::Rejected {
                        command: command.to_owned(),
                        result: FinalResult::Other("unexpected prompt".to_owned()),
                    });
                }
                _ => {}
            }
        }
    }

    /// Send one SMS with `command` (`AT+CMGS=<len>` in PDU mode, `AT+CMGS="<da>"` in
    /// text mode), `body` after the `> ` prompt and Ctrl-Z, and return the TP-MR the
    /// network gave it. A failure says whether the body had already been written (then
    /// the SMS may have gone out although no answer came).
    pub async fn submit(
        &mut self,
        command: &str,
        body: &str,
        timeout: Duration,
    ) -> Result<u8, SendPduError> {
        let mut written = false;
        self.submit_inner(command.to_owned(), body, timeout, &mut written)
            .await
            .map_err(|error| SendPduError {
                error,
                pdu_written: written,
            })
    }

    async fn submit_inner(
        &mut self,
        command: String,
        body: &str,
        timeout: Duration,
        written: &mut bool,
    ) -> Result<u8, CommandError> {
        self.start(&command).await?;
        let prompt_deadline = Instant::now() + PROMPT_TIMEOUT;
        loop {
            match self
                .next_event(prompt_deadline, &command, PROMPT_TIMEOUT)
                .await
            {
                Ok(Event::Prompt) => break,
                Ok(Event::Response { lines, result }) => {
                    finish(&command, lines, result)?;
                    return Err(CommandError::Rejected {
                        command,
                        result: FinalResult::Other("OK without a prompt".to_owned()),
                    });
                }
                Ok(_) => {}
                Err(e @ CommandError::Timeout { .. }) => {
                    // Never leave the modem waiting for a PDU.
                    self.cancel_prompt().await?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        let mut payload = Vec::with_capacity(body.len() + 1);
        payload.extend_from_slice(body.as_bytes());
        payload.push(CTRL_Z);
        *written = true;
        self.write(&payload).await?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Event::Response { lines, result } =
                self.next_event(deadline, &command, timeout).await?
            {
                let lines = finish(&command, lines, result)?;
                return lines.iter().find_map(|line| parse_cmgs(line).ok()).ok_or(
                    CommandError::Rejected {
                        command,
                        result: FinalResult::Other("OK without +CMGS: <mr>".to_owned()),
                    },
                );
            }
        }
    }

    /// Wait for bytes while idle and digest them (URCs, or the port closing). Cancel-safe.
    pub async fn idle_read(&mut self) -> Result<(), CommandError> {
        let mut buf = [0u8; 512];
        let n = self.stream.read(&mut buf).await?;
        if n == 0 {
            return Err(CommandError::Closed);
        }
        self.digester.feed(&buf[..n]);
        while let Some(event) = self.digester.next_event() {
            self.keep_unsolicited(event);
        }
        Ok(())
    }

    async fn start(&mut self, command: &str) -> Result<(), CommandError> {
        self.digester.command_sent(command);
        let mut line = Vec::with_capacity(command.len() + 1);
        line.extend_from_slice(command.as_bytes());
        line.push(b'\r');
        self.stats.commands += 1;
        self.write(&line).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), CommandError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        self.stats.bytes_written += bytes.len() as u64;
        Ok(())
    }

    /// The next event that answers the command in flight (`Response` or `Prompt`);
    /// URCs are kept, echo and garbage dropped.
    async fn next_event(
        &mut self,
        deadline: Instant,
        command: &str,
        timeout: Duration,
    ) -> Result<Event, CommandError> {
        let mut buf = [0u8; 512];
        loop {
            while let Some(event) = self.digester.next_event() {
                match event {
                    Event::Response { .. } | Event::Prompt => return Ok(event),
                    other => self.keep_unsolicited(other),
                }
            }
            let settling = self.digester.may_settle();
            let wait_until = if settling {
                deadline.min(Instant::now() + UNTERMINATED_QUIET)
            } else {
                deadline
            };
            let read = tokio::time::timeout_at(wait_until, self.stream.read(&mut buf)).await;
            match read {
                Err(_) if settling => {
                    if let Some(event) = self.digester.settle() {
                        tracing::debug!(
                            command,
                            "answer without a final result code taken as complete"
                        );
                        return Ok(event);
                    }
                }
                Err(_) => {
                    self.digester.reset();
                    return Err(CommandError::Timeout {
                        command: command.to_owned(),
                        timeout,
                    });
                }
                Ok(Ok(0)) => return Err(CommandError::Closed),
                Ok(Ok(n)) => self.digester.feed(&buf[..n]),
                Ok(Err(e)) => return Err(CommandError::Io(e)),
            }
        }
    }

    fn keep_unsolicited(&mut self, event: Event) {
        match event {
            Event::Urc(urc) => {
                tracing::debug!(urc = %urc.line, "unsolicited result code");
                self.urcs.push(urc);
            }
            Event::Garbage(bytes) => tracing::trace!(len = bytes.len(), "garbage from the modem"),
            Event::Echo(_) | Event::Response { .. } | Event::Prompt => {}
        }
    }
}

fn finish(
    command: &str,
    lines: Vec<String>,
    result: FinalResult,
) -> Result<Vec<String>, CommandError> {
    match result {
        FinalResult::Ok => Ok(lines),
        result => Err(CommandError::Rejected {
            command: command.to_owned(),
            result,
        }),
    }
}

/// A failed `AT+CMGS`, and whether the PDU (with Ctrl-Z) had been written.
#[derive(Debug)]
pub struct SendPduError {
    pub error: CommandError,
    pub pdu_written: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_urc_in_the_same_read_as_the_final_result_is_not_left_waiting() {
        let (ours, mut modem) = tokio::io::duplex(4096);
        let mut session = AtSession::new(ours);
        let answer = tokio::spawn(async move {
            let mut command = [0u8; 64];
            let _ = modem.read(&mut command).await.unwrap();
            // One write: the reply, then a whole two-line +CDS right behind it.
            modem
                .write_all(b"\r\nOK\r\n\r\n+CDS: 6\r\n0006070B911234\r\n")
                .await
                .unwrap();
            modem
        });
        session
            .command("AT", Duration::from_secs(5))
            .await
            .expect("OK");
        let _modem = answer.await.unwrap();
        let urcs = session.take_urcs();
        assert_eq!(urcs.len(), 1, "{urcs:?}");
        assert!(urcs[0].line.starts_with("+CDS"), "{urcs:?}");
    }
}
