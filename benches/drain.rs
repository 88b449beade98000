//! Modem-side drain benchmark (issue 4): queue codes through the real HTTP API while
//! the simulated modems (on pseudo-terminals) are off the network, let them register,
//! and time the drain from the first SMS to the last.
//!
//!   cargo bench --bench drain                 # full run, writes a Markdown table
//!   cargo bench --bench drain -- --quick      # a smoke run (CI)
//!
//! Each measurement runs on both stores: sled, and PostgreSQL (a cluster of Debian's
//! package started for the run on this machine, durability as shipped, a fresh
//! database per run), on the same simulated modems.
//!
//! Reports SMS/s, AT commands and serial bytes per SMS (counted by the simulator, so
//! they are what crossed the line), and process CPU time per SMS (daemon and simulator
//! together: they share the process). With N modems taking a fixed radio time per
//! `+CMGS`, throughput should scale linearly: ≥ 95 % of N / delay.

use std::time::{Duration, Instant};

use sms2fa::app::Application;
#[path = "../tests/support/postgres.rs"]
mod postgres_server;
mod support;
use sms2fa::sim::{SimHandle, SimOptions, SimPort, SmsLog};

struct Run {
    modems: usize,
    delay: Duration,
    messages: usize,
    seconds: f64,
    at_per_sms: f64,
    bytes_per_sms: f64,
    cpu_ms_per_sms: f64,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Field 14 is index 11 after the name and state; the clock tick is 100 Hz on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

async fn drain(modems: usize, delay: Duration, messages: usize, database: Option<&str>) -> Run {
    let state = tempfile::tempdir().expect("temp dir");
    let log = SmsLog::in_memory();
    let handles: Vec<SimHandle> = (0..modems).map(|_| SimHandle::new()).collect();
    let ports: Vec<SimPort> = handles
        .iter()
        .enumerate()
        .map(|(i, handle)| {
            let options = SimOptions {
                echo: false,
                registered: false,
                send_delay: delay,
                handle: handle.clone(),
                ..SimOptions::default()
            };
            SimPort::plug(state.path().join(format!("modem{i}")), options, log.clone())
                .expect("pty")
        })
        .collect();
    let devices: Vec<_> = ports.iter().map(|p| p.path().to_owned()).collect();
    let config = support::config(state.path(), &devices, database);
    let app = Application::build(&config).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    let mut statuses: Vec<_> = app.modems().iter().map(|m| m.status.clone()).collect();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    for status in &mut statuses {
        let _ = status
            .wait_for(|s| s.state == sms2fa::modem::ModemState::Searching)
            .await;
    }

    support::send_codes(&base, messages).await;

    // Everything is queued: only the drain is counted from here.
    let at_before: u64 = handles
        .iter()
        .map(|h| h.stats().snapshot().at_commands)
        .sum();
    let bytes_before: u64 = handles
        .iter()
        .map(|h| h.stats().snapshot().bytes_received)
        .sum();
    let cpu_before = cpu_seconds();
    for handle in &handles {
        handle.set_registered(true);
    }
    log.wait_for(1, Duration::from_secs(60)).await;
    let first = Instant::now();
    let received = log.wait_for(messages, Duration::from_secs(3600)).await;
    assert_eq!(received.len(), messages);
    // From the first SMS to the last: n - 1 intervals of radio time.
    let seconds = first.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let at_after: u64 = handles
        .iter()
        .map(|h| h.stats().snapshot().at_commands)
        .sum();
    let bytes_after: u64 = handles
        .iter()
        .map(|h| h.stats().snapshot().bytes_received)
        .sum();
    let _ = stop.send(());
    let _ = server.await;
    drop(ports);
    let n = messages as f64;
    Run {
        modems,
        delay,
        messages,
        seconds: seconds.max(f64::EPSILON),
        at_per_sms: (at_after - at_before) as f64 / n,
        bytes_per_sms: (bytes_after - bytes_before) as f64 / n,
        cpu_ms_per_sms: cpu * 1000.0 / n,
    }
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (zero_runs, zero_messages, scale_messages_per_modem, scale_delay) = if quick {
        (1, 50, 2, Duration::from_millis(200))
    } else {
        (3, 1000, 10, Duration::from_secs(2))
    };
    // PostgreSQL with durability as shipped, on this machine; a database per run.
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let cluster = postgres_server::Cluster::start(&root.path().join("pg"), "");
    let mut databases = 0;
    let mut fresh_database = async || {
        databases += 1;
        cluster.database(&format!("drain{databases}")).await
    };

    println!(
        "## Drain, zero radio delay ({zero_messages} codes, median of {zero_runs} runs per store)\n"
    );
    println!(
        "| store | SMS/s | AT commands per SMS | bytes written to the modem per SMS | CPU ms per SMS (daemon) |"
    );
    println!("|---|---|---|---|---|");
    let mut rates = Vec::new();
    for backend in ["sled", "postgres"] {
        let mut runs = Vec::new();
        for _ in 0..zero_runs {
            let database = match backend {
                "postgres" => Some(fresh_database().await),
                _ => None,
            };
            runs.push(drain(1, Duration::ZERO, zero_messages, database.as_deref()).await);
        }
        let rate = support::median(
            runs.iter()
                .map(|r| (r.messages - 1) as f64 / r.seconds)
                .collect(),
        );
        rates.push(rate);
        println!(
            "| {backend} | {rate:.0} | {:.2} | {:.0} | {:.2} |",
            support::median(runs.iter().map(|r| r.at_per_sms).collect()),
            support::median(runs.iter().map(|r| r.bytes_per_sms).collect()),
            support::median(runs.iter().map(|r| r.cpu_ms_per_sms).collect()),
        );
    }
    println!(
        "\npostgres / sled at zero radio delay: {:.1} %\n",
        100.0 * rates[1] / rates[0]
    );

    println!(
        "## Scaling, {} ms radio time per `+CMGS` ({scale_messages_per_modem} codes per modem)\n",
        scale_delay.as_millis()
    );
    println!("| store | modems | SMS | seconds | SMS/s | ideal N / delay | of ideal |");
    println!("|---|---|---|---|---|---|---|");
    for backend in ["sled", "postgres"] {
        for modems in [1, 2, 4, 8] {
            let database = match backend {
                "postgres" => Some(fresh_database().await),
                _ => None,
            };
            let run = drain(
                modems,
                scale_delay,
                modems * scale_messages_per_modem,
                database.as_deref(),
            )
            .await;
            // The first SMS of each modem lands after one radio time; the clock starts
            // at the first SMS of all, so N modems deliver N·k − 1 SMS in (k − 1) radio
            // times + ε.
            let rate = (run.messages - run.modems) as f64 / run.seconds;
            let ideal = run.modems as f64 / run.delay.as_secs_f64();
            println!(
                "| {backend} | {} | {} | {:.2} | {:.2} | {:.2} | {:.1} % |",
                run.modems,
                run.messages,
                run.seconds,
                rate,
                ideal,
                100.0 * rate / ideal
            );
        }
    }
}
