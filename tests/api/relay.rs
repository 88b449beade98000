//! `/sms/send` and `/cgi-bin/sendsms`: texts an account wrote itself, queued and sent
//! under the same rules as codes, for relay accounts only.

use serde_json::{json, Value};

use crate::helpers::*;

/// The daemon with `SID` allowed to relay and `OTHER_SID` not.
async fn relay_app(adjust: impl FnOnce(&mut sms2fa::config::Config)) -> TestApp {
    spawn_app_with(|config| {
        config.accounts[0].relay = true;
        adjust(config);
    })
    .await
}

async fn status_of(app: &TestApp, id: &str) -> Value {
    let response = app
        .client
        .get(format!("{}/2fa/messages/{id}", app.base))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_json_relay_sends_the_text_as_written_and_is_followed_like_a_code() {
    let app = relay_app(|_| {}).await;
    // privacyIDEA sends an all-digit text, and a number stored without +, as numbers.
    let response = app
        .post("/sms/send", &json!({"to": 13216549878u64, "text": 402931}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], 200);
    assert_eq!(body["message"], "OK");
    assert_eq!(body["status"], "queued");
    let id = body["requestID"].as_str().expect("requestID").to_owned();
    assert!(id.starts_with("SM"));
    assert!(body.get("expires_at").is_none(), "{body}");

    let sms = app.nth_sms(1).await;
    assert_eq!((sms.number.as_str(), sms.text.as_str()), (TO, "402931"));

    // Curity-style {"to","message"} with a Unicode text.
    let response = app
        .post(
            "/sms/send",
            &json!({"to": TO, "message": "Ihr Code: 77 – grüße"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.nth_sms(2).await.text, "Ihr Code: 77 – grüße");

    let mut record = status_of(&app, &id).await;
    for _ in 0..50 {
        if record["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        record = status_of(&app, &id).await;
    }
    assert_eq!(record["status"], "sent", "{record}");
    assert_eq!(record["service"], "relay");
    assert_eq!(record["to"], "+1321****878");
    assert!(!record.to_string().contains("402931"), "{record}");
}

#[tokio::test]
async fn form_and_query_string_requests_are_relayed() {
    let app = relay_app(|_| {}).await;
    let form = app
        .client
        .post(format!("{}/sms/send", app.base))
        .basic_auth(SID, Some(TOKEN))
        .form(&[("to", TO), ("text", "from a form & more")])
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 200);
    assert_eq!(app.nth_sms(1).await.text, "from a form & more");

    let get = app
        .client
        .get(format!("{}/sms/send", app.base))
        .basic_auth(SID, Some(TOKEN))
        .query(&[("to", "0013216549878"), ("message", "by GET")])
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), 200);
    let sms = app.nth_sms(2).await;
    assert_eq!((sms.number.as_str(), sms.text.as_str()), (TO, "by GET"));

    let other = app
        .client
        .post(format!("{}/sms/send", app.base))
        .basic_auth(SID, Some(TOKEN))
        .header("content-type", "text/xml")
        .body("<sms/>")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 415);
}

#[tokio::test]
async fn an_account_without_relay_is_refused_on_both_routes() {
    let app = relay_app(|_| {}).await;
    let response = app
        .post_as(
            "/sms/send",
            OTHER_SID,
            OTHER_TOKEN,
            &json!({"to": TO, "text": "x"}),
        )
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "relay_not_allowed");

    let kannel = app
        .client
        .get(format!("{}/cgi-bin/sendsms", app.base))
        .query(&[
            ("username", OTHER_SID),
            ("password", OTHER_TOKEN),
            ("to", TO),
            ("text", "x"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(kannel.status(), 403);
    assert_eq!(kannel.headers()["x-sms2fa-error"], "relay_not_allowed");
    assert!(kannel
        .text()
        .await
        .unwrap()
        .starts_with("Authorization failed for sendsms"));
    // Nothing was queued.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.sms.all().is_empty());
}

#[tokio::test]
async fn kannel_clients_get_kannels_answers() {
    let app = relay_app(|_| {}).await;
    let get = |params: Vec<(&'static str, String)>| {
        app.client
            .get(format!("{}/cgi-bin/sendsms", app.base))
            .query(&params)
            .send()
    };
    let accepted = get(vec![
        ("username", SID.into()),
        ("password", TOKEN.into()),
        ("to", "13216549878".into()),
        ("text", "Kannel says hi".into()),
    ])
    .await
    .expect("request");
    assert_eq!(accepted.status(), 202);
    let id = accepted.headers()["x-sms2fa-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(accepted.text().await.unwrap(), "0: Accepted for delivery");
    let sms = app.nth_sms(1).await;
    assert_eq!(
        (sms.number.as_str(), sms.text.as_str()),
        (TO, "Kannel says hi")
    );
    assert_eq!(status_of(&app, &id).await["service"], "relay");

    let wrong = get(vec![
        ("username", SID.into()),
        ("password", "nope".into()),
        ("to", TO.into()),
        ("text", "x".into()),
    ])
    .await
    .expect("request");
    assert_eq!(wrong.status(), 403);
    assert_eq!(
        wrong.text().await.unwrap(),
        "Authorization failed for sendsms"
    );

    let no_to = get(vec![
        ("username", SID.into()),
        ("password", TOKEN.into()),
        ("text", "x".into()),
    ])
    .await
    .expect("request");
    assert_eq!(no_to.status(), 400);
    assert_eq!(
        no_to.text().await.unwrap(),
        "Empty receiver number not allowed, rejected"
    );

    // A form POST in UCS-2, as a Kannel client sends Unicode.
    let ucs2: Vec<u8> = "Код 5".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let encoded: String = ucs2.iter().map(|b| format!("%{b:02X}")).collect();
    let form = format!("username={SID}&password={TOKEN}&to=%2B13216549878&coding=2&text={encoded}");
    let posted = app
        .client
        .post(format!("{}/cgi-bin/sendsms", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("request");
    assert_eq!(posted.status(), 202);
    assert_eq!(app.nth_sms(2).await.text, "Код 5");
}

#[tokio::test]
async fn relayed_texts_keep_the_prefix_rule_the_daily_cap_and_the_parts_limit() {
    let app = relay_app(|config| {
        config.otp.allowed_prefixes = vec!["+1321".into()];
        config.otp.max_sends_per_number_per_day = 2;
        config.sms.max_parts = 1;
    })
    .await;
    let relay = |to: &'static str, text: String| {
        let app = &app;
        async move {
            let response = app
                .post("/sms/send", &json!({"to": to, "text": text}))
                .await;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = response.json().await.expect("json");
            (status, body, retry_after)
        }
    };
    let (status, body, _) = relay("+447700900123", "x".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("destination_not_allowed"))
    );
    let (status, body, _) = relay(TO, "y".repeat(161)).await;
    assert_eq!(status, 400);
    assert_eq!(
        (body["error"].as_str(), body["field"].as_str()),
        (Some("body_too_long"), Some("text"))
    );
    assert_eq!(body["parts_needed"], 2);

    // No cooldown: two texts back to back go; the third meets the daily cap, which a
    // code to the same number shares.
    assert_eq!(relay(TO, "one".into()).await.0, 200);
    assert_eq!(relay(TO, "two".into()).await.0, 200);
    let (status, body, retry_after) = relay(TO, "three".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("number_daily_limit"))
    );
    assert!(retry_after.is_some());
    let code = app.post("/2fa/send", &send_body("Login", TO)).await;
    assert_eq!(code.status(), 429);
}

#[tokio::test]
async fn an_idempotency_key_replays_a_relay_and_is_not_shared_with_codes() {
    let app = relay_app(|_| {}).await;
    let keyed = |path: &'static str, body: Value| {
        app.client
            .post(format!("{}{path}", app.base))
            .basic_auth(SID, Some(TOKEN))
            .header("idempotency-key", "order-17")
            .json(&body)
            .send()
    };
    let first = keyed("/sms/send", json!({"to": TO, "text": "once"}))
        .await
        .expect("request");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = keyed("/sms/send", json!({"to": TO, "text": "once"}))
        .await
        .expect("request");
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    let code = keyed("/2fa/send", send_body("Login", TO))
        .await
        .expect("request");
    assert_eq!(code.status(), 422);
    assert_eq!(app.nth_sms(1).await.text, "once");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.sms.all().len(), 1, "the replay sent nothing");
}
