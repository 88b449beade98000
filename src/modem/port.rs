//! Where a modem is reached: a serial device, or a raw TCP stream to a terminal server
//! or ser2net (`device = "tcp://host:port"`, Kannel's `rawtcp`). Either way the task
//! gets a byte stream and runs the same AT dialogue, timeouts and reconnect rules on it;
//! tests hand it the simulator over an in-memory pipe instead (a [`Connector`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// How long a TCP connection to a terminal server may take to open.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A `[[modem]] device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Serial(PathBuf),
    /// `host:port` of a raw TCP stream.
    Tcp(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("{0:?} is not tcp://<host>:<port> (a host, then a port 1 to 65535)")]
    BadTcp(String),
    #[error("must not be empty")]
    Empty,
}

impl Device {
    /// A path, or `tcp://host:port` (an IPv6 host in brackets: `tcp://[::1]:2000`).
    pub fn parse(device: &Path) -> Result<Self, DeviceError> {
        let text = device.to_string_lossy();
        if text.is_empty() {
            return Err(DeviceError::Empty);
        }
        let Some(address) = text.strip_prefix("tcp://") else {
            return Ok(Self::Serial(device.to_owned()));
        };
        let bad = || DeviceError::BadTcp(text.clone().into_owned());
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        let host_ok = !host.is_empty()
            && !host.contains('/')
            && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
        if !port_ok || !host_ok {
            return Err(bad());
        }
        Ok(Self::Tcp(address.to_owned()))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serial(path) => write!(f, "{}", path.display()),
            Self::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// A byte stream to a modem.
pub trait ModemStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ModemStream for T {}

pub type Link = Box<dyn ModemStream>;

/// Opens the link to one modem; the task calls it at start and at every reconnect.
/// An error of kind `NotFound` means the device is absent (unplugged) and is watched
/// for; any other is a broken link, retried with backoff.
#[async_trait]
pub trait Connector: Send + Sync {
    async fn connect(&self) -> std::io::Result<Link>;
}

/// The connector of a configured device.
pub struct DeviceConnector {
    pub device: Device,
    pub baud: u32,
}

#[async_trait]
impl Connector for DeviceConnector {
    async fn connect(&self) -> std::io::Result<Link> {
        match &self.device {
            Device::Serial(path) => Ok(Box::new(open_port(path, self.baud)?)),
            Device::Tcp(address) => {
                let stream = tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(address))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "no TCP connection to {address} within {TCP_CONNECT_TIMEOUT:?}"
                            ),
                        )
                    })??;
                // AT commands are a few bytes each: send them now, not after Nagle's delay.
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
        }
    }
}

/// Open the serial device. Exclusive (TIOCEXCL + flock), so neither ModemManager nor a
/// second sms2fa can write into our AT dialogue. The path is resolved at every open, so
/// a udev symlink that now points at a new ttyUSB is followed.
pub fn open_port(device: &Path, baud: u32) -> std::io::Result<SerialStream> {
    let path = device.to_string_lossy();
    tokio_serial::new(path.as_ref(), baud)
        .timeout(Duration::from_millis(100))
        .exclusive(true)
        .open_native_async()
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_paths_or_tcp_addresses() {
        let parse = |s: &str| Device::parse(Path::new(s));
        assert_eq!(
            parse("/dev/gsm-modem"),
            Ok(Device::Serial("/dev/gsm-modem".into()))
        );
        assert_eq!(
            parse("tcp://10.0.0.5:2000"),
            Ok(Device::Tcp("10.0.0.5:2000".into()))
        );
        assert_eq!(
            parse("tcp://ts1.lan:4001"),
            Ok(Device::Tcp("ts1.lan:4001".into()))
        );
        assert_eq!(
            parse("tcp://[::1]:2000"),
            Ok(Device::Tcp("[::1]:2000".into()))
        );
        for bad in [
            "tcp://host",
            "tcp://:2000",
            "tcp://host:0",
            "tcp://host:99999",
            "tcp://::1:2000",
            "tcp://host:2000/x",
        ] {
            assert!(matches!(parse(bad), Err(DeviceError::BadTcp(_))), "{bad}");
        }
        assert_eq!(parse(""), Err(DeviceError::Empty));
        assert_eq!(
            parse("tcp://10.0.0.5:2000").unwrap().to_string(),
            "tcp://10.0.0.5:2000"
        );
    }
}
