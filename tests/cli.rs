//! The real `sms2fa` binary: the systemd notify protocol and lifecycle (SIGHUP reload,
//! SIGTERM stop), and the operator subcommands.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sms2fa::sim::{SimOptions, SimPort, SmsLog};

const BIN: &str = env!("CARGO_BIN_EXE_sms2fa");

/// Every datagram sent to a notify socket, as it arrives.
fn listen(socket: UnixDatagram) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Wait for a message that satisfies `want`; returns it and everything seen before.
fn expect(rx: &mpsc::Receiver<String>, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(message) if want(&message) => return message,
            Ok(message) => seen.push(message),
            Err(_) => break,
        }
    }
    panic!("no {what} among {seen:?}");
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with a pid we spawned and still own (not yet waited for).
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sms2fa did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_config(dir: &Path, device: &Path, token: &str) -> PathBuf {
    let config = dir.join("sms2fa.toml");
    let text = format!(
        r#"
[http]
listen = "127.0.0.1:0"

[storage]
path = "{}"

[[account]]
sid = "ACcli"
token = "{token}"

[[modem]]
name = "sim0"
device = "{}"
"#,
        dir.join("state").display(),
        device.display()
    );
    std::fs::write(&config, text).expect("write config");
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn notifies_systemd_through_start_reload_and_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let modem = SimPort::plug(
        dir.path().join("modem"),
        SimOptions::default(),
        SmsLog::in_memory(),
    )
    .expect("simulated modem");
    let config = write_config(dir.path(), modem.path(), "one");
    let socket_path = dir.path().join("notify");
    let messages = listen(UnixDatagram::bind(&socket_path).expect("notify socket"));

    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "warn")
        .env_remove("JOURNAL_STREAM")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .spawn()
        .expect("start sms2fa");

    expect(&messages, "READY=1", |m| m == "READY=1");
    let status = expect(&messages, "STATUS= with the modem ready", |m| {
        m.starts_with("STATUS=sim0: ready")
    });
    assert!(status.ends_with("0 queued"), "{status}");
    for _ in 0..2 {
        expect(&messages, "WATCHDOG=1", |m| m == "WATCHDOG=1");
    }

    // SIGHUP reloads the file: a broken one is refused, and the daemon goes on.
    std::fs::write(&config, "[nonsense]\n").expect("break config");
    signal(&child, libc::SIGHUP);
    let reloading = expect(&messages, "RELOADING=1", |m| m.starts_with("RELOADING=1"));
    assert!(reloading.contains("\nMONOTONIC_USEC="), "{reloading}");
    expect(&messages, "READY=1 after reload", |m| m == "READY=1");
    assert!(child.try_wait().expect("wait").is_none(), "died on reload");
    write_config(dir.path(), modem.path(), "two");
    signal(&child, libc::SIGHUP);
    expect(&messages, "RELOADING=1", |m| m.starts_with("RELOADING=1"));
    expect(&messages, "READY=1 after reload", |m| m == "READY=1");

    signal(&child, libc::SIGTERM);
    expect(&messages, "STOPPING=1", |m| m == "STOPPING=1");
    let exit = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn hash_token_reads_stdin_or_the_flag() {
    // printf '%s' secret | sha256sum
    let expected = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n";
    let mut child = Command::new(BIN)
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"secret\n")
        .expect("write");
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

    let output = Command::new(BIN)
        .args(["hash-token", "--token", "secret"])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

    let output = Command::new(BIN)
        .arg("hash-token")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success(), "an empty token must be refused");
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:8080\"\nlisen = 1\n").expect("write");
    let output = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("lisen"), "{stderr}");

    let output = Command::new(BIN)
        .args(["check-config", "--config", "packaging/sms2fa.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `simulate-modem` and `modem probe` / `modem ussd`, real processes, talking over a pty.
#[test]
fn probe_reads_a_simulated_modem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("gsm-sim");
    let mut simulator = Command::new(BIN)
        .args(["simulate-modem", "--pin", "1234", "--link"])
        .arg(&link)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start simulate-modem");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !link.exists() {
        assert!(
            Instant::now() < deadline,
            "the simulator never made {link:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let without_pin = Command::new(BIN)
        .args(["modem", "probe", "--device"])
        .arg(&link)
        .output()
        .expect("run probe");
    let stdout = String::from_utf8_lossy(&without_pin.stdout);
    assert!(!without_pin.status.success(), "{stdout}");
    assert!(stdout.contains("PIN"), "{stdout}");

    let probe = Command::new(BIN)
        .args(["modem", "probe", "--pin", "1234", "--device"])
        .arg(&link)
        .output()
        .expect("run probe");
    let stdout = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    for field in [
        "manufacturer",
        "model",
        "firmware",
        "imei",
        "sim           ready",
        "operator",
        "registration  home",
        "signal",
    ] {
        assert!(stdout.contains(field), "no {field:?} in\n{stdout}");
    }
    let imei = stdout
        .lines()
        .find_map(|line| line.strip_prefix("imei"))
        .expect("imei line")
        .trim();
    assert!(imei.contains("*****"), "IMEI not masked: {imei}");

    // `modem ussd` on the same simulated modem: the answer, decoded.
    let ussd = Command::new(BIN)
        .args(["modem", "ussd", "--pin", "1234", "--device"])
        .arg(&link)
        .arg("*100#")
        .output()
        .expect("run ussd");
    let stdout = String::from_utf8_lossy(&ussd.stdout);
    assert!(
        ussd.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ussd.stderr)
    );
    assert!(stdout.contains("status        0 (done)"), "{stdout}");
    assert!(stdout.contains("Your balance is 4.20 EUR"), "{stdout}");

    signal(&simulator, libc::SIGINT);
    let exit = wait_exit(&mut simulator, Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    let output = simulator.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&link.display().to_string()), "{stdout}");
    assert!(!link.exists(), "the link outlived the simulator");
}

/// A receiver on port 0 that records each request's headers and answers
/// `/ok` 204, `/broken` 500; its address.
async fn ping_receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<axum::http::HeaderMap>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = |status: StatusCode| {
        let seen = seen.clone();
        move |headers: HeaderMap, body: String| async move {
            assert!(body.contains(r#""type":"ping""#), "{body}");
            seen.lock().unwrap().push(headers);
            status
        }
    };
    let router = axum::Router::new()
        .route("/ok", axum::routing::post(record(StatusCode::NO_CONTENT)))
        .route(
            "/broken",
            axum::routing::post(record(StatusCode::INTERNAL_SERVER_ERROR)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_test_pings_every_endpoint_and_fails_unless_all_answer_2xx() {
    let (addr, seen) = ping_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), Path::new("/dev/null"), "t");
    let hook = |path: &str, name: &str| {
        format!(
            "\n[[webhook]]\nurl = \"http://{addr}/{path}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nname = \"{name}\"\n"
        )
    };
    let base = std::fs::read_to_string(&config).unwrap();
    let run = |text: String| {
        std::fs::write(&config, text).unwrap();
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["webhook", "test", "--config"])
                .arg(&config)
                .output()
                .unwrap()
        })
    };
    let good = run(format!("{base}{}", hook("ok", "crm"))).await.unwrap();
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}");
    assert!(stdout.contains("crm: ok (204)"), "{stdout}");
    {
        let seen = seen.lock().unwrap();
        let headers = &seen[0];
        assert!(headers["webhook-id"].to_str().unwrap().starts_with("evt_"));
        assert!(headers["webhook-signature"]
            .to_str()
            .unwrap()
            .starts_with("v1,"));
        assert!(headers.contains_key("webhook-timestamp"));
    }

    let mixed = run(format!(
        "{base}{}{}",
        hook("ok", "crm"),
        hook("broken", "pager")
    ))
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&mixed.stdout);
    assert!(!mixed.status.success(), "{stdout}");
    assert!(stdout.contains("crm: ok (204)"), "{stdout}");
    assert!(stdout.contains("pager: FAILED: answered 500"), "{stdout}");
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("1 of 2"));
}
