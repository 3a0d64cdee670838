#!/usr/bin/env bash
# The dashboard page at GET / in a real browser: Debian's Chromium driven
# headless by npm playwright-core, against the main program while its
# workload runs. Checks: the page loads with no console error, no page
# error, no failed request and no response >= 400; every dashboard shows
# non-empty panels and its line charts draw; a value changes within 5 s;
# the view buttons work from the keyboard; the explorer finds a series by
# name and charts it; an unhealthy answer shows with its reasons; with
# METRICS_HTTP_TOKEN set the page works from `?token=`. Numbers read off the
# page are compared with the JSON answers it drew from: the explorer's
# series count, count, sum and rates (newest rate point a bin that is over),
# a timer's p95 box and newest p95 point (the newest step's, as the API gives it),
# top counters grouped by each series' unit (also with network counters
# answered as bytes), labels that fit and differ, a single point's time axis
# (minutes, not years), and every chart's axis labels (inside the chart,
# apart, never repeated) at 1400 and 480 px. Takes screenshots,
# light and dark ($CI_WORK/dashboard-run/dashboard.png, or SCREENSHOT=path;
# WARMUP=seconds of workload before, 3 by default, longer for a fuller
# picture). Everything on 127.0.0.1, every process stopped by its PID;
# about 40 s a run once installed (Chromium's install: about a minute).
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
const LAUNCH = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A number as the page shows it ("75.7 s", "63.6 k", "1.2 KiB", "86.4 /s"),
// in the unit the API gives it (milliseconds, bytes, count...).
function shown(text, unit) {
  const m = /^(-?[0-9.]+)\s*([kMG](?= |$))?\s*(.*)$/.exec(text.trim());
  if (!m) throw new Error('not a number: ' + text);
  let v = Number(m[1]) * ({ k: 1e3, M: 1e6, G: 1e9 }[m[2]] || 1);
  const suffix = m[3].replace(/\/s$/, '').trim();
  const scale = {
    milliseconds: { ms: 1, s: 1000, 'µs': 0.001 },
    seconds: { s: 1, ms: 0.001 },
    bytes: { B: 1, KiB: 1024, MiB: 1048576, GiB: 1073741824, TiB: 1099511627776 },
  }[unit] || { '': 1, '%': 1 };
  if (!(suffix in scale)) throw new Error(`${text} is not in ${unit}`);
  return v * scale[suffix];
}
// Equal up to what the page's rounding to three or four digits loses.
function near(a, b) { return Math.abs(a - b) <= Math.max(0.011, 0.006 * Math.abs(b)); }

// Axis labels as the page drew them (data-axes of a chart): every label
// inside the canvas, none over another, none repeated.
function axesProblems(name, a) {
  if (!a || !a.x || !a.y) return [name + ': no axis labels published'];
  const out = [];
  const x = a.x.slice().sort((p, q) => p.from - q.from);
  const y = a.y.slice().sort((p, q) => p.from - q.from);
  if (x.length < 2) out.push(name + ': fewer than 2 time labels: ' + x.map((l) => l.text));
  for (let i = 0; i < x.length; i++) {
    if (x[i].from < 0 || x[i].to > a.width) out.push(`${name}: time label ${x[i].text} is cut (${x[i].from.toFixed(0)}..${x[i].to.toFixed(0)} of ${a.width})`);
    if (i > 0 && x[i].from < x[i - 1].to + 4) out.push(`${name}: time labels ${x[i - 1].text} and ${x[i].text} overlap`);
  }
  for (let i = 0; i < y.length; i++) {
    if (y[i].left < 0) out.push(`${name}: value label ${y[i].text} is cut`);
    if (i > 0 && y[i].from < y[i - 1].to) out.push(`${name}: value labels ${y[i - 1].text} and ${y[i].text} overlap`);
  }
  if (new Set(y.map((l) => l.text)).size !== y.length) out.push(name + ': repeated value labels ' + y.map((l) => l.text));
  if (new Set(x.map((l) => l.text)).size !== x.length) out.push(name + ': repeated time labels ' + x.map((l) => l.text));
  return out;
}
async function checkAxes(page, scope) {
  const charts = await page.$$eval(scope + ' .chart', (cs) => cs
    // (a chart with no point yet has no labels to check)
    .filter((c) => c.querySelector('canvas') && !(c.dataset.last && JSON.parse(c.dataset.last).every((p) => !p)))
    .map((c) => ({ name: (c.closest('.panel').querySelector('h3') || {}).textContent, axes: c.dataset.axes && JSON.parse(c.dataset.axes) })));
  const bad = charts.flatMap((c) => axesProblems(c.name, c.axes));
  if (bad.length) throw new Error('axis labels: ' + bad.join('; '));
  return charts.length;
}

async function main() {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: LAUNCH,
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
    // Every JSON answer the page got, by path and query: what it drew from.
    const answers = new Map();
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/api/v1/') && r.status() === 200) answers.set(u.pathname + u.search, r.json().catch(() => null));
    });
    // The API asked directly (with the page's token).
    const apiGet = (path) => page.evaluate(async (p) => {
      const headers = { Accept: 'application/json' };
      const t = sessionStorage.getItem('metrics-token');
      if (t) headers.Authorization = 'Bearer ' + t;
      const r = await fetch(p, { headers, cache: 'no-store' });
      return r.json();
    }, path);

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
      // Axis labels readable: none cut, over another or repeated, also narrow.
      if (lines > 0) {
        await checkAxes(page, '#panels');
        await page.setViewportSize({ width: 480, height: 1000 });
        await page.waitForTimeout(700); // the page redraws 200 ms after a resize
        await page.waitForFunction(() => Array.from(document.querySelectorAll('#panels .chart canvas')).length > 0);
        await checkAxes(page, '#panels');
        await page.setViewportSize({ width: 1400, height: 1000 });
        await page.waitForTimeout(700);
        await page.waitForFunction(() => Array.from(document.querySelectorAll('#panels .chart canvas')).length > 0);
      }
    }
    step('axis labels: inside their charts, apart and distinct, at 1400 and 480 px');

    // Live: a value on the page changes within 5 s, without a reload.
    await page.click('nav button[data-view="overview"]');
    const sel = '#panels .panel[data-panel="Top counters (all time)"] .bars';
    await page.waitForSelector(sel);
    const before = await page.textContent(sel);
    const t0 = Date.now();
    await page.waitForFunction(([s, b]) => document.querySelector(s) && document.querySelector(s).textContent !== b,
      [sel, before], { timeout: 5000 });
    step(`a value changed after ${Date.now() - t0} ms`);

    // Top counters: grouped by the series API's unit, each group scaled to
    // its largest; labels tell the series apart and fit, the key in full in
    // the title.
    const topCounters = async (p) => p.$eval('#panels .panel[data-panel="Top counters (all time)"]', (panel) =>
      Array.from(panel.querySelectorAll('.bar-group')).map((g) => ({
        unit: g.dataset.unit,
        rows: Array.from(g.querySelectorAll('li')).map((li) => {
          const l = li.querySelector('.label');
          return { key: l.title, text: l.textContent, cut: l.scrollWidth > l.clientWidth + 1,
            value: li.querySelector('.value').textContent, fill: parseFloat(li.querySelector('.fill').style.width) };
        }),
      })));
    const checkTop = (groups, units, what) => {
      if (groups.length === 0 || groups.every((g) => g.rows.length === 0)) throw new Error(what + ': top counters are not grouped by unit');
      for (const g of groups) {
        const texts = g.rows.map((r) => r.text);
        if (new Set(texts).size !== texts.length) throw new Error(`${what}: top counters (${g.unit}) repeat a label: ${texts}`);
        for (const r of g.rows) {
          const name = r.key.split('{')[0];
          if (!units.has(name)) throw new Error(`${what}: ${r.key} is not a series of the API`);
          if (units.get(name) !== g.unit) throw new Error(`${what}: ${r.key} (${units.get(name)}) shown among ${g.unit}`);
          if (r.cut) throw new Error(`${what}: the label of ${r.key} is cut: ${r.text}`);
          shown(r.value, g.unit);
        }
        const top = Math.max(...g.rows.map((r) => r.fill));
        if (Math.abs(top - 100) > 0.2) throw new Error(`${what}: the largest ${g.unit} bar is ${top}% long`);
      }
      return groups.map((g) => g.unit + ': ' + g.rows.map((r) => r.text + ' ' + r.value).join(', ')).join(' | ');
    };
    const unitsOf = (list) => new Map(list.map((s) => [s.name, s.unit]));
    step('top counters: ' + checkTop(await topCounters(page), unitsOf((await apiGet('/api/v1/series')).series), 'top counters'));
    // The same page where the API calls network traffic bytes (as it is
    // meant to): the bytes get a group and a scale of their own.
    {
      const p2 = await context.newPage();
      p2.on('pageerror', (e) => problems.push('page error: ' + e.message));
      let seen = null;
      await p2.route('**/api/v1/series', async (route) => {
        const r = await route.fetch();
        const body = await r.json();
        for (const s of body.series) if (s.name === 'system.network.io') s.unit = 'bytes';
        seen = body.series;
        await route.fulfill({ response: r, json: body });
      });
      await p2.goto(url + (token ? '?token=' + encodeURIComponent(token) : ''));
      await p2.waitForSelector('#panels .panel[data-panel="Top counters (all time)"] .bars li');
      const groups = await topCounters(p2);
      const text = checkTop(groups, unitsOf(seen), 'top counters, bytes');
      const bytesGroup = groups.find((g) => g.unit === 'bytes');
      if (!bytesGroup || !bytesGroup.rows.every((r) => r.key.startsWith('system.network.io{'))) throw new Error('no bytes group: ' + text);
      step('top counters, network in bytes: ' + text);
      await p2.close();
    }

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

    // The explorer against the answer it drew (query_range, same query):
    // how many series (the series API's), count and sum in the metric's
    // unit, and rates over the bins that are over only.
    const checkExplorer = async (name) => {
      const h = await page.waitForFunction((n) => {
        const st = document.getElementById('ex-status');
        const q = st.dataset.query;
        if (!q || !q.startsWith('name=' + encodeURIComponent(n) + '&') || document.getElementById('ex-rate').dataset.query !== q
          || document.getElementById('ex-stats').dataset.query !== q
          || document.getElementById('ex-pct').dataset.query !== q) return false;
        // (a rate needs a bin that is over: right after start there is none)
        if (!JSON.parse(document.getElementById('ex-rate').dataset.last || '[null]')[0]) return false;
        return { q, at: Number(st.dataset.at), status: st.textContent, last: JSON.parse(document.getElementById('ex-rate').dataset.last || 'null'),
          stats: Array.from(document.querySelectorAll('#ex-stats .stat')).map((s) => [s.dataset.stat, s.querySelector('.v').textContent, s.querySelector('.k').textContent]),
          pctStep: document.getElementById('ex-pct').dataset.step, pctLast: JSON.parse(document.getElementById('ex-pct').dataset.last || 'null') };
      }, name);
      const seen = await h.jsonValue();
      const answer = await answers.get('/api/v1/query_range?' + seen.q);
      if (!answer) throw new Error(name + ': the page drew an answer not seen: ' + seen.q);
      const all = (await apiGet('/api/v1/series?prefix=' + encodeURIComponent(name))).series.filter((s) => s.name === name);
      const unit = all[0].unit;
      const counter = all[0].type === 'counter';
      const m = /: ([0-9]+) series/.exec(seen.status);
      if (!m || Number(m[1]) !== all.length) throw new Error(`${name}: the API has ${all.length} series, the page says: ${seen.status}`);
      const stat = (k) => {
        const s = seen.stats.find((x) => x[0] === k);
        if (!s) throw new Error(`${name}: no ${k} box: ${JSON.stringify(seen.stats)}`);
        return s;
      };
      const t = (x) => Date.parse(x) / 1000;
      const bins = answer.series.flatMap((s) => s.bins);
      const count = bins.reduce((a, b) => a + b.count, 0);
      const sum = bins.reduce((a, b) => a + b.sum, 0);
      if (!near(shown(stat('count')[1], 'count'), count)) throw new Error(`${name}: count ${stat('count')[1]}, the API ${count}`);
      const sumBox = stat(counter ? 'increase' : 'sum');
      if (!near(shown(sumBox[1], counter ? 'count' : unit), sum)) throw new Error(`${name}: ${sumBox[2]} ${sumBox[1]}, the API ${sum} (${unit})`);
      const done = bins.filter((b) => t(b.covers_end) <= seen.at);
      const per = (b) => (counter ? b.sum : b.count);
      const last = seen.last && seen.last[0];
      if (!last) throw new Error(name + ': no rate drawn');
      const bin = answer.series[0].bins.find((b) => t(b.covers_start) === last[0]);
      if (!bin) throw new Error(`${name}: the newest rate point (${last}) is not at a bin of the answer`);
      if (t(bin.covers_end) > seen.at) throw new Error(`${name}: the newest rate point is a bin still filling (ends ${bin.covers_end}, drawn at ${new Date(seen.at * 1000).toISOString()})`);
      const expected = per(bin) / (t(bin.covers_end) - t(bin.covers_start));
      if (Math.abs(last[1] - expected) > 1e-9 * Math.max(1, expected)) throw new Error(`${name}: rate ${last[1]}/s, the API's bin ${expected}/s`);
      const newest = Math.max(...answer.series[0].bins.filter((b) => t(b.covers_end) <= seen.at).map((b) => t(b.covers_start)));
      if (newest !== last[0]) throw new Error(`${name}: a newer complete bin (${newest}) than the newest point (${last[0]})`);
      const span = Math.max(...done.map((b) => t(b.covers_end))) - Math.min(...done.map((b) => t(b.covers_start)));
      const mean = done.reduce((a, b) => a + per(b), 0) / span;
      const rateBox = stat('rate');
      if (!near(shown(rateBox[1], 'count'), mean) || !rateBox[2].includes('over')) {
        throw new Error(`${name}: ${rateBox[2]} ${rateBox[1]}, the API's complete bins ${mean}/s over ${span} s`);
      }
      step(`explorer ${name} against the API: ${all.length} series, count ${count}, ${counter ? 'increase' : 'sum'} ${sum.toFixed(1)} ${unit} (${sumBox[1]}), newest rate ${expected.toFixed(2)}/s of a complete bin, ${rateBox[2]} ${rateBox[1]}`);
      if (!counter) {
        // Percentiles are the API's, per step: the p95 box and the newest
        // p95 point are those of the newest step that has them.
        const withP = answer.series[0].bins.filter((b) => b.p95 != null);
        if (!withP.length) throw new Error(`${name}: the API gave no step percentiles: ${JSON.stringify(answer.series[0].bins.slice(-2))}`);
        const newestP = withP[withP.length - 1];
        if (seen.pctStep !== newestP.start) throw new Error(`${name}: the page's percentiles are of the step ${seen.pctStep}, the API's newest is ${newestP.start}`);
        const p95Box = stat('p95');
        if (!near(shown(p95Box[1], unit), newestP.p95)) throw new Error(`${name}: ${p95Box[2]} ${p95Box[1]}, the API's step ${newestP.p95} ${unit}`);
        const drawn = seen.pctLast && seen.pctLast[1];
        if (!drawn || drawn[0] !== t(newestP.covers_start) || Math.abs(drawn[1] - newestP.p95) > 1e-9 * Math.max(1, newestP.p95)) {
          throw new Error(`${name}: newest p95 point ${JSON.stringify(drawn)}, the API's step from ${newestP.covers_start}: ${newestP.p95}`);
        }
        step(`explorer ${name} percentiles: ${p95Box[2]} ${p95Box[1]} and the newest p95 point are the API's step from ${newestP.start} (${newestP.p95} ${unit}; p50 ${newestP.p50}, p99 ${newestP.p99})`);
      }
    };
    await checkExplorer('db.query');
    await checkAxes(page, '#explorer');
    await page.fill('#ex-find', 'jobs.processed');
    await page.selectOption('#ex-metric', 'jobs.processed');
    await checkExplorer('jobs.processed');
    await page.fill('#ex-find', 'db.que');
    await page.selectOption('#ex-metric', 'db.query');
    await page.waitForSelector('#ex-metric option[value="db.query"]', { state: 'attached' });

    // One point: the time axis spans minutes around it, not years. The
    // real answers, cut to their newest bin (a series that just appeared).
    {
      const p3 = await context.newPage();
      p3.on('pageerror', (e) => problems.push('page error: ' + e.message));
      await p3.route('**/api/v1/query_range?*', async (route) => {
        const r = await route.fetch();
        const body = await r.json();
        for (const s of body.series) s.bins = s.bins.slice(-1);
        await route.fulfill({ response: r, json: body });
      });
      await p3.route('**/api/v1/dashboards/performance', async (route) => {
        const r = await route.fetch();
        const body = await r.json();
        for (const p of body.panels) for (const s of p.series) s.points = s.points.slice(-1);
        await route.fulfill({ response: r, json: body });
      });
      await p3.goto(url + (token ? '?token=' + encodeURIComponent(token) : ''));
      await p3.click('nav button[data-view="performance"]');
      await p3.waitForSelector('#panels .panel[data-panel="Throughput"] .chart canvas');
      const tp = await p3.$eval('#panels .panel[data-panel="Throughput"] .chart', (c) => [Number(c.dataset.xMin), Number(c.dataset.xMax)]);
      if (!(tp[1] - tp[0] > 0 && tp[1] - tp[0] <= 120)) {
        throw new Error('one point: the Throughput time axis runs ' + tp.map((v) => new Date(v * 1000).toISOString()).join(' to '));
      }
      await p3.click('nav button[data-view="explorer"]');
      await p3.fill('#ex-find', 'db.que');
      await p3.waitForSelector('#ex-metric option[value="db.query"]', { state: 'attached' });
      await p3.selectOption('#ex-metric', 'db.query');
      await p3.waitForSelector('#ex-value canvas');
      const x = await p3.$eval('#ex-value', (c) => [Number(c.dataset.xMin), Number(c.dataset.xMax), JSON.parse(c.dataset.last)[0][0]]);
      if (!(x[1] - x[0] > 0 && x[1] - x[0] <= 120 && x[0] < x[2] && x[2] < x[1])) {
        throw new Error('one point: the time axis runs ' + x.slice(0, 2).map((v) => new Date(v * 1000).toISOString()).join(' to '));
      }
      await checkAxes(p3, '#explorer');
      step(`one point: the time axis spans ${x[1] - x[0]} s around it`);
      await p3.close();
    }

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
