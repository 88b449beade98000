//! Crash suite: the real `sms2fa serve` binary under a steady send load is SIGKILLed at
//! random moments and restarted on the same state folder. Its modem is a separate
//! `sms2fa simulate-modem` process, so what reached the "network" survives each kill.
//! At the end: every send answered 200 reached the simulator and its code verifies;
//! nothing answered with an error, or never received, was sent; every duplicate belongs
//! to a message whose history admits it was being sent when the daemon died.
//!
//! `CRASH_KILLS=20 cargo test --test reliability crash -- --ignored --nocapture`
//! (or `scripts/crash.sh 20`); `CRASH_SEED` replays a run's random moments.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;

use crate::common::*;
use crate::daemon::*;

const SENDERS: u64 = 3;
/// Pause of each sender between two requests: about 3 × 25 = 75 sends/s offered.
const PACING: Duration = Duration::from_millis(40);
/// Radio time of the simulated modem per SMS: a message spends this long in `sending`,
/// which is the window where a kill can leave a duplicate.
const SEND_DELAY_MS: u64 = 5;

/// What a send request came to, as the client saw it.
#[derive(Debug, Clone)]
enum Outcome {
    /// 200: the send is durable; its SMS must arrive.
    Accepted { id: String },
    /// An HTTP error status: nothing may be sent.
    Refused { status: u16, body: String },
    /// The connection could not be made (daemon down): nothing may be sent.
    NotConnected,
    /// The connection broke, or no answer came in time: either way is right.
    Unknown { error: String },
}

fn write_config(dir: &Path, port: u16, device: &Path) -> PathBuf {
    let path = dir.join("sms2fa.toml");
    let text = format!(
        r#"
[http]
listen = "127.0.0.1:{port}"

[storage]
path = "{state}"

[otp]
resend_cooldown_secs = 0
max_sends_per_number_per_day = 1000000
max_sends_per_account_per_minute = 1000000

[log]
filter = "info,sms2fa::modem=debug"

[[account]]
sid = "{SID}"
token = "{TOKEN}"

[[modem]]
name = "sim"
device = "{device}"
send_timeout_secs = 3
"#,
        state = dir.join("state").display(),
        device = device.display(),
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// The SMS the simulator wrote so far, grouped by number, in arrival order.
fn received(sms_log: &Path) -> HashMap<String, Vec<String>> {
    let mut by_number: HashMap<String, Vec<String>> = HashMap::new();
    let Ok(text) = std::fs::read_to_string(sms_log) else {
        return by_number;
    };
    // The last line may be half-written while the simulator runs.
    for line in text.lines() {
        let Ok(sms) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let (Some(number), Some(text)) = (sms["number"].as_str(), sms["text"].as_str()) {
            by_number
                .entry(number.to_owned())
                .or_default()
                .push(text.to_owned());
        }
    }
    by_number
}

async fn sender(
    client: Client,
    base: String,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<BTreeMap<u64, Outcome>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let to = number(n);
        let outcome = match client
            .post(format!("{base}/2fa/send"))
            .basic_auth(SID, Some(TOKEN))
            .json(&send_body(&to))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) if status == 200 => {
                        let json: Value = serde_json::from_str(&body).expect("200 body is JSON");
                        Outcome::Accepted {
                            id: json["requestID"].as_str().expect("requestID").to_owned(),
                        }
                    }
                    Ok(body) => Outcome::Refused { status, body },
                    // The status line came, the body did not: a 200 that nobody read
                    // counts as unknown, and so does an error.
                    Err(e) => Outcome::Unknown {
                        error: format!("{status}, then {e}"),
                    },
                }
            }
            Err(e) if e.is_connect() => Outcome::NotConnected,
            Err(e) => Outcome::Unknown {
                error: e.to_string(),
            },
        };
        let pause = matches!(outcome, Outcome::NotConnected);
        outcomes.lock().unwrap().insert(n, outcome);
        tokio::time::sleep(if pause { PACING * 2 } else { PACING }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes of load; run with scripts/crash.sh or --ignored"]
async fn crash() {
    let kills: usize = env_or("CRASH_KILLS", 20);
    let mut rng = Rng::from_env("CRASH_SEED");
    let dir = tempfile::tempdir().expect("temp dir");
    // CRASH_KEEP=1 keeps the state folder, the daemon's log and the SMS log to look into.
    let dir = if std::env::var_os("CRASH_KEEP").is_some() {
        let kept = dir.keep();
        println!("state, logs: {}", kept.display());
        Kept::Path(kept)
    } else {
        Kept::Temp(dir)
    };
    let link = dir.path().join("modem");
    let sms_log = dir.path().join("sms.jsonl");
    let daemon_log = dir.path().join("daemon.log");
    let _simulator = {
        let child = Command::new(BIN)
            .args(["simulate-modem", "--link"])
            .arg(&link)
            .arg("--sms-log")
            .arg(&sms_log)
            .args(["--send-delay-ms", &SEND_DELAY_MS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sms2fa simulate-modem");
        Process {
            child,
            name: "sms2fa simulate-modem",
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !link.exists() {
        assert!(Instant::now() < deadline, "the simulator made no link");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let port = free_port();
    let config = write_config(dir.path(), port, &link);
    let base = format!("http://127.0.0.1:{port}");
    // No connection reuse: a request either reaches the daemon of the moment or fails to
    // connect, which tells "never received" apart from "broken mid-way".
    let client = Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");

    let started = Instant::now();
    let mut daemon = start_daemon(&config, &daemon_log);
    wait_healthy(&client, &base, &mut daemon).await;
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(BTreeMap::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            tokio::spawn(sender(
                client.clone(),
                base.clone(),
                next.clone(),
                stop.clone(),
                outcomes.clone(),
            ))
        })
        .collect();
    let mut restarts = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(rng.millis(100, 1200)).await;
        daemon.kill();
        tokio::time::sleep(rng.millis(0, 100)).await;
        daemon = start_daemon(&config, &daemon_log);
        restarts.push(wait_healthy(&client, &base, &mut daemon).await);
    }
    // A last stretch of load on a daemon left running, then let the queue drain.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("sender");
    }
    let load_time = started.elapsed();
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let accepted: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|(n, o)| match o {
            Outcome::Accepted { id } => Some((number(*n), id.clone())),
            _ => None,
        })
        .collect();

    // Every accepted message reaches a terminal status (a healthy modem: `sent`).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut messages: HashMap<String, Value> = HashMap::new();
    for (_, id) in &accepted {
        match await_terminal(&client, &base, id, deadline, Duration::from_millis(50)).await {
            Ok(message) => {
                messages.insert(id.clone(), message);
            }
            Err(last) => panic!("message {id} is not terminal 60 s after the load: {last:?}"),
        }
    }
    // The simulator records an SMS when its last part is in; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sms = received(&sms_log);

    let mut lost = Vec::new();
    let mut not_sent = Vec::new();
    let mut duplicates = 0;
    let mut unexplained_duplicates = Vec::new();
    let mut verified = 0;
    let mut verify_failures = Vec::new();
    for (to, id) in &accepted {
        let message = &messages[id];
        if message["status"] != "sent" {
            not_sent.push(format!("{id}: {message}"));
        }
        let Some(texts) = sms.get(to) else {
            lost.push(format!("{to} ({id}): {message}"));
            continue;
        };
        if texts.len() > 1 {
            duplicates += texts.len() - 1;
            let same = texts.iter().all(|t| t == &texts[0]);
            if !says_may_arrive_twice(message) || !same {
                unexplained_duplicates.push(format!("{to}: {texts:?} {message}"));
            }
        }
        let code = code_in(texts.last().expect("one")).expect("the template");
        match verify(&client, &base, to, code).await {
            (200, _) => verified += 1,
            (status, body) => verify_failures.push(format!("{to}: {status} {body}")),
        }
    }
    let mut wrongly_sent = Vec::new();
    let mut unknown_delivered = 0;
    let mut unknown_duplicates = 0;
    let (mut refused, mut not_connected, mut unknown) = (0, 0, 0);
    let mut refusals: BTreeMap<u16, usize> = BTreeMap::new();
    let mut unknown_errors: Vec<String> = Vec::new();
    for (n, outcome) in &outcomes {
        let got = sms.get(&number(*n)).map_or(0, Vec::len);
        match outcome {
            Outcome::Accepted { .. } => {}
            Outcome::Refused { status, body } => {
                refused += 1;
                *refusals.entry(*status).or_default() += 1;
                if got > 0 {
                    wrongly_sent.push(format!("{}: answered {status} {body}", number(*n)));
                }
            }
            Outcome::NotConnected => {
                not_connected += 1;
                if got > 0 {
                    wrongly_sent.push(format!("{}: never reached the daemon", number(*n)));
                }
            }
            Outcome::Unknown { error } => {
                unknown += 1;
                if unknown_errors.len() < 3 && !unknown_errors.contains(error) {
                    unknown_errors.push(error.clone());
                }
                unknown_delivered += usize::from(got > 0);
                unknown_duplicates += got.saturating_sub(1);
            }
        }
    }
    let strangers: Vec<&String> = sms
        .keys()
        .filter(|to| {
            to.strip_prefix("+1321")
                .and_then(|n| n.parse::<u64>().ok())
                .is_none_or(|n| !outcomes.contains_key(&n))
        })
        .collect();
    let restart_ms: Vec<u128> = restarts.iter().map(Duration::as_millis).collect();
    let mut sorted = restart_ms.clone();
    sorted.sort_unstable();
    println!(
        "crash: {kills} kills in {:.1} s; {} sends: {} accepted, {refused} refused {refusals:?}, \
         {not_connected} not connected, {unknown} broken mid-way ({unknown_delivered} of them delivered, \
         {unknown_duplicates} duplicate SMS; e.g. {unknown_errors:?}); lost {}, not sent {}, verified {verified}/{}, \
         duplicates {duplicates} (unexplained {}), wrongly sent {}, unknown numbers {}; \
         restart to healthy p50 {} ms, max {} ms; daemon RSS at the end {} KiB",
        load_time.as_secs_f64(),
        outcomes.len(),
        accepted.len(),
        lost.len(),
        not_sent.len(),
        accepted.len(),
        unexplained_duplicates.len(),
        wrongly_sent.len(),
        strangers.len(),
        sorted.get(sorted.len() / 2).copied().unwrap_or(0),
        sorted.last().copied().unwrap_or(0),
        rss_kib(&daemon.child.id().to_string()),
    );
    daemon.kill();
    let log = std::fs::read_to_string(&daemon_log).unwrap_or_default();
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert!(restarts.len() == kills, "{} restarts", restarts.len());
    assert!(
        accepted.len() > kills,
        "too little load: {} accepted",
        accepted.len()
    );
    assert!(lost.is_empty(), "accepted, never sent: {lost:#?}");
    assert!(not_sent.is_empty(), "accepted, not `sent`: {not_sent:#?}");
    assert!(
        verify_failures.is_empty(),
        "codes that do not verify: {verify_failures:#?}"
    );
    assert!(
        wrongly_sent.is_empty(),
        "sent although refused: {wrongly_sent:#?}"
    );
    assert!(
        unexplained_duplicates.is_empty(),
        "duplicates without `may arrive twice`: {unexplained_duplicates:#?}"
    );
    assert!(
        strangers.is_empty(),
        "SMS to numbers never asked for: {strangers:?}"
    );
    assert!(
        refusals.is_empty(),
        "error answers under a raised limit: {refusals:?}"
    );
    assert!(panics.is_empty(), "the daemon panicked: {panics:#?}");
}
