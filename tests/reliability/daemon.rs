//! The real `sms2fa` binary as a process of its own, for the suites that kill it or
//! measure it.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;

pub const BIN: &str = env!("CARGO_BIN_EXE_sms2fa");

/// The binary to run: `$SMS2FA_BIN` (the soak script points it at the release build,
/// which is what operators run) or the one cargo built for this test.
pub fn bin() -> String {
    std::env::var("SMS2FA_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// Kills the child on drop, so a failing assertion leaves no process behind.
pub struct Process {
    pub child: Child,
    pub name: &'static str,
}

impl Process {
    pub fn kill(&mut self) {
        // SIGKILL (std's Child::kill); the child is ours and not yet reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("stopping {}", self.name);
            self.kill();
        }
    }
}

pub enum Kept {
    Temp(tempfile::TempDir),
    Path(PathBuf),
}

impl Kept {
    pub fn path(&self) -> &Path {
        match self {
            Kept::Temp(dir) => dir.path(),
            Kept::Path(path) => path,
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn start_daemon(config: &Path, log: &Path) -> Process {
    let log = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("daemon log");
    let child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("sms2fa serve");
    Process {
        child,
        name: "sms2fa serve",
    }
}

pub async fn wait_healthy(client: &Client, base: &str, daemon: &mut Process) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return started.elapsed();
            }
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("the daemon exited at start-up: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon is not healthy after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
