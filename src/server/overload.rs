//! Connections beyond `max_connections`: answered `503` with a JSON body and closed,
//! and said in the log at most once a minute, with how many there were.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

const LOG_EVERY: Duration = Duration::from_secs(60);
/// How long an over-limit connection may take to be told.
const REJECT_WITHIN: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Overload {
    max_connections: usize,
    /// When the last line was logged, and what was refused since.
    since_logged: Mutex<(Option<Instant>, u64)>,
}

impl Overload {
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            since_logged: Mutex::new((None, 0)),
        }
    }

    /// One connection refused.
    pub fn refused(&self) {
        let mut since = self
            .since_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        since.1 += 1;
        if since.0.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            tracing::warn!(
                refused = since.1,
                max_connections = self.max_connections,
                "HTTP connections refused: max_connections reached (this line repeats at most once a minute)"
            );
            *since = (Some(Instant::now()), 0);
        }
    }
}

/// The answer an over-limit connection gets, whatever it asked.
fn answer() -> Vec<u8> {
    let body = r#"{"code":503,"error":"too_many_connections","message":"the server has as many connections open as http.max_connections allows; retry shortly"}"#;
    let request_id = format!("{:016x}", rand::random::<u64>());
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nx-request-id: {request_id}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Tell an over-limit connection and close it. What it sent is read and dropped for a
/// moment after the answer, so that closing with unread bytes does not reset the
/// connection before the client has read the 503.
pub async fn reject(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(REJECT_WITHIN, async {
        stream.write_all(&answer()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_a_whole_http_response_with_a_json_body() {
        let text = String::from_utf8(answer()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "too_many_connections");
        assert!(head.contains("\r\nx-request-id: "));
    }
}
