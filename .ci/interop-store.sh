#!/usr/bin/env bash
# The history store against real databases: the metrics-store suite on
# SQLite and on a private PostgreSQL cluster (Debian `postgresql`, started
# on 127.0.0.1 in a temporary directory as the unprivileged `postgres` user,
# stopped by PID), then the main program killed with SIGKILL and restarted:
# the history written before the kill is still answered after it, from
# SQLite and from PostgreSQL.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"
fail() { echo "interop-store: $*" >&2; exit 1; }

# --- a private PostgreSQL cluster -------------------------------------------
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    # (ensure_apt would skip it when only the client, psql, is installed)
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/metrics-pg.XXXXXX")
PGPORT=$(free_port)
PGPID=
stop_pg() {
    if [ -n "$PGPID" ] && kill "$PGPID" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$PGPID" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$PGDIR"
}
trap stop_pg EXIT
if [ "$(id -u)" = 0 ]; then
    chown postgres "$PGDIR"
    as_pg() { su postgres -s /bin/sh -c "$1"; }
else
    as_pg() { sh -c "$1"; }
fi
log "PostgreSQL: private cluster on 127.0.0.1:$PGPORT in $PGDIR"
as_pg "$PGBIN/initdb -D $PGDIR/data -A trust -U postgres" > "$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log" >&2; fail "initdb failed"; }
as_pg "$PGBIN/pg_ctl -D $PGDIR/data -o '-h 127.0.0.1 -p $PGPORT -k $PGDIR' -l $PGDIR/log -w start" >/dev/null \
    || { cat "$PGDIR/log" >&2; fail "PostgreSQL did not start"; }
PGPID=$(head -1 "$PGDIR/data/postmaster.pid")
for db in suite agent fleet; do
    psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "create database $db" >/dev/null
done
PG=postgres://postgres@127.0.0.1:$PGPORT

# --- the suite on SQLite and PostgreSQL -------------------------------------
log "metrics-store suite: SQLite and PostgreSQL"
METRICS_TEST_POSTGRES_URL=$PG/suite cargo test -q -p metrics-store \
    || fail "the store suite failed"

# --- the main program killed and restarted ----------------------------------
cargo build -q -p metrics-agent
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/metrics-agent
RUN=$CI_WORK/store-run
rm -rf "$RUN" && mkdir -p "$RUN"

# range START END: the workload's request counts in 10 s steps, as JSON.
range() {
    curl -fsS "http://127.0.0.1:$1/api/v1/query_range?name=http.request&start=$2&end=$3&step=10s"
}

# killed_and_restarted STORE LABEL: runs the agent 40 s, asks for the
# history that is at least 20 s old (one flush interval plus the open bin:
# what SIGKILL may not take), kills it with SIGKILL, restarts it on the same
# store and asks again: the answers must be equal, and non-empty.
killed_and_restarted() {
    local store=$1 label=$2 port pid t0 end before after
    port=$(free_port)
    t0=$(( $(date +%s) / 10 * 10 ))
    (cd "$RUN" && exec "$BIN" --store "$store" --listen "127.0.0.1:$port" --no-export \
        --report-every 60s > "$RUN/$label-1.out" 2>&1) &
    pid=$!
    wait_tcp "$port" 60 || fail "$label: the agent did not serve"
    sleep 40
    end=$(( ($(date +%s) - 20) / 10 * 10 ))
    before=$(range "$port" "$t0" "$end") || fail "$label: query_range failed"
    kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
    port=$(free_port)
    (cd "$RUN" && exec "$BIN" --store "$store" --listen "127.0.0.1:$port" --no-export \
        --report-every 60s > "$RUN/$label-2.out" 2>&1) &
    pid=$!
    wait_tcp "$port" 60 || fail "$label: the restarted agent did not serve"
    after=$(range "$port" "$t0" "$end") || fail "$label: query_range after the restart failed"
    kill -INT "$pid"; wait "$pid" || fail "$label: the restarted agent did not stop cleanly"
    grep -q "history: .* bins written" "$RUN/$label-2.out" || fail "$label: no final flush"
    python3 - "$label" "$before" "$after" <<'PY'
import json, sys
label, before, after = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def counts(a):
    return {(s["group"], b["start"]): b["count"] for s in a["series"] for b in s["bins"]}
b, a = counts(before), counts(after)
if not b or sum(b.values()) == 0:
    sys.exit(f"interop-store: {label}: no history before the kill")
if a != b:
    sys.exit(f"interop-store: {label}: history changed across SIGKILL: before {b}, after {a}")
print(f"interop-store: {label}: {sum(b.values())} requests in {len(b)} bins kept across SIGKILL")
PY
}

log "main program: SIGKILL and restart on SQLite"
killed_and_restarted "sqlite://$RUN/data/" sqlite
log "main program: SIGKILL and restart on PostgreSQL"
killed_and_restarted "$PG/agent" postgres
# --- two agents sharing one PostgreSQL database ------------------------------
# Agent A runs 30 s and stops cleanly (its history is then all in the
# store); agent B, still running, answers for A by name, for itself, and for
# both merged (`instance=*`): the merged counts are the sum of the two.
log "main program: two agents on one PostgreSQL database, queried across both"
fleet_agent() {
    local name=$1 port=$2
    (cd "$RUN" && METRICS_INSTANCE=$name exec "$BIN" --store "$PG/fleet" \
        --listen "127.0.0.1:$port" --no-export --report-every 60s > "$RUN/fleet-$name.out" 2>&1) &
}
t0=$(( $(date +%s) / 10 * 10 ))
PA=$(free_port); fleet_agent agent-a "$PA"; PIDA=$!
PB=$(free_port); fleet_agent agent-b "$PB"; PIDB=$!
wait_tcp "$PA" 60 || fail "fleet: agent A did not serve"
wait_tcp "$PB" 60 || fail "fleet: agent B did not serve"
sleep 30
end=$(( $(date +%s) / 10 * 10 ))
kill -INT "$PIDA"; wait "$PIDA" || fail "fleet: agent A did not stop cleanly"
fleet_q() {
    curl -fsS "http://127.0.0.1:$PB/api/v1/$1?name=http.request&start=$t0&end=$end&$2"
}
a=$(fleet_q query_range "step=10s&instance=agent-a") || fail "fleet: instance=agent-a failed"
b=$(fleet_q query_range "step=10s&instance=agent-b") || fail "fleet: instance=agent-b failed"
all=$(fleet_q query_range "step=10s&instance=*") || fail "fleet: instance=* failed"
day=$(fleet_q rollup "period=day&instance=*") || fail "fleet: rollup instance=* failed"
kill -INT "$PIDB"; wait "$PIDB" || fail "fleet: agent B did not stop cleanly"
python3 - "$a" "$b" "$all" "$day" <<'PY'
import json, sys
a, b, all_, day = (json.loads(x) for x in sys.argv[1:])
def total(r):
    return sum(bin["count"] for s in r["series"] for bin in s["bins"])
ta, tb, tall, tday = total(a), total(b), total(all_), total(day)
if ta == 0 or tb == 0:
    sys.exit(f"interop-store: fleet: an instance has no history (a {ta}, b {tb})")
if tall != ta + tb:
    sys.exit(f"interop-store: fleet: instance=* counted {tall}, not a {ta} + b {tb}")
if tday != tall:
    sys.exit(f"interop-store: fleet: the day rollup counted {tday}, the range {tall}")
print(f"interop-store: fleet: {ta} + {tb} = {tall} requests across two agents")
PY

log "interop-store passed"
