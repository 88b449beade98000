//! The `sms2fa` command: parse the command line, load the config, start, wait for a
//! signal. Everything else lives in the library.

mod cli;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use sms2fa::app::{Application, Reloader};
use sms2fa::config::{AccountConfig, Config, ModemConfig, Requirements};
use sms2fa::sim::{SimOptions, SimPort, SmsLog};
use sms2fa::systemd::Notifier;

#[derive(Parser)]
#[command(
    name = "sms2fa",
    version,
    about = "On-premise SMS two-factor-authentication gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve {
        /// The configuration file.
        #[arg(
            long,
            default_value = "/etc/sms2fa/sms2fa.toml",
            conflicts_with = "simulate"
        )]
        config: PathBuf,
        /// Run with a built-in simulated modem and a demo account; no file, no hardware.
        #[arg(long)]
        simulate: bool,
        /// With --simulate: where state and the simulated SMS go.
        #[arg(long, default_value = "sms2fa-sim-state", requires = "simulate")]
        state_dir: PathBuf,
        /// With --simulate: the address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", requires = "simulate")]
        listen: std::net::SocketAddr,
    },
    /// Check a configuration file and exit.
    CheckConfig {
        #[arg(long, default_value = "/etc/sms2fa/sms2fa.toml")]
        config: PathBuf,
    },
    /// Print the `token_sha256` value of a token (read from standard input, or --token).
    HashToken {
        /// The token; prefer standard input, which keeps it out of the shell history.
        #[arg(long)]
        token: Option<String>,
    },
    /// Run the simulated modem on a pseudo-terminal until Ctrl-C.
    SimulateModem {
        /// Where the modem's device appears (a symlink to the pty), e.g. /tmp/gsm-sim.
        #[arg(long)]
        link: PathBuf,
        /// Also append each SMS, as a JSON line, to this file.
        #[arg(long)]
        sms_log: Option<PathBuf>,
        /// Make the simulated SIM ask for this PIN.
        #[arg(long)]
        pin: Option<String>,
        /// Radio time per SMS, in milliseconds.
        #[arg(long, default_value_t = 0)]
        send_delay_ms: u64,
    },
    /// Talk to a modem directly (stop the daemon first: the port is opened exclusively).
    Modem {
        #[command(subcommand)]
        command: ModemCommand,
    },
    /// Webhook endpoints.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Post a signed `ping` event to every [[webhook]], print the answers; exit 0 only
    /// if every endpoint answered 2xx.
    Test {
        #[arg(long, default_value = "/etc/sms2fa/sms2fa.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModemCommand {
    /// Initialise a modem and print its model, firmware, IMEI, SIM, operator,
    /// registration and signal.
    Probe {
        #[command(flatten)]
        modem: cli::probe::Args,
    },
    /// Send a USSD code (e.g. "*100#" for a prepaid balance) and print the answer.
    Ussd {
        #[command(flatten)]
        modem: cli::probe::Args,
        /// Give the code as GSM 7-bit packed hex (some Huawei firmware wants it so).
        #[arg(long)]
        packed: bool,
        /// The USSD code, e.g. "*100#".
        code: String,
    },
}

const DEMO_SID: &str = "ACdemo";
const DEMO_TOKEN: &str = "demo-token";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => cli::check_config::run(&config),
        Command::Serve {
            config,
            simulate,
            state_dir,
            listen,
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            if simulate {
                runtime.block_on(serve_simulated(state_dir, listen))
            } else {
                let parsed = Config::load(&config)?;
                runtime.block_on(serve(parsed, config))
            }
        }
        Command::HashToken { token } => cli::hash_token::run(token),
        Command::SimulateModem {
            link,
            sms_log,
            pin,
            send_delay_ms,
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::simulate::run(cli::simulate::Args {
                link,
                sms_log,
                pin,
                send_delay: Duration::from_millis(send_delay_ms),
            }))
        }
        Command::Modem {
            command: ModemCommand::Probe { modem },
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::probe::run(modem))
        }
        Command::Modem {
            command:
                ModemCommand::Ussd {
                    modem,
                    packed,
                    code,
                },
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::ussd::run(modem, code, packed))
        }
        Command::Webhook {
            command: WebhookCommand::Test { config },
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(cli::webhook::test(&config))
        }
    }
}

async fn serve(config: Config, path: PathBuf) -> anyhow::Result<()> {
    sms2fa::telemetry::init(&config.log.filter)?;
    let notifier = Arc::new(Notifier::from_env()?);
    let mut app = Application::build(&config).await?;
    app.supervise(notifier.clone());
    tokio::spawn(reload_on_hangup(path, app.reloader(), notifier.clone()));
    // The store is open and the listener bound: requests are served from here on.
    notifier.ready();
    app.run_until(shutdown_signal(notifier)).await?;
    Ok(())
}

/// SIGHUP: read the config file again and apply its accounts and limits. A broken file
/// is refused whole and the running config stays.
async fn reload_on_hangup(path: PathBuf, reloader: Reloader, notifier: Arc<Notifier>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload needs a restart");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        notifier.reloading();
        match Config::load(Path::new(&path)) {
            Ok(config) => reloader.apply(&config),
            Err(e) => {
                reloader.refused();
                tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
            }
        }
        notifier.ready();
    }
}

async fn serve_simulated(state_dir: PathBuf, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut config = Config::parse(
        "",
        std::path::Path::new("--simulate"),
        Requirements::Nothing,
    )?;
    sms2fa::telemetry::init(&config.log.filter)?;
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let state_dir = state_dir.canonicalize()?;
    let sms_file = state_dir.join("sms.jsonl");
    let modem = SimPort::plug(
        state_dir.join("modem"),
        SimOptions::default(),
        SmsLog::with_file(sms_file.clone()),
    )?;
    config.storage.path = state_dir.clone();
    config.http.listen = listen;
    config.accounts = vec![AccountConfig {
        sid: DEMO_SID.to_owned(),
        token: Some(DEMO_TOKEN.to_owned()),
        token_sha256: None,
        receive: false,
        // The demo shows the relay routes too.
        relay: true,
    }];
    config.modems = vec![ModemConfig::new("simulator", modem.path().to_owned())];
    let notifier = Arc::new(Notifier::from_env()?);
    let mut app = Application::build(&config).await?;
    app.supervise(notifier.clone());
    notifier.ready();
    let addr = app.local_addr();
    println!("sms2fa is running with a simulated modem (Ctrl-C to stop)");
    println!("  listening on   http://{addr}");
    println!("  demo account   SID {DEMO_SID}  token {DEMO_TOKEN}");
    println!(
        "  simulated SMS  {} (one JSON line per SMS)",
        sms_file.display()
    );
    println!("  state folder   {}", state_dir.display());
    println!();
    println!("Try:");
    println!(
        "  curl -u {DEMO_SID}:{DEMO_TOKEN} -H 'Content-Type: application/json' \\\n    -d '{{\"service\":\"Demo\",\"from\":\"+15550000000\",\"to\":\"+15551234567\",\"body\":\"Your code is {{code}}\"}}' \\\n    http://{addr}/2fa/send"
    );
    app.run_until(shutdown_signal(notifier)).await?;
    drop(modem);
    Ok(())
}

/// SIGINT or SIGTERM; tells systemd that we are stopping.
async fn shutdown_signal(notifier: Arc<Notifier>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    notifier.stopping();
    tracing::info!("shutting down");
}
