// The operations of the failure matrix and the little language of its answer cells.
//
// An answer cell is one or more alternatives joined by "or", then qualifiers:
//   200 from cache | 200 from origin | 200 from cache or origin | 200 | 2xx | 201 | 204 | 404 | 503
//   ..., fast                      every answer (5 tries) in the set, and as quick as GET /health/live
//   ..., within the deadline       (always checked: no answer comes later than the request deadline)
//   ..., then fast                 after the first answer, retries become fast (a breaker opened)
import * as assert from './check.js';

import { call, describe } from './service.js';

export const OPERATIONS = ['cached read', 'uncached read', 'write', 'delete'];

export function operationRequest(op, world) {
  const path = `/users/${encodeURIComponent(world.userId)}`;
  switch (op) {
    case 'cached read':
    case 'uncached read':
      return ['GET', path, {}];
    case 'write':
      return ['PUT', path, { body: { name: world.newName } }];
    case 'delete':
      return ['DELETE', path, {}];
    default:
      throw new Error(`unknown operation '${op}' (${OPERATIONS.join(', ')})`);
  }
}

export async function perform(op, world) {
  const [method, path, opts] = operationRequest(op, world);
  const answer = await call(method, path, opts);
  world.answers.push(answer);
  return answer;
}

export function parseAnswer(cell) {
  let text = cell.trim();
  const q = { fast: false, thenFast: false };
  const strip = (re) => {
    const m = text.match(re);
    if (m) text = text.replace(re, '').trim();
    return Boolean(m);
  };
  q.thenFast = strip(/,?\s*then fast$/);
  q.withinDeadline = strip(/,?\s*within the deadline$/);
  q.fast = strip(/,?\s*fast$/);
  text = text.replace(/,\s*$/, '');
  const alternatives = [];
  for (const part of text.split(/\s+or\s+/)) {
    const m = part.match(/^(2xx|\d{3})(?: from (cache|origin))?$/);
    if (m) {
      alternatives.push({ status: m[1], source: m[2] });
    } else if (/^(cache|origin)$/.test(part) && alternatives.length) {
      alternatives.push({ ...alternatives[alternatives.length - 1], source: part }); // "200 from cache or origin"
    } else {
      throw new Error(`cannot read the answer cell '${cell}' (e.g. '200 from cache', '503 fast', '2xx or 503, then fast')`);
    }
  }
  return { ...q, alternatives, cell };
}

function statusMatches(want, got) {
  return want === '2xx' ? got >= 200 && got < 300 : Number(want) === got;
}

// Why the answer is not one of the alternatives, or null when it is. Checks the body too: a read
// returns exactly the stored user, a write returns what it wrote, a 503 says when to retry.
export function mismatch(expected, answer, op, world) {
  const alt = expected.alternatives.find((a) => statusMatches(a.status, answer.status) && (!a.source || a.source === answer.headers.get('x-data-source')));
  if (!alt) return `expected ${expected.alternatives.map((a) => a.status + (a.source ? ` from ${a.source}` : '')).join(' or ')}, got ${describe(answer)}`;
  if (answer.status === 503) {
    if (!answer.headers.get('retry-after')) return `a 503 without Retry-After: ${describe(answer)}`;
    if (typeof answer.json?.error !== 'string') return `a 503 without a JSON error body: ${describe(answer)}`;
    // What the client needs and nothing internal: the answer's request id (the log has the details
    // under it), no server address, and for a write whether it may have been applied.
    if (answer.json.request_id !== answer.headers.get('x-request-id')) return `a 503 whose body does not carry its X-Request-Id: ${describe(answer)}`;
    if (/\b\d{1,3}(?:\.\d{1,3}){3}\b|\blocalhost\b/.test(answer.text)) return `a 503 naming a server address: ${describe(answer)}`;
    if ((op === 'write' || op === 'delete') && !['not_applied', 'unknown'].includes(answer.json.outcome)) {
      return `a ${op}'s 503 that does not say whether it may have been applied ("outcome"): ${describe(answer)}`;
    }
    return null;
  }
  if (answer.status === 200 && op.endsWith('read')) {
    if (answer.json?.id !== world.userId || answer.json?.name !== world.oldName) {
      return `a wrong value: expected {"id":"${world.userId}","name":"${world.oldName}"}, got ${describe(answer)}`;
    }
  }
  if ((answer.status === 200 || answer.status === 201) && op === 'write') {
    if (answer.json?.id !== world.userId || answer.json?.name !== world.newName) {
      return `the write answered something else than it wrote ("${world.newName}"): ${describe(answer)}`;
    }
  }
  if (answer.status === 204 && answer.text.length) return `a 204 with a body: ${describe(answer)}`;
  return null;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// "Fast" means the answer costs no more than the service's cheapest answer (GET /health/live, which
// needs no dependency) plus a few ms: each try is followed by that baseline, and the median excess of
// 5 tries must stay under half the smallest call deadline of the dependencies at fault (with Redis
// healthy and MariaDB at fault, half the MariaDB deadline). A service that waits for a dependency
// pays at least that deadline on every try; one that fails fast pays nothing, however loaded the
// machine is (a loaded machine slows the baseline as much as the answer).
function fastBound(world) {
  const s = world.settings;
  const faulted = [...world.faults.keys()];
  const deadlines = faulted.map((p) => (p === 'mysql' ? s.mariadbDeadlineMs : s.redisDeadlineMs));
  return Math.round(Math.min(...(deadlines.length ? deadlines : [s.redisDeadlineMs])) / 2);
}

async function timedTry(op, world) {
  const a = await perform(op, world);
  const live = await call('GET', '/health/live');
  return { answer: a, excess: a.ms - live.ms, baseline: live.ms };
}

const fmt = (tries) => tries.map((t) => `${Math.round(t.answer.ms)} (baseline ${Math.round(t.baseline)})`).join(', ');

// Checks the scenario's first answer against the cell, repeating the operation where the cell says
// "fast" or "then fast". Every answer must be in the cell's set and within the request deadline.
export async function checkAnswer(world, op, cell) {
  const expected = parseAnswer(cell);
  const { bounds } = world.settings;
  const first = world.answers[world.answers.length - 1];
  assert.that(first, 'no request was made');
  const ok = (answer) => {
    const why = mismatch(expected, answer, op, world);
    assert.that(why === null, () => `the ${op}: ${why}`);
    assert.that(answer.ms <= bounds.request, `the ${op} answered after ${Math.round(answer.ms)} ms, past the request deadline (bound ${bounds.request} ms): ${describe(answer)}`);
  };
  ok(first);
  const bound = fastBound(world);
  if (expected.fast) {
    const tries = [];
    for (let i = 0; i < 5; i++) {
      const t = await timedTry(op, world);
      ok(t.answer);
      tries.push(t);
    }
    assert.that(median(tries.map((t) => t.excess)) <= bound,
      () => `expected the ${op} to be fast (median of 5 at most ${bound} ms slower than GET /health/live), got ${fmt(tries)} ms; last: ${describe(world.answers.at(-1))}`);
  }
  if (expected.thenFast) {
    const slow = [];
    for (let attempts = 0; attempts < bounds.breakerAttempts; attempts++) {
      const t = await timedTry(op, world);
      ok(t.answer);
      if (t.excess <= bound) break;
      slow.push(t);
    }
    const tries = [];
    for (let i = 0; i < 5; i++) {
      const t = await timedTry(op, world);
      ok(t.answer);
      tries.push(t);
    }
    assert.that(median(tries.map((t) => t.excess)) <= bound,
      () => `expected the ${op} to become fast (a breaker opening) within ${bounds.breakerAttempts} tries; then 5 tries took ${fmt(tries)} ms (bound: median at most ${bound} ms slower than GET /health/live); the slow tries before: ${fmt(slow)} ms`);
  }
}
