// Generic fault steps, for any proxy of the stack, driven through faultproxy's Toxiproxy API with
// toxiproxy-node-client. Toxic semantics are Toxiproxy's: a toxic acts on the downstream stream
// (dependency -> service) unless the step says `upstream`.
import * as assert from '../support/check.js';

import { Given, When } from '@cucumber/cucumber';

import * as faults from '../support/faults.js';
import { DEPENDENCY_OF_PROXY, call, describe, pollUntil, readiness } from '../support/service.js';
import { PROXIES, proxyName } from '../support/stack.js';

// The call deadline the service applies to the dependency behind a proxy.
export function deadlineOf(world, proxy) {
  return proxy === 'mysql' ? world.settings.mariadbDeadlineMs : world.settings.redisDeadlineMs;
}

// "Latency under the deadline": the failure matrix's 100 ms for MariaDB (a fifth of its 500 ms) and
// 30 ms for Redis (under a third of its 100 ms): several round trips of it still fit in one call.
// "Over the deadline": four times the deadline (the matrix's 2 s for MariaDB).
const UNDER = { mysql: 0.2, 'redis-master': 0.3, 'redis-replica': 0.3 };
const OVER = 4;

async function toxic(world, spelled, kind, spec) {
  const proxy = proxyName(spelled);
  await faults.addToxic(proxy, spec, world);
  world.noteFault(proxy, kind);
}

Given(/^'([^']+)' is down$/, async function (spelled) {
  const proxy = proxyName(spelled);
  await faults.setEnabled(proxy, false, this);
  this.noteFault(proxy, 'down');
});

Given(/^every dependency is down$/, async function () {
  for (const proxy of PROXIES) {
    await faults.setEnabled(proxy, false, this);
    this.noteFault(proxy, 'down');
  }
});

// Heals the proxy (toxics removed, enabled): the article's "'X' is up", nothing more. The moment it
// came back is kept, so later steps can measure from it; what the service does about it is for them.
function heal(world, proxy) {
  world.enabledAt.set(proxy, performance.now());
  world.faults.delete(proxy);
}

Given(/^'([^']+)' is (?:up|healthy again)$/, async function (spelled) {
  const proxy = proxyName(spelled);
  await faults.heal(proxy);
  heal(this, proxy);
});

Given(/^every dependency is up again$/, async function () {
  for (const proxy of PROXIES) {
    await faults.heal(proxy);
    heal(this, proxy);
  }
});

// For a scenario that means "once the service uses it again" (not the article's "is up"): polls, up
// to the contract's 1 s (plus margin) from the proxy's return, until /health/ready reports the
// dependency up and, for MariaDB, a read of a user nobody has (a cache miss, so MariaDB answers) comes
// back 404 (/health/ready alone can say "up" while the connections a brief outage closed are still
// being re-established).
let probes = 0;
When(/^the service is using '([^']+)' again$/, async function (spelled) {
  const proxy = proxyName(spelled);
  const since = this.enabledAt.get(proxy);
  assert.that(since !== undefined, `'${proxy}' was not brought back in this scenario`);
  const dep = DEPENDENCY_OF_PROXY[proxy];
  let last;
  await pollUntil(
    async () => {
      if (proxy === 'mysql') {
        last = await call('GET', `/users/nobody-${process.pid}-${++probes}`);
        if (last.status !== 404) return false;
      }
      const ready = await readiness();
      last = ready.answer;
      return ready.states[dep] === 'up';
    },
    {
      withinMs: Math.max(0, this.settings.bounds.recovery - (performance.now() - since)),
      explain: () => `'${proxy}' is up again, but the service does not use it yet; last: ${describe(last)}`,
    },
  );
});

Given(/^'([^']+)' has latency of (\d+) ms(?: ± (\d+) ms)?( upstream)?$/, async function (spelled, latency, jitter, upstream) {
  await toxic(this, spelled, 'latency', {
    type: 'latency',
    stream: upstream ? 'upstream' : 'downstream',
    attributes: { latency: Number(latency), jitter: Number(jitter ?? 0) },
  });
});

Given(/^'([^']+)' has latency (under|over) its deadline$/, async function (spelled, which) {
  const proxy = proxyName(spelled);
  const deadline = deadlineOf(this, proxy);
  const latency = Math.round(which === 'under' ? deadline * UNDER[proxy] : deadline * OVER);
  await toxic(this, spelled, 'latency', { type: 'latency', attributes: { latency, jitter: 0 } });
});

// Toxiproxy's timeout toxic: with no time given, data is held forever (a blackhole); with one, the
// connection is closed that long after the last data.
Given(/^'([^']+)' times out(?: after (\d+) ms)?$/, async function (spelled, after) {
  await toxic(this, spelled, 'timeout', { type: 'timeout', attributes: { timeout: Number(after ?? 0) } });
});

Given(/^'([^']+)' resets connections(?: after (\d+) ms)?$/, async function (spelled, after) {
  await toxic(this, spelled, 'reset_peer', { type: 'reset_peer', attributes: { timeout: Number(after ?? 0) } });
});

Given(/^'([^']+)' closes slowly after (\d+) ms$/, async function (spelled, delay) {
  await toxic(this, spelled, 'slow_close', { type: 'slow_close', attributes: { delay: Number(delay) } });
});

Given(/^'([^']+)' is limited to (\d+) KB\/s$/, async function (spelled, rate) {
  await toxic(this, spelled, 'bandwidth', { type: 'bandwidth', attributes: { rate: Number(rate) } });
});

// Slices of exactly <n> bytes, 50 us apart, so they travel as separate segments.
Given(/^'([^']+)' slices packets into (\d+) bytes$/, async function (spelled, size) {
  await toxic(this, spelled, 'slicer', { type: 'slicer', attributes: { average_size: Number(size), size_variation: 0, delay: 50 } });
});

Given(/^'([^']+)' cuts connections after (\d+) bytes$/, async function (spelled, bytes) {
  await toxic(this, spelled, 'limit_data', { type: 'limit_data', attributes: { bytes: Number(bytes) } });
});
