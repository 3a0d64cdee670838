#!/usr/bin/env bash
# The history store against real databases: the metrics-store suite on
# SQLite, on a small file system that fills up (a 1 MiB tmpfs: needs root)
# and on a private PostgreSQL cluster (Debian `postgresql`, started on
# 127.0.0.1 in a temporary directory as the unprivileged `postgres` user,
# stopped by PID), then the main program killed with SIGKILL and restarted:
# the history written before the kill is still answered after it, from
# SQLite and from PostgreSQL; the main program on a full tmpfs given room
# again (rows in the file == rows it reported written, counted with the
# sqlite3 CLI); and the main program while its PostgreSQL server is down
# and while it hangs (health within one flush interval, queries answered
# from memory within about a second and flagged `partial`, nothing lost);
# and the main program on a PostgreSQL tablespace on a tmpfs that fills up
# and is given room again (rows reported == rows in the database).
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
PG_STOPPED=     # PIDs of the cluster's processes while SIGSTOPped
SMALL=          # the small tmpfs' mount point, while mounted
AGENTS=()       # agents started below, stopped on exit
stop_pg() {
    if [ -n "$PG_STOPPED" ]; then kill -CONT $PG_STOPPED 2>/dev/null || true; fi
    if [ -n "$PGPID" ] && kill "$PGPID" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$PGPID" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$PGDIR"
}
cleanup() {
    local pid
    for pid in "${AGENTS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    stop_pg # before the tmpfs its tablespace may be on
    if [ -n "$SMALL" ]; then umount "$SMALL" 2>/dev/null || umount -l "$SMALL" || true; rmdir "$SMALL" || true; fi
}
trap cleanup EXIT
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
for db in suite agent fleet outage sdk; do
    psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "create database $db" >/dev/null
done
PG=postgres://postgres@127.0.0.1:$PGPORT

start_pg() {
    as_pg "$PGBIN/pg_ctl -D $PGDIR/data -o '-h 127.0.0.1 -p $PGPORT -k $PGDIR' -l $PGDIR/log -w start" >/dev/null \
        || { cat "$PGDIR/log" >&2; fail "PostgreSQL did not start"; }
    PGPID=$(head -1 "$PGDIR/data/postmaster.pid")
}

# --- a small file system that fills up --------------------------------------
[ "$(id -u)" = 0 ] || fail "mounting a small tmpfs needs root (CI runs this script as root)"
ensure_apt sqlite3 sqlite3
SMALL=$(mktemp -d "${TMPDIR:-/tmp}/metrics-small.XXXXXX")
mount -t tmpfs -o size=1m tmpfs "$SMALL" || { rmdir "$SMALL"; SMALL=; fail "cannot mount a tmpfs"; }
mkdir "$SMALL/suite"

# --- the suite on SQLite, a full file system and PostgreSQL -----------------
log "metrics-store suite: SQLite, a full 1 MiB tmpfs, and PostgreSQL"
METRICS_TEST_SMALL_FS=$SMALL/suite METRICS_TEST_POSTGRES_URL=$PG/suite \
    cargo test -q -p metrics-store -- --nocapture 2>&1 | tee "$PGDIR/suite.log" \
    || fail "the store suite failed"
grep -q "rows reported written" "$PGDIR/suite.log" \
    || fail "the suite did not run on the full file system"
rm -rf "${SMALL:?}/suite"
log "metrics-sdk history: windows across a restart, on PostgreSQL"
METRICS_TEST_POSTGRES_URL=$PG/sdk cargo test -q -p metrics-sdk --all-features --lib history:: \
    || fail "the history tests failed on PostgreSQL"

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
# history of the bins that ended at least 5 s ago (the 2 s flush interval,
# and 3 s for a busy machine: what SIGKILL may not take), kills it with SIGKILL, restarts
# it on the same store and asks again: the answers must be equal, and
# non-empty.
killed_and_restarted() {
    local store=$1 label=$2 port pid t0 end before after
    port=$(free_port)
    t0=$(( $(date +%s) / 10 * 10 ))
    (cd "$RUN" && exec "$BIN" --store "$store" --listen "127.0.0.1:$port" --no-export \
        --report-every 60s > "$RUN/$label-1.out" 2>&1) &
    pid=$!
    wait_tcp "$port" 60 || fail "$label: the agent did not serve"
    sleep 40
    end=$(( ($(date +%s) - 5) / 10 * 10 ))
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

# --- the main program on a file system that fills up ------------------------
# health_of PORT CHECK: the check's status and message, as `status|message`.
health_of() {
    curl -sS "http://127.0.0.1:$1/api/v1/health" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = [c for c in d["checks"] if c["name"] == sys.argv[1]]
print(c[0]["status"] + "|" + (c[0]["message"] or "") if c else "missing|")' "$2"
}
# wait_check PORT CHECK PATTERN SECONDS: waits until `status|message` of
# CHECK matches the extended regex PATTERN; prints the seconds it took.
wait_check() {
    local port=$1 check=$2 pattern=$3 secs=$4 t0 now got
    t0=$(date +%s.%N)
    while :; do
        got=$(health_of "$port" "$check" 2>/dev/null || true)
        now=$(date +%s.%N)
        if printf '%s' "$got" | grep -Eq "$pattern"; then
            python3 -c "print(f'{$now - $t0:.1f}')"
            return 0
        fi
        if python3 -c "import sys; sys.exit(0 if $now - $t0 > $secs else 1)"; then
            echo "check $check never matched /$pattern/ in ${secs}s (last: $got)" >&2
            return 1
        fi
        sleep 0.2
    done
}
# stop_agent PID LOG: stops an agent with SIGINT; sets REPORTED to the rows
# it says the database committed (`history: N bins written to URL (R
# rows)`), failing if it lost any.
stop_agent() {
    local pid=$1 out=$2 line
    kill -INT "$pid"; wait "$pid" || fail "the agent ($out) did not stop cleanly"
    line=$(grep "^history: " "$out") || fail "no history line in $out"
    case $line in *lost*) fail "$out: $line" ;; esac
    REPORTED=$(printf '%s\n' "$line" | sed -E 's/.*\(([0-9]+) rows\).*/\1/')
}

# ballast FILE KIB: fills the file system holding FILE with FILE, then
# shrinks it to leave KIB KiB free.
ballast() {
    python3 - "$1" "$2" <<'PY'
import os, sys
written = 0
with open(sys.argv[1], "wb") as f:
    try:
        while True:
            f.write(b"\0" * 65536); f.flush(); os.fsync(f.fileno()); written += 65536
    except OSError:
        pass
    f.truncate(max(0, written - int(sys.argv[2]) * 1024))
PY
}

log "main program: a full file system, then room again"
DIR=$SMALL/agent
mkdir "$DIR"
port=$(free_port)
(cd "$RUN" && exec "$BIN" --store "sqlite://$DIR/" --listen "127.0.0.1:$port" --no-export \
    --report-every 600s > "$RUN/full.out" 2> "$RUN/full.err") &
pid=$!; AGENTS+=("$pid")
wait_tcp "$port" 60 || fail "full: the agent did not serve"
wait_check "$port" store '^healthy' 60 >/dev/null || fail "full: the store never became healthy"
# Ballast: all but 48 KiB of the tmpfs (a flush takes about 40 KiB).
ballast "$SMALL/ballast" 48
secs=$(wait_check "$port" store '^unhealthy\|.*full' 120) \
    || fail "full: health never said the store's disk is full"
disk=$(health_of "$port" disk)
case $disk in unhealthy\|*"$DIR"*) ;; *) fail "full: the disk check does not watch $DIR: $disk" ;; esac
echo "interop-store: full: store unhealthy ${secs}s after the disk filled: $(health_of "$port" store)"
echo "interop-store: full: $disk"
mount -o remount,size=16m "$SMALL" || fail "full: remount failed"
secs=$(wait_check "$port" store '^healthy' 60) || fail "full: the store never recovered"
echo "interop-store: full: healthy again ${secs}s after the remount"
stop_agent "$pid" "$RUN/full.err"; reported=$REPORTED
stored=$(sqlite3 "$DIR/history.sqlite" \
    "SELECT (SELECT COUNT(*) FROM bins) + (SELECT COUNT(*) FROM outcomes)")
grep -q "WARN.*history store unavailable" "$RUN/full.err" \
    || fail "full: the writer's warning did not reach stderr"
[ "$reported" -gt 0 ] && [ "$reported" = "$stored" ] \
    || fail "full: $reported rows reported written, $stored in the file"
echo "interop-store: full: $reported rows reported written, $stored in the file"
umount "$SMALL" && rmdir "$SMALL" && SMALL=

# --- the main program while PostgreSQL is down, then hung --------------------
# Health must say so within one flush interval (10 s); a query_range must
# answer from memory within a few seconds, flagged `partial`; and once the
# server is back every row the agent reported written must be in it.
log "main program: PostgreSQL down, then hung, mid-run"
# latency_and_flag PORT: a query_range over the last 5 minutes: its time in
# seconds and its `partial` field (or `complete`).
latency_and_flag() {
    local now out
    now=$(date +%s)
    out=$(curl -sS -o "$RUN/q.json" -w '%{time_total}' \
        "http://127.0.0.1:$1/api/v1/query_range?name=http.request&start=$((now - 300))&end=$now&step=10s") \
        || return 1
    printf '%s %s\n' "$out" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("partial", "complete"))' "$RUN/q.json")"
}
port=$(free_port)
(cd "$RUN" && METRICS_INSTANCE=outage exec "$BIN" --store "$PG/outage" --listen "127.0.0.1:$port" \
    --no-export --report-every 600s > "$RUN/outage.out" 2> "$RUN/outage.err") &
pid=$!; AGENTS+=("$pid")
wait_tcp "$port" 60 || fail "outage: the agent did not serve"
wait_check "$port" store '^healthy' 60 >/dev/null || fail "outage: the store never became healthy"
sleep 12 # history in the store
read -r lat flag < <(latency_and_flag "$port") || fail "outage: query_range failed"
echo "interop-store: outage: before: query_range ${lat}s, $flag"
[ "$flag" = complete ] || fail "outage: a partial answer with the server up: $flag"

# Down: a fast shutdown of the cluster, by PID.
kill -INT "$PGPID"
for _ in $(seq 100); do kill -0 "$PGPID" 2>/dev/null || break; sleep 0.1; done
secs=$(wait_check "$port" store '^unhealthy' 10) \
    || fail "outage: health did not say the store is down within one flush interval"
echo "interop-store: outage: down: store unhealthy ${secs}s after the server stopped: $(health_of "$port" store)"
read -r lat flag < <(latency_and_flag "$port") || fail "outage: query_range failed while down"
echo "interop-store: outage: down: query_range ${lat}s, partial: $flag"
[ "$flag" != complete ] || fail "outage: no partial flag while the server is down"
python3 -c "import sys; sys.exit(0 if $lat < 3 else 1)" || fail "outage: query_range took ${lat}s while down"
start_pg
secs=$(wait_check "$port" store '^healthy' 60) || fail "outage: the store never recovered"
echo "interop-store: outage: healthy again ${secs}s after the server restarted"

# Hung: every process of the cluster stopped (SIGSTOP, by PID): connections
# are accepted by the kernel and never answered.
PG_STOPPED="$PGPID $(ps -o pid= --ppid "$PGPID" | tr '\n' ' ')"
kill -STOP $PG_STOPPED
secs=$(wait_check "$port" store '^unhealthy' 10) \
    || { kill -CONT $PG_STOPPED; PG_STOPPED=; fail "outage: health did not say the store hangs within one flush interval"; }
echo "interop-store: outage: hung: store unhealthy ${secs}s after the server stopped answering: $(health_of "$port" store)"
read -r lat flag < <(latency_and_flag "$port") || { kill -CONT $PG_STOPPED; PG_STOPPED=; fail "outage: query_range failed while hung"; }
echo "interop-store: outage: hung: query_range ${lat}s, partial: $flag"
kill -CONT $PG_STOPPED; PG_STOPPED=
[ "$flag" != complete ] || fail "outage: no partial flag while the server hangs"
python3 -c "import sys; sys.exit(0 if $lat < 3 else 1)" || fail "outage: query_range took ${lat}s while hung"
secs=$(wait_check "$port" store '^healthy' 60) || fail "outage: the store never recovered from the hang"
echo "interop-store: outage: healthy again ${secs}s after the server resumed"
stop_agent "$pid" "$RUN/outage.err"; reported=$REPORTED
stored=$(psql -tA -h 127.0.0.1 -p "$PGPORT" -U postgres -d outage -c \
    "SELECT (SELECT COUNT(*) FROM bins WHERE instance = 'outage') + (SELECT COUNT(*) FROM outcomes WHERE instance = 'outage')")
[ "$reported" -gt 0 ] && [ "$reported" = "$stored" ] \
    || fail "outage: $reported rows reported written, $stored in the database"
echo "interop-store: outage: $reported rows reported written, $stored in the database: nothing lost"

# --- the main program on a PostgreSQL tablespace that fills up ---------------
# The database lives in a tablespace on a 32 MiB tmpfs (the cluster's WAL
# stays on the data directory's disk); a ballast file leaves 64 KiB. The
# server refuses to extend a table (`No space left on device`: an error,
# the transaction rolled back); health must say so; with the ballast gone
# writing resumes, and the rows reported written are all in the database.
log "main program: a PostgreSQL tablespace that fills up, then room again"
SMALL=$(mktemp -d "${TMPDIR:-/tmp}/metrics-small.XXXXXX")
mount -t tmpfs -o size=32m tmpfs "$SMALL" || { rmdir "$SMALL"; SMALL=; fail "cannot mount a tmpfs"; }
mkdir "$SMALL/ts" && chown postgres "$SMALL/ts"
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE TABLESPACE small LOCATION '$SMALL/ts'" >/dev/null
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE fullpg TABLESPACE small" >/dev/null
port=$(free_port)
(cd "$RUN" && METRICS_INSTANCE=full exec "$BIN" --store "$PG/fullpg" --listen "127.0.0.1:$port" \
    --no-export --report-every 600s > "$RUN/pgfull.out" 2> "$RUN/pgfull.err") &
pid=$!; AGENTS+=("$pid")
wait_tcp "$port" 60 || fail "pgfull: the agent did not serve"
wait_check "$port" store '^healthy' 60 >/dev/null || fail "pgfull: the store never became healthy"
ballast "$SMALL/ballast" 64
secs=$(wait_check "$port" store '^unhealthy\|.*No space left' 180) \
    || fail "pgfull: health never said the tablespace is full"
echo "interop-store: pgfull: store unhealthy ${secs}s after the tablespace filled: $(health_of "$port" store)"
rm "$SMALL/ballast"
secs=$(wait_check "$port" store '^healthy' 60) || fail "pgfull: the store never recovered"
echo "interop-store: pgfull: healthy again ${secs}s after the ballast was removed"
stop_agent "$pid" "$RUN/pgfull.err"; reported=$REPORTED
stored=$(psql -tA -h 127.0.0.1 -p "$PGPORT" -U postgres -d fullpg -c \
    "SELECT (SELECT COUNT(*) FROM bins WHERE instance = 'full') + (SELECT COUNT(*) FROM outcomes WHERE instance = 'full')")
[ "$reported" -gt 0 ] && [ "$reported" = "$stored" ] \
    || fail "pgfull: $reported rows reported written, $stored in the database"
echo "interop-store: pgfull: $reported rows reported written, $stored in the database"
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "DROP DATABASE fullpg" >/dev/null
psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "DROP TABLESPACE small" >/dev/null
umount "$SMALL" && rmdir "$SMALL" && SMALL=

log "interop-store passed"
