//! Operator routes: `/readyz`, `/metrics`, `/modems`, `/openapi.json`, and the
//! middleware that times every request and counts send / verify outcomes.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tracing::Instrument;

use super::error::ErrorCode;
use super::{ApiError, AppState, Caller};
use crate::capacity::Capacity;
use crate::metrics::{Metrics, ModemSample, Sample};
use crate::modem::{registration_name, state_name, ModemHandle};
use crate::otp::Clock;
use crate::store::SharedStore;
use crate::systemd::Heartbeat;

/// The API description, the source of `GET /openapi.json`.
pub const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");

/// What the operator routes look at.
#[derive(Clone)]
pub struct Ops {
    pub store: SharedStore,
    pub modems: Vec<ModemHandle>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Beaten by every HTTP request (a sign of life for the watchdog's log).
    pub http_heartbeat: Heartbeat,
    /// This host's `[cluster] node` name.
    pub node: String,
    /// Whether any modem of any live host could send.
    pub capacity: Arc<Capacity>,
    /// The webhook endpoints' delivery (none in tools and tests that start no daemon).
    pub webhooks: Option<Arc<crate::webhook::Webhooks>>,
}

impl Ops {
    /// The gauges of this moment.
    pub async fn sample(&self) -> Sample {
        let now = self.clock.now();
        let overdue = match self.store.next_due().await {
            Ok(Some(due)) => (now - due).to_std().ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox for metrics");
                None
            }
        };
        let queue_depth = self.store.queue_depth().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the queue depth for metrics");
            0
        });
        Sample {
            modems: self.modems.iter().map(modem_sample).collect(),
            queue_depth,
            queue_oldest_overdue: overdue,
            webhooks: self
                .webhooks
                .as_ref()
                .map(|webhooks| webhooks.samples())
                .unwrap_or_default(),
        }
    }

    /// Whether the store answers a read.
    pub async fn store_answers(&self) -> bool {
        self.store.check().await.is_ok()
    }

    /// `STATUS=` for systemd: "dongle0: ready, -71 dBm, 12 sent; 3 queued".
    pub async fn status_line(&self) -> String {
        let sample = self.sample().await;
        let modems: Vec<String> = sample
            .modems
            .iter()
            .map(|modem| {
                let mut parts = vec![modem.state.to_owned()];
                if let Some(registration) = modem.registration {
                    parts.push(registration.replace('_', " "));
                }
                if let Some(dbm) = modem.signal_dbm {
                    parts.push(format!("signal {dbm} dBm"));
                }
                parts.push(format!("{} sent", modem.sent));
                format!("{}: {}", modem.name, parts.join(", "))
            })
            .collect();
        format!("{}; {} queued", modems.join("; "), sample.queue_depth)
    }
}

fn modem_sample(handle: &ModemHandle) -> ModemSample {
    let now = chrono::Utc::now();
    let ((sent_last_day, sent_last_hour), capped) = {
        let mut usage = handle.usage();
        (usage.counts(now), usage.capped(now).is_some())
    };
    let status = handle.status.borrow();
    ModemSample {
        name: handle.name.clone(),
        state: state_name(status.state),
        sent: status.sent,
        failed: status.failed,
        delivered: handle.delivered.load(std::sync::atomic::Ordering::Relaxed),
        signal_dbm: status.health.signal_dbm,
        registration: status.health.registration.map(registration_name),
        registered: status.health.registered(),
        last_sent_at: status.last_sent_at,
        sent_last_day,
        sent_last_hour,
        capped,
    }
}

/// `GET /readyz`: 200 when the store answers and a modem of a live host is ready;
/// 503 otherwise, with the `reason`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store_ok = state.ops.store_answers().await;
    let modems = state.ops.capacity.ready_modems();
    let reason = match (&modems, store_ok) {
        (_, false) => Some("the store does not answer".to_owned()),
        (Err(why), true) => Some(why.clone()),
        (Ok(_), true) => None,
    };
    let ready = reason.is_none();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "code": status.as_u16(),
        "status": if ready { "ready" } else { "not_ready" },
        "store": if store_ok { "ok" } else { "failing" },
        "modems_ready": modems.unwrap_or_default(),
    });
    if let (Some(reason), Value::Object(map)) = (reason, &mut body) {
        map.insert("reason".to_owned(), reason.into());
    }
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sample = state.ops.sample().await;
    let body = state.ops.metrics.render(&sample);
    let content_type = HeaderValue::from_static(crate::metrics::CONTENT_TYPE);
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// `GET /modems` (authenticated): what each modem is and how it is doing.
pub async fn modems(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let ops = &state.ops;
    let queued = ops.store.queue_depth().await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read the queue depth");
        ApiError::internal()
    })?;
    // This host's modems as they are now; the others' as their hosts' last heartbeats
    // left them.
    let now = ops
        .clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut modems: Vec<Value> = ops
        .modems
        .iter()
        .map(|modem| on_host(modem.describe(), &ops.node, &now, false))
        .collect();
    let hosts = ops.store.hosts().await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read the other hosts' heartbeats");
        ApiError::internal()
    })?;
    for host in hosts.into_iter().filter(|h| h.node != ops.node) {
        let seen = host
            .seen_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for (_, status) in host.modems {
            modems.push(on_host(status, &host.node, &seen, host.down));
        }
    }
    Ok(Json(
        json!({"code": 200, "host": ops.node, "queued": queued, "modems": modems}),
    ))
}

/// A modem's description with the host it belongs to, when that host was last heard
/// of, and whether it counts as down.
fn on_host(mut modem: Value, host: &str, seen_at: &str, down: bool) -> Value {
    if let Some(fields) = modem.as_object_mut() {
        fields.insert("host".into(), host.into());
        fields.insert("host_seen_at".into(), seen_at.into());
        fields.insert("host_down".into(), down.into());
    }
    modem
}

/// `GET /openapi.json`: `docs/openapi.yaml`, converted once.
pub async fn openapi() -> Result<Json<Value>, ApiError> {
    openapi_document().map(Json).ok_or_else(|| {
        tracing::error!("the embedded OpenAPI description does not parse");
        ApiError::internal()
    })
}

/// The embedded description as JSON; `None` if the YAML is broken (a test guards it).
pub fn openapi_document() -> Option<Value> {
    static DOCUMENT: OnceLock<Option<Value>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| serde_norway::from_str(OPENAPI_YAML).ok())
        .clone()
}

const REQUEST_ID: &str = "x-request-id";

/// The caller's `X-Request-Id` when it is a sane token (so logs of both sides join),
/// else a fresh random one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_owned)
}

/// The route template a request matched, left in the response's extensions by
/// [`mark_route`] (which runs inside the router) for [`track`] (which runs outside it,
/// so that it also sees the fallback's answers).
#[derive(Debug, Clone, Copy)]
struct RouteTemplate(&'static str);

/// Names the matched route on the response, as one of [`super::ROUTES`]' templates.
pub async fn mark_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| {
            super::ROUTES
                .iter()
                .find(|route| route.path == matched.as_str())
        })
        .map(|route| route.path);
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Gives every answer an `X-Request-Id`, times each request by route template
/// (`unmatched` when none matched) and counts send / verify outcomes from the error
/// code the handlers attach to their answers.
pub async fn track(State(ops): State<Arc<Ops>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request_id(request.headers());
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |route| route.0);
    let status = response.status();
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    match (route, code) {
        ("/2fa/send", None) if response.headers().contains_key("idempotent-replayed") => {
            ops.metrics.send_answered("replayed", "")
        }
        ("/2fa/send", None) if status.is_success() => ops.metrics.send_answered("accepted", ""),
        ("/2fa/send", Some(code)) => ops.metrics.send_answered("refused", code),
        ("/2fa/verify", None) if status.is_success() => ops.metrics.verify_answered("approved"),
        ("/2fa/verify", Some(code)) => ops.metrics.verify_answered(code),
        _ => {}
    }
    ops.metrics
        .observe_http(&method, route, status, started.elapsed());
    ops.http_heartbeat.beat();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_description_parses() {
        let document = openapi_document().expect("docs/openapi.yaml parses");
        assert_eq!(document["openapi"], "3.1.0");
    }
}
