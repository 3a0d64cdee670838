#!/usr/bin/env bash
# The embedding example: an axum application of its own with the metrics
# system's routes beside its own, on one listener. Checks that its routes
# and ours answer (orders counted, /metrics, a range query, the page), and
# that an application with memory, StatsD and /metrics compiles at most 110
# crates (`cargo tree -e normal`). Everything on 127.0.0.1, stopped by PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

ensure_apt curl curl
crates=$(cargo tree -e normal -p metrics-example-axum --prefix none | sed 's/ (\*)//' | sort -u | wc -l)
log "the embedding example compiles $crates crates (itself included)"
[ "$crates" -le 111 ] || { echo "interop-embed: $crates crates, more than 110 besides the example" >&2; exit 1; }

cargo build -q -p metrics-example-axum
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/metrics-example-axum
DIR=$CI_WORK/embed-run
rm -rf "$DIR" && mkdir -p "$DIR"
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT
fail() {
    echo "interop-embed: $*" >&2
    tail -20 "$DIR/out" >&2 || true
    exit 1
}

PORT=$(free_port)
METRICS_SYSTEM_POLLING=off "$BIN" "127.0.0.1:$PORT" 60 >"$DIR/out" 2>&1 &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do
    curl -sf "$URL/metrics" >/dev/null 2>&1 && break
    sleep 0.1
done
for _ in 1 2 3; do
    [ "$(curl -sf -X POST "$URL/orders")" = '"placed"' ] || fail "POST /orders"
done
[ "$(curl -sf "$URL/orders/count")" = 3 ] || fail "the application's own route read back $(curl -s "$URL/orders/count")"
curl -sf "$URL/metrics" | grep -q '^orders_placed_total{channel="web"} 3$' || fail "/metrics lacks the orders"
now=$(date +%s)
code=$(curl -s -o "$DIR/range.json" -w '%{http_code}' \
    "$URL/api/v1/query_range?name=orders.placed&start=$((now - 600))&end=$((now + 60))&step=10s")
[ "$code" = 200 ] || fail "query_range answered $code: $(cat "$DIR/range.json")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" = 200 ] || fail "the page"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/openapi.json")" = 200 ] || fail "the OpenAPI document"
kill -INT "$PID" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "the example did not stop on SIGINT"
PID=
log "interop-embed: the application's routes and ours answered on one listener"
