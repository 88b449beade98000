//! `sms2fa modem probe --device PATH|tcp://HOST:PORT`: open a modem, run the daemon's init sequence and
//! print what it is and how it is doing — the first thing to run on a new dongle.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncWrite};

use sms2fa::at::{parse_cops, parse_cpin, parse_csq, parse_registration, RegState, SimState};
use sms2fa::modem::{
    initialize, AtSession, CommandError, Connector, Device, DeviceConnector, Link, ModemIdentity,
    PinGuard,
};
use sms2fa::modem::{mask_imei, registration_name};

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Init can wait for a busy SIM (up to 30 s); give it a little more.
const INIT_TIMEOUT: Duration = Duration::from_secs(45);

/// How to reach a modem: shared by `modem probe` and `modem ussd`.
#[derive(clap::Args)]
pub struct Args {
    /// The modem's AT port (e.g. /dev/gsm-modem or /dev/ttyUSB2), or tcp://host:port.
    #[arg(long)]
    pub device: PathBuf,
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// The SIM's PIN, if it asks for one.
    #[arg(long)]
    pub pin: Option<String>,
}

/// Open the device `args` names and run the daemon's init sequence on it; prints the
/// device and, when init stops, the SIM state.
pub async fn open_initialized(args: &Args) -> anyhow::Result<(AtSession<Link>, ModemIdentity)> {
    let device = Device::parse(&args.device).context("--device")?;
    let connector = DeviceConnector {
        device: device.clone(),
        baud: args.baud,
    };
    let port = connector.connect().await.with_context(|| match &device {
        Device::Serial(path) => format!(
            "cannot open {} (is it the AT port? is ModemManager or sms2fa holding it? \
             is this user in group dialout?)",
            path.display()
        ),
        Device::Tcp(address) => format!(
            "cannot connect to {address} (is the terminal server or ser2net listening, \
             in raw mode?)"
        ),
    })?;
    let mut session = AtSession::new(port);
    let mut guard = PinGuard::default();
    println!("device        {device}");
    let identity = tokio::time::timeout(
        INIT_TIMEOUT,
        initialize(
            &mut session,
            args.pin.as_deref(),
            &mut guard,
            false,
            sms2fa::config::SmsMode::Pdu,
        ),
    )
    .await
    .context("the modem did not finish initialising in time")?;
    match identity {
        Ok(identity) => Ok((session, identity)),
        Err(e) => {
            // The SIM state is the most useful thing to show when init stops.
            println!("sim           {}", sim_status(&mut session).await);
            anyhow::bail!("initialisation failed: {e}");
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (mut session, identity) = open_initialized(&args).await?;
    print_identity(&identity);
    println!("sim           {}", sim_status(&mut session).await);
    let operator = query(&mut session, "AT+COPS?")
        .await?
        .iter()
        .find_map(|line| parse_cops(line).ok().flatten());
    println!("operator      {}", operator.as_deref().unwrap_or("none"));
    let registration = registration(&mut session).await?;
    println!(
        "registration  {}",
        registration.map_or("unknown", registration_name)
    );
    let signal = query(&mut session, "AT+CSQ")
        .await?
        .iter()
        .find_map(|line| parse_csq(line).ok());
    match signal.and_then(|s| s.rssi_dbm) {
        Some(dbm) => println!("signal        {dbm} dBm ({})", signal_words(dbm)),
        None => println!("signal        unknown"),
    }
    if !registration.is_some_and(RegState::is_registered) {
        println!("warning: not registered to a network; SMS cannot be sent yet");
    }
    Ok(())
}

fn print_identity(identity: &ModemIdentity) {
    let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "unknown".to_owned());
    println!("manufacturer  {}", show(&identity.manufacturer));
    println!("model         {}", show(&identity.model));
    println!("firmware      {}", show(&identity.firmware));
    println!(
        "imei          {}",
        identity
            .imei
            .as_deref()
            .map_or_else(|| "unknown".to_owned(), mask_imei)
    );
}

/// Information lines of `command`; a refusal is an empty answer, a dead link an error.
async fn query<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
    command: &str,
) -> anyhow::Result<Vec<String>> {
    match session.command(command, QUERY_TIMEOUT).await {
        Ok(lines) => Ok(lines),
        Err(CommandError::Rejected { .. }) => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("{command} failed")),
    }
}

async fn sim_status<S: AsyncRead + AsyncWrite + Unpin>(session: &mut AtSession<S>) -> String {
    let Ok(lines) = query(session, "AT+CPIN?").await else {
        return "unknown (no answer)".to_owned();
    };
    match lines.iter().find_map(|line| parse_cpin(line).ok()) {
        Some(SimState::Ready) => "ready".to_owned(),
        Some(SimState::SimPin) => "waiting for its PIN (set `pin` for this modem)".to_owned(),
        Some(SimState::SimPuk) => "locked: needs its PUK (unlock it in a phone)".to_owned(),
        Some(SimState::NotReady) => "not ready yet".to_owned(),
        Some(SimState::NotInserted) => "not inserted".to_owned(),
        Some(SimState::Other(other)) => other,
        None => "unknown (AT+CPIN? refused)".to_owned(),
    }
}

/// The best of CS, PS and EPS registration: LTE-only modules register on EPS alone.
async fn registration<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut AtSession<S>,
) -> anyhow::Result<Option<RegState>> {
    let mut best = None;
    for command in ["AT+CREG?", "AT+CGREG?", "AT+CEREG?"] {
        for line in query(session, command).await? {
            let Ok(registration) = parse_registration(&line) else {
                continue;
            };
            if registration.state.is_registered() {
                return Ok(Some(registration.state));
            }
            best.get_or_insert(registration.state);
        }
    }
    Ok(best)
}

fn signal_words(dbm: i16) -> &'static str {
    match dbm {
        i16::MIN..=-105 => "very weak: move the modem or add an antenna",
        -104..=-95 => "weak",
        -94..=-85 => "fair",
        _ => "good",
    }
}
