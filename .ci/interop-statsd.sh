#!/usr/bin/env bash
# The StatsD backend against the reference Etsy daemon (npm statsd 0.9.0):
# totals read back through the daemon's management port.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

cargo build -q -p metrics-statsd --example send --example load
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/examples
DIR=$CI_WORK/statsd-run
mkdir -p "$DIR"
fail() { echo "interop-statsd: $*" >&2; [ -f "$DIR/statsd.log" ] && tail -20 "$DIR/statsd.log" >&2; exit 1; }

start_statsd "$DIR" || fail "the daemon did not start"

# value COMMAND KEY: one numeric entry of a management answer (util.inspect text).
value() {
    mgmt "$1" | python3 -c '
import re, sys
key = sys.argv[1]
text = sys.stdin.read()
m = re.search(r"[\x27\"]" + re.escape(key) + r"[\x27\"]: (-?[0-9.e+]+)", text) or re.search(r"\b" + re.escape(key) + r": (-?[0-9.e+]+)", text)
print(m.group(1) if m else "missing")' "$2"
}
wait_value() { # COMMAND KEY EXPECTED
    for _ in $(seq 1 50); do
        [ "$(value "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    fail "$1 $2: expected $3, got $(value "$1" "$2")"
}

log "4 threads x 25,000 increments of one tagged counter (DogStatsD tags)"
"$BIN/load" --addr "127.0.0.1:$PORT" --threads 4 --count 25000 --tag-value plain
wait_value counters "interop.hits;kind=interop;source=plain" 100000
[ "$(value counters statsd.bad_lines_seen)" = 0 ] || fail "bad lines seen: $(value counters statsd.bad_lines_seen)"

log "the same with reserved characters in the tag value, and the Etsy (name-embedded) flavor"
"$BIN/load" --addr "127.0.0.1:$PORT" --threads 4 --count 25000 --tag-value $'a:b|c@d#e,f\ng'
wait_value counters "interop.hits;kind=interop;source=a_b_c_d_e_f_g" 100000
"$BIN/load" --addr "127.0.0.1:$PORT" --threads 4 --count 25000 --tag-value etsy --flavor etsy
wait_value counters "interop.hits;kind=interop;source=etsy" 100000
[ "$(value counters statsd.bad_lines_seen)" = 0 ] || fail "bad lines seen: $(value counters statsd.bad_lines_seen)"

log "samples through the send example, both flavors"
for flavor in dogstatsd etsy; do
    printf '%s\n' \
        "{\"kind\":\"counter\",\"name\":\"send.$flavor\",\"value\":3,\"tags\":{\"k\":\"v\"}}" \
        "{\"kind\":\"gauge\",\"name\":\"send.$flavor.g\",\"value\":-7.5}" \
        "{\"kind\":\"timer\",\"name\":\"send.$flavor.t\",\"value\":12.5}" \
        "{\"kind\":\"histogram\",\"name\":\"send.$flavor.h\",\"value\":4}" \
        | "$BIN/send" --addr "127.0.0.1:$PORT" --flavor "$flavor"
    wait_value counters "send.$flavor;k=v" 3
    wait_value gauges "send.$flavor.g" -7.5
done
mgmt timers | grep -q "send.dogstatsd.t" || fail "timer missing: $(mgmt timers)"
# The Etsy daemon has no histogram type: the etsy flavor sends histograms as
# timers, so they must be among its timers and not added up as a counter.
mgmt timers | grep -q "send.etsy.h" || fail "etsy histogram not a timer: $(mgmt timers)"
mgmt counters | grep -q "send.etsy.h" && fail "etsy histogram counted as a counter"

log "a malformed line: reported with its number, exit 1, the rest still sent"
set +e
printf '%s\n' '{"kind":"counter","name":"ok.line","value":1}' '{"kind":' | "$BIN/send" --addr "127.0.0.1:$PORT" 2> "$DIR/err.txt"
rc=$?
set -e
[ "$rc" = 1 ] || fail "expected exit 1, got $rc"
grep -q '^line 2:' "$DIR/err.txt" || fail "line 2 not reported: $(cat "$DIR/err.txt")"
wait_value counters ok.line 1

bad=$(value stats bad_lines_seen)
[ "$(value counters statsd.bad_lines_seen)" = 0 ] || fail "bad lines seen"
log "interop-statsd passed (cumulative bad lines: $bad)"
