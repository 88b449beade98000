//! No full phone number at rest: after a whole cycle of everything the API does with a
//! number, not one file under the state folder holds it, in ASCII or as the PDU's
//! semi-octets.

use chrono::Duration;
use serde_json::json;
use sms2fa::sim::SimOptions;

use crate::helpers::*;

pub const NUMBER: &str = "+14155550002";

/// A relayed text, which must be sealed at rest like a code's SMS.
const RELAYED_TEXT: &str = "Relayed secret: vault PIN 80417";

/// The digits as an SMS PDU carries them: swapped nibbles, `F` filling an odd count.
fn semi_octets(digits: &str) -> Vec<u8> {
    let nibbles: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    nibbles
        .chunks(2)
        .map(|pair| pair[0] | (pair.get(1).copied().unwrap_or(0xF) << 4))
        .collect()
}

pub fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let kind = std::fs::symlink_metadata(&path)
            .expect("metadata")
            .file_type();
        if kind.is_dir() {
            found.extend(files(&path));
        } else if kind.is_file() {
            // Sockets (the database's) and links (a modem's pty) hold no data.
            found.push(path);
        }
    }
    found
}

#[test]
fn semi_octets_are_the_pdu_form() {
    assert_eq!(
        semi_octets("14155550002"),
        vec![0x41, 0x51, 0x55, 0x05, 0x00, 0xF2]
    );
}

/// The modem and limits [`full_cycle`] needs.
pub fn cycle_modem() -> SimOptions {
    SimOptions {
        delivery_reports: true,
        ..SimOptions::default()
    }
}

pub fn cycle_limits(c: &mut sms2fa::config::Config) {
    c.modems[0].delivery_reports = true;
    c.otp.max_failures_per_number = 2;
    c.otp.max_sends_per_number_per_day = 3;
    c.accounts[0].relay = true;
}

#[tokio::test]
async fn a_full_cycle_leaves_no_number_under_the_state_folder() {
    let app = spawn_app_with_modems(vec![cycle_modem()], cycle_limits).await;
    full_cycle(&app).await;
    let state = app.shut_down().await;
    let scanned = files(&state.path().join("state"));
    assert!(
        scanned.iter().any(|f| f.to_string_lossy().contains("db")),
        "the scan covers the database: {scanned:?}"
    );
    assert_no_number_in(&scanned);
}

/// Everything the API does with [`NUMBER`]: a keyed send and its replay, delivery, a
/// lock by wrong codes and an unlock, a verification, a cooldown, a cancel, a relayed
/// text, the daily cap.
pub async fn full_cycle(app: &TestApp) {
    let body = send_body("Login", NUMBER);

    // Send under an Idempotency-Key, and replay it.
    let keyed = || {
        app.client
            .post(format!("{}/2fa/send", app.base))
            .basic_auth(SID, Some(TOKEN))
            .header("idempotency-key", format!("login-{NUMBER}"))
            .json(&body)
            .send()
    };
    let first = keyed().await.expect("send");
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.expect("json");
    let replay = keyed().await.expect("replay");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let id = first["requestID"].as_str().expect("id").to_owned();

    // Delivered, with a delivery report matched to it.
    let sms = app.nth_sms(1).await;
    assert_eq!(sms.number, NUMBER);
    app.await_status(&id, "delivered").await;

    // Wrong codes lock the number; unlock; the code still verifies.
    let code = code_in(&sms);
    assert_eq!(app.verify("Login", NUMBER, &wrong(&code)).await.0, 400);
    app.verify("Login", NUMBER, &wrong(&code)).await;
    let (status, locked) = app.verify("Login", NUMBER, &code).await;
    assert_eq!(
        (status, locked["error"].as_str()),
        (429, Some("number_locked"))
    );
    let unlocked = app
        .post(
            "/2fa/unlock",
            &json!({"service": "Login", "number": NUMBER}),
        )
        .await;
    assert_eq!(unlocked.status(), 200);
    assert_eq!(app.verify("Login", NUMBER, &code).await.0, 200);

    // The cooldown refuses a second code; after it, one more, cancelled.
    let refused = app.post("/2fa/send", &body).await;
    assert_eq!(refused.status(), 429);
    app.clock.advance(Duration::seconds(31));
    app.send_code("Login", NUMBER).await;
    let second = code_in(&app.nth_sms(2).await);
    let cancelled = app
        .post(
            "/2fa/cancel",
            &json!({"service": "Login", "number": NUMBER}),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(app.verify("Login", NUMBER, &second).await.0, 404);

    // A relayed text to the number, which counts against the same daily cap.
    let relayed = app
        .post("/sms/send", &json!({"to": NUMBER, "text": RELAYED_TEXT}))
        .await;
    assert_eq!(relayed.status(), 200);
    assert_eq!(app.nth_sms(3).await.text, RELAYED_TEXT);

    // The daily cap: a fourth SMS the same day is refused.
    app.clock.advance(Duration::seconds(31));
    let capped = app.post("/2fa/send", &body).await;
    assert_eq!(capped.status(), 429);
    let capped: serde_json::Value = capped.json().await.expect("json");
    assert_eq!(capped["error"], "number_daily_limit");
}

/// No file of `scanned` holds [`NUMBER`] in ASCII (international, without `+`,
/// national) or as a PDU's semi-octets (raw or hex), nor the relayed text.
pub fn assert_no_number_in(scanned: &[std::path::PathBuf]) {
    let digits = &NUMBER[1..];
    let national = &NUMBER[2..];
    let patterns: Vec<Vec<u8>> = vec![
        NUMBER.as_bytes().to_vec(),
        digits.as_bytes().to_vec(),
        national.as_bytes().to_vec(),
        semi_octets(digits),
        hex::encode_upper(semi_octets(digits)).into_bytes(),
        hex::encode(semi_octets(digits)).into_bytes(),
        RELAYED_TEXT.as_bytes().to_vec(),
    ];
    for file in scanned {
        let bytes = std::fs::read(file).expect("read");
        for pattern in &patterns {
            assert!(
                memchr::memmem::find(&bytes, pattern).is_none(),
                "{} holds the number as {:?}",
                file.display(),
                String::from_utf8_lossy(pattern)
            );
        }
    }
}
