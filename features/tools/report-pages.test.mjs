// The report generators end to end on saved data (testdata/): each page is one file that opens offline
// (uPlot inlined, nothing fetched) and carries what it reports. ./dev test also opens such pages in
// Chromium (check-reports.mjs). Run: node --test tools/*.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const testdata = path.join(here, 'testdata');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'report-pages-'));
test.after(() => fs.rmSync(out, { recursive: true, force: true }));

function selfContained(html) {
  assert.match(html, /uPlot/);
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i, 'the page loads nothing from elsewhere');
  const data = JSON.parse(html.match(/<script id="report-data" type="application\/json">([\s\S]*?)<\/script>/)[1]);
  return data;
}

test('soak page: the run, its faults and its invariants', () => {
  const file = path.join(out, 'soak.html');
  execFileSync('node', [path.join(here, 'soak-report.mjs'), '--data', path.join(testdata, 'soak-data.json'), '--out', file]);
  const html = fs.readFileSync(file, 'utf8');
  const data = selfContained(html);
  const saved = JSON.parse(fs.readFileSync(path.join(testdata, 'soak-data.json'), 'utf8'));
  assert.deepEqual(data, saved);
  assert.match(html, new RegExp(`Seed <b>${saved.seed}</b>`));
  assert.ok(html.includes(saved.replay));
  for (const i of saved.invariants) assert.ok(html.includes(`<b>${i.name}</b>`), i.name);
  assert.equal((html.match(/<tr><td>\d+<\/td><td>/g) ?? []).length, saved.faults.length, 'a table row per fault window');
});

test('bench page: the charts of every benchmark beside its text', () => {
  const file = path.join(out, 'bench.html');
  execFileSync('node', [path.join(here, 'bench-report.mjs'), '--dir', testdata, '--out', file]);
  const html = fs.readFileSync(file, 'utf8');
  const data = selfContained(html);
  assert.deepEqual(data.map((b) => [b.name, b.charts.length]), [['faultproxy-bench', 5], ['user-service-bench', 9]]);
  assert.equal((html.match(/<div class="chart" id="chart-\d+">/g) ?? []).length, 14);
  assert.ok(html.includes('bulk 1 stream (MiB/s)'));
  assert.ok(html.includes('&lt; 30 MB'), 'the text, escaped');
});
