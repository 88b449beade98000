//! Saying so when nothing can send: `/2fa/send` answers `503 no_modem_available` once
//! every modem has been down longer than `[sms] unavailable_after_secs` (or needs an
//! operator), accepts during that time after start, and what it accepted before is
//! sent when a modem returns.

use std::time::Duration;

use serde_json::Value;
use sms2fa::sim::SimOptions;

use crate::helpers::*;

/// Poll `/2fa/send` until it answers `status`; returns the answer.
async fn send_until(app: &TestApp, to: &str, status: u16) -> (reqwest::header::HeaderMap, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.post("/2fa/send", &send_body("Login", to)).await;
        let got = response.status().as_u16();
        let headers = response.headers().clone();
        let body: Value = response.json().await.expect("json");
        if got == status {
            return (headers, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {status}; last {got} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = reqwest::get(format!("{}/readyz", app.base))
        .await
        .expect("readyz");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

#[tokio::test]
async fn a_modem_that_never_registers_turns_sends_away_after_the_grace_and_the_queue_goes_out_when_it_returns(
) {
    let sim = SimOptions {
        registered: false,
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| c.sms.unavailable_after_secs = 2).await;
    // Right after start the modem is still expected: accepted and queued.
    let early = app.send_code("Login", TO).await;
    assert_eq!(early["status"], "queued", "{early}");

    let (headers, body) = send_until(&app, "+13216549879", 503).await;
    assert_eq!(body["error"], "no_modem_available", "{body}");
    assert_eq!(body["code"], 503);
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("sim0") && message.contains("searching"),
        "{message}"
    );
    assert!(
        !message.contains("1321654987"),
        "a number leaked: {message}"
    );
    assert_eq!(headers["retry-after"], "30");
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["reason"].as_str().is_some_and(|r| r.contains("sim0")),
        "{ready}"
    );

    // The network comes back: what was accepted before goes out, and sends are taken.
    handle.set_registered(true);
    let sms = app.nth_sms(1).await;
    assert_eq!(sms.number, TO);
    let (status, body) = app.verify("Login", TO, &code_in(&sms)).await;
    assert_eq!(status, 200, "{body}");
    // (+13216549879 was accepted while the grace lasted: its cooldown runs.)
    let (_, later) = send_until(&app, "+13216549877", 200).await;
    assert_eq!(later["status"], "queued");
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, 200, "{ready}");
    assert!(ready.get("reason").is_none(), "{ready}");
}

#[tokio::test]
async fn a_modem_that_needs_an_operator_turns_sends_away_with_the_reason() {
    let sim = SimOptions {
        pin: Some("2468".into()),
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |c| {
        c.sms.unavailable_after_secs = 1;
        c.modems[0].pin = Some("1111".into());
    })
    .await;
    let (_, body) = send_until(&app, TO, 503).await;
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("sim0: needs an operator") && message.contains("PIN"),
        "{message}"
    );
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, 503);
    assert!(
        ready["reason"]
            .as_str()
            .is_some_and(|r| r.contains("needs an operator")),
        "{ready}"
    );
}

#[tokio::test]
async fn one_ready_modem_of_two_is_enough() {
    let down = SimOptions {
        registered: false,
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![down, SimOptions::default()], |c| {
        c.sms.unavailable_after_secs = 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (i, to) in ["+13216549870", "+13216549871"].into_iter().enumerate() {
        let sent = app.send_code("Login", to).await;
        assert_eq!(sent["status"], "queued", "{sent}");
        assert_eq!(app.nth_sms(i + 1).await.number, to);
    }
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["modems_ready"], serde_json::json!(["sim1"]));
}
