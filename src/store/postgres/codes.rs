//! Codes on PostgreSQL: a send in one transaction (the number's history row locked
//! first, the account's rate last), verifications, cancels and unlocks as a
//! compare-and-swap on the scope row's `version`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::error::from_pg;
use super::statements::{Conn, Tx};
use super::{in_transaction, to_json, Outcome, PgStore};
use crate::otp::{
    AttemptVerdict, FailureCount, Gcra, LockPolicy, SendHistory, SendLimits, SendRefusal,
};
use crate::store::{
    attempt_events, queued_event, CodeRecord, CodeScope, CodeStore, Issued, Judge, NewCode,
    NewEvent, ScopeState, StoreError,
};

/// The scope row's columns as [`scope_from_row`] reads them.
macro_rules! scope_columns {
    () => {
        "s.code_hash, s.code_created_at, s.code_expires_at, s.code_attempts, \
         s.code_max_attempts, s.code_message_id, s.failures, s.locked_until, s.version"
    };
}

const SELECT_SCOPE_FOR_UPDATE: &str = concat!(
    "SELECT 0, ",
    scope_columns!(),
    " FROM scopes s WHERE account = $1 AND service = $2 AND number_digest = $3 FOR UPDATE"
);

const SELECT_SCOPE_WITH_NOW: &str = concat!(
    "SELECT now() + $1::bigint * interval '1 microsecond', ",
    scope_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN scopes s ON \
       s.account = $2 AND s.service = $3 AND s.number_digest = $4"
);

/// Takes the number's send-history row (created if new) and returns its sends: one
/// number's sends take turns on this row.
pub(super) const LOCK_NUMBER_SENDS: &str =
    "INSERT INTO number_sends AS n (account, number_digest, sends, last_send) \
     VALUES ($1, $2, '{}', '-infinity') \
     ON CONFLICT (account, number_digest) DO UPDATE SET account = n.account \
     RETURNING n.sends";

pub(super) const UPDATE_NUMBER_SENDS: &str = "UPDATE number_sends SET sends = $3, last_send = $4 \
     WHERE account = $1 AND number_digest = $2";

pub(super) const INSERT_MESSAGE: &str =
    "INSERT INTO messages (id, account, created_at, status, record) \
     VALUES ($1, $2, $3, 'queued', $4)";

pub(super) const INSERT_OUTBOX: &str =
    "INSERT INTO outbox (id, account, sealed, from_digest, due_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// The state of a scope row read with [`SCOPE_COLUMNS`] from column `at`, with its
/// version; an absent row (all NULL) is the empty state at version `None`.
fn scope_from_row(row: &Row, at: usize) -> Result<(ScopeState, Option<i64>), StoreError> {
    let version: Option<i64> = row.get(at + 8);
    let Some(version) = version else {
        return Ok((ScopeState::default(), None));
    };
    let hash: Option<Vec<u8>> = row.get(at);
    let code = match hash {
        None => None,
        Some(hash) => Some(CodeRecord {
            hash: hash.try_into().map_err(|_| StoreError::Corrupt {
                what: "scopes",
                detail: "a code hash that is not 32 bytes".into(),
            })?,
            created_at: row.get(at + 1),
            expires_at: row.get(at + 2),
            attempts: u32::try_from(row.get::<_, i32>(at + 3)).unwrap_or(0),
            max_attempts: u32::try_from(row.get::<_, i32>(at + 4)).unwrap_or(0),
            message_id: row.get(at + 5),
        }),
    };
    let failures = FailureCount {
        consecutive: u32::try_from(row.get::<_, i32>(at + 6)).unwrap_or(0),
        locked_until: row.get(at + 7),
    };
    Ok((ScopeState { code, failures }, Some(version)))
}

/// The code columns' values of a state, for binding.
struct CodeColumns {
    hash: Option<Vec<u8>>,
    created_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    attempts: Option<i32>,
    max_attempts: Option<i32>,
    message_id: Option<String>,
    failures: i32,
    locked_until: Option<DateTime<Utc>>,
}

impl CodeColumns {
    /// `code_hash` to `locked_until`, in the order of the scope table.
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.hash,
            &self.created_at,
            &self.expires_at,
            &self.attempts,
            &self.max_attempts,
            &self.message_id,
            &self.failures,
            &self.locked_until,
        ]
    }

    fn of(state: &ScopeState) -> Self {
        let code = state.code.as_ref();
        Self {
            hash: code.map(|c| c.hash.to_vec()),
            created_at: code.map(|c| c.created_at),
            expires_at: code.map(|c| c.expires_at),
            attempts: code.map(|c| i32::try_from(c.attempts).unwrap_or(i32::MAX)),
            max_attempts: code.map(|c| i32::try_from(c.max_attempts).unwrap_or(i32::MAX)),
            message_id: code.map(|c| c.message_id.clone()),
            failures: i32::try_from(state.failures.consecutive).unwrap_or(i32::MAX),
            locked_until: state.failures.locked_until,
        }
    }
}

#[async_trait]
impl CodeStore for PgStore {
    async fn issue_code(
        &self,
        new: &NewCode,
        limits: &SendLimits,
        lock: &LockPolicy,
    ) -> Result<Result<Issued, SendRefusal>, StoreError> {
        let number = self.at_rest.number_digest(&new.scope.number).to_vec();
        let from = self.at_rest.number_digest(&new.message.from).to_vec();
        let account = new.scope.account.as_str();
        let gcra = limits.account_rate();
        in_transaction!(self, |tx, now| {
            // Sends to one number take turns on its history row (created if new); the
            // scope row is locked next (sent in the same round trip, run in order).
            let number_params: [&(dyn ToSql + Sync); 2] = [&account, &number];
            let scope_key: [&(dyn ToSql + Sync); 3] = [&account, &new.scope.service, &number];
            let upsert_history = tx.prepare(LOCK_NUMBER_SENDS).await?;
            let lock_scope = tx.prepare(SELECT_SCOPE_FOR_UPDATE).await?;
            let history_row = tx.run_one(&upsert_history, &number_params);
            let scope_row = tx.run_opt(&lock_scope, &scope_key);
            let (history_row, scope_row) = tokio::join!(history_row, scope_row);
            // In statement order: the first error is the cause of any after it.
            let (history_row, scope_row) = (history_row?, scope_row?);
            let mut sends = SendHistory {
                sends: history_row.get(0),
            };
            let mut state = match &scope_row {
                Some(row) => scope_from_row(row, 1)?.0,
                None => ScopeState::default(),
            };
            if let Some(retry_after) = lock.locked(now, &mut state.failures.clone()) {
                return Ok(Outcome::Rollback(Err(SendRefusal::NumberLocked {
                    retry_after,
                })));
            }
            if let Err(refusal) = limits.check_number(now, &mut sends) {
                return Ok(Outcome::Rollback(Err(refusal)));
            }
            limits.record_number(now, &mut sends);

            let admitted = new.admitted_at(now);
            let expires_at = admitted.code.expires_at;
            state.code = Some(admitted.code);
            let columns = CodeColumns::of(&state);
            let sealed = self.at_rest.seal(&admitted.outbound);
            let record = admitted.history;
            let record_json = to_json(&record);
            let record = &record;
            let history_params: [&(dyn ToSql + Sync); 4] = [&account, &number, &sends.sends, &now];
            let scope_params: Vec<&(dyn ToSql + Sync)> =
                scope_key.into_iter().chain(columns.params()).collect();
            let message_params: [&(dyn ToSql + Sync); 4] =
                [&new.message.id, &account, &now, &record_json];
            let outbox_params: [&(dyn ToSql + Sync); 6] =
                [&new.message.id, &account, &sealed, &from, &now, &expires_at];
            let statements = [
                tx.prepare(UPDATE_NUMBER_SENDS).await?,
                tx.prepare(
                    "INSERT INTO scopes (account, service, number_digest, code_hash, \
                       code_created_at, code_expires_at, code_attempts, code_max_attempts, \
                       code_message_id, failures, locked_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (account, service, number_digest) DO UPDATE SET \
                       code_hash = $4, code_created_at = $5, code_expires_at = $6, \
                       code_attempts = $7, code_max_attempts = $8, code_message_id = $9, \
                       failures = $10, locked_until = $11, version = scopes.version + 1",
                )
                .await?,
                tx.prepare(INSERT_MESSAGE).await?,
                tx.prepare(INSERT_OUTBOX).await?,
            ];
            let history = tx.run(&statements[0], &history_params);
            let scope = tx.run(&statements[1], &scope_params);
            let message = tx.run(&statements[2], &message_params);
            let outbox = tx.run(&statements[3], &outbox_params);
            let written = tokio::join!(history, scope, message, outbox);
            written.0?;
            written.1?;
            written.2?;
            written.3?;
            self.insert_events(tx, vec![queued_event(record, &self.node)], now)
                .await?;

            // The account's rate, last: its row is held only until the commit.
            Ok(match charge_account_rate(tx, account, now, &gcra).await? {
                Ok(()) => Outcome::Commit(Ok(Issued { expires_at })),
                Err(refusal) => Outcome::Rollback(Err(refusal)),
            })
        })
    }

    async fn attempt(
        &self,
        scope: &CodeScope,
        lock: &LockPolicy,
        judge: Judge<'_>,
    ) -> Result<AttemptVerdict, StoreError> {
        self.update_scope_told(
            scope,
            |state, now| state.attempt(now, lock, |code, hash| judge(code, hash, now)),
            |before, after, verdict| attempt_events(scope, before, after, verdict, &self.node),
        )
        .await
    }

    async fn cancel_code(&self, scope: &CodeScope) -> Result<bool, StoreError> {
        self.update_scope(scope, |state, now| state.cancel(now))
            .await
    }

    async fn unlock(&self, scope: &CodeScope, lock: &LockPolicy) -> Result<bool, StoreError> {
        self.update_scope(scope, |state, now| state.unlock(now, lock))
            .await
    }

    async fn code(&self, scope: &CodeScope) -> Result<Option<CodeRecord>, StoreError> {
        let number = self.at_rest.number_digest(&scope.number).to_vec();
        let client = self.client().await?;
        let (state, _, _) = self.read_scope(&client, scope, &number).await?;
        Ok(state.code)
    }

    async fn code_count(&self) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM scopes WHERE code_hash IS NOT NULL",
                &[],
            )
            .await
            .map_err(from_pg)?
            .get(0);
        Ok(usize::try_from(count).unwrap_or(0))
    }
}

/// Count a send against the account's rate in one conditional statement (the GCRA's
/// two parameters), or say how long until the account may send again. Run last in a
/// send's transaction, so that the account's hot row is held only until the commit.
pub(super) async fn charge_account_rate(
    tx: &Tx<'_>,
    account: &str,
    now: DateTime<Utc>,
    gcra: &Gcra,
) -> Result<Result<(), SendRefusal>, tokio_postgres::Error> {
    let now_us = now.timestamp_micros();
    let admitted = tx
        .query_opt(
            "INSERT INTO account_budgets AS b (account, tat_us) VALUES ($1, $2::bigint + $3::bigint) \
             ON CONFLICT (account) DO UPDATE SET tat_us = greatest(b.tat_us, $2) + $3 \
             WHERE greatest(b.tat_us, $2) - $2 <= $4 \
             RETURNING tat_us",
            &[&account, &now_us, &gcra.interval_us, &gcra.tolerance_us],
        )
        .await?;
    if admitted.is_some() {
        return Ok(Ok(()));
    }
    let tat: i64 = tx
        .query_one(
            "SELECT tat_us FROM account_budgets WHERE account = $1",
            &[&account],
        )
        .await?
        .get(0);
    Ok(Err(gcra.admit(tat, now).err().unwrap_or(
        SendRefusal::AccountRate {
            retry_after: chrono::Duration::seconds(1),
        },
    )))
}

impl PgStore {
    /// The scope's state, its version (`None`: no row), and the database's now.
    async fn read_scope(
        &self,
        client: &Conn,
        scope: &CodeScope,
        number: &[u8],
    ) -> Result<(ScopeState, Option<i64>, DateTime<Utc>), StoreError> {
        let row = client
            .query_one(
                SELECT_SCOPE_WITH_NOW,
                &[&self.shift(), &scope.account, &scope.service, &number],
            )
            .await
            .map_err(from_pg)?;
        let (state, version) = scope_from_row(&row, 1)?;
        Ok((state, version, row.get(0)))
    }

    /// Read-modify-write of one scope by compare-and-swap on its version, again if
    /// another request changed it meanwhile (so `change` may run more than once and
    /// must only look at the state). One statement writes: nothing to roll back.
    async fn update_scope<T>(
        &self,
        scope: &CodeScope,
        change: impl Fn(&mut ScopeState, DateTime<Utc>) -> T,
    ) -> Result<T, StoreError> {
        self.update_scope_told(scope, change, |_, _, _| Vec::new())
            .await
    }

    /// [`PgStore::update_scope`], and the events `tell` finds in the change (before,
    /// after, outcome), written in one transaction with it when some endpoint wants
    /// them.
    async fn update_scope_told<T>(
        &self,
        scope: &CodeScope,
        change: impl Fn(&mut ScopeState, DateTime<Utc>) -> T,
        tell: impl Fn(&ScopeState, &ScopeState, &T) -> Vec<NewEvent>,
    ) -> Result<T, StoreError> {
        let number = self.at_rest.number_digest(&scope.number).to_vec();
        let mut client = self.client().await?;
        loop {
            let (before, version, now) = self.read_scope(&client, scope, &number).await?;
            let mut after = before.clone();
            let outcome = change(&mut after, now);
            if after == before {
                return Ok(outcome);
            }
            let events: Vec<NewEvent> = tell(&before, &after, &outcome)
                .into_iter()
                .filter(|e| self.events.wants(e.account.as_deref(), e.kind))
                .collect();
            let columns = CodeColumns::of(&after);
            let key: [&(dyn ToSql + Sync); 3] = [&scope.account, &scope.service, &number];
            let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match &version {
                Some(version) if after.is_empty() => (
                    "DELETE FROM scopes WHERE account = $1 AND service = $2 \
                     AND number_digest = $3 AND version = $4",
                    vec![key[0], key[1], key[2], version],
                ),
                Some(version) => (
                    "UPDATE scopes SET code_hash = $5, code_created_at = $6, \
                       code_expires_at = $7, code_attempts = $8, \
                       code_max_attempts = $9, code_message_id = $10, failures = $11, \
                       locked_until = $12, version = version + 1 \
                     WHERE account = $1 AND service = $2 AND number_digest = $3 \
                       AND version = $4",
                    key.into_iter()
                        .chain([version as &(dyn ToSql + Sync)])
                        .chain(columns.params())
                        .collect(),
                ),
                None => (
                    "INSERT INTO scopes (account, service, number_digest, code_hash, \
                       code_created_at, code_expires_at, code_attempts, \
                       code_max_attempts, code_message_id, failures, locked_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT DO NOTHING",
                    key.into_iter().chain(columns.params()).collect(),
                ),
            };
            if events.is_empty() {
                if client.execute(sql, &params).await.map_err(from_pg)? == 1 {
                    return Ok(outcome);
                }
                continue;
            }
            // The change and its events in one transaction.
            let written = async {
                client.begin("SELECT 1", &[]).await?;
                let tx = client.tx();
                if tx.execute(sql, &params).await? != 1 {
                    return Ok(false);
                }
                self.insert_events(&tx, events, now).await?;
                Ok::<_, tokio_postgres::Error>(true)
            }
            .await;
            match written {
                Ok(true) => {
                    client.commit().await.map_err(from_pg)?;
                    return Ok(outcome);
                }
                Ok(false) => client.rollback().await.map_err(from_pg)?,
                Err(e) => {
                    let _ = client.rollback().await;
                    return Err(from_pg(e));
                }
            }
        }
    }
}
