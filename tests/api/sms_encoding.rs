//! Texts in every script reach the handset intact, through the daemon and the modem.

use serde_json::json;
use sms2fa::config::SmsMode;

use crate::helpers::*;

fn digits_in(text: &str) -> String {
    let code: String = text.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "one 6-digit code in {text:?}");
    code
}

async fn send_template(app: &TestApp, to: &str, body: &str) -> reqwest::Response {
    app.post(
        "/2fa/send",
        &json!({"service": "Login", "from": FROM, "to": to, "body": body}),
    )
    .await
}

#[tokio::test]
async fn templates_in_any_script_arrive_exactly() {
    let app = spawn_app().await;
    let templates = [
        "Ваш код: {code}",
        "Código: {code} — não partilhe",
        "{code} is your 🔐 code",
        "[Shop] € refund {code} ^{}\\~|",
        "您的验证码是 {code}",
    ];
    for (i, template) in templates.iter().enumerate() {
        let to = format!("+1321654{i:04}");
        assert_eq!(
            send_template(&app, &to, template).await.status(),
            200,
            "{template}"
        );
        let sms = app.nth_sms(i + 1).await;
        assert_eq!(sms.number, to);
        let code = digits_in(&sms.text);
        assert_eq!(sms.text, template.replace("{code}", &code), "{template}");
        assert_eq!(sms.parts, 1);
        assert_eq!(app.verify("Login", &to, &code).await.0, 200);
    }
}

#[tokio::test]
async fn long_templates_go_out_in_parts_and_over_long_ones_are_refused() {
    let app = spawn_app().await;
    // 300 GSM characters: two parts.
    let long = format!("{{code}} {}", "a".repeat(293));
    assert_eq!(send_template(&app, TO, &long).await.status(), 200);
    let sms = app.nth_sms(1).await;
    assert_eq!(sms.parts, 2);
    assert_eq!(sms.text, long.replace("{code}", &sms.text[..6]));

    // 300 Cyrillic characters need 5 UCS-2 parts; the default allows 4.
    let too_long = format!("{{code}} {}", "ж".repeat(293));
    let response = send_template(&app, "+13216549000", &too_long).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "body_too_long");
    assert_eq!(body["field"], "body");
    assert_eq!(body["parts_needed"], 5);
    assert_eq!(body["max_parts"], 4);
}

#[tokio::test]
async fn a_text_mode_modem_sends_single_part_texts() {
    let app = spawn_app_with(|c| {
        c.modems[0].mode = SmsMode::Text;
        c.sms.max_parts = 1;
    })
    .await;
    for (i, template) in ["Your code is {code}", "Ваш код: {code}"]
        .iter()
        .enumerate()
    {
        let to = format!("+1321654{i:04}");
        assert_eq!(send_template(&app, &to, template).await.status(), 200);
        let sms = app.nth_sms(i + 1).await;
        let code = digits_in(&sms.text);
        assert_eq!(sms.text, template.replace("{code}", &code));
        assert_eq!(sms.number, to);
    }
}
