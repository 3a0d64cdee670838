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
for db in suite agent; do
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
log "interop-store passed"
