//! Registration and signal: checked before the modem is called ready and every
//! `health_interval` while it is.

use tokio::io::{AsyncRead, AsyncWrite};

use super::init::QUERY_TIMEOUT;
use super::session::{AtSession, CommandError};
use crate::at::{parse_cops, parse_csq, parse_registration, RegState};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// The best registration over CS, PS and EPS: LTE-only modules say `+CREG: 0,0`
    /// while `+CEREG` says registered.
    pub registration: Option<RegState>,
    pub signal_dbm: Option<i16>,
    pub operator: Option<String>,
}

impl Health {
    pub fn registered(&self) -> bool {
        self.registration.is_some_and(RegState::is_registered)
    }
}

pub async fn check<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> Result<Health, CommandError> {
    let mut health = Health::default();
    for query in ["AT+CREG?", "AT+CGREG?", "AT+CEREG?"] {
        let lines = match session.command(query, QUERY_TIMEOUT).await {
            Ok(lines) => lines,
            Err(CommandError::Rejected { .. }) => continue,
            Err(e) => return Err(e),
        };
        for state in lines
            .iter()
            .filter_map(|l| parse_registration(l).ok())
            .map(|r| r.state)
        {
            let better = match health.registration {
                None => true,
                Some(current) => {
                    !current.is_registered()
                        && (state.is_registered() || current != RegState::Searching)
                }
            };
            if better {
                health.registration = Some(state);
            }
        }
        if health.registered() {
            break;
        }
    }
    match session.command("AT+CSQ", QUERY_TIMEOUT).await {
        Ok(lines) => {
            health.signal_dbm = lines
                .iter()
                .find_map(|l| parse_csq(l).ok())
                .and_then(|q| q.rssi_dbm)
        }
        Err(CommandError::Rejected { .. }) => {}
        Err(e) => return Err(e),
    }
    match session.command("AT+COPS?", QUERY_TIMEOUT).await {
        Ok(lines) => health.operator = lines.iter().find_map(|l| parse_cops(l).ok().flatten()),
        Err(CommandError::Rejected { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(health)
}
