#!/usr/bin/env bash
# Crash suite: SIGKILL the real daemon under send load, restart it on the same state,
# check that no accepted code is lost (see docs/reliability.md).
#   scripts/crash.sh [kills]        (default 20; CI uses 3)
# CRASH_SEED=<n> replays the random kill moments of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
CRASH_KILLS=${1:-20} exec cargo test --quiet --locked --test reliability -- \
    --ignored --exact --nocapture crash::crash
