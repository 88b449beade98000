//! A simulated modem behind a real pseudo-terminal, so the daemon opens it by path
//! exactly as it opens a dongle (`serve --simulate`, `simulate-modem`, tests).

use std::path::PathBuf;

use tokio::task::JoinHandle;
use tokio_serial::{SerialPort, SerialStream};

use crate::sim::{self, SimOptions, SmsLog};

pub struct PtyModem {
    /// The pty's slave side, e.g. `/dev/pts/7`: what the daemon opens.
    pub device: PathBuf,
    /// Held open so the master side keeps working until the daemon opens the device.
    _slave: SerialStream,
    task: JoinHandle<std::io::Result<()>>,
}

impl PtyModem {
    /// Must be called inside a tokio runtime.
    pub fn start(options: SimOptions, log: SmsLog) -> std::io::Result<Self> {
        let (master, slave) = SerialStream::pair().map_err(std::io::Error::from)?;
        let device = slave
            .name()
            .map(PathBuf::from)
            .ok_or_else(|| std::io::Error::other("the pseudo-terminal has no name"))?;
        let task = tokio::spawn(sim::run(master, options, log));
        Ok(Self {
            device,
            _slave: slave,
            task,
        })
    }
}

impl Drop for PtyModem {
    fn drop(&mut self) {
        self.task.abort();
    }
}
