//! What both suites share: a small seeded random generator, the HTTP calls, reading the
//! code out of an SMS, and the process's resident memory.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Client;
use serde_json::{json, Value};

pub const SID: &str = "ACrel";
pub const TOKEN: &str = "reliability-token";
pub const FROM: &str = "+15550001111";
pub const SERVICE: &str = "Login";

/// xorshift64*: reproducible from the seed the suite prints.
pub struct Rng(u64);

impl Rng {
    /// From `var` when set (to replay a run), else from the clock.
    pub fn from_env(var: &str) -> Self {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("{var}={seed}");
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `low..high` (`high > low`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }

    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.range(low, high))
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.range(0, 1000) < per_mille
    }
}

/// The n-th destination number of a run: every send goes to a number of its own, so an
/// SMS tells by its number which send it belongs to.
pub fn number(n: u64) -> String {
    format!("+1321{n:08}")
}

pub fn send_body(to: &str) -> Value {
    json!({"service": SERVICE, "from": FROM, "to": to, "body": "Your {code} for login"})
}

/// The code inside an SMS rendered from "Your {code} for login".
pub fn code_in(text: &str) -> Option<&str> {
    text.strip_prefix("Your ")?.strip_suffix(" for login")
}

pub async fn get_message(client: &Client, base: &str, id: &str) -> Option<Value> {
    let response = client
        .get(format!("{base}/2fa/messages/{id}"))
        .basic_auth(SID, Some(TOKEN))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.json().await.ok()
}

pub async fn verify(client: &Client, base: &str, number: &str, code: &str) -> (u16, Value) {
    let response = client
        .post(format!("{base}/2fa/verify"))
        .basic_auth(SID, Some(TOKEN))
        .json(&json!({"service": SERVICE, "number": number, "code": code}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("verify request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Poll a message until its status is terminal: `Ok(message)`, or `Err(last seen)`
/// once `deadline` passes.
pub async fn await_terminal(
    client: &Client,
    base: &str,
    id: &str,
    deadline: std::time::Instant,
    poll: Duration,
) -> Result<Value, Option<Value>> {
    loop {
        let message = get_message(client, base, id).await;
        if let Some(m) = &message {
            if is_terminal(m["status"].as_str().unwrap_or_default()) {
                return Ok(m.clone());
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(message);
        }
        tokio::time::sleep(poll).await;
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "sent" | "delivered" | "failed")
}

/// The message history as one string, to look for the at-least-once admission.
pub fn says_may_arrive_twice(message: &Value) -> bool {
    message["history"].to_string().contains("may arrive twice")
}

/// Resident memory of `pid` ("self" for this process), in KiB, from /proc.
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// An environment variable parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
