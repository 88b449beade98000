//! The modem faults of real hardware, played by the simulator: in each, every accepted
//! code is sent exactly once — twice only where the modem never answered its
//! `AT+CMGS`, and then the status history says so — and the code that arrives verifies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sms2fa::modem::{ModemState, ModemStatus};
use sms2fa::sim::{Silence, SimHandle, SimOptions, UrcStorm};
use tokio::sync::watch;

use crate::helpers::*;

const PATIENCE: Duration = Duration::from_secs(30);

/// Wait (up to `PATIENCE`) until the modem's published state is `state`.
async fn await_state(status: &mut watch::Receiver<ModemStatus>, state: ModemState, what: &str) {
    tokio::time::timeout(PATIENCE, status.wait_for(|s| s.state == state))
        .await
        .unwrap_or_else(|_| panic!("{what}: not {state:?} within {PATIENCE:?}"))
        .expect("the modem task runs");
}

impl TestApp {
    pub async fn message(&self, id: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/2fa/messages/{id}", self.base))
            .basic_auth(SID, Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Poll the message until its status is `status`.
    pub async fn await_status(&self, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let message = self.message(id).await;
            if message["status"] == status {
                return message;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {status}: {message}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Send, wait for the SMS, verify the code it carries; returns the message id.
    async fn round_trip(&self, to: &str, nth: usize) -> String {
        let sent = self.send_code("Login", to).await;
        let sms = self.nth_sms(nth).await;
        assert_eq!(sms.number, to);
        let (status, body) = self.verify("Login", to, &code_in(&sms)).await;
        assert_eq!(status, 200, "{body}");
        sent["requestID"].as_str().unwrap().to_owned()
    }
}

fn history_steps(message: &Value) -> Vec<String> {
    message["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn nothing_more(app: &TestApp, expected: usize) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.sms.all().len(),
        expected,
        "an SMS went out more than once: {:?}",
        app.sms.all()
    );
}

#[tokio::test]
async fn sim_pin_is_entered_once() {
    let sim = SimOptions {
        pin: Some("2468".into()),
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].pin = Some("2468".into())).await;
    app.round_trip(TO, 1).await;
    assert_eq!(handle.stats().snapshot().pin_attempts, 1);
    nothing_more(&app, 1).await;
}

/// Wavecom answers `AT+CPIN?` without `OK`: the modem still becomes ready (once, not
/// after a reopen loop), with a PIN to enter and without.
#[tokio::test]
async fn a_cpin_answer_without_a_final_result_code_is_taken() {
    let sim = SimOptions {
        pin: Some("2468".into()),
        cpin_without_final: true,
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].pin = Some("2468".into())).await;
    app.round_trip(TO, 1).await;
    let commands = handle.stats().commands();
    assert_eq!(handle.stats().snapshot().pin_attempts, 1);
    assert_eq!(
        commands.iter().filter(|c| c.as_str() == "ATE0").count(),
        1,
        "initialised once, never reopened: {commands:?}"
    );
    nothing_more(&app, 1).await;
}

#[tokio::test]
async fn a_sim_busy_after_the_pin_is_waited_out() {
    let sim = SimOptions {
        pin: Some("2468".into()),
        sim_busy_after_pin: Duration::from_secs(2),
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].pin = Some("2468".into())).await;
    app.round_trip(TO, 1).await;
    assert_eq!(
        handle.stats().snapshot().pin_attempts,
        1,
        "busy is not a reason to re-enter the PIN"
    );
}

#[tokio::test]
async fn cnmi_variants_are_tried_in_turn() {
    let sim = SimOptions {
        cnmi_rejected: vec!["2,1,2,1,0".into(), "2,1,2,2,0".into()],
        delivery_reports: true,
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].delivery_reports = true).await;
    let id = app.round_trip(TO, 1).await;
    // The last variant routes no status reports: the SMS stays `sent`.
    app.await_status(&id, "sent").await;
    let cnmi: Vec<String> = handle
        .stats()
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("AT+CNMI"))
        .collect();
    assert_eq!(
        cnmi,
        [
            "AT+CNMI=2,1,2,1,0",
            "AT+CNMI=2,1,2,2,0",
            "AT+CNMI=2,1,2,0,0"
        ]
    );
}

#[tokio::test]
async fn a_modem_left_at_the_prompt_by_a_killed_process_is_brought_back_in_step() {
    use tokio::io::AsyncWriteExt;
    // Another process opens the modem, starts an SMS and dies at the `> ` prompt.
    let state = tempfile::tempdir().unwrap();
    let sms = sms2fa::sim::SmsLog::in_memory();
    let port = sms2fa::sim::SimPort::plug(
        state.path().join("modem"),
        SimOptions::default(),
        sms.clone(),
    )
    .unwrap();
    {
        let mut killed = sms2fa::modem::open_port(port.path(), 115_200).unwrap();
        killed.write_all(b"AT+CMGS=23\r").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        killed.write_all(b"0011000B91").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut config = sms2fa::config::Config::parse(
        "",
        std::path::Path::new("t"),
        sms2fa::config::Requirements::Nothing,
    )
    .unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.storage.path = state.path().join("state");
    config.accounts = vec![sms2fa::config::AccountConfig {
        sid: SID.into(),
        token: Some(TOKEN.into()),
        token_sha256: None,
        receive: false,
        relay: false,
    }];
    config.modems = vec![sms2fa::config::ModemConfig::new(
        "sim0",
        port.path().to_owned(),
    )];
    let app = sms2fa::app::Application::build(&config).await.unwrap();
    let mut status = app.modems()[0].status.clone();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    await_state(
        &mut status,
        ModemState::Ready,
        "the modem is ready again, its replies in step",
    )
    .await;
    assert!(
        sms.all().is_empty(),
        "the half-typed PDU was cancelled, not sent"
    );
}

#[tokio::test]
async fn a_wrong_pin_is_never_tried_twice() {
    let sim = SimOptions {
        pin: Some("2468".into()),
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let mut app = spawn_app_with_modems(vec![sim], |c| c.modems[0].pin = Some("1111".into())).await;
    let status = &mut app.modem_status[0];
    await_state(status, ModemState::Fatal, "the modem goes fatal").await;
    assert!(status
        .borrow()
        .last_error
        .as_deref()
        .unwrap()
        .contains("PIN"));
    // With its only modem needing an operator, the gateway says so instead of queueing
    // a code nobody will send; the PIN is not retried.
    let response = app.post("/2fa/send", &send_body("Login", TO)).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "no_modem_available", "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(handle.stats().snapshot().pin_attempts, 1);
    assert!(app.sms.all().is_empty());
}

#[tokio::test]
async fn slow_boot_with_line_noise() {
    let sim = SimOptions {
        boot_delay: Duration::from_millis(2500),
        boot_output: b"\0\0\xff\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n".to_vec(),
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |_| {}).await;
    app.round_trip(TO, 1).await;
    nothing_more(&app, 1).await;
}

#[tokio::test]
async fn urc_storm_inside_replies() {
    let sim = SimOptions {
        urc_storm: Some(UrcStorm::every(Duration::from_millis(20))),
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |c| c.otp.resend_cooldown_secs = 0).await;
    for n in 1..=3 {
        app.round_trip(TO, n).await;
    }
    nothing_more(&app, 3).await;
}

#[tokio::test]
async fn temporary_cms_error_is_retried() {
    let sim = SimOptions {
        cms_errors: BTreeMap::from([(1, 500)]),
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |_| {}).await;
    let id = app.round_trip(TO, 1).await;
    let message = app.await_status(&id, "sent").await;
    assert_eq!(
        history_steps(&message),
        ["queued", "sending", "queued", "sending", "sent"]
    );
    assert!(
        message["history"][2]["detail"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{message}"
    );
    nothing_more(&app, 1).await;
}

#[tokio::test]
async fn permanent_cms_error_fails_with_the_reason() {
    let sim = SimOptions {
        cms_errors: BTreeMap::from([(1, 21)]),
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |_| {}).await;
    let sent = app.send_code("Login", TO).await;
    let message = app
        .await_status(sent["requestID"].as_str().unwrap(), "failed")
        .await;
    let reason = message["history"].as_array().unwrap().last().unwrap()["detail"].to_string();
    assert!(
        reason.contains("21") && reason.contains("rejected"),
        "{message}"
    );
    nothing_more(&app, 0).await;
}

#[tokio::test]
async fn a_silent_modem_is_recovered_and_the_history_admits_a_possible_duplicate() {
    let sim = SimOptions {
        silences: vec![Silence {
            at_send: 1,
            duration: Duration::from_secs(4),
            delivered: true,
        }],
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |_| {}).await;
    let sent = app.send_code("Login", TO).await;
    let id = sent["requestID"].as_str().unwrap();
    let message = app.await_status(id, "sent").await;
    let details = message["history"].to_string();
    assert!(details.contains("may arrive twice"), "{message}");
    let all = app.sms.wait_for(2, PATIENCE).await;
    assert_eq!(all.len(), 2, "the unanswered send went out, then its retry");
    assert_eq!(all[0].text, all[1].text, "the same code both times");
    assert_eq!(app.verify("Login", TO, &code_in(&all[1])).await.0, 200);
}

#[tokio::test]
async fn unplugged_modem_comes_back_behind_the_same_link() {
    let mut app = spawn_app_with_modems(vec![SimOptions::default()], |c| {
        c.otp.resend_cooldown_secs = 0
    })
    .await;
    app.round_trip(TO, 1).await;
    app.modems[0].unplug();
    await_state(
        &mut app.modem_status[0],
        ModemState::Connecting,
        "the driver notices",
    )
    .await;
    let sent = app.send_code("Login", TO).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.modems[0].replug().unwrap();
    let sms = app.nth_sms(2).await;
    assert_eq!(app.verify("Login", TO, &code_in(&sms)).await.0, 200);
    app.await_status(sent["requestID"].as_str().unwrap(), "sent")
        .await;
    nothing_more(&app, 2).await;
}

#[tokio::test]
async fn a_modem_plugged_back_after_a_long_absence_is_used_at_once() {
    let mut app = spawn_app_with_modems(vec![SimOptions::default()], |_| {}).await;
    app.modems[0].unplug();
    // Long enough for a doubling backoff (0.25, 0.5, 1, 2, 4 s) to have grown to 8 s:
    // its next look would come 7.75 s after the replug.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_ne!(app.modem_status[0].borrow().state, ModemState::Ready);
    app.modems[0].replug().unwrap();
    let replugged = tokio::time::Instant::now();
    await_state(
        &mut app.modem_status[0],
        ModemState::Ready,
        "the modem comes back",
    )
    .await;
    let after = replugged.elapsed();
    assert!(
        after < Duration::from_secs(3),
        "ready {after:?} after the replug: the absent device was not watched"
    );
    app.round_trip(TO, 1).await;
}

#[tokio::test]
async fn delivery_reports_mark_messages_delivered() {
    let sim = SimOptions {
        delivery_reports: true,
        delivery_report_delay: Duration::from_millis(200),
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].delivery_reports = true).await;
    let id = app.round_trip(TO, 1).await;
    let message = app.await_status(&id, "delivered").await;
    assert_eq!(
        history_steps(&message),
        ["queued", "sending", "sent", "delivered"]
    );
}

#[tokio::test]
async fn failed_delivery_report_marks_the_message_failed() {
    let sim = SimOptions {
        delivery_reports: true,
        delivery_status: 0x45,
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].delivery_reports = true).await;
    let id = app.round_trip(TO, 1).await;
    let message = app.await_status(&id, "failed").await;
    assert!(message["history"].to_string().contains("0x45"), "{message}");
}

#[tokio::test]
async fn slow_radio_and_lte_only_registration() {
    let sim = SimOptions {
        send_delay: Duration::from_millis(1500),
        lte_only: true,
        ..SimOptions::default()
    };
    let app = spawn_app_with_modems(vec![sim], |_| {}).await;
    app.round_trip(TO, 1).await;
    nothing_more(&app, 1).await;
}

#[tokio::test]
async fn waits_for_the_network_before_sending() {
    let handle = SimHandle::new();
    let sim = SimOptions {
        registered: false,
        handle: handle.clone(),
        ..SimOptions::default()
    };
    let mut app = spawn_app_with_modems(vec![sim], |_| {}).await;
    await_state(&mut app.modem_status[0], ModemState::Searching, "searching").await;
    let sent = app.send_code("Login", TO).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.sms.all().is_empty());
    handle.set_registered(true);
    app.nth_sms(1).await;
    app.await_status(sent["requestID"].as_str().unwrap(), "sent")
        .await;
}

#[tokio::test]
async fn a_pool_keeps_sending_when_one_modem_is_unplugged() {
    let sims = vec![
        SimOptions {
            send_delay: Duration::from_millis(100),
            handle: SimHandle::new(),
            ..SimOptions::default()
        },
        SimOptions {
            send_delay: Duration::from_millis(100),
            handle: SimHandle::new(),
            ..SimOptions::default()
        },
        SimOptions {
            send_delay: Duration::from_millis(100),
            handle: SimHandle::new(),
            ..SimOptions::default()
        },
    ];
    let handles: Vec<SimHandle> = sims.iter().map(|s| s.handle.clone()).collect();
    let mut app = spawn_app_with_modems(sims, |_| {}).await;
    for status in &mut app.modem_status {
        await_state(status, ModemState::Ready, "ready").await;
    }
    let numbers: Vec<String> = (0..12).map(|i| format!("+1321654{i:04}")).collect();
    let mut ids = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        if i == 4 {
            app.modems[1].unplug();
        }
        ids.push(
            app.send_code("Login", number).await["requestID"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let all = app.sms.wait_for(numbers.len(), PATIENCE).await;
    for (number, id) in numbers.iter().zip(&ids) {
        let received: Vec<_> = all.iter().filter(|sms| &sms.number == number).collect();
        assert!(!received.is_empty(), "{number} got nothing");
        if received.len() > 1 {
            let message = app.message(id).await;
            assert!(
                message["history"].to_string().contains("may arrive twice"),
                "{message}"
            );
        }
        let last = received.last().unwrap();
        assert_eq!(app.verify("Login", number, &code_in(last)).await.0, 200);
    }
    let used: Vec<u64> = handles
        .iter()
        .map(|h| h.stats().snapshot().sms_completed)
        .collect();
    assert!(
        used[0] > 0 && used[2] > 0,
        "the pool shares the work: {used:?}"
    );
}

/// A prepaid SIM's balance by USSD (`balance_ussd`), the answer packed 7-bit as Huawei
/// sticks give it, shown in `/modems`; sending is not disturbed.
#[tokio::test]
async fn the_balance_ussd_answer_shows_in_modems() {
    let sim = SimOptions {
        ussd_reply: "Balance: 12.50 EUR, valid until 31.12.".into(),
        ussd_packed_reply: true,
        ..SimOptions::default()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| {
        c.modems[0].balance_ussd = Some("*100#".into());
    })
    .await;
    app.wait_ready().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let balance = loop {
        let modems: Value = app
            .client
            .get(format!("{}/modems", app.base))
            .basic_auth(SID, Some(TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let balance = modems["modems"][0]["balance"].clone();
        if !balance.is_null() {
            break balance;
        }
        assert!(tokio::time::Instant::now() < deadline, "{modems}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(balance["answer"], "Balance: 12.50 EUR, valid until 31.12.");
    assert!(balance["checked_at"].is_string());
    assert!(handle
        .stats()
        .commands()
        .iter()
        .any(|c| c == "AT+CUSD=1,\"*100#\",15"));
    app.round_trip(TO, 1).await;
}
