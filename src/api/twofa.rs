//! `/2fa/send`, `/2fa/verify`, `/2fa/cancel`, `/2fa/unlock` and `/2fa/messages/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};

use super::body::{json_object, string_field};
use super::send::{self, idempotency_key, refused};
use super::{ApiError, AppState, Caller};
use crate::otp::{AttemptVerdict, ServiceName, Template, TemplateError};
use crate::service::{Outgoing, SendRequest, VerifyRequest};
use crate::sms::PhoneNumber;

const MAX_CODE_CHARS: usize = 32;

pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request = parse_send(&json_object(&headers, body)?)?;
    let key = idempotency_key(&headers)?;
    let accepted = state
        .twofa
        .submit(&caller.sid, key.as_ref(), &Outgoing::Code(request))
        .await
        .map_err(|e| refused(e, "body"))?;
    Ok(send::accepted(&accepted, true))
}

pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request = parse_verify(&json_object(&headers, body)?)?;
    let verdict = state
        .twofa
        .verify(&caller.sid, &request)
        .await
        .map_err(|e| internal("judge a verification", &e))?;
    match verdict {
        AttemptVerdict::Approved => Ok(Json(json!({
            "code": 200,
            "message": "OK",
            "status": "approved",
            "verified": true,
        }))),
        AttemptVerdict::Wrong { remaining } => {
            Err(ApiError::field("code", "invalid_code", "the code is wrong")
                .with("verified", false)
                .with("attempts_remaining", remaining))
        }
        AttemptVerdict::NotFound => Err(not_found_code().with("verified", false)),
        AttemptVerdict::NumberLocked { retry_after } => Err(too_many(
            "number_locked",
            "too many wrong codes for this number; it is locked until an operator unlocks it or the lock expires",
            retry_after,
        )
        .with("verified", false)),
        AttemptVerdict::Exhausted => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "max_attempts_reached",
            "too many wrong codes; request a new code",
        )
        .with("verified", false)),
    }
}

pub async fn message(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    // An id that is not even UTF-8 names no message: the same JSON 404 as any other.
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such message for this account",
        )
    };
    let record = state
        .twofa
        .message(&caller.sid, &id)
        .await
        .map_err(|e| internal("read a message", &e))?
        .ok_or_else(not_found)?;
    Ok(Json(json!({
        "code": 200,
        "requestID": record.id,
        "service": record.service,
        "to": record.to_masked,
        "status": record.status,
        "created_at": record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "expires_at": record.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "history": record.history,
    })))
}

/// `POST /2fa/cancel` `{service, number}`: the live code stops verifying at once.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (service, number) = scoped_request(&headers, body)?;
    let cancelled = state
        .twofa
        .cancel(&caller.sid, &service, &number)
        .await
        .map_err(|e| internal("cancel a code", &e))?;
    if !cancelled {
        return Err(not_found_code());
    }
    Ok(Json(
        json!({"code": 200, "message": "OK", "status": "canceled"}),
    ))
}

/// `POST /2fa/unlock` `{service, number}`: lift a `number_locked` lock (the operator's
/// or the application's decision, after checking who the user is).
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (service, number) = scoped_request(&headers, body)?;
    let was_locked = state
        .twofa
        .unlock(&caller.sid, &service, &number)
        .await
        .map_err(|e| internal("unlock a number", &e))?;
    Ok(Json(
        json!({"code": 200, "message": "OK", "status": "unlocked", "was_locked": was_locked}),
    ))
}

/// The `{service, number}` a request is about.
fn scoped_request(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(ServiceName, PhoneNumber), ApiError> {
    let object = json_object(headers, body)?;
    Ok((service_field(&object)?, phone_field(&object, "number")?))
}

/// A storage failure, logged with what was being done: 503 `storage_unavailable` when
/// the database is away for now (nothing was applied: retry), 500 otherwise.
pub(super) fn internal(doing: &str, error: &crate::store::StoreError) -> ApiError {
    if error.is_unavailable() {
        tracing::warn!(%error, "could not {doing}");
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database cannot be reached; nothing was done, retry shortly",
        )
        .retry_after(STORAGE_RETRY_AFTER_SECS);
    }
    tracing::error!(%error, "could not {doing}");
    ApiError::internal()
}

/// What a client is told to wait when the database is away: a switchover or a
/// reconnection takes seconds.
const STORAGE_RETRY_AFTER_SECS: i64 = 2;

fn not_found_code() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no live code for this service and number (never sent, expired or already used)",
    )
}

/// A 429 with `Retry-After` (whole seconds, rounded up) and `"retry_after"`.
pub(super) fn too_many(
    error: &'static str,
    message: &str,
    retry_after: chrono::Duration,
) -> ApiError {
    let millis = retry_after.num_milliseconds().max(0);
    let seconds = (millis + 999) / 1000;
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, error, message)
        .with("retry_after", seconds.max(1))
        .retry_after(seconds.max(1))
}

fn parse_send(object: &Map<String, Value>) -> Result<SendRequest, ApiError> {
    Ok(SendRequest {
        service: service_field(object)?,
        from: phone_field(object, "from")?,
        to: phone_field(object, "to")?,
        body: Template::parse(string_field(object, "body")?).map_err(|e| match e {
            TemplateError::NoPlaceholder => ApiError::field(
                "body",
                "missing_code_placeholder",
                "`body` must contain {code}",
            ),
        })?,
    })
}

fn parse_verify(object: &Map<String, Value>) -> Result<VerifyRequest, ApiError> {
    let service = service_field(object)?;
    let number = phone_field(object, "number")?;
    let code = string_field(object, "code")?;
    if code.is_empty() || code.chars().count() > MAX_CODE_CHARS {
        return Err(ApiError::field(
            "code",
            "invalid_field",
            format!("`code` must be 1 to {MAX_CODE_CHARS} characters"),
        ));
    }
    Ok(VerifyRequest {
        service,
        number,
        code: code.to_owned(),
    })
}

fn service_field(object: &Map<String, Value>) -> Result<ServiceName, ApiError> {
    ServiceName::parse(string_field(object, "service")?)
        .map_err(|e| ApiError::field("service", "invalid_field", format!("`service` {e}")))
}

fn phone_field(object: &Map<String, Value>, field: &'static str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(string_field(object, field)?)
        .map_err(|e| ApiError::field(field, "invalid_phone_number", format!("`{field}`: {e}")))
}
