//! Relayed texts on PostgreSQL: one transaction like a code's send (the number's
//! history row locked first, the account's rate last), without the scope row.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::codes::{
    charge_account_rate, INSERT_MESSAGE, INSERT_OUTBOX, LOCK_NUMBER_SENDS, UPDATE_NUMBER_SENDS,
};
use super::{in_transaction, to_json, Outcome, PgStore};
use crate::otp::{SendHistory, SendLimits, SendRefusal};
use crate::store::{queued_event, NewText, Queued, RelayStore, StoreError};

#[async_trait]
impl RelayStore for PgStore {
    async fn queue_text(
        &self,
        new: &NewText,
        limits: &SendLimits,
    ) -> Result<Result<Queued, SendRefusal>, StoreError> {
        let message = &new.message;
        let number = self.at_rest.number_digest(&message.to).to_vec();
        let from = self.at_rest.number_digest(&message.from).to_vec();
        let account = message.account.as_str();
        let gcra = limits.account_rate();
        in_transaction!(self, |tx, now| {
            let history_row = tx
                .query_one(LOCK_NUMBER_SENDS, &[&account, &number])
                .await?;
            let mut sends = SendHistory {
                sends: history_row.get(0),
            };
            if let Err(refusal) = limits.check_number(now, &mut sends) {
                return Ok(Outcome::Rollback(Err(refusal)));
            }
            limits.record_number(now, &mut sends);
            let (history, outbound) = new.admitted_at(now);
            let expires_at = outbound.expires_at;
            let sealed = self.at_rest.seal(&outbound);
            let record_json = to_json(&history);
            let history_params: [&(dyn ToSql + Sync); 4] = [&account, &number, &sends.sends, &now];
            let message_params: [&(dyn ToSql + Sync); 4] =
                [&message.id, &account, &now, &record_json];
            let outbox_params: [&(dyn ToSql + Sync); 6] =
                [&message.id, &account, &sealed, &from, &now, &expires_at];
            let statements = [
                tx.prepare(UPDATE_NUMBER_SENDS).await?,
                tx.prepare(INSERT_MESSAGE).await?,
                tx.prepare(INSERT_OUTBOX).await?,
            ];
            let written = tokio::join!(
                tx.run(&statements[0], &history_params),
                tx.run(&statements[1], &message_params),
                tx.run(&statements[2], &outbox_params),
            );
            written.0?;
            written.1?;
            written.2?;
            self.insert_events(tx, vec![queued_event(&history, &self.node)], now)
                .await?;
            Ok(match charge_account_rate(tx, account, now, &gcra).await? {
                Ok(()) => Outcome::Commit(Ok(Queued { expires_at })),
                Err(refusal) => Outcome::Rollback(Err(refusal)),
            })
        })
    }
}
