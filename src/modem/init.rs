//! Bringing a freshly opened modem to the point where it can send SMS:
//! attention → echo off → numeric errors → SIM/PIN → identity → SMS set-up.
//! Registration is checked by [`super::health`], since it comes and goes while ready.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::session::{AtSession, CommandError};
use crate::at::{parse_cpin, ErrorCode, FinalResult, SimState};
use crate::config::SmsMode;

pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const ATTENTION_TRIES: u32 = 5;
/// How long a SIM may stay busy (`+CME ERROR: 14`, `NOT READY`) after power-up or PIN.
const SIM_BUSY_WAIT: Duration = Duration::from_secs(30);
const SIM_POLL: Duration = Duration::from_millis(500);
/// `AT+CNMI` variants, most to least capable: each stores received SMS and announces
/// them (`<mt>=1`, `+CMTI`); the first routes status reports directly (`<ds>=1`,
/// `+CDS`); modems that refuse it get one that stores them (`<ds>=2`) or none, so that
/// at least SMS sending is set up.
const CNMI_VARIANTS: [&str; 3] = [
    "AT+CNMI=2,1,2,1,0",
    "AT+CNMI=2,1,2,2,0",
    "AT+CNMI=2,1,2,0,0",
];

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the modem does not answer AT")]
    NoAnswer,
    #[error("the SIM asks for a PIN and none is configured (set `pin` for this modem)")]
    PinNeeded,
    /// Fatal: trying again could lock the SIM (PUK).
    #[error(
        "the SIM refused the configured PIN; not retrying, as repeated tries would lock the SIM"
    )]
    PinRejected,
    #[error("the SIM is locked and needs its PUK; unlock it in a phone, then restart sms2fa")]
    SimLocked,
    #[error("no SIM card is inserted")]
    NoSim,
    #[error("the SIM did not become ready ({0})")]
    SimNotReady(String),
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl InitError {
    /// States that retrying cannot cure without an operator.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::PinNeeded | Self::PinRejected | Self::SimLocked)
    }
}

/// What the modem says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemIdentity {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub imei: Option<String>,
}

/// PIN bookkeeping that must survive reconnects: a PIN the SIM refused is never
/// entered again by this process.
#[derive(Debug, Default)]
pub struct PinGuard {
    refused: bool,
}

/// The whole init sequence. `want_reports` sets up `+CDS` routing; `mode` picks PDU
/// or text mode (`AT+CMGF`).
pub async fn initialize<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
    pin: Option<&str>,
    guard: &mut PinGuard,
    want_reports: bool,
    mode: SmsMode,
) -> Result<ModemIdentity, InitError> {
    // A killed process may have left the modem at the `> ` prompt: ESC, never Ctrl-Z.
    session.cancel_prompt().await?;
    wait_for_attention(session).await?;
    session.command("ATE0", QUERY_TIMEOUT).await?;
    // Numeric errors are the ones the CMS table knows; some modems refuse, and then
    // verbose or plain ERROR still parse.
    optional(session.command("AT+CMEE=1", QUERY_TIMEOUT).await)?;
    unlock_sim(session, pin, guard).await?;
    let identity = identify(session).await?;
    let cmgf = match mode {
        SmsMode::Pdu => "AT+CMGF=0",
        SmsMode::Text => "AT+CMGF=1",
    };
    session.command(cmgf, QUERY_TIMEOUT).await?;
    // Phase 2 (CSMS=0): status reports need no AT+CNMA acknowledgement.
    optional(session.command("AT+CSMS=0", QUERY_TIMEOUT).await)?;
    if want_reports {
        set_up_reports(session).await?;
    } else {
        announce_received(session).await?;
    }
    if identity
        .manufacturer
        .as_deref()
        .is_some_and(|m| m.to_ascii_lowercase().contains("huawei"))
    {
        // Huawei floods ^RSSI/^MODE/^DSFLOWRPT otherwise.
        optional(session.command("AT^CURC=0", QUERY_TIMEOUT).await)?;
    }
    Ok(identity)
}

/// A refusal is fine (the modem lacks the feature); a dead link is not.
fn optional(result: Result<Vec<String>, CommandError>) -> Result<(), CommandError> {
    match result {
        Ok(_) | Err(CommandError::Rejected { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn wait_for_attention<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<(), InitError> {
    for attempt in 0..ATTENTION_TRIES {
        match session.command("AT", Duration::from_secs(1)).await {
            Ok(_) => return Ok(()),
            Err(CommandError::Timeout { .. } | CommandError::Rejected { .. }) => {
                // A modem still booting says nothing; a reset (ATZ) unsticks some.
                if attempt == 2 {
                    let _ = session.command("ATZ", Duration::from_secs(2)).await;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(InitError::NoAnswer)
}

async fn unlock_sim<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
    pin: Option<&str>,
    guard: &mut PinGuard,
) -> Result<(), InitError> {
    let deadline = tokio::time::Instant::now() + SIM_BUSY_WAIT;
    let mut pin_entered = false;
    loop {
        let state = match session.command("AT+CPIN?", QUERY_TIMEOUT).await {
            Ok(lines) => lines
                .iter()
                .find_map(|line| parse_cpin(line).ok())
                .unwrap_or(SimState::Other("no +CPIN line".to_owned())),
            Err(CommandError::Rejected { result, .. }) => sim_state_from_error(&result),
            Err(e) => return Err(e.into()),
        };
        match state {
            SimState::Ready => return Ok(()),
            SimState::SimPin if pin_entered => {
                // The SIM took the PIN but still asks: treat like busy and wait.
            }
            SimState::SimPin => {
                if guard.refused {
                    return Err(InitError::PinRejected);
                }
                let pin = pin.ok_or(InitError::PinNeeded)?;
                match session
                    .command(&format!("AT+CPIN=\"{pin}\""), QUERY_TIMEOUT)
                    .await
                {
                    Ok(_) => pin_entered = true,
                    Err(CommandError::Rejected { .. }) => {
                        guard.refused = true;
                        return Err(InitError::PinRejected);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            SimState::SimPuk => return Err(InitError::SimLocked),
            SimState::NotInserted => return Err(InitError::NoSim),
            SimState::NotReady | SimState::Other(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(InitError::SimNotReady("still busy after 30 s".to_owned()));
        }
        tokio::time::sleep(SIM_POLL).await;
    }
}

/// `+CME ERROR: 14` (SIM busy) and friends while the SIM boots; 10 = not inserted.
fn sim_state_from_error(result: &FinalResult) -> SimState {
    match result {
        FinalResult::CmeError(ErrorCode::Numeric(10)) => SimState::NotInserted,
        FinalResult::CmeError(ErrorCode::Numeric(11)) => SimState::SimPin,
        FinalResult::CmeError(ErrorCode::Numeric(12)) => SimState::SimPuk,
        FinalResult::CmeError(ErrorCode::Verbose(text))
            if text.to_ascii_uppercase().contains("NOT INSERTED") =>
        {
            SimState::NotInserted
        }
        _ => SimState::NotReady,
    }
}

async fn identify<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<ModemIdentity, InitError> {
    let mut identity = ModemIdentity::default();
    for (command, slot) in [
        ("AT+CGMI", &mut identity.manufacturer),
        ("AT+CGMM", &mut identity.model),
        ("AT+CGMR", &mut identity.firmware),
        ("AT+CGSN", &mut identity.imei),
    ] {
        match session.command(command, QUERY_TIMEOUT).await {
            Ok(lines) => *slot = first_value(&lines, &command[2..]),
            Err(CommandError::Rejected { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(identity)
}

/// The answer of an identity query: the first non-empty line, without an echoed
/// `+CGMI:` style prefix and quotes.
fn first_value(lines: &[String], name: &str) -> Option<String> {
    let line = lines.iter().map(|l| l.trim()).find(|l| !l.is_empty())?;
    let value = line
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(line)
        .trim()
        .trim_matches('"');
    (!value.is_empty()).then(|| value.to_owned())
}

/// Without delivery reports: only ask that received SMS be stored and announced
/// (`<mt>` = 1, `+CMTI`), so they are read at once instead of at the next sweep.
const CNMI_RECEIVE_ONLY: [&str; 2] = ["AT+CNMI=2,1,0,0,0", "AT+CNMI=1,1,0,0,0"];

async fn announce_received<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<(), InitError> {
    for variant in CNMI_RECEIVE_ONLY {
        match session.command(variant, QUERY_TIMEOUT).await {
            Ok(_) => return Ok(()),
            Err(CommandError::Rejected { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!("the modem accepts no AT+CNMI; received SMS are read at each health check");
    Ok(())
}

async fn set_up_reports<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<(), InitError> {
    for (index, variant) in CNMI_VARIANTS.iter().enumerate() {
        match session.command(variant, QUERY_TIMEOUT).await {
            Ok(_) if index == 0 => return Ok(()),
            Ok(_) if index == 1 => {
                tracing::info!(
                    command = variant,
                    "the modem stores status reports (+CDSI); they are read from its storage"
                );
                return Ok(());
            }
            Ok(_) => {
                // Reports are dropped, or stored without a word: only the storage
                // sweep every health check can find them.
                tracing::warn!(
                    command = variant,
                    "the modem routes no status reports; they are looked for in its storage at each health check"
                );
                return Ok(());
            }
            Err(CommandError::Rejected { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    tracing::warn!("the modem accepts no AT+CNMI variant; delivery reports will not arrive");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_lose_prefixes_and_quotes() {
        assert_eq!(
            first_value(&["+CGMI: \"Quectel\"".into()], "+CGMI").as_deref(),
            Some("Quectel")
        );
        assert_eq!(
            first_value(&["huawei".into()], "+CGMI").as_deref(),
            Some("huawei")
        );
        assert_eq!(
            first_value(&[" ".into(), "EC25".into()], "+CGMM").as_deref(),
            Some("EC25")
        );
        assert_eq!(first_value(&[], "+CGSN"), None);
    }
}
