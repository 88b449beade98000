//! `sms2fa simulate-modem --link PATH`: the simulated modem on a pseudo-terminal, so an
//! application can be tested against a real daemon without hardware.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use sms2fa::sim::{SimOptions, SimPort, SmsLog};

pub struct Args {
    pub link: PathBuf,
    pub sms_log: Option<PathBuf>,
    pub pin: Option<String>,
    pub send_delay: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let log = match &args.sms_log {
        Some(path) => SmsLog::with_file(path.clone()),
        None => SmsLog::in_memory(),
    };
    let options = SimOptions {
        pin: args.pin.clone(),
        send_delay: args.send_delay,
        ..SimOptions::default()
    };
    let port = SimPort::plug(args.link.clone(), options, log.clone()).with_context(|| {
        format!(
            "cannot create the simulated modem at {}",
            args.link.display()
        )
    })?;
    println!(
        "simulated modem on {} (Ctrl-C to stop)",
        port.path().display()
    );
    if let Some(tty) = port.tty() {
        println!("  pseudo-terminal {}", tty.display());
    }
    if let Some(pin) = &args.pin {
        println!("  the SIM wants PIN {pin}");
    }
    match &args.sms_log {
        Some(path) => println!(
            "  SMS are appended to {} (one JSON line each) and shown here",
            path.display()
        ),
        None => println!("  SMS are shown here"),
    }
    println!(
        "Point a [[modem]] at it: device = \"{}\"",
        port.path().display()
    );
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut shown = 0;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            received = log.wait_for(shown + 1, Duration::from_secs(3600)) => {
                for sms in received.iter().skip(shown) {
                    println!("SMS to {} ({} part(s)): {}", sms.number, sms.parts, sms.text);
                }
                shown = received.len();
            }
        }
    }
    drop(port);
    Ok(())
}
