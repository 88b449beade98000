//! Counters the daemon keeps for `GET /metrics`, and the Prometheus text exposition
//! format (version 0.0.4), written by hand: a dozen families do not justify a registry.
//!
//! Counters that the HTTP layer sees (sends, verifies, latency) live here; gauges that
//! other parts own (modem state, queue depth) are sampled at scrape time and passed to
//! [`Metrics::render`] as a [`Sample`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Upper bounds (seconds) of the HTTP latency buckets: a verify answers in a
/// millisecond, a send waits for an fsync (a few ms, up to a second on a busy disk).
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket, the count of observations ≤ its bound (not yet cumulative).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// (method, route template, status code): the route is the template
/// (`/2fa/messages/{id}`), never the raw path, so the label set stays small.
type HttpKey = (String, String, u16);

/// Process-wide counters, shared by the HTTP middleware and the routes.
#[derive(Debug, Default)]
pub struct Metrics {
    sends: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    verifies: Mutex<BTreeMap<&'static str, u64>>,
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    http: Mutex<BTreeMap<HttpKey, Histogram>>,
}

/// A counter map stays usable after a panic elsewhere: counts are plain numbers.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A per-modem counter: metric name, help text, and how to read it off a sample.
type ModemCounter = (&'static str, &'static str, fn(&ModemSample) -> u64);

/// What one modem looks like at scrape time.
#[derive(Debug, Clone)]
pub struct ModemSample {
    pub name: String,
    /// `connecting`, `searching`, `ready`, `sending`, `fatal`.
    pub state: &'static str,
    pub sent: u64,
    pub failed: u64,
    pub delivered: u64,
    pub signal_dbm: Option<i16>,
    /// The registration state (`home`, `roaming`, `searching`, …), when known.
    pub registration: Option<&'static str>,
    pub registered: bool,
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// Gauges sampled at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub modems: Vec<ModemSample>,
    /// Messages waiting in the outbox.
    pub queue_depth: usize,
    /// How long the most overdue queued message has waited past its due time.
    pub queue_oldest_overdue: Option<Duration>,
}

/// Every state a modem can report, so each gets a 0/1 series (absent series break
/// alerting rules).
pub const MODEM_STATES: [&str; 5] = ["connecting", "searching", "ready", "sending", "fatal"];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// One `POST /2fa/send` answered: `outcome` is `accepted`, `replayed` (an
    /// idempotent repeat) or `refused`, with the error code as the reason.
    pub fn send_answered(&self, outcome: &'static str, reason: &'static str) {
        *lock(&self.sends).entry((outcome, reason)).or_default() += 1;
    }

    /// One `POST /2fa/verify` answered: `approved` or the error code.
    pub fn verify_answered(&self, outcome: &'static str) {
        *lock(&self.verifies).entry(outcome).or_default() += 1;
    }

    /// One configuration reload (SIGHUP): `ok` or `error`.
    pub fn reload_done(&self, result: &'static str) {
        *lock(&self.reloads).entry(result).or_default() += 1;
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        lock(&self.http)
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// The whole exposition, counters and `sample` together.
    pub fn render(&self, sample: &Sample) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.render_api(&mut out);
        render_queue(&mut out, sample);
        render_modems(&mut out, &sample.modems);
        self.render_http(&mut out);
        out
    }

    fn render_api(&self, out: &mut String) {
        header(
            out,
            "sms2fa_sends_total",
            "counter",
            "POST /2fa/send answers by outcome (accepted, replayed, refused) and reason (error code)",
        );
        for ((outcome, reason), count) in lock(&self.sends).iter() {
            line(
                out,
                "sms2fa_sends_total",
                &[("outcome", outcome), ("reason", reason)],
                *count as f64,
            );
        }
        header(
            out,
            "sms2fa_verifications_total",
            "counter",
            "POST /2fa/verify answers by outcome (approved or the error code)",
        );
        for (outcome, count) in lock(&self.verifies).iter() {
            line(
                out,
                "sms2fa_verifications_total",
                &[("outcome", outcome)],
                *count as f64,
            );
        }
        header(
            out,
            "sms2fa_config_reloads_total",
            "counter",
            "Configuration reloads on SIGHUP by result",
        );
        for (result, count) in lock(&self.reloads).iter() {
            line(
                out,
                "sms2fa_config_reloads_total",
                &[("result", result)],
                *count as f64,
            );
        }
    }

    fn render_http(&self, out: &mut String) {
        let name = "sms2fa_http_request_duration_seconds";
        header(out, name, "histogram", "HTTP request latency by route");
        for ((method, route, status), histogram) in lock(&self.http).iter() {
            let status = status.to_string();
            let labels = [
                ("method", method.as_str()),
                ("route", route.as_str()),
                ("status", status.as_str()),
            ];
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let le = bound.to_string();
                let mut with_le = labels.to_vec();
                with_le.push(("le", &le));
                line(out, &format!("{name}_bucket"), &with_le, cumulative as f64);
            }
            let mut with_le = labels.to_vec();
            with_le.push(("le", "+Inf"));
            line(
                out,
                &format!("{name}_bucket"),
                &with_le,
                histogram.count as f64,
            );
            line(out, &format!("{name}_sum"), &labels, histogram.sum);
            line(
                out,
                &format!("{name}_count"),
                &labels,
                histogram.count as f64,
            );
        }
    }
}

fn render_queue(out: &mut String, sample: &Sample) {
    header(
        out,
        "sms2fa_queue_depth",
        "gauge",
        "SMS waiting in the outbox",
    );
    line(out, "sms2fa_queue_depth", &[], sample.queue_depth as f64);
    header(
        out,
        "sms2fa_queue_oldest_overdue_seconds",
        "gauge",
        "How long the most overdue queued SMS has waited past its due time (0 when none is overdue)",
    );
    let overdue = sample
        .queue_oldest_overdue
        .map_or(0.0, |age| age.as_secs_f64());
    line(out, "sms2fa_queue_oldest_overdue_seconds", &[], overdue);
}

fn render_modems(out: &mut String, modems: &[ModemSample]) {
    header(
        out,
        "sms2fa_modem_state",
        "gauge",
        "1 for the state each modem is in, 0 for the others",
    );
    for modem in modems {
        for state in MODEM_STATES {
            let value = if modem.state == state { 1.0 } else { 0.0 };
            line(
                out,
                "sms2fa_modem_state",
                &[("modem", &modem.name), ("state", state)],
                value,
            );
        }
    }
    let counters: [ModemCounter; 3] = [
        (
            "sms2fa_sms_sent_total",
            "SMS the modem accepted (+CMGS) since start",
            |m| m.sent,
        ),
        (
            "sms2fa_sms_failed_total",
            "SMS the modem could not send since start",
            |m| m.failed,
        ),
        (
            "sms2fa_sms_delivered_total",
            "SMS a delivery report said reached the handset, since start",
            |m| m.delivered,
        ),
    ];
    for (name, help, value) in counters {
        header(out, name, "counter", help);
        for modem in modems {
            line(
                out,
                name,
                &[("modem", modem.name.as_str())],
                value(modem) as f64,
            );
        }
    }
    header(
        out,
        "sms2fa_modem_registered",
        "gauge",
        "1 when the modem is registered (home or roaming), with the registration state as a label",
    );
    for modem in modems {
        let registration = modem.registration.unwrap_or("unknown");
        let labels = [
            ("modem", modem.name.as_str()),
            ("registration", registration),
        ];
        let value = if modem.registered { 1.0 } else { 0.0 };
        line(out, "sms2fa_modem_registered", &labels, value);
    }
    header(
        out,
        "sms2fa_modem_signal_dbm",
        "gauge",
        "Received signal strength (AT+CSQ) in dBm; absent when unknown",
    );
    for modem in modems {
        if let Some(dbm) = modem.signal_dbm {
            let labels = [("modem", modem.name.as_str())];
            line(out, "sms2fa_modem_signal_dbm", &labels, f64::from(dbm));
        }
    }
    header(
        out,
        "sms2fa_modem_last_sent_timestamp_seconds",
        "gauge",
        "Unix time of the modem's last successful send; absent before the first",
    );
    for modem in modems {
        if let Some(at) = modem.last_sent_at {
            let labels = [("modem", modem.name.as_str())];
            let seconds = at.timestamp_millis() as f64 / 1000.0;
            line(
                out,
                "sms2fa_modem_last_sent_timestamp_seconds",
                &labels,
                seconds,
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let metrics = Metrics::new();
        metrics.send_answered("accepted", "");
        metrics.send_answered("refused", "resend_cooldown");
        metrics.send_answered("refused", "resend_cooldown");
        metrics.verify_answered("approved");
        metrics.observe_http("POST", "/2fa/send", 200, Duration::from_millis(3));
        metrics.observe_http("POST", "/2fa/send", 200, Duration::from_secs(30));
        let sample = Sample {
            modems: vec![ModemSample {
                name: "dongle\"0".into(),
                state: "ready",
                sent: 7,
                failed: 1,
                delivered: 5,
                signal_dbm: Some(-71),
                registration: Some("home"),
                registered: true,
                last_sent_at: None,
            }],
            queue_depth: 3,
            queue_oldest_overdue: Some(Duration::from_millis(1500)),
        };
        let text = metrics.render(&sample);
        for expected in [
            "sms2fa_sends_total{outcome=\"refused\",reason=\"resend_cooldown\"} 2\n",
            "sms2fa_verifications_total{outcome=\"approved\"} 1\n",
            "sms2fa_queue_depth 3\n",
            "sms2fa_queue_oldest_overdue_seconds 1.5\n",
            "sms2fa_modem_state{modem=\"dongle\\\"0\",state=\"ready\"} 1\n",
            "sms2fa_modem_state{modem=\"dongle\\\"0\",state=\"fatal\"} 0\n",
            "sms2fa_sms_sent_total{modem=\"dongle\\\"0\"} 7\n",
            "sms2fa_modem_signal_dbm{modem=\"dongle\\\"0\"} -71\n",
            "sms2fa_http_request_duration_seconds_bucket{method=\"POST\",route=\"/2fa/send\",status=\"200\",le=\"0.005\"} 1\n",
            "sms2fa_http_request_duration_seconds_bucket{method=\"POST\",route=\"/2fa/send\",status=\"200\",le=\"5\"} 1\n",
            "sms2fa_http_request_duration_seconds_bucket{method=\"POST\",route=\"/2fa/send\",status=\"200\",le=\"+Inf\"} 2\n",
            "sms2fa_http_request_duration_seconds_count{method=\"POST\",route=\"/2fa/send\",status=\"200\"} 2\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("sms2fa_modem_last_sent_timestamp_seconds{"));
    }
}
