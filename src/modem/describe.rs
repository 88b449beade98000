//! How a modem is described to operators: its state and registration by name, its
//! IMEI masked, and the JSON `GET /modems` and the cluster heartbeat carry.

use serde_json::{json, Value};

use super::{ModemHandle, ModemState};
use crate::at::RegState;

pub fn state_name(state: ModemState) -> &'static str {
    match state {
        ModemState::Connecting => "connecting",
        ModemState::Searching => "searching",
        ModemState::Ready => "ready",
        ModemState::Sending => "sending",
        ModemState::Fatal => "fatal",
    }
}

pub fn registration_name(state: RegState) -> &'static str {
    match state {
        RegState::NotRegistered => "not_registered",
        RegState::Home => "home",
        RegState::Searching => "searching",
        RegState::Denied => "denied",
        RegState::Unknown => "unknown",
        RegState::Roaming => "roaming",
        RegState::HomeSmsOnly => "home_sms_only",
        RegState::RoamingSmsOnly => "roaming_sms_only",
        RegState::EmergencyOnly => "emergency_only",
    }
}

/// An IMEI with its serial number hidden: the type allocation code (first 8 digits,
/// which names the model) and the last 2 stay, so an operator can still tell two
/// dongles apart.
pub fn mask_imei(imei: &str) -> String {
    let chars: Vec<char> = imei.chars().collect();
    if chars.len() < 12 {
        return "*".repeat(chars.len());
    }
    let tail = chars.len() - 2;
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 8 || i >= tail { *c } else { '*' })
        .collect()
}

impl ModemHandle {
    /// What `GET /modems` (and the cluster heartbeat) shows of this modem: never its
    /// SIM's number, the IMEI masked.
    pub fn describe(&self) -> Value {
        let handle = self;
        let name = handle.name.as_str();
        let status = handle.status.borrow();
        let identity = &status.identity;
        let now = chrono::Utc::now();
        let (caps, (sent_last_day, sent_last_hour), held) = {
            let mut usage = handle.usage();
            (usage.caps(), usage.counts(now), usage.held(now))
        };
        json!({
            "name": name,
            "state": state_name(status.state),
            // Whether a message accepted now counts on this modem (`[sms]
            // unavailable_after_secs`); other hosts read it from the heartbeat.
            "available": handle.availability_of(&status).can_take_work(),
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "firmware": identity.firmware,
            "imei": identity.imei.as_deref().map(mask_imei),
            "operator": status.health.operator,
            "registration": status.health.registration.map(registration_name),
            "signal_dbm": status.health.signal_dbm,
            "sent": status.sent,
            "failed": status.failed,
            "delivered": handle.delivered.load(std::sync::atomic::Ordering::Relaxed),
            // One message at a time per modem: the rest waits in the shared queue.
            "in_flight": u8::from(status.state == ModemState::Sending),
            "last_sent_at": status
                .last_sent_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "last_error": status.last_error,
            // SMS (parts) in the rolling day and hour, against the SIM's caps.
            "sent_last_day": sent_last_day,
            "sent_last_hour": sent_last_hour,
            "max_sms_per_day": caps.per_day,
            "max_sms_per_hour": caps.per_hour,
            "min_interval_ms": u64::try_from(caps.min_interval.as_millis()).unwrap_or(u64::MAX),
            "held": held.map(|h| h.describe()),
            "balance": status.balance.as_ref().map(|(answer, at)| json!({
                "answer": answer,
                "checked_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imei_keeps_model_code_and_last_digits() {
        assert_eq!(mask_imei("356938035643809"), "35693803*****09");
        assert_eq!(mask_imei("12345"), "*****");
    }
}
