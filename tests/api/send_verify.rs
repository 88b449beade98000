use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn sent_code_arrives_by_sms_and_verifies_once() {
    let app = spawn_app().await;
    let sent = app.send_code("Login", TO).await;
    assert_eq!(sent["code"], 200);
    assert_eq!(sent["message"], "OK");
    assert_eq!(sent["status"], "queued");
    assert!(sent["requestID"].as_str().unwrap().starts_with("SM"));
    let expires =
        chrono::DateTime::parse_from_rfc3339(sent["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        ttl > chrono::Duration::seconds(590) && ttl <= chrono::Duration::seconds(600),
        "{ttl}"
    );

    let sms = app.nth_sms(1).await;
    assert_eq!(sms.number, TO);
    let code = code_in(&sms);

    let (status, body) = app.verify("Login", TO, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"code": 200, "message": "OK", "status": "approved", "verified": true})
    );

    let (status, body) = app.verify("Login", TO, &code).await;
    assert_eq!(status, 404, "a used code must not verify again: {body}");
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn wrong_code_counts_down_then_locks_the_code() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);
    for remaining in (0..5).rev() {
        let (status, body) = app.verify("Login", TO, &wrong(&code)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_code");
        assert_eq!(body["field"], "code");
        assert_eq!(body["verified"], false);
        assert_eq!(body["attempts_remaining"], remaining);
    }
    let (status, body) = app.verify("Login", TO, &code).await;
    assert_eq!(
        status, 429,
        "the right code after max_attempts must not pass: {body}"
    );
    assert_eq!(body["error"], "max_attempts_reached");
}

#[tokio::test]
async fn unknown_number_is_not_found() {
    let app = spawn_app().await;
    let (status, body) = app.verify("Login", TO, "123456").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn code_is_scoped_to_account_and_service() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);

    let (status, _) = app
        .verify_as(OTHER_SID, OTHER_TOKEN, "Login", TO, &code)
        .await;
    assert_eq!(status, 404, "another account must not see the code");
    let (status, _) = app.verify("Payments", TO, &code).await;
    assert_eq!(status, 404, "another service must not see the code");

    let (status, body) = app.verify("Login", TO, &code).await;
    assert_eq!(status, 200, "the owner still verifies: {body}");
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one() {
    let app = spawn_app_with(|c| c.otp.resend_cooldown_secs = 0).await;
    app.send_code("Login", TO).await;
    let first = code_in(&app.nth_sms(1).await);
    app.send_code("Login", TO).await;
    let second = code_in(&app.nth_sms(2).await);
    if first != second {
        let (status, _) = app.verify("Login", TO, &first).await;
        assert_eq!(status, 400, "the replaced code must not verify");
    }
    let (status, _) = app.verify("Login", TO, &second).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn message_status_shows_it_sent() {
    let app = spawn_app().await;
    let sent = app.send_code("Login", TO).await;
    app.nth_sms(1).await;
    let id = sent["requestID"].as_str().unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        let response = app
            .client
            .get(format!("{}/2fa/messages/{id}", app.base))
            .basic_auth(SID, Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        status = response.json().await.unwrap();
        if status["status"] == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "sent", "{status}");
    let steps: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["queued", "sending", "sent"]);
    assert_eq!(status["to"], "+1321****878");
    assert!(
        !status.to_string().contains(TO),
        "history must not hold the full number"
    );

    let other = app
        .client
        .get(format!("{}/2fa/messages/{id}", app.base))
        .basic_auth(OTHER_SID, Some(OTHER_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "another account must not see the message"
    );
}
