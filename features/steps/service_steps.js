// Steps about the service as a whole: readiness and liveness, a second instance started with every
// dependency down, and faults that strike while a request is in flight.
import * as assert from '../support/check.js';

import { Given, Then, When } from '@cucumber/cucumber';

import { perform } from '../support/answers.js';
import * as data from '../support/data.js';
import * as faults from '../support/faults.js';
import { startInstance } from '../support/instances.js';
import { DEPENDENCY_OF_PROXY, call, describe, pollUntil, readiness } from '../support/service.js';
import { PROXIES, proxyName, stack } from '../support/stack.js';

// ----------------------------------------------------------------------------------------- readiness
Then('the service has noticed that {string} is not up', async function (spelled) {
  const dep = DEPENDENCY_OF_PROXY[proxyName(spelled)];
  let last;
  await pollUntil(
    async () => {
      last = await readiness();
      return last.states[dep] !== undefined && last.states[dep] !== 'up';
    },
    { withinMs: this.settings.bounds.notice, explain: () => `/health/ready still says ${dep} is up: ${describe(last?.answer)}` },
  );
});

// Polls only /health/ready: the service must find out by its own background probes.
Then('within {int} s, without any request, the service reports {string} up', async function (seconds, spelled) {
  const proxy = proxyName(spelled);
  const dep = DEPENDENCY_OF_PROXY[proxy];
  const since = this.enabledAt.get(proxy);
  assert.that(since !== undefined, `'${proxy}' was not brought back in this scenario`);
  let last;
  const bound = seconds * 1000 + (this.settings.bounds.recovery - 1000);
  const took = await pollUntil(
    async () => {
      last = await readiness();
      return last.states[dep] === 'up';
    },
    { withinMs: Math.max(0, bound - (performance.now() - since)), everyMs: 20, explain: () => `/health/ready: ${describe(last?.answer)}` },
  );
  this.attach(`'${proxy}' reported up ${Math.round(performance.now() - since)} ms after it came back (${Math.round(took)} ms of polling)`);
});

Then('user-service is still live', async function () {
  const a = await call('GET', '/health/live');
  assert.equal(a.status, 200, `GET /health/live: ${describe(a)}`);
});

// -------------------------------------------------------------------------------- a second instance
When('a second user-service starts', async function () {
  this.instance = await startInstance('startup');
  this.databasesToDrop = [this.instance.database];
});

Then('it listens and is live within {int} s', async function (seconds) {
  const i = this.instance;
  let last;
  await pollUntil(
    async () => {
      assert.equal(i.exited, null, `the second user-service exited (${JSON.stringify(i.exited)}) during start-up; see ${i.log}`);
      last = await call('GET', '/health/live', { baseUrl: i.url, hangMs: 2000 });
      return last.status === 200;
    },
    { withinMs: seconds * 1000, everyMs: 50, explain: () => `GET /health/live: ${last ? describe(last) : 'no answer yet'}; see ${i.log}` },
  );
});

Then('it reports not ready, naming every dependency down', async function () {
  const { answer, states } = await readiness(this.instance.url);
  assert.equal(answer.status, 503, `GET /health/ready: ${describe(answer)}`);
  for (const proxy of PROXIES) {
    const dep = DEPENDENCY_OF_PROXY[proxy];
    assert.equal(states[dep], 'down', `/health/ready should name ${dep} down: ${describe(answer)}`);
  }
});

Then('it answers a request for a user with 503', async function () {
  const a = await call('GET', '/users/u-startup', { baseUrl: this.instance.url });
  assert.equal(a.status, 503, describe(a));
  assert.that(a.headers.get('retry-after'), `a 503 without Retry-After: ${describe(a)}`);
  assert.that(a.ms <= this.settings.bounds.request, `answered after ${Math.round(a.ms)} ms: ${describe(a)}`);
});

Then('within {int} s the second user-service reports every dependency up', async function (seconds) {
  const since = Math.max(...this.enabledAt.values());
  let last;
  const bound = seconds * 1000 + (this.settings.bounds.recovery - 1000);
  await pollUntil(
    async () => {
      last = await readiness(this.instance.url);
      return last.answer.status === 200 && PROXIES.every((p) => last.states[DEPENDENCY_OF_PROXY[p]] === 'up');
    },
    { withinMs: Math.max(0, bound - (performance.now() - since)), everyMs: 20, explain: () => `/health/ready: ${describe(last?.answer)}` },
  );
});

Then('the second user-service stores and serves a user in its own new database', async function () {
  const url = this.instance.url;
  const put = await call('PUT', '/users/u-startup', { baseUrl: url, body: { name: 'Ann' } });
  assert.equal(put.status, 201, `PUT: ${describe(put)}`);
  const get = await call('GET', '/users/u-startup', { baseUrl: url });
  assert.equal(get.status, 200, `GET: ${describe(get)}`);
  assert.equal(get.json?.name, 'Ann', `GET: ${describe(get)}`);
  const [rows] = await (await data.mariadb()).query(`SELECT name FROM \`${this.instance.database}\`.\`user\` WHERE id = ?`, ['u-startup']);
  assert.equal(rows[0]?.name, 'Ann', `the user is not in ${this.instance.database}.user`);
});

// ------------------------------------------------------------------------------ faults mid-request
const OP = '(cached read|uncached read|write|delete)';

async function receivedBytes(proxy) {
  const res = await fetch(`${stack.faultproxyUrl}/metrics`);
  const text = await res.text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('toxiproxy_proxy_received_bytes_total{')) continue;
    if (!line.includes(`proxy="${proxy}"`) || !line.includes('direction="upstream"')) continue;
    seen = true;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  if (!seen) throw new Error(`faultproxy's /metrics has no toxiproxy_proxy_received_bytes_total{direction="upstream",proxy="${proxy}"}`);
  return sum;
}

Given(/^'([^']+)' has latency of half its deadline$/, async function (spelled) {
  const proxy = proxyName(spelled);
  const deadline = proxy === 'mysql' ? this.settings.mariadbDeadlineMs : this.settings.redisDeadlineMs;
  await faults.addToxic(proxy, { type: 'latency', attributes: { latency: Math.round(deadline / 2), jitter: 0 } }, this);
  this.noteFault(proxy, 'latency');
});

When(new RegExp(`^the ${OP} is started$`), async function (op) {
  this.operation = op;
  this.baseline = Object.fromEntries(await Promise.all(PROXIES.map(async (p) => [p, await receivedBytes(p)])));
  this.inflight = { settled: false };
  this.inflight.promise = perform(op, this).finally(() => {
    this.inflight.settled = true;
  });
});

// Waits (polling faultproxy's byte counters) until the request's traffic has reached the proxy, then
// takes the proxy down while the answer is still held back by latency.
When(/^once the request has reached '([^']+)', it goes down$/, async function (spelled) {
  const proxy = proxyName(spelled);
  await pollUntil(async () => (await receivedBytes(proxy)) > this.baseline[proxy], {
    withinMs: this.settings.bounds.request,
    everyMs: 5,
    explain: () => `no traffic reached '${proxy}'`,
  });
  assert.equal(this.inflight.settled, false, `the request was answered before '${proxy}' could be taken down; the latency toxic did not hold it`);
  await faults.setEnabled(proxy, false, this);
  this.noteFault(proxy, 'down mid-request');
});

When('its answer arrives', async function () {
  await this.inflight.promise;
});
