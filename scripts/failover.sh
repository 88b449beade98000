#!/usr/bin/env bash
# Failover suite: a PostgreSQL primary with a synchronous standby, two sms2fa hosts on a
# multi-host URL under send + verify load; kill -9 the primary and promote the standby,
# then kill -9 one host. Reports lost codes (target 0), seconds refused, duplicates,
# and the takeover time (see docs/reliability.md).
#   scripts/failover.sh [phase-seconds]     (default 20; CI uses 10)
# Needs Debian's postgresql package (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked --release --bin sms2fa
export SMS2FA_BIN=$PWD/target/release/sms2fa
FAILOVER_PHASE_SECS=${1:-20} exec cargo test --quiet --locked --test reliability -- \
    --ignored --exact --nocapture failover::failover
