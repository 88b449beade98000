//! Webhooks from the daemon's side: which endpoint gets which events, what a payload
//! holds, a 410 that disables an endpoint, and an endpoint that hangs without holding
//! up sends. (Signatures are verified by the `standardwebhooks` library in
//! tests/e2e/webhooks.py, not here.)

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sms2fa::config::WebhookConfig;

use crate::helpers::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Default)]
struct Received {
    /// (webhook-id, payload) of every request.
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// The status to answer; 0: hang (never answer).
    answer: Arc<AtomicU16>,
}

impl Received {
    fn payloads(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }

    async fn wait_for(&self, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..200 {
            let payloads = self.payloads();
            if check(&payloads) {
                return payloads;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: got {:#?}", self.payloads());
    }
}

async fn hook(State(received): State<Received>, headers: HeaderMap, body: String) -> StatusCode {
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    assert!(headers["webhook-signature"]
        .to_str()
        .unwrap()
        .starts_with("v1,"));
    received
        .requests
        .lock()
        .unwrap()
        .push((id, serde_json::from_str(&body).expect("a JSON payload")));
    match received.answer.load(Ordering::Relaxed) {
        0 => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        status => StatusCode::from_u16(status).unwrap(),
    }
}

/// A receiver on port 0 answering `status` (0: hang); its URL.
async fn receiver(status: u16) -> (Received, String) {
    let received = Received::default();
    received.answer.store(status, Ordering::Relaxed);
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (received, url)
}

fn webhook(url: &str, account: Option<&str>, events: Option<&[&str]>) -> WebhookConfig {
    WebhookConfig {
        url: url.into(),
        secret: Some(SECRET.into()),
        secret_file: None,
        account: account.map(str::to_owned),
        events: events.map(|e| e.iter().map(|s| (*s).to_owned()).collect()),
        name: None,
    }
}

#[tokio::test]
async fn an_account_endpoint_gets_its_own_events_without_secrets() {
    let (received, url) = receiver(200).await;
    let app = spawn_app_with(|config| config.webhooks = vec![webhook(&url, Some(SID), None)]).await;
    let sent = app.send_code("Login", TO).await;
    let id = sent["requestID"].as_str().unwrap().to_owned();
    let code = code_in(&app.nth_sms(1).await);
    // Another account's code is not this endpoint's.
    let other = app
        .post_as(
            "/2fa/send",
            OTHER_SID,
            OTHER_TOKEN,
            &send_body("Login", "+13216549000"),
        )
        .await;
    assert_eq!(other.status(), 200);
    assert_eq!(app.verify("Login", TO, &code).await.0, 200);

    let payloads = received
        .wait_for("queued, sent and approved", |p| p.len() >= 3)
        .await;
    let kinds: Vec<&str> = payloads
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["message.queued", "message.sent", "verification.approved"]
    );
    for payload in &payloads {
        assert_eq!(payload["data"]["message_id"], id.as_str(), "{payload}");
        assert_eq!(payload["data"]["service"], "Login");
        assert_eq!(payload["data"]["number"], "+1321****878");
        assert!(payload["timestamp"].is_string());
        let text = payload.to_string();
        assert!(!text.contains(&code) && !text.contains(&TO[1..]), "{text}");
    }
    assert_eq!(payloads[1]["data"]["modem"], "sim0");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received.payloads().len(), 3, "nothing of the other account");
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_metrics_say_so() {
    let (received, url) = receiver(410).await;
    let app = spawn_app_with(|config| {
        config.webhooks = vec![webhook(&url, Some(SID), Some(&["message.queued"]))];
    })
    .await;
    app.send_code("Login", TO).await;
    received.wait_for("one attempt", |p| p.len() == 1).await;
    app.clock.advance(chrono::Duration::seconds(31));
    app.send_code("Login", TO).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received.payloads().len(), 1, "nothing after the 410");
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = metrics
        .lines()
        .find(|l| l.starts_with("sms2fa_webhook_disabled{"))
        .expect("the endpoint's series");
    assert!(label.ends_with(" 1.0"), "{label}");
    assert!(!label.contains(&url), "the URL is not a label: {label}");
    assert!(metrics.contains("sms2fa_webhook_last_status{"), "{metrics}");
}

#[tokio::test]
async fn an_endpoint_that_hangs_holds_up_no_send() {
    let (received, url) = receiver(0).await;
    let app = spawn_app_with(|config| config.webhooks = vec![webhook(&url, Some(SID), None)]).await;
    app.send_code("Login", TO).await;
    received
        .wait_for("the first attempt", |p| !p.is_empty())
        .await;
    // The endpoint now hangs for 10 s; codes go out meanwhile.
    for (i, to) in ["+13216549001", "+13216549002"].into_iter().enumerate() {
        let started = std::time::Instant::now();
        app.send_code("Login", to).await;
        assert_eq!(app.nth_sms(i + 2).await.number, to);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn delivered_and_failed_messages_are_told_with_the_reason() {
    let (received, url) = receiver(200).await;
    let sim = sms2fa::sim::SimOptions {
        delivery_reports: true,
        // The second submission is refused for good (+CMS ERROR: 21).
        cms_errors: std::collections::BTreeMap::from([(2, 21)]),
        ..sms2fa::sim::SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |config| {
        config.modems[0].delivery_reports = true;
        config.webhooks = vec![webhook(
            &url,
            Some(SID),
            Some(&["message.delivered", "message.failed"]),
        )];
    })
    .await;
    let delivered = app.send_code("Login", TO).await;
    app.nth_sms(1).await;
    let failed = app.send_code("Login", "+13216549001").await;
    let payloads = received
        .wait_for("a delivery and a failure", |p| p.len() >= 2)
        .await;
    // The report and the refusal race; each is told once, about its own message.
    let of = |kind: &str| {
        let mine: Vec<&Value> = payloads.iter().filter(|p| p["type"] == kind).collect();
        assert_eq!(mine.len(), 1, "{kind}: {payloads:#?}");
        mine[0].clone()
    };
    assert_eq!(
        of("message.delivered")["data"]["message_id"],
        delivered["requestID"]
    );
    let refused = of("message.failed");
    assert_eq!(refused["data"]["message_id"], failed["requestID"]);
    let reason = refused["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("21"), "{reason}");
}

#[tokio::test]
async fn a_queue_that_stops_moving_is_told_once() {
    let (received, url) = receiver(200).await;
    // A modem that never registers: what is queued stays queued.
    let sim = sms2fa::sim::SimOptions {
        registered: false,
        ..sms2fa::sim::SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |config| {
        config.sms.unavailable_after_secs = 3600;
        config.webhooks = vec![webhook(&url, None, Some(&["queue.stalled"]))];
    })
    .await;
    app.send_code("Login", TO).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(received.payloads().is_empty(), "not stalled yet");
    app.clock.advance(chrono::Duration::seconds(90));
    let payloads = received.wait_for("queue.stalled", |p| !p.is_empty()).await;
    assert_eq!(payloads[0]["type"], "queue.stalled");
    assert_eq!(payloads[0]["data"]["queued"], 1);
    assert!(payloads[0]["data"]["waited_secs"].as_i64().unwrap() >= 60);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        received.payloads().len(),
        1,
        "told once while it stays stalled"
    );
}
