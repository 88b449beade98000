#!/usr/bin/env bash
# Faults soak: sends through three simulated modems with random +CMS ERRORs, hangs,
# unplug/replug and URC storms; 0 lost, 0 stuck, memory flat (see docs/reliability.md).
#   scripts/soak.sh [minutes]       (default 10; SOAK_SECS=<s> overrides, CI uses 30 s)
# SOAK_SEED=<n> replays the random faults of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_SECS=${SOAK_SECS:-$(( ${1:-10} * 60 ))} exec cargo test --quiet --locked --test reliability -- \
    --ignored --exact --nocapture soak::soak
