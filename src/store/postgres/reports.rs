//! Delivery reports on PostgreSQL: sent parts are keyed by (host, modem, TP-MR), so a
//! report a modem of this host received matches only what this host sent through it.

use async_trait::async_trait;

use super::{from_json, in_transaction, to_json, Outcome, PgStore};
use crate::sms::StatusReport;
use crate::store::reports::{apply_report, names_a_subscriber};
use crate::store::{MessageRecord, ReportOutcome, ReportStore, StoreError};

#[async_trait]
impl ReportStore for PgStore {
    async fn record_report(
        &self,
        modem: &str,
        report: &StatusReport,
    ) -> Result<ReportOutcome, StoreError> {
        let mr = i16::from(report.message_reference);
        let recipient = self.at_rest.subscriber_digest(&report.recipient);
        in_transaction!(self, |tx, now| {
            let forget_part = "DELETE FROM sent_parts WHERE host = $1 AND modem = $2 AND mr = $3";
            let Some(part) = tx
                .query_opt(
                    "SELECT message_id, recipient FROM sent_parts \
                     WHERE host = $1 AND modem = $2 AND mr = $3 FOR UPDATE",
                    &[&self.node, &modem, &mr],
                )
                .await?
            else {
                return Ok(Outcome::Commit(ReportOutcome::Unmatched));
            };
            let (message_id, sent_to): (String, String) = (part.get(0), part.get(1));
            if !names_a_subscriber(report) || sent_to != recipient {
                return Ok(Outcome::Commit(ReportOutcome::Unmatched));
            }
            let Some(row) = tx
                .query_opt(
                    "SELECT record FROM messages WHERE id = $1 FOR UPDATE",
                    &[&message_id],
                )
                .await?
            else {
                tx.execute(forget_part, &[&self.node, &modem, &mr]).await?;
                return Ok(Outcome::Commit(ReportOutcome::Unmatched));
            };
            let mut record: MessageRecord = from_json(row.get(0), "messages")?;
            let before = record.status;
            let (outcome, part_done) = apply_report(&mut record, modem, report, now);
            if record.status != before {
                let event = record
                    .history
                    .last()
                    .and_then(|last| crate::store::message_event(&record, last, &self.node));
                self.insert_events(tx, event.into_iter().collect(), now)
                    .await?;
            }
            if part_done {
                tx.execute(forget_part, &[&self.node, &modem, &mr]).await?;
            }
            tx.execute(
                "UPDATE messages SET status = $2, record = $3 WHERE id = $1",
                &[&message_id, &record.status.as_str(), &to_json(&record)],
            )
            .await?;
            Ok(Outcome::Commit(outcome))
        })
    }
}
