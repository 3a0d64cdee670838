// The metrics dashboard page: polls the JSON API every 2 s and draws it.
// Plain script, no build step; charts with uPlot (vendored, MIT).
'use strict';
(function () {
  const POLL_MS = 2000;
  // Hard cap of points kept per series, whatever the range (24 h of 10 s bins).
  const MAX_POINTS = 8640;
  const STEPS = { 300: 10, 3600: 60, 86400: 900 };
  const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#eeca3b', '#9d755d'];

  const $ = (id) => document.getElementById(id);
  const state = {
    view: 'overview',
    range: 300,
    paused: false,
    token: null,
    busy: false,
    // chart key -> { plot, labels }
    charts: new Map(),
    // series key -> [[t_seconds, value], ...] oldest first
    buffers: new Map(),
    series: null, // explorer: name -> { type, unit, tags: Map(key -> Set(values)) }
    seriesAt: 0,
  };

  // ---- the token: once from ?token=, then kept for this tab only ----
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    sessionStorage.setItem('metrics-token', params.get('token'));
    params.delete('token');
    const q = params.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
  }
  state.token = sessionStorage.getItem('metrics-token');

  class AuthNeeded extends Error {}

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const res = await fetch(path, { headers, cache: 'no-store' });
    if (res.status === 401) {
      $('auth').hidden = false;
      throw new AuthNeeded('a token is needed');
    }
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    return { status: res.status, ok: res.ok, body };
  }

  $('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    state.token = $('auth-token').value.trim();
    sessionStorage.setItem('metrics-token', state.token);
    $('auth').hidden = true;
    tick();
  });

  // ---- numbers with units ----
  function num(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + ' G';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + ' M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + ' k';
    if (a >= 100 || v === Math.round(v)) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function bytes(v) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
  }
  function fmt(v, unit, perSecond) {
    if (v == null || !isFinite(v)) return '–';
    let s;
    switch (unit) {
      case 'milliseconds': s = Math.abs(v) >= 1000 ? num(v / 1000) + ' s' : num(v) + ' ms'; break;
      case 'seconds': s = Math.abs(v) < 1 ? num(v * 1000) + ' ms' : num(v) + ' s'; break;
      case 'microseconds': s = Math.abs(v) >= 1000 ? num(v / 1000) + ' ms' : num(v) + ' µs'; break;
      case 'bytes': s = bytes(v); break;
      case 'kilobytes': s = bytes(v * 1024); break;
      case 'megabytes': s = bytes(v * 1048576); break;
      case 'percent': s = num(v) + ' %'; break;
      case 'ops/sec': s = num(v) + ' /s'; break;
      default: s = num(v);
    }
    return perSecond && unit !== 'ops/sec' ? s + '/s' : s;
  }

  // ---- DOM helpers ----
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // ---- bounded point buffers ----
  // Points of a new answer replace what the buffer holds from their first
  // timestamp on (the newest bin keeps filling); then older than the range
  // and beyond MAX_POINTS is dropped.
  function mergeInto(key, points) {
    let buf = state.buffers.get(key) || [];
    if (points.length) {
      const first = points[0][0];
      buf = buf.filter((p) => p[0] < first).concat(points);
    }
    const oldest = Date.now() / 1000 - state.range;
    let i = 0;
    while (i < buf.length && buf[i][0] < oldest) i++;
    if (i > 0) buf = buf.slice(i);
    if (buf.length > MAX_POINTS) buf = buf.slice(buf.length - MAX_POINTS);
    state.buffers.set(key, buf);
    return buf;
  }
  // Forget buffers not in `keep` under `prefix` (series that went away).
  function forgetOthers(prefix, keep) {
    for (const k of state.buffers.keys()) {
      if (k.startsWith(prefix) && !keep.has(k)) state.buffers.delete(k);
    }
  }

  // A rate's newest bin is still filling: drawn, it would always dip.
  // Keep the bins that are over (the width is the spacing of the points).
  function completeBins(pts) {
    if (pts.length < 2) return pts;
    const width = pts[pts.length - 1][0] - pts[pts.length - 2][0];
    const now = Date.now() / 1000;
    return pts.filter((p) => p[0] + width <= now);
  }

  // ---- line charts (uPlot) ----
  const AXIS_FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  let measureCtx = null;
  function textWidth(t) {
    if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d');
    measureCtx.font = AXIS_FONT;
    return measureCtx.measureText(t).width;
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  // One line per time label, as precise as the ticks are apart: uPlot's
  // default adds a second row (date, hour) that collides when it is crowded.
  function timeLabel(t, incr) {
    const d = new Date(t * 1000);
    const hm = pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    if (incr >= 86400) return (d.getMonth() + 1) + '/' + d.getDate();
    return incr < 60 ? hm + ':' + pad2(d.getSeconds()) : hm;
  }
  // What the axes drew (labels and their boxes, in CSS pixels) and the
  // scales, on the chart's element: for readers and for the browser check.
  function publishAxes(u, container) {
    const ratio = devicePixelRatio || 1;
    const left = u.bbox.left / ratio; const top = u.bbox.top / ratio;
    const out = { width: u.width, height: u.height };
    u.axes.forEach((a, i) => {
      const key = i === 0 ? 'x' : 'y';
      const splits = u._labelSplits && u._labelSplits[i];
      const labels = u._labelValues && u._labelValues[i];
      if (!splits || !labels) return;
      out[key] = [];
      splits.forEach((v, j) => {
        const text = labels[j];
        if (text == null || text === '') return;
        const pos = u.valToPos(v, key);
        if (!isFinite(pos)) return;
        const w = textWidth(text);
        if (i === 0) {
          if (pos < -0.5 || pos > u.bbox.width / ratio + 0.5) return;
          out[key].push({ text, from: left + pos - w / 2, to: left + pos + w / 2 });
        } else {
          if (pos < -0.5 || pos > u.bbox.height / ratio + 0.5) return;
          out[key].push({ text, from: top + pos - 7, to: top + pos + 7, left: left - 15 - w });
        }
      });
    });
    container.dataset.axes = JSON.stringify(out);
    container.dataset.xMin = String(u.scales.x.min);
    container.dataset.xMax = String(u.scales.x.max);
  }

  // series: [{ label, points: [[t, v]...] }]; pad: seconds either side of
  // a single point (else uPlot spreads one instant over years).
  function lineChart(container, key, unit, series, perSecond, pad) {
    const xs = Array.from(new Set(series.flatMap((s) => s.points.map((p) => p[0])))).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const data = [xs];
    for (const s of series) {
      const ys = new Array(xs.length).fill(null);
      for (const [t, v] of s.points) ys[index.get(t)] = v;
      data.push(ys);
    }
    const labels = series.map((s) => s.label).join('\u0000');
    let chart = state.charts.get(key);
    if (chart && (chart.labels !== labels || !container.contains(chart.plot.root))) {
      chart.plot.destroy();
      state.charts.delete(key);
      chart = null;
    }
    const width = Math.max(280, container.clientWidth || 400);
    if (!chart) {
      container.replaceChildren();
      const axis = { stroke: cssVar('--muted'), font: AXIS_FONT, grid: { stroke: cssVar('--grid') }, ticks: { stroke: cssVar('--grid') } };
      const half = pad || 30;
      const keep = (u, i, labels, splits) => {
        u._labelSplits = u._labelSplits || [];
        u._labelValues = u._labelValues || [];
        u._labelSplits[i] = splits;
        u._labelValues[i] = labels;
        return labels;
      };
      const opts = {
        width, height: 190,
        // Room on the right for half of the last time label.
        padding: [10, Math.ceil(textWidth('00:00:00') / 2) + 4, 0, 0],
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        // One instant (uPlot would give it a span of 86,400 × 1000 s): a
        // range around it instead.
        scales: { x: { time: true, range: (u, min, max) => {
          const x = u.data[0];
          return x.length > 0 && x[0] === x[x.length - 1] ? [x[0] - half, x[0] + half] : [min, max];
        } } },
        axes: [
          Object.assign({}, axis, {
            // Room for the widest label (hh:mm:ss) and a gap, whatever the width.
            space: Math.ceil(textWidth('00:00:00')) + 24,
            values: (u, splits, i, space, incr) => keep(u, 0, splits.map((t) => timeLabel(t, incr)), splits),
          }),
          Object.assign({}, axis, {
            space: 28,
            size: (u, values) => Math.ceil(Math.max(40, ...(values || []).map((v) => textWidth(v || '')))) + 16,
            // Ticks closer than the format's precision would repeat a label:
            // each label once.
            values: (u, splits) => keep(u, 1, splits.map((v) => fmt(v, unit, perSecond))
              .map((t, j, all) => (j > 0 && all[j - 1] === t ? '' : t)), splits),
          }),
        ],
        hooks: { draw: [(u) => publishAxes(u, container)] },
        series: [{}].concat(series.map((s, i) => ({
          label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
          value: (u, v) => fmt(v, unit, perSecond),
        }))),
      };
      const plot = new uPlot(opts, data, container);
      plot.root.setAttribute('role', 'img');
      chart = { plot, labels };
      state.charts.set(key, chart);
    } else {
      if (chart.plot.width !== width) chart.plot.setSize({ width, height: 190 });
      chart.plot.setData(data);
    }
    // The newest point of each series, as drawn.
    container.dataset.last = JSON.stringify(series.map((s) => s.points[s.points.length - 1] || null));
    chart.plot.root.setAttribute('aria-label', series.map((s) => {
      const last = s.points[s.points.length - 1];
      return s.label + ' ' + fmt(last && last[1], unit, perSecond);
    }).join(', '));
  }

  function latestList(series, unit, perSecond) {
    return el('ul', { class: 'latest' }, ...series.map((s, i) => {
      const last = s.points[s.points.length - 1];
      const sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = PALETTE[i % PALETTE.length];
      return el('li', {}, sw, s.label + ': ', el('span', { class: 'num' }, fmt(last && last[1], unit, perSecond)));
    }));
  }

  function lastValue(s) {
    const p = s.points[s.points.length - 1];
    return p ? p.value : null;
  }

  // The unit of a panel's series as the series API gives it (a panel of
  // counts may hold counters of bytes beside counters of jobs), else the
  // panel's. Labels are series keys: name{k=v,...}.
  function seriesName(label) {
    const i = label.indexOf('{');
    return i < 0 ? label : label.slice(0, i);
  }
  function unitOf(s, panelUnit) {
    if (panelUnit !== 'count' || !state.series) return panelUnit;
    const m = state.series.get(seriesName(s.label));
    return m && m.unit && (m.type === 'counter' || m.type === 'gauge') ? m.unit : panelUnit;
  }
  // Cut the middle out of a long text, so both ends stay readable.
  function elideMiddle(t, max) {
    if (t.length <= max) return t;
    const head = Math.ceil((max - 1) * 0.55);
    return t.slice(0, head) + '\u2026' + t.slice(t.length - (max - 1 - head));
  }
  // Short labels that still tell the series apart: the name, then the tags
  // whose values differ among the series of that name (all its tags if it
  // is alone); the whole key is the element's title.
  function shortLabels(series) {
    const byName = new Map();
    for (const s of series) {
      const n = seriesName(s.label);
      if (!byName.has(n)) byName.set(n, []);
      byName.get(n).push(s);
    }
    return series.map((s) => {
      const n = seriesName(s.label);
      const tags = s.tags || {};
      const same = byName.get(n);
      let keys = Object.keys(tags);
      if (same.length > 1) keys = keys.filter((k) => same.some((o) => (o.tags || {})[k] !== tags[k]));
      const t = keys.map((k) => k + '=' + tags[k]).join(' ');
      return { name: elideMiddle(n, t ? 28 : 52), tags: elideMiddle(t, 30) };
    });
  }

  function bars(series, unit, perSecond) {
    // One group per unit, each scaled to its own largest value.
    const groups = new Map();
    for (const s of series) {
      const u = unitOf(s, unit);
      if (!groups.has(u)) groups.set(u, []);
      groups.get(u).push(s);
    }
    return el('div', { class: 'bar-groups' }, ...Array.from(groups, ([u, ss]) => {
      const values = ss.map(lastValue);
      const max = u === 'percent' ? 100 : Math.max(1e-12, ...values.filter((v) => v != null && isFinite(v)));
      const short = shortLabels(ss);
      const list = el('ul', { class: 'bars' }, ...ss.map((s, i) => {
        const v = values[i];
        const fill = el('span', { class: 'fill' });
        fill.style.width = Math.max(0, Math.min(100, (100 * (v || 0)) / max)).toFixed(1) + '%';
        const label = el('span', { class: 'label', title: s.label, 'data-series': s.label },
          el('span', { class: 'name' }, short[i].name));
        if (short[i].tags) label.append(' ', el('span', { class: 'tags' }, short[i].tags));
        return el('li', {}, label,
          el('span', { class: 'value' }, fmt(v, u, perSecond)),
          el('span', { class: 'track', 'aria-hidden': 'true' }, fill));
      }));
      const group = el('section', { class: 'bar-group', 'data-unit': u });
      if (groups.size > 1) group.append(el('h4', {}, u));
      group.append(list);
      return group;
    }));
  }

  function stats(series, unit, perSecond) {
    return el('div', { class: 'stats' }, ...series.map((s) =>
      el('div', { class: 'stat' }, el('div', { class: 'v' }, fmt(lastValue(s), unit, perSecond)), el('div', { class: 'k' }, s.label))));
  }

  function table(series, unit, perSecond) {
    const pivot = series.length > 0 && series.every((s) => s.tags && s.tags.statistic);
    if (pivot) {
      const cols = Array.from(new Set(series.map((s) => s.tags.statistic)));
      const rows = new Map();
      for (const s of series) {
        const name = s.label.endsWith(' ' + s.tags.statistic) ? s.label.slice(0, -s.tags.statistic.length - 1) : s.label;
        if (!rows.has(name)) rows.set(name, {});
        rows.get(name)[s.tags.statistic] = lastValue(s);
      }
      return el('table', { class: 'values' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'series'), ...cols.map((c) => el('th', { scope: 'col' }, c)))),
        el('tbody', {}, ...Array.from(rows, ([name, r]) =>
          el('tr', {}, el('th', { scope: 'row' }, name), ...cols.map((c) => el('td', { class: 'num' }, fmt(r[c], unit, perSecond)))))));
    }
    return el('table', { class: 'values' },
      el('tbody', {}, ...series.map((s) => el('tr', {}, el('th', { scope: 'row' }, s.label), el('td', { class: 'num' }, fmt(lastValue(s), unitOf(s, unit), perSecond))))));
  }

  // ---- the dashboards ----
  function panelCard(key, title) {
    const id = 'panel-' + key.replace(/[^a-z0-9]+/gi, '-');
    let card = document.getElementById(id);
    if (!card) {
      card = el('article', { class: 'panel', id, 'data-panel': title },
        el('h3', {}, title), el('div', { class: 'chart' }), el('div', { class: 'extra' }));
      $('panels').append(card);
    }
    return card;
  }

  function renderDashboard(d) {
    $('dashboard-title').textContent = d.title;
    const seen = new Set();
    const keep = new Set();
    for (const p of d.panels) {
      const key = d.kind + '|' + p.title;
      seen.add('panel-' + key.replace(/[^a-z0-9]+/gi, '-'));
      const card = panelCard(key, p.title);
      const chart = card.querySelector('.chart');
      const extra = card.querySelector('.extra');
      const perSecond = /per second/i.test(p.title);
      const rateLike = perSecond || p.unit === 'ops/sec';
      const nonEmpty = p.series.filter((s) => s.points.length > 0);
      card.dataset.series = String(nonEmpty.length);
      if (nonEmpty.length === 0) {
        const c = state.charts.get(key);
        if (c) { c.plot.destroy(); state.charts.delete(key); }
        chart.replaceChildren(el('p', { class: 'empty' }, 'no data yet'));
        extra.replaceChildren();
        continue;
      }
      if (p.chart === 'line' || p.chart === 'area') {
        const series = nonEmpty.map((s) => {
          const bk = key + '|' + s.label;
          keep.add(bk);
          let pts = s.points.filter((q) => q.value != null).map((q) => [Date.parse(q.timestamp) / 1000, q.value]);
          if (rateLike) pts = completeBins(pts);
          return { label: s.label, points: mergeInto(bk, pts) };
        });
        lineChart(chart, key, p.unit, series, perSecond);
        extra.replaceChildren(latestList(series, p.unit, perSecond));
      } else {
        const c = state.charts.get(key);
        if (c) { c.plot.destroy(); state.charts.delete(key); }
        let body;
        if (p.chart === 'bar' || p.chart === 'pie') body = bars(nonEmpty, p.unit, perSecond);
        else if (p.chart === 'table') body = table(nonEmpty, p.unit, perSecond);
        else body = stats(nonEmpty, p.unit, perSecond);
        chart.replaceChildren(body);
        extra.replaceChildren();
      }
    }
    forgetOthers(d.kind + '|', keep);
    for (const card of Array.from($('panels').children)) {
      if (!seen.has(card.id)) card.remove();
    }
  }

  // ---- health ----
  function renderHealth(h) {
    const box = $('health');
    box.dataset.status = h.status;
    const bad = [];
    for (const b of h.backends || []) if (b.status !== 'healthy') bad.push('backend ' + b.name + (b.message ? ': ' + b.message : ''));
    for (const c of h.checks || []) if (c.status !== 'healthy') bad.push('check ' + c.name + (c.message ? ': ' + c.message : ''));
    const dropped = Object.values(h.dropped || {}).reduce((a, b) => a + b, 0);
    let text = h.status + ' · error rate ' + fmt((h.error_rate || 0) * 100, 'percent');
    if (dropped) text += ' · ' + num(dropped) + ' dropped';
    if (bad.length) text += ' — ' + bad.join('; ');
    $('health-text').textContent = text;
    const rows = [];
    for (const b of h.backends || []) {
      const details = Object.entries(b.details || {}).map(([k, v]) => k + '=' + v).join(' ');
      rows.push(el('tr', {}, el('td', {}, 'backend'), el('td', {}, b.name), el('td', {}, b.status), el('td', {}, (b.message || '') + ' ' + details)));
    }
    for (const c of h.checks || []) {
      rows.push(el('tr', {}, el('td', {}, 'check'), el('td', {}, c.name), el('td', {}, c.status), el('td', {}, c.message || '')));
    }
    $('health-body').replaceChildren(el('table', {}, el('tbody', {}, ...rows)));
  }

  // ---- the explorer ----
  async function loadSeries() {
    const r = await api('/api/v1/series');
    if (!r.ok || !r.body) return;
    const map = new Map();
    for (const s of r.body.series) {
      if (!map.has(s.name)) map.set(s.name, { type: s.type, unit: s.unit, tags: new Map(), each: [] });
      const m = map.get(s.name);
      m.each.push(s.tags || {});
      for (const [k, v] of Object.entries(s.tags || {})) {
        if (!m.tags.has(k)) m.tags.set(k, new Set());
        m.tags.get(k).add(v);
      }
    }
    state.series = map;
    state.seriesAt = Date.now();
    fillMetricList();
  }

  function fillMetricList() {
    if (!state.series) return;
    const sel = $('ex-metric');
    const find = $('ex-find').value.trim().toLowerCase();
    const current = sel.value;
    const names = Array.from(state.series.keys()).sort().filter((n) => n.toLowerCase().includes(find));
    const wanted = names.join('\u0000');
    if (sel.dataset.names !== wanted) {
      sel.replaceChildren(...names.map((n) => el('option', { value: n }, n + ' (' + state.series.get(n).type + ')')));
      sel.dataset.names = wanted;
      if (names.includes(current)) sel.value = current;
    }
  }

  function fillTagControls() {
    const name = $('ex-metric').value;
    const m = state.series && state.series.get(name);
    const box = $('ex-tags');
    const group = $('ex-group');
    box.replaceChildren();
    group.replaceChildren(el('option', { value: '' }, 'nothing'));
    if (!m) return;
    for (const [k, values] of m.tags) {
      const id = 'ex-tag-' + k.replace(/[^a-z0-9]+/gi, '-');
      const sel = el('select', { id, 'data-tag': k }, el('option', { value: '' }, 'any'),
        ...Array.from(values).sort().map((v) => el('option', { value: v }, v)));
      sel.addEventListener('change', () => { resetExplorer(); tick(); });
      box.append(el('label', { for: id }, 'Tag ' + k), sel);
      group.append(el('option', { value: k }, k));
    }
  }

  function resetExplorer() {
    for (const k of Array.from(state.buffers.keys())) if (k.startsWith('ex|')) state.buffers.delete(k);
  }

  // "5 m", "1 h 30 m", "45 s": a duration for a label.
  function duration(secs) {
    secs = Math.round(secs);
    if (secs >= 3600) return Math.floor(secs / 3600) + ' h' + (secs % 3600 >= 60 ? ' ' + Math.floor((secs % 3600) / 60) + ' m' : '');
    if (secs >= 60) return Math.floor(secs / 60) + ' m' + (secs % 60 ? ' ' + (secs % 60) + ' s' : '');
    return secs + ' s';
  }

  async function renderExplorer() {
    const name = $('ex-metric').value;
    const m = state.series && state.series.get(name);
    if (!m) { $('ex-status').textContent = 'Pick a metric.'; return; }
    const tags = Array.from($('ex-tags').querySelectorAll('select')).filter((s) => s.value).map((s) => [s.dataset.tag, s.value]);
    const group = $('ex-group').value;
    const step = STEPS[state.range] || 10;
    const now = Date.now() / 1000;
    const q = new URLSearchParams({ name, start: String(Math.floor(now - state.range)), end: String(Math.ceil(now + step)), step: step + 's' });
    for (const [k, v] of tags) q.append('tag', k + ':' + v);
    if (group) q.set('group_by', group);
    const r = await api('/api/v1/query_range?' + q);
    if (!r.ok) {
      $('ex-status').textContent = (r.body && r.body.message) || ('query failed (' + r.status + ')');
      return;
    }
    const series = r.body.series;
    const isCounter = m.type === 'counter';
    // A bin is over once what it covers has ended; the newest one is still
    // filling, and a rate over it would always dip. Times are what the bins
    // cover (the server's bins), so a point stays put from poll to poll.
    const from = (b) => Date.parse(b.covers_start || b.start) / 1000;
    const to = (b) => Date.parse(b.covers_end || b.end) / 1000;
    const done = (b) => to(b) <= now && to(b) > from(b);
    const perBin = (b) => (isCounter ? b.sum : b.count);
    const rate = series.map((s) => ({
      label: s.group == null ? name : group + '=' + s.group,
      points: s.bins.filter(done).map((b) => [from(b), perBin(b) / (to(b) - from(b))]),
    }));
    let count = 0; let sum = 0;
    let doneTotal = 0; let doneFrom = Infinity; let doneTo = -Infinity;
    for (const s of series) for (const b of s.bins) {
      count += b.count; sum += b.sum;
      if (done(b)) {
        doneTotal += perBin(b);
        doneFrom = Math.min(doneFrom, from(b));
        doneTo = Math.max(doneTo, to(b));
      }
    }
    $('ex-rate-title').textContent = isCounter ? 'Increase per second' : 'Samples per second';
    const rateSeries = rate.length ? rate : [{ label: name, points: [] }];
    lineChart($('ex-rate'), 'ex-rate', 'ops/sec', rateSeries, false, step * 3);
    $('ex-rate-legend').replaceChildren(latestList(rateSeries, 'ops/sec', false));
    // Which answer the charts, boxes and status line show (they update in turn).
    const asked = q.toString();
    $('ex-rate').dataset.query = asked;
    const value = [];
    for (const s of series) {
      const label = s.group == null ? '' : group + '=' + s.group + ' ';
      const at = (f) => s.bins.map((b) => [from(b), f(b)]);
      if (isCounter) {
        // A counter's samples are its increments: what matters is their sum.
        value.push({ label: label + 'increase', points: at((b) => b.sum) });
      } else {
        value.push({ label: label + 'mean', points: at((b) => b.avg) });
        value.push({ label: label + 'max', points: at((b) => b.max) });
      }
    }
    $('ex-value-title').textContent = (isCounter ? 'Increase per bin' : 'Mean and max per bin') +
      ' (' + (m.unit || 'count') + ')';
    const valueSeries = value.length ? value : [{ label: 'mean', points: [] }];
    lineChart($('ex-value'), 'ex-value', m.unit, valueSeries, false, step * 3);
    $('ex-value-legend').replaceChildren(latestList(valueSeries, m.unit, false));

    // The rate over the range picked: the bins that are over, from the
    // first to the newest (less than the range while the history is young).
    const span = doneTo - doneFrom;
    const meanRate = span > 0 ? doneTotal / span : null;
    const boxes = [
      ['count', num(count), count],
      // A counter's samples are increments (their sum is the increase); a
      // timer's or a histogram's are measurements in the metric's unit.
      isCounter ? ['increase', fmt(sum, 'count'), sum] : ['sum', fmt(sum, m.unit), sum],
      ['rate (mean' + (span > 0 ? ' over ' + duration(span) : '') + ')', fmt(meanRate, 'ops/sec'), meanRate],
    ];
    // Percentiles: each step's, as the API gives them (from the merged
    // sketches of the step's bins, per group and under the tag filter);
    // counters and gauges have none.
    const pctKeys = ['p50', 'p95', 'p99'];
    const pct = [];
    for (const s of series) {
      const label = s.group == null ? '' : group + '=' + s.group + ' ';
      for (const k of pctKeys) {
        pct.push({ label: label + k, points: s.bins.filter((b) => b[k] != null).map((b) => [from(b), b[k]]) });
      }
    }
    // The newest step with percentiles, when the answer is one series.
    const pctBins = series.length === 1 ? series[0].bins.filter((b) => b.p95 != null) : [];
    const newestPct = pctBins[pctBins.length - 1];
    if (newestPct) {
      for (const k of pctKeys) boxes.push([k + ' (newest step)', fmt(newestPct[k], m.unit), newestPct[k]]);
    }
    if (pct.some((p) => p.points.length)) {
      lineChart($('ex-pct'), 'ex-pct', m.unit, pct, false, step * 3);
      $('ex-pct-legend').replaceChildren(latestList(pct, m.unit, false));
    } else {
      $('ex-pct-legend').replaceChildren();
      const c = state.charts.get('ex-pct');
      if (c) { c.plot.destroy(); state.charts.delete('ex-pct'); }
      $('ex-pct').replaceChildren(el('p', { class: 'empty' },
        m.type === 'counter' || m.type === 'gauge' ? 'a ' + m.type + ' has no percentiles' : 'no samples in this range'));
    }
    $('ex-pct').dataset.query = asked;
    $('ex-pct').dataset.step = newestPct ? newestPct.start : '';
    $('ex-stats').replaceChildren(...boxes.map(([k, v, raw]) => el('div', { class: 'stat', 'data-stat': k.split(' ')[0], 'data-value': String(raw) },
      el('div', { class: 'v' }, v), el('div', { class: 'k' }, k))));
    $('ex-stats').dataset.query = asked;
    // How many series of the metric the answer draws on (the series API's,
    // under the tag filter), and in how many groups.
    const matching = m.each.filter((t) => tags.every(([k, v]) => t[k] === v)).length;
    const status = $('ex-status');
    status.textContent = name + ' (' + m.type + ', ' + (m.unit || 'count') + '): ' + matching +
      ' series' + (group ? ' in ' + series.length + ' group' + (series.length === 1 ? '' : 's') : '') + ', ' +
      num(count) + ' samples in the last ' + $('range').selectedOptions[0].textContent + ', bins of ' + step + ' s';
    status.dataset.query = asked;
    status.dataset.at = String(now);
  }

  // ---- the poll loop ----
  async function tick() {
    if (state.busy) return;
    state.busy = true;
    try {
      const h = await api('/api/v1/health');
      if (h.body && h.body.status) renderHealth(h.body);
      if (state.view === 'explorer') {
        if (!state.series || Date.now() - state.seriesAt > 30000) await loadSeries();
        await renderExplorer();
      } else {
        // The series' units, for panels that mix series of several.
        if (!state.series || Date.now() - state.seriesAt > 30000) await loadSeries();
        const r = await api('/api/v1/dashboards/' + state.view);
        if (r.ok && r.body) renderDashboard(r.body);
        else throw new Error((r.body && r.body.message) || ('dashboard failed (' + r.status + ')'));
      }
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      $('error').hidden = true;
    } catch (e) {
      if (!(e instanceof AuthNeeded)) {
        $('error').textContent = 'Cannot reach the server: ' + e.message;
        $('error').hidden = false;
      }
    } finally {
      state.busy = false;
    }
  }

  function destroyCharts(prefix) {
    for (const [k, c] of Array.from(state.charts)) {
      if (!prefix || k.startsWith(prefix)) { c.plot.destroy(); state.charts.delete(k); }
    }
  }

  function show(view) {
    state.view = view;
    for (const b of $('views').querySelectorAll('button')) {
      if (b.dataset.view === view) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
    }
    const explorer = view === 'explorer';
    $('explorer').hidden = !explorer;
    $('dashboard').hidden = explorer;
    if (!explorer) {
      destroyCharts();
      $('panels').replaceChildren();
    }
    tick();
  }

  for (const b of $('views').querySelectorAll('button')) b.addEventListener('click', () => show(b.dataset.view));
  $('range').addEventListener('change', () => {
    state.range = Number($('range').value);
    $('range-note').hidden = state.range <= 300;
    resetExplorer();
    tick();
  });
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('pause').setAttribute('aria-pressed', String(state.paused));
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
  });
  $('ex-find').addEventListener('input', fillMetricList);
  $('ex-metric').addEventListener('change', () => { fillTagControls(); resetExplorer(); destroyCharts('ex-'); tick(); });
  $('ex-group').addEventListener('change', () => { destroyCharts('ex-'); tick(); });
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { destroyCharts(); tick(); }, 200);
  });
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { destroyCharts(); tick(); });

  setInterval(() => { if (!state.paused && !document.hidden) tick(); }, POLL_MS);
  tick();
})();
