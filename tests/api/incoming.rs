//! Incoming SMS: announced (`+CMTI`) or routed (`+CMT`) or found by the storage sweep,
//! decoded, parts joined, kept in the inbox (sender and text sealed) and deleted from
//! the modem; shown to accounts with `receive = true` at `GET /sms/inbox`. A modem
//! whose full storage stops its sends (`+CMS ERROR: 322`) is drained, and sends go on.

use std::time::Duration;

use serde_json::Value;
use sms2fa::sim::{SimHandle, SimOptions};

use crate::helpers::*;

const SENDER: &str = "+447700900123";

async fn inbox_as(app: &TestApp, sid: &str, token: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/sms/inbox{query}", app.base))
        .basic_auth(sid, Some(token))
        .send()
        .await
        .expect("inbox");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

/// Poll the inbox until it holds `count` SMS; returns them.
async fn inbox_holds(app: &TestApp, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = inbox_as(app, SID, TOKEN, "").await;
        assert_eq!(status, 200, "{body}");
        let messages = body["messages"].as_array().expect("messages").clone();
        if messages.len() >= count {
            assert_eq!(messages.len(), count, "{body}");
            return messages;
        }
        assert!(tokio::time::Instant::now() < deadline, "inbox: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn until_sim_holds(sim: &SimHandle, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.stored().get("SM").copied().unwrap_or(0) != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "SM never held {count}: {:?}",
            sim.stored()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn receiving(c: &mut sms2fa::config::Config) {
    c.accounts[0].receive = true;
}

#[tokio::test]
async fn an_announced_sms_reaches_the_inbox_and_leaves_the_sim() {
    let sim = SimOptions::default();
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], receiving).await;
    app.wait_ready().await;
    handle.receive_sms(SENDER, "Balance low: 0.42 EUR");
    let long = "Ваш баланс пополнен. ".repeat(6);
    handle.receive_sms("Vodafone", &long);
    let messages = inbox_holds(&app, 2).await;
    until_sim_holds(&handle, 0).await;
    // Newest first.
    assert_eq!(messages[0]["sender"], "Vodafone");
    assert_eq!(messages[0]["text"], long.as_str());
    assert_eq!(messages[0]["parts"], 2);
    assert_eq!(messages[1]["sender"], SENDER);
    assert_eq!(messages[1]["text"], "Balance low: 0.42 EUR");
    assert_eq!(messages[1]["modem"], "sim0");
    assert_eq!(messages[1]["incomplete"], false);
    assert!(handle
        .stats()
        .commands()
        .iter()
        .any(|c| c == "AT+CNMI=2,1,0,0,0"));

    // `since` and `limit`.
    let since = messages[1]["received_at"].as_str().expect("time");
    let (_, newer) = inbox_as(
        &app,
        SID,
        TOKEN,
        &format!("?since={}", since.replace('+', "%2B")),
    )
    .await;
    assert_eq!(newer["count"], 1, "{newer}");
    let (_, one) = inbox_as(&app, SID, TOKEN, "?limit=1").await;
    assert_eq!(one["messages"][0]["sender"], "Vodafone");
    let (status, bad) = inbox_as(&app, SID, TOKEN, "?limit=0").await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (400, Some("limit")),
        "{bad}"
    );

    // An account without `receive` sees nothing.
    let (status, body) = inbox_as(&app, OTHER_SID, OTHER_TOKEN, "").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "receive_not_allowed");
}

#[tokio::test]
async fn a_routed_sms_is_kept_too_and_acknowledged_in_phase_2_plus() {
    let sim = SimOptions {
        phase2_plus_only: true,
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], receiving).await;
    app.wait_ready().await;
    let pdu = sms2fa::sms::encode_deliver(SENDER, "Routed hello", "2026-12-05T10:00:00Z", 1)
        .expect("encode")
        .remove(0);
    let tpdu_len = pdu.len() - 1 - usize::from(pdu[0]);
    handle.inject_urc(format!("+CMT: ,{tpdu_len}\r\n{}", hex::encode_upper(&pdu)));
    let messages = inbox_holds(&app, 1).await;
    assert_eq!(messages[0]["text"], "Routed hello");
    assert_eq!(messages[0]["sent_at"], "2026-12-05T10:00:00+00:00");
    assert!(
        handle.stats().commands().iter().any(|c| c == "AT+CNMA"),
        "+CMT acknowledged"
    );
}

#[tokio::test]
async fn sms_stored_without_a_word_are_drained_at_the_health_check() {
    // No AT+CNMI variant is taken: received SMS stay in SM without +CMTI.
    let sim = SimOptions {
        cnmi_rejected: vec!["2,1,0,0,0".into(), "1,1,0,0,0".into()],
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| {
        receiving(c);
        c.modems[0].health_interval_secs = 1;
    })
    .await;
    app.wait_ready().await;
    handle.receive_sms(SENDER, "first");
    handle.receive_sms(SENDER, "second");
    let messages = inbox_holds(&app, 2).await;
    let texts: Vec<&str> = messages.iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(
        texts.contains(&"first") && texts.contains(&"second"),
        "{texts:?}"
    );
    until_sim_holds(&handle, 0).await;
}

#[tokio::test]
async fn a_full_sim_that_stops_sends_is_drained_and_the_code_still_goes_out() {
    let sim = SimOptions {
        cnmi_rejected: vec!["2,1,0,0,0".into(), "1,1,0,0,0".into()],
        memory_full_blocks_sends: true,
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| {
        receiving(c);
        c.modems[0].health_interval_secs = 300;
    })
    .await;
    app.wait_ready().await;
    for i in 0..20 {
        handle.receive_sms(SENDER, format!("carrier notice {i}"));
    }
    until_sim_holds(&handle, 20).await;
    let sent = app.send_code("Login", TO).await;
    let sms = app.nth_sms(1).await;
    assert_eq!(sms.number, TO);
    let (status, body) = app.verify("Login", TO, &code_in(&sms)).await;
    assert_eq!(status, 200, "{body}");
    assert!(sent["requestID"].is_string());
    assert!(
        handle.stats().snapshot().cms_errors >= 1,
        "the first try met +CMS ERROR: 322"
    );
    inbox_holds(&app, 20).await;
    until_sim_holds(&handle, 0).await;
}
