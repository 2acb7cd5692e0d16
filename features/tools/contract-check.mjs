// The HTTP contract, docs/openapi.yaml, checked two ways: lint-clean (Spectral's spectral:oas and
// Redocly's recommended rules, no error and no warning), and obeyed by the running service: requests
// covering every documented status go through Prism's validation proxy, which compares each answer
// with the contract; the requests Prism cannot route or whose answers it cannot read (an unknown
// path, a method a path does not serve, a header block too large for Node, a request that is not
// HTTP, every HEAD) go to the service directly and their answers are validated here against the
// contract's response objects.
//
// Usage (from features/, against a running stack; `./dev test` runs it as features/contract.feature):
//   USER_SERVICE_URL=http://127.0.0.1:17080 FAULTPROXY_URL=http://127.0.0.1:17474 node tools/contract-check.mjs
//   import { lintContract, checkContract } from '../tools/contract-check.mjs';
//   const lint = await lintContract();                                        // [] when clean
//   const { problems, covered } = await checkContract({ serviceUrl, setEnabled, part: 'statuses' });
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv from 'ajv';
import YAML from 'yaml';
import { freePort } from '../support/ports.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const features = path.join(root, 'features');
export const SPEC = path.join(root, 'docs/openapi.yaml');
const bin = (name) => path.join(features, 'node_modules/.bin', name);

// Runs a command; resolves with its exit code, its output (both streams) and its stdout alone
// (never rejects on a non-zero exit).
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: features, env: { ...process.env, NO_COLOR: '1', REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d) => {
      out += d;
      stdout += d;
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, stdout }));
  });
}

// The problems both linters report (empty: lint-clean). Redocly's intentional exceptions are in
// docs/.redocly.lint-ignore.yaml, Spectral's in docs/.spectral.yaml, each with its reason.
export async function lintContract() {
  const problems = [];
  const spectral = await run(bin('spectral'), ['lint', '--ruleset', path.join(root, 'docs/.spectral.yaml'),
    '--fail-severity', 'warn', SPEC]);
  if (spectral.code !== 0) problems.push(`Spectral (spectral:oas) reports problems:\n${spectral.out.trim()}`);
  const redocly = await run(bin('redocly'), ['lint', '--config', path.join(root, 'docs/redocly.yaml'), '--format', 'json', SPEC]);
  let totals;
  try {
    totals = JSON.parse(redocly.stdout).totals;
  } catch {
    totals = null;
  }
  if (!totals || totals.errors || totals.warnings || redocly.code !== 0) {
    const text = (await run(bin('redocly'), ['lint', '--config', path.join(root, 'docs/redocly.yaml'), SPEC])).out;
    problems.push(`Redocly (recommended) reports problems:\n${text.trim()}`);
  }
  return problems;
}

// Prism's validation proxy in front of the service. Without --errors: a request the contract calls
// invalid is still forwarded (the service's 400/413/415 for it is what is checked), and Prism
// reports every request and response violation in the sl-violations header of its answer.
async function startPrism(serviceUrl) {
  const port = await freePort();
  const child = spawn(bin('prism'), ['proxy', SPEC, serviceUrl, '--host', '127.0.0.1', '--port', String(port)],
    { cwd: features, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Prism did not start within 60 s:\n${log}`)), 60_000);
    const seen = (d) => {
      log += d;
      if (log.includes('Prism is listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Prism exited (${code}) before listening:\n${log}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('exit', resolve);
      child.kill('SIGTERM');
    }),
  };
}

async function send(baseUrl, { method, path: target, headers = {}, body }) {
  const res = await fetch(baseUrl + target, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

// Sends `bytes` as they are (not HTTP, for the malformed-request answer) and reads the answer up to
// the close: { status, headers, text } as send() gives.
function sendRaw(baseUrl, bytes) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(bytes));
    let raw = '';
    socket.setEncoding('latin1');
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (d) => (raw += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = raw.split('\r\n\r\n');
      const [statusLine, ...fields] = head.split('\r\n');
      const headers = new Headers();
      for (const f of fields) headers.append(f.slice(0, f.indexOf(':')), f.slice(f.indexOf(':') + 1).trim());
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: rest.join('\r\n\r\n') });
    });
  });
}

// The answers validated here rather than by Prism, against a response object of the contract
// (resolved): the headers marked required present, every documented header valid, the JSON body
// valid, and no body where none is documented.
function directValidator(spec) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ components: spec.components }, 'contract');
  const resolve = (node) => {
    while (node?.$ref) {
      node = node.$ref.slice(2).split('/').map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~')).reduce((n, k) => n?.[k], spec);
    }
    return node;
  };
  return (answer, responseRef) => {
    const problems = [];
    const response = resolve(responseRef);
    if (!response) return ['the contract documents no such answer'];
    for (const [name, ref] of Object.entries(response.headers ?? {})) {
      const header = resolve(ref);
      const value = answer.headers.get(name);
      if (value === null) {
        if (header.required) problems.push(`required header ${name} missing`);
        continue;
      }
      const typed = header.schema.type === 'integer' ? Number(value) : value;
      if (!ajv.validate(header.schema, typed)) problems.push(`header ${name}: ${value}: ${ajv.errorsText()}`);
    }
    const content = response.content?.['application/json'];
    if (!response.content && answer.text !== '') problems.push(`a body where the contract has none: ${answer.text.slice(0, 200)}`);
    if (content) {
      if (!/^application\/json\b/.test(answer.headers.get('content-type') ?? '')) {
        problems.push(`Content-Type ${answer.headers.get('content-type')}, the contract says application/json`);
      } else {
        let json;
        try {
          json = JSON.parse(answer.text);
        } catch {
          problems.push(`body is not JSON: ${answer.text.slice(0, 200)}`);
        }
        const schema = content.schema.$ref ? { $ref: `contract${content.schema.$ref}` } : content.schema;
        if (json !== undefined && !ajv.validate(schema, json)) problems.push(`body: ${ajv.errorsText()}`);
      }
    }
    return problems;
  };
}

// Polls `probe` (an answer) every 50 ms until `done(answer)`, at most `ms`.
async function waitFor(probe, done, ms) {
  const until = Date.now() + ms;
  let answer = await probe();
  while (!done(answer) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    answer = await probe();
  }
  return answer;
}

// Sends the requests of one part of the check and returns the problems found (empty: the service
// keeps its contract) and the method/status pairs provoked. Parts: `statuses` (every status but
// those of the client's time budget), `budget` (X-Request-Timeout-Ms: 504 for a spent budget, 400
// for an invalid one; issue 14 section 3). `setEnabled(proxy, enabled)` turns a faultproxy proxy
// off and on (for the 503s); without it, the 503 cases are left out and said so in the result.
export async function checkContract({ serviceUrl, adminUrl, setEnabled, part = 'statuses' } = {}) {
  const spec = YAML.parse(readFileSync(SPEC, 'utf8'));
  const validate = directValidator(spec);
  // One proxy per listener: the operators' routes are served on the admin one only.
  const prism = await startPrism(serviceUrl);
  const adminPrism = part === 'statuses' && adminUrl ? await startPrism(adminUrl) : null;
  const problems = [];
  const covered = new Set();
  const run = Date.now().toString(36);
  const id = `contract-${run}`;
  const json = { 'Content-Type': 'application/json' };

  // One request through Prism: its status must be `status`, Prism must report no response
  // violation, and a request violation exactly when the case says the contract forbids it.
  const viaPrism = async (what, req, status, { invalidRequest = false, admin = false } = {}) => {
    const answer = await send(admin ? adminPrism.url : prism.url, req);
    covered.add(`${req.method} ${status}`);
    const where = `${what} (${req.method} ${req.path})`;
    if (/^application\/problem\+json/.test(answer.headers.get('content-type') ?? '')) {
      problems.push(`${where}: Prism refused it: ${answer.status} ${answer.text}`);
      return answer;
    }
    if (answer.status !== status) problems.push(`${where}: answered ${answer.status}, expected ${status}: ${answer.text.slice(0, 300)}`);
    let violations = [];
    const header = answer.headers.get('sl-violations');
    if (header) violations = JSON.parse(header);
    const ofResponse = violations.filter((v) => v.location?.[0] === 'response');
    const ofRequest = violations.filter((v) => v.location?.[0] === 'request');
    for (const v of ofResponse) problems.push(`${where} -> ${answer.status}: the answer breaks the contract: ${v.message} (at ${v.location.join('.')})`);
    if (invalidRequest && ofRequest.length === 0) problems.push(`${where}: the contract admits this request, the case says it must not`);
    if (!invalidRequest) for (const v of ofRequest) problems.push(`${where}: the contract refuses the request: ${v.message} (at ${v.location.join('.')})`);
    return answer;
  };
  // One request to the service itself, its answer validated against `response` (a $ref).
  // `req.base`: the listener (default the public one).
  const direct = async (what, req, status, response) => {
    const base = req.base ?? serviceUrl;
    const answer = await (req.raw ? sendRaw(base, req.raw) : send(base, req));
    covered.add(`${req.method} ${status}`);
    const where = `${what} (${req.method} ${req.path}, sent directly)`;
    if (answer.status !== status) problems.push(`${where}: answered ${answer.status}, expected ${status}`);
    for (const p of validate(answer, response)) problems.push(`${where} -> ${answer.status} (${response.$ref}): ${p}`);
    return answer;
  };
  const component = (name) => ({ $ref: `#/components/responses/${name}` });
  // HEAD goes around Prism: Prism parses the empty body of a HEAD answer whose Content-Type is JSON
  // and fails (stoplightio/prism#1361). Validated against the HEAD operation of `route`.
  const head = (what, route, req, status) => {
    const ref = { $ref: `#/paths/${route.replaceAll('~', '~0').replaceAll('/', '~1')}/head/responses/${status}` };
    return direct(what, { ...req, method: 'HEAD' }, status, ref);
  };

  try {
    const user = `/users/${id}`;
    if (part === 'budget') {
      await viaPrism('read, budget spent', { method: 'GET', path: user, headers: { 'X-Request-Timeout-Ms': '0' } }, 504);
      await head('head, budget spent', '/users/{id}', { path: user, headers: { 'X-Request-Timeout-Ms': '0' } }, 504);
      await viaPrism('write, budget spent', { method: 'PUT', path: user, headers: { ...json, 'X-Request-Timeout-Ms': '0' }, body: { name: 'C' } }, 504);
      await viaPrism('list, budget spent', { method: 'GET', path: '/users', headers: { 'X-Request-Timeout-Ms': '0' } }, 504);
      await viaPrism('read, budget not a number', { method: 'GET', path: user, headers: { 'X-Request-Timeout-Ms': 'soon' } }, 400, { invalidRequest: true });
      return { problems, covered: [...covered].sort() };
    }
    await viaPrism('create', { method: 'PUT', path: user, headers: json, body: { name: 'Alice' } }, 201);
    const updated = await viaPrism('replace', { method: 'PUT', path: user, headers: json, body: { id, name: 'Alice L' } }, 200);
    const tag = updated.headers.get('etag') ?? '"v0"';
    await viaPrism('read', { method: 'GET', path: user }, 200);
    await viaPrism('read, version unchanged', { method: 'GET', path: user, headers: { 'If-None-Match': tag } }, 304);
    await head('head', '/users/{id}', { path: user, headers: { 'X-Request-Id': `contract-${run}-head` } }, 200);
    await head('head, version unchanged', '/users/{id}', { path: user, headers: { 'If-None-Match': tag } }, 304);
    await viaPrism('read a missing user', { method: 'GET', path: `${user}-missing` }, 404);
    await head('head a missing user', '/users/{id}', { path: `${user}-missing` }, 404);
    await viaPrism('read, control character in the id', { method: 'GET', path: '/users/a%01b' }, 400);
    await head('head, control character in the id', '/users/{id}', { path: '/users/a%01b' }, 400);
    await viaPrism('read, malformed If-None-Match', { method: 'GET', path: user, headers: { 'If-None-Match': 'v5' } }, 400);
    await viaPrism('write, id other than the path\'s', { method: 'PUT', path: user, headers: json, body: { id: 'someone-else', name: 'A' } }, 400);
    await viaPrism('write, empty name', { method: 'PUT', path: user, headers: json, body: { name: '' } }, 400, { invalidRequest: true });
    await viaPrism('write, If-None-Match other than *', { method: 'PUT', path: user, headers: { ...json, 'If-None-Match': '"v1"' }, body: { name: 'A' } }, 400, { invalidRequest: true });
    await viaPrism('write, not JSON', { method: 'PUT', path: user, headers: { 'Content-Type': 'text/plain' }, body: 'Alice' }, 415, { invalidRequest: true });
    await viaPrism('write, body over 65536 bytes', { method: 'PUT', path: user, headers: json, body: { name: 'x'.repeat(70_000) } }, 413, { invalidRequest: true });
    await viaPrism('write, If-Match an old version', { method: 'PUT', path: user, headers: { ...json, 'If-Match': '"v1"' }, body: { name: 'B' } }, 412);
    await viaPrism('create only, user exists', { method: 'PUT', path: user, headers: { ...json, 'If-None-Match': '*' }, body: { name: 'B' } }, 412);
    await viaPrism('delete, If-Match an old version', { method: 'DELETE', path: user, headers: { 'If-Match': '"v1"' } }, 412);
    await viaPrism('delete, If-None-Match', { method: 'DELETE', path: user, headers: { 'If-None-Match': '*' } }, 400);
    await viaPrism('delete', { method: 'DELETE', path: user, headers: { 'If-Match': '*' } }, 204);
    await viaPrism('delete a missing user', { method: 'DELETE', path: user }, 404);
    await viaPrism('list', { method: 'GET', path: `/users?limit=2&after=${encodeURIComponent('contract-')}` }, 200);
    await head('list, head', '/users', { path: '/users?limit=2' }, 200);
    await viaPrism('list, limit 0', { method: 'GET', path: '/users?limit=0' }, 400, { invalidRequest: true });
    await head('list, head, limit 0', '/users', { path: '/users?limit=0' }, 400);
    for (const route of ['/health/live', '/health/ready']) {
      await viaPrism(route, { method: 'GET', path: route }, 200);
      await head(`${route}, head`, route, { path: route }, 200);
    }
    if (adminPrism) {
      for (const route of ['/metrics', '/config', '/health/live', '/health/ready']) {
        await viaPrism(`${route} on the admin listener`, { method: 'GET', path: route }, 200, { admin: true });
        await head(`${route} on the admin listener, head`, route, { path: route, base: adminUrl }, 200);
      }
      await direct('a users\' route on the admin listener', { method: 'GET', path: user, base: adminUrl }, 404, component('NoSuchRoute'));
      await direct('method not served on the admin listener', { method: 'PUT', path: '/config', base: adminUrl }, 405, component('MethodNotAllowed'));
    } else {
      problems.push('the admin listener was not checked (no admin URL)');
    }
    await direct('an operators\' route on the public listener', { method: 'GET', path: '/metrics' }, 404, component('NoSuchRoute'));
    await direct('unknown route', { method: 'GET', path: '/nowhere' }, 404, component('NoSuchRoute'));
    await direct('method not served', { method: 'POST', path: user, headers: json, body: { name: 'A' } }, 405, component('MethodNotAllowed'));
    await direct('method not served', { method: 'PUT', path: '/health/live' }, 405, component('MethodNotAllowed'));
    await direct('not HTTP', { method: 'GET', path: '/health/live', raw: 'GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n' }, 400, component('BadRequest'));
    await direct('header block over 16384 bytes', { method: 'GET', path: user, headers: { 'X-Padding': 'p'.repeat(17_000) } }, 431, component('HeaderTooLarge'));

    if (setEnabled) {
      // MariaDB away: every user route that needs it answers 503 with Retry-After; with the Redis
      // nodes away too, readiness is 503.
      await setEnabled('mysql', false);
      const gone = `${user}-while-mysql-is-down`;
      const refused = (a) => a.status === 503;
      await waitFor(() => send(serviceUrl, { method: 'GET', path: gone }), refused, 5_000);
      await viaPrism('read, MariaDB away', { method: 'GET', path: gone }, 503);
      await head('head, MariaDB away', '/users/{id}', { path: gone }, 503);
      await viaPrism('write, MariaDB away', { method: 'PUT', path: gone, headers: json, body: { name: 'D' } }, 503);
      await viaPrism('delete, MariaDB away', { method: 'DELETE', path: gone }, 503);
      await viaPrism('list, MariaDB away', { method: 'GET', path: '/users' }, 503);
      await head('list, head, MariaDB away', '/users', { path: '/users' }, 503);
      await setEnabled('redis-master', false);
      await setEnabled('redis-replica', false);
      await waitFor(() => send(serviceUrl, { method: 'GET', path: '/health/ready' }), refused, 10_000);
      await viaPrism('readiness, everything away', { method: 'GET', path: '/health/ready' }, 503);
      await head('readiness, head, everything away', '/health/ready', { path: '/health/ready' }, 503);
    } else {
      problems.push('the 503 cases were not run (no faultproxy to take MariaDB away)');
    }
  } finally {
    if (setEnabled) for (const p of ['mysql', 'redis-master', 'redis-replica']) await setEnabled(p, true).catch(() => {});
    await prism.stop();
    await adminPrism?.stop();
  }
  return { problems, covered: [...covered].sort() };
}

// Stand-alone: lints, then the checks against USER_SERVICE_URL (faultproxy at FAULTPROXY_URL).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { setEnabled } = await import('../support/faults.js');
  const { stack } = await import('../support/stack.js');
  const lint = await lintContract();
  const problems = [...lint];
  for (const part of ['statuses', 'budget']) {
    const result = await checkContract({ serviceUrl: stack.userServiceUrl, adminUrl: stack.adminUrl, setEnabled, part });
    problems.push(...result.problems);
    console.log(`contract (${part}): ${result.covered.length} method/status pairs checked: ${result.covered.join(', ')}`);
  }
  for (const p of problems) console.error(`contract: ${p}`);
  process.exit(problems.length ? 1 : 0);
}
