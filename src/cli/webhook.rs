//! `sms2fa webhook test --config F`: post a signed `ping` event to every `[[webhook]]`,
//! print each answer, and succeed only if every endpoint answered 2xx.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use sms2fa::config::Config;
use sms2fa::webhook::{client, post, Attempt, Endpoint};

pub async fn test(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    if config.webhooks.is_empty() {
        anyhow::bail!("{}: no [[webhook]] configured", path.display());
    }
    let client = client();
    let node = config.cluster.node_name();
    let mut failed = 0;
    for webhook in &config.webhooks {
        let endpoint = Endpoint::from_config(webhook).context("cannot use a [[webhook]]")?;
        let id = format!("evt_ping_{}", hex::encode(rand::random::<[u8; 12]>()));
        let now = chrono::Utc::now();
        let body = json!({
            "type": "ping",
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": {"host": node, "endpoint": endpoint.label},
        })
        .to_string();
        let attempt = post(&client, &endpoint, &id, now.timestamp(), body).await;
        let verdict = match &attempt {
            Attempt::Delivered(status) => format!("ok ({status})"),
            Attempt::Gone => {
                "410 Gone: the endpoint wants no more events (the daemon disables it)".into()
            }
            Attempt::Failed(_, reason) => format!("FAILED: {reason}"),
        };
        if !matches!(attempt, Attempt::Delivered(_)) {
            failed += 1;
        }
        println!("{}: {verdict}", endpoint.label);
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} webhook endpoints did not answer 2xx",
            config.webhooks.len()
        );
    }
    Ok(())
}
