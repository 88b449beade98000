//! The `sms2fa` command: parse the command line, load the config, start, wait for a
//! signal. Everything else lives in the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use sms2fa::app::Application;
use sms2fa::config::{AccountConfig, Config, ModemConfig, Requirements};
use sms2fa::sim::{SimOptions, SimPort, SmsLog};

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
}

const DEMO_SID: &str = "ACdemo";
const DEMO_TOKEN: &str = "demo-token";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => {
            let parsed = Config::load(&config)?;
            println!(
                "{}: OK ({} account(s), {} modem(s))",
                config.display(),
                parsed.accounts.len(),
                parsed.modems.len()
            );
            Ok(())
        }
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
                let config = Config::load(&config)?;
                runtime.block_on(serve(config))
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    sms2fa::telemetry::init(&config.log.filter)?;
    let app = Application::build(&config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
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
    }];
    config.modems = vec![ModemConfig::new("simulator", modem.path().to_owned())];
    let app = Application::build(&config).await?;
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
    app.run_until(shutdown_signal()).await?;
    drop(modem);
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
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
    tracing::info!("shutting down");
}
