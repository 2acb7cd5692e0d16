#!/usr/bin/env node
// Writes the soak's HTML report (reports/soak/index.html, one self-contained file) from the JSON the
// soak program writes with --data (reports/soak/data.json): the answers per second by status, latency
// p50/p99 and the data-source mix, each with the fault windows shaded, a lane per faulted proxy or
// process, the invariants with their verdicts, the seed and the replay command. `./dev soak` runs it.
//
//   node features/tools/soak-report.mjs --data reports/soak/data.json --out reports/soak/index.html
import fs from 'node:fs';
import path from 'node:path';

import { esc, page } from './report-page.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= args.length) throw new Error(`soak-report: --${name} FILE is missing`);
  return args[i + 1];
};
const dataFile = opt('data');
const outFile = opt('out');
const data = JSON.parse(fs.readFileSync(dataFile, 'utf8'));

const passed = data.invariants.filter((i) => i.ok).length;
const failed = data.invariants.length - passed;
const ms = (v) => `${(v / 1000).toFixed(1)} s`;

const invariants = data.invariants.map((i) => `<tr><td class="${i.ok ? 'pass' : 'fail'}">${i.ok ? 'PASS' : 'FAIL'}</td>
<td><b>${esc(i.name)}</b><br>${esc(i.what)}${i.figures ? `<pre>${esc(i.figures)}</pre>` : ''}${
  i.examples.length ? `<ul>${i.examples.map((e) => `<li><code>${esc(e)}</code></li>`).join('')}</ul>` : ''}</td></tr>`).join('\n');

const faults = data.faults.map((f, k) => `<tr><td>${k + 1}</td><td>${ms(f.from_ms)}</td><td>${ms(f.to_ms)}</td>
<td><span class="swatch" data-target="${esc(f.target)}"></span>${esc(f.target)}</td><td>${esc(f.what)}</td><td><code>${esc(f.detail)}</code></td></tr>`).join('\n');

const body = `
<h1>Chaos soak: <span class="${failed ? 'fail' : 'pass'}">${passed} invariants passed, ${failed} failed</span></h1>
<p class="meta">Seed <b>${esc(data.seed)}</b> · ${esc(data.seconds)} s of load ${data.chaos ? 'and chaos' : '(no chaos)'}${data.ha ? ' over the HA stack' : ''}
 from ${esc(data.started)} · ${esc(data.writers)} writers, ${esc(data.readers)} readers, ${esc(data.ids)} users ·
 ${data.faults.length} fault windows</p>
<p>Replay: <code>${esc(data.replay)}</code></p>
<h2>Faults</h2><div id="lanes" class="chart"></div>
<h2>Answers per second, by status</h2><div id="status" class="chart"></div>
<h2>Latency of the answers of each second (ms, log scale)</h2><div id="latency" class="chart"></div>
<h2>Successful reads per second, by data source (X-Data-Source)</h2><div id="source" class="chart"></div>
<h2>Invariants</h2>
<table><tbody>${invariants}</tbody></table>
<h2>Fault windows</h2>
<table><thead><tr><th>#</th><th>from</th><th>to</th><th>proxy / process</th><th>fault</th><th>applied</th></tr></thead><tbody>${faults}</tbody></table>
<details><summary>The soak's text report</summary><pre>${esc(data.report)}</pre></details>
`;

// Runs in the page: DATA is the soak's JSON.
const script = String.raw`
const t = DATA.timeline.map((s) => s.t);
const targets = [...new Set(DATA.faults.map((f) => f.target))];
const colorOf = (target) => PALETTE[targets.indexOf(target) % PALETTE.length];
for (const el of document.querySelectorAll('.swatch')) el.style.background = colorOf(el.dataset.target);
const width = () => Math.max(600, Math.min(1450, document.body.clientWidth - 20));
const sync = { key: 'soak' };
const keys = (field) => [...new Set(DATA.timeline.flatMap((s) => Object.keys(s[field])))].sort();
const span = (f, u) => {
  const x0 = u.valToPos(f.from_ms / 1000, 'x', true), x1 = u.valToPos(f.to_ms / 1000, 'x', true);
  return [x0, Math.max(x1 - x0, 2 * devicePixelRatio)];
};
// Every fault window shaded behind the series, in the colour of its proxy or process.
const shade = { hooks: { drawClear: [(u) => {
  u.ctx.save();
  for (const f of DATA.faults) {
    const [x, w] = span(f, u);
    u.ctx.fillStyle = colorOf(f.target) + '26';
    u.ctx.fillRect(x, u.bbox.top, w, u.bbox.height);
  }
  u.ctx.restore();
}] } };
function lines(el, field, yLabel, extra = {}) {
  const names = keys(field);
  const series = [{}, ...names.map((n, k) => ({ label: n, stroke: PALETTE[k % PALETTE.length], width: 1.5, points: { show: false } }))];
  const values = [t, ...names.map((n) => DATA.timeline.map((s) => s[field][n] ?? 0))];
  return chart({ width: width(), height: 240, cursor: { sync }, plugins: [shade], scales: { x: { time: false } },
    axes: [{ label: 'seconds' }, { label: yLabel, size: 70 }], series, ...extra }, values, document.getElementById(el));
}
// One lane per faulted proxy or process (named on the left), a bar per window labelled with the fault;
// the series is the number of faults active in each second.
// Windows of one target that overlap take rows of their own in its lane.
const active = t.map((s) => DATA.faults.filter((f) => f.from_ms / 1000 < s + 1 && f.to_ms / 1000 >= s).length);
const rows = []; // { target, end: when the last window in the row ends }, grouped by target
const rowOf = DATA.faults.map((f) => {
  let k = rows.findIndex((r) => r.target === f.target && r.end <= f.from_ms);
  if (k < 0) {
    const last = rows.map((r) => r.target).lastIndexOf(f.target);
    k = last < 0 ? rows.length : last + 1;
    rows.splice(k, 0, { target: f.target, end: f.to_ms });
    return rows[k];
  }
  rows[k].end = f.to_ms;
  return rows[k];
});
const lanes = Math.max(1, rows.length);
chart({
  width: width(), height: 60 + 22 * lanes, cursor: { sync }, legend: { show: false },
  scales: { x: { time: false }, n: { range: [0, Math.max(1, ...active)] } },
  // The left axis only makes room for the lane names: as wide as the others' axis and label.
  axes: [{}, { scale: 'n', size: 100, values: () => [], ticks: { show: false }, grid: { show: false } }],
  series: [{}, { label: 'faults active', scale: 'n', stroke: 'transparent', points: { show: false } }],
  hooks: { draw: [(u) => {
    const ctx = u.ctx;
    const h = u.bbox.height / lanes;
    ctx.save();
    ctx.font = (11 * devicePixelRatio) + 'px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    ctx.fillStyle = '#1d232b';
    rows.forEach((r, lane) => {
      if (lane === 0 || rows[lane - 1].target !== r.target) ctx.fillText(r.target, u.bbox.left - 8 * devicePixelRatio, u.bbox.top + (lane + 0.5) * h);
    });
    ctx.textAlign = 'left';
    for (const [k, f] of DATA.faults.entries()) {
      const lane = rows.indexOf(rowOf[k]);
      const [x, w] = span(f, u);
      const y = u.bbox.top + lane * h + 0.12 * h;
      ctx.fillStyle = colorOf(f.target) + 'aa';
      ctx.fillRect(x, y, w, 0.76 * h);
      ctx.save();
      ctx.beginPath(); ctx.rect(x, y, w, 0.76 * h); ctx.clip();
      ctx.fillStyle = '#000';
      ctx.fillText(f.what, x + 3 * devicePixelRatio, y + 0.38 * h);
      ctx.restore();
    }
    ctx.restore();
  }] },
}, [t, active], document.getElementById('lanes'));
lines('status', 'by_status', 'answers/s');
chart({ width: width(), height: 240, cursor: { sync }, plugins: [shade], scales: { x: { time: false }, y: { distr: 3 } },
  axes: [{ label: 'seconds' }, { label: 'ms', size: 70 }],
  series: [{}, { label: 'p50', stroke: PALETTE[0], width: 1.5, points: { show: false } }, { label: 'p99', stroke: PALETTE[1], width: 1.5, points: { show: false } }] },
  [t, DATA.timeline.map((s) => s.p50_ms || null), DATA.timeline.map((s) => s.p99_ms || null)], document.getElementById('latency'));
lines('source', 'by_source', 'GET 200/s');
`;

fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, page({ title: `Chaos soak, seed ${data.seed}`, body, data, script }));
console.log(`wrote ${outFile}: ${data.timeline.length} s, ${data.faults.length} fault windows, ${data.invariants.length} invariants`);
