use super::*;

const GOOD: &str = r#"
[http]
listen = "127.0.0.1:8080"

[storage]
path = "/var/lib/sms2fa"

[otp]
code_length = 6
ttl_secs = 600
max_attempts = 5

[[account]]
sid = "ACxxxxxxxx"
token = "secret"

[[modem]]
name = "dongle0"
device = "/dev/gsm-modem"
baud = 115200
pin = "1234"
number = "+13216549878"
"#;

fn parse(source: &str) -> Result<Config, ConfigError> {
    Config::parse(
        source,
        Path::new("sms2fa.toml"),
        Requirements::AccountsAndModems,
    )
}

#[test]
fn parses_the_documented_example() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.otp.code_length, 6);
    assert_eq!(config.accounts[0].sid, "ACxxxxxxxx");
    assert_eq!(config.modems[0].device, PathBuf::from("/dev/gsm-modem"));
    assert_eq!(config.modems[0].number.as_deref(), Some("+13216549878"));
    assert_eq!(config.sms.max_parts, 4);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let source = GOOD.replace("max_attempts = 5", "max_attempts = 5\nmax_atempts = 3");
    let message = parse(&source).unwrap_err().to_string();
    assert!(message.contains("sms2fa.toml"), "{message}");
    assert!(message.contains("max_atempts"), "{message}");
    assert!(message.contains("line 12"), "{message}");
}

#[test]
fn invalid_value_is_named_with_its_line() {
    let source = GOOD.replace("code_length = 6", "code_length = 4");
    let message = parse(&source).unwrap_err().to_string();
    assert_eq!(
        message,
        "sms2fa.toml, line 9: `otp.code_length`: must be 6 to 10 digits"
    );
}

#[test]
fn second_modem_problem_points_at_that_modem() {
    let source =
        format!("{GOOD}\n[[modem]]\nname = \"dongle1\"\ndevice = \"/dev/x\"\nnumber = \"12345\"\n");
    let message = parse(&source).unwrap_err().to_string();
    assert!(message.contains("`modem[1].number`"), "{message}");
    assert!(message.contains("line 27"), "{message}");
}

#[test]
fn text_mode_needs_single_part_messages() {
    let text = GOOD.replace("baud = 115200", "baud = 115200\nmode = \"text\"");
    let message = parse(&text).unwrap_err().to_string();
    assert!(
        message.contains("`modem[0].mode`") && message.contains("max_parts = 1"),
        "{message}"
    );
    let fixed = format!("[sms]\nmax_parts = 1\n{text}");
    assert_eq!(parse(&fixed).unwrap().modems[0].mode, SmsMode::Text);
    let wrong = GOOD.replace("baud = 115200", "baud = 115200\nmode = \"binary\"");
    assert!(parse(&wrong).unwrap_err().to_string().contains("binary"));
}

#[test]
fn long_ttl_needs_explicit_consent() {
    let source = GOOD.replace("ttl_secs = 600", "ttl_secs = 3600");
    assert!(parse(&source)
        .unwrap_err()
        .to_string()
        .contains("allow_long_ttl"));
    let source = source.replace("[otp]", "[otp]\nallow_long_ttl = true");
    assert_eq!(parse(&source).unwrap().otp.ttl_secs, 3600);
}

#[test]
fn limits_have_defaults_and_bounds() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.otp.max_failures_per_number, 100);
    assert_eq!(config.otp.resend_cooldown_secs, 30);
    assert_eq!(config.otp.max_sends_per_number_per_day, 10);
    assert_eq!(config.otp.max_sends_per_account_per_minute, 120);
    assert!(config.otp.allowed_prefixes.is_empty());
    let too_many = GOOD.replace(
        "max_attempts = 5",
        "max_attempts = 5\nmax_failures_per_number = 101",
    );
    assert!(parse(&too_many).unwrap_err().to_string().contains("NIST"));
    let bad_prefix = GOOD.replace(
        "max_attempts = 5",
        "max_attempts = 5\nallowed_prefixes = [\"+1\", \"44\"]",
    );
    let message = parse(&bad_prefix).unwrap_err().to_string();
    assert!(
        message.contains("otp.allowed_prefixes") && message.contains("line 12"),
        "{message}"
    );
}

#[test]
fn account_needs_exactly_one_token_form() {
    let both = GOOD.replace(
        "token = \"secret\"",
        "token = \"secret\"\ntoken_sha256 = \"00\"",
    );
    assert!(parse(&both).unwrap_err().to_string().contains("not both"));
    let bad_hash = GOOD.replace("token = \"secret\"", "token_sha256 = \"abc\"");
    assert!(parse(&bad_hash)
        .unwrap_err()
        .to_string()
        .contains("64 hex digits"));
}

#[test]
fn serve_needs_accounts_and_modems_but_simulate_does_not() {
    assert!(parse("").unwrap_err().to_string().contains("[[account]]"));
    let config = Config::parse("", Path::new("x"), Requirements::Nothing).unwrap();
    assert_eq!(config.http.listen, default_listen());
}

#[test]
fn debug_output_hides_secrets() {
    let config = parse(GOOD).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(!debug.contains("1234\""), "{debug}");
}

#[test]
fn message_retention_has_a_default_and_bounds() {
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(parse(GOOD).unwrap().storage.message_retention(), 7 * day);
    let with = |line: &str| {
        GOOD.replace(
            "path = \"/var/lib/sms2fa\"",
            &format!("path = \"/var/lib/sms2fa\"\n{line}"),
        )
    };
    let kept = with("message_retention_days = 30");
    assert_eq!(parse(&kept).unwrap().storage.message_retention(), 30 * day);
    for (written, expected) in [
        ("7d", 7 * 86_400),
        ("1h", 3600),
        ("90m", 5400),
        ("1h 30m", 5400),
    ] {
        let source = with(&format!("message_retention = \"{written}\""));
        let retention = parse(&source).unwrap().storage.message_retention();
        assert_eq!(retention.as_secs(), expected, "{written}");
    }
    let bad = parse(&with("message_retention = \"a week\""))
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("message_retention") && bad.contains("7d"),
        "{bad}"
    );
    let short = parse(&with("message_retention = \"30s\""))
        .unwrap_err()
        .to_string();
    assert!(
        short.contains("storage.message_retention") && short.contains("1 minute"),
        "{short}"
    );
    let both = with("message_retention = \"1d\"\nmessage_retention_days = 1");
    assert!(parse(&both).unwrap_err().to_string().contains("not both"));
    let zero = GOOD.replace(
        "path = \"/var/lib/sms2fa\"",
        "path = \"/var/lib/sms2fa\"\nmessage_retention_days = 0",
    );
    let message = parse(&zero).unwrap_err().to_string();
    assert!(
        message.contains("storage.message_retention_days"),
        "{message}"
    );
}

#[test]
fn max_parts_is_bounded_one_to_ten() {
    for parts in [1, 10] {
        let source = format!("[sms]\nmax_parts = {parts}\n{GOOD}");
        assert_eq!(parse(&source).unwrap().sms.max_parts, parts);
    }
    for parts in [0, 11, 255] {
        let source = format!("[sms]\nmax_parts = {parts}\n{GOOD}");
        let message = parse(&source).unwrap_err().to_string();
        assert!(
            message.contains("`sms.max_parts`") && message.contains("1 to 10"),
            "{message}"
        );
    }
}

#[test]
fn unavailable_after_defaults_to_a_minute_and_is_bounded() {
    assert_eq!(parse(GOOD).unwrap().sms.unavailable_after_secs, 60);
    let source = format!("[sms]\nunavailable_after_secs = 5\n{GOOD}");
    assert_eq!(parse(&source).unwrap().sms.unavailable_after_secs, 5);
    for secs in [0, 86_401] {
        let source = format!("[sms]\nunavailable_after_secs = {secs}\n{GOOD}");
        let message = parse(&source).unwrap_err().to_string();
        assert!(
            message.contains("`sms.unavailable_after_secs`") && message.contains("1 to 86400"),
            "{message}"
        );
    }
}

#[test]
fn reset_modes_and_tcp_devices() {
    use super::ResetMode;
    assert_eq!(parse(GOOD).unwrap().modems[0].reset, ResetMode::Cfun11);
    for (value, mode) in [
        ("cfun11", ResetMode::Cfun11),
        ("cfun01", ResetMode::Cfun01),
        ("none", ResetMode::None),
    ] {
        let source = format!("{GOOD}reset = \"{value}\"\n");
        assert_eq!(parse(&source).unwrap().modems[0].reset, mode);
    }
    let message = parse(&format!("{GOOD}reset = \"reboot\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("reset") && message.contains("cfun01"),
        "{message}"
    );

    let tcp = GOOD.replace("/dev/gsm-modem", "tcp://10.0.0.5:2000");
    assert_eq!(
        parse(&tcp).unwrap().modems[0].device,
        PathBuf::from("tcp://10.0.0.5:2000")
    );
    let message = parse(&GOOD.replace("/dev/gsm-modem", "tcp://10.0.0.5"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`modem[0].device`") && message.contains("tcp://<host>:<port>"),
        "{message}"
    );
}

#[test]
fn caps_and_pacing() {
    let modem = &parse(GOOD).unwrap().modems[0];
    assert_eq!(
        (
            modem.max_sms_per_day,
            modem.max_sms_per_hour,
            modem.min_interval_ms
        ),
        (None, None, 0)
    );
    let source =
        format!("{GOOD}max_sms_per_day = 500\nmax_sms_per_hour = 60\nmin_interval_ms = 1500\n");
    let modem = &parse(&source).unwrap().modems[0];
    assert_eq!(
        (
            modem.max_sms_per_day,
            modem.max_sms_per_hour,
            modem.min_interval_ms
        ),
        (Some(500), Some(60), 1500)
    );
    for (line, key) in [
        ("max_sms_per_day = 0", "`modem[0].max_sms_per_day`"),
        ("max_sms_per_hour = 0", "`modem[0].max_sms_per_hour`"),
        ("min_interval_ms = 3600001", "`modem[0].min_interval_ms`"),
    ] {
        let message = parse(&format!("{GOOD}{line}\n")).unwrap_err().to_string();
        assert!(message.contains(key), "{message}");
    }
}

#[test]
fn balance_ussd_is_a_code_and_its_interval_at_least_a_minute() {
    let modem = &parse(GOOD).unwrap().modems[0];
    assert_eq!(
        (modem.balance_ussd.as_deref(), modem.balance_interval_secs),
        (None, 86_400)
    );
    let source = format!("{GOOD}balance_ussd = \"*100#\"\nbalance_interval_secs = 3600\n");
    let modem = &parse(&source).unwrap().modems[0];
    assert_eq!(modem.balance_ussd.as_deref(), Some("*100#"));
    for (line, key) in [
        ("balance_ussd = \"*1\\\"0#\"", "`modem[0].balance_ussd`"),
        ("balance_ussd = \"\"", "`modem[0].balance_ussd`"),
        (
            "balance_interval_secs = 59",
            "`modem[0].balance_interval_secs`",
        ),
    ] {
        let message = parse(&format!("{GOOD}{line}\n")).unwrap_err().to_string();
        assert!(message.contains(key), "{line}: {message}");
    }
}

#[test]
fn webhooks_take_their_kind_of_events_and_a_whsec_secret() {
    let hook = |body: &str| format!("{GOOD}\n[[webhook]]\n{body}\n");
    let config = parse(&hook(
        "url = \"http://10.0.0.9:9000/hooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\naccount = \"ACxxxxxxxx\"",
    ))
    .unwrap();
    assert_eq!(config.webhooks[0].kinds().len(), 7, "every account event");
    let operator = parse(&hook(
        "url = \"https://ops.example/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"modem.down\", \"sms.received\"]",
    ))
    .unwrap();
    assert_eq!(
        operator.webhooks[0].kinds(),
        vec![
            crate::store::EventKind::ModemDown,
            crate::store::EventKind::SmsReceived
        ]
    );
    for (body, key, says) in [
        ("url = \"ftp://x/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"", "webhook[0].url", "http"),
        ("url = \"http://x/\"", "webhook[0].secret", "required"),
        ("url = \"http://x/\"\nsecret = \"hunter2\"", "webhook[0].secret", "whsec_"),
        (
            "url = \"http://x/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\naccount = \"ACnobody\"",
            "webhook[0].account",
            "names no",
        ),
        (
            "url = \"http://x/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"message.sent\"]",
            "webhook[0].events",
            "account event",
        ),
        (
            "url = \"http://x/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\naccount = \"ACxxxxxxxx\"\nevents = [\"modem.down\"]",
            "webhook[0].events",
            "operator event",
        ),
        (
            "url = \"http://x/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"modem.exploded\"]",
            "webhook[0].events",
            "not an event type",
        ),
    ] {
        let message = parse(&hook(body)).unwrap_err().to_string();
        assert!(message.contains(key) && message.contains(says), "{body}: {message}");
        assert!(!message.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{message}");
    }
}
