# Shared helpers for the CI scripts. Source it: `. "$(dirname "$0")/lib.sh"`.
# Everything binds to 127.0.0.1; every install is idempotent.
set -euo pipefail

CI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI_WORK=${CI_WORK:-$CI_ROOT/.ci/work}
mkdir -p "$CI_WORK"

log() { printf '\n== %s\n' "$*" >&2; }

apt_updated=0
# ensure_apt PACKAGE COMMAND: installs a Debian package unless COMMAND exists.
ensure_apt() {
    local pkg=$1 cmd=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
}

# ensure_venv: a Python venv at $CI_WORK/venv with prometheus_client and psutil.
# Prints the path of its python.
ensure_venv() {
    local venv=$CI_WORK/venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prometheus_client, psutil' 2>/dev/null; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q prometheus_client psutil >&2
    fi
    echo "$venv/bin/python"
}

# ensure_promtool: Debian's prometheus package (promtool and the server).
ensure_promtool() {
    ensure_apt prometheus promtool
}

# ensure_statsd: the reference Etsy StatsD daemon (npm statsd@0.9.0).
# Prints the path of its stats.js.
ensure_statsd() {
    local dir=$CI_WORK/statsd
    if [ ! -f "$dir/node_modules/statsd/stats.js" ]; then
        ensure_apt nodejs node
        ensure_apt npm npm
        npm install --silent --no-audit --no-fund --prefix "$dir" statsd@0.9.0 >&2
    fi
    echo "$dir/node_modules/statsd/stats.js"
}

# start_statsd DIR [PORT MGMT]: starts the Etsy daemon on 127.0.0.1 (no
# flushes, so totals accumulate), logging to DIR/statsd.log, on free ports or
# the ones given (to restart it where it was). Sets PORT (UDP), MGMT (the
# management port) and DAEMON (its pid), and kills it on exit.
start_statsd() {
    local dir=$1 stats_js
    stats_js=$(ensure_statsd)
    PORT=${2:-$(free_port)}
    MGMT=${3:-$(free_port)}
    cat > "$dir/config.js" <<JS
{ address: "127.0.0.1", port: $PORT, mgmt_address: "127.0.0.1", mgmt_port: $MGMT,
  flushInterval: 3600000, backends: [], deleteIdleStats: true }
JS
    if [ -n "${2:-}" ]; then # a restart: keep the earlier log
        node "$stats_js" "$dir/config.js" >> "$dir/statsd.log" 2>&1 &
    else
        node "$stats_js" "$dir/config.js" > "$dir/statsd.log" 2>&1 &
    fi
    DAEMON=$!
    trap 'kill $DAEMON 2>/dev/null || true' EXIT
    wait_tcp "$MGMT" 15
}

# mgmt COMMAND: the answer of the daemon started by start_statsd to a management command.
mgmt() {
    python3 - "$MGMT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall((sys.argv[2] + "\n").encode())
data = b""
while b"END" not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.decode())
PY
}

# free_port: an unused TCP/UDP port on 127.0.0.1.
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# wait_tcp PORT [SECONDS]: waits until 127.0.0.1:PORT accepts.
wait_tcp() {
    local port=$1 secs=${2:-15} i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing answers on 127.0.0.1:$port after ${secs}s" >&2
    return 1
}
