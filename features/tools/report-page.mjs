// The frame of the HTML reports (the soak's, the benchmarks'): one self-contained file each, with uPlot
// (npm `uplot`) and its stylesheet inlined so the page opens offline, the page's data embedded as JSON
// and the script that draws it. Every chart a page draws is kept in `window.reportCharts` (the uPlot
// instances), which features/tools/check-reports.mjs reads to check that each chart has data.
//
//   import { page, esc } from './report-page.mjs';
//   fs.writeFileSync(out, page({ title, body: '<div id="c"></div>', data, script: 'new uPlot(...)' }));
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// JSON inside <script>: "</script>" and "<!--" in a string must not end or confuse the element.
function scriptJson(data) {
  return JSON.stringify(data).replace(/</g, '\\u003c');
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em 2em; color: #1d232b; background: #fff; max-width: 1500px; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.2em; margin: 1.6em 0 .5em; } h3 { font-size: 1em; margin: 1em 0 .3em; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: #f5f6f8; padding: .7em 1em; overflow-x: auto; border-radius: 4px; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border-bottom: 1px solid #e3e5e8; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f5f6f8; }
.pass { color: #11703b; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
.meta { color: #555; } .charts { display: flex; flex-wrap: wrap; gap: 1em; }
.chart { border: 1px solid #e3e5e8; border-radius: 4px; padding: .4em; }
.side { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; } .side > * { flex: 1 1 600px; min-width: 0; }
.u-title { font-size: 13px; font-weight: 600; }
.swatch { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: -.1em; margin-right: .3em; }
`;

// A page: `body` is HTML, `data` the JSON the `script` reads as `DATA`.
export function page({ title, body, data, script }) {
  const css = fs.readFileSync(path.join(uplotDir, 'uPlot.min.css'), 'utf8');
  const js = fs.readFileSync(path.join(uplotDir, 'uPlot.iife.min.js'), 'utf8');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${css}</style><style>${STYLE}</style>
<script>${js}</script>
</head><body>
${body}
<script id="report-data" type="application/json">${scriptJson(data)}</script>
<script>
window.reportCharts = [];
const DATA = JSON.parse(document.getElementById('report-data').textContent);
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
function chart(opts, data, el) { const u = new uPlot(opts, data, el); window.reportCharts.push(u); return u; }
${script}
</script>
</body></html>
`;
}
