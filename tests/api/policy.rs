//! The OTP policy and abuse defences, each with a test that fails if the rule goes.

use chrono::Duration;
use serde_json::json;

use crate::helpers::*;

fn no_cooldown(config: &mut sms2fa::config::Config) {
    config.otp.resend_cooldown_secs = 0;
}

#[tokio::test]
async fn guessing_locks_the_number_across_resends_until_unlocked() {
    let app = spawn_app_with(|c| {
        no_cooldown(c);
        c.otp.max_attempts = 2;
        c.otp.max_failures_per_number = 3;
    })
    .await;
    app.send_code("Login", TO).await;
    let first = code_in(&app.nth_sms(1).await);
    for _ in 0..2 {
        assert_eq!(app.verify("Login", TO, &wrong(&first)).await.0, 400);
    }
    let (status, body) = app.verify("Login", TO, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("max_attempts_reached"))
    );

    // A new code gets its own attempts, but the number's failure count carries on.
    app.send_code("Login", TO).await;
    let second = code_in(&app.nth_sms(2).await);
    assert_eq!(app.verify("Login", TO, &wrong(&second)).await.0, 400);
    let (status, body) = app.verify("Login", TO, &second).await;
    assert_eq!(
        status, 429,
        "the third consecutive failure locks the number: {body}"
    );
    assert_eq!(body["error"], "number_locked");
    assert_eq!(body["retry_after"], 3600);

    let response = app.post("/2fa/send", &send_body("Login", TO)).await;
    assert_eq!(response.status(), 429, "a locked number gets no new codes");
    assert_eq!(response.headers()["retry-after"], "3600");

    // Other services of the same account are not locked.
    app.send_code("Payments", TO).await;

    let unlocked = app
        .post("/2fa/unlock", &json!({"service": "Login", "number": TO}))
        .await;
    assert_eq!(unlocked.status(), 200);
    let (status, body) = app.verify("Login", TO, &second).await;
    assert_eq!(
        status, 200,
        "after the unlock the live code verifies: {body}"
    );
}

#[tokio::test]
async fn lock_expires_after_lock_secs() {
    let app = spawn_app_with(|c| {
        c.otp.max_failures_per_number = 1;
        c.otp.lock_secs = 120;
    })
    .await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);
    assert_eq!(app.verify("Login", TO, &wrong(&code)).await.0, 400);
    assert_eq!(app.verify("Login", TO, &code).await.0, 429);
    app.clock.advance(Duration::seconds(120));
    assert_eq!(app.verify("Login", TO, &code).await.0, 200);
}

#[tokio::test]
async fn success_resets_the_failure_count() {
    let app = spawn_app_with(|c| {
        no_cooldown(c);
        c.otp.max_failures_per_number = 2;
    })
    .await;
    for round in 1..=3 {
        app.send_code("Login", TO).await;
        let code = code_in(&app.nth_sms(round).await);
        assert_eq!(
            app.verify("Login", TO, &wrong(&code)).await.0,
            400,
            "round {round}"
        );
        assert_eq!(app.verify("Login", TO, &code).await.0, 200, "round {round}");
    }
}

#[tokio::test]
async fn resend_cooldown_answers_the_exact_retry_after() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    app.clock.advance(Duration::seconds(10));
    let response = app.post("/2fa/send", &send_body("Login", TO)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "20");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "resend_cooldown");
    assert_eq!(body["retry_after"], 20);
    // The cooldown is per number: another number is served at once.
    app.send_code("Login", "+13216549879").await;
    app.clock.advance(Duration::seconds(20));
    app.send_code("Login", TO).await;
}

#[tokio::test]
async fn a_number_gets_at_most_the_daily_cap() {
    let app = spawn_app_with(|c| {
        no_cooldown(c);
        c.otp.max_sends_per_number_per_day = 3;
    })
    .await;
    for _ in 0..3 {
        app.send_code("Login", TO).await;
        app.clock.advance(Duration::hours(1));
    }
    let response = app.post("/2fa/send", &send_body("Other", TO)).await;
    assert_eq!(
        response.status(),
        429,
        "the cap counts every service of the account"
    );
    assert_eq!(response.headers()["retry-after"], (21 * 3600).to_string());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "number_daily_limit");
    app.clock.advance(Duration::hours(21));
    app.send_code("Login", TO).await;
}

#[tokio::test]
async fn an_account_is_rate_limited_per_minute() {
    let app = spawn_app_with(|c| c.otp.max_sends_per_account_per_minute = 2).await;
    app.send_code("Login", "+13216549001").await;
    app.send_code("Login", "+13216549002").await;
    let response = app
        .post("/2fa/send", &send_body("Login", "+13216549003"))
        .await;
    assert_eq!(response.status(), 429);
    // 2 per minute: one every 30 s once the burst of 2 is spent.
    assert_eq!(response.headers()["retry-after"], "30");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "account_rate_limit");
    // Another account has its own budget.
    let other = app
        .post_as(
            "/2fa/send",
            OTHER_SID,
            OTHER_TOKEN,
            &send_body("Login", "+13216549003"),
        )
        .await;
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn destinations_outside_the_allow_list_are_refused() {
    let app = spawn_app_with(|c| c.otp.allowed_prefixes = vec!["+44".into(), "+1321".into()]).await;
    let response = app
        .post("/2fa/send", &send_body("Login", "+4915112345678"))
        .await;
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["field"].as_str()),
        (Some("destination_not_allowed"), Some("to"))
    );
    app.send_code("Login", TO).await;
    app.send_code("Login", "+447700900123").await;
    assert_eq!(
        app.sms
            .wait_for(2, std::time::Duration::from_secs(20))
            .await
            .len(),
        2
    );
    assert!(app
        .sms
        .all()
        .iter()
        .all(|sms| sms.number != "+4915112345678"));
}

#[tokio::test]
async fn limits_survive_a_restart() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    let app = app.restart(|_| {}).await;
    let response = app.post("/2fa/send", &send_body("Login", TO)).await;
    assert_eq!(
        response.status(),
        429,
        "the cooldown is remembered across a restart"
    );
}

#[tokio::test]
async fn codes_expire_and_expired_looks_like_unknown() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);
    app.clock.advance(Duration::seconds(600));
    let (expired_status, expired) = app.verify("Login", TO, &code).await;
    let (unknown_status, unknown) = app.verify("Login", "+13216549000", &code).await;
    assert_eq!(expired_status, 404);
    assert_eq!(unknown_status, 404);
    assert_eq!(
        expired, unknown,
        "an expired code and an unknown number answer alike"
    );
}

#[tokio::test]
async fn used_code_answers_like_an_unknown_number() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);
    assert_eq!(app.verify("Login", TO, &code).await.0, 200);
    let used = app.verify("Login", TO, &code).await;
    let unknown = app.verify("Login", "+13216549000", &code).await;
    assert_eq!(used, unknown);
}

#[tokio::test]
async fn cancel_kills_the_live_code() {
    let app = spawn_app().await;
    app.send_code("Login", TO).await;
    let code = code_in(&app.nth_sms(1).await);
    let cancel = json!({"service": "Login", "number": TO});
    let response = app
        .post_as("/2fa/cancel", OTHER_SID, OTHER_TOKEN, &cancel)
        .await;
    assert_eq!(response.status(), 404, "another account cannot cancel it");
    let response = app.post("/2fa/cancel", &cancel).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.verify("Login", TO, &code).await.0, 404);
    assert_eq!(app.post("/2fa/cancel", &cancel).await.status(), 404);
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer_and_sends_once() {
    let app = spawn_app_with(no_cooldown).await;
    let send = |key: &'static str, body: serde_json::Value| {
        app.client
            .post(format!("{}/2fa/send", app.base))
            .basic_auth(SID, Some(TOKEN))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send("order-42", send_body("Login", TO)).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send("order-42", send_body("Login", TO)).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);

    let other_body = send("order-42", send_body("Login", "+13216549879"))
        .await
        .unwrap();
    assert_eq!(other_body.status(), 422);

    app.nth_sms(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.sms.all().len(), 1, "the replay sent nothing");

    // The key is account-scoped, and forgotten after 24 hours.
    let response = app
        .client
        .post(format!("{}/2fa/send", app.base))
        .basic_auth(OTHER_SID, Some(OTHER_TOKEN))
        .header("idempotency-key", "order-42")
        .json(&send_body("Login", TO))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("idempotent-replayed").is_none());
    app.clock.advance(Duration::hours(24));
    let fresh = send("order-42", send_body("Login", TO)).await.unwrap();
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    assert_ne!(
        fresh.json::<serde_json::Value>().await.unwrap()["requestID"],
        first["requestID"]
    );
}
