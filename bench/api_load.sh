#!/bin/sh
# Issue 7.2: HTTP API load (wrk) against /2fa/verify and /2fa/send beside /healthz.
#   bench/api_load.sh            # 3 rounds of 10 s per route (about 3 minutes)
#   bench/api_load.sh --quick    # 1 round of 3 s
# Installs wrk with apt-get if missing, builds the release binary once, writes
# target/bench/api_load.json and prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
exec python3 bench/api_load.py "$@"
