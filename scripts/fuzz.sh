#!/usr/bin/env bash
# Fuzzing: the cargo-fuzz crate in fuzz/ (libFuzzer), each target for a fixed number of
# executions; any crash fails. Stable toolchain only: RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# pass its -Z flags (AddressSanitizer).
#   scripts/fuzz.sh [runs-per-target] [target...]   (default 1000000, all four targets)
# Environment:
#   FUZZ_DRIVER=cargo-fuzz (default when installed; else it is installed) runs
#     `cargo fuzz run -O` with AddressSanitizer (FUZZ_SANITIZER=none to skip it).
#   FUZZ_DRIVER=cargo builds the same targets with plain cargo and the SanitizerCoverage
#     flags cargo-fuzz uses, without ASan and without installing cargo-fuzz, in the dev
#     profile (FUZZ_PROFILE=release for speed of execution): what CI runs.
# Builds into target/fuzz (a separate compile of the crate with instrumentation).
# Not --locked: fuzz/Cargo.lock follows the main crate's dependencies as they change.
# Crashes land in fuzz/artifacts/<target>/; replay one by running the target on it:
#   RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/fuzz cargo fuzz run -O <target> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(at_engine sms_pdu config http_api)
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/fuzz}
driver=${FUZZ_DRIVER:-cargo-fuzz}
sanitizer=${FUZZ_SANITIZER:-address}
triple=$(rustc -vV | sed -n 's/^host: //p')
cd fuzz

if [ "$driver" = cargo-fuzz ]; then
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
    cargo fuzz build -O -s "$sanitizer"
    bin_dir=$CARGO_TARGET_DIR/$triple/release
else
    profile=${FUZZ_PROFILE:-dev}
    # The flags of cargo-fuzz 0.13 (src/project.rs) minus ASan; --target keeps them off
    # build scripts and proc macros.
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
        CARGO_PROFILE_DEV_DEBUG=0 \
        cargo build --profile "$profile" --target "$triple" --bins
    [ "$profile" = dev ] && bin_dir=$CARGO_TARGET_DIR/$triple/debug || bin_dir=$CARGO_TARGET_DIR/$triple/$profile
fi

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    [ "$driver" = cargo ] && label=none || label=$sanitizer
    echo "== fuzz $target: $runs runs ($driver, sanitizer: $label)"
    started=$(date +%s)
    "$bin_dir/$target" "corpus/$target" "seeds/$target" \
        -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" 2>"corpus/$target.log" \
        || { tail -n 60 "corpus/$target.log"; echo "fuzz $target: CRASH (see fuzz/artifacts/$target/)"; exit 1; }
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "corpus/$target.log")
    cov=$(grep -oE 'cov: [0-9]+' "corpus/$target.log" | tail -n1)
    echo "$target: ${execs:-$runs} executions, 0 crashes, $cov, $(( $(date +%s) - started )) s"
done
