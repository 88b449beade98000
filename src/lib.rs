//! sms2fa: an on-premise SMS two-factor-authentication gateway.
//!
//! See `README.md` for operation and `../shared/design.md` for the architecture.

pub mod api;
pub mod app;
pub mod at;
pub mod capacity;
pub mod config;
pub mod dispatch;
pub mod heartbeat;
pub mod housekeeping;
pub mod inbox;
pub mod metrics;
pub mod modem;
pub mod otp;
pub mod server;
pub mod service;
pub mod sim;
pub mod sms;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod webhook;
