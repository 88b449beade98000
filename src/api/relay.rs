//! `GET|POST /sms/send`: an SMS whose text the caller wrote, for accounts with
//! `relay = true` — the gateway for identity systems that make their own codes
//! (privacyIDEA's HTTP provider, Curity-style `{"to","message"}`, scripts).
//!
//! The fields come as JSON, as a form, or (GET, or a POST without a body) as a query
//! string: `to`, `text` (or `message`), optional `from`. In JSON a number is taken as
//! its digits: privacyIDEA sends an all-digit text, and a number stored without `+`,
//! as JSON numbers.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::body::{json_object, media_type};
use super::send::{self, idempotency_key, refused};
use super::{form, ApiError, AppState, Caller};
use crate::service::{Outgoing, RelayRequest};
use crate::sms::{PhoneNumber, SmsText};

pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if !caller.may_relay {
        return Err(not_allowed());
    }
    let fields = fields(&headers, query.as_deref(), body)?;
    let request = parse_relay(&fields)?;
    let key = idempotency_key(&headers)?;
    let accepted = state
        .twofa
        .submit(&caller.sid, key.as_ref(), &Outgoing::Text(request))
        .await
        .map_err(|e| refused(e, "text"))?;
    Ok(send::accepted(&accepted, false))
}

pub fn not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "relay_not_allowed",
        "this account may not send texts of its own (set relay = true in its [[account]])",
    )
}

/// The request's fields: from a JSON or form body, or from the query string when
/// there is no body.
fn fields(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let has_body = body.as_ref().map_or(true, |bytes| !bytes.is_empty());
    if !has_body {
        return form_fields(query.unwrap_or_default().as_bytes());
    }
    let mime = media_type(headers);
    match mime.as_str() {
        "application/json" => json_object(headers, body),
        "application/x-www-form-urlencoded" => {
            let bytes = body.map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "the request body could not be read",
                )
            })?;
            form_fields(&bytes)
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the fields as application/json or application/x-www-form-urlencoded, or in the query string",
        )),
    }
}

/// Form pairs as JSON strings; a field named twice is refused, as in JSON.
fn form_fields(input: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut fields = Map::new();
    for (key, value) in form::pairs(input) {
        let field = known_field(&key);
        let value = String::from_utf8(value).map_err(|_| match field {
            Some(field) => {
                ApiError::field(field, "invalid_field", format!("`{field}` is not UTF-8"))
            }
            None => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "a form value is not UTF-8",
            ),
        })?;
        if fields.contains_key(&key) {
            return Err(ApiError {
                field,
                ..ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "duplicate_field",
                    format!("the request names `{key}` more than once"),
                )
            }
            .with("duplicate", key));
        }
        fields.insert(key, Value::String(value));
    }
    Ok(fields)
}

fn known_field(key: &str) -> Option<&'static str> {
    ["to", "text", "message", "from"]
        .into_iter()
        .find(|field| *field == key)
}

fn parse_relay(fields: &Map<String, Value>) -> Result<RelayRequest, ApiError> {
    let to = number_field(fields, "to")?.ok_or_else(|| missing("to"))?;
    let from = number_field(fields, "from")?;
    let text = match (text_value(fields, "text")?, text_value(fields, "message")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "text",
                "conflicting_fields",
                "give the text as `text` or as `message`, not both",
            ))
        }
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => return Err(missing("text")),
    };
    let text = SmsText::parse(&text)
        .map_err(|e| ApiError::field("text", "invalid_field", format!("`text` {e}")))?;
    Ok(RelayRequest { to, from, text })
}

fn missing(field: &'static str) -> ApiError {
    let also = if field == "text" {
        " (or `message`)"
    } else {
        ""
    };
    ApiError::field(
        field,
        "missing_field",
        format!("`{field}`{also} is required"),
    )
}

/// A string, or a whole JSON number as its digits (a fraction or an exponent is no
/// text anyone wrote); absent is `None`, and null is refused like any other type.
fn text_value(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match fields.get(field) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
            Ok(Some(number.to_string()))
        }
        Some(_) => Err(ApiError::field(
            field,
            "invalid_field",
            format!("`{field}` must be a string or a whole number"),
        )),
    }
}

/// A phone number in international form (`+`, `00` or bare digits); empty is absent.
fn number_field(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<PhoneNumber>, ApiError> {
    let Some(text) = text_value(fields, field)?.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    PhoneNumber::parse_international(&text)
        .map(Some)
        .map_err(|e| ApiError::field(field, "invalid_phone_number", format!("`{field}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        }
    }

    #[test]
    fn privacyidea_numbers_are_read_as_digits() {
        let request =
            parse_relay(&object(json!({"to": 4915112345678u64, "text": 123456}))).unwrap();
        assert_eq!(request.to.as_str(), "+4915112345678");
        assert_eq!(request.text.as_str(), "123456");
        assert!(request.from.is_none());
    }

    #[test]
    fn message_is_an_alias_of_text_but_not_both() {
        let request = parse_relay(&object(json!({"to": "+15551234567", "message": "hi"}))).unwrap();
        assert_eq!(request.text.as_str(), "hi");
        let error = parse_relay(&object(
            json!({"to": "+15551234567", "message": "a", "text": "b"}),
        ))
        .unwrap_err();
        assert_eq!(
            (error.error, error.field),
            ("conflicting_fields", Some("text"))
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (json!({"text": "x"}), "to", "missing_field"),
            (json!({"to": "+15551234567"}), "text", "missing_field"),
            (
                json!({"to": "0151", "text": "x"}),
                "to",
                "invalid_phone_number",
            ),
            (
                json!({"to": "+15551234567", "text": ""}),
                "text",
                "invalid_field",
            ),
            (
                json!({"to": "+15551234567", "text": ["x"]}),
                "text",
                "invalid_field",
            ),
            (
                json!({"to": "+15551234567", "text": "x", "from": "abc"}),
                "from",
                "invalid_phone_number",
            ),
        ];
        for (body, field, error) in cases {
            let refused = parse_relay(&object(body.clone())).unwrap_err();
            assert_eq!(
                (refused.field, refused.error),
                (Some(field), error),
                "{body}"
            );
        }
    }

    #[test]
    fn form_fields_refuse_a_duplicate_and_bad_utf8() {
        let error = form_fields(b"to=1&to=2").unwrap_err();
        assert_eq!((error.error, error.field), ("duplicate_field", Some("to")));
        let error = form_fields(b"to=%2B15551234567&text=%E9").unwrap_err();
        assert_eq!((error.error, error.field), ("invalid_field", Some("text")));
        let fields = form_fields(b"to=%2B15551234567&text=Code+42").unwrap();
        assert_eq!(parse_relay(&fields).unwrap().text.as_str(), "Code 42");
    }
}
