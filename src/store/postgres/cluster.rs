//! Hosts and their modems on PostgreSQL: each host's heartbeat row (taken under its
//! `[cluster] node` name by one process at a time), and its modems' last state, which
//! every host reads for `GET /modems` and for routing by `from`.

use async_trait::async_trait;

use super::error::from_pg;
use super::{in_transaction, Outcome, PgStore};
use crate::store::{ClusterStore, HostBeat, ModemBeat, StoreError};

/// How long past a lease a start waits for a stale heartbeat under its name to age
/// (a process that died under this name) before it says another one is alive.
const TAKEOVER_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

impl PgStore {
    /// Take this host's name: at once if no process beats under it, or once the last
    /// heartbeat under it is older than the lease (the process died); refused while
    /// another live process keeps beating under the same name.
    pub(super) async fn register(&self) -> Result<(), StoreError> {
        let lease = self.lease_micros();
        let deadline =
            tokio::time::Instant::now() + self.lease.to_std().unwrap_or_default() + TAKEOVER_GRACE;
        loop {
            let client = self.client().await?;
            let taken = client
                .query_opt(
                    "INSERT INTO hosts (node, instance, started_at, seen_at) \
                     VALUES ($2, $3, now() + $1::bigint * interval '1 microsecond', \
                       now() + $1::bigint * interval '1 microsecond') \
                     ON CONFLICT (node) DO UPDATE SET instance = excluded.instance, \
                       started_at = excluded.started_at, seen_at = excluded.seen_at \
                     WHERE hosts.instance = excluded.instance \
                       OR hosts.seen_at < excluded.seen_at - $4::bigint * interval '1 microsecond' \
                     RETURNING 1",
                    &[&self.shift(), &self.node, &self.instance, &lease],
                )
                .await
                .map_err(from_pg)?;
            if taken.is_some() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::NodeTaken {
                    node: self.node.clone(),
                });
            }
            tracing::info!(node = %self.node, "a heartbeat under this host's name is fresh; waiting for it to age (a restart after a crash)");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// Let the name go at a clean stop, so a restart need not wait out the lease.
    pub(super) async fn unregister(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE hosts SET seen_at = '-infinity' WHERE node = $1 AND instance = $2",
                &[&self.node, &self.instance],
            )
            .await
            .map_err(from_pg)?;
        Ok(())
    }

    pub(super) fn lease_micros(&self) -> i64 {
        self.lease.num_microseconds().unwrap_or(i64::MAX)
    }
}

#[async_trait]
impl ClusterStore for PgStore {
    async fn heartbeat(&self, modems: &[ModemBeat]) -> Result<(), StoreError> {
        let names: Vec<String> = modems.iter().map(|m| m.name.clone()).collect();
        let held = in_transaction!(self, |tx, now| {
            let beat = tx
                .execute(
                    "UPDATE hosts SET seen_at = $3 WHERE node = $1 AND instance = $2",
                    &[&self.node, &self.instance, &now],
                )
                .await?;
            if beat != 1 {
                return Ok(Outcome::Rollback(false));
            }
            for modem in modems {
                let digest = modem
                    .number
                    .as_deref()
                    .map(|number| self.at_rest.number_digest(number).to_vec());
                tx.execute(
                    "INSERT INTO host_modems (host, name, number_digest, ready, status) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (host, name) DO UPDATE SET number_digest = $3, ready = $4, \
                       status = $5",
                    &[
                        &self.node,
                        &modem.name,
                        &digest,
                        &modem.ready,
                        &modem.status,
                    ],
                )
                .await?;
            }
            tx.execute(
                "DELETE FROM host_modems WHERE host = $1 AND NOT (name = ANY($2))",
                &[&self.node, &names],
            )
            .await?;
            Ok(Outcome::Commit(true))
        })?;
        if held {
            Ok(())
        } else {
            Err(StoreError::NodeTaken {
                node: self.node.clone(),
            })
        }
    }

    async fn hosts(&self) -> Result<Vec<HostBeat>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT h.node, h.seen_at, \
                   h.seen_at < now() + $1::bigint * interval '1 microsecond' \
                     - $2::bigint * interval '1 microsecond', \
                   m.name, m.status \
                 FROM hosts h LEFT JOIN host_modems m ON m.host = h.node \
                 WHERE h.seen_at > '-infinity' \
                 ORDER BY h.node, m.name",
                &[&self.shift(), &self.lease_micros()],
            )
            .await
            .map_err(from_pg)?;
        let mut hosts: Vec<HostBeat> = Vec::new();
        for row in rows {
            let node: String = row.get(0);
            if hosts.last().is_none_or(|h| h.node != node) {
                hosts.push(HostBeat {
                    node,
                    seen_at: row.get(1),
                    down: row.get(2),
                    modems: Vec::new(),
                });
            }
            if let (Some(name), Some(status), Some(host)) = (
                row.get::<_, Option<String>>(3),
                row.get::<_, Option<serde_json::Value>>(4),
                hosts.last_mut(),
            ) {
                host.modems.push((name, status));
            }
        }
        Ok(hosts)
    }
}
