// Talking to user-service over HTTP (Node's fetch), and what it says about itself: its effective
// configuration (GET /config), from which every time bound of the catalog is derived, and its
// readiness (GET /health/ready).
import { setTimeout as sleep } from 'node:timers/promises';

import { stack } from './stack.js';

// One HTTP exchange with user-service, timed from the request to the end of the body. A request
// that gets no answer within `hangMs` is reported as a hang (the service must answer every request
// within its own deadline; waiting forever would only hide that).
export async function call(method, path, { body, headers = {}, hangMs = 10_000, baseUrl = stack.userServiceUrl } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(hangMs) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] ??= 'application/json';
  }
  const started = performance.now();
  let res;
  let text;
  try {
    res = await fetch(`${baseUrl}${path}`, init);
    text = await res.text();
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    const why = err.name === 'TimeoutError' ? `no answer within ${hangMs} ms (a hang)` : `${err.cause?.code ?? err.name}: ${err.cause?.message ?? err.message}`;
    const e = new Error(`${method} ${path}: ${why} after ${ms} ms`);
    e.transport = true;
    throw e;
  }
  const ms = performance.now() - started;
  let json;
  try {
    json = text.length ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { method, path, status: res.status, headers: res.headers, text, json, ms };
}

export function describe(answer) {
  if (!answer) return '(no answer)';
  const src = answer.headers.get('x-data-source');
  const extra = [src && `X-Data-Source: ${src}`, answer.headers.get('retry-after') && `Retry-After: ${answer.headers.get('retry-after')}`,
    answer.headers.get('x-cache-stale') && `X-Cache-Stale: ${answer.headers.get('x-cache-stale')}`].filter(Boolean);
  const body = answer.text.length > 200 ? `${answer.text.slice(0, 200)}...` : answer.text;
  return `${answer.method} ${answer.path} -> ${answer.status} in ${Math.round(answer.ms)} ms${extra.length ? ` (${extra.join(', ')})` : ''} ${body}`;
}

// Shows in cucumber's report the answers a scenario got since the last call (after each step: under
// the step that got them), each with its status, X-Data-Source and time.
export function attachNewAnswers(world) {
  const fresh = (world.answers ?? []).slice(world.answersShown ?? 0);
  world.answersShown = world.answers?.length ?? 0;
  if (!fresh.length) return;
  const short = (a) => (a ? `${a.method} ${a.path} -> ${a.status}${a.headers.get('x-data-source') ? ` from ${a.headers.get('x-data-source')}` : ''} in ${Math.round(a.ms)} ms` : '(no answer)');
  const title = fresh.length === 1 ? `answer: ${short(fresh[0])}` : `${fresh.length} answers: ${[...new Set(fresh.map((a) => a?.status ?? 'none'))].join(', ')}`;
  world.attach(fresh.map((a) => describe(a)).join('\n'), { mediaType: 'text/plain', fileName: title });
}

// Shows in cucumber's report the answers not shown yet and each readiness answer given
// (`[label, readiness() or { err }]`, as JSON).
export function attachAnswers(world, readies) {
  attachNewAnswers(world);
  for (const [label, ready] of readies) {
    const shown = ready.answer ? { status: ready.answer.status, ms: Math.round(ready.answer.ms), body: ready.answer.json ?? ready.answer.text } : { error: ready.err.message };
    const title = `${label} at the end: ${ready.answer ? `${ready.answer.status}, ${Object.entries(ready.states ?? {}).map(([d, s]) => `${d} ${s}`).join(', ')}` : 'no answer'}`;
    world.attach(JSON.stringify(shown, null, 2), { mediaType: 'application/json', fileName: title });
  }
}

// ------------------------------------------------------------------------------------ configuration
// The settings the catalog needs, each found in GET /config by its path. The catalog never copies a
// number: a deadline changed in the configuration changes every bound derived from it.
const SETTINGS = {
  requestDeadlineMs: 'request_deadline_ms',
  redisDeadlineMs: 'redis.call_deadline_ms',
  mariadbDeadlineMs: 'mysql.call_deadline_ms',
  breakerFailures: 'resilience.breaker_failures',
  probeIntervalMs: 'resilience.probe_interval_ms',
  cacheKeyPrefix: 'redis.key_prefix',
  cacheTtlS: 'redis.ttl_s',
  database: 'mysql.database',
};

function lookup(config, path) {
  let v = config;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || !(part in v)) return undefined;
    v = v[part];
  }
  return v;
}

export function settingsFrom(config) {
  const out = {};
  const missing = [];
  for (const [name, path] of Object.entries(SETTINGS)) {
    const v = lookup(config, path);
    if (v === undefined) missing.push(path);
    else out[name] = v;
  }
  if (missing.length) {
    throw new Error(`GET /config lacks settings the catalog derives its bounds from: ${missing.join(', ')}; it answered ${JSON.stringify(config)}`);
  }
  return out;
}

let cached;
// The running service's settings and the time bounds derived from them (read once per run).
export async function settings() {
  if (cached) return cached;
  const answer = await call('GET', '/config', { baseUrl: stack.adminUrl });
  if (answer.status !== 200 || !answer.json) throw new Error(`GET /config: ${describe(answer)}`);
  const s = settingsFrom(answer.json);
  cached = { ...s, raw: answer.json, bounds: boundsFrom(s) };
  return cached;
}

// Time bounds. This is a 2-core shared machine running ASan builds: every bound carries a margin
// that a correct service never gets near, and that an incorrect one (waiting for a dependency past
// its deadline, or no breaker) still exceeds by far.
export function boundsFrom(s) {
  const margin = (ms) => Math.round(ms + Math.max(300, ms * 0.3));
  return {
    // No answer may come later than the request deadline.
    request: margin(s.requestDeadlineMs),
    // "Recovers": within 1 s of the fault being removed (the contract's own number), plus margin.
    recovery: 1000 + 1000,
    // How long a dependency may take to be noticed down by the background probes.
    notice: margin(3 * s.probeIntervalMs + s.redisDeadlineMs + s.mariadbDeadlineMs),
    // Attempts it may take a breaker to open: its threshold, plus a few for retries inside a request.
    breakerAttempts: s.breakerFailures + 4,
  };
}

// ---------------------------------------------------------------------------------------- readiness
// GET /health/ready, reduced to { name: state } for every dependency it lists.
export async function readiness(baseUrl = stack.userServiceUrl) {
  const answer = await call('GET', '/health/ready', { baseUrl, hangMs: 5000 });
  return { answer, states: dependencyStates(answer.json) };
}

// The service's names for the dependencies behind each proxy (/health/ready names them as the proxies).
export const DEPENDENCY_OF_PROXY = { mysql: 'mysql', 'redis-master': 'redis-master', 'redis-replica': 'redis-replica' };

export function dependencyStates(json) {
  const deps = json?.dependencies;
  const states = {};
  if (deps && typeof deps === 'object') {
    for (const [name, d] of Object.entries(deps)) states[name] = typeof d === 'string' ? d : d?.state;
  }
  return states;
}

// Polls `probe` (an async function returning truthy when satisfied) every `everyMs` until it holds or
// `withinMs` have passed; returns the elapsed ms, or throws with `explain()`'s last word.
export async function pollUntil(probe, { withinMs, everyMs = 20, explain }) {
  const started = performance.now();
  for (;;) {
    let last;
    try {
      if (await probe()) return performance.now() - started;
    } catch (err) {
      last = err;
      if (!err.transport && !err.retryable) throw err;
    }
    if (performance.now() - started > withinMs) {
      const why = explain ? await explain() : last?.message ?? 'the condition never held';
      throw new Error(`not within ${withinMs} ms: ${why}`);
    }
    await sleep(everyMs);
  }
}

// Waits until every dependency is up and no cache repair is pending (a repair remembered during an
// earlier outage must not land on the next scenario's data).
export async function waitUntilReady({ withinMs, baseUrl = stack.userServiceUrl } = {}) {
  let last;
  return pollUntil(
    async () => {
      last = await readiness(baseUrl);
      return isAllUp(last);
    },
    { withinMs, explain: async () => `user-service is not ready with every dependency up and no cache repair pending; /health/ready: ${describe(last?.answer)}` },
  );
}

function isAllUp(ready) {
  const values = Object.values(ready.states);
  const cache = ready.answer.json?.cache;
  return ready.answer.status === 200 && values.length > 0 && values.every((v) => v === 'up')
    && cache?.repair_queue === 0 && cache?.untrusted === false;
}

// Successful calls per dependency so far (user calls and background probes), from GET /metrics on
// the admin listener.
export async function successfulCalls(adminUrl = stack.adminUrl) {
  const answer = await call('GET', '/metrics', { baseUrl: adminUrl });
  const counts = {};
  for (const line of answer.text.split('\n')) {
    const m = line.match(/^user_service_dependency_calls_total\{dependency="([^"]+)",outcome="ok"\} (\d+(?:\.\d+)?)/);
    if (m) counts[m[1]] = Number(m[2]);
  }
  return counts;
}

// Waits until the service is not only reporting every dependency up but using them: a fault removed
// moments ago may have closed connections that the service has not noticed yet (its probes run every
// few hundred ms). A write and a delete of a user of its own go through MariaDB and the Redis master,
// and the repair queue stays empty; then /health/ready is checked again.
let warmups = 0;
// Finally, every dependency in `before` (those that had a fault, with their successful-call counts
// taken when the faults were removed) must have answered a call (a probe, at the latest) since: the
// replica, which only probes use while the master is healthy, may otherwise still hold a connection
// the last fault broke.
export async function waitUntilServing({ withinMs, before = {}, baseUrl = stack.userServiceUrl, adminUrl = stack.adminUrl } = {}) {
  const id = `warm-up-${process.pid}-${++warmups}`;
  let last;
  let step = 'put';
  return pollUntil(
    async () => {
      if (step === 'calls') {
        const now = await successfulCalls(adminUrl);
        const waiting = Object.keys(before).filter((d) => !(now[d] > before[d]));
        last = { method: 'GET', path: '/metrics', status: 200, headers: new Headers(), text: `no successful call since the reset yet: ${waiting.join(', ')}`, ms: 0 };
        return waiting.length === 0;
      }
      if (step === 'put') {
        last = await call('PUT', `/users/${id}`, { baseUrl, body: { name: 'warm-up' } });
        if (last.status !== 201 && last.status !== 200) return false;
        step = 'delete';
      }
      if (step === 'delete') {
        last = await call('DELETE', `/users/${id}`, { baseUrl });
        // 404: an earlier try was answered 503 but went through (its acknowledgement was lost).
        if (last.status !== 204 && last.status !== 404) return false;
        step = 'ready';
      }
      last = (await readiness(baseUrl)).answer;
      if (!isAllUp({ answer: last, states: dependencyStates(last.json) })) return false;
      step = 'calls';
      return false;
    },
    { withinMs, explain: async () => `user-service does not serve with every dependency up yet; last: ${describe(last)}` },
  );
}
