//! `GET /sms/inbox`: the SMS the modems received, newest first, for accounts with
//! `receive = true`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::twofa::internal;
use super::{ApiError, AppState, Caller};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The query: `since` (RFC 3339, exclusive) and `limit` (1 to 1000).
#[derive(Debug, PartialEq, Eq)]
struct InboxQuery {
    since: Option<DateTime<Utc>>,
    limit: usize,
}

fn parse_query(query: Option<&str>) -> Result<InboxQuery, ApiError> {
    let mut parsed = InboxQuery {
        since: None,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "since" => {
                let since = DateTime::parse_from_rfc3339(&value).map_err(|_| {
                    ApiError::field(
                        "since",
                        "invalid_field",
                        "since must be an RFC 3339 time, e.g. 2026-12-05T10:00:00Z",
                    )
                })?;
                parsed.since = Some(since.with_timezone(&Utc));
            }
            "limit" => {
                parsed.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        ApiError::field(
                            "limit",
                            "invalid_field",
                            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            _ => {}
        }
    }
    Ok(parsed)
}

pub async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    if !caller.may_receive {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "receive_not_allowed",
            "this account may not read received SMS (set receive = true in its [[account]])",
        ));
    }
    let query = parse_query(query.as_deref())?;
    let received = state
        .ops
        .store
        .received(query.since, query.limit)
        .await
        .map_err(|e| internal("read received SMS", &e))?;
    let messages: Vec<Value> = received
        .into_iter()
        .map(|sms| {
            json!({
                "id": sms.id,
                "modem": sms.modem,
                "host": sms.host,
                "sender": sms.sender,
                "text": sms.text,
                "received_at": sms.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "sent_at": sms.sent_at,
                "parts": sms.parts,
                "incomplete": sms.incomplete,
            })
        })
        .collect();
    Ok(Json(json!({
        "code": 200,
        "count": messages.len(),
        "messages": messages,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_read_and_bad_values_name_their_field() {
        assert_eq!(
            parse_query(None).unwrap(),
            InboxQuery {
                since: None,
                limit: 100
            }
        );
        let q = parse_query(Some("since=2026-12-05T10:00:00%2B01:00&limit=5")).unwrap();
        assert_eq!(q.limit, 5);
        assert_eq!(
            q.since,
            DateTime::parse_from_rfc3339("2026-12-05T09:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        for (query, field) in [
            ("since=yesterday", "since"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
        ] {
            assert_eq!(
                parse_query(Some(query)).unwrap_err().field,
                Some(field),
                "{query}"
            );
        }
    }
}
