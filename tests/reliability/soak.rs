//! Faults soak: the real `sms2fa serve` binary, a process of its own, under a steady
//! send load through three simulated modems (in this process, on real
//! pseudo-terminals) that answer random `+CMS ERROR`s (temporary and permanent), fall
//! silent (scripted hangs after a submission, and `SimHandle::silence_for` at run
//! time), get unplugged and plugged back, and flood the line with URCs.
//!
//! The load is a steady state, as in production: every code is verified as its SMS
//! arrives, numbers come from a fixed pool of users, histories age out
//! (`message_retention` far shorter than the run) and codes expire. So the daemon's
//! data should stop growing, and its memory (VmRSS of its process, sampled every 10 s)
//! level off: the target is less than 5 % growth over the last third of the run
//! (the median of its last two minutes against that of its first two; see
//! `LastThird`), checked for runs of 10 minutes and more (shorter ones are all warm-up).
//!
//! Each message is checked while its history is still kept: a few minutes after it
//! was accepted (past its code's lifetime, so it must be terminal by then), and the
//! rest at the end. 0 lost (every accepted code arrived and verified, or its message
//! failed for a permanent reason), 0 stuck (terminal by its check, queue empty at the
//! end), every duplicate explained ("may arrive twice" in its history).
//!
//! `SOAK_SECS=3600 cargo test --test reliability soak -- --ignored --nocapture`
//! (or `scripts/soak.sh 60`); `SOAK_SEED` replays a run's random faults.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};
use sms2fa::sim::{Silence, SimHandle, SimOptions, SimPort, SmsLog, UrcStorm};

use crate::common::*;
use crate::daemon::*;

const MODEMS: usize = 3;
const SENDERS: u64 = 2;
/// Pause of each sender between two requests: about 2 × 10 = 20 sends/s offered,
/// against three modems that each take 20 ms of radio time per SMS. Under the faults
/// below the three drain only about 40 SMS/s together (each spends half its time
/// silent, resetting or unplugged: measured 2026-12-02), so the load has headroom, as
/// a production gateway must; at 40 sends/s the queue stood 50 s deep for the whole
/// run and codes retried twice expired in it (an overload run, not a steady state).
const PACING: Duration = Duration::from_millis(100);
const SEND_DELAY: Duration = Duration::from_millis(20);
/// `+CMS ERROR` codes the driver must retry (elsewhere) and those that fail a message.
const TEMPORARY: &[u16] = &[38, 41, 42, 47, 500, 332];
const PERMANENT: &[u16] = &[21, 29, 96];
/// Users: each send goes to one of these numbers, so per-number state is bounded.
const NUMBERS: u64 = 2_000;
/// A code's lifetime: a message is terminal (sent, delivered or failed) by then.
const TTL_SECS: u64 = 180;
/// When a message's status is read: past its code's lifetime, well before its
/// history ages out (`RETENTION_MINUTES`).
const CHECK_AFTER: Duration = Duration::from_secs(TTL_SECS + 30);
const RETENTION_MINUTES: u64 = 6;
const RSS_EVERY: Duration = Duration::from_secs(10);
/// Growth allowed over the last third of the run (`LastThird::growth`).
const LEVEL_OFF: f64 = 0.05;
const MEMORY_CHECKED_FROM: Duration = Duration::from_secs(600);

/// Scripted faults for one modem's first `submissions` bodies (the count restarts when
/// the modem is plugged in again, and the script with it).
fn faulty_modem(rng: &mut Rng, index: usize, submissions: u64) -> SimOptions {
    let mut cms_errors = BTreeMap::new();
    let mut silences = Vec::new();
    for k in 1..=submissions {
        if rng.chance(40) {
            cms_errors.insert(k, TEMPORARY[rng.range(0, TEMPORARY.len() as u64) as usize]);
        } else if rng.chance(3) {
            cms_errors.insert(k, PERMANENT[rng.range(0, PERMANENT.len() as u64) as usize]);
        } else if rng.chance(4) {
            silences.push(Silence {
                at_send: k,
                duration: rng.millis(1000, 5000),
                delivered: rng.chance(500),
            });
        }
    }
    SimOptions {
        send_delay: SEND_DELAY,
        cms_errors,
        silences,
        // One Huawei-style flooder among the three, the others quiet until injected.
        urc_storm: (index == 0).then(|| UrcStorm::every(Duration::from_millis(100))),
        handle: SimHandle::new(),
        ..SimOptions::default()
    }
}

fn write_soak_config(dir: &Path, port: u16, ports: &[SimPort]) -> std::path::PathBuf {
    let mut text = format!(
        r#"
[http]
listen = "127.0.0.1:{port}"

[storage]
path = "{state}"
message_retention = "{RETENTION_MINUTES}m"

[otp]
ttl_secs = {TTL_SECS}
resend_cooldown_secs = 0
max_sends_per_number_per_day = 1000
max_sends_per_account_per_minute = 1000000

[log]
filter = "{filter}"

[[account]]
sid = "{SID}"
token = "{TOKEN}"
"#,
        state = dir.join("state").display(),
        filter = std::env::var("SOAK_LOG").unwrap_or_else(|_| "warn".to_owned()),
    );
    for (i, modem) in ports.iter().enumerate() {
        text.push_str(&format!(
            "\n[[modem]]\nname = \"sim{i}\"\ndevice = \"{}\"\nsend_timeout_secs = 3\nhealth_interval_secs = 2\n",
            modem.path().display()
        ));
    }
    let path = dir.join("sms2fa.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// One accepted send.
#[derive(Debug, Clone)]
struct Accepted {
    seq: u64,
    to: String,
    id: String,
    at: Instant,
}

/// The run's folder (the daemon's config, log and state): removed when the run passes,
/// kept when any check fails, so the daemon's log can say why. Declared first in the
/// test, it is dropped last, after the daemon is stopped.
struct KeptOnFailure(Option<tempfile::TempDir>);

impl KeptOnFailure {
    fn path(&self) -> &Path {
        // Some until drop, the only place that takes it.
        self.0.as_ref().expect("the run's folder").path()
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take().filter(|_| std::thread::panicking()) {
            eprintln!(
                "soak failed: the daemon's log and state are kept in {} (SOAK_LOG=<filter> logs more)",
                dir.keep().display()
            );
        }
    }
}

/// What a message's status said when it was checked.
#[derive(Debug, Clone)]
struct Checked {
    status: String,
    reason: String,
    may_arrive_twice: bool,
    /// The message's history, printed for a message that was lost.
    history: Value,
    /// Seconds from queued to its first `sending`: the queue's wait.
    first_wait: Option<f64>,
}

/// Seconds between the first `queued` and the first `sending` of a history.
fn first_wait(history: &Value) -> Option<f64> {
    let steps = history.as_array()?;
    let at = |status: &str| {
        steps
            .iter()
            .find(|s| s["status"] == status)
            .and_then(|s| s["at"].as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let wait = at("sending")? - at("queued")?;
    Some(wait.num_milliseconds() as f64 / 1000.0)
}

/// The run's shared tallies.
#[derive(Default)]
struct Tally {
    /// Accepted and not yet checked, oldest first.
    unchecked: VecDeque<Accepted>,
    accepted: HashMap<u64, Accepted>,
    refused: BTreeMap<u16, u64>,
    checked: HashMap<u64, Checked>,
    stuck: Vec<String>,
    /// SMS received per send.
    arrivals: HashMap<u64, u64>,
    verified: u64,
    verify_failures: Vec<String>,
    stray_sms: Vec<String>,
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn service(seq: u64) -> String {
    format!("soak-{seq}")
}

/// "Your 123456 for login #42" → (42, "123456").
fn read_sms(text: &str) -> Option<(u64, &str)> {
    let (code, seq) = text.strip_prefix("Your ")?.split_once(" for login #")?;
    Some((seq.parse().ok()?, code))
}

async fn check(client: &Client, base: &str, accepted: &Accepted) -> Result<Checked, String> {
    // Terminal by its code's expiry; a minute more for the last retry to be recorded.
    let deadline = accepted.at + CHECK_AFTER + Duration::from_secs(60);
    match await_terminal(client, base, &accepted.id, deadline, Duration::from_secs(1)).await {
        Ok(message) => Ok(Checked {
            status: message["status"].as_str().unwrap_or_default().to_owned(),
            reason: message["history"]
                .as_array()
                .and_then(|h| h.last())
                .map(|t| t["detail"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_default(),
            may_arrive_twice: says_may_arrive_twice(&message),
            history: message["history"].clone(),
            first_wait: first_wait(&message["history"]),
        }),
        Err(last) => Err(format!(
            "#{} {}: not terminal {:?} after acceptance: {last:?}",
            accepted.seq,
            accepted.id,
            accepted.at.elapsed()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes of load; run with scripts/soak.sh or --ignored"]
async fn soak() {
    let run = Duration::from_secs(env_or("SOAK_SECS", 600));
    let mut rng = Rng::from_env("SOAK_SEED");
    let dir = KeptOnFailure(Some(tempfile::tempdir().expect("temp dir")));
    let sms = SmsLog::in_memory();
    let options: Vec<SimOptions> = (0..MODEMS)
        .map(|i| faulty_modem(&mut rng, i, 400_000))
        .collect();
    let handles: Vec<SimHandle> = options.iter().map(|o| o.handle.clone()).collect();
    let mut ports: Vec<SimPort> = options
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            SimPort::plug(dir.path().join(format!("modem{i}")), o, sms.clone()).expect("pty")
        })
        .collect();
    let port = free_port();
    let config = write_soak_config(dir.path(), port, &ports);
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let pid = daemon.child.id().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    wait_healthy(&client, &base, &mut daemon).await;
    let ready_by = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map_or(true, |r| r.status() != 200)
    {
        assert!(Instant::now() < ready_by, "no modem ready after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, base, next, stop, tally) = (
                client.clone(),
                base.clone(),
                next.clone(),
                stop.clone(),
                tally.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let to = number(seq % NUMBERS);
                    let body = json!({
                        "service": service(seq),
                        "from": FROM,
                        "to": to,
                        "body": format!("Your {{code}} for login #{seq}"),
                    });
                    let response = client
                        .post(format!("{base}/2fa/send"))
                        .basic_auth(SID, Some(TOKEN))
                        .json(&body)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .expect("the daemon answers");
                    let status = response.status().as_u16();
                    if status == 200 {
                        let json: Value = response.json().await.expect("json");
                        let id = json["requestID"].as_str().expect("requestID").to_owned();
                        let accepted = Accepted {
                            seq,
                            to,
                            id,
                            at: Instant::now(),
                        };
                        let mut tally = lock(&tally);
                        tally.unchecked.push_back(accepted.clone());
                        tally.accepted.insert(seq, accepted);
                    } else {
                        *lock(&tally).refused.entry(status).or_default() += 1;
                    }
                    tokio::time::sleep(PACING).await;
                }
            })
        })
        .collect();

    // Every SMS is verified as it arrives, as a user would.
    let verifying = Arc::new(AtomicBool::new(true));
    let verifier = {
        let (client, base, sms, tally, verifying) = (
            client.clone(),
            base.clone(),
            sms.clone(),
            tally.clone(),
            verifying.clone(),
        );
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let fresh = sms.since(seen);
                seen += fresh.len();
                for received in fresh {
                    let Some((seq, code)) = read_sms(&received.text) else {
                        lock(&tally).stray_sms.push(received.text.clone());
                        continue;
                    };
                    let first = {
                        let mut tally = lock(&tally);
                        let arrivals = tally.arrivals.entry(seq).or_default();
                        *arrivals += 1;
                        *arrivals == 1
                    };
                    if !first {
                        continue;
                    }
                    let response = client
                        .post(format!("{base}/2fa/verify"))
                        .basic_auth(SID, Some(TOKEN))
                        .json(&json!({"service": service(seq), "number": received.number, "code": code}))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .expect("verify request");
                    let status = response.status().as_u16();
                    let mut tally = lock(&tally);
                    if status == 200 {
                        tally.verified += 1;
                    } else {
                        let body = format!("#{seq}: {status}");
                        tally.verify_failures.push(body);
                    }
                }
                if !verifying.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // Each message is read once its code has expired, before its history is swept.
    let checking = Arc::new(AtomicBool::new(true));
    let checker = {
        let (client, base, tally, checking) = (
            client.clone(),
            base.clone(),
            tally.clone(),
            checking.clone(),
        );
        tokio::spawn(async move {
            loop {
                let due = {
                    let mut tally = lock(&tally);
                    let draining = !checking.load(Ordering::Relaxed);
                    let ready = tally
                        .unchecked
                        .front()
                        .is_some_and(|a| draining || a.at.elapsed() >= CHECK_AFTER);
                    if ready {
                        tally.unchecked.pop_front()
                    } else if draining {
                        return;
                    } else {
                        None
                    }
                };
                let Some(accepted) = due else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let result = check(&client, &base, &accepted).await;
                let mut tally = lock(&tally);
                match result {
                    Ok(checked) => {
                        tally.checked.insert(accepted.seq, checked);
                    }
                    Err(stuck) => tally.stuck.push(stuck),
                }
            }
        })
    };

    // The run-time faults, one every 0.5–3 s on a random modem; RSS every 10 s.
    let started = Instant::now();
    let (mut silences, mut unplugs, mut urc_bursts) = (0, 0, 0);
    let mut replug_at: Vec<Option<Instant>> = vec![None; MODEMS];
    let mut rss = vec![(0.0, rss_kib(&pid))];
    let mut next_sample = started + RSS_EVERY;
    while started.elapsed() < run {
        let pause = rng.millis(500, 3000);
        let until_sample = next_sample.saturating_duration_since(Instant::now());
        tokio::time::sleep(
            pause
                .min(until_sample)
                .min(run.saturating_sub(started.elapsed())),
        )
        .await;
        let now = Instant::now();
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "the daemon exited during the run: {status}; see {}",
                log.display()
            );
        }
        if now >= next_sample {
            rss.push((started.elapsed().as_secs_f64(), rss_kib(&pid)));
            next_sample += RSS_EVERY;
            continue;
        }
        for (i, at) in replug_at.iter_mut().enumerate() {
            if at.is_some_and(|at| at <= now) {
                ports[i].replug().expect("replug");
                *at = None;
            }
        }
        let i = rng.range(0, MODEMS as u64) as usize;
        match rng.range(0, 3) {
            0 => {
                handles[i].silence_for(rng.millis(1000, 6000));
                silences += 1;
            }
            // Keep at least one modem plugged, as an operator would.
            1 if replug_at[i].is_none()
                && replug_at.iter().filter(|a| a.is_some()).count() < MODEMS - 1 =>
            {
                ports[i].unplug();
                replug_at[i] = Some(now + rng.millis(500, 4000));
                unplugs += 1;
            }
            _ => {
                for k in 0..rng.range(20, 200) {
                    handles[i].inject_urc(match k % 4 {
                        0 => "^RSSI: 12",
                        1 => "+CREG: 1",
                        2 => "^MODE: 5,4",
                        _ => "+CMTI: \"SM\",3",
                    });
                }
                urc_bursts += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("sender");
    }
    rss.push((started.elapsed().as_secs_f64(), rss_kib(&pid)));
    for (i, at) in replug_at.iter().enumerate() {
        if at.is_some() {
            ports[i].replug().expect("replug");
        }
    }

    // Drain: the rest of the messages are checked as soon as they are terminal.
    let drain_started = Instant::now();
    checking.store(false, Ordering::Relaxed);
    checker.await.expect("checker");
    let drain = drain_started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    verifying.store(false, Ordering::Relaxed);
    verifier.await.expect("verifier");
    let queue_depth = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
        .lines()
        .find_map(|l| l.strip_prefix("sms2fa_queue_depth "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    let rss_final = rss_kib(&pid);
    daemon.kill();

    // Tally.
    let tally = std::mem::take(&mut *lock(&tally));
    let mut lost = Vec::new();
    let mut failed_permanently: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicates = 0;
    let mut unexplained_duplicates = Vec::new();
    for (seq, accepted) in &tally.accepted {
        let arrivals = tally.arrivals.get(seq).copied().unwrap_or(0);
        let Some(checked) = tally.checked.get(seq) else {
            continue; // stuck: reported as such
        };
        if arrivals == 0 {
            let permanent = checked.status == "failed"
                && PERMANENT
                    .iter()
                    .any(|c| checked.reason.contains(&c.to_string()))
                && !checked.reason.contains("gave up")
                && !checked.reason.contains("expire");
            if permanent {
                let code = checked
                    .reason
                    .split_whitespace()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" ");
                *failed_permanently.entry(code).or_default() += 1;
            } else {
                lost.push(format!(
                    "#{seq} {} {} accepted {:.1} s into the run: {} {}",
                    accepted.to,
                    accepted.id,
                    accepted.at.duration_since(started).as_secs_f64(),
                    checked.status,
                    checked.history
                ));
            }
        }
        if arrivals > 1 {
            duplicates += arrivals - 1;
            if !checked.may_arrive_twice {
                unexplained_duplicates.push(format!("#{seq}: {arrivals} SMS, {checked:?}"));
            }
        }
    }
    let level = LastThird::of(&rss, run.as_secs_f64());
    let growth = level.growth();
    let sent_per_modem: Vec<u64> = handles
        .iter()
        .map(|h| h.stats().snapshot().sms_completed)
        .collect();
    let cms_per_modem: Vec<u64> = handles
        .iter()
        .map(|h| h.stats().snapshot().cms_errors)
        .collect();
    println!(
        "soak: {:.0} s, {} accepted ({:?} refused), {} SMS received {sent_per_modem:?} per modem, \
         {cms_per_modem:?} +CMS ERRORs per modem; run-time faults: {silences} silences, \
         {unplugs} unplugs, {urc_bursts} URC bursts; lost {}, stuck {}, failed permanently \
         {failed_permanently:?}, duplicates {duplicates} (unexplained {}), verified {} \
         (failures {}); drain {:.1} s, queue depth {queue_depth:?}",
        run.as_secs_f64(),
        tally.accepted.len(),
        tally.refused,
        sms.all().len(),
        lost.len(),
        tally.stuck.len(),
        unexplained_duplicates.len(),
        tally.verified,
        tally.verify_failures.len(),
        drain.as_secs_f64(),
    );
    let mut waits: Vec<f64> = tally
        .checked
        .values()
        .filter_map(|c| c.first_wait)
        .collect();
    waits.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        waits
            .get(((waits.len() as f64 * q) as usize).min(waits.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "soak queue wait (queued to first sending): median {:.2} s, p99 {:.2} s, max {:.2} s",
        quantile(0.5),
        quantile(0.99),
        quantile(1.0),
    );
    println!(
        "soak memory (daemon VmRSS): start {} MiB, last third: median of its first {:.0} s \
         {:.1} MiB, of its last {:.0} s {:.1} MiB, peak {:.1} MiB; end {:.1} MiB, after drain \
         {:.1} MiB: last third {:+.1} %",
        rss[0].1 / 1024,
        level.window_secs,
        level.first_median as f64 / 1024.0,
        level.window_secs,
        level.last_median as f64 / 1024.0,
        level.peak as f64 / 1024.0,
        rss.last().map_or(0, |s| s.1) as f64 / 1024.0,
        rss_final as f64 / 1024.0,
        growth * 100.0,
    );
    println!(
        "soak samples (s:MiB): {}",
        rss.iter()
            .map(|(t, kib)| format!("{t:.0}:{:.1}", *kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" ")
    );

    assert!(
        tally.accepted.len() as u64 > run.as_secs(),
        "too little load: {}",
        tally.accepted.len()
    );
    assert!(
        tally.refused.is_empty(),
        "error answers under raised limits: {:?}",
        tally.refused
    );
    assert!(tally.stuck.is_empty(), "not terminal: {:#?}", tally.stuck);
    assert_eq!(queue_depth, Some(0.0), "the queue is not empty");
    assert!(lost.is_empty(), "lost: {lost:#?}");
    assert!(
        unexplained_duplicates.is_empty(),
        "{unexplained_duplicates:#?}"
    );
    assert!(
        tally.verify_failures.is_empty(),
        "codes that do not verify: {:#?}",
        tally.verify_failures
    );
    assert!(tally.stray_sms.is_empty(), "{:?}", tally.stray_sms);
    if run >= MEMORY_CHECKED_FROM {
        assert!(
            growth < LEVEL_OFF,
            "memory does not level off: {:+.1} % over the last third",
            growth * 100.0
        );
    }
}

/// How the daemon's memory moved over the last third of the run, as a trend that one
/// sample cannot decide: the median of the samples in the third's first window against
/// the median of those in its last window (2 minutes each, or a quarter of the third in
/// short runs). The 25-minute run of 2026-12-02 failed a peak-against-one-sample check
/// on a single 25.9 MiB sample among neighbours at 22.9–23.3 MiB; a leak still shows, as
/// it moves every sample of the last window.
struct LastThird {
    window_secs: f64,
    first_median: u64,
    last_median: u64,
    peak: u64,
}

impl LastThird {
    const WINDOW_SECS: f64 = 120.0;

    fn of(samples: &[(f64, u64)], run_secs: f64) -> Self {
        let from = run_secs * 2.0 / 3.0;
        let window_secs = Self::WINDOW_SECS.min((run_secs - from) / 4.0);
        let median_between = |lo: f64, hi: f64| {
            let mut kib: Vec<u64> = samples
                .iter()
                .filter(|(t, _)| *t >= lo && *t <= hi)
                .map(|(_, kib)| *kib)
                .collect();
            kib.sort_unstable();
            kib.get(kib.len() / 2).copied().unwrap_or(0)
        };
        Self {
            window_secs,
            first_median: median_between(from, from + window_secs),
            last_median: median_between(run_secs - window_secs, run_secs),
            peak: samples
                .iter()
                .filter(|(t, _)| *t >= from)
                .map(|(_, kib)| *kib)
                .max()
                .unwrap_or(0),
        }
    }

    fn growth(&self) -> f64 {
        self.last_median as f64 / self.first_median.max(1) as f64 - 1.0
    }
}

#[test]
fn one_transient_sample_does_not_decide_the_trend_but_a_leak_does() {
    // 25 minutes sampled every 10 s, flat at 23 MiB with one 26 MiB spike at 1,160 s
    // (the 2026-12-02 run's shape).
    let flat: Vec<(f64, u64)> = (0..=150)
        .map(|i| {
            let t = i as f64 * 10.0;
            (t, if t == 1160.0 { 26 * 1024 } else { 23 * 1024 })
        })
        .collect();
    let level = LastThird::of(&flat, 1500.0);
    assert!(level.growth().abs() < 1e-9, "{}", level.growth());
    assert_eq!(level.peak, 26 * 1024);
    // The same run leaking 1 MiB a minute grows ~20 % over its last third.
    let leaking: Vec<(f64, u64)> = flat
        .iter()
        .map(|(t, _)| (*t, 23 * 1024 + (*t / 60.0 * 1024.0) as u64))
        .collect();
    assert!(LastThird::of(&leaking, 1500.0).growth() > 0.05);
}
