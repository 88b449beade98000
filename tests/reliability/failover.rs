//! Failover suite: a PostgreSQL primary with a synchronous streaming standby, two real
//! `sms2fa` hosts on a multi-host URL (`target_session_attrs=read-write`), each with
//! simulated modems of its own, under a steady send + verify load. Then:
//! 1. `kill -9` the primary and promote the standby (what Patroni would do);
//! 2. `kill -9` one gateway host, its modems mid-send.
//!
//! Reported: accepted codes lost (target 0: every one arrives and verifies), the
//! seconds during which sends or verifies were refused, duplicates and why, and the
//! time from the host's death to the first of its messages sent by the other host
//! (target ≤ `lease_secs` + 5 s).
//!
//! `scripts/failover.sh` (or `cargo test --test reliability failover -- --ignored
//! --nocapture`); `FAILOVER_PHASE_SECS` sets the length of each phase (default 20).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;
use sms2fa::sim::{SimOptions, SimPort, SmsLog};

use crate::common::*;
use crate::daemon::*;
use crate::postgres_server::{as_server_user, bin_dir, chown_to_server_user, ready};

/// The default lease: the takeover bound is this + 5 s.
const LEASE_SECS: u64 = 15;
/// Sends offered per second, over both hosts (and over the survivor at the end).
const SENDS_PER_SEC: u64 = 5;

/// One PostgreSQL server of the pair, run as `postgres` in the foreground.
struct Postgres {
    port: u16,
    data: PathBuf,
    process: Process,
}

fn postgres_command(bin: &Path, data: &Path, port: u16, log: &Path) -> Process {
    let log = std::fs::File::create(log).expect("postgres log");
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", data.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    as_server_user(&mut command);
    Process {
        child: command.spawn().expect("start postgres"),
        name: "postgres",
    }
}

fn wait_ready(bin: &Path, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(bin, port) {
        assert!(
            Instant::now() < deadline,
            "postgres on {port} does not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sql(port: u16, statement: &str) -> String {
    let output = Command::new(bin_dir().join("psql"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-d", "postgres", "-tAc", statement])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A primary that commits only once its standby has the WAL, and that standby.
fn start_pair(root: &Path) -> (Postgres, Postgres) {
    let bin = bin_dir();
    let primary_data = root.join("primary");
    std::fs::create_dir_all(&primary_data).expect("dir");
    chown_to_server_user(&primary_data);
    let status = as_server_user(&mut Command::new(bin.join("initdb")))
        .args(["--auth=trust", "--username=postgres", "--locale=C", "-D"])
        .arg(&primary_data)
        .stdout(Stdio::null())
        .status()
        .expect("initdb");
    assert!(status.success());
    std::fs::write(
        primary_data.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n\
         host replication all 127.0.0.1/32 trust\n",
    )
    .expect("pg_hba");
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(primary_data.join("postgresql.conf"))
        .expect("postgresql.conf");
    use std::io::Write;
    writeln!(
        conf,
        "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n\
         synchronous_commit = on\nsynchronous_standby_names = 'standby1'\n\
         max_connections = 200"
    )
    .expect("write conf");
    let primary_port = free_port();
    let primary = postgres_command(&bin, &primary_data, primary_port, &root.join("primary.log"));
    wait_ready(&bin, primary_port, &root.join("primary.log"));

    let standby_data = root.join("standby");
    std::fs::create_dir_all(&standby_data).expect("dir");
    std::fs::set_permissions(
        &standby_data,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    chown_to_server_user(&standby_data);
    let status = as_server_user(&mut Command::new(bin.join("pg_basebackup")))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &primary_port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-R", "-X", "stream", "-D"])
        .arg(&standby_data)
        .status()
        .expect("pg_basebackup");
    assert!(status.success());
    // Named for the primary's synchronous_standby_names; once promoted it has no
    // standby of its own to wait for.
    let mut auto = std::fs::OpenOptions::new()
        .append(true)
        .open(standby_data.join("postgresql.auto.conf"))
        .expect("postgresql.auto.conf");
    writeln!(
        auto,
        "primary_conninfo = 'host=127.0.0.1 port={primary_port} user=postgres application_name=standby1'\n\
         synchronous_standby_names = ''"
    )
    .expect("write auto conf");
    let standby_port = free_port();
    let standby = postgres_command(&bin, &standby_data, standby_port, &root.join("standby.log"));
    wait_ready(&bin, standby_port, &root.join("standby.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sql(
        primary_port,
        "SELECT coalesce(max(sync_state), '') FROM pg_stat_replication",
    ) != "sync"
    {
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sql(primary_port, "CREATE DATABASE sms2fa");
    (
        Postgres {
            port: primary_port,
            data: primary_data,
            process: primary,
        },
        Postgres {
            port: standby_port,
            data: standby_data,
            process: standby,
        },
    )
}

/// A gateway host: its daemon and its simulated modems (in this process).
struct Gateway {
    base: String,
    daemon: Process,
    sms: SmsLog,
    _modems: Vec<SimPort>,
}

fn start_gateway(
    root: &Path,
    name: &'static str,
    url: &str,
    key: &Path,
    radio: Duration,
) -> Gateway {
    let dir = root.join(name);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).expect("dir");
    std::fs::copy(key, state.join("secret.key")).expect("key");
    let sms = SmsLog::in_memory();
    let port = free_port();
    let mut config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [storage]\nbackend = \"postgres\"\npath = \"{}\"\nurl = \"{url}\"\n\n\
         [cluster]\nnode = \"{name}\"\nlease_secs = {LEASE_SECS}\n\n\
         [otp]\nttl_secs = 600\nresend_cooldown_secs = 0\n\
         max_sends_per_number_per_day = 1000\nmax_sends_per_account_per_minute = 1000000\n\n\
         [log]\nfilter = \"info\"\n\n\
         [[account]]\nsid = \"{SID}\"\ntoken = \"{TOKEN}\"\n",
        state.display()
    );
    let mut modems = Vec::new();
    for i in 0..2 {
        let options = SimOptions {
            send_delay: radio,
            ..SimOptions::default()
        };
        let modem =
            SimPort::plug(dir.join(format!("modem{i}")), options, sms.clone()).expect("pty");
        config.push_str(&format!(
            "\n[[modem]]\nname = \"{name}-m{i}\"\ndevice = \"{}\"\nsend_timeout_secs = 10\n",
            modem.path().display()
        ));
        modems.push(modem);
    }
    std::fs::write(dir.join("sms2fa.toml"), config).expect("config");
    Gateway {
        base: format!("http://127.0.0.1:{port}"),
        daemon: start_daemon(&dir.join("sms2fa.toml"), &dir.join("daemon.log")),
        sms,
        _modems: modems,
    }
}

/// What the load saw, with times since the start.
#[derive(Default)]
struct Tally {
    /// seq → (number, message id, host)
    accepted: BTreeMap<u64, (String, String, &'static str)>,
    /// (seconds, what) of every refused request on a live host.
    refused: Vec<(f64, String)>,
    verified: u64,
    verify_failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run by scripts/failover.sh"]
async fn failover() {
    let phase = Duration::from_secs(env_or("FAILOVER_PHASE_SECS", 20));
    let root = tempfile::tempdir().expect("temp dir");
    // The server runs as `nobody` when we are root: it must reach its folders.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let (mut primary, standby) = start_pair(root.path());
    let url = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/sms2fa?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let keys = root.path().join("keys");
    std::fs::create_dir_all(&keys).expect("dir");
    sms2fa::otp::SecretKey::load_or_create(&keys).expect("key");
    let key = keys.join("secret.key");
    // A's radio is slow, so that it is mid-send when it dies.
    let mut a = start_gateway(root.path(), "gw-a", &url, &key, Duration::from_millis(1500));
    let b = start_gateway(root.path(), "gw-b", &url, &key, Duration::from_millis(100));
    let client = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    wait_healthy(&client, &a.base, &mut a.daemon).await;
    let mut b_daemon = b.daemon;
    wait_healthy(&client, &b.base, &mut b_daemon).await;
    let b = Gateway {
        daemon: b_daemon,
        ..b
    };

    let started = Instant::now();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let a_alive = Arc::new(AtomicBool::new(true));
    let seq = Arc::new(AtomicU64::new(0));
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let sender = {
        let (tally, stop, a_alive, seq, client) = (
            tally.clone(),
            stop.clone(),
            a_alive.clone(),
            seq.clone(),
            client.clone(),
        );
        let (a_base, b_base) = (a_base.clone(), b_base.clone());
        tokio::spawn(async move {
            let pause = Duration::from_millis(1000 / SENDS_PER_SEC);
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let to_a = n % 2 == 0 && a_alive.load(Ordering::Relaxed);
                let (host, base) = if to_a {
                    ("gw-a", &a_base)
                } else {
                    ("gw-b", &b_base)
                };
                let to = number(n);
                let response = client
                    .post(format!("{base}/2fa/send"))
                    .basic_auth(SID, Some(TOKEN))
                    .json(&send_body(&to))
                    .send()
                    .await;
                let at = started.elapsed().as_secs_f64();
                match response {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        let id = body["requestID"].as_str().unwrap_or_default().to_owned();
                        tally.lock().unwrap().accepted.insert(n, (to, id, host));
                    }
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        tally
                            .lock()
                            .unwrap()
                            .refused
                            .push((at, format!("send on {host}: {status} {body}")));
                    }
                    // The host was killed between our check and the request.
                    Err(e) if !a_alive.load(Ordering::Relaxed) && to_a => {
                        let _ = e;
                    }
                    Err(e) => tally
                        .lock()
                        .unwrap()
                        .refused
                        .push((at, format!("send on {host}: {e}"))),
                }
                tokio::time::sleep(pause).await;
            }
        })
    };
    // Verify every code as it arrives, on the other host than the one that sent it
    // (on B once A is gone); a refusal is retried until it passes.
    let first_seen = Arc::new(Mutex::new(HashMap::<String, f64>::new()));
    let verifier = {
        let (tally, stop, a_alive, client) =
            (tally.clone(), stop.clone(), a_alive.clone(), client.clone());
        let (a_sms, b_sms) = (a.sms.clone(), b.sms.clone());
        let first_seen = first_seen.clone();
        let (a_base, b_base) = (a_base.clone(), b_base.clone());
        tokio::spawn(async move {
            let mut done: std::collections::HashSet<String> = Default::default();
            loop {
                let finishing = stop.load(Ordering::Relaxed);
                for (host, log) in [("gw-a", &a_sms), ("gw-b", &b_sms)] {
                    for sms in log.all() {
                        first_seen
                            .lock()
                            .unwrap()
                            .entry(format!("{host} {}", sms.number))
                            .or_insert(started.elapsed().as_secs_f64());
                        if done.contains(&sms.number) {
                            continue;
                        }
                        let Some(code) = code_in(&sms.text) else {
                            continue;
                        };
                        let on_a = host == "gw-b" && a_alive.load(Ordering::Relaxed);
                        let base = if on_a { &a_base } else { &b_base };
                        // A request to A as it is killed breaks: tried again on B.
                        let Some((status, body)) =
                            try_verify(&client, base, &sms.number, code).await
                        else {
                            continue;
                        };
                        match status {
                            200 => {
                                done.insert(sms.number.clone());
                                tally.lock().unwrap().verified += 1;
                            }
                            503 => tally
                                .lock()
                                .unwrap()
                                .refused
                                .push((started.elapsed().as_secs_f64(), format!("verify: {body}"))),
                            // A duplicate's code was verified already.
                            404 if done.contains(&sms.number) => {}
                            _ => tally
                                .lock()
                                .unwrap()
                                .verify_failures
                                .push(format!("{}: {status} {body}", sms.number)),
                        }
                    }
                }
                if finishing && stop.load(Ordering::SeqCst) {
                    let accepted = tally.lock().unwrap().accepted.len();
                    if done.len() >= accepted {
                        return done;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // 1. The database primary dies; the standby is promoted a second later.
    tokio::time::sleep(phase).await;
    primary.process.kill();
    let primary_killed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let promoted = as_server_user(&mut Command::new(bin_dir().join("pg_ctl")))
        .args(["promote", "-w", "-D"])
        .arg(&standby.data)
        .stdout(Stdio::null())
        .status()
        .expect("pg_ctl promote");
    assert!(promoted.success());
    let promoted_at = started.elapsed().as_secs_f64();
    let _ = &primary.data;

    // 2. Gateway A dies with its modems mid-send.
    tokio::time::sleep(phase).await;
    a_alive.store(false, Ordering::Relaxed);
    a.daemon.kill();
    let a_killed = started.elapsed().as_secs_f64();

    tokio::time::sleep(phase.max(Duration::from_secs(LEASE_SECS + 10))).await;
    stop.store(true, Ordering::SeqCst);
    sender.await.expect("sender");
    let verified = tokio::time::timeout(Duration::from_secs(120), verifier)
        .await
        .expect("every accepted code verifies within 2 minutes")
        .expect("verifier");

    // Tally.
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let first_seen = std::mem::take(&mut *first_seen.lock().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lost = Vec::new();
    let mut duplicates = 0;
    let mut unexplained = Vec::new();
    let mut takeover: Option<f64> = None;
    for (to, id, _) in tally.accepted.values() {
        if !verified.contains(to) {
            lost.push(to.clone());
        }
        let copies = a
            .sms
            .all()
            .iter()
            .chain(b.sms.all().iter())
            .filter(|s| &s.number == to)
            .count();
        let message = await_terminal(&client, &b.base, id, deadline, Duration::from_millis(100))
            .await
            .unwrap_or_else(|m| m.unwrap_or(Value::Null));
        let history = message["history"].to_string();
        if copies > 1 {
            duplicates += copies - 1;
            if !says_may_arrive_twice(&message) {
                unexplained.push(format!("{to}: {history}"));
            }
        }
        // A's messages that B took over: when B's modem sent the first of them.
        if history.contains("host gw-a stopped") {
            if let Some(&at) = first_seen.get(&format!("gw-b {to}")) {
                let after = at - a_killed;
                takeover = Some(takeover.map_or(after, |t: f64| t.min(after)));
            }
        }
    }
    let mut refused_seconds: Vec<u64> = tally
        .refused
        .iter()
        .map(|(at, _)| (*at * 10.0) as u64)
        .collect();
    refused_seconds.dedup();
    let refused_span = tally
        .refused
        .first()
        .zip(tally.refused.last())
        .map(|((first, _), (last, _))| (*first, *last));
    println!(
        "failover: {} accepted, {} verified, lost {}, duplicates {duplicates} (unexplained {}), \
         {} refused requests in {:.1} s of 100 ms slots {:?}; primary killed at {primary_killed:.1} s, \
         standby promoted at {promoted_at:.1} s; gateway A killed at {a_killed:.1} s, its first \
         message sent by B {} after",
        tally.accepted.len(),
        tally.verified,
        lost.len(),
        unexplained.len(),
        tally.refused.len(),
        refused_seconds.len() as f64 / 10.0,
        refused_span,
        takeover.map_or("never".to_owned(), |t| format!("{t:.1} s")),
    );
    for (at, what) in tally.refused.iter().take(20) {
        println!("  refused at {at:.2} s: {what}");
    }
    assert!(
        tally.accepted.len() as u64 > phase.as_secs() * 2,
        "too little load"
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    assert!(
        tally.verify_failures.is_empty(),
        "{:#?}",
        tally.verify_failures
    );
    let takeover = takeover.expect("some of A's messages were taken over by B");
    assert!(
        takeover <= (LEASE_SECS + 5) as f64,
        "takeover {takeover:.1} s; the target is lease_secs + 5 s"
    );
    drop(standby);
}

async fn try_verify(client: &Client, base: &str, number: &str, code: &str) -> Option<(u16, Value)> {
    let response = client
        .post(format!("{base}/2fa/verify"))
        .basic_auth(SID, Some(TOKEN))
        .json(&serde_json::json!({"service": SERVICE, "number": number, "code": code}))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}
