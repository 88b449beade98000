//! Relayed texts: the number's and the account's limits, then the history and the
//! outbox entry, as for a code but with no code.

use async_trait::async_trait;

use super::records::{account_history_key, number_history_key, outbox_key};
use super::{encode, SledStore};
use crate::otp::{SendLimits, SendRefusal};
use crate::store::{queued_event, NewText, Queued, RelayStore, StoreError};

#[async_trait]
impl RelayStore for SledStore {
    async fn queue_text(
        &self,
        new: &NewText,
        limits: &SendLimits,
    ) -> Result<Result<Queued, SendRefusal>, StoreError> {
        let now = self.clock.now();
        let message = &new.message;
        let number_key =
            number_history_key(&message.account, &self.at_rest.number_digest(&message.to));
        let account_key = account_history_key(&message.account);
        let (history, outbound) = new.admitted_at(now);
        let expires_at = outbound.expires_at;
        {
            // As for a code: sends to one number take turns, the outbox entry is
            // written last, nothing is answered before the flush.
            let _turn = self.send_turns.take(&number_key);
            if let Err(refusal) = self.admit_send(&number_key, &account_key, limits, now)? {
                return Ok(Err(refusal));
            }
            self.messages
                .insert(message.id.as_bytes(), encode(&history))?;
            self.outbox
                .insert(outbox_key(now, &message.id), self.seal(&outbound))?;
            self.write_event(Some(queued_event(&history, &self.event_log.node)))?;
        }
        self.durable().await?;
        Ok(Ok(Queued { expires_at }))
    }
}
