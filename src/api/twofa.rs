//! `/2fa/send`, `/2fa/verify` and `/2fa/messages/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};

use super::body::{json_object, string_field};
use super::{ApiError, AppState};
use crate::otp::{AttemptVerdict, ServiceName, Template, TemplateError};
use crate::service::{IssueError, SendRequest, VerifyRequest};
use crate::sms::PhoneNumber;

const MAX_CODE_CHARS: usize = 32;

pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let account = state.accounts.authenticate(&headers)?;
    let request = parse_send(&json_object(&headers, body)?)?;
    match state.twofa.send(&account, &request).await {
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
        Err(IssueError::Store(e)) => {
            tracing::error!(error = %e, "could not store a code");
            Err(ApiError::internal())
        }
    }
}

pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let account = state.accounts.authenticate(&headers)?;
    let request = parse_verify(&json_object(&headers, body)?)?;
    let verdict = state.twofa.verify(&account, &request).await.map_err(|e| {
        tracing::error!(error = %e, "could not judge a verification");
        ApiError::internal()
    })?;
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
        AttemptVerdict::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no live code for this service and number (never sent, expired or already used)",
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
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = state.accounts.authenticate(&headers)?;
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
        .map_err(|e| {
            tracing::error!(error = %e, "could not read a message");
            ApiError::internal()
        })?
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
            TemplateError::TooLong => {
                ApiError::field("body", "body_too_long", format!("`body` {e}"))
            }
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
