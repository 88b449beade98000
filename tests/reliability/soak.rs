//! Faults soak: sends through three simulated modems (on real pseudo-terminals) that
//! answer random `+CMS ERROR`s (temporary and permanent), fall silent (scripted hangs
//! after a submission, and `SimHandle::silence_for` at run time), get unplugged and
//! plugged back, and flood the line with URCs. At the end: 0 lost (every accepted code
//! arrived, or its message failed for a permanent reason), 0 stuck (every message
//! terminal, queue depth 0), memory flat (VmRSS sampled at start, middle and end).
//!
//! `SOAK_SECS=600 cargo test --test reliability soak -- --ignored --nocapture`
//! (or `scripts/soak.sh 10`); `SOAK_SEED` replays a run's random faults.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;
use sms2fa::app::Application;
use sms2fa::config::{AccountConfig, Config, ModemConfig, Requirements};
use sms2fa::modem::ModemState;
use sms2fa::sim::{Silence, SimHandle, SimOptions, SimPort, SmsLog, UrcStorm};

use crate::common::*;

const MODEMS: usize = 3;
const SENDERS: u64 = 2;
/// Pause of each sender between two requests: about 2 × 20 = 40 sends/s offered,
/// against three modems that each take 20 ms of radio time per SMS.
const PACING: Duration = Duration::from_millis(50);
const SEND_DELAY: Duration = Duration::from_millis(20);
/// `+CMS ERROR` codes the driver must retry (elsewhere) and those that fail a message.
const TEMPORARY: &[u16] = &[38, 41, 42, 47, 500, 332];
const PERMANENT: &[u16] = &[21, 29, 96];

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

fn config(state: &Path, ports: &[SimPort], run: Duration) -> Config {
    let mut config =
        Config::parse("", Path::new("soak"), Requirements::Nothing).expect("empty config");
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    config.storage.path = state.join("state");
    config.otp.resend_cooldown_secs = 0;
    config.otp.max_sends_per_number_per_day = 1_000_000;
    config.otp.max_sends_per_account_per_minute = 1_000_000;
    // Codes stay live for the whole run so that every one can be verified at the end.
    config.otp.allow_long_ttl = true;
    config.otp.ttl_secs = run.as_secs() + 900;
    config.accounts = vec![AccountConfig {
        sid: SID.into(),
        token: Some(TOKEN.into()),
        token_sha256: None,
    }];
    config.modems = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut modem = ModemConfig::new(&format!("sim{i}"), port.path().to_owned());
            modem.send_timeout_secs = 3;
            modem.health_interval_secs = 2;
            modem
        })
        .collect();
    config
}

#[derive(Default)]
struct Faults {
    silences: u64,
    unplugs: u64,
    urc_bursts: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes of load; run with scripts/soak.sh or --ignored"]
async fn soak() {
    let run = Duration::from_secs(env_or("SOAK_SECS", 600));
    let mut rng = Rng::from_env("SOAK_SEED");
    let dir = tempfile::tempdir().expect("temp dir");
    let sms = SmsLog::in_memory();
    let options: Vec<SimOptions> = (0..MODEMS)
        .map(|i| faulty_modem(&mut rng, i, 100_000))
        .collect();
    let handles: Vec<SimHandle> = options.iter().map(|o| o.handle.clone()).collect();
    let mut ports: Vec<SimPort> = options
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            SimPort::plug(dir.path().join(format!("modem{i}")), o, sms.clone()).expect("pty")
        })
        .collect();
    let config = config(dir.path(), &ports, run);
    let app = Application::build(&config)
        .await
        .expect("the daemon starts");
    let base = format!("http://{}", app.local_addr());
    let mut statuses: Vec<_> = app.modems().iter().map(|m| m.status.clone()).collect();
    let (stop_app, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    for status in &mut statuses {
        tokio::time::timeout(
            Duration::from_secs(30),
            status.wait_for(|s| s.state == ModemState::Ready),
        )
        .await
        .expect("every modem gets ready")
        .expect("status");
    }
    let client = Client::new();
    let rss_start = rss_kib("self");

    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let refused = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, base, next, stop) =
                (client.clone(), base.clone(), next.clone(), stop.clone());
            let (accepted, refused) = (accepted.clone(), refused.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let to = number(next.fetch_add(1, Ordering::Relaxed));
                    let response = client
                        .post(format!("{base}/2fa/send"))
                        .basic_auth(SID, Some(TOKEN))
                        .json(&send_body(&to))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .expect("the daemon answers");
                    let status = response.status().as_u16();
                    if status == 200 {
                        let json: Value = response.json().await.expect("json");
                        let id = json["requestID"].as_str().expect("requestID").to_owned();
                        accepted.lock().unwrap().push((to, id));
                    } else {
                        *refused.lock().unwrap().entry(status).or_default() += 1;
                    }
                    tokio::time::sleep(PACING).await;
                }
            })
        })
        .collect();

    // The run-time faults, one every 0.5–3 s on a random modem.
    let started = Instant::now();
    let mut faults = Faults::default();
    let mut replug_at: Vec<Option<Instant>> = vec![None; MODEMS];
    let mut rss_samples = vec![(0.0, rss_start)];
    let mut rss_mid = None;
    let mut next_sample = started + run / 10;
    while started.elapsed() < run {
        tokio::time::sleep(
            rng.millis(500, 3000)
                .min(run.saturating_sub(started.elapsed())),
        )
        .await;
        let now = Instant::now();
        for (i, at) in replug_at.iter_mut().enumerate() {
            if at.is_some_and(|at| at <= now) {
                ports[i].replug().expect("replug");
                *at = None;
            }
        }
        if now >= next_sample {
            let rss = rss_kib("self");
            rss_samples.push((started.elapsed().as_secs_f64(), rss));
            if rss_mid.is_none() && started.elapsed() >= run / 2 {
                rss_mid = Some(rss);
            }
            next_sample += run / 10;
        }
        let i = rng.range(0, MODEMS as u64) as usize;
        match rng.range(0, 3) {
            0 => {
                handles[i].silence_for(rng.millis(1000, 6000));
                faults.silences += 1;
            }
            // Keep at least one modem plugged, as an operator would.
            1 if replug_at[i].is_none()
                && replug_at.iter().filter(|a| a.is_some()).count() < MODEMS - 1 =>
            {
                ports[i].unplug();
                replug_at[i] = Some(now + rng.millis(500, 4000));
                faults.unplugs += 1;
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
                faults.urc_bursts += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("sender");
    }
    let rss_end = rss_kib("self");
    rss_samples.push((started.elapsed().as_secs_f64(), rss_end));
    let rss_mid = rss_mid.unwrap_or(rss_end);
    for (i, at) in replug_at.iter().enumerate() {
        if at.is_some() {
            ports[i].replug().expect("replug");
        }
    }

    // Drain: every accepted message terminal within the retry schedule (≤ 60 s gaps).
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    let drain_started = Instant::now();
    let mut messages: HashMap<String, Value> = HashMap::new();
    let mut stuck = Vec::new();
    let drain_deadline = drain_started + Duration::from_secs(180);
    for (_, id) in &accepted {
        match await_terminal(
            &client,
            &base,
            id,
            drain_deadline,
            Duration::from_millis(100),
        )
        .await
        {
            Ok(message) => {
                messages.insert(id.clone(), message);
            }
            Err(last) => stuck.push(format!("{id}: {last:?}")),
        }
    }
    let drain = drain_started.elapsed();
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
        .map(|v| v.trim().to_owned());

    // Tally.
    let mut by_number: HashMap<String, Vec<String>> = HashMap::new();
    for s in sms.all() {
        by_number.entry(s.number).or_default().push(s.text);
    }
    let mut lost = Vec::new();
    let mut failed_permanently: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicates = 0;
    let mut unexplained_duplicates = Vec::new();
    let mut verify_failures = Vec::new();
    let mut verified = 0;
    for (to, id) in &accepted {
        let Some(message) = messages.get(id) else {
            continue;
        };
        let texts = by_number.get(to);
        match message["status"].as_str().unwrap_or_default() {
            "failed" => {
                let reason = message["history"]
                    .as_array()
                    .and_then(|h| h.last())
                    .map(|t| t["detail"].as_str().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                let permanent = PERMANENT.iter().any(|c| reason.contains(&c.to_string()))
                    && !reason.contains("gave up")
                    && !reason.contains("expire");
                if permanent {
                    let code = reason
                        .split_whitespace()
                        .take(6)
                        .collect::<Vec<_>>()
                        .join(" ");
                    *failed_permanently.entry(code).or_default() += 1;
                } else if texts.is_none() {
                    lost.push(format!("{to}: failed, {reason}"));
                }
            }
            _ if texts.is_none() => lost.push(format!("{to}: {message} but no SMS")),
            _ => {}
        }
        let Some(texts) = texts else { continue };
        if texts.len() > 1 {
            duplicates += texts.len() - 1;
            if !says_may_arrive_twice(message) || texts.iter().any(|t| t != &texts[0]) {
                unexplained_duplicates.push(format!("{to}: {texts:?} {message}"));
            }
        }
        if message["status"] != "failed" {
            let code = code_in(texts.last().expect("one")).expect("the template");
            match verify(&client, &base, to, code).await {
                (200, _) => verified += 1,
                (status, body) => verify_failures.push(format!("{to}: {status} {body}")),
            }
        }
    }
    let refused = std::mem::take(&mut *refused.lock().unwrap());
    let sent_per_modem: Vec<u64> = handles
        .iter()
        .map(|h| h.stats().snapshot().sms_completed)
        .collect();
    let cms_per_modem: Vec<u64> = handles
        .iter()
        .map(|h| h.stats().snapshot().cms_errors)
        .collect();
    println!(
        "soak: {:.0} s, {} accepted ({refused:?} refused), {} SMS received {sent_per_modem:?} per modem, \
         {cms_per_modem:?} +CMS ERRORs per modem; run-time faults: {} silences, {} unplugs, {} URC bursts; \
         lost {}, stuck {}, failed permanently {failed_permanently:?}, duplicates {duplicates} (unexplained {}), \
         verified {verified}; drain {:.1} s, queue depth {queue_depth:?}; \
         VmRSS start {rss_start} KiB, middle {rss_mid} KiB, end {rss_end} KiB; samples {:?}",
        run.as_secs_f64(),
        accepted.len(),
        sms.all().len(),
        faults.silences,
        faults.unplugs,
        faults.urc_bursts,
        lost.len(),
        stuck.len(),
        unexplained_duplicates.len(),
        drain.as_secs_f64(),
        rss_samples
            .iter()
            .map(|(t, kib)| format!("{t:.0}s:{}MiB", kib / 1024))
            .collect::<Vec<_>>(),
    );
    let _ = stop_app.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), running).await;
    drop(ports);

    assert!(
        accepted.len() as u64 > run.as_secs(),
        "too little load: {}",
        accepted.len()
    );
    assert!(
        refused.is_empty(),
        "error answers under raised limits: {refused:?}"
    );
    assert!(
        stuck.is_empty(),
        "not terminal 180 s after the load: {stuck:#?}"
    );
    assert_eq!(queue_depth.as_deref(), Some("0"), "the queue is not empty");
    assert!(lost.is_empty(), "lost: {lost:#?}");
    assert!(
        unexplained_duplicates.is_empty(),
        "{unexplained_duplicates:#?}"
    );
    assert!(
        verify_failures.is_empty(),
        "codes that do not verify: {verify_failures:#?}"
    );
    // Flat: the second half of the run adds no more than a quarter (or 16 MiB, for short
    // runs where allocator noise dominates) to what the first half reached, and the whole
    // run no more than sled's page cache (32 MiB, `store::CACHE_CAPACITY`, which fills
    // while every code of the run stays live) plus 24 MiB.
    let allowed = (rss_mid / 4).max(16 * 1024);
    assert!(
        rss_end <= rss_mid + allowed && rss_end <= rss_start + (32 + 24) * 1024,
        "memory grows: start {rss_start} KiB, middle {rss_mid} KiB, end {rss_end} KiB"
    );
}
