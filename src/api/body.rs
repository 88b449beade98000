//! Reading a JSON request body into its fields, with an error naming what is wrong.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::ApiError;

/// The body as a JSON object: 415 for another content type, 413 when too large, 400
/// when it is not a JSON object.
pub fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    if media_type(headers) != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON, sent with Content-Type: application/json",
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => super::limits::too_large(),
        status => ApiError::new(
            status,
            "unreadable_body",
            "the request body could not be read",
        ),
    })?;
    let mut duplicate = None;
    let parsed = {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        StrictValue {
            duplicate: &mut duplicate,
            path: String::new(),
        }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
    };
    if let Some(field) = duplicate {
        return Err(ApiError {
            field: field_name(&field),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "duplicate_field",
                format!("the request body names `{field}` more than once"),
            )
        }
        .with("duplicate", field));
    }
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "the request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}

/// The request's media type, lower-cased, without parameters (`""` when absent).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The request fields an error can name (`field` is a `&'static str`); a duplicate
/// key elsewhere is still named, in `duplicate`.
fn field_name(path: &str) -> Option<&'static str> {
    const FIELDS: [&str; 6] = ["service", "from", "to", "body", "number", "code"];
    FIELDS.into_iter().find(|field| *field == path)
}

/// A JSON value in which no object names a key twice. serde_json keeps the last of
/// duplicate keys; a proxy that checks the first `to` and a daemon that sends to the
/// last would disagree, so a duplicate is refused instead. The dotted path of the
/// first duplicate found is left in `duplicate`.
struct StrictValue<'a> {
    duplicate: &'a mut Option<String>,
    path: String,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = StrictValue {
                duplicate: &mut *self.duplicate,
                path: format!("{}[{}]", self.path, items.len()),
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                *self.duplicate = Some(path);
                return Err(de::Error::custom("duplicate key"));
            }
            let seed = StrictValue {
                duplicate: &mut *self.duplicate,
                path,
            };
            let value = map.next_value_seed(seed)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A required string field.
pub fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, ApiError> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ApiError::field(
            field,
            "missing_field",
            format!("`{field}` is required"),
        )),
        Some(_) => Err(ApiError::field(
            field,
            "invalid_field",
            format!("`{field}` must be a string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Map<String, Value>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        json_object(&headers, Ok(Bytes::from(body.to_owned())))
    }

    #[test]
    fn a_key_named_twice_is_refused_and_named() {
        let error =
            parse(r#"{"to":"+15550001111","service":"a","to":"+15550002222"}"#).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.error, "duplicate_field");
        assert_eq!(error.field, Some("to"));
        assert_eq!(error.extra["duplicate"], "to");
    }

    #[test]
    fn nested_duplicates_are_named_by_their_path() {
        let error = parse(r#"{"a":[{"b":1},{"b":2,"b":3}]}"#).unwrap_err();
        assert_eq!(error.error, "duplicate_field");
        assert_eq!(error.field, None);
        assert_eq!(error.extra["duplicate"], "a[1].b");
    }

    #[test]
    fn distinct_keys_numbers_and_nesting_read_as_before() {
        let text = r#"{"s":"x","n":-3,"u":18446744073709551615,"f":1.5,"t":true,"z":null,"a":[1,{"k":"v"}]}"#;
        let strict = parse(text).unwrap();
        let plain: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Value::Object(strict), plain);
    }

    #[test]
    fn malformed_and_trailing_bytes_stay_malformed() {
        assert_eq!(parse(r#"{"a":1} x"#).unwrap_err().error, "malformed_json");
        assert_eq!(parse(r#"{"a":"#).unwrap_err().error, "malformed_json");
        assert_eq!(parse("[1]").unwrap_err().error, "invalid_json");
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        assert_eq!(parse(&deep).unwrap_err().error, "malformed_json");
    }
}
