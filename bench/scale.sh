#!/bin/sh
# Issue 7.3: verify latency (p50/p99) and RSS with 10^3, 10^5 and 10^6 live codes, and
# the purge task's cost over 10^6 expiring codes (examples/scale.rs, in-process).
#   bench/scale.sh                      # 1000 100000 1000000
#   bench/scale.sh 1000 100000          # chosen sizes (e.g. when 10^6 is too slow)
#   SCALE_ACCOUNTS=1000000 bench/scale.sh 1000000   # one account per code (see docs)
# Writes target/bench/scale.jsonl and prints a Markdown table. Needs about 1.5 GB of
# disk for 10^6 codes (under $TMPDIR), removed afterwards.
set -eu
cd "$(dirname "$0")/.."
sizes="${*:-1000 100000 1000000}"
if [ -n "${SCALE_BIN:-}" ]; then bin="$SCALE_BIN"; else
  cargo build --release --example scale
  bin="${CARGO_TARGET_DIR:-target}/release/examples/scale"
fi
work="${TMPDIR:-/tmp}/sms2fa-bench-scale"
out="${SCALE_OUT:-target/bench/scale.jsonl}"
mkdir -p target/bench
: > "$out"
for n in $sizes; do
  rm -rf "$work"
  echo "filling $n codes" >&2
  "$bin" fill --state "$work" --codes "$n" --accounts "${SCALE_ACCOUNTS:-1000}" >> "$out"
  echo "verifying with $n live codes (fresh process), then purging them" >&2
  "$bin" verify --state "$work" --codes "$n" --accounts "${SCALE_ACCOUNTS:-1000}" --samples 2000 --purge >> "$out"
done
rm -rf "$work"
python3 - "$out" <<'PY'
import json, sys, os, time
rows = [json.loads(l) for l in open(sys.argv[1])]
fills = {r["codes"]: r for r in rows if r["mode"] == "fill"}
ver = [r for r in rows if r["mode"] == "verify"]
print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores")
print()
print("| live codes | fill sends/s | verify p50 | verify p99 | p99 vs smallest | RSS after open | RSS after verifies | db on disk | purge all: seconds | purge µs/code | purge CPU s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
base = ver[0]["p99_ms"] if ver else 1
for r in ver:
    p = r.get("purge", {})
    print(f"| {r['live_codes']:,} | {fills[r['codes']]['sends_per_s']:.0f} | {r['p50_ms']:.3f} ms | {r['p99_ms']:.3f} ms | "
          f"{r['p99_ms'] / base:.2f}× | {r['rss_open_mib']:.0f} MiB | {r['rss_mib']:.0f} MiB | {r['db_mib']:.0f} MiB | "
          f"{p.get('seconds', float('nan')):.2f} | {p.get('per_code_us', float('nan')):.1f} | {p.get('cpu_s', float('nan')):.2f} |")
PY
