//! Issue 7.3: verify latency and memory with many live codes, and the purge task's cost.
//! Driven by `bench/scale.sh`; two steps so that RSS is the one of a process that opens
//! an existing store, like the daemon after a restart:
//!
//!   scale fill   --state DIR --codes N [--accounts A] [--concurrency C]
//!   scale verify --state DIR --codes N [--accounts A] [--samples S] [--purge]
//!
//! `fill` issues N codes through `TwoFactor::send` (the daemon's path: code record,
//! expiry index and outbox message in one transaction, flushed before returning) with C
//! sends in flight. The codes are spread over A account ids: the store keeps each
//! account's send history for the per-minute limit as one record rewritten on every send
//! (see docs/benchmarks.md), which makes a single-account fill quadratic.
//! `verify` opens the store, runs S sequential `TwoFactor::verify` calls with a wrong code
//! for random live numbers (each one durable), prints p50/p99 and the RSS, and with
//! `--purge` moves the clock past the TTL and times the purge of them all (batches of 1,000, as housekeeping does).
//! Output: one JSON object on stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sms2fa::config::{Config, Requirements};
use sms2fa::otp::{CodeHasher, ManualClock, SecretKey, ServiceName, Template};
use sms2fa::service::{Policy, SendRequest, TwoFactor, VerifyRequest};
use sms2fa::sms::PhoneNumber;
use sms2fa::store::SharedStore;
use tokio::sync::Notify;

struct Args {
    mode: String,
    state: PathBuf,
    codes: u64,
    accounts: u64,
    concurrency: usize,
    samples: usize,
    purge: bool,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().expect("fill | verify");
    let mut args = Args {
        mode,
        state: PathBuf::from("/tmp/sms2fa-scale"),
        codes: 1000,
        accounts: 1000,
        concurrency: 64,
        samples: 2000,
        purge: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--state" => args.state = value().into(),
            "--codes" => args.codes = value().parse().expect("N"),
            "--accounts" => args.accounts = value().parse().expect("A"),
            "--concurrency" => args.concurrency = value().parse().expect("C"),
            "--samples" => args.samples = value().parse().expect("S"),
            "--purge" => args.purge = true,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (t(11) + t(12)) / 100.0
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn number(i: u64) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1556{i:07}")).expect("E.164")
}

fn account(i: u64, accounts: u64) -> String {
    format!("AC{:05}", i % accounts)
}

async fn open(state: &Path, clock: Arc<ManualClock>) -> (SharedStore, TwoFactor) {
    std::fs::create_dir_all(state).expect("state dir");
    let key = SecretKey::load_or_create(state).expect("key");
    let mut config = Config::parse("", Path::new("scale"), Requirements::Nothing).expect("config");
    config.storage.path = state.to_owned();
    let store = sms2fa::store::open(&config.storage, &config.cluster, &key, clock)
        .await
        .expect("store");
    config.otp.resend_cooldown_secs = 0;
    config.otp.max_sends_per_number_per_day = 1_000_000;
    config.otp.max_sends_per_account_per_minute = 1_000_000_000;
    config.otp.max_attempts = 1_000_000;
    config.otp.max_failures_per_number = 100;
    let policy = Policy::from_config(&config);
    let twofa = TwoFactor::new(
        store.clone(),
        CodeHasher::new(key),
        policy,
        Arc::new(Notify::new()),
    );
    (store, twofa)
}

async fn fill(args: &Args) -> serde_json::Value {
    let (_store, twofa) = open(&args.state, Arc::new(ManualClock::new())).await;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let twofa = twofa.clone();
        let next = next.clone();
        let (codes, accounts) = (args.codes, args.accounts);
        tasks.push(tokio::spawn(async move {
            let service = ServiceName::parse("Bench").expect("service");
            let from = PhoneNumber::parse("+15550000000").expect("from");
            let body = Template::parse("Your verification code is: {code}").expect("body");
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= codes {
                    break;
                }
                let request = SendRequest {
                    service: service.clone(),
                    from: from.clone(),
                    to: number(i),
                    body: body.clone(),
                };
                twofa
                    .send(&account(i, accounts), &request)
                    .await
                    .expect("send");
            }
        }));
    }
    for task in tasks {
        task.await.expect("fill task");
    }
    let seconds = started.elapsed().as_secs_f64();
    serde_json::json!({
        "mode": "fill", "codes": args.codes, "seconds": seconds,
        "sends_per_s": args.codes as f64 / seconds, "cpu_s": cpu_seconds() - cpu0,
        "rss_mib": status_kib("VmRSS:") as f64 / 1024.0,
        "db_mib": dir_size(&args.state.join("db")) as f64 / 1048576.0,
    })
}

async fn verify(args: &Args) -> serde_json::Value {
    let clock = Arc::new(ManualClock::new());
    let (store, twofa) = open(&args.state, clock.clone()).await;
    let rss_open = status_kib("VmRSS:") as f64 / 1024.0;
    let service = ServiceName::parse("Bench").expect("service");
    let mut latencies = Vec::with_capacity(args.samples);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next_random = move || {
        // xorshift64*: reproducible, no dependency.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    // Warm up a little (first touches of the tree pages), then measure.
    for round in 0..2 {
        let n = if round == 0 {
            args.samples / 10
        } else {
            args.samples
        };
        for _ in 0..n {
            let i = next_random() % args.codes;
            let request = VerifyRequest {
                service: service.clone(),
                number: number(i),
                code: format!("{:06}", next_random() % 1_000_000),
            };
            let t = Instant::now();
            twofa
                .verify(&account(i, args.accounts), &request)
                .await
                .expect("verify");
            if round == 1 {
                latencies.push(t.elapsed());
            }
        }
    }
    latencies.sort();
    let pct = |q: f64| {
        let k = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[k].as_secs_f64() * 1000.0
    };
    let mut out = serde_json::json!({
        "mode": "verify", "codes": args.codes, "live_codes": store.code_count().await.expect("count"),
        "samples": latencies.len(), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
        "max_ms": pct(1.0), "rss_open_mib": rss_open,
        "rss_mib": status_kib("VmRSS:") as f64 / 1024.0,
        "hwm_mib": status_kib("VmHWM:") as f64 / 1024.0,
        "db_mib": dir_size(&args.state.join("db")) as f64 / 1048576.0,
    });
    if args.purge {
        clock.advance(chrono::Duration::seconds(601));
        const BATCH: usize = 1_000;
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        let mut purged = 0;
        loop {
            let batch = store.purge_expired_codes(BATCH).await.expect("purge");
            purged += batch;
            if batch < BATCH {
                break;
            }
        }
        let seconds = t.elapsed().as_secs_f64();
        out["purge"] = serde_json::json!({
            "purged": purged, "seconds": seconds, "cpu_s": cpu_seconds() - cpu0,
            "per_code_us": seconds * 1e6 / (purged.max(1) as f64),
            "hwm_mib": status_kib("VmHWM:") as f64 / 1024.0,
            "live_codes_after": store.code_count().await.expect("count"),
        });
    }
    out
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let out = match args.mode.as_str() {
        "fill" => fill(&args).await,
        "verify" => verify(&args).await,
        other => panic!("unknown mode {other}"),
    };
    println!("{out}");
    // Let sled finish its background flush before the process ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
}
