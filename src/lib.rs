//! sms2fa: an on-premise SMS two-factor-authentication gateway.
//!
//! See `README.md` for operation and `../shared/design.md` for the architecture.

pub mod at;
pub mod sms;
pub mod sim;
pub mod config;
pub mod otp;
pub mod store;
pub mod modem;
pub mod dispatch;
pub mod service;
pub mod api;
pub mod app;
pub mod simulate;
pub mod telemetry;
