//! `sms2fa check-config`: the file, and with `backend = "postgres"` the database —
//! reachable, logged in, and at which schema version — without changing anything.

use std::path::Path;

use anyhow::Context;

use sms2fa::config::{Backend, Config};
use sms2fa::store::postgres::{migrate, PgStore, SchemaState};

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    println!(
        "{}: OK ({} account(s), {} modem(s), {} store)",
        path.display(),
        config.accounts.len(),
        config.modems.len(),
        match config.storage.backend {
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    );
    if config.storage.backend == Backend::Postgres {
        let options = sms2fa::store::connect_options(&config.storage)?;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let state = runtime
            .block_on(PgStore::inspect(&options))
            .with_context(|| format!("cannot use the database {}", options.describe()))?;
        let schema = match state {
            SchemaState::Empty => "empty, will be migrated at start".to_owned(),
            SchemaState::At(version) if version > migrate::LATEST => anyhow::bail!(
                "the database {} is at schema version {version}, newer than this build's {}; \
                 upgrade sms2fa",
                options.describe(),
                migrate::LATEST
            ),
            SchemaState::At(version) if version < migrate::LATEST => format!(
                "schema version {version}, will be migrated to {} at start",
                migrate::LATEST
            ),
            SchemaState::At(version) => format!("schema version {version} (current)"),
        };
        println!(
            "database {}: reachable as node {:?}; {schema}",
            options.describe(),
            config.cluster.node_name()
        );
    }
    Ok(())
}
