//! Reliability suites (issue 7, items 4 and 5), `#[ignore]`d so that the ordinary test
//! run stays fast. One command each: `scripts/crash.sh [kills]`, `scripts/soak.sh
//! [minutes]`; see `docs/reliability.md`.

mod common;
mod crash;
mod daemon;
mod failover;
#[path = "../support/postgres.rs"]
mod postgres_server;
mod soak;
