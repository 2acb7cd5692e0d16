#!/usr/bin/env node
// Writes reports/bench/index.html (one self-contained file) from the text the benchmarks printed, which
// `./dev bench` keeps as reports/bench/<name>.txt: for each benchmark, a bar chart per figure that
// states ratios (one bar per target, the baseline measured in the same run at 1) beside its text.
//
//   node features/tools/bench-report.mjs --dir reports/bench [--out reports/bench/index.html]
import fs from 'node:fs';
import path from 'node:path';

import { parseTables, ratioCharts } from './bench-text.mjs';
import { esc, page } from './report-page.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const dir = opt('dir');
if (!dir) throw new Error('bench-report: --dir DIR (the benchmarks\' text output, <name>.txt) is missing');
const outFile = opt('out', path.join(dir, 'index.html'));

const benches = fs.readdirSync(dir).filter((n) => n.endsWith('.txt')).sort().map((n) => {
  const file = path.join(dir, n);
  // Progress lines end with \r or carry terminal colours in some shells: keep what a reader sees.
  const text = fs.readFileSync(file, 'utf8').replace(/\x1b\[[0-9;]*m/g, '').replace(/\r(?!\n)/g, '\n');
  return { name: n.replace(/\.txt$/, ''), when: fs.statSync(file).mtime.toISOString().replace(/\.\d+Z$/, 'Z'), text, charts: ratioCharts(parseTables(text)) };
});

let k = 0;
const sections = benches.map((b) => {
  const charts = b.charts.map((c) => {
    c.el = `chart-${k++}`;
    return `<div class="chart" id="${c.el}"></div>`;
  }).join('');
  return `<h2>${esc(b.name)} <span class="meta">(measured ${esc(b.when)})</span></h2>
<div class="side"><div>${charts ? `<div class="charts">${charts}</div>` : '<p class="meta">No figure of this benchmark states a ratio: its text is the report.</p>'}</div>
<pre>${esc(b.text)}</pre></div>`;
}).join('\n');

const body = `<h1>Benchmarks</h1>
<p class="meta">Each chart is one figure of a benchmark: a bar per target, as a ratio to the baseline measured in the same run
(the bar at 1, dashed line). Whether higher is better depends on the figure (requests/s: higher; latency, CPU per request: lower);
the text beside each benchmark is what it printed, with the targets and verdicts.</p>
${sections || '<p>No benchmark output found: run <code>./dev bench</code>.</p>'}`;

// Runs in the page: DATA is [{ name, charts: [{ el, figure, baseline, bars }] }].
const script = String.raw`
for (const bench of DATA) for (const c of bench.charts) {
  const xs = c.bars.map((_, i) => i);
  const top = Math.max(1.2, ...c.bars.map((b) => b.ratio)) * 1.18;
  const colors = c.bars.map((b) => (b.target === c.baseline ? '#9aa0a6' : PALETTE[0]));
  chart({
    title: c.figure, width: 280, height: 200, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, range: [-0.6, c.bars.length - 0.4] }, y: { range: [0, top] } },
    axes: [{ splits: () => xs, values: () => c.bars.map((b) => b.target), grid: { show: false }, font: '11px system-ui, sans-serif' },
      { label: 'x ' + c.baseline, size: 40, font: '11px system-ui, sans-serif' }],
    // The baseline's bar grey, the others blue.
    series: [{}, { label: 'ratio', fill: PALETTE[0], stroke: PALETTE[0], points: { show: false }, paths: uPlot.paths.bars({ size: [0.6, 80],
      disp: { fill: { unit: 3, values: () => colors }, stroke: { unit: 3, values: () => colors } } }) }],
    hooks: { draw: [(u) => {
      const ctx = u.ctx;
      ctx.save();
      const y1 = u.valToPos(1, 'y', true);
      ctx.strokeStyle = '#555'; ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.beginPath(); ctx.moveTo(u.bbox.left, y1); ctx.lineTo(u.bbox.left + u.bbox.width, y1); ctx.stroke();
      ctx.fillStyle = '#000'; ctx.textAlign = 'center'; ctx.font = (11 * devicePixelRatio) + 'px system-ui, sans-serif';
      c.bars.forEach((b, i) => ctx.fillText(b.ratio + 'x', u.valToPos(i, 'x', true), u.valToPos(b.ratio, 'y', true) - 4 * devicePixelRatio));
      ctx.restore();
    }] },
  }, [xs, c.bars.map((b) => b.ratio)], document.getElementById(c.el));
}
`;

const data = benches.map((b) => ({ name: b.name, charts: b.charts }));
fs.mkdirSync(path.dirname(outFile), { recursive: true });
fs.writeFileSync(outFile, page({ title: 'Benchmarks', body, data, script }));
console.log(`wrote ${outFile}: ${benches.map((b) => `${b.name} (${b.charts.length} charts)`).join(', ') || 'no benchmark output'}`);
