//! `sms2fa modem ussd --device D "*100#"`: send a USSD code and print the network's
//! answer, decoded (plain, GSM 7-bit packed or UCS-2) — a prepaid SIM's balance, say.

use std::time::Duration;

use anyhow::Context;

use super::probe::{open_initialized, Args};
use sms2fa::modem::{health, run_ussd};

/// How long to wait for the network before asking anyway.
const REGISTRATION_WAIT: Duration = Duration::from_secs(30);

pub async fn run(args: Args, code: String, packed: bool) -> anyhow::Result<()> {
    let (mut session, _identity) = open_initialized(&args).await?;
    let deadline = tokio::time::Instant::now() + REGISTRATION_WAIT;
    while !health::check(&mut session).await?.registered() {
        if tokio::time::Instant::now() >= deadline {
            println!("registration  not registered after {REGISTRATION_WAIT:?}; asking anyway");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let answer = run_ussd(&mut session, &code, packed)
        .await
        .with_context(|| format!("USSD {code}"))?;
    let status = match answer.status {
        0 => "done",
        1 => "the network waits for a reply (a menu)",
        2 => "ended by the network",
        3 => "answered by another client",
        4 => "not supported",
        5 => "timed out",
        _ => "unknown",
    };
    println!("status        {} ({status})", answer.status);
    println!("{}", answer.text);
    anyhow::ensure!(
        answer.status <= 2,
        "the network did not answer the code ({status})"
    );
    Ok(())
}
