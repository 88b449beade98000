//! The IO shell around the AT engine: one task per configured modem, owning its port.

mod init;
mod port;
mod session;
mod task;

pub use init::{initialize, InitError};
pub use port::open_port;
pub use session::{AtSession, CommandError, LinkStats};
pub use task::{
    spawn_modem, ModemHandle, ModemSettings, ModemState, ModemStatus, SendError, SendJob,
};
