#!/usr/bin/env bash
# The exposition formats over the memory backend checked by software nobody here wrote:
# promtool (strict parser and linter) and Python's prometheus_client parsers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

ensure_promtool
PY=$(ensure_venv)
cargo build -q -p metrics-exposition --example export
EXPORT=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/examples/export
DIR=$CI_WORK/memory
mkdir -p "$DIR"

# Every kind, names with dots and dashes, tag values with quotes,
# backslashes, newlines and non-ASCII text, tag keys that collide after
# sanitising, a user tag called "quantile", names that collide after
# sanitising, huge and tiny values.
cat > "$DIR/samples.jsonl" <<'JSON'
{"kind":"counter","name":"http.requests","value":1,"tags":{"method":"GET","path":"/a\"b\\c\nd"}}
{"kind":"counter","name":"http.requests","value":2.5,"tags":{"path":"/a\"b\\c\nd","method":"GET"}}
{"kind":"counter","name":"http-requests","value":7,"tags":{"méthode":"GÉT ✓"}}
{"kind":"counter","name":"http_requests_total","value":1}
{"kind":"gauge","name":"queue.depth","value":-3.25,"tags":{"a.b":"1","a_b":"2","__name__":"x"}}
{"kind":"gauge","name":"9lives","value":1e300}
{"kind":"histogram","name":"payload.size","value":1024,"tags":{"quantile":"q"}}
{"kind":"histogram","name":"payload.size","value":0.000001,"tags":{"quantile":"q"}}
{"kind":"histogram","name":"payload.size","value":-5,"tags":{"quantile":"q"}}
{"kind":"timer","name":"db.query","value":12.5,"tags":{"table":"users"}}
{"kind":"timer","name":"db.query","value":250,"tags":{"table":"users"}}
{"kind":"timer","name":"render-ms","value":3,"tags":{}}
JSON

fail() { echo "interop-memory: $*" >&2; exit 1; }

for f in prometheus openmetrics json csv; do
    "$EXPORT" "$f" < "$DIR/samples.jsonl" > "$DIR/out.$f" || fail "export $f exited $?"
done

log "promtool check metrics (exit 0 and no findings)"
findings=$(promtool check metrics < "$DIR/out.prometheus" 2>&1) || fail "promtool rejected the export: $findings"
[ -z "$findings" ] || fail "promtool findings: $findings"

log "prometheus_client text parser and OpenMetrics parser"
"$PY" - "$DIR" <<'PY'
import csv, json, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
d = sys.argv[1]
prom = list(text_string_to_metric_families(open(f"{d}/out.prometheus", encoding="utf-8").read()))
om = list(om_families(open(f"{d}/out.openmetrics", encoding="utf-8").read()))
def sample(fams, name, **labels):
    for f in fams:
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise SystemExit(f"missing sample {name} {labels}")
for fams in (prom, om):
    # Names are given suffixes in the sorted order of the originals: http-requests, http.requests, ...
    assert sample(fams, "http_requests_2_total", method="GET", path='/a"b\\c\nd') == 3.5
    assert sample(fams, "http_requests_total", m_thode="GÉT ✓") == 7
    assert sample(fams, "http_requests_3_total") == 1
    assert sample(fams, "_9lives") == 1e300
    assert sample(fams, "render_seconds_count") == 1
    assert sample(fams, "queue_depth", a_b="1", a_b_2="2", tag__name__="x") == -3.25
    assert sample(fams, "db_query_seconds_count", table="users") == 2
    assert abs(sample(fams, "db_query_seconds_sum", table="users") - 0.2625) < 1e-9
# Distributions are histograms: cumulative buckets, +Inf is the count.
for fams in (prom, om):
    assert sample(fams, "payload_size_bucket", tag_quantile="q", le="0.01") == 2
    assert sample(fams, "payload_size_bucket", tag_quantile="q", le="1000") == 2
    assert sample(fams, "payload_size_bucket", tag_quantile="q", le="2500") == 3
    assert sample(fams, "payload_size_bucket", tag_quantile="q", le="+Inf") == 3
    assert sample(fams, "db_query_seconds_bucket", table="users", le="0.025") == 1
assert sample(prom, "payload_size_count", tag_quantile="q") == 3
# OpenMetrics: a histogram that saw a negative value (-5) has no _sum (nor _count).
assert not any(s.name == "payload_size_sum" for f in om for s in f.samples)
assert [f.unit for f in om if f.name == "db_query_seconds"] == ["seconds"]
names = [f.name for f in prom]
assert len(names) == len(set(names)), names
rows = list(csv.DictReader(open(f"{d}/out.csv", encoding="utf-8")))
assert any(json.loads(r["tags"]).get("path") == '/a"b\\c\nd' for r in rows), rows
doc = json.load(open(f"{d}/out.json", encoding="utf-8"))
assert len(doc["series"]) == len(rows) == 8, (len(doc["series"]), len(rows))
print(f"prometheus_client: {len(prom)} families (text), {len(om)} (OpenMetrics); csv/json: {len(rows)} series")
PY

log "randomised names and tags (seeded) through promtool and both parsers"
"$PY" - "$DIR/random.jsonl" <<'PY'
import json, random, sys
rnd = random.Random(20261123)
words = ["http", "Requests", "ms", "s", "m", "latency", "counter", "total", "count", "sum", "bucket",
         "milliseconds", "kb", "bytes", "fahrenheit", "le", "quantile", "__name__", "userId", "9x", "ü", "✓"]
seps = [".", "-", "_", " ", ":", "/", "", "|", "@", "#", ","]
def name():
    return "".join(rnd.choice(words) + rnd.choice(seps) for _ in range(rnd.randint(1, 4))).strip() or "x"
def value_text():
    return rnd.choice(['a"b', "c\\d", "line\nbreak", "ümlaut ✓", "", "x" * 50, "k=v,k2=v2", "|#@:"])
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for _ in range(300):
        kind = rnd.choice(["counter", "gauge", "histogram", "timer"])
        tags = {name()[:100]: value_text() for _ in range(rnd.randint(0, 4))}
        v = abs(rnd.lognormvariate(0, 3)) if kind in ("counter", "timer") else rnd.uniform(-1e6, 1e6)
        f.write(json.dumps({"kind": kind, "name": name(), "value": v, "tags": tags}) + "\n")
PY
# Type mismatches (a name reused with another kind) are dropped, so exit 1 is expected here.
"$EXPORT" prometheus < "$DIR/random.jsonl" > "$DIR/random.prom" 2>/dev/null || true
"$EXPORT" openmetrics < "$DIR/random.jsonl" > "$DIR/random.om" 2>/dev/null || true
findings=$(promtool check metrics < "$DIR/random.prom" 2>&1) || fail "promtool rejected random input: $findings"
[ -z "$findings" ] || fail "promtool findings on random input: $findings"
"$PY" - "$DIR" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
d = sys.argv[1]
a = list(text_string_to_metric_families(open(f"{d}/random.prom", encoding="utf-8").read()))
b = list(om(open(f"{d}/random.om", encoding="utf-8").read()))
assert len(a) == len(b) and len(a) > 50, (len(a), len(b))
print(f"random input: {len(a)} families parsed by both parsers")
PY

log "a malformed line gives exit 1 with its line number"
set +e
printf '%s\n' '{"kind":"counter","name":"ok","value":1}' '{"kind":"counter","name":"bad"' \
    '{"kind":"counter","name":"neg","value":-1}' | "$EXPORT" json > "$DIR/partial.json" 2> "$DIR/partial.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "expected exit 1 for a malformed line, got $rc"
grep -q '^line 2:' "$DIR/partial.err" || fail "line 2 not reported: $(cat "$DIR/partial.err")"
grep -q '^line 3:' "$DIR/partial.err" || fail "dropped line 3 not reported: $(cat "$DIR/partial.err")"
grep -q '"name": "ok"' "$DIR/partial.json" || fail "the good line was not exported"
"$EXPORT" xml < /dev/null 2> "$DIR/xml.err" && fail "unknown format accepted"
grep -q 'unsupported export format `xml`' "$DIR/xml.err" || fail "unclear error: $(cat "$DIR/xml.err")"
log "interop-memory passed"
