//! The operator subcommands besides `serve` and `check-config`: `hash-token`,
//! `simulate-modem`, `modem probe`, `modem ussd` and `webhook test`. Part of the binary, not the library.

pub mod check_config;
pub mod hash_token;
pub mod probe;
pub mod simulate;
pub mod ussd;
pub mod webhook;
