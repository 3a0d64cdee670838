#!/usr/bin/env bash
# The dashboard page at GET / in a real browser: Debian's Chromium driven
# headless by npm playwright-core, against the main program while its
# workload runs. Checks: the page loads with no console error, no page
# error, no failed request and no response >= 400; every dashboard shows
# non-empty panels and its line charts draw; a value changes within 5 s;
# the view buttons work from the keyboard; the explorer finds a series by
# name and charts it; an unhealthy answer shows with its reasons; with
# METRICS_HTTP_TOKEN set the page works from `?token=`. Takes screenshots,
# light and dark ($CI_WORK/dashboard-run/dashboard.png, or SCREENSHOT=path;
# WARMUP=seconds of workload before, 3 by default, longer for a fuller
# picture). Everything on 127.0.0.1, every process stopped by its PID;
# about 30 s once installed (Chromium's install: about a minute).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CI_ROOT"

PLAYWRIGHT_VERSION=1.65.1

cargo build -q -p metrics-agent
BIN=${CARGO_TARGET_DIR:-$CI_ROOT/target}/debug/metrics-agent
DIR=$CI_WORK/dashboard-run
rm -rf "$DIR" && mkdir -p "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() {
    echo "interop-dashboard: $*" >&2
    [ -f "$DIR/agent.err" ] && tail -15 "$DIR/agent.err" >&2
    exit 1
}

log "installing peers: chromium (Debian), playwright-core $PLAYWRIGHT_VERSION (npm)"
ensure_apt chromium chromium
ensure_apt nodejs node
ensure_apt npm npm
ensure_apt curl curl
PW=$CI_WORK/playwright
if [ ! -f "$PW/node_modules/playwright-core/package.json" ] \
    || ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$PW/node_modules/playwright-core/package.json"; then
    timeout 300 npm install --silent --no-audit --no-fund --prefix "$PW" "playwright-core@$PLAYWRIGHT_VERSION" >&2
fi

cat > "$DIR/check.js" <<'JS'
// node check.js URL SCREENSHOT PROFILE_DIR [TOKEN]
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const [url, screenshot, profile, token] = process.argv.slice(2);
const problems = [];
const step = (s) => console.log('interop-dashboard: ' + s);

async function main() {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
    timeout: 30000,
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('requestfailed', (r) => problems.push('request failed: ' + r.url() + ' ' + (r.failure() || {}).errorText));
    page.on('response', (r) => { if (r.status() >= 400) problems.push('response ' + r.status() + ': ' + r.url()); });

    await page.goto(url + (token ? '?token=' + encodeURIComponent(token) : ''), { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('health').dataset.status !== 'unknown');
    step('health: ' + await page.textContent('#health-text'));
    if (token && page.url().includes('token=')) throw new Error('the token stayed in the address: ' + page.url());

    for (const view of ['overview', 'performance', 'errors', 'resources']) {
      await page.click(`nav button[data-view="${view}"]`);
      // Every panel of the dashboard has data; every line panel drew a chart.
      const handle = await page.waitForFunction((v) => {
        const panels = Array.from(document.querySelectorAll('#panels .panel'));
        if (panels.length === 0 || !panels[0].id.startsWith('panel-' + v)) return false;
        if (!panels.every((p) => Number(p.dataset.series) > 0)) return false;
        return panels.map((p) => p.dataset.panel + ' (' + p.dataset.series + ' series' +
          (p.querySelector('canvas') ? ', chart' : '') + ')');
      }, view, { timeout: 30000 });
      step(view + ': ' + (await handle.jsonValue()).join('; '));
      const lines = await page.$$eval('#panels .panel canvas', (c) => c.length);
      if (lines === 0 && view !== 'errors') throw new Error(view + ': no line chart drawn');
    }

    // Live: a value on the page changes within 5 s, without a reload.
    await page.click('nav button[data-view="overview"]');
    const sel = '#panels .panel[data-panel="Top counters (all time)"] .bars';
    await page.waitForSelector(sel);
    const before = await page.textContent(sel);
    const t0 = Date.now();
    await page.waitForFunction(([s, b]) => document.querySelector(s) && document.querySelector(s).textContent !== b,
      [sel, before], { timeout: 5000 });
    step(`a value changed after ${Date.now() - t0} ms`);

    // Keyboard: Tab reaches the view buttons; Enter switches the view.
    await page.focus('nav button[data-view="errors"]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('nav button[data-view="errors"]').getAttribute('aria-current') === 'page'
      && document.querySelector('#panels .panel') && document.querySelector('#panels .panel').id.startsWith('panel-errors'));
    step('keyboard: Enter on a focused view button switches the view');

    // The explorer finds a series by name and charts it.
    await page.click('nav button[data-view="explorer"]');
    await page.fill('#ex-find', 'db.que');
    await page.waitForSelector('#ex-metric option[value="db.query"]', { state: 'attached' });
    const options = await page.$$eval('#ex-metric option', (o) => o.map((x) => x.value));
    if (options.some((o) => !o.includes('db.que'))) throw new Error('the filter kept ' + options);
    await page.selectOption('#ex-metric', 'db.query');
    await page.waitForFunction(() => /db\.query .* [1-9][0-9.]* ?k? samples/.test(document.getElementById('ex-status').textContent)
      && document.querySelector('#ex-rate canvas') && document.querySelector('#ex-value canvas'));
    await page.waitForFunction(() => document.querySelector('#ex-pct canvas'), null, { timeout: 10000 });
    step('explorer: ' + await page.textContent('#ex-status'));
    step('explorer stats: ' + (await page.$$eval('#ex-stats .stat', (s) => s.map((x) => x.textContent))).join(', '));

    // Group by a tag.
    await page.fill('#ex-find', 'http.request');
    await page.selectOption('#ex-metric', 'http.request');
    await page.selectOption('#ex-group', 'route');
    await page.waitForFunction(() => /http\.request .* [2-9] series/.test(document.getElementById('ex-status').textContent));
    step('explorer grouped: ' + await page.textContent('#ex-status'));

    // The range picker: 1 h and 24 h read the server's coarser history.
    for (const [range, bins] of [['3600', '60 s'], ['86400', '900 s'], ['300', '10 s']]) {
      await page.selectOption('#range', range);
      await page.waitForFunction((b) => document.getElementById('ex-status').textContent.includes('bins of ' + b), bins);
    }
    step('range picker: 5 m, 1 h and 24 h answered');

    if (screenshot) {
      await page.click('nav button[data-view="overview"]');
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#panels .panel')).length >= 4
        && document.querySelector('#panels canvas'));
      await page.waitForTimeout(500);
      await page.screenshot({ path: screenshot, fullPage: true });
      step('screenshot: ' + screenshot);
      // Dark: the same page under prefers-color-scheme: dark.
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.waitForTimeout(2500);
      const dark = screenshot.replace(/\.png$/, '') + '-dark.png';
      await page.screenshot({ path: dark, fullPage: true });
      step('screenshot (dark): ' + dark);
    }
    // Unhealthy at a glance, with the reason: the server's 503 answer,
    // played to a second page (its 503 is expected, so not a problem).
    const sick = await context.newPage();
    await sick.route('**/api/v1/health', (route) => route.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ status: 'unhealthy', healthy: false, error_rate: 0.5, dropped: { send_failed: 7 },
        backends: [{ name: 'statsd', status: 'unhealthy', dropped: {}, details: { reachable: 0 }, message: 'daemon unreachable' }],
        checks: [{ name: 'disk', status: 'degraded', message: '/ is 91% full' }], timestamp: new Date().toISOString() }),
    }));
    await sick.goto(url + (token ? '?token=' + encodeURIComponent(token) : ''));
    await sick.waitForFunction(() => document.getElementById('health').dataset.status === 'unhealthy');
    const sickText = await sick.textContent('#health-text');
    if (!/unhealthy.*50.*%.*7 dropped.*statsd: daemon unreachable.*disk: \/ is 91% full/.test(sickText)) {
      throw new Error('the unhealthy header reads: ' + sickText);
    }
    step('unhealthy reads: ' + sickText);
    await sick.close();

    const heap = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : null);
    if (heap) step(`JS heap in use: ${(heap / 1048576).toFixed(1)} MiB`);
  } finally {
    await context.close();
  }
  if (problems.length) throw new Error(problems.join('\n'));
}

const timer = setTimeout(() => { console.error('interop-dashboard: timed out'); process.exit(1); }, 100000);
main().then(() => { clearTimeout(timer); step('ok'); }, (e) => {
  console.error('interop-dashboard: ' + (e && e.stack || e));
  if (problems.length) console.error(problems.join('\n'));
  process.exit(1);
});
JS

run_agent() { # run_agent PORT [TOKEN]
    METRICS_HTTP_TOKEN=${2:-} METRICS_COLLECTION_INTERVAL=1s "$BIN" --listen "127.0.0.1:$1" --duration 5m \
        --report-every 1h --no-export > "$DIR/agent.out" 2> "$DIR/agent.err" &
    AGENT=$!
    PIDS+=("$AGENT")
    wait_tcp "$1" 30 || fail "the agent does not listen"
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT/
log "metrics-agent serving $URL"
run_agent "$PORT"
grep -q "dashboard: $URL" "$DIR/agent.out" || fail "the page's URL was not printed: $(cat "$DIR/agent.out")"
sleep "${WARMUP:-3}" # a few resource polls, so that every panel has data
log "Chromium against $URL"
PLAYWRIGHT_CORE=$PW/node_modules/playwright-core timeout 150 node "$DIR/check.js" "$URL" \
    "${SCREENSHOT:-$DIR/dashboard.png}" "$(mktemp -d "$DIR/profile.XXXX")" || fail "the browser check failed"
kill "$AGENT" && wait "$AGENT" 2>/dev/null || true

PORT=$(free_port)
URL=http://127.0.0.1:$PORT/
log "with METRICS_HTTP_TOKEN: $URL?token=..."
TOKEN="ci-$RANDOM$RANDOM"
run_agent "$PORT" "$TOKEN"
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL}api/v1/health")
[ "$code" = 401 ] || fail "the API answered $code without the token"
sleep 3
PLAYWRIGHT_CORE=$PW/node_modules/playwright-core timeout 150 node "$DIR/check.js" "$URL" "" \
    "$(mktemp -d "$DIR/profile.XXXX")" "$TOKEN" || fail "the browser check with a token failed"
log "interop-dashboard passed"
