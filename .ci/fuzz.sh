#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: cargo-fuzz with libFuzzer
# and no sanitizer (sanitizers need nightly). Each target runs for
# FUZZ_SECONDS (default 60), FUZZ_JOBS (default 2) at a time, from its
# committed seed corpus under fuzz/corpus/<target>/; new inputs go to a work
# directory, not the repository. A crash fails the step and leaves the input
# in fuzz/artifacts/<target>/: fix the bug, then commit the input under
# fuzz/corpus/<target>/ so `cargo test` replays it for ever.
# CI runs from a fixed seed (FUZZ_SEED, default 1) so that a run is
# repeatable: the same commit explores the same inputs. Exploring further is
# FUZZ_SEED=0 (libFuzzer picks one) and a longer FUZZ_SECONDS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT/fuzz"

SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
SEED=${FUZZ_SEED:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

log "building the fuzz targets"
cargo fuzz build --sanitizer none -O

mapfile -t targets < <(cargo fuzz list)
work=$CI_WORK/fuzz
mkdir -p "$work"
failed=()
run_one() {
    local t=$1
    mkdir -p "$work/corpus/$t"
    cargo fuzz run "$t" --sanitizer none -O "$work/corpus/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -seed="$SEED" -rss_limit_mb=2048 -timeout=20 \
        >"$work/$t.log" 2>&1
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
            runs=$(grep -Eo '^Done [0-9]+ runs' "$work/$t.log" | tail -1 || true)
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
