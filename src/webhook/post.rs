//! One signed POST of one event, per the Standard Webhooks specification: headers
//! `webhook-id` (the event's, the same on every attempt), `webhook-timestamp` (this
//! attempt's, Unix seconds) and `webhook-signature` (`v1,` and the base64 HMAC-SHA256
//! of `id.timestamp.body`, made by the specification's own `standardwebhooks` crate).

use std::time::Duration;

use super::Endpoint;

/// An endpoint that has not answered within this long has failed this attempt.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx: delivered.
    Delivered(u16),
    /// 410 Gone: the receiver wants no more; the endpoint is disabled until a reload.
    Gone,
    /// Any other status, or no answer (`None`: refused, reset, timed out), and why.
    Failed(Option<u16>, String),
}

impl Attempt {
    /// The HTTP status, 0 when there was no answer.
    pub fn status(&self) -> u16 {
        match self {
            Self::Delivered(status) => *status,
            Self::Gone => 410,
            Self::Failed(status, _) => status.unwrap_or(0),
        }
    }
}

/// The client every endpoint shares: no redirects (a receiver that moved says so
/// with its status), no proxy from the environment, the attempt timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("sms2fa/", env!("CARGO_PKG_VERSION")))
        .build()
        // Only a broken TLS backend fails here, which no configuration can cause.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// POST `body` as event `id` to `endpoint`, signed for the time `timestamp`.
pub async fn post(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    id: &str,
    timestamp: i64,
    body: String,
) -> Attempt {
    let signature = match endpoint.signer.sign(id, timestamp, body.as_bytes()) {
        Ok(signature) => signature,
        Err(e) => return Attempt::Failed(None, format!("cannot sign: {e}")),
    };
    let sent = client
        .post(endpoint.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match status {
                200..=299 => Attempt::Delivered(status),
                410 => Attempt::Gone,
                _ => Attempt::Failed(Some(status), format!("answered {status}")),
            }
        }
        Err(e) if e.is_timeout() => Attempt::Failed(None, "no answer within 10 s".into()),
        Err(e) if e.is_connect() => {
            Attempt::Failed(None, "connection refused or unreachable".into())
        }
        Err(_) => Attempt::Failed(None, "the connection failed".into()),
    }
}
