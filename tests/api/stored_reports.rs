//! Modems that store delivery reports instead of forwarding them (`<ds>` = 2,
//! `+CDSI: "SR",3`): the report is read, matched and deleted; reports stored without a
//! `+CDSI` are found by the sweep of the modem's storage; what is neither a report nor
//! a received SMS is deleted so storage never fills (a received SMS goes to the inbox).

use std::time::Duration;

use sms2fa::sim::{SimOptions, StoredPdu};

use crate::helpers::*;

/// A modem that refuses direct report routing, so the driver falls back to `<ds>` = 2.
fn storing_modem() -> SimOptions {
    SimOptions {
        delivery_reports: true,
        delivery_report_delay: Duration::from_millis(200),
        cnmi_rejected: vec!["2,1,2,1,0".into()],
        ..SimOptions::default()
    }
}

async fn until_stored(sim: &sms2fa::sim::SimHandle, mem: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.stored().get(mem).copied() != Some(count) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{mem} never held {count}: {:?}",
            sim.stored()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_announced_stored_report_is_read_matched_and_deleted() {
    let sim = storing_modem();
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| c.modems[0].delivery_reports = true).await;
    let sent = app.send_code("Login", TO).await;
    let id = sent["requestID"].as_str().expect("id").to_owned();
    app.nth_sms(1).await;
    app.await_status(&id, "delivered").await;
    until_stored(&handle, "SR", 0).await;
    let commands = handle.stats().commands();
    for expected in [
        "AT+CNMI=2,1,2,2,0",
        "AT+CPMS=\"SR\"",
        "AT+CMGR=1",
        "AT+CMGD=1",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected} missing: {commands:?}"
        );
    }
}

#[tokio::test]
async fn a_report_stored_without_a_word_is_found_by_the_sweep() {
    let sim = SimOptions {
        cdsi_silent: true,
        ..storing_modem()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| {
        c.modems[0].delivery_reports = true;
        c.modems[0].health_interval_secs = 1;
    })
    .await;
    let sent = app.send_code("Login", TO).await;
    let id = sent["requestID"].as_str().expect("id").to_owned();
    app.nth_sms(1).await;
    app.await_status(&id, "delivered").await;
    until_stored(&handle, "SR", 0).await;
    assert!(
        handle.stats().commands().iter().any(|c| c == "AT+CMGL=4"),
        "listed"
    );
}

#[tokio::test]
async fn stored_outgoing_and_undecodable_entries_are_deleted_a_received_sms_goes_to_the_inbox() {
    // An SMS-SUBMIT a previous program left in ME (gammu tests/at-sms/02.dump), garbage
    // in SR, and a received SMS-DELIVER in SM.
    let submit = hex::decode("0791361907001003B17A0C913619397750320000AD11").unwrap();
    let deliver =
        hex::decode("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07")
            .unwrap();
    let sim = SimOptions {
        stored: vec![
            (
                "ME".into(),
                StoredPdu {
                    stat: 3,
                    pdu: submit,
                },
            ),
            (
                "SR".into(),
                StoredPdu {
                    stat: 0,
                    pdu: vec![0x00, 0xFF],
                },
            ),
            (
                "SM".into(),
                StoredPdu {
                    stat: 0,
                    pdu: deliver,
                },
            ),
        ],
        ..storing_modem()
    };
    let handle = sim.handle.clone();
    let app = spawn_app_with_modems(vec![sim], |c| {
        c.modems[0].delivery_reports = true;
        c.accounts[0].receive = true;
    })
    .await;
    app.wait_ready().await;
    until_stored(&handle, "ME", 0).await;
    until_stored(&handle, "SR", 0).await;
    until_stored(&handle, "SM", 0).await;
    // The received SMS was kept before it left the SIM.
    let inbox: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/sms/inbox", app.base))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["count"], 1, "{inbox}");
    assert_eq!(inbox["messages"][0]["text"], "How are you?");
    // And sending goes on.
    app.send_code("Login", TO).await;
    assert_eq!(app.nth_sms(1).await.number, TO);
}
