//! Nothing secret reaches the logs: not the code, not the SMS text, not a token, not a
//! full phone number.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::helpers::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// current_thread: every task of the app runs on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_full_send_verify_cycle_logs_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn_app_with(|config| config.accounts[0].relay = true).await;
    app.send_code("Login", TO).await;
    let sms = app.nth_sms(1).await;
    // A relayed text is as secret as a code's.
    let relayed = "Your privacyIDEA OTP is 918273";
    let response = app
        .post("/sms/send", &serde_json::json!({"to": TO, "text": relayed}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.nth_sms(2).await.text, relayed);
    let code = code_in(&sms);
    assert_eq!(app.verify("Login", TO, &wrong(&code)).await.0, 400);
    assert_eq!(app.verify("Login", TO, &code).await.0, 200);
    // Let the dispatcher log the outcome of the send.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("code issued"), "the capture works: {logs}");
    assert!(
        logs.contains("SMS sent"),
        "the capture covers the modem side: {logs}"
    );
    assert!(
        logs.contains("+1321****878"),
        "numbers appear masked: {logs}"
    );
    assert!(logs.contains("relayed SMS queued"), "{logs}");
    for secret in [
        code.as_str(),
        sms.text.as_str(),
        relayed,
        "918273",
        TO,
        &TO[1..],
        TOKEN,
    ] {
        assert!(!logs.contains(secret), "the logs hold {secret:?}:\n{logs}");
    }
}
