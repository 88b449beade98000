//! Counters the daemon keeps for `GET /metrics`, kept and written by the Prometheus
//! project's own client (`prometheus-client`, text format 0.0.4).
//!
//! Every label takes its values from a closed set: HTTP methods outside the standard
//! ones are `other`, paths that match no route are `unmatched`, status codes are the
//! registered ones (anything else becomes its class, `5xx`); outcomes and reasons are
//! the error codes the program itself defines; modem names come from the config. So
//! no request can add a series, whatever it sends.
//!
//! Counters that the HTTP layer sees (sends, verifies, latency) live in one registry
//! for the life of the process; gauges that other parts own (modem state, queue depth)
//! are sampled at scrape time and written from a [`Sample`].

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the HTTP latency buckets: a verify answers in a
/// millisecond, a send waits for an fsync (a few ms, up to a second on a busy disk).
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Clone, Copy)]
struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(LATENCY_BUCKETS)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

type GaugeF64 = Gauge<f64, AtomicU64>;

/// Process-wide counters, shared by the HTTP middleware and the routes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sends: Family<SendLabels, Counter>,
    verifies: Family<OutcomeLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    http: Family<HttpLabels, Histogram, LatencyBuckets>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

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
    /// SMS (parts) in the rolling day and hour (what the caps count).
    pub sent_last_day: u64,
    pub sent_last_hour: u64,
    /// At `max_sms_per_day` or `max_sms_per_hour`: it takes no work.
    pub capped: bool,
}

/// Gauges sampled at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub modems: Vec<ModemSample>,
    /// Messages waiting in the outbox.
    pub queue_depth: u64,
    /// How long the most overdue queued message has waited past its due time.
    pub queue_oldest_overdue: Option<Duration>,
    /// Each webhook endpoint's delivery.
    pub webhooks: Vec<crate::webhook::WebhookSample>,
}

/// Every state a modem can report, so each gets a 0/1 series (absent series break
/// alerting rules).
pub const MODEM_STATES: [&str; 5] = ["connecting", "searching", "ready", "sending", "fatal"];

/// The method as a label: the standard methods by name, anything else `other`.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, name)| name)
}

/// The status as a label: a registered status code by number, anything else its class.
pub fn status_label(status: StatusCode) -> &'static str {
    const REGISTERED: [(u16, &str); 42] = [
        (100, "100"),
        (101, "101"),
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (206, "206"),
        (301, "301"),
        (302, "302"),
        (304, "304"),
        (307, "307"),
        (308, "308"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (408, "408"),
        (409, "409"),
        (410, "410"),
        (411, "411"),
        (412, "412"),
        (413, "413"),
        (414, "414"),
        (415, "415"),
        (416, "416"),
        (417, "417"),
        (421, "421"),
        (422, "422"),
        (426, "426"),
        (428, "428"),
        (429, "429"),
        (431, "431"),
        (500, "500"),
        (501, "501"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
        (505, "505"),
        (507, "507"),
        (511, "511"),
    ];
    let code = status.as_u16();
    if let Some((_, label)) = REGISTERED.iter().find(|(known, _)| *known == code) {
        return label;
    }
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let sends = Family::<SendLabels, Counter>::default();
        let verifies = Family::<OutcomeLabels, Counter>::default();
        let reloads = Family::<ResultLabels, Counter>::default();
        let http = Family::new_with_constructor(LatencyBuckets);
        // Counter names are registered without `_total`: the client appends it.
        registry.register(
            "sms2fa_sends",
            "POST /2fa/send answers by outcome (accepted, replayed, refused) and reason (error code)",
            sends.clone(),
        );
        registry.register(
            "sms2fa_verifications",
            "POST /2fa/verify answers by outcome (approved or the error code)",
            verifies.clone(),
        );
        registry.register(
            "sms2fa_config_reloads",
            "Configuration reloads on SIGHUP by result",
            reloads.clone(),
        );
        registry.register(
            "sms2fa_http_request_duration_seconds",
            "HTTP request latency by route",
            http.clone(),
        );
        Self {
            registry,
            sends,
            verifies,
            reloads,
            http,
        }
    }

    /// One `POST /2fa/send` answered: `outcome` is `accepted`, `replayed` (an
    /// idempotent repeat) or `refused`, with the error code as the reason.
    pub fn send_answered(&self, outcome: &'static str, reason: &'static str) {
        self.sends
            .get_or_create(&SendLabels { outcome, reason })
            .inc();
    }

    /// One `POST /2fa/verify` answered: `approved` or the error code.
    pub fn verify_answered(&self, outcome: &'static str) {
        self.verifies
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// One configuration reload (SIGHUP): `ok` or `error`.
    pub fn reload_done(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// One HTTP answer. `route` is a route template or `unmatched`, never a raw path.
    pub fn observe_http(
        &self,
        method: &Method,
        route: &'static str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let labels = HttpLabels {
            method: method_label(method),
            route,
            status: status_label(status),
        };
        self.http
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The whole exposition, counters and `sample` together.
    pub fn render(&self, sample: &Sample) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let scraped = scrape_registry(sample);
        // Writing to a String cannot fail, and our label values need no fallible
        // conversion.
        let _ = encode(&mut out, &self.registry);
        let _ = encode(&mut out, &scraped);
        out
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModemLabels {
    modem: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModemStateLabels {
    modem: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistrationLabels {
    modem: String,
    registration: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

/// The webhook endpoints' series. Endpoint names come from the config (its `name`,
/// or the URL's host and a digest: never the URL, which may hold a token).
fn register_webhooks(registry: &mut Registry, webhooks: &[crate::webhook::WebhookSample]) {
    let pending = Family::<EndpointLabels, GaugeF64>::default();
    let delivered = Family::<EndpointLabels, Counter>::default();
    let failed = Family::<EndpointLabels, Counter>::default();
    let dropped = Family::<EndpointLabels, Counter>::default();
    let last_status = Family::<EndpointLabels, GaugeF64>::default();
    let disabled = Family::<EndpointLabels, GaugeF64>::default();
    for webhook in webhooks {
        let labels = EndpointLabels {
            endpoint: webhook.endpoint.clone(),
        };
        pending.get_or_create(&labels).set(webhook.pending as f64);
        delivered.get_or_create(&labels).inc_by(webhook.delivered);
        failed.get_or_create(&labels).inc_by(webhook.failed);
        dropped.get_or_create(&labels).inc_by(webhook.dropped);
        last_status
            .get_or_create(&labels)
            .set(webhook.last_status as f64);
        disabled
            .get_or_create(&labels)
            .set(if webhook.disabled { 1.0 } else { 0.0 });
    }
    registry.register(
        "sms2fa_webhook_pending",
        "Events waiting for this endpoint (counted every few seconds)",
        pending,
    );
    registry.register(
        "sms2fa_webhook_delivered",
        "Events this endpoint acknowledged with a 2xx",
        delivered,
    );
    registry.register(
        "sms2fa_webhook_failed_attempts",
        "Attempts that failed (another status, no answer within 10 s, no connection); each is retried",
        failed,
    );
    registry.register(
        "sms2fa_webhook_dropped",
        "Events given up after a day of failed attempts",
        dropped,
    );
    registry.register(
        "sms2fa_webhook_last_status",
        "HTTP status of the last attempt (0: no answer, -1: none yet)",
        last_status,
    );
    registry.register(
        "sms2fa_webhook_disabled",
        "1 when the endpoint answered 410 Gone and gets nothing until a reload",
        disabled,
    );
}

/// The gauges of one scrape, in a registry of their own made for it.
fn scrape_registry(sample: &Sample) -> Registry {
    let mut registry = Registry::default();
    register_webhooks(&mut registry, &sample.webhooks);
    let depth = GaugeF64::default();
    depth.set(sample.queue_depth as f64);
    registry.register("sms2fa_queue_depth", "SMS waiting in the outbox", depth);
    let overdue = GaugeF64::default();
    overdue.set(
        sample
            .queue_oldest_overdue
            .map_or(0.0, |age| age.as_secs_f64()),
    );
    registry.register(
        "sms2fa_queue_oldest_overdue_seconds",
        "How long the most overdue queued SMS has waited past its due time (0 when none is overdue)",
        overdue,
    );

    let states = Family::<ModemStateLabels, GaugeF64>::default();
    let sent = Family::<ModemLabels, Counter>::default();
    let failed = Family::<ModemLabels, Counter>::default();
    let delivered = Family::<ModemLabels, Counter>::default();
    let registered = Family::<RegistrationLabels, GaugeF64>::default();
    let signal = Family::<ModemLabels, GaugeF64>::default();
    let last_sent = Family::<ModemLabels, GaugeF64>::default();
    let last_day = Family::<ModemLabels, GaugeF64>::default();
    let last_hour = Family::<ModemLabels, GaugeF64>::default();
    let capped = Family::<ModemLabels, GaugeF64>::default();
    for modem in &sample.modems {
        let name = || ModemLabels {
            modem: modem.name.clone(),
        };
        for state in MODEM_STATES {
            let labels = ModemStateLabels {
                modem: modem.name.clone(),
                state,
            };
            let value = if modem.state == state { 1.0 } else { 0.0 };
            states.get_or_create(&labels).set(value);
        }
        sent.get_or_create(&name()).inc_by(modem.sent);
        failed.get_or_create(&name()).inc_by(modem.failed);
        delivered.get_or_create(&name()).inc_by(modem.delivered);
        let labels = RegistrationLabels {
            modem: modem.name.clone(),
            registration: modem.registration.unwrap_or("unknown"),
        };
        registered
            .get_or_create(&labels)
            .set(if modem.registered { 1.0 } else { 0.0 });
        if let Some(dbm) = modem.signal_dbm {
            signal.get_or_create(&name()).set(f64::from(dbm));
        }
        if let Some(at) = modem.last_sent_at {
            let seconds = at.timestamp_millis() as f64 / 1000.0;
            last_sent.get_or_create(&name()).set(seconds);
        }
        last_day
            .get_or_create(&name())
            .set(modem.sent_last_day as f64);
        last_hour
            .get_or_create(&name())
            .set(modem.sent_last_hour as f64);
        capped
            .get_or_create(&name())
            .set(if modem.capped { 1.0 } else { 0.0 });
    }
    registry.register(
        "sms2fa_modem_state",
        "1 for the state each modem is in, 0 for the others",
        states,
    );
    registry.register(
        "sms2fa_sms_sent",
        "SMS the modem accepted (+CMGS) since start",
        sent,
    );
    registry.register(
        "sms2fa_sms_failed",
        "SMS the modem could not send since start",
        failed,
    );
    registry.register(
        "sms2fa_sms_delivered",
        "SMS a delivery report said reached the handset, since start",
        delivered,
    );
    registry.register(
        "sms2fa_modem_registered",
        "1 when the modem is registered (home or roaming), with the registration state as a label",
        registered,
    );
    registry.register(
        "sms2fa_modem_signal_dbm",
        "Received signal strength (AT+CSQ) in dBm; absent when unknown",
        signal,
    );
    registry.register(
        "sms2fa_modem_last_sent_timestamp_seconds",
        "Unix time of the modem's last successful send; absent before the first",
        last_sent,
    );
    registry.register(
        "sms2fa_modem_sms_last_day",
        "SMS (parts) the modem sent in the last 24 hours, what max_sms_per_day counts (since before a restart too)",
        last_day,
    );
    registry.register(
        "sms2fa_modem_sms_last_hour",
        "SMS (parts) the modem sent in the last hour, what max_sms_per_hour counts",
        last_hour,
    );
    registry.register(
        "sms2fa_modem_capped",
        "1 while the modem is at max_sms_per_day or max_sms_per_hour and takes no work",
        capped,
    );
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of every metric family in an exposition (its `# TYPE` lines).
    fn family_names(exposition: &str) -> Vec<String> {
        exposition
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_owned)
            .collect()
    }

    fn sample() -> Sample {
        Sample {
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
                sent_last_day: 40,
                sent_last_hour: 6,
                capped: true,
            }],
            queue_depth: 3,
            queue_oldest_overdue: Some(Duration::from_millis(1500)),
            webhooks: vec![crate::webhook::WebhookSample {
                endpoint: "hooks.example#1a2b3c4d".into(),
                pending: 2,
                delivered: 9,
                failed: 4,
                dropped: 1,
                last_status: 500,
                disabled: false,
            }],
        }
    }

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let metrics = Metrics::new();
        metrics.send_answered("accepted", "");
        metrics.send_answered("refused", "resend_cooldown");
        metrics.send_answered("refused", "resend_cooldown");
        metrics.verify_answered("approved");
        let send = |elapsed| {
            metrics.observe_http(&Method::POST, "/2fa/send", StatusCode::OK, elapsed);
        };
        send(Duration::from_millis(3));
        send(Duration::from_secs(30));
        let text = metrics.render(&sample());
        for expected in [
            "# HELP sms2fa_sends_total POST /2fa/send answers by outcome (accepted, replayed, refused) and reason (error code).\n",
            "# TYPE sms2fa_sends_total counter\n",
            "sms2fa_sends_total{outcome=\"refused\",reason=\"resend_cooldown\"} 2\n",
            "sms2fa_verifications_total{outcome=\"approved\"} 1\n",
            "sms2fa_queue_depth 3.0\n",
            "sms2fa_queue_oldest_overdue_seconds 1.5\n",
            "sms2fa_modem_state{modem=\"dongle\\\"0\",state=\"ready\"} 1.0\n",
            "sms2fa_modem_state{modem=\"dongle\\\"0\",state=\"fatal\"} 0.0\n",
            "sms2fa_sms_sent_total{modem=\"dongle\\\"0\"} 7\n",
            "sms2fa_modem_signal_dbm{modem=\"dongle\\\"0\"} -71.0\n",
            "sms2fa_webhook_pending{endpoint=\"hooks.example#1a2b3c4d\"} 2.0\n",
            "sms2fa_webhook_delivered_total{endpoint=\"hooks.example#1a2b3c4d\"} 9\n",
            "sms2fa_webhook_failed_attempts_total{endpoint=\"hooks.example#1a2b3c4d\"} 4\n",
            "sms2fa_webhook_dropped_total{endpoint=\"hooks.example#1a2b3c4d\"} 1\n",
            "sms2fa_webhook_last_status{endpoint=\"hooks.example#1a2b3c4d\"} 500.0\n",
            "sms2fa_webhook_disabled{endpoint=\"hooks.example#1a2b3c4d\"} 0.0\n",
            "# TYPE sms2fa_http_request_duration_seconds histogram\n",
            "sms2fa_http_request_duration_seconds_bucket{method=\"POST\",route=\"/2fa/send\",status=\"200\",le=\"0.005\"} 1\n",
            "sms2fa_http_request_duration_seconds_bucket{method=\"POST\",route=\"/2fa/send\",status=\"200\",le=\"5\"} 1\n",
            "sms2fa_http_request_duration_seconds_bucket{method=\"POST\",route=\"/2fa/send\",status=\"200\",le=\"+Inf\"} 2\n",
            "sms2fa_http_request_duration_seconds_count{method=\"POST\",route=\"/2fa/send\",status=\"200\"} 2\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("sms2fa_modem_last_sent_timestamp_seconds{"));
    }

    #[test]
    fn every_family_of_the_hand_written_exposition_is_still_there() {
        let metrics = Metrics::new();
        metrics.send_answered("accepted", "");
        metrics.verify_answered("approved");
        metrics.reload_done("ok");
        metrics.observe_http(&Method::GET, "/healthz", StatusCode::OK, Duration::ZERO);
        let mut sample = sample();
        sample.modems[0].last_sent_at = Some(Utc::now());
        let names = family_names(&metrics.render(&sample));
        for name in [
            "sms2fa_sends_total",
            "sms2fa_verifications_total",
            "sms2fa_config_reloads_total",
            "sms2fa_queue_depth",
            "sms2fa_queue_oldest_overdue_seconds",
            "sms2fa_modem_state",
            "sms2fa_sms_sent_total",
            "sms2fa_sms_failed_total",
            "sms2fa_sms_delivered_total",
            "sms2fa_modem_registered",
            "sms2fa_modem_signal_dbm",
            "sms2fa_modem_last_sent_timestamp_seconds",
            "sms2fa_http_request_duration_seconds",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
    }

    #[test]
    fn made_up_methods_and_statuses_fall_into_closed_sets() {
        let metrics = Metrics::new();
        for i in 0..500 {
            let method = Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
            let status = StatusCode::from_u16(460 + (i % 40) as u16).unwrap();
            metrics.observe_http(&method, "unmatched", status, Duration::ZERO);
        }
        let text = metrics.render(&Sample::default());
        let series = text
            .lines()
            .filter(|l| l.starts_with("sms2fa_http_request_duration_seconds_count"))
            .count();
        // None of 460..=499 is a registered status: one class, one method, one route.
        assert_eq!(series, 1, "{text}");
        assert!(text.contains("method=\"other\",route=\"unmatched\",status=\"4xx\""));
        assert_eq!(status_label(StatusCode::IM_A_TEAPOT), "4xx");
        assert_eq!(status_label(StatusCode::TOO_MANY_REQUESTS), "429");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
