#!/usr/bin/env bash
# The main program pushing with Prometheus remote write 1.0 to real
# receivers, every second, while its workload records:
#
# - Debian's Prometheus (2.42, --web.enable-remote-write-receiver), killed
#   mid-run and started again on the same data directory: once the program
#   has stopped (its last push carries everything recorded), each series of
#   its request counter read back with PromQL equals the program's own
#   final export, series by series;
# - Debian's VictoriaMetrics as a second receiver (/api/v1/write): the
#   same check.
#
# Everything on 127.0.0.1, every process stopped by its PID; about a minute.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

cargo build -q -p metrics-agent
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/metrics-agent
DIR=$CI_WORK/remote-write-run
rm -rf "$DIR" && mkdir -p "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() {
    echo "interop-remote-write: $*" >&2
    for f in agent.out agent.err prometheus.log vm.log; do
        [ -f "$DIR/$f" ] && { echo "--- $f" >&2; tail -15 "$DIR/$f" >&2; }
    done
    exit 1
}

log "installing receivers: prometheus and victoria-metrics (Debian)"
ensure_apt prometheus prometheus
ensure_apt victoria-metrics victoria-metrics
VM_BIN=$(command -v victoria-metrics || dpkg -L victoria-metrics | grep -E '/bin/victoria-metrics[^/]*$' | head -1)
[ -x "$VM_BIN" ] || fail "no victoria-metrics binary in the package"

# start_prometheus: on $PROM_PORT and $DIR/tsdb (kept across restarts).
start_prometheus() {
    prometheus --config.file="$DIR/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
        --storage.tsdb.path="$DIR/tsdb" --web.enable-remote-write-receiver \
        >> "$DIR/prometheus.log" 2>&1 &
    PROM_PID=$!
    PIDS+=("$PROM_PID")
    wait_tcp "$PROM_PORT" 30 || fail "prometheus does not listen"
}

# run_agent URL SECONDS: the main program pushing to URL every second for
# SECONDS, then stopping (one last push); its final export in agent.out.
run_agent() {
    METRICS_REMOTE_WRITE_URL=$1 METRICS_REMOTE_WRITE_INTERVAL=1s METRICS_REMOTE_WRITE_TIMEOUT=2s \
        METRICS_SYSTEM_POLLING=off \
        "$BIN" --duration "$2" --listen off --store off --report-every 1h \
        > "$DIR/agent.out" 2> "$DIR/agent.err" &
    AGENT_PID=$!
    PIDS+=("$AGENT_PID")
}

# check_totals QUERY_URL NAME: every series of http_requests_total in the
# program's final export equals what the receiver answers to PromQL.
check_totals() {
    python3 - "$1" "$DIR/agent.out" "$2" <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
base, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(out).read().split("--- final export", 1)[1]
want = {}
for line in text.splitlines():
    m = re.match(r'http_requests_total\{(.*)\} (\S+)$', line)
    if m:
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(1))))
        want[labels] = float(m.group(2))
assert want and sum(want.values()) > 0, "no request counter in the final export"
def query():
    q = urllib.parse.urlencode({"query": "http_requests_total"})
    with urllib.request.urlopen(f"{base}/api/v1/query?{q}", timeout=10) as r:
        res = json.load(r)["data"]["result"]
    return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): float(s["value"][1]) for s in res}
got = {}
deadline = time.time() + 60
while time.time() < deadline:
    got = query()
    if got == want:
        break
    time.sleep(0.5)
assert got == want, f"{name}: read back {got}, recorded {want}"
print(f"interop-remote-write: {name}: {len(want)} series, {int(sum(want.values()))} requests, read back exactly")
PY
}

log "Prometheus as a receiver, killed and restarted mid-run"
PROM_PORT=$(free_port)
echo 'global: { scrape_interval: 1m }' > "$DIR/prometheus.yml"
start_prometheus
run_agent "http://127.0.0.1:$PROM_PORT/api/v1/write" 16s
sleep 5
kill "$PROM_PID"
wait "$PROM_PID" 2>/dev/null || true
log "prometheus stopped for 4 s while the program pushes"
sleep 4
start_prometheus
wait "$AGENT_PID" || fail "the program failed"
grep -q '^remote write: ' "$DIR/agent.err" || fail "the program did not report its pushes"
grep '^remote write: ' "$DIR/agent.err" >&2
grep -q ' 0 samples dropped' "$DIR/agent.err" || fail "samples were dropped"
check_totals "http://127.0.0.1:$PROM_PORT" prometheus || fail "the totals in Prometheus differ"
# The outage shows as failed attempts, retried.
grep -qE ', [1-9][0-9]* failed attempts' "$DIR/agent.err" || fail "no failed attempt while Prometheus was down"

log "VictoriaMetrics as a receiver"
VM_PORT=$(free_port)
# -search.latencyOffset=0s: by default a query at "now" leaves out the
# last 30 s of samples (to hide points still arriving), which here are the
# final totals.
"$VM_BIN" -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$DIR/vm" -retentionPeriod=1d \
    -search.latencyOffset=0s > "$DIR/vm.log" 2>&1 &
PIDS+=($!)
wait_tcp "$VM_PORT" 30 || fail "victoria-metrics does not listen"
run_agent "http://127.0.0.1:$VM_PORT/api/v1/write" 6s
wait "$AGENT_PID" || fail "the program failed"
grep '^remote write: ' "$DIR/agent.err" >&2
grep -q ' 0 samples dropped' "$DIR/agent.err" || fail "samples were dropped"
# VictoriaMetrics makes samples searchable after a short delay (about a
# second): check_totals polls.
check_totals "http://127.0.0.1:$VM_PORT" victoria-metrics || fail "the totals in VictoriaMetrics differ"
log "interop-remote-write: passed"
