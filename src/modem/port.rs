use std::path::Path;
use std::time::Duration;

use tokio_serial::{SerialPortBuilderExt, SerialStream};

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
