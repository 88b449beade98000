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
    let log = SmsLog::in_memory();
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
        let port = SimPort::plug(link, options, log.clone())?;
        println!(
            "modem {i}: {} -> {}",
            port.path().display(),
            port.tty().map(|t| t.display().to_string()).unwrap_or_default()
        );
        ports.push(port);
    }
    std::io::stdout().flush()?;
    let mut events = match &args.events {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let deadline = tokio::time::sleep(args.timeout);
    tokio::pin!(deadline);
    let stats = log.stats().clone();
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
            received = log.wait_for(seen + 1, Duration::from_secs(3600)) => {
                let t = unix_now();
                let snap = stats.snapshot();
                for sms in received.iter().skip(seen) {
                    if let Some(events) = events.as_mut() {
                        let line = serde_json::json!({
                            "t": t, "number": sms.number, "parts": sms.parts,
                            "at": snap.at_commands, "rx": snap.bytes_received,
                            "tx": snap.bytes_sent, "cmgs": snap.cmgs_commands,
                        });
                        writeln!(events, "{line}")?;
                    }
                }
                seen = received.len();
                if let Some(events) = events.as_mut() {
                    events.flush()?;
                }
            }
        }
    }
    let snap = stats.snapshot();
    let mut histogram: BTreeMap<String, u64> = BTreeMap::new();
    for line in stats.commands() {
        *histogram.entry(command_name(&line)).or_default() += 1;
    }
    let summary = serde_json::json!({
        "sms": seen,
        "at_commands": snap.at_commands,
        "bytes_received": snap.bytes_received,
        "bytes_sent": snap.bytes_sent,
        "cmgs_commands": snap.cmgs_commands,
        "submissions": snap.submissions,
        "parts_accepted": snap.parts_accepted,
        "cms_errors": snap.cms_errors,
        "commands_histogram_last_10000": histogram,
        "first_commands": stats.commands().into_iter().take(60).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&summary)?;
    if let Some(path) = &args.summary {
        std::fs::write(path, &text)?;
    }
    println!("{text}");
    drop(ports);
    Ok(())
}
