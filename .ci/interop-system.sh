#!/usr/bin/env bash
# metrics-system against psutil: the `snapshot` example's JSON and psutil,
# read around the same moment, must agree. Exits non-zero on any mismatch.
#
#   total memory, logical CPU count, swap total ........ equal
#   disk total of `/` ................................... within 1%
#   disk percent of `/` (df's used / (used + free)) ..... within 1 point
#   network byte totals (all interfaces) ............... psutil before <= ours <= psutil after,
#                                                         and within 5% of psutil's
#   RSS of a `sleep` we start (passed with --pid) ....... within 10%
#
# Then the `publish` example polls twice into metrics-memory, with 1 MiB
# of loopback traffic between the polls, and prints /metrics' text:
#
#   promtool check metrics ............................. clean
#   system_network_io_bytes_total ...................... a counter; per direction,
#     the growth psutil saw between the polls <= ours <= the growth around them
#   process_threads .................................... a gauge >= 1
#   no name with a stray `_value` suffix
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

log "metrics-system: build the snapshot and publish examples"
cargo build -q -p metrics-system --example snapshot --example publish
target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}
snapshot_bin=$target_dir/debug/examples/snapshot
publish_bin=$target_dir/debug/examples/publish
for b in "$snapshot_bin" "$publish_bin"; do
    [ -x "$b" ] || { echo "no example binary at $b" >&2; exit 1; }
done

python=$(ensure_venv)

sleep 30 &
sleeper=$!
trap 'kill "$sleeper" 2>/dev/null || true' EXIT

log "metrics-system: compare with psutil (pid $sleeper)"
"$python" - "$snapshot_bin" "$sleeper" <<'PY'
import json, subprocess, sys

import psutil

binary, pid = sys.argv[1], int(sys.argv[2])
failures = []

def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

def within(ours, theirs, rel):
    return abs(ours - theirs) <= rel * max(abs(theirs), 1)

net_before = psutil.net_io_counters()
out = subprocess.run([binary, "--pid", str(pid)], check=True, capture_output=True, text=True)
net_after = psutil.net_io_counters()
vm, swap = psutil.virtual_memory(), psutil.swap_memory()
disk = psutil.disk_usage("/")
rss = psutil.Process(pid).memory_info().rss

try:
    snap = json.loads(out.stdout)
except json.JSONDecodeError as e:
    sys.exit(f"snapshot did not print one JSON object: {e}\n{out.stdout[:500]}")
missing = [k for k in ("memory", "cpu", "disk", "disks", "network", "process") if k not in snap]
check(not missing, f"top-level keys present (missing: {missing})")
if missing:
    sys.exit(1)

m, c, d, n, p = snap["memory"], snap["cpu"], snap["disk"], snap["network"], snap["process"]
check(m["total_bytes"] == vm.total,
      f"total memory equal: ours {m['total_bytes']} psutil {vm.total}")
check(c["logical_cores"] == psutil.cpu_count(logical=True),
      f"logical CPUs equal: ours {c['logical_cores']} psutil {psutil.cpu_count(logical=True)}")
check(m["swap_total_bytes"] == swap.total,
      f"swap total equal: ours {m['swap_total_bytes']} psutil {swap.total}")
check(d is not None and d["mount_point"] == "/" and within(d["total_bytes"], disk.total, 0.01),
      f"disk total of / within 1%: ours {d and d['total_bytes']} psutil {disk.total}")
# Our documented definition is df's and psutil's: used excludes root's reserve.
check(d is not None and abs(d["percent"] - disk.percent) <= 1.0,
      f"disk percent of / within 1 point: ours {d and round(d['percent'], 2)} psutil {disk.percent}")
for ours_key, attr in (("bytes_sent", "bytes_sent"), ("bytes_received", "bytes_recv")):
    lo, hi, ours = getattr(net_before, attr), getattr(net_after, attr), n[ours_key]
    check(lo <= ours <= hi,
          f"network {ours_key} monotone: psutil before {lo} <= ours {ours} <= psutil after {hi}")
    check(within(ours, hi, 0.05), f"network {ours_key} within 5%: ours {ours} psutil {hi}")
check(p["pid"] == pid, f"process reading is of pid {pid}: got {p['pid']}")
check(within(p["rss_bytes"], rss, 0.10), f"RSS of pid {pid} within 10%: ours {p['rss_bytes']} psutil {rss}")

if failures:
    print(f"\nmetrics-system disagrees with psutil on {len(failures)} check(s):", file=sys.stderr)
    for f in failures:
        print(f"  - {f}", file=sys.stderr)
    sys.exit(1)
print("metrics-system agrees with psutil")
PY

ensure_promtool
log "metrics-system: published counters against psutil, promtool on the text"
"$python" - "$publish_bin" <<'PY'
import socket, subprocess, sys, threading

import psutil
from prometheus_client.parser import text_string_to_metric_families

binary = sys.argv[1]
failures = []

def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

def loopback_traffic(n):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []
    def drain():
        conn, _ = server.accept()
        total = 0
        while chunk := conn.recv(65536):
            total += len(chunk)
        got.append(total)
        conn.close()
    t = threading.Thread(target=drain)
    t.start()
    client = socket.create_connection(server.getsockname())
    client.sendall(b"x" * n)
    client.close()
    t.join(timeout=30)
    server.close()
    return got[0] if got else 0

p0 = psutil.net_io_counters()
proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
ready = proc.stdout.readline().strip()
p1 = psutil.net_io_counters()
check(ready == "ready", f"first poll taken (got {ready!r})")
sent = loopback_traffic(1 << 20)
check(sent == 1 << 20, f"1 MiB sent over loopback between the polls ({sent} bytes)")
p2 = psutil.net_io_counters()
text, _ = proc.communicate("\n", timeout=60)
p3 = psutil.net_io_counters()
check(proc.returncode == 0, f"publish exited 0 (got {proc.returncode})")

lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
      f"promtool check metrics clean: {lint.stdout.strip()} {lint.stderr.strip()}")
check("thread_count" not in text and "_value" not in text,
      "no stray _value suffix (process_thread_count_value, system_cpu_logical_count_value)")

families = {f.name: f for f in text_string_to_metric_families(text)}
io = families.get("system_network_io_bytes")
check(io is not None and io.type == "counter", "system_network_io_bytes_total is a counter")
for direction, attr in (("receive", "bytes_recv"), ("transmit", "bytes_sent")):
    ours = sum(s.value for s in (io.samples if io else [])
               if s.name.endswith("_total") and s.labels.get("direction") == direction)
    lo = getattr(p2, attr) - getattr(p1, attr)
    hi = getattr(p3, attr) - getattr(p0, attr)
    check(lo <= ours <= hi,
          f"network {direction} bytes between the polls: psutil {lo} <= ours {ours:.0f} <= psutil {hi}")
    check(ours >= 1 << 20, f"network {direction} counted the 1 MiB: ours {ours:.0f}")
threads = families.get("process_threads")
value = threads.samples[0].value if threads and threads.samples else 0
check(threads is not None and threads.type == "gauge" and value >= 1,
      f"process_threads is a gauge >= 1 (got {value})")

if failures:
    print(f"\npublished system metrics disagree on {len(failures)} check(s):", file=sys.stderr)
    for f in failures:
        print(f"  - {f}", file=sys.stderr)
    sys.exit(1)
print("published system metrics agree with psutil and promtool")
PY
