// check-reports.mjs against pages made to fail each of its checks (and one that passes): it must tell
// them apart, or `./dev test`'s report phase could pass over a broken page. Needs Debian's chromium.
// Run: node --test tools/*.test.mjs
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { page } from './report-page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check-reports-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

const chartScript = (values) => `chart({ width: 300, height: 150, scales: { x: { time: false } }, series: [{}, { label: 'v', stroke: 'red' }] },
  [[0, 1, 2], ${JSON.stringify(values)}], document.getElementById('c'));`;
const pages = {
  good: page({ title: 'good', body: '<div id="c"></div>', data: {}, script: chartScript([1, 2, 3]) }),
  empty: page({ title: 'empty', body: '<div id="c"></div>', data: {}, script: chartScript([null, null, null]) }),
  nochart: page({ title: 'no chart', body: '<p>nothing</p>', data: {}, script: '' }),
  error: page({ title: 'error', body: '<div id="c"></div>', data: {}, script: `${chartScript([1, 2, 3])}\nconsole.error('broken');` }),
  thrown: page({ title: 'thrown', body: '<div id="c"></div>', data: {}, script: 'undefinedFunction();' }),
};

test('passes a page with data, fails each kind of broken one', { timeout: 120_000 }, () => {
  const args = [];
  for (const [name, html] of Object.entries(pages)) {
    fs.writeFileSync(path.join(dir, `${name}.html`), html);
    args.push('--page', path.join(dir, `${name}.html`), '--charts');
    if (name === 'good') args.push('--shot', path.join(dir, 'good.png'));
  }
  args.push('--page', path.join(dir, 'missing.html'));
  const run = spawnSync('node', [path.join(here, 'check-reports.mjs'), ...args], { encoding: 'utf8', timeout: 110_000 });
  const lines = run.stdout.split('\n');
  const verdict = (name) => lines.find((l) => l.includes(`${name}.html`));
  assert.match(verdict('good'), /^PASS .*1 charts with data/);
  assert.ok(fs.statSync(path.join(dir, 'good.png')).size > 1000, 'the screenshot is kept');
  assert.match(verdict('empty'), /^FAIL .*series 1 has no data/);
  assert.match(verdict('nochart'), /^FAIL .*no chart drawn/);
  assert.match(verdict('error'), /^FAIL .*console error: broken/);
  assert.match(verdict('thrown'), /^FAIL .*undefinedFunction/);
  assert.match(verdict('missing'), /^FAIL /);
  assert.ok(lines.includes('reports: 1 passed, 5 failed'), run.stdout);
  assert.equal(run.status, 1);
});
