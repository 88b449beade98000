//! The request body, read whole before any handler runs: refused at once when its
//! `Content-Length` is over `http.max_body_bytes`, cut off when it grows past it, and
//! answered `408` when it is not complete within `http.body_timeout_secs`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::ApiError;
use crate::config::HttpConfig;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
}

impl BodyLimits {
    pub fn from_config(http: &HttpConfig) -> Self {
        Self {
            max_body_bytes: http.max_body_bytes,
            body_timeout: Duration::from_secs(http.body_timeout_secs),
        }
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than this server accepts (http.max_body_bytes)",
    )
}

/// An answer after which the connection must close: the rest of the body was never
/// read, so the next bytes on it are not a request.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

pub async fn read_body(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return closing(too_large());
    }
    // No body at all (most GETs): nothing to read, nothing to wait for.
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    if declared == Some(0) || (declared.is_none() && !chunked) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, limits.max_body_bytes).collect();
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<LengthLimitError>() => return closing(too_large()),
        Ok(Err(_)) => {
            return closing(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            ))
        }
        Err(_) => {
            let seconds = limits.body_timeout.as_secs();
            return closing(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body was not complete within {seconds} s (http.body_timeout_secs)"
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
