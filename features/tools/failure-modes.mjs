#!/usr/bin/env node
// Writes docs/failure-modes.md, the contract, from the feature files; with --verdicts, the same matrix
// with each scenario's verdict in the last run (`./dev test` writes it to reports/failure-matrix.md).
//
//   node tools/failure-modes.mjs [--features DIR] [--report FILE.ndjson] [--out FILE.md] [--verdicts]
//
// Every Scenario Outline with `operation` and `answer` columns is a piece of the failure matrix: each
// of its Examples tables is a row (named by the table, e.g. "latency over the deadline"), each
// operation a column, each cell the expected answer (and with --verdicts whether it passed in the run
// of cucumber's message report, which `./dev test` writes). One table per feature file; the other
// scenarios are listed under it. The report, when there is one, also tells which scenarios took over
// 5 s without the @slow tag (a warning).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { AstBuilder, GherkinClassicTokenMatcher, Parser, compile } from '@cucumber/gherkin';
import { IdGenerator } from '@cucumber/messages';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const featuresDir = path.resolve(opt('features', path.join(here, '..')));
const reportFile = path.resolve(opt('report', path.join(here, '../../reports/failure-modes.ndjson')));
const outFile = path.resolve(opt('out', path.join(here, '../../docs/failure-modes.md')));
const verdicts = args.includes('--verdicts');

const OPERATIONS = ['cached read', 'uncached read', 'write', 'delete'];
// Features in the order of the failure matrix; any other feature file follows, by name.
const ORDER = ['mysql', 'redis-master', 'redis-replica', 'combinations', 'storage-availability', 'cache-availability',
  'protocol-faults', 'network-faults', 'startup', 'recovery', 'breaker', 'mid-request', 'stack'];

// ------------------------------------------------------------------------------------ last results
// pickle results keyed by "<uri>\t<scenario name>"; worst step status wins.
const RANK = { PASSED: 0, SKIPPED: 1, PENDING: 2, UNDEFINED: 3, AMBIGUOUS: 4, FAILED: 5, UNKNOWN: 1 };
function readResults(file) {
  if (!fs.existsSync(file)) return { results: new Map(), when: null, durations: new Map() };
  const pickles = new Map();
  const testCases = new Map();
  const started = new Map();
  const status = new Map(); // testCaseStartedId -> status
  const startedAt = new Map();
  const durations = new Map(); // "<uri>\t<name>" -> ms
  const ts = (t) => Number(t.seconds) * 1000 + t.nanos / 1e6;
  const retried = new Set();
  let when = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    if (m.testRunStarted) when = new Date(Number(m.testRunStarted.timestamp.seconds) * 1000);
    else if (m.pickle) pickles.set(m.pickle.id, m.pickle);
    else if (m.testCase) testCases.set(m.testCase.id, m.testCase.pickleId);
    else if (m.testCaseStarted) {
      started.set(m.testCaseStarted.id, m.testCaseStarted.testCaseId);
      startedAt.set(m.testCaseStarted.id, ts(m.testCaseStarted.timestamp));
    } else if (m.testCaseFinished && !m.testCaseFinished.willBeRetried) {
      const id = m.testCaseFinished.testCaseStartedId;
      const pickle = pickles.get(testCases.get(started.get(id)));
      if (pickle) durations.set(`${path.basename(pickle.uri)}\t${pickle.name}`, { ms: ts(m.testCaseFinished.timestamp) - startedAt.get(id), tags: pickle.tags.map((t) => t.name) });
    }
    else if (m.testStepFinished) {
      const { testCaseStartedId: id, testStepResult: r } = m.testStepFinished;
      if ((RANK[r.status] ?? 1) >= (RANK[status.get(id)] ?? -1)) status.set(id, r.status);
    }
    if (m.testCaseFinished?.willBeRetried) retried.add(m.testCaseFinished.testCaseStartedId);
  }
  const results = new Map();
  for (const [startedId, testCaseId] of started) {
    if (retried.has(startedId)) continue;
    const pickle = pickles.get(testCases.get(testCaseId));
    if (pickle) results.set(`${path.basename(pickle.uri)}\t${pickle.name}`, status.get(startedId) ?? 'PASSED');
  }
  return { results, when, durations };
}

// ---------------------------------------------------------------------------------------- features
function parseFeature(file) {
  const newId = IdGenerator.incrementing();
  const parser = new Parser(new AstBuilder(newId), new GherkinClassicTokenMatcher());
  const uri = path.basename(file);
  const doc = parser.parse(fs.readFileSync(file, 'utf8'));
  const pickles = compile(doc, uri, newId);
  return { uri, doc, pickles };
}

const MARK = { PASSED: '✅', FAILED: '❌ failed', SKIPPED: '⏭ skipped', UNDEFINED: '❓ undefined', AMBIGUOUS: '❓ ambiguous', PENDING: '⏳ pending' };
function mark(status) {
  if (!verdicts) return '';
  return ` ${status ? MARK[status] ?? status.toLowerCase() : '· not run'}`;
}

const esc = (s) => String(s).replace(/\|/g, '\\|');

function render(feature, results) {
  const { uri, doc, pickles } = feature;
  const pickleByRow = new Map(pickles.map((p) => [p.astNodeIds.at(-1), p]));
  const f = doc.feature;
  const out = [];
  const title = f.name;
  out.push(`## ${title}`, '', `\`features/${uri}\`${f.tags.length ? ` · ${f.tags.map((t) => `\`${t.name}\``).join(' ')}` : ''}`, '');
  // The description, less the note for readers of the feature file about how its tables map to the
  // matrix (this document is that matrix).
  const description = (f.description ?? '').split('\n').map((l) => l.trim()).join('\n').split(/\n\s*\n/)
    .filter((para) => para.trim() && !para.startsWith('Each Examples table')).join('\n\n');
  if (description) out.push(description, '');

  const rows = []; // { label, tags, cells: { op: text } }
  const others = [];
  const children = f.children.flatMap((c) => (c.rule ? c.rule.children : [c]));
  for (const child of children) {
    const sc = child.scenario;
    if (!sc) continue;
    const matrix = sc.examples.length && sc.examples.every((ex) => {
      const cols = ex.tableHeader?.cells.map((c) => c.value) ?? [];
      return cols.includes('operation') && cols.includes('answer');
    });
    if (!matrix) {
      for (const p of pickles.filter((pk) => pk.astNodeIds[0] === sc.id)) others.push({ name: p.name, status: results.get(`${uri}\t${p.name}`) });
      continue;
    }
    for (const ex of sc.examples) {
      const cols = ex.tableHeader.cells.map((c) => c.value);
      const varying = cols.filter((c) => !['operation', 'answer', 'fault'].includes(c)
        && new Set(ex.tableBody.map((r) => r.cells[cols.indexOf(c)].value)).size > 1);
      for (const r of ex.tableBody) {
        const v = Object.fromEntries(cols.map((c, i) => [c, r.cells[i].value]));
        const name = ex.name || sc.name;
        const label = varying.length ? `${name}: ${varying.map((c) => v[c]).join(' ')}` : name;
        let row = rows.find((x) => x.label === label);
        if (!row) {
          row = { label, fault: cols.includes('fault'), tags: [...sc.tags, ...ex.tags].map((t) => t.name), cells: {} };
          rows.push(row);
        }
        const pickle = pickleByRow.get(r.id);
        row.cells[v.operation] = { answer: v.answer, status: pickle && results.get(`${uri}\t${pickle.name}`), name: pickle?.name };
      }
    }
  }
  if (rows.length) {
    const ops = OPERATIONS.filter((op) => rows.some((r) => r.cells[op]));
    for (const r of rows) for (const op of Object.keys(r.cells)) if (!ops.includes(op)) ops.push(op);
    out.push(`| ${rows.every((r) => r.fault) ? 'fault' : 'situation'} | ${ops.join(' | ')} |`, `|---|${ops.map(() => '---|').join('')}`);
    for (const r of rows) {
      const cells = ops.map((op) => (r.cells[op] ? `${esc(r.cells[op].answer)}${mark(r.cells[op].status)}` : ''));
      out.push(`| ${esc(r.label)} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  if (others.length) {
    out.push(rows.length ? 'Other scenarios:' : 'Scenarios:', '');
    for (const o of others) out.push(`-${mark(o.status)} ${o.name}`);
    out.push('');
  }
  return out.join('\n');
}

function main() {
  const files = fs.readdirSync(featuresDir).filter((n) => n.endsWith('.feature'));
  files.sort((a, b) => {
    const ia = ORDER.indexOf(a.replace(/\.feature$/, ''));
    const ib = ORDER.indexOf(b.replace(/\.feature$/, ''));
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  const { results, when, durations } = readResults(reportFile);
  const features = files.map((n) => parseFeature(path.join(featuresDir, n)));
  const total = features.reduce((n, f) => n + f.pickles.length, 0);
  const counts = {};
  for (const f of features) for (const p of f.pickles) {
    const s = results.get(`${f.uri}\t${p.name}`) ?? 'NOT RUN';
    counts[s] = (counts[s] ?? 0) + 1;
  }
  const head = [
    '# Failure modes of user-service',
    '',
    verdicts
      ? '<!-- Generated by `./dev test` (features/tools/failure-modes.mjs --verdicts) from features/*.feature and its run. -->'
      : '<!-- Generated by `./dev catalog` (features/tools/failure-modes.mjs) from features/*.feature; do not edit by hand:\n     change the scenarios and run it again. The verdicts of the last run: reports/failure-modes.html. -->',
    '',
    'What the service does when its dependencies fail, as stated and checked by the failure-mode catalog',
    '(`features/`, run by `./dev test`; the contract is `failure-matrix.md` in the design notes). Faults are',
    "injected by faultproxy between user-service and each dependency: `mysql` (MariaDB), `redis-master`,",
    `\`redis-replica\`. Each cell is the expected answer for one operation under one fault${verdicts ? ', and whether that' : '.'}`,
    ...(verdicts ? ['scenario passed in the last run.'] : []),
    '',
    'Operations: **cached read** (user in Redis and MariaDB), **uncached read** (only in MariaDB), **write**',
    '(PUT of an existing user), **delete** (DELETE of an existing user). Answers: `200 from cache` / `from',
    'origin` is the X-Data-Source header; `fast` means a few milliseconds (as quick as `GET /health/live`,',
    'median of 5 tries, within half a call deadline);',
    '`within the deadline, then fast` means the first answer comes within the request deadline and later',
    "ones fast, once the dependency's circuit breaker has opened; `or` lists the answers allowed. Every",
    'scenario also checks that no answer comes after the request deadline, that MariaDB holds what the',
    'answer says, and that within 1 s of the fault being removed the user is served as stored.',
    '',
    ...(!verdicts
      ? [`${total} scenarios. \`./dev test\` runs them; the verdicts of its last run are in \`reports/failure-modes.html\` (cucumber's`,
        'report: every scenario with the faults it applied, its answers and the readiness at its end) and',
        '`reports/failure-matrix.md` (this matrix with a verdict in each cell).', '']
      : [when
        ? `Last run: ${when.toISOString().replace(/\.\d+Z$/, 'Z')}, ${total} scenarios: ${Object.entries(counts).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', ')}.`
        : `No report of a run found (${path.relative(process.cwd(), reportFile)}): ${total} scenarios, none run yet.`,
      '',
      'Legend: ✅ passed · ❌ failed · ⏭ skipped · · not run',
      '']),
  ];
  const body = features.map((f) => render(f, results));
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${[...head, ...body].join('\n').trimEnd()}\n`);
  // Keeps the @slow tag honest: anything over 5 s carries it.
  const slow = [...durations].filter(([, d]) => d.ms > 5000 && !d.tags.includes('@slow'));
  for (const [key, d] of slow) console.warn(`warning: ${key.replace('\t', ': ')} took ${(d.ms / 1000).toFixed(1)} s but is not tagged @slow`);
  if (args.includes('--durations')) {
    for (const [key, d] of [...durations].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) console.log(`${(d.ms / 1000).toFixed(2)} s  ${key.replace('\t', ': ')}`);
  }
  console.log(`wrote ${path.relative(process.cwd(), outFile)}: ${features.length} features, ${total} scenarios${verdicts ? (when ? `, verdicts of the run of ${when.toISOString()}` : ', no run to take verdicts from') : ''}`);
}

main();
