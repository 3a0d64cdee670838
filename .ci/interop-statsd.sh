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

# timer_count KEY: samples the daemon holds for one timer (util.inspect cuts
# arrays after 100 items and says how many more there are).
timer_count() {
    mgmt timers | python3 -c '
import re, sys
key, text = sys.argv[1], sys.stdin.read()
i = text.find("\x27" + key + "\x27: [")
if i < 0:
    print(0); sys.exit()
body = text[text.index("[", i) + 1 : text.index("]", i)]
more = re.search(r"\.\.\. ([0-9]+) more item", body)
body = re.sub(r"\.\.\. [0-9]+ more items?", "", body)
print(len(re.findall(r"-?[0-9][0-9.e+-]*", body)) + (int(more.group(1)) if more else 0))' "$1"
}

# field NAME OUTPUT: NAME=value from the load example's summary line.
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<< "$2" | head -1; }

# account WHAT DELIVERED OUTPUT: delivered + counted drops must equal recorded.
account() {
    local what=$1 delivered=$2 out=$3 recorded dropped
    recorded=$(field recorded "$out")
    dropped=$(field dropped "$out")
    [ -n "$recorded" ] && [ -n "$dropped" ] || fail "$what: no summary in: $out"
    echo "$what: recorded $recorded, daemon has $delivered, counted drops $dropped ($out)" >&2
    [ "$((delivered + dropped))" = "$recorded" ] || fail "$what: $delivered + $dropped != $recorded"
}

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
# (Answers are read whole before grep: `grep -q` stopping early would break the pipe.)
timers=$(mgmt timers)
counters=$(mgmt counters)
grep -q "send.dogstatsd.t" <<< "$timers" || fail "timer missing: $timers"
# The Etsy daemon has no histogram type: the etsy flavor sends histograms as
# timers, so they must be among its timers and not added up as a counter.
grep -q "send.etsy.h" <<< "$timers" || fail "etsy histogram not a timer: $timers"
grep -q "send.etsy.h" <<< "$counters" && fail "etsy histogram counted as a counter"

log "a malformed line: reported with its number, exit 1, the rest still sent"
set +e
printf '%s\n' '{"kind":"counter","name":"ok.line","value":1}' '{"kind":' | "$BIN/send" --addr "127.0.0.1:$PORT" 2> "$DIR/err.txt"
rc=$?
set -e
[ "$rc" = 1 ] || fail "expected exit 1, got $rc"
grep -q '^line 2:' "$DIR/err.txt" || fail "line 2 not reported: $(cat "$DIR/err.txt")"
wait_value counters ok.line 1

log "daemon started late: 4 threads x 20,000 increments over 4 s, the daemon up after 1 s"
kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
"$BIN/load" --addr "127.0.0.1:$PORT" --threads 4 --count 20000 --rate 5000 \
    --name late.hits --allow-drops > "$DIR/late.out" &
LOAD=$!
sleep 1
start_statsd "$DIR" "$PORT" "$MGMT" || fail "the daemon did not restart"
wait "$LOAD" || fail "load (daemon late) failed: $(cat "$DIR/late.out")"
sleep 0.3
late=$(value counters "late.hits;kind=interop;source=plain" | sed 's/missing/0/')
account "daemon late" "$late" "$(cat "$DIR/late.out")"
# What was refused before it started went to it once it was up.
[ "$late" -gt 0 ] || fail "the late daemon got nothing: $(cat "$DIR/late.out")"

log "daemon killed (SIGKILL) and restarted mid-run: 4 x 40,000 increments at 20,000/s"
rm -f "$DIR/pause"
"$BIN/load" --addr "127.0.0.1:$PORT" --threads 4 --count 40000 --rate 5000 \
    --name kill.hits --pause-file "$DIR/pause" --allow-drops > "$DIR/kill.out" &
LOAD=$!
for _ in $(seq 1 200); do [ -f "$DIR/pause" ] && break; sleep 0.05; done
[ -f "$DIR/pause" ] || fail "the load never paused"
sleep 0.3 # the flush before the pause has arrived
before=$(value counters "kill.hits;kind=interop;source=plain" | sed 's/missing/0/')
kill -9 "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
rm -f "$DIR/pause" # the load goes on, the daemon down
sleep 1
start_statsd "$DIR" "$PORT" "$MGMT" || fail "the daemon did not restart"
wait "$LOAD" || fail "load (daemon killed) failed: $(cat "$DIR/kill.out")"
sleep 0.3
after=$(value counters "kill.hits;kind=interop;source=plain" | sed 's/missing/0/')
account "daemon killed and restarted" "$((before + after))" "$(cat "$DIR/kill.out")"
# The totals refused while it was down went to the restarted daemon (the
# load runs 4 s after the kill, the restart takes about 1 s).
[ "$after" -gt 0 ] || fail "the restarted daemon got nothing: $(cat "$DIR/kill.out")"

log "50,000 timers, a counter and a gauge queued when the backend shuts down"
"$BIN/load" --addr "127.0.0.1:$PORT" --timers 50000 --name burst.t --allow-drops > "$DIR/burst.out" \
    || fail "load (burst) failed: $(cat "$DIR/burst.out")"
sleep 0.3
t=$(timer_count "burst.t;kind=burst")
c=$(value counters burst.t.counter | sed 's/missing/0/')
g=$(value gauges burst.t.gauge | sed 's/missing/0/')
[ "$g" = 42 ] || [ "$(field dropped "$(cat "$DIR/burst.out")")" != 0 ] || fail "the gauge did not arrive ($g)"
account "50,000 queued timers" "$((t + c + (g == 42 ? 1 : 0)))" "$(cat "$DIR/burst.out")"

log "no daemon at all: every increment is counted as dropped"
out=$("$BIN/load" --addr "127.0.0.1:$(free_port)" --threads 2 --count 5000 --name nobody.hits --allow-drops)
account "no daemon" 0 "$out"

log "the send example with nothing listening: the final datagram's loss is found, exit 1"
set +e
printf '%s\n' '{"kind":"counter","name":"nobody","value":1}' \
    | "$BIN/send" --addr "127.0.0.1:$(free_port)" 2> "$DIR/nobody.txt"
rc=$?
set -e
[ "$rc" = 1 ] || fail "expected exit 1 with nothing listening, got $rc: $(cat "$DIR/nobody.txt")"
grep -q "lost" "$DIR/nobody.txt" || fail "the loss was not reported: $(cat "$DIR/nobody.txt")"

bad=$(value stats bad_lines_seen)
[ "$(value counters statsd.bad_lines_seen)" = 0 ] || fail "bad lines seen"
log "interop-statsd passed (cumulative bad lines: $bad)"
