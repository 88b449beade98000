//! USSD: a code (`*100#`) sent with `AT+CUSD=1,"…",15`, and the network's answer,
//! which most modems deliver as a `+CUSD:` URC seconds after `OK` (some inside the
//! reply). Used for a prepaid SIM's balance (`[[modem]] balance_ussd`) and by
//! `sms2fa modem ussd`.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::session::{AtSession, CommandError};
use crate::at::{parse_cusd, ussd_request, UssdAnswer};

/// How long the network may take to answer.
pub const USSD_TIMEOUT: Duration = Duration::from_secs(30);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum UssdError {
    #[error("{0:?} is not a USSD code this modem can be given")]
    BadCode(String),
    #[error("no USSD answer within {0:?}")]
    NoAnswer(Duration),
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Send `code` (packed as GSM 7-bit hex when `packed`) and wait for the answer.
pub async fn run_ussd<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
    code: &str,
    packed: bool,
) -> Result<UssdAnswer, UssdError> {
    let command = ussd_request(code, packed).ok_or_else(|| UssdError::BadCode(code.into()))?;
    // An answer left over from an earlier request is not this one's.
    while session.take_urc(is_cusd).is_some() {}
    let lines = session.command(&command, COMMAND_TIMEOUT).await?;
    if let Some(answer) = lines.iter().find_map(|line| parse_cusd(line)) {
        return Ok(answer);
    }
    let deadline = Instant::now() + USSD_TIMEOUT;
    loop {
        if let Some(answer) = session
            .take_urc(is_cusd)
            .and_then(|urc| parse_cusd(&urc.line))
        {
            return Ok(answer);
        }
        match tokio::time::timeout_at(deadline, session.idle_read()).await {
            Ok(read) => read?,
            Err(_) => return Err(UssdError::NoAnswer(USSD_TIMEOUT)),
        }
    }
}

fn is_cusd(urc: &crate::at::Urc) -> bool {
    urc.line.trim_start().starts_with("+CUSD")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_answer_comes_as_a_urc_after_ok_or_inside_the_reply() {
        for (reply, expected) in [
            (
                &b"\r\nOK\r\n\r\n+CUSD: 0,\"Balance 4.20 EUR\",15\r\n"[..],
                "Balance 4.20 EUR",
            ),
            (
                &b"\r\n+CUSD: 0,\"AA180C3602\",15\r\n\r\nOK\r\n"[..],
                "*100#",
            ),
        ] {
            let (ours, mut modem) = tokio::io::duplex(4096);
            let mut session = AtSession::new(ours);
            let answer = tokio::spawn(async move {
                let mut command = [0u8; 64];
                let n = modem.read(&mut command).await.unwrap();
                assert_eq!(&command[..n], b"AT+CUSD=1,\"*100#\",15\r");
                modem.write_all(reply).await.unwrap();
                modem
            });
            let got = run_ussd(&mut session, "*100#", false)
                .await
                .expect("answer");
            assert_eq!((got.status, got.text.as_str()), (0, expected));
            let _modem = answer.await.unwrap();
        }
    }
}
