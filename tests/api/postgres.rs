//! The daemon on the PostgreSQL backend: the whole API path against a real server,
//! the database going away and coming back, and no number in the database's files.

use std::time::Duration;

use serde_json::Value;
use sms2fa::sim::SimOptions;

use crate::at_rest::{assert_no_number_in, cycle_limits, cycle_modem, files, full_cycle};
use crate::helpers::*;

#[tokio::test]
async fn send_deliver_and_verify_on_postgres() {
    let app = spawn_app_on_postgres(vec![SimOptions::default()], |_| {}).await;
    let sent = app.send_code("Login", TO).await;
    let id = sent["requestID"].as_str().expect("id").to_owned();
    let sms = app.nth_sms(1).await;
    assert_eq!(sms.number, TO);
    let message = app.await_status(&id, "sent").await;
    let statuses: Vec<&str> = message["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|t| t["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["queued", "sending", "sent"]);
    let (status, body) = app.verify("Login", TO, &code_in(&sms)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")));
    let (status, _) = app.verify("Login", TO, &code_in(&sms)).await;
    assert_eq!(status, 404, "single use");
}

#[tokio::test]
async fn a_full_cycle_on_postgres_leaves_no_number_in_the_database_files() {
    let app = spawn_app_on_postgres(vec![cycle_modem()], cycle_limits).await;
    full_cycle(&app).await;
    let state = app.shut_down().await;
    // Everything written so far goes to the data files (not only the WAL).
    let server = crate::postgres_server::server();
    let admin = crate::postgres_server::admin(server).await;
    admin.batch_execute("CHECKPOINT").await.expect("checkpoint");
    let mut scanned = files(&state.path().join("state"));
    let data = server
        .data_dir
        .as_ref()
        .expect("the tests' own cluster (not SMS2FA_TEST_DATABASE_URL)");
    let database = files(data);
    assert!(
        database
            .iter()
            .any(|f| f.to_string_lossy().contains("pg_wal")),
        "the scan covers the WAL"
    );
    scanned.extend(database);
    if let Some(log) = data.parent().map(|root| root.join("server.log")) {
        scanned.push(log);
    }
    assert_no_number_in(&scanned);
}

async fn status_and_body(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (status, retry_after, response.json().await.expect("json"))
}

#[tokio::test]
async fn the_database_away_answers_503_and_loses_nothing_it_accepted() {
    let app = spawn_app_on_postgres(vec![SimOptions::default()], |_| {}).await;
    app.wait_ready().await;
    let proxy = app.proxy.clone().expect("proxy");
    // Accepted before the outage, sent after it.
    let accepted = app.send_code("Login", TO).await;
    let first_sms = app.nth_sms(1).await;

    proxy.cut();
    let started = std::time::Instant::now();
    let (status, retry_after, body) = status_and_body(
        app.post("/2fa/send", &send_body("Login", "+13215550002"))
            .await,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "storage_unavailable");
    assert!(retry_after.is_some(), "Retry-After on a 503");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered, not hung: {:?}",
        started.elapsed()
    );
    let (status, _, body) = status_and_body(
        app.post(
            "/2fa/verify",
            &serde_json::json!({"service": "Login", "number": TO, "code": code_in(&first_sms)}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("storage_unavailable"))
    );
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["store"], "failing", "{ready}");

    // Back: the refused send can be made now, and the accepted code still verifies.
    proxy.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let resent = loop {
        let response = app
            .post("/2fa/send", &send_body("Login", "+13215550002"))
            .await;
        if response.status() == 200 {
            break response.json::<Value>().await.expect("json");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon does not recover: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let second_sms = app.nth_sms(2).await;
    assert_eq!(second_sms.number, "+13215550002");
    app.await_status(resent["requestID"].as_str().expect("id"), "sent")
        .await;
    app.await_status(accepted["requestID"].as_str().expect("id"), "sent")
        .await;
    let (status, body) = app.verify("Login", TO, &code_in(&first_sms)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_message_queued_while_the_dispatcher_cannot_reach_the_database_goes_out_after() {
    // Cut just after the send is accepted: the dispatcher meets the outage when it
    // tries to claim, backs off, and sends once the database is back.
    let app = spawn_app_on_postgres(vec![SimOptions::default()], |_| {}).await;
    app.wait_ready().await;
    let proxy = app.proxy.clone().expect("proxy");
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    let accepted = app.send_code("Login", TO).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    let sms = app.nth_sms(1).await;
    assert_eq!(sms.number, TO);
    app.await_status(accepted["requestID"].as_str().expect("id"), "sent")
        .await;
}
