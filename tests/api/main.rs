//! The daemon over HTTP, with its modem on a pseudo-terminal driven by the simulator.

mod at_rest;
mod availability;
mod bad_input;
mod caps;
mod helpers;
mod hostile;
mod incoming;
mod modem_faults;
mod network_modem;
mod ops;
mod policy;
mod postgres;
#[path = "../support/postgres.rs"]
mod postgres_server;
mod redaction;
mod relay;
mod send_verify;
mod sms_encoding;
mod stored_reports;
#[path = "../support/tcp_proxy.rs"]
mod tcp_proxy;
mod webhooks;
