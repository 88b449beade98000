//! The HTTP API: routing, authentication, request parsing and the mapping of outcomes
//! to status codes. Business rules live in [`crate::service`].

mod auth;
mod body;
mod error;
mod form;
mod inbox;
mod kannel;
mod limits;
mod ops;
mod relay;
mod send;
mod twofa;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::json;

pub use auth::{Accounts, Caller, LiveAccounts};
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
    /// Who may call it, and how the caller says who it is.
    pub access: Access,
    endpoint: fn() -> MethodRouter<AppState>,
}

/// How a route's caller is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (probes, metrics, the API description).
    Public,
    /// An account's SID and token as HTTP Basic credentials ([`Caller`]); 401 without.
    Basic,
    /// Kannel's `username` and `password` parameters (or Basic credentials); Kannel's
    /// `403 Authorization failed for sendsms` without.
    KannelParams,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/2fa/send",
        access: Access::Basic,
        endpoint: || post(twofa::send),
    },
    Route {
        method: "POST",
        path: "/2fa/verify",
        access: Access::Basic,
        endpoint: || post(twofa::verify),
    },
    Route {
        method: "POST",
        path: "/2fa/cancel",
        access: Access::Basic,
        endpoint: || post(twofa::cancel),
    },
    Route {
        method: "POST",
        path: "/2fa/unlock",
        access: Access::Basic,
        endpoint: || post(twofa::unlock),
    },
    Route {
        method: "GET",
        path: "/2fa/messages/{id}",
        access: Access::Basic,
        endpoint: || get(twofa::message),
    },
    Route {
        method: "POST",
        path: "/sms/send",
        access: Access::Basic,
        endpoint: || post(relay::send),
    },
    Route {
        method: "GET",
        path: "/sms/send",
        access: Access::Basic,
        endpoint: || get(relay::send),
    },
    Route {
        method: "GET",
        path: "/cgi-bin/sendsms",
        access: Access::KannelParams,
        endpoint: || get(kannel::sendsms),
    },
    Route {
        method: "POST",
        path: "/cgi-bin/sendsms",
        access: Access::KannelParams,
        endpoint: || post(kannel::sendsms),
    },
    Route {
        method: "GET",
        path: "/sms/inbox",
        access: Access::Basic,
        endpoint: || get(inbox::inbox),
    },
    Route {
        method: "GET",
        path: "/modems",
        access: Access::Basic,
        endpoint: || get(ops::modems),
    },
    Route {
        method: "GET",
        path: "/healthz",
        access: Access::Public,
        endpoint: || get(healthz),
    },
    Route {
        method: "GET",
        path: "/readyz",
        access: Access::Public,
        endpoint: || get(ops::readyz),
    },
    Route {
        method: "GET",
        path: "/metrics",
        access: Access::Public,
        endpoint: || get(ops::metrics),
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        access: Access::Public,
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
