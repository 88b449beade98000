//! The inbox writer: keeps each SMS a modem received (the store seals its sender and
//! text), then tells the modem it may delete the parts from its storage. Logs name the
//! sender masked, never the text.

use std::sync::Arc;

use chrono::SubsecRound;
use rand::RngCore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::modem::IncomingSms;
use crate::otp::Clock;
use crate::sms::PhoneNumber;
use crate::store::{ReceivedSms, SharedStore};

/// A sender for logs: a phone number masked, a short code or a name as it is (those
/// identify a service, not a person).
pub fn mask_sender(sender: &str) -> String {
    match PhoneNumber::parse(sender) {
        Ok(number) => number.masked(),
        Err(_) if sender.chars().filter(char::is_ascii_digit).count() > 6 => {
            "*".repeat(sender.chars().count())
        }
        Err(_) => sender.to_owned(),
    }
}

/// `RX` + 32 hex digits from the CSPRNG.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("RX{}", hex::encode(bytes))
}

pub async fn run(
    store: SharedStore,
    node: String,
    clock: Arc<dyn Clock>,
    mut incoming: mpsc::UnboundedReceiver<IncomingSms>,
    stop: CancellationToken,
) {
    loop {
        let sms = tokio::select! {
            () = stop.cancelled() => return,
            sms = incoming.recv() => match sms {
                Some(sms) => sms,
                None => return,
            },
        };
        let received = ReceivedSms {
            id: new_id(),
            modem: sms.modem,
            host: node.clone(),
            sender: sms.sender,
            text: sms.text,
            // Whole milliseconds, as the API shows it: a client's `since` taken from
            // an answer then excludes exactly that SMS.
            received_at: clock.now().trunc_subsecs(3),
            sent_at: sms.sent_at,
            parts: sms.parts,
            incomplete: sms.incomplete,
        };
        let kept = match store.store_received(&received).await {
            Ok(()) => {
                tracing::info!(
                    modem = %received.modem,
                    sender = %mask_sender(&received.sender),
                    parts = received.parts,
                    incomplete = received.incomplete,
                    id = %received.id,
                    "SMS received"
                );
                true
            }
            Err(e) => {
                tracing::warn!(modem = %received.modem, error = %e, "cannot keep a received SMS yet; it stays on the modem");
                false
            }
        };
        let _ = sms.kept.send(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_masked_when_they_are_numbers() {
        assert_eq!(mask_sender("+447700900123"), "+4477*****123");
        assert_eq!(mask_sender("Vodafone"), "Vodafone");
        assert_eq!(mask_sender("9494"), "9494");
        assert_eq!(mask_sender("07700900123"), "***********");
    }
}
