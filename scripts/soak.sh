#!/usr/bin/env bash
# Faults soak: the release daemon, a process of its own, under a steady send load
# through three simulated modems with random +CMS ERRORs, hangs, unplug/replug and URC
# storms; 0 lost, 0 stuck, memory levelling off (see docs/reliability.md).
#   scripts/soak.sh [minutes]       (default 60; SOAK_SECS=<s> overrides, CI uses 30 s)
# SOAK_SEED=<n> replays the random faults of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked --release --bin sms2fa
export SMS2FA_BIN=$PWD/target/release/sms2fa
SOAK_SECS=${SOAK_SECS:-$(( ${1:-60} * 60 ))} exec cargo test --quiet --locked --test reliability -- \
    --ignored --exact --nocapture soak::soak
