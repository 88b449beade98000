#!/usr/bin/env bash
# The test command (README): install what the tests need and is missing, then run
# `cargo nextest run` with any arguments given.
#   - python3-gammu: the independent SMS PDU decoder the interop tests compare with;
#   - postgresql: the server programs (initdb, postgres) for the PostgreSQL tests, which
#     start a throwaway cluster of their own (tests/support/postgres.rs) unless
#     SMS2FA_TEST_DATABASE_URL names a server to use;
#   - cargo-nextest.
# Installing needs root and apt (Debian, Ubuntu); elsewhere install them by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
/usr/bin/python3 -c 'import gammu' 2>/dev/null || missing+=(python3-gammu)
if [ -z "${SMS2FA_TEST_DATABASE_URL:-}" ] && [ -z "${SMS2FA_PG_BIN:-}" ] &&
    ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "== installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "missing: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
exec cargo nextest run "$@"
