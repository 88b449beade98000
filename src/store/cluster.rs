//! The hosts that share a store, as their heartbeats describe them: which are alive,
//! and what their modems are doing. With one host (sled) that is just this host.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// One modem of this host, as its heartbeat reports it.
#[derive(Debug, Clone)]
pub struct ModemBeat {
    pub name: String,
    /// The SIM's number (`[[modem]] number`): other hosts leave messages sent `from`
    /// it to this host while the modem is ready. Stored as a keyed digest.
    pub number: Option<String>,
    /// Ready or sending: it takes work.
    pub ready: bool,
    /// What `GET /modems` shows of it (no number, a masked IMEI).
    pub status: serde_json::Value,
}

/// A host's last heartbeat.
#[derive(Debug, Clone)]
pub struct HostBeat {
    pub node: String,
    pub seen_at: DateTime<Utc>,
    /// The heartbeat is older than the lease: the host counts as down.
    pub down: bool,
    /// (name, status) of each of its modems.
    pub modems: Vec<(String, serde_json::Value)>,
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Record that this host is alive, and its modems as they are now.
    async fn heartbeat(&self, modems: &[ModemBeat]) -> Result<(), StoreError>;

    /// Every host's last heartbeat, this host's included, by name.
    async fn hosts(&self) -> Result<Vec<HostBeat>, StoreError>;
}
