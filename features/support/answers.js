// The operations of the failure matrix and the little language of its answer cells.
//
// An answer cell is one or more alternatives joined by "or", then qualifiers:
//   200 from cache | 200 from origin | 200 from cache or origin | 200 | 2xx | 201 | 204 | 404 | 503
//   ..., fast                      every answer (5 tries) in the set, their median a few ms
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
    assert.that(answer.ms <= bounds.request, `answered after ${Math.round(answer.ms)} ms, past the request deadline (bound ${bounds.request} ms): ${describe(answer)}`);
  };
  ok(first);
  if (expected.fast) {
    const times = [first.ms];
    for (let i = 0; i < 4; i++) {
      const a = await perform(op, world);
      ok(a);
      times.push(a.ms);
    }
    assert.that(median(times) <= bounds.fast,
      `expected a fast answer (median of 5 at most ${bounds.fast} ms), got ${times.map(Math.round).join(', ')} ms; last: ${describe(world.answers.at(-1))}`);
  }
  if (expected.thenFast) {
    const times = [];
    let attempts = 0;
    while (attempts < bounds.breakerAttempts) {
      const a = await perform(op, world);
      ok(a);
      attempts++;
      if (a.ms <= bounds.fast) break;
      times.push(a.ms);
    }
    const after = [];
    for (let i = 0; i < 5; i++) {
      const a = await perform(op, world);
      ok(a);
      after.push(a.ms);
    }
    assert.that(median(after) <= bounds.fast,
      `expected answers to become fast (a breaker opening) within ${bounds.breakerAttempts} tries; then 5 answers took ${after.map(Math.round).join(', ')} ms (median bound ${bounds.fast} ms); earlier: ${times.map(Math.round).join(', ')} ms`);
  }
}
