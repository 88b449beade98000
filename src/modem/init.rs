//! Bringing a freshly opened modem to the point where it can send SMS.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::session::{AtSession, CommandError};

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const ATTENTION_TRIES: u32 = 5;

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
    #[error("the SIM is locked and needs its PUK ({0})")]
    SimLocked(String),
    #[error("the modem is not registered to a network ({0})")]
    NotRegistered(String),
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl InitError {
    /// States that retrying cannot cure without an operator.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::PinNeeded | Self::PinRejected | Self::SimLocked(_)
        )
    }
}

/// `AT`, `ATE0`, `AT+CMEE=1`, SIM/PIN, `AT+CMGF=0`, registration.
pub async fn initialize<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
    pin: Option<&str>,
) -> Result<(), InitError> {
    session.cancel_prompt().await?;
    wait_for_attention(session).await?;
    session.command("ATE0", QUERY_TIMEOUT).await?;
    session.command("AT+CMEE=1", QUERY_TIMEOUT).await?;
    unlock_sim(session, pin).await?;
    session.command("AT+CMGF=0", QUERY_TIMEOUT).await?;
    check_registration(session).await
}

async fn wait_for_attention<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<(), InitError> {
    for _ in 0..ATTENTION_TRIES {
        match session.command("AT", Duration::from_secs(1)).await {
            Ok(_) => return Ok(()),
            Err(CommandError::Timeout { .. } | CommandError::Rejected { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InitError::NoAnswer)
}

async fn unlock_sim<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
    pin: Option<&str>,
) -> Result<(), InitError> {
    let state = sim_state(session).await?;
    match state.as_str() {
        "READY" => Ok(()),
        "SIM PIN" => {
            let pin = pin.ok_or(InitError::PinNeeded)?;
            match session
                .command(&format!("AT+CPIN=\"{pin}\""), QUERY_TIMEOUT)
                .await
            {
                Ok(_) => Ok(()),
                Err(CommandError::Rejected { .. }) => Err(InitError::PinRejected),
                Err(e) => Err(e.into()),
            }
        }
        other if other.contains("PUK") => Err(InitError::SimLocked(other.to_owned())),
        other => Err(InitError::NotRegistered(format!("SIM state {other}"))),
    }
}

async fn sim_state<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<String, InitError> {
    let lines = session.command("AT+CPIN?", QUERY_TIMEOUT).await?;
    Ok(lines
        .iter()
        .find_map(|line| line.strip_prefix("+CPIN:"))
        .map(|state| state.trim().to_owned())
        .unwrap_or_default())
}

/// Registered (home or roaming) on any of the CS, GPRS or EPS domains: LTE-only modules
/// report `+CREG: 0,0` while `+CEREG` says registered.
async fn check_registration<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<(), InitError> {
    let mut seen = Vec::new();
    for query in ["AT+CREG?", "AT+CGREG?", "AT+CEREG?"] {
        let lines = match session.command(query, QUERY_TIMEOUT).await {
            Ok(lines) => lines,
            Err(CommandError::Rejected { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        for line in &lines {
            if let Some(stat) = registration_stat(line) {
                if matches!(stat, 1 | 5 | 6 | 7) {
                    return Ok(());
                }
                seen.push(line.clone());
            }
        }
    }
    Err(InitError::NotRegistered(seen.join("; ")))
}

/// `<stat>` of `+CREG: <n>,<stat>[,...]` or `+CREG: <stat>` (likewise CGREG/CEREG).
fn registration_stat(line: &str) -> Option<u8> {
    let (_, rest) = line.split_once(':')?;
    let fields: Vec<&str> = rest.split(',').map(str::trim).collect();
    let stat = match fields.as_slice() {
        [stat] => stat,
        [_, stat, ..] => stat,
        [] => return None,
    };
    stat.parse().ok()
}
