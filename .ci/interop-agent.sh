#!/usr/bin/env bash
# The main program with both backends against the reference Etsy daemon
# (npm statsd 0.9.0): every counter the in-memory backend exported must have
# reached the daemon with the same total, after the program's shutdown flush.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

cargo build -q -p metrics-agent
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/metrics-agent
DIR=$CI_WORK/agent-run
rm -rf "$DIR" && mkdir -p "$DIR"
fail() { echo "interop-agent: $*" >&2; [ -f "$DIR/statsd.log" ] && tail -20 "$DIR/statsd.log" >&2; exit 1; }

start_statsd "$DIR" || fail "the daemon did not start"

log "metrics-agent, METRICS_BACKEND=both, 4 s, the export to a file endpoint"
METRICS_BACKEND=both METRICS_STATSD_ADDR="127.0.0.1:$PORT" METRICS_COLLECTION_INTERVAL=1s \
METRICS_EXPORT_ENDPOINTS="$DIR/export.json" \
    "$BIN" --duration 4s --report-every 2s --no-export > "$DIR/agent.out" 2> "$DIR/agent.err" \
    || { cat "$DIR/agent.err" >&2; fail "the agent failed"; }
grep -q "exported to $DIR/export.json" "$DIR/agent.err" || fail "no export: $(cat "$DIR/agent.err")"
grep -q "backend statsd       healthy" "$DIR/agent.out" || fail "StatsD not healthy: $(grep statsd "$DIR/agent.out")"

sleep 0.5 # the last datagrams reach the daemon
mgmt counters > "$DIR/counters.txt"
python3 - "$DIR/counters.txt" "$DIR/export.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
daemon = {k: float(v) for k, v in re.findall(r"[\x27\"]?([^\s\x27\":{},]+)[\x27\"]?: (-?[0-9.e+]+)", text)}
export = json.load(open(sys.argv[2]))
def clean(text):
    # The daemon's own key sanitising (statsd 0.9 lib/helpers.js): `/` -> `-`.
    return re.sub(r"[^a-zA-Z_\-0-9\.;=]", "", re.sub(r"\s+", "_", text).replace("/", "-"))

def parse(key):
    name, *tags = key.split(";")
    return name, set(tags)

checked = 0
for series in export["series"]:
    if series["type"] != "counter":
        continue
    name = clean(series["name"])
    tags = {clean(f"{k}={v}") for k, v in series["tags"].items()}
    # The tracker's outcome counters (`op.success`, `op.failure`) are kept
    # in memory without the call's metadata; StatsD keeps it as tags: sum
    # every daemon series of the name whose tags include the exported ones.
    got = sum(v for k, v in daemon.items() if parse(k)[0] == name and tags <= parse(k)[1])
    if got != series["value"]:
        sys.exit(f"interop-agent: {name} {sorted(tags)}: memory {series['value']}, daemon {got}")
    checked += 1
if checked < 5:
    sys.exit(f"interop-agent: only {checked} counters exported")
if daemon.get("statsd.bad_lines_seen", 0) != 0:
    sys.exit(f"interop-agent: the daemon saw bad lines: {daemon['statsd.bad_lines_seen']}")
print(f"interop-agent: {checked} counters equal in memory and in the daemon; bad lines 0")
PY
