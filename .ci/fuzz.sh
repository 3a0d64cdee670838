#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: cargo-fuzz with libFuzzer
# and no sanitizer (sanitizers need nightly). Each target runs for
# FUZZ_SECONDS (default 60), FUZZ_JOBS (default 2) at a time, from its
# committed seed corpus under fuzz/corpus/<target>/; new inputs go to a work
# directory, not the repository. A crash fails the step and leaves the input
# in fuzz/artifacts/<target>/: fix the bug, then commit the input under
# fuzz/corpus/<target>/ so `cargo test` replays it for ever.
# Targets are built with debug assertions (integer overflow checks on), as
# `cargo run` and `cargo test` build the code they fuzz.
# Each target runs twice: from a fixed seed (FUZZ_SEED, default 1) for
# FUZZ_SECONDS, then from a second seed for FUZZ_EXPLORE_SECONDS (default
# 20) that is taken from the commit being tested (FUZZ_EXPLORE_SEED to
# choose one, 0 for libFuzzer's own random pick): every run is repeatable
# for its commit, and each commit explores inputs the previous ones did not.
# Exploring further is FUZZ_EXPLORE_SEED=0 and a longer FUZZ_EXPLORE_SECONDS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT/fuzz"

SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
SEED=${FUZZ_SEED:-1}
EXPLORE_SECONDS=${FUZZ_EXPLORE_SECONDS:-20}
if [ -z "${FUZZ_EXPLORE_SEED:-}" ]; then
    head=$(git -C "$CI_ROOT" rev-parse HEAD 2>/dev/null || echo 0000000)
    FUZZ_EXPLORE_SEED=$(( 16#${head:0:7} + 2 ))
fi
EXPLORE_SEED=$FUZZ_EXPLORE_SEED
log "fuzz seeds: $SEED for ${SECONDS_EACH}s, then $EXPLORE_SEED for ${EXPLORE_SECONDS}s"

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

log "building the fuzz targets"
cargo fuzz build --sanitizer none -O --debug-assertions

mapfile -t targets < <(cargo fuzz list)
work=$CI_WORK/fuzz
mkdir -p "$work"
failed=()
run_seed() {
    local t=$1 seed=$2 secs=$3
    cargo fuzz run "$t" --sanitizer none -O --debug-assertions "$work/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -seed="$seed" -rss_limit_mb=2048 -timeout=20
}
run_one() {
    local t=$1
    mkdir -p "$work/corpus/$t"
    {
        run_seed "$t" "$SEED" "$SECONDS_EACH" &&
            { [ "$EXPLORE_SECONDS" = 0 ] || run_seed "$t" "$EXPLORE_SEED" "$EXPLORE_SECONDS"; }
    } >"$work/$t.log" 2>&1
}
i=0
while [ $i -lt ${#targets[@]} ]; do
    pids=()
    names=()
    for _ in $(seq "$JOBS"); do
        [ $i -lt ${#targets[@]} ] || break
        t=${targets[$i]}
        run_one "$t" &
        pids+=($!)
        names+=("$t")
        i=$((i + 1))
    done
    for j in "${!pids[@]}"; do
        t=${names[$j]}
        if wait "${pids[$j]}"; then
            runs=$(grep -Eo '^Done [0-9]+ runs' "$work/$t.log" | paste -sd' ' - || true)
            log "fuzz $t: ok (${runs:-no count})"
        else
            log "fuzz $t: FAILED (log: $work/$t.log)"
            grep -A12 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$work/$t.log" | head -40 >&2 || true
            failed+=("$t")
        fi
    done
done

if [ ${#failed[@]} -gt 0 ]; then
    log "fuzz targets failed: ${failed[*]}"
    exit 1
fi
