//! `GET|POST /cgi-bin/sendsms`: Kannel's send interface, for the clients that speak
//! nothing else (Airlock IAM's "Kannel sendsms" plugin, monitoring scripts, old
//! PBXs). Kannel's parameter names — `username` and `password` (an account's SID and
//! token), `to`, `text`, `from`, `charset`, `coding` — and its answers: a status and
//! one line of plain text, `202 0: Accepted for delivery` when queued. A refusal
//! Kannel has no line for gets a line of the same style naming the cause; every
//! answer also names sms2fa's error code in `X-Sms2fa-Error` and, when queued, the
//! message in `X-Sms2fa-Request-Id` (its status is at `/2fa/messages/{id}`).
//!
//! A POST carries the parameters as a form body, or the text as a `text/plain` body
//! with the other parameters in the query string (as Kannel takes it).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::basic_credentials;
use super::body::media_type;
use super::{form, AppState};
use crate::otp::SendRefusal;
use crate::service::{Outgoing, RelayRequest, SendError};
use crate::sms::{PhoneNumber, SmsText};

pub async fn sendsms(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match accept(&state, &headers, query.as_deref(), body).await {
        Ok(message_id) => {
            let mut response = answer(StatusCode::ACCEPTED, "0: Accepted for delivery", None);
            if let Ok(id) = HeaderValue::from_str(&message_id) {
                response.headers_mut().insert("x-sms2fa-request-id", id);
            }
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// A refusal: status, Kannel's line, sms2fa's error code, and `Retry-After` seconds.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    line: String,
    error: &'static str,
    retry_after: Option<i64>,
}

impl Refusal {
    fn new(status: StatusCode, line: impl Into<String>, error: &'static str) -> Self {
        Self {
            status,
            line: line.into(),
            error,
            retry_after: None,
        }
    }

    fn args(line: impl Into<String>, error: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, line, error)
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization failed for sendsms",
            "unauthorized",
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = answer(self.status, &self.line, Some(self.error));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn answer(status: StatusCode, line: &str, error: Option<&'static str>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        line.to_owned(),
    )
        .into_response();
    if let Some(error) = error {
        response
            .headers_mut()
            .insert("x-sms2fa-error", HeaderValue::from_static(error));
        // For the request metrics, which count refusals by reason.
        response.extensions_mut().insert(super::ErrorCode(error));
    }
    response
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, Refusal> {
    let params = Params::read(headers, query, body)?;
    let credentials = match (params.get("username"), params.get("password")) {
        (Some(sid), Some(token)) => Some((utf8(sid), utf8(token))),
        _ => basic_credentials(headers).map(|(sid, token)| (Some(sid), Some(token))),
    };
    let caller = match credentials {
        Some((Some(sid), Some(token))) => state.accounts.current().check(&sid, &token),
        _ => None,
    }
    .ok_or_else(Refusal::unauthorized)?;
    if !caller.may_relay {
        tracing::info!(account = %caller.sid, "sendsms refused: the account has no relay = true");
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Authorization failed for sendsms (this account may not relay)",
            "relay_not_allowed",
        ));
    }
    let request = params.relay_request()?;
    let accepted = state
        .twofa
        .submit(&caller.sid, None, &Outgoing::Text(request))
        .await
        .map_err(refused)?;
    Ok(accepted.issued.message_id)
}

fn utf8(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

/// The parameters this route reads.
const KNOWN: [&str; 7] = [
    "username", "password", "to", "text", "from", "charset", "coding",
];

/// The request's parameters: query string, then a form body (or a `text/plain` body as
/// the text).
struct Params(Vec<(String, Vec<u8>)>);

impl Params {
    fn read(
        headers: &HeaderMap,
        query: Option<&str>,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Self, Refusal> {
        let mut pairs = form::pairs(query.unwrap_or_default().as_bytes());
        let body = body
            .map_err(|_| Refusal::args("Charset or body misformed, rejected", "unreadable_body"))?;
        if !body.is_empty() {
            let mime = media_type(headers);
            match mime.as_str() {
                "application/x-www-form-urlencoded" => pairs.extend(form::pairs(&body)),
                "text/plain" | "" => pairs.push(("text".to_owned(), body.to_vec())),
                _ => {
                    return Err(Refusal::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "Unsupported content-type, rejected",
                        "unsupported_media_type",
                    ))
                }
            }
        }
        // Kannel takes the first of a repeated parameter; a proxy checking one and a
        // gateway sending another would disagree, so a repeat is refused instead.
        let mut seen = std::collections::HashSet::new();
        if let Some((key, _)) = pairs.iter().find(|(key, _)| !seen.insert(key.as_str())) {
            // Named only when it is one of Kannel's: the line echoes nothing else.
            let name = KNOWN
                .iter()
                .find(|known| **known == key.as_str())
                .map_or("a parameter".to_owned(), |known| {
                    format!("Parameter {known}")
                });
            return Err(Refusal::args(
                format!("{name} given twice, rejected"),
                "duplicate_field",
            ));
        }
        Ok(Self(pairs))
    }

    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    fn relay_request(&self) -> Result<RelayRequest, Refusal> {
        let to = self.get("to").filter(|to| !to.is_empty()).ok_or_else(|| {
            Refusal::args(
                "Empty receiver number not allowed, rejected",
                "missing_field",
            )
        })?;
        let to = number(to).ok_or_else(|| {
            Refusal::args(
                "Invalid receiver number, rejected (international digits, with + or 00 or bare)",
                "invalid_phone_number",
            )
        })?;
        let from = match self.get("from").filter(|from| !from.is_empty()) {
            None => None,
            Some(from) => Some(number(from).ok_or_else(|| {
                Refusal::args("Invalid sender number, rejected", "invalid_phone_number")
            })?),
        };
        let coding = self.get("coding").map(utf8).unwrap_or(Some("0".into()));
        let unicode = match coding.as_deref() {
            Some("0" | "") => false,
            Some("2") => true,
            Some("1") => {
                return Err(Refusal::args(
                    "Coding 1 (8-bit data) is not supported, rejected",
                    "invalid_field",
                ))
            }
            _ => return Err(Refusal::args("Invalid coding, rejected", "invalid_field")),
        };
        let charset = self.get("charset").and_then(utf8);
        let raw = self.get("text").unwrap_or_default();
        let text = decode_text(raw, charset.as_deref(), unicode)
            .ok_or_else(|| Refusal::args("Charset or body misformed, rejected", "invalid_field"))?;
        let text = SmsText::parse(&text)
            .map_err(|_| Refusal::args("Empty text not allowed, rejected", "missing_field"))?;
        Ok(RelayRequest { to, from, text })
    }
}

fn number(bytes: &[u8]) -> Option<PhoneNumber> {
    PhoneNumber::parse_international(std::str::from_utf8(bytes).ok()?).ok()
}

/// The text in its `charset`: Kannel's default is UTF-8, or UTF-16BE with `coding=2`.
/// The SMS encoding is then chosen from the text as for every other route.
fn decode_text(raw: &[u8], charset: Option<&str>, unicode: bool) -> Option<String> {
    let charset = charset
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| if unicode { "UTF-16BE" } else { "UTF-8" }.to_owned());
    match charset.as_str() {
        "UTF-8" | "UTF8" => String::from_utf8(raw.to_vec()).ok(),
        "ISO-8859-1" | "ISO8859-1" | "LATIN1" => Some(raw.iter().map(|&b| char::from(b)).collect()),
        "UTF-16BE" | "UCS-2" | "UCS-2BE" | "UTF-16" => {
            if raw.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn refused(error: SendError) -> Refusal {
    let retry = |mut refusal: Refusal, after: chrono::Duration| {
        let millis = after.num_milliseconds().max(0);
        refusal.retry_after = Some(((millis + 999) / 1000).max(1));
        refusal
    };
    match error {
        SendError::NoModemAvailable(reason) => retry(
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Sending failed. No modem can send now: {reason}"),
                "no_modem_available",
            ),
            chrono::Duration::seconds(30),
        ),
        SendError::DestinationNotAllowed => Refusal::new(
            StatusCode::FORBIDDEN,
            "Number(s) has/have been denied by white- and/or black-lists.",
            "destination_not_allowed",
        ),
        SendError::BodyTooLong {
            parts_needed,
            max_parts,
        } => Refusal::args(
            format!("Message too long ({parts_needed} parts, at most {max_parts}), rejected"),
            "body_too_long",
        ),
        SendError::Limited(refusal) => {
            let (line, error) = match refusal {
                SendRefusal::NumberDailyCap { .. } => (
                    "Sending failed. This number has received the most SMS allowed in 24 hours",
                    "number_daily_limit",
                ),
                SendRefusal::AccountRate { .. } => (
                    "Sending failed. This account has sent the most SMS allowed per minute",
                    "account_rate_limit",
                ),
                // A relay has no cooldown and no code, so no lock applies to it.
                SendRefusal::Cooldown { .. } | SendRefusal::NumberLocked { .. } => (
                    "Sending failed. Too many SMS to this number",
                    "resend_cooldown",
                ),
            };
            retry(
                Refusal::new(StatusCode::TOO_MANY_REQUESTS, line, error),
                refusal.retry_after(),
            )
        }
        SendError::KeyInFlight | SendError::KeyReused => {
            // Kannel's route takes no Idempotency-Key.
            Refusal::args("Wrong sendsms args, rejected", "invalid_idempotency_key")
        }
        SendError::Store(e) => {
            let unavailable = e.is_unavailable();
            tracing::warn!(error = %e, "sendsms could not queue an SMS");
            let mut refusal = Refusal::new(
                if unavailable {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                },
                "Sending failed. The message could not be stored; nothing was sent",
                if unavailable {
                    "storage_unavailable"
                } else {
                    "internal_error"
                },
            );
            if unavailable {
                refusal.retry_after = Some(2);
            }
            refusal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::read(&HeaderMap::new(), Some(query), Ok(Bytes::new())).unwrap()
    }

    #[test]
    fn kannel_charsets_and_codings_read_the_same_text() {
        for query in [
            "to=4915112345678&text=Caf%C3%A9+%E2%82%AC",
            "to=4915112345678&text=Caf%C3%A9+%E2%82%AC&charset=UTF-8&coding=0",
            "to=4915112345678&text=%00C%00a%00f%00%E9%00+%20%AC&coding=2",
            "to=004915112345678&text=%00C%00a%00f%00%E9%00+%20%AC&charset=UCS-2",
        ] {
            let request = params(query).relay_request().unwrap();
            assert_eq!(request.text.as_str(), "Café €", "{query}");
            assert_eq!(request.to.as_str(), "+4915112345678");
        }
        let latin1 = params("to=%2B4915112345678&text=Caf%E9&charset=ISO-8859-1");
        assert_eq!(latin1.relay_request().unwrap().text.as_str(), "Café");
    }

    #[test]
    fn kannel_lines_for_bad_arguments() {
        let line = |query: &str| params(query).relay_request().unwrap_err().line;
        assert_eq!(
            line("text=x"),
            "Empty receiver number not allowed, rejected"
        );
        assert_eq!(
            line("to=&text=x"),
            "Empty receiver number not allowed, rejected"
        );
        assert!(line("to=0151&text=x").starts_with("Invalid receiver number"));
        assert_eq!(line("to=4915112345678"), "Empty text not allowed, rejected");
        assert_eq!(
            line("to=4915112345678&text=%E9"),
            "Charset or body misformed, rejected"
        );
        assert_eq!(
            line("to=4915112345678&text=x&charset=EBCDIC"),
            "Charset or body misformed, rejected"
        );
        assert!(line("to=4915112345678&text=x&coding=1").contains("not supported"));
        let twice = Params::read(&HeaderMap::new(), Some("to=1&to=2"), Ok(Bytes::new()));
        let twice = twice.err().unwrap();
        assert_eq!(
            (twice.error, twice.line.as_str()),
            ("duplicate_field", "Parameter to given twice, rejected")
        );
        let odd = Params::read(&HeaderMap::new(), Some("x%0Ay=1&x%0Ay=2"), Ok(Bytes::new()));
        assert_eq!(
            odd.err().unwrap().line,
            "a parameter given twice, rejected",
            "a client's bytes are not echoed"
        );
    }

    #[test]
    fn a_plain_text_body_is_the_text() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let params = Params::read(
            &headers,
            Some("to=4915112345678"),
            Ok(Bytes::from_static(b"Your code 123456")),
        )
        .unwrap();
        assert_eq!(
            params.relay_request().unwrap().text.as_str(),
            "Your code 123456"
        );
    }
}
