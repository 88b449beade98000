//! sms2fa: an on-premise SMS two-factor-authentication gateway.
//!
//! See `README.md` for operation and `../shared/design.md` for the architecture.

pub mod at;
pub mod sms;
pub mod sim;
