//! What a careless or hostile client on the LAN can do to the daemon: made-up methods
//! and paths, stalled and flooding connections, ambiguous JSON.

use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{spawn_app, spawn_app_with, SID, TOKEN};

/// A request line no route knows: a random non-standard method on a random path (or
/// on a real route, which answers 405).
fn random_request(rng: &mut impl Rng) -> (Method, String) {
    let letters: String = (0..rng.gen_range(3..12))
        .map(|_| char::from(b'A' + rng.gen_range(0..26)))
        .collect();
    let method = Method::from_bytes(format!("X{letters}").as_bytes()).expect("token");
    let path = if rng.gen_bool(0.5) {
        let len = rng.gen_range(1..40);
        let segment: String = (0..len)
            .map(|_| char::from(rng.sample(Alphanumeric)))
            .collect();
        format!("/{segment}/{}", rng.gen::<u32>())
    } else {
        "/2fa/send".to_owned()
    };
    (method, path)
}

#[tokio::test]
async fn random_methods_and_paths_leave_the_metrics_the_same_size() {
    let app = spawn_app().await;
    let scrape = || async {
        app.client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body")
    };
    app.wait_ready().await;
    let mut rng = rand::thread_rng();
    // One request of each kind first, and two scrapes, so every series the flood can
    // touch exists before the baseline is taken.
    let shared = &app;
    let odd = |method: Method, path: String| async move {
        let response = shared
            .client
            .request(method, format!("{}{path}", shared.base))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        assert!(matches!(status, 404 | 405), "{status}");
    };
    for path in ["/nothing/here", "/2fa/send"] {
        odd(
            Method::from_bytes(b"XWARM").expect("token"),
            path.to_owned(),
        )
        .await;
    }
    scrape().await;
    let before = scrape().await;
    for _ in 0..10_000 {
        let (method, path) = random_request(&mut rng);
        odd(method, path).await;
    }
    let after = scrape().await;
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(series(&before), series(&after), "new series:\n{after}");
    // Only counter values changed: 10,000 more requests add a few digits to a few
    // counts and sums.
    let grown = after.len().abs_diff(before.len());
    assert!(grown < 200, "metrics grew by {grown} bytes:\n{after}");
    assert!(after.contains("method=\"other\",route=\"unmatched\",status=\"404\""));
    assert!(after.contains("method=\"other\",route=\"/2fa/send\",status=\"405\""));
}

#[tokio::test]
async fn every_answer_carries_a_request_id_even_for_no_route() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/no/such/route"),
        (Method::from_bytes(b"FOO123").expect("token"), "/2fa/send"),
        (Method::GET, "/healthz"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .expect("request");
        let id = response.headers().get("x-request-id");
        assert!(id.is_some(), "{method} {path}: no X-Request-Id");
        let given = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .header("x-request-id", "caller-42")
            .send()
            .await
            .expect("request");
        assert_eq!(
            given.headers()["x-request-id"],
            "caller-42",
            "{method} {path}"
        );
    }
}

/// Everything the server sends until it closes the connection, or `None` if it is
/// still open after `patience`.
async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// One whole response (head and a `Content-Length` body) from a connection that stays
/// open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {text:?}");
        received.extend_from_slice(&buf[..n]);
    }
}

fn address(app: &crate::helpers::TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

fn timeouts(header: u64, body: u64, idle: u64) -> impl FnOnce(&mut sms2fa::config::Config) {
    move |config| {
        config.http.header_timeout_secs = header;
        config.http.body_timeout_secs = body;
        config.http.idle_timeout_secs = idle;
    }
}

#[tokio::test]
async fn a_stalled_request_head_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(timeouts(1, 30, 30)).await;
    let mut silent = TcpStream::connect(address(&app)).await.expect("connect");
    let mut half = TcpStream::connect(address(&app)).await.expect("connect");
    half.write_all(b"POST /2fa/verify HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .await
        .expect("write");
    let started = Instant::now();
    for stream in [&mut silent, &mut half] {
        let closed = read_until_closed(stream, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "still open after 10 s");
    }
    // Closed by the 1 s header deadline, not by anything slower.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_an_oversize_length_413_at_once() {
    let app = spawn_app_with(timeouts(10, 1, 30)).await;
    let mut stalled = TcpStream::connect(address(&app)).await.expect("connect");
    stalled
        .write_all(
            b"POST /2fa/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"se",
        )
        .await
        .expect("write");
    let answer = read_until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("answered and closed within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"error\":\"body_timeout\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id: "),
        "{answer}"
    );

    let mut huge = TcpStream::connect(address(&app)).await.expect("connect");
    huge.write_all(
        b"POST /2fa/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000000\r\n\r\n",
    )
    .await
    .expect("write");
    // The body timeout here is 1 s: an answer well inside it was given without
    // waiting for any of the body.
    let answer = tokio::time::timeout(Duration::from_millis(900), read_response(&mut huge))
        .await
        .expect("413 before the body timeout");
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("\"error\":\"body_too_large\""), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lives_for_the_idle_timeout_then_closes() {
    let app = spawn_app_with(timeouts(1, 30, 3)).await;
    let mut stream = TcpStream::connect(address(&app)).await.expect("connect");
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.expect("write");
    assert!(read_response(&mut stream)
        .await
        .starts_with("HTTP/1.1 200 "));
    // Idle for longer than the header timeout: still served.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stream.write_all(request).await.expect("write");
    assert!(read_response(&mut stream)
        .await
        .starts_with("HTTP/1.1 200 "));
    let answered = Instant::now();
    let closed = read_until_closed(&mut stream, Duration::from_secs(15)).await;
    assert_eq!(closed.as_deref(), Some(&b""[..]), "closed without a word");
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(2500), "closed after {idle:?}");
}

#[tokio::test]
async fn a_connection_flood_is_refused_while_an_open_client_is_still_served() {
    let app = spawn_app_with(|config| {
        config.http.max_connections = 16;
        config.http.header_timeout_secs = 3;
    })
    .await;
    // The well-behaved client's connection, open before the flood.
    let mut client = TcpStream::connect(address(&app)).await.expect("connect");
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut client)
        .await
        .starts_with("HTTP/1.1 200 "));

    let mut flood = Vec::new();
    for _ in 0..100 {
        flood.push(TcpStream::connect(address(&app)).await.expect("connect"));
    }
    // All at once: the accepted ones must not reach their header deadline meanwhile.
    let mut reads = tokio::task::JoinSet::new();
    for mut stream in flood {
        reads.spawn(async move {
            let answer = read_until_closed(&mut stream, Duration::from_millis(500)).await;
            (stream, answer)
        });
    }
    let mut flood = Vec::new();
    let (mut answered, mut closed, mut open) = (0, 0, 0);
    while let Some(read) = reads.join_next().await {
        let (stream, answer) = read.expect("reader");
        flood.push(stream);
        match answer {
            Some(answer) if answer.is_empty() => closed += 1,
            Some(answer) => {
                let answer = String::from_utf8_lossy(&answer);
                assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
                assert!(answer.contains("too_many_connections"), "{answer}");
                answered += 1;
            }
            None => open += 1,
        }
    }
    assert_eq!(open, 15, "the limit less the client's connection");
    // Up to 64 refusals are answered at once; past that a flood is closed unanswered.
    assert_eq!(answered + closed, 85);
    assert!(answered >= 64, "{answered} answered 503, {closed} closed");

    let verify = format!(
        "POST /2fa/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        basic(),
        VERIFY_BODY.len(),
        VERIFY_BODY
    );
    client.write_all(verify.as_bytes()).await.expect("write");
    let answer = read_response(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(answer.contains("\"error\":\"not_found\""), "{answer}");

    // The flood's connections reach their header deadline; then new ones are served.
    for stream in &mut flood {
        let _ = read_until_closed(stream, Duration::from_secs(10)).await;
    }
    drop(flood);
    let status = reqwest::get(format!("{}/healthz", app.base))
        .await
        .expect("served again")
        .status();
    assert_eq!(status, 200);
}

const VERIFY_BODY: &str = r#"{"service":"Login","number":"+13216549878","code":"123456"}"#;

fn basic() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
}

#[tokio::test]
async fn a_key_named_twice_is_refused_with_duplicate_field() {
    let app = spawn_app().await;
    let body = r#"{"service":"Login","from":"+15550001111","to":"+13216549878","body":"Your {code}","to":"+13216549879"}"#;
    let response = app
        .client
        .post(format!("{}/2fa/send", app.base))
        .basic_auth(SID, Some(TOKEN))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(json["error"], "duplicate_field");
    assert_eq!(json["field"], "to");
    assert!(app.sms.all().is_empty());
}

#[tokio::test]
async fn a_long_body_is_judged_by_its_parts_alone() {
    let app = spawn_app_with(|config| config.sms.max_parts = 10).await;
    // 1,400 GSM characters fit 10 parts (153 each): no character cap refuses them.
    let long = format!("{} {{code}}", "a".repeat(1400));
    let mut body = crate::helpers::send_body("Login", crate::helpers::TO);
    body["body"] = long.into();
    let response = app.post("/2fa/send", &body).await;
    assert_eq!(response.status(), 200);
    // 2,000 characters need 14 parts: refused with the same fields as any other.
    body["body"] = format!("{} {{code}}", "a".repeat(2000)).into();
    let response = app.post("/2fa/send", &body).await;
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(json["error"], "body_too_long");
    assert_eq!(json["field"], "body");
    assert_eq!(json["parts_needed"], 14);
    assert_eq!(json["max_parts"], 10);
}
