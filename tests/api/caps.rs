//! Per-SIM caps and pacing: a modem at `max_sms_per_day` takes no work (another modem
//! does, and with none left `/2fa/send` says `no_modem_available`), the count survives
//! a restart, and `min_interval_ms` spaces two sends.

use std::time::Duration;

use serde_json::Value;
use sms2fa::sim::SimOptions;

use crate::helpers::*;

async fn modems(app: &TestApp) -> Value {
    reqwest::Client::new()
        .get(format!("{}/modems", app.base))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .expect("modems")
        .json()
        .await
        .expect("json")
}

async fn metrics(app: &TestApp) -> String {
    reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_modem_at_its_daily_cap_takes_no_work_and_the_count_survives_a_restart() {
    let capped = |c: &mut sms2fa::config::Config| {
        c.modems[0].max_sms_per_day = Some(2);
        c.sms.unavailable_after_secs = 1;
    };
    let app = spawn_app_with(capped).await;
    app.wait_ready().await;
    for (i, to) in ["+13216549801", "+13216549802"].into_iter().enumerate() {
        app.send_code("Login", to).await;
        assert_eq!(app.nth_sms(i + 1).await.number, to);
    }
    let response = app
        .post("/2fa/send", &send_body("Login", "+13216549803"))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "no_modem_available", "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("cap of 2 SMS per day"), "{message}");
    let modem = &modems(&app).await["modems"][0];
    assert_eq!(modem["sent_last_day"], 2, "{modem}");
    assert_eq!(modem["max_sms_per_day"], 2, "{modem}");
    assert!(
        modem["held"].as_str().is_some_and(|h| h.contains("cap")),
        "{modem}"
    );
    assert!(
        metrics(&app)
            .await
            .contains("sms2fa_modem_capped{modem=\"sim0\"} 1"),
        "capped in /metrics"
    );

    // After a restart the count is taken back from the store.
    let app = app.restart(capped).await;
    app.wait_ready().await;
    let response = app
        .post("/2fa/send", &send_body("Login", "+13216549804"))
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 503, "{body}");
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("sms2fa_modem_sms_last_day{modem=\"sim0\"} 2"),
        "{metrics}"
    );
    assert_eq!(app.sms.all().len(), 2, "nothing more went out");
}

#[tokio::test]
async fn another_modem_takes_the_work_of_one_at_its_cap() {
    let app = spawn_app_with_modems(vec![SimOptions::default(); 2], |c| {
        c.modems[0].max_sms_per_hour = Some(1);
        c.modems[1].max_sms_per_hour = Some(3);
    })
    .await;
    app.wait_ready().await;
    for i in 0..4 {
        let to = format!("+132165498{i:02}");
        app.send_code("Login", &to).await;
        app.nth_sms(i + 1).await;
    }
    let all = modems(&app).await;
    let sent: Vec<u64> = all["modems"]
        .as_array()
        .expect("modems")
        .iter()
        .map(|m| m["sent_last_hour"].as_u64().expect("count"))
        .collect();
    assert_eq!(sent, vec![1, 3], "{all}");
}

#[tokio::test]
async fn min_interval_spaces_two_sends() {
    let app = spawn_app_with(|c| c.modems[0].min_interval_ms = 800).await;
    app.wait_ready().await;
    app.send_code("Login", "+13216549810").await;
    app.send_code("Login", "+13216549811").await;
    app.nth_sms(1).await;
    let first = tokio::time::Instant::now();
    app.nth_sms(2).await;
    // A floor, not a speed: the second send may not start inside the interval.
    assert!(
        first.elapsed() >= Duration::from_millis(600),
        "the second SMS came {:?} after the first",
        first.elapsed()
    );
}
