//! The systemd service protocol, without libsystemd: `sd_notify` datagrams on
//! `$NOTIFY_SOCKET` (`READY=1`, `STATUS=`, `WATCHDOG=1`, `RELOADING=1`, `STOPPING=1`),
//! and a watchdog that pings only while the daemon's loops show progress.
//!
//! Outside systemd (no `$NOTIFY_SOCKET`) every notification is a no-op, so the daemon
//! runs the same way from a terminal.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is neither an absolute path nor an abstract name (@…)")]
    BadAddress(String),
    #[error("cannot reach the service manager at NOTIFY_SOCKET: {0}")]
    Io(#[from] std::io::Error),
}

/// Where to send `sd_notify` messages; empty when not run by systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`. An unset variable gives a silent notifier; a set but
    /// unusable one is an error, since systemd would then wait for `READY=1` in vain.
    pub fn from_env() -> Result<Self, NotifyError> {
        match std::env::var("NOTIFY_SOCKET") {
            Ok(address) if !address.is_empty() => Self::connect(&address),
            _ => Ok(Self::disabled()),
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self { target: None }
    }

    /// A notifier for `address`: a filesystem path, or `@name` for a socket in the
    /// abstract namespace.
    pub fn connect(address: &str) -> Result<Self, NotifyError> {
        let target = if let Some(name) = address.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if address.starts_with('/') {
            SocketAddr::from_pathname(address)?
        } else {
            return Err(NotifyError::BadAddress(address.to_owned()));
        };
        Ok(Self {
            target: Some((UnixDatagram::unbound()?, target)),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Send one notification (newline-separated `KEY=value` assignments).
    pub fn notify(&self, state: &str) -> Result<(), NotifyError> {
        if let Some((socket, address)) = &self.target {
            // A datagram to a unix socket is delivered whole or not at all, and never
            // blocks for long: the manager's queue is drained continuously.
            socket.send_to_addr(state.as_bytes(), address)?;
        }
        Ok(())
    }

    /// As [`Notifier::notify`], logging instead of failing: a lost status line must
    /// not stop the daemon.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `STATUS=` is one line for `systemctl status`; newlines would end the field.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", status.replace('\n', " ")));
    }

    /// Reload protocol: `RELOADING=1` with the monotonic time, then `READY=1` once done.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we hand it; CLOCK_MONOTONIC
    // always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

/// The watchdog period systemd asked for (`WatchdogSec=` → `$WATCHDOG_USEC`), if it is
/// meant for this process (`$WATCHDOG_PID`, when set, must be ours).
pub fn watchdog_timeout() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A loop's sign of life: the loop calls [`Heartbeat::beat`] once per turn, the
/// watchdog reads how long ago that was. Cheap to clone and to beat.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds after `origin` of the last beat.
    last: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that has just beaten.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn beat(&self) {
        self.last.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn silence(&self) -> Duration {
        let last = self.last.load(Ordering::Relaxed);
        Duration::from_millis(self.elapsed_ms().saturating_sub(last))
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The loops the watchdog watches, each with the longest silence it may keep.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    watched: Vec<(&'static str, Heartbeat, Duration)>,
}

impl Liveness {
    pub fn watch(&mut self, name: &'static str, heartbeat: Heartbeat, max_silence: Duration) {
        self.watched.push((name, heartbeat, max_silence));
    }

    /// The first loop that has been silent too long, if any.
    pub fn stalled(&self) -> Option<(&'static str, Duration)> {
        self.watched
            .iter()
            .map(|(name, heartbeat, max)| (*name, heartbeat.silence(), *max))
            .find(|(_, silence, max)| silence > max)
            .map(|(name, silence, _)| (name, silence))
    }
}

/// Ping `WATCHDOG=1` every `timeout / 2` while every watched loop keeps beating and
/// `probe` (a check of the store) answers within the period. A stalled daemon stops
/// pinging, and systemd restarts it after `timeout`.
pub async fn run_watchdog<P, F>(
    notifier: Arc<Notifier>,
    timeout: Duration,
    liveness: Liveness,
    probe: P,
    stop: CancellationToken,
) where
    P: Fn() -> F,
    F: std::future::Future<Output = bool>,
{
    let period = timeout / 2;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_stalled = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stalled = match liveness.stalled() {
            Some((name, silence)) => Some(format!("the {name} loop is silent for {silence:?}")),
            None => match tokio::time::timeout(period, probe()).await {
                Ok(true) => None,
                Ok(false) => Some("the store does not answer".to_owned()),
                Err(_) => Some(format!("the store probe took over {period:?}")),
            },
        };
        match stalled {
            None => {
                notifier.send("WATCHDOG=1");
                if was_stalled {
                    tracing::info!("watchdog: progress again");
                }
                was_stalled = false;
            }
            Some(reason) if !was_stalled => {
                tracing::error!(reason, "watchdog: no progress; not pinging systemd");
                was_stalled = true;
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::connect(path.to_str().unwrap()).unwrap();
        notifier.notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("sms2fa-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier::connect(&format!("@{name}")).unwrap();
        notifier.status("a\nb");
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=a b");
    }

    #[test]
    fn refuses_relative_addresses_and_ignores_no_socket() {
        assert!(matches!(
            Notifier::connect("relative/path"),
            Err(NotifyError::BadAddress(_))
        ));
        let silent = Notifier::disabled();
        assert!(!silent.is_enabled());
        silent.notify("READY=1").unwrap();
    }

    #[test]
    fn liveness_names_the_silent_loop() {
        let fresh = Heartbeat::new();
        let stale = Heartbeat {
            origin: Instant::now() - Duration::from_secs(10),
            last: Arc::new(AtomicU64::new(0)),
        };
        let mut liveness = Liveness::default();
        liveness.watch("fresh", fresh.clone(), Duration::from_secs(1));
        assert_eq!(liveness.stalled(), None);
        liveness.watch("stale", stale.clone(), Duration::from_secs(5));
        assert_eq!(liveness.stalled().map(|(name, _)| name), Some("stale"));
        stale.beat();
        assert_eq!(liveness.stalled(), None);
    }
}
