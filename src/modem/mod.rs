//! The IO shell around the AT engine: one task per configured modem, owning its port.

mod availability;
mod describe;
mod health;
mod init;
mod port;
mod session;
mod task;

pub use availability::{judge as judge_availability, Availability};
pub use describe::{mask_imei, registration_name, state_name};
pub use health::Health;
pub use init::{initialize, InitError, ModemIdentity, PinGuard};
pub use port::open_port;
pub use session::{AtSession, CommandError, LinkStats};
pub use task::{
    spawn_modem, DeliveryReport, ModemHandle, ModemSettings, ModemState, ModemStatus, SendError,
    SendJob,
};
