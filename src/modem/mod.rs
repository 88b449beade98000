//! The IO shell around the AT engine: one task per configured modem, owning its port.

mod availability;
mod describe;
mod handle;
pub mod health;
mod inbox;
mod init;
mod lifecycle;
mod port;
mod reports;
mod session;
mod storage;
mod submission;
mod usage;
mod ussd;

pub use availability::{judge as judge_availability, Availability};
pub use describe::{mask_imei, registration_name, state_name};
pub use handle::{
    spawn_modem, spawn_modem_with, DeliveryReport, IncomingSms, ModemHandle, ModemSettings,
    ModemState, ModemStatus, Outlets, SendError, SendJob,
};
pub use health::Health;
pub use init::{initialize, InitError, ModemIdentity, PinGuard};
pub use port::{open_port, Connector, Device, DeviceConnector, DeviceError, Link, ModemStream};
pub use session::{AtSession, CommandError, LinkStats};
pub use usage::{Caps, Held, Usage};
pub use ussd::{run_ussd, UssdError, USSD_TIMEOUT};

#[cfg(test)]
pub(crate) mod tests;
