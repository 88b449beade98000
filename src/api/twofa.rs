//! `/2fa/send`, `/2fa/verify` and `/2fa/messages/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::body::{json_object, string_field};
use super::{ApiError, AppState};
use crate::otp::{AttemptVerdict, SendRefusal, ServiceName, Template, TemplateError};
use crate::service::{IssueError, SendRequest, VerifyRequest};
use crate::sms::PhoneNumber;
use crate::store::{Begin, StoredAnswer};

const MAX_CODE_CHARS: usize = 32;

pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let account = state.accounts.authenticate(&headers)?;
    let request = parse_send(&json_object(&headers, body)?)?;
    let Some(key) = idempotency_key(&headers)? else {
        return issue(&state, &account, &request)
            .await
            .map(IntoResponse::into_response);
    };
    let begin = state
        .twofa
        .begin_idempotent(&account, &key, &request)
        .await
        .map_err(|e| internal("read an idempotency key", &e))?;
    match begin {
        Begin::Proceed => {}
        Begin::Replay(answer) => return Ok(replay(answer)),
        Begin::InFlight => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still being answered; retry shortly",
            ))
        }
        Begin::Mismatch => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
            ))
        }
    }
    let outcome = issue(&state, &account, &request).await;
    // Only a success is replayed: a refusal sent nothing, so a retry may try again.
    let answer = outcome.as_ref().ok().map(|Json(body)| StoredAnswer {
        status: 200,
        body: body.to_string(),
    });
    if let Err(e) = state.twofa.finish_idempotent(&account, &key, answer).await {
        tracing::error!(error = %e, "could not record an idempotent answer");
    }
    outcome.map(IntoResponse::into_response)
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

async fn issue(
    state: &AppState,
    account: &str,
    request: &SendRequest,
) -> Result<Json<Value>, ApiError> {
    state.ops.can_send()?;
    match state.twofa.send(account, request).await {
        Ok(issued) => Ok(Json(json!({
            "code": 200,
            "message": "OK",
            "requestID": issued.message_id,
            "status": "queued",
            "expires_at": issued.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }))),
        Err(IssueError::BodyTooLong {
            parts_needed,
            max_parts,
        }) => Err(ApiError::field(
            "body",
            "body_too_long",
            format!(
                "the SMS would need {parts_needed} parts; this server sends at most {max_parts}"
            ),
        )
        .with("parts_needed", parts_needed)
        .with("max_parts", max_parts)),
        Err(IssueError::DestinationNotAllowed) => Err(ApiError {
            field: Some("to"),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "destination_not_allowed",
                "this server does not send codes to that destination (otp.allowed_prefixes)",
            )
        }),
        Err(IssueError::Limited(refusal)) => Err(send_refusal(refusal)),
        Err(IssueError::Store(e)) => Err(internal("store a code", &e)),
    }
}

pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let account = state.accounts.authenticate(&headers)?;
    let request = parse_verify(&json_object(&headers, body)?)?;
    let verdict = state
        .twofa
        .verify(&account, &request)
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
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let account = state.accounts.authenticate(&headers)?;
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
        .message(&account, &id)
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (account, service, number) = scoped_request(&state, &headers, body)?;
    let cancelled = state
        .twofa
        .cancel(&account, &service, &number)
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (account, service, number) = scoped_request(&state, &headers, body)?;
    let was_locked = state
        .twofa
        .unlock(&account, &service, &number)
        .await
        .map_err(|e| internal("unlock a number", &e))?;
    Ok(Json(
        json!({"code": 200, "message": "OK", "status": "unlocked", "was_locked": was_locked}),
    ))
}

/// The caller's account and the `{service, number}` a request is about.
fn scoped_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, ServiceName, PhoneNumber), ApiError> {
    let account = state.accounts.authenticate(headers)?;
    let object = json_object(headers, body)?;
    Ok((
        account,
        service_field(&object)?,
        phone_field(&object, "number")?,
    ))
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

fn send_refusal(refusal: SendRefusal) -> ApiError {
    let retry_after = refusal.retry_after();
    match refusal {
        SendRefusal::Cooldown { .. } => too_many(
            "resend_cooldown",
            "a code was sent to this number moments ago; wait before sending another",
            retry_after,
        ),
        SendRefusal::NumberDailyCap { .. } => too_many(
            "number_daily_limit",
            "this number has received the most codes allowed in 24 hours",
            retry_after,
        ),
        SendRefusal::AccountRate { .. } => too_many(
            "account_rate_limit",
            "this account has sent the most codes allowed per minute",
            retry_after,
        ),
        SendRefusal::NumberLocked { .. } => too_many(
            "number_locked",
            "too many wrong codes for this number; it is locked until an operator unlocks it or the lock expires",
            retry_after,
        ),
    }
}

/// A 429 with `Retry-After` (whole seconds, rounded up) and `"retry_after"`.
fn too_many(error: &'static str, message: &str, retry_after: chrono::Duration) -> ApiError {
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
