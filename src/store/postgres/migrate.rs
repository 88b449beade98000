//! Versioned schema migrations, shipped in the binary and applied at start. Several
//! hosts may start at once: a session-level advisory lock lets one migrate while the
//! others wait, and each migration is recorded in the same transaction as its DDL, so
//! a crash halfway leaves the schema at a whole version. A database at a newer version
//! than this build knows is refused.

use tokio_postgres::Client;

use super::error::from_pg;
use crate::store::StoreError;

/// (version, name, SQL), in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "store", include_str!("migrations/0001_store.sql")),
    (2, "cluster", include_str!("migrations/0002_cluster.sql")),
    (
        3,
        "modem sends",
        include_str!("migrations/0003_modem_sends.sql"),
    ),
    (4, "inbox", include_str!("migrations/0004_inbox.sql")),
    (5, "events", include_str!("migrations/0005_events.sql")),
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// `pg_advisory_lock` key: "sms2fa" as bytes.
const LOCK: i64 = 0x736d_7332_6661;

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    bigint      PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The schema version in the database: `None` when sms2fa never ran there.
pub async fn version(client: &Client) -> Result<Option<i64>, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(from_pg)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .map_err(from_pg)?;
    Ok(row.get::<_, Option<i64>>(0))
}

/// Bring the schema to [`LATEST`]. Returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i64>, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(from_pg)?;
    let outcome = apply(client).await;
    // The lock is the session's: released here, or with the session if this fails.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await
        .map_err(from_pg);
    let applied = outcome?;
    unlocked?;
    Ok(applied)
}

async fn apply(client: &mut Client) -> Result<Vec<i64>, StoreError> {
    client.batch_execute(CREATE_LEDGER).await.map_err(from_pg)?;
    let current = version(client).await?.unwrap_or(0);
    if current > LATEST {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: LATEST,
        });
    }
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS.iter().filter(|(v, ..)| *v > current) {
        let tx = client.transaction().await.map_err(from_pg)?;
        tx.batch_execute(sql).await.map_err(from_pg)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await
        .map_err(from_pg)?;
        tx.commit().await.map_err(from_pg)?;
        tracing::info!(version, name, "database schema migrated");
        applied.push(version);
    }
    Ok(applied)
}
