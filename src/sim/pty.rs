//! A simulated modem behind a pseudo-terminal and a stable symlink, the way udev gives a
//! dongle a `/dev/gsm-modem` name: the driver opens the link like a real device, and a
//! test can pull the dongle out and plug it back in as a new tty behind the same link.

use std::io;
use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;
use tokio_serial::{SerialPort, SerialStream};

use super::{run, SimOptions, SmsLog};

/// A simulated modem served on the master side of a pty whose slave is reachable at
/// [`SimPort::path`]. Dropping it unplugs the modem. Needs a tokio runtime.
#[derive(Debug)]
pub struct SimPort {
    link: PathBuf,
    options: SimOptions,
    log: SmsLog,
    plugged: Option<Plugged>,
}

#[derive(Debug)]
struct Plugged {
    tty: PathBuf,
    task: JoinHandle<io::Result<()>>,
}

impl SimPort {
    /// Create a pty, point `link` at its slave (replacing whatever `link` was), and
    /// serve a freshly booted simulated modem on it.
    pub fn plug(link: PathBuf, options: SimOptions, log: SmsLog) -> io::Result<Self> {
        let mut port = Self {
            link,
            options,
            log,
            plugged: None,
        };
        port.replug()?;
        Ok(port)
    }

    /// The stable path for the driver's `device` setting.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// The pty slave currently behind the link, while plugged.
    pub fn tty(&self) -> Option<&Path> {
        self.plugged.as_ref().map(|p| p.tty.as_path())
    }

    /// Pull the dongle out: the modem stops, the pty vanishes (a driver holding it open
    /// reads EOF/EIO) and the link is removed.
    pub fn unplug(&mut self) {
        if let Some(plugged) = self.plugged.take() {
            plugged.task.abort();
        }
        // A link already gone is exactly the state wanted.
        let _ = std::fs::remove_file(&self.link);
    }

    /// Unplug if plugged, then plug in again as a new pty behind the same link, with a
    /// modem freshly booted (settings and PIN state lost, the SMS log shared).
    pub fn replug(&mut self) -> io::Result<()> {
        self.unplug();
        let (master, slave) = SerialStream::pair().map_err(io::Error::from)?;
        let tty = slave
            .name()
            .map(PathBuf::from)
            .ok_or_else(|| io::Error::other("the pty slave has no name"))?;
        let tmp = self.link.with_extension("sim-link-tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&tty, &tmp)?;
        // rename() puts the new link in place in one step, never a half-written one.
        std::fs::rename(&tmp, &self.link)?;
        let options = self.options.clone();
        let log = self.log.clone();
        let task = tokio::spawn(async move {
            // Holding the slave open keeps the master readable while the driver closes
            // and reopens the path; without it the master reads EIO in between.
            let _slave = slave;
            run(master, options, log).await
        });
        self.plugged = Some(Plugged { tty, task });
        Ok(())
    }
}

impl Drop for SimPort {
    fn drop(&mut self) {
        self.unplug();
    }
}
