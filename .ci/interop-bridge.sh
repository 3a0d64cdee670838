#!/usr/bin/env bash
# The bridge from the `metrics` crate: the same samples recorded through the
# `metrics` macros (metrics-bridge's `replay` example) and by our own calls
# (metrics-exposition's `export` example) must export the same text in every
# format (JSON apart from its `generated_at` time); promtool checks the
# replayed Prometheus text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

ensure_promtool
cargo build -q -p metrics-exposition --example export
cargo build -q -p metrics-bridge --example replay
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/examples
DIR=$CI_WORK/bridge
mkdir -p "$DIR"

fail() { echo "interop-bridge: $*" >&2; exit 1; }

# Counters (whole values, tag order varied), gauges (negative, repeated),
# histograms (spread for quantiles), tag values with quotes, backslashes,
# newlines and non-ASCII text.
{
    cat <<'JSON'
{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"GET","path":"/a\"b\\c\nd"}}
{"kind":"counter","name":"http.requests","value":2,"tags":{"path":"/a\"b\\c\nd","method":"GET"}}
{"kind":"counter","name":"http-requests","value":7,"tags":{"méthode":"GÉT ✓"}}
{"kind":"counter","name":"jobs","value":0}
{"kind":"gauge","name":"queue.depth","value":-3.25,"tags":{"queue":"mail"}}
{"kind":"gauge","name":"queue.depth","value":8,"tags":{"queue":"mail"}}
{"kind":"gauge","name":"9lives","value":1e300}
JSON
    for i in $(seq 1 300); do
        printf '{"kind":"histogram","name":"db.latency","value":%s,"tags":{"table":"users"}}\n' "$(( (i * i) % 997 )).$(( i % 10 ))"
    done
} > "$DIR/samples.jsonl"

for f in prometheus openmetrics json csv; do
    "$BIN/export" "$f" < "$DIR/samples.jsonl" > "$DIR/export.$f" || fail "export $f exited $?"
    "$BIN/replay" "$f" < "$DIR/samples.jsonl" > "$DIR/replay.$f" || fail "replay $f exited $?"
done

log "replay equals export (prometheus, openmetrics, csv: byte for byte)"
for f in prometheus openmetrics csv; do
    diff -u "$DIR/export.$f" "$DIR/replay.$f" || fail "$f exports differ"
done
grep -q '^db_latency_count{table="users"} 300$' "$DIR/replay.prometheus" || fail "histogram count missing"

log "replay equals export (json, without generated_at)"
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
def load(n):
    v = json.load(open(f"{d}/{n}.json", encoding="utf-8"))
    v.pop("generated_at")
    return v
a, b = load("export"), load("replay")
assert a == b, "json exports differ"
assert len(a["series"]) == 6, a["series"]
PY

log "promtool check metrics on the replayed text"
findings=$(promtool check metrics < "$DIR/replay.prometheus" 2>&1) || fail "promtool rejected the replay: $findings"
[ -z "$findings" ] || fail "promtool findings: $findings"

log "a malformed line: its number on stderr, exit 1"
printf '%s\n' '{"kind":"counter","name":"a","value":1}' '{"kind":' > "$DIR/bad.jsonl"
if "$BIN/replay" prometheus < "$DIR/bad.jsonl" > /dev/null 2> "$DIR/bad.err"; then
    fail "replay accepted a malformed line"
else
    [ $? -eq 1 ] || fail "replay exit status $? (want 1)"
fi
grep -q '^line 2: ' "$DIR/bad.err" || fail "no line number: $(cat "$DIR/bad.err")"

log "interop-bridge: ok"
