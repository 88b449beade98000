//! The HTTP API: routing, authentication, request parsing and the mapping of outcomes
//! to status codes. Business rules live in [`crate::service`].

mod auth;
mod body;
mod error;
mod twofa;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub use auth::Accounts;
pub use error::ApiError;

use crate::service::TwoFactor;

#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub twofa: TwoFactor,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/2fa/send", post(twofa::send))
        .route("/2fa/verify", post(twofa::verify))
        .route("/2fa/cancel", post(twofa::cancel))
        .route("/2fa/unlock", post(twofa::unlock))
        .route("/2fa/messages/{id}", get(twofa::message))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
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
