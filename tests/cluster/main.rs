//! Several real `sms2fa` daemons on one PostgreSQL database: what the cluster promises,
//! and the operator commands that talk to the database.

#[path = "../support/postgres.rs"]
mod postgres_server;

mod check_config;
// The suites' process helpers, shared; not every one is used here.
#[allow(dead_code)]
#[path = "../reliability/daemon.rs"]
mod daemon;
mod hosts;
mod webhooks;
