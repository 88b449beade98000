//! What the in-process benchmarks share: the daemon's config for a bench account and
//! simulated modems, the 32 concurrent clients that queue the codes, and the median.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sms2fa::config::{AccountConfig, Config, ModemConfig, Requirements};
use tokio::sync::Semaphore;

const SID: &str = "ACbench";
const TOKEN: &str = "bench";

/// A config with no limits in the way, the bench account, one `[[modem]]` per device,
/// state under `state`, and the PostgreSQL database `database` (else sled).
pub fn config(state: &Path, devices: &[PathBuf], database: Option<&str>) -> Config {
    let mut config = Config::parse("", Path::new("bench"), Requirements::Nothing).expect("config");
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.storage.path = state.join("state");
    if let Some(url) = database {
        config.storage.backend = sms2fa::config::Backend::Postgres;
        config.storage.url = Some(url.to_owned());
    }
    config.otp.resend_cooldown_secs = 0;
    config.otp.max_sends_per_account_per_minute = 1_000_000;
    config.otp.max_sends_per_number_per_day = 1_000_000;
    config.accounts = vec![AccountConfig {
        sid: SID.into(),
        token: Some(TOKEN.into()),
        token_sha256: None,
        receive: false,
        relay: false,
    }];
    config.modems = devices
        .iter()
        .enumerate()
        .map(|(i, device)| ModemConfig::new(&format!("sim{i}"), device.clone()))
        .collect();
    config
}

/// `codes` `POST /2fa/send` to distinct numbers, 32 at a time; each must answer 200.
pub async fn send_codes(base: &str, codes: usize) {
    let client = reqwest::Client::new();
    let limit = Arc::new(Semaphore::new(32));
    let mut sends = Vec::with_capacity(codes);
    for i in 0..codes {
        let client = client.clone();
        let url = format!("{base}/2fa/send");
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        sends.push(tokio::spawn(async move {
            let body = serde_json::json!({
                "service": "Bench", "from": "+15550000000",
                "to": format!("+1555{i:07}"), "body": "Your code is {code}",
            });
            let response = client
                .post(url)
                .basic_auth(SID, Some(TOKEN))
                .json(&body)
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 200);
            drop(permit);
        }));
    }
    for send in sends {
        send.await.expect("send task");
    }
}

/// The middle value (the upper of the two middles for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
