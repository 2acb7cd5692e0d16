// Unit tests of bench-text.mjs on saved output of the two benchmarks (testdata/): node --test tools/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseTables, ratioCharts } from './bench-text.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sample = (name) => fs.readFileSync(path.join(here, 'testdata', name), 'utf8');
const chartOf = (charts, figure) => charts.find((c) => c.figure === figure);

test('faultproxy.sh: each target column against direct', () => {
  const tables = parseTables(sample('faultproxy-bench.txt'));
  assert.equal(tables.length, 1);
  assert.deepEqual(tables[0].columns.slice(0, 4), ['figure', 'direct', 'haproxy', 'faultproxy']);
  const charts = ratioCharts(tables);
  assert.deepEqual(chartOf(charts, 'bulk 1 stream (MiB/s)'), {
    figure: 'bulk 1 stream (MiB/s)',
    baseline: 'direct',
    bars: [{ target: 'direct', ratio: 1 }, { target: 'haproxy', ratio: 0.25 }, { target: 'faultproxy', ratio: 0.57 }],
  });
  assert.equal(chartOf(charts, 'new connections (k conn/s)').bars[2].ratio, 0.37);
  // Rows without ratios (RSS, CPU, latencies with "+added") get no chart.
  assert.equal(chartOf(charts, 'RSS added by 1000 idle conns (MB)'), undefined);
  assert.equal(chartOf(charts, 'RTT p50, 1 client (us, +added)'), undefined);
  assert.equal(charts.length, 5);
});

test('user_service.sh: the ratio column, first value column over the second', () => {
  const tables = parseTables(sample('user-service-bench.txt'));
  assert.equal(tables.length, 2);
  const charts = ratioCharts(tables);
  assert.deepEqual(chartOf(charts, 'GET cache hit, requests/s').bars, [
    { target: 'user-service', ratio: 0.56 },
    { target: 'baseline', ratio: 1 },
  ]);
  assert.equal(chartOf(charts, '+ Redis master CPU us/request').bars[0].ratio, 2.91);
  assert.equal(chartOf(charts, 'GET miss (MariaDB), requests/s').baseline, 'baseline');
  assert.deepEqual(chartOf(charts, 'cached GET, p99 ms').bars, [
    { target: 'blackholed', ratio: 1.03 },
    { target: 'healthy', ratio: 1 },
  ]);
  assert.equal(chartOf(charts, 'RSS under load, peak (VmHWM) MB'), undefined);
  assert.equal(charts.length, 9);
});

test('a cell wider than its column still lands in the right one', () => {
  const text = [
    'figure    a       b       c       target',
    'x         1000000000 (2.5x)  3 (0.5x)  4  t', // every cell: in order, however wide
    'y         1       2 (2x)                 t', // c empty: by position
    'z         1          2 (3x)      t', // b pushed 3 to the right by a's width
    '',
  ].join('\n');
  const [t] = parseTables(text);
  assert.deepEqual(t.rows[0], ['x', '1000000000 (2.5x)', '3 (0.5x)', '4', 't']);
  assert.deepEqual(t.rows[1], ['y', '1', '2 (2x)', '', 't']);
  assert.deepEqual(t.rows[2], ['z', '1', '2 (3x)', '', 't']);
  assert.deepEqual(ratioCharts([t])[1].bars, [{ target: 'a', ratio: 1 }, { target: 'b', ratio: 2 }]);
});

test('text without a table gives no chart', () => {
  assert.deepEqual(parseTables('Redis master SIGKILLed:\n  first write   2550 ms after the kill\n'), []);
});
