//! The HTTP API: routing, authentication, request parsing and the mapping of outcomes
//! to status codes. Business rules live in [`crate::service`].

mod auth;
mod body;
mod error;
mod inbox;
mod limits;
mod ops;
mod twofa;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::json;

pub use auth::{Accounts, LiveAccounts};
pub use error::{ApiError, ErrorCode};
pub use limits::BodyLimits;
pub use ops::{openapi_document, Ops, OPENAPI_YAML};

use crate::service::TwoFactor;

#[derive(Clone)]
pub struct AppState {
    /// Swapped whole on SIGHUP.
    pub accounts: Arc<LiveAccounts>,
    pub twofa: Arc<TwoFactor>,
    pub ops: Arc<Ops>,
}

/// One route of the API. [`ROUTES`] is the only list: the router is built from it, and
/// a test holds `docs/openapi.yaml` to it.
pub struct Route {
    pub method: &'static str,
    /// The axum path template, which is also the OpenAPI path.
    pub path: &'static str,
    /// Whether the route needs HTTP Basic credentials.
    pub authenticated: bool,
    endpoint: fn() -> MethodRouter<AppState>,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/2fa/send",
        authenticated: true,
        endpoint: || post(twofa::send),
    },
    Route {
        method: "POST",
        path: "/2fa/verify",
        authenticated: true,
        endpoint: || post(twofa::verify),
    },
    Route {
        method: "POST",
        path: "/2fa/cancel",
        authenticated: true,
        endpoint: || post(twofa::cancel),
    },
    Route {
        method: "POST",
        path: "/2fa/unlock",
        authenticated: true,
        endpoint: || post(twofa::unlock),
    },
    Route {
        method: "GET",
        path: "/2fa/messages/{id}",
        authenticated: true,
        endpoint: || get(twofa::message),
    },
    Route {
        method: "GET",
        path: "/sms/inbox",
        authenticated: true,
        endpoint: || get(inbox::inbox),
    },
    Route {
        method: "GET",
        path: "/modems",
        authenticated: true,
        endpoint: || get(ops::modems),
    },
    Route {
        method: "GET",
        path: "/healthz",
        authenticated: false,
        endpoint: || get(healthz),
    },
    Route {
        method: "GET",
        path: "/readyz",
        authenticated: false,
        endpoint: || get(ops::readyz),
    },
    Route {
        method: "GET",
        path: "/metrics",
        authenticated: false,
        endpoint: || get(ops::metrics),
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        authenticated: false,
        endpoint: || get(ops::openapi),
    },
];

pub fn router(state: AppState, limits: BodyLimits) -> Router {
    let ops = state.ops.clone();
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, (route.endpoint)())
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            limits,
            limits::read_body,
        ))
        .route_layer(axum::middleware::from_fn(ops::mark_route))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(ops, ops::track))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that HTTP method",
    )
}
