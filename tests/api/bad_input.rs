use serde_json::{json, Value};

use crate::helpers::*;

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("errors are JSON");
    assert_eq!(body["code"], status, "body code matches the status: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, body)
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_with_a_challenge() {
    let app = spawn_app().await;
    let url = format!("{}/2fa/send", app.base);
    let body = send_body("Login", TO);
    let cases = [
        app.client.post(&url).json(&body),
        app.client
            .post(&url)
            .basic_auth(SID, Some("wrong"))
            .json(&body),
        app.client
            .post(&url)
            .basic_auth("ACnobody", Some(TOKEN))
            .json(&body),
        app.client.post(&url).bearer_auth(TOKEN).json(&body),
    ];
    for request in cases {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"sms2fa\""
        );
        let (status, body) = error_of(response).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "unauthorized");
    }
    assert!(
        app.sms.all().is_empty(),
        "nothing may be sent without credentials"
    );
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let app = spawn_app().await;
    let good = send_body("Login", TO);
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (without("service"), "service", "missing_field"),
        (without("from"), "from", "missing_field"),
        (without("to"), "to", "missing_field"),
        (without("body"), "body", "missing_field"),
        (
            with("to", json!("13216549878")),
            "to",
            "invalid_phone_number",
        ),
        (
            with("to", json!("+1 321 654")),
            "to",
            "invalid_phone_number",
        ),
        (
            with("from", json!("sender")),
            "from",
            "invalid_phone_number",
        ),
        (with("to", json!(13216549878u64)), "to", "invalid_field"),
        (
            with("body", json!("Your code")),
            "body",
            "missing_code_placeholder",
        ),
        (with("service", json!("")), "service", "invalid_field"),
    ];
    for (body, field, error) in cases {
        let (status, answer) = error_of(app.post("/2fa/send", &body).await).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["field"], field, "{body} → {answer}");
        assert_eq!(answer["error"], error, "{body} → {answer}");
    }
    let (status, answer) = error_of(
        app.post(
            "/2fa/verify",
            &json!({"service": "Login", "number": "123", "code": "1"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("number")));
    assert!(app.sms.all().is_empty(), "no bad request may send an SMS");
}

#[tokio::test]
async fn malformed_json_wrong_type_and_oversize_bodies() {
    let app = spawn_app().await;
    let url = format!("{}/2fa/send", app.base);
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&url)
            .basic_auth(SID, Some(TOKEN))
            .header("content-type", content_type)
            .body(body)
    };
    let (status, body) = error_of(
        raw("{\"service\": ", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, body) = error_of(raw("[1,2]", "application/json").send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, _) = error_of(
        raw("service=x", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);

    let huge = json!({"service": "Login", "from": FROM, "to": TO, "body": format!("{{code}}{}", "x".repeat(64 * 1024))});
    let (status, body) = error_of(app.post("/2fa/send", &huge).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("body_too_large"))
    );

    // A good request still works afterwards: nothing accepted was lost.
    app.send_code("Login", TO).await;
    assert_eq!(app.nth_sms(1).await.number, TO);
}

#[tokio::test]
async fn a_message_id_that_is_not_utf8_gets_a_json_404() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/2fa/messages/%FF", app.base))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn unknown_route_and_method_get_json_errors() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 404);
    let response = app
        .client
        .get(format!("{}/2fa/send", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 405);
}
