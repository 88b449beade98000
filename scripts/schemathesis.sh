#!/usr/bin/env bash
# schemathesis (PyPI) against /openapi.json of a running daemon (`serve --simulate`, on
# loopback): every check, including "no 5xx" and "responses match the spec".
#   scripts/schemathesis.sh [max-examples-per-operation]   (default 100; CI uses 5)
# Installs schemathesis into target/schemathesis-venv on first use.
# SCHEMATHESIS_EXCLUDE=check,check skips checks (CI skips the two that fail today on
# known mismatches of docs/openapi.yaml; see docs/reliability.md, "Findings").
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-100}
venv=${SCHEMATHESIS_VENV:-target/schemathesis-venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv" 2>/dev/null || {
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        /usr/bin/python3 -m venv "$venv"
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi
cargo build --quiet --locked --bin sms2fa
state=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn target/debug/sms2fa serve --simulate --state-dir "$state" --listen "127.0.0.1:$port" \
    >"$state/daemon.log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; rm -rf "$state"' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/openapi.json" >/dev/null || { cat "$state/daemon.log"; exit 1; }
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
    --auth ACdemo:demo-token \
    --checks all \
    ${SCHEMATHESIS_EXCLUDE:+--exclude-checks "$SCHEMATHESIS_EXCLUDE"} \
    --max-examples "$examples" \
    --generation-database none \
    --no-color \
    --report junit --report-dir "target/schemathesis-report" \
    ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} || status=$?
status=${status:-0}
if grep -q "panicked" "$state/daemon.log"; then
    echo "the daemon panicked:"; grep -A3 panicked "$state/daemon.log"; exit 1
fi
exit $status
