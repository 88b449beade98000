//! The simulated modem(s) on pseudo-terminals, in a process of their own, counting what
//! crosses the serial line: the peers benchmark (`bench/peers.py`) runs gammu-smsd,
//! smstools3 and sms2fa against it and needs, per daemon, AT commands and bytes per SMS
//! and the moment each `+CMGS` was answered.
//!
//!   cargo run --release --example sim_counter -- --link /tmp/sim/modem --modems 2 \
//!       --send-delay-ms 3000 --events /tmp/sim/events.jsonl --expect 10 --timeout 120
//!
//! Modem i is at `<link>` for one modem, `<link><i>` for several. With `--unregistered`
//! the modems start off the network (`+CREG: 0,2`) until the process gets SIGUSR1, so a
//! daemon can queue a backlog first. One JSON line per SMS goes to `--events` (time of
//! the `+CMGS` answer, number, counters at that moment); a JSON summary (counters and a
//! histogram of the commands received) is printed on exit: after `--expect` SMS, at
//! `--timeout`, or on SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sms2fa::sim::{SimHandle, SimOptions, SimPort, SmsLog};
use tokio::signal::unix::{signal, SignalKind};

struct Args {
    link: PathBuf,
    modems: usize,
    send_delay: Duration,
    events: Option<PathBuf>,
    summary: Option<PathBuf>,
    expect: Option<usize>,
    timeout: Duration,
    unregistered: bool,
    echo: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        link: PathBuf::from("/tmp/sms2fa-sim"),
        modems: 1,
        send_delay: Duration::ZERO,
        events: None,
        summary: None,
        expect: None,
        timeout: Duration::from_secs(600),
        unregistered: false,
        echo: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--link" => args.link = value().into(),
            "--modems" => args.modems = value().parse().expect("--modems N"),
            "--send-delay-ms" => {
                args.send_delay = Duration::from_millis(value().parse().expect("ms"))
            }
            "--events" => args.events = Some(value().into()),
            "--summary" => args.summary = Some(value().into()),
            "--expect" => args.expect = Some(value().parse().expect("--expect N")),
            "--timeout" => args.timeout = Duration::from_secs(value().parse().expect("secs")),
            "--unregistered" => args.unregistered = true,
            "--no-echo" => args.echo = false,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `AT+CMGS=23` → `AT+CMGS`, `AT+CPIN?` → `AT+CPIN?`, `AT+CNMI=2,1` → `AT+CNMI=`.
fn command_name(line: &str) -> String {
    let upper = line.trim().to_ascii_uppercase();
    match upper.find('=') {
        Some(i) if upper[i..].starts_with("=?") => upper[..i + 2].to_owned(),
        Some(i) => upper[..=i].to_owned(),
        None => upper,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    // One log per modem, so that each SMS is known by the modem that sent it.
    let logs: Vec<SmsLog> = (0..args.modems).map(|_| SmsLog::in_memory()).collect();
    let handles: Vec<SimHandle> = (0..args.modems).map(|_| SimHandle::new()).collect();
    let mut ports = Vec::new();
    for (i, handle) in handles.iter().enumerate() {
        let link = if args.modems == 1 {
            args.link.clone()
        } else {
            PathBuf::from(format!("{}{i}", args.link.display()))
        };
        let options = SimOptions {
            echo: args.echo,
            registered: !args.unregistered,
            send_delay: args.send_delay,
            handle: handle.clone(),
            ..SimOptions::default()
        };
        let port = SimPort::plug(link, options, logs[i].clone())?;
        println!(
            "modem {i}: {} -> {}",
            port.path().display(),
            port.tty()
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        );
        ports.push(port);
    }
    std::io::stdout().flush()?;
    let total = |handles: &[SimHandle]| {
        let mut sum = [0u64; 5];
        for h in handles {
            let s = h.stats().snapshot();
            sum[0] += s.at_commands;
            sum[1] += s.bytes_received;
            sum[2] += s.bytes_sent;
            sum[3] += s.cmgs_commands;
            sum[4] += s.cms_errors;
        }
        sum
    };
    // Each modem's SMS, as they are recorded, with the moment they were.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, log) in logs.iter().enumerate() {
        let log = log.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let received = log.wait_for(seen + 1, Duration::from_secs(3600)).await;
                let t = unix_now();
                for sms in received.iter().skip(seen) {
                    if tx.send((i, t, sms.clone())).is_err() {
                        return;
                    }
                }
                seen = received.len();
            }
        });
    }
    drop(tx);
    let mut events = match &args.events {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let deadline = tokio::time::sleep(args.timeout);
    tokio::pin!(deadline);
    let mut seen = 0usize;
    loop {
        if args.expect.is_some_and(|n| seen >= n) {
            break;
        }
        tokio::select! {
            _ = &mut deadline => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                for handle in &handles {
                    handle.set_registered(true);
                }
            }
            Some((modem, t, sms)) = rx.recv() => {
                let [at, rx_bytes, tx_bytes, cmgs, cms] = total(&handles);
                seen += 1;
                if let Some(events) = events.as_mut() {
                    let line = serde_json::json!({
                        "t": t, "modem": modem, "number": sms.number, "parts": sms.parts,
                        "at": at, "rx": rx_bytes, "tx": tx_bytes, "cmgs": cmgs,
                        "cms_errors": cms,
                    });
                    writeln!(events, "{line}")?;
                    events.flush()?;
                }
            }
        }
    }
    let mut history = Vec::new();
    for h in &handles {
        history.extend(h.stats().commands());
    }
    let [at, rx_bytes, tx_bytes, cmgs, cms] = total(&handles);
    let mut histogram: BTreeMap<String, u64> = BTreeMap::new();
    for line in &history {
        *histogram.entry(command_name(line)).or_default() += 1;
    }
    let first: Vec<String> = handles
        .first()
        .map(|h| h.stats().commands().into_iter().take(80).collect())
        .unwrap_or_default();
    let summary = serde_json::json!({
        "sms": seen,
        "at_commands": at,
        "bytes_received": rx_bytes,
        "bytes_sent": tx_bytes,
        "cmgs_commands": cmgs,
        "cms_errors": cms,
        "commands_histogram_last_10000_per_modem": histogram,
        "first_commands_modem0": first,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    if let Some(path) = &args.summary {
        std::fs::write(path, &text)?;
    }
    println!("{text}");
    drop(ports);
    Ok(())
}
