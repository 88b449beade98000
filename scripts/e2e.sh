#!/usr/bin/env bash
# End-to-end tests against real clients from PyPI, with the daemon binary and its
# simulated modem:
#   - privacyIDEA (unmodified) sends its SMS OTP through /sms/send and Kannel's
#     /cgi-bin/sendsms and validates it (tests/e2e/privacyidea.py);
#   - webhooks are verified with the `standardwebhooks` library and arrive once each,
#     in order, through receiver outages and a daemon restart (tests/e2e/webhooks.py).
#   scripts/e2e.sh [privacyidea|webhooks]...   (default: all)
# Installs its Python packages into target/e2e-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${E2E_VENV:-target/e2e-venv}
if [ ! -x "$venv/bin/pi-manage" ] || [ ! -d "$venv/lib" ] || ! "$venv/bin/python" -c 'import standardwebhooks' 2>/dev/null; then
    python3 -m venv "$venv" 2>/dev/null || {
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        /usr/bin/python3 -m venv "$venv"
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'privacyidea==3.14' 'standardwebhooks>=1.0,<2' requests
fi
cargo build --quiet --locked --bin sms2fa
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(privacyidea webhooks)
for suite in "${suites[@]}"; do
    work=$(mktemp -d)
    echo "== e2e: $suite (work dir $work)"
    if "$venv/bin/python" "tests/e2e/$suite.py" --sms2fa target/debug/sms2fa --work "$work"; then
        rm -rf "$work"
    else
        status=$?
        echo "== e2e: $suite FAILED; logs:"
        tail -n 50 "$work"/*.log 2>/dev/null || true
        exit $status
    fi
done
