//! Received SMS: parts put back together (keyed by the storage slot that holds each,
//! `None` for a routed `+CMT`), handed to the inbox writer, and deleted from the
//! modem's storage only once the writer says the SMS is kept. A message whose parts
//! do not all arrive within [`GIVE_UP_AFTER`] is kept as it is, marked incomplete.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use super::handle::IncomingSms;
use super::lifecycle::ModemTask;
use super::session::{AtSession, CommandError};
use super::storage::Slot;
use crate::inbox::mask_sender;
use crate::sms::{self, Deliver, Received};

/// How long the parts of a concatenated SMS are waited for.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(1);
/// How long the inbox writer may take to keep an SMS.
const KEEP_TIMEOUT: Duration = Duration::from_secs(10);

impl ModemTask {
    /// Take in one received part; once its message is whole, hand it over.
    pub(super) async fn take_in<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        slot: Option<Slot>,
        part: Deliver,
    ) -> Result<(), CommandError> {
        match self.reassembly.add(slot, part, chrono::Utc::now()) {
            Some(whole) => self.hand_over(session, whole).await,
            None => Ok(()),
        }
    }

    /// Routed SMS (`+CMT`): nothing to delete; a modem in phase 2+ (`AT+CSMS=1`) wants
    /// each acknowledged with `AT+CNMA`, or it stops routing (27.005 §3.4.4).
    pub(super) async fn take_in_routed<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<(), CommandError> {
        while let Some(pdu) = self.storage.routed.pop_front() {
            if self.storage.acknowledge_routed {
                match session
                    .command("AT+CNMA", super::storage::STORAGE_TIMEOUT)
                    .await
                {
                    Ok(_) | Err(CommandError::Rejected { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let part = match sms::decode_deliver(&pdu) {
                Ok(part) => part,
                Err(e) => {
                    tracing::warn!(modem = %self.settings.name, error = %e, "undecodable routed SMS");
                    continue;
                }
            };
            if let Some(whole) = self.reassembly.add(None, part, chrono::Utc::now()) {
                if !self.keep(&whole).await {
                    tracing::error!(modem = %self.settings.name, sender = %mask_sender(&whole.sender), "a routed SMS (+CMT) could not be kept and is lost");
                }
            }
        }
        Ok(())
    }

    /// Messages still incomplete after [`GIVE_UP_AFTER`]: kept as they are.
    pub(super) async fn give_up_stale<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
    ) -> Result<(), CommandError> {
        for whole in self
            .reassembly
            .give_up_before(chrono::Utc::now() - GIVE_UP_AFTER)
        {
            tracing::warn!(modem = %self.settings.name, sender = %mask_sender(&whole.sender), parts = whole.parts, "parts of a received SMS never came; keeping what arrived");
            self.hand_over(session, whole).await?;
        }
        Ok(())
    }

    async fn hand_over<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        session: &mut AtSession<S>,
        whole: Received<Option<Slot>>,
    ) -> Result<(), CommandError> {
        if !self.keep(&whole).await {
            // Left in storage: the next sweep reads it again.
            return Ok(());
        }
        for slot in whole.keys.iter().flatten() {
            self.delete(session, slot).await?;
        }
        Ok(())
    }

    /// Whether the inbox writer kept `whole`.
    async fn keep(&self, whole: &Received<Option<Slot>>) -> bool {
        let (kept, answer) = oneshot::channel();
        let sms = IncomingSms {
            modem: self.settings.name.clone(),
            sender: whole.sender.clone(),
            text: whole.text.clone(),
            sent_at: whole.service_centre_time.clone(),
            parts: u32::try_from(whole.parts).unwrap_or(u32::MAX),
            incomplete: whole.incomplete,
            kept,
        };
        if self.outlets.incoming.send(sms).is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(KEEP_TIMEOUT, answer).await,
            Ok(Ok(true))
        )
    }
}
