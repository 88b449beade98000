#!/usr/bin/env bash
# cargo-fuzz (libFuzzer + AddressSanitizer) on the stable toolchain through
# RUSTC_BOOTSTRAP=1: each target for a fixed number of executions; any crash fails.
#   scripts/fuzz.sh [runs-per-target] [target...]   (default 1000000, all targets)
# Builds into target/fuzz (a separate compile of the crate with instrumentation).
# FUZZ_SANITIZER=none skips ASan (about twice as fast). Crashes land in
# fuzz/artifacts/<target>/; replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(at_engine sms_pdu config http_api)
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/fuzz}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
sanitizer=${FUZZ_SANITIZER:-address}
cd fuzz
cargo fuzz build -O -s "$sanitizer"
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== fuzz $target: $runs runs"
    started=$(date +%s)
    # -close_fd_mask=1: the http_api target's daemon code may print; keep the log short.
    cargo fuzz run -O -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        2>"corpus/$target.log" || { tail -n 60 "corpus/$target.log"; exit 1; }
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "corpus/$target.log" || true
    echo "$target: $runs runs, 0 crashes, $(( $(date +%s) - started )) s"
done
