//! What the send routes share over HTTP: the `Idempotency-Key` header, the answer to
//! an accepted send, and the refusals of [`SendError`] as status codes.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::twofa::{internal, too_many};
use super::ApiError;
use crate::otp::SendRefusal;
use crate::service::{Accepted, IdempotencyKey, SendError};

/// Seconds a client is asked to wait after `no_modem_available`: modems come back
/// from a re-plug or a lost registration in about this long.
const NO_MODEM_RETRY_SECS: i64 = 30;

/// The optional `Idempotency-Key` header.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(IdempotencyKey::parse)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })
}

/// `200 {"code":200,"message":"OK","requestID","status":"queued"}`, with the code's
/// `expires_at` for `/2fa/send`; `Idempotent-Replayed: true` on a replay.
pub fn accepted(accepted: &Accepted, with_expiry: bool) -> Response {
    let mut body = json!({
        "code": 200,
        "message": "OK",
        "requestID": accepted.issued.message_id,
        "status": "queued",
    });
    if with_expiry {
        body["expires_at"] = accepted
            .issued
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into();
    }
    let mut response = Json(body).into_response();
    if accepted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// A refused send as an error answer; `text_field` is the request field whose text
/// was too long (`body` for a code, `text` for a relay).
pub fn refused(error: SendError, text_field: &'static str) -> ApiError {
    match error {
        SendError::NoModemAvailable(reason) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_modem_available",
            reason,
        )
        .retry_after(NO_MODEM_RETRY_SECS),
        SendError::BodyTooLong {
            parts_needed,
            max_parts,
        } => ApiError::field(
            text_field,
            "body_too_long",
            format!(
                "the SMS would need {parts_needed} parts; this server sends at most {max_parts}"
            ),
        )
        .with("parts_needed", parts_needed)
        .with("max_parts", max_parts),
        SendError::DestinationNotAllowed => ApiError {
            field: Some("to"),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "destination_not_allowed",
                "this server does not send to that destination (otp.allowed_prefixes)",
            )
        },
        SendError::Limited(refusal) => limited(refusal),
        SendError::KeyInFlight => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_flight",
            "a request with this Idempotency-Key is still being answered; retry shortly",
        ),
        SendError::KeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        ),
        SendError::Store(e) => internal("queue an SMS", &e),
    }
}

fn limited(refusal: SendRefusal) -> ApiError {
    let retry_after = refusal.retry_after();
    match refusal {
        SendRefusal::Cooldown { .. } => too_many(
            "resend_cooldown",
            "a code was sent to this number moments ago; wait before sending another",
            retry_after,
        ),
        SendRefusal::NumberDailyCap { .. } => too_many(
            "number_daily_limit",
            "this number has received the most SMS allowed in 24 hours",
            retry_after,
        ),
        SendRefusal::AccountRate { .. } => too_many(
            "account_rate_limit",
            "this account has sent the most SMS allowed per minute",
            retry_after,
        ),
        SendRefusal::NumberLocked { .. } => too_many(
            "number_locked",
            "too many wrong codes for this number; it is locked until an operator unlocks it or the lock expires",
            retry_after,
        ),
    }
}
