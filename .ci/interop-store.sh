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
    ensure_apt postgresql psql
fi
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/metrics-pg.XXXXXX")
PGPORT=$(free_port)
PGPID=
stop_pg() { [ -n "$PGPID" ] && kill "$PGPID" 2>/dev/null || true; rm -rf "$PGDIR"; }
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
