//! The HTTP API (every route of `sms2fa::api::ROUTES`, plus unknown ones) on arbitrary
//! bodies, credentials, content types and idempotency keys, through the real router
//! with a real store (no modem). There is no public JSON parser for the request bodies,
//! so the JSON request types are fuzzed where they are used: behind the router.
//! Never a panic, never a 500; every 4xx is the documented JSON error shape.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use sms2fa::api::{router, Accounts, AppState, LiveAccounts, Ops, ROUTES};
use sms2fa::capacity::Capacity;
use sms2fa::config::{AccountConfig, Config, Requirements};
use sms2fa::metrics::Metrics;
use sms2fa::otp::{CodeHasher, ManualClock, SecretKey};
use sms2fa::service::{Policy, TwoFactor};
use sms2fa::systemd::Heartbeat;
use tower::ServiceExt;

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _state: tempfile::TempDir,
}

const SID: &str = "ACfuzz";
const TOKEN: &str = "fuzz-token";

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // /dev/shm when there is one: a valid send flushes the store before answering.
        let state = tempfile::Builder::new()
            .prefix("sms2fa-fuzz-")
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .expect("temp dir");
        let router = runtime.block_on(async {
            let mut config = Config::parse("", std::path::Path::new("fuzz"), Requirements::Nothing)
                .expect("empty config");
            config.accounts = vec![
                AccountConfig {
                    sid: SID.into(),
                    token: Some(TOKEN.into()),
                    token_sha256: None,
                    receive: true,
                    relay: true,
                },
                AccountConfig {
                    sid: "ACother".into(),
                    token: Some("other".into()),
                    token_sha256: None,
                    receive: true,
                    relay: false,
                },
            ];
            let key = SecretKey::from_bytes([7; 32]);
            config.storage.path = state.path().to_owned();
            let clock = Arc::new(ManualClock::new());
            let store = sms2fa::store::open(&config.storage, &config.cluster, &key, clock.clone())
                .await
                .expect("store");
            let twofa = TwoFactor::new(
                store.clone(),
                CodeHasher::new(key),
                Policy::from_config(&config),
                Arc::new(tokio::sync::Notify::new()),
            );
            let ops = Arc::new(Ops {
                store,
                modems: Vec::new(),
                clock,
                metrics: Arc::new(Metrics::new()),
                http_heartbeat: Heartbeat::new(),
                node: "fuzz".into(),
                // No modems: without an endless start grace every send would be
                // refused as no_modem_available, and the send path never fuzzed.
                capacity: Arc::new(Capacity::new(Vec::new(), "fuzz".into(), Duration::MAX)),
                webhooks: None,
            });
            let state = AppState {
                accounts: Arc::new(LiveAccounts::new(Accounts::from_config(&config.accounts))),
                twofa: Arc::new(twofa),
                ops,
            };
            router(state, sms2fa::api::BodyLimits::from_config(&config.http))
        });
        Harness {
            runtime,
            router,
            _state: state,
        }
    })
}

const AUTH: &[Option<&str>] = &[
    Some("Basic QUNmdXp6OmZ1enotdG9rZW4="), // ACfuzz:fuzz-token
    Some("Basic QUNmdXp6OmZ1enotdG9rZW4="),
    Some("Basic QUNvdGhlcjpvdGhlcg=="), // ACother:other
    Some("Basic QUNmdXp6Ondyb25n"),     // ACfuzz:wrong
    Some("Basic !!!"),
    Some("Bearer x"),
    None,
];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    None,
];


fuzz_target!(|data: &[u8]| {
    let [route, auth, content_type, flags, rest @ ..] = data else {
        return;
    };
    let h = harness();
    let (method, path) = match usize::from(*route) % (ROUTES.len() + 2) {
        i if i < ROUTES.len() => {
            let r = &ROUTES[i];
            let method = if flags & 0x80 != 0 {
                "DELETE"
            } else {
                r.method
            };
            let id: String = rest.iter().take(40).map(|b| format!("%{b:02X}")).collect();
            (method, r.path.replace("{id}", &id))
        }
        i if i == ROUTES.len() => ("POST", "/2fa/nothing".to_owned()),
        _ => ("GET", "/".to_owned()),
    };
    let mut request = Request::builder().method(method).uri(&path);
    if let Some(value) = AUTH[usize::from(*auth) % AUTH.len()] {
        request = request.header(header::AUTHORIZATION, value);
    }
    if let Some(value) = CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()] {
        request = request.header(header::CONTENT_TYPE, value);
    }
    if flags & 1 != 0 {
        // Arbitrary header bytes; the http crate refuses invalid ones, as a server would.
        let key: Vec<u8> = rest
            .iter()
            .rev()
            .take(usize::from(flags >> 1 & 0x3f))
            .copied()
            .collect();
        if let Ok(value) = axum::http::HeaderValue::from_bytes(&key) {
            request = request.header("Idempotency-Key", value);
        }
    }
    let Ok(request) = request.body(Body::from(rest.to_vec())) else {
        return;
    };
    let response = h
        .runtime
        .block_on(h.router.clone().oneshot(request))
        .expect("infallible");
    let status = response.status();
    let kannel_error = response.headers().get("x-sms2fa-error").cloned();
    let body = h
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
        .expect("body");
    assert!(
        !status.is_server_error()
            || (status == StatusCode::SERVICE_UNAVAILABLE && path == "/readyz"),
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    if status.is_client_error()
        && path.starts_with("/cgi-bin/")
        && status != StatusCode::METHOD_NOT_ALLOWED
    {
        // Kannel's interface answers one line of text, its cause in a header (a method
        // it does not take is refused by the router, in JSON).
        assert!(kannel_error.is_some(), "{method} {path}: {status} without X-Sms2fa-Error");
        assert!(!body.is_empty() && !body.contains(&b'\n'), "{body:?}");
    } else if status.is_client_error() {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{method} {path}: {status} body is not JSON ({e}): {body:?}")
        });
        assert_eq!(json["code"], status.as_u16(), "{json}");
        assert!(json["error"].is_string(), "{json}");
    }
});
