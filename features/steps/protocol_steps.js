// Steps for faults as real outages show them to the service (protocol-faults.feature,
// network-faults.feature): Redis and MariaDB error replies (faultproxy's redis_error and mysql_error),
// loss (packet_loss, tcp_loss), slow connection set-up (slow_open) and outages that end by
// themselves (a toxic's duration_ms). Driven through toxiproxy-node-client like every fault step.
import * as assert from '../support/check.js';

import { Given, Then, When } from '@cucumber/cucumber';

import * as data from '../support/data.js';
import * as faults from '../support/faults.js';
import { DEPENDENCY_OF_PROXY, call, describe, pollUntil, readiness, successfulCalls } from '../support/service.js';
import { proxyName, stack } from '../support/stack.js';
import { untilServedAsStored } from './matrix_steps.js';

async function toxic(world, proxy, kind, spec) {
  const added = await faults.addToxic(proxy, spec, world);
  world.noteFault(proxy, kind);
  return added;
}

// ------------------------------------------------------------------------------- Redis error replies
// The replies a Redis node gives while it cannot serve (the texts Redis sends).
const REDIS_ERRORS = {
  READONLY: "READONLY You can't write against a read only replica.",
  LOADING: 'LOADING Redis is loading the dataset in memory',
  OOM: "OOM command not allowed when used memory > 'maxmemory'.",
  MASTERDOWN: "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
};
// The commands the service's cache writes and reads are made of: every cache change is one script
// (EVALSHA, EVAL after NOSCRIPT); a read is one HMGET.
const REDIS_COMMANDS = { 'cache writes': 'EVALSHA,EVAL', 'cache reads': 'HMGET' };

Given(/^'([^']+)' answers (cache writes|cache reads) with (READONLY|LOADING|OOM|MASTERDOWN)$/, async function (spelled, what, error) {
  await toxic(this, proxyName(spelled), 'redis_error', {
    type: 'redis_error',
    attributes: { commands: REDIS_COMMANDS[what], error: REDIS_ERRORS[error] },
  });
  this.callsAtFault = await dependencyCalls();
});

// ----------------------------------------------------------------------------- MariaDB error replies
const MYSQL_ERRORS = {
  'a deadlock': 1213,
  'a lock wait timeout': 1205,
  'read-only': 1290,
  // A client library code: faultproxy cuts the connection in the statement's answer (after the
  // first packet of a result set), which the client reports as 2013, "Lost connection to server
  // during query": the connection killed mid-result.
  'a connection cut mid-result': 2013,
};
// The service's statements, as it prepares them (src/user_service/mysql_store.h). Its probe
// (`SELECT 1 FROM ...`) matches only 'every statement'.
const STATEMENTS = { writes: '^\\s*(insert|update|delete)\\b', 'reads of users': '^\\s*select\\s+`name`', 'every statement': '' };

// The service prepares its statements once per connection, and a protocol toxic recognises an
// execution only if it saw the statement being prepared: the proxy's connections are closed after
// the toxics are in place, and the step returns once the service has reconnected, so that every
// connection the service uses from then on was seen from its start.
async function reconnectThroughToxics(world, proxy) {
  await closeConnections(world, proxy);
  await untilReconnected(world, proxy);
}

// Closes the proxy's connections (the service must open new ones) and notes the dependency's
// successful calls so far.
async function closeConnections(world, proxy) {
  world.callsAtClose = (await successfulCalls())[DEPENDENCY_OF_PROXY[proxy]] ?? 0;
  await faults.dropConnections(proxy);
  world.enabledAt.set(proxy, performance.now());
}

// Reconnected: two successful calls (a probe at the latest) since the connections were closed,
// both on connections opened since, and /health/ready says the dependency is up; within the
// contract's 1 s (plus margin) of the closing.
async function untilReconnected(world, proxy) {
  const dep = DEPENDENCY_OF_PROXY[proxy];
  const since = world.enabledAt.get(proxy);
  let last;
  await pollUntil(
    async () => {
      const now = (await successfulCalls())[dep] ?? 0;
      if (now < world.callsAtClose + 2) return false;
      last = await readiness();
      return last.states[dep] === 'up';
    },
    {
      withinMs: Math.max(0, world.settings.bounds.recovery - (performance.now() - since)),
      explain: () => `the service did not reconnect to '${proxy}'; /health/ready: ${describe(last?.answer)}`,
    },
  );
}

async function mysqlError(world, what, error) {
  return toxic(world, 'mysql', 'mysql_error', {
    type: 'mysql_error',
    attributes: { statement: STATEMENTS[what], code: MYSQL_ERRORS[error] },
  });
}

Given(/^'mysql' answers (writes|reads of users|every statement) with (a deadlock|a lock wait timeout|read-only|a connection cut mid-result)$/, async function (what, error) {
  await mysqlError(this, what, error);
  if (what === 'every statement') {
    await closeConnections(this, 'mysql');  // nothing succeeds now: no reconnection to wait for
  } else {
    await reconnectThroughToxics(this, 'mysql');
  }
  this.callsAtFault = await dependencyCalls();
});

// Only the first try of a write meets the error: every write statement is held for half the MariaDB
// deadline (mysql_delay, ahead of the error in the chain), and the error toxic is removed as soon as
// faultproxy counts its first answer, while the service's second try is still held. Half a deadline
// is the catalog's margin to remove it; each try still has the other half to spare.
Given(/^'mysql' answers the first try of a write with (a deadlock|a lock wait timeout)$/, async function (error) {
  const hold = Math.round(this.settings.mariadbDeadlineMs / 2);
  await toxic(this, 'mysql', 'mysql_delay', { type: 'mysql_delay', attributes: { statement: STATEMENTS.writes, latency: hold, jitter: 0 } });
  const errorToxic = await mysqlError(this, 'writes', error);
  await reconnectThroughToxics(this, 'mysql');
  this.callsAtFault = await dependencyCalls();
  const before = await faults.toxicActions('mysql', 'mysql_error');
  const watch = { stop: false };
  this.cleanups = [...(this.cleanups ?? []), () => { watch.stop = true; }];
  this.firstTryWatch = (async () => {
    while (!watch.stop) {
      if ((await faults.toxicActions('mysql', 'mysql_error')) > before) {
        await faults.removeToxic('mysql', errorToxic);
        return performance.now();
      }
      await new Promise((resolve) => { setTimeout(resolve, 2); });
    }
    return null;
  })();
});

Then(/^the error answered only the first try$/, async function () {
  const removedAt = await this.firstTryWatch;
  assert.that(removedAt !== null, 'the error toxic never answered a statement: the write did not reach it');
});

// ------------------------------------------------------------------------------------ the service's metrics
// user_service_dependency_calls_total by dependency and outcome, and the write retries (GET /metrics
// on the admin listener).
async function dependencyCalls() {
  const answer = await call('GET', '/metrics', { baseUrl: stack.adminUrl });
  const out = { calls: {}, writeRetries: 0 };
  for (const line of answer.text.split('\n')) {
    const m = line.match(/^user_service_dependency_calls_total\{dependency="([^"]+)",outcome="([^"]+)"\} (\d+(?:\.\d+)?)/);
    if (m) out.calls[`${m[1]}/${m[2]}`] = Number(m[3]);
    const r = line.match(/^user_service_mysql_write_retries_total (\d+(?:\.\d+)?)/);
    if (r) out.writeRetries = Number(r[1]);
  }
  return out;
}

Then(/^the service made the write (once|a second time)$/, async function (times) {
  const now = await dependencyCalls();
  const retries = now.writeRetries - this.callsAtFault.writeRetries;
  assert.equal(retries, times === 'once' ? 0 : 1, `user_service_mysql_write_retries_total went up by ${retries} since the fault`);
});

Then(/^the service counted a failed call to '([^']+)'$/, async function (spelled) {
  const dep = DEPENDENCY_OF_PROXY[proxyName(spelled)];
  const now = await dependencyCalls();
  const failed = (c) => Object.entries(c.calls).filter(([k]) => k.startsWith(`${dep}/`) && !k.endsWith('/ok')).reduce((sum, [, v]) => sum + v, 0);
  assert.that(failed(now) > failed(this.callsAtFault), `no failed call to ${dep} was counted since the fault (user_service_dependency_calls_total)`);
});

Then(/^its error says that nothing was written$/, async function () {
  const a = this.answers[0];
  assert.equal(a.status, 503, describe(a));
  assert.equal(a.json?.outcome, 'not_applied', `a 503 that does not say the write was not applied: ${describe(a)}`);
  assert.that(/nothing was written/.test(a.json?.error ?? ''), `the 503's error does not say that nothing was written: ${describe(a)}`);
});

// The service's probe fails as the requests do (every statement's answer is cut: a fast failure), so
// the breaker opens without a request, and the next request may be its half-open trial.
Given(/^the MariaDB breaker has opened after fast failures$/, async function () {
  let last;
  await pollUntil(
    async () => {
      last = await readiness();
      return last.answer.json?.dependencies?.mysql?.breaker === 'open';
    },
    { withinMs: this.settings.bounds.notice, explain: () => `the MariaDB breaker did not open: ${describe(last?.answer)}` },
  );
});

Then(/^its error says that MariaDB received the write and may have applied it$/, async function () {
  const a = this.answers[0];
  assert.equal(a.status, 503, describe(a));
  assert.equal(a.json?.outcome, 'unknown', `a 503 that does not say the write may have been applied: ${describe(a)}`);
  const error = a.json?.error ?? '';
  assert.that(/may or may not have been applied/.test(error), `the 503's error does not say the write may have been applied: ${describe(a)}`);
  assert.that(!/MariaDB unavailable/.test(error), `the 503 says MariaDB was not called, yet it received the write: ${describe(a)}`);
});

// An autocommit statement commits before MariaDB sends its answer, and the cut comes with the
// answer's first packet: the write has landed.
Then(/^MariaDB holds what was written$/, async function () {
  const stored = await data.storedUser(this.userId);
  assert.equal(stored?.name, this.newName, `MariaDB holds ${JSON.stringify(stored)}, not the write's name`);
});

// ------------------------------------------------------------------------------------------------ loss
Given(/^'([^']+)' loses (\d+) % of its packets$/, async function (spelled, percent) {
  await toxic(this, proxyName(spelled), 'packet_loss', { type: 'packet_loss', attributes: { loss_rate: Number(percent) / 100, correlation: 0 } });
});

// TCP's view of loss: nothing is lost, each lost segment stalls its direction for the retransmission
// timeout (200 ms, doubling within a burst).
Given(/^'([^']+)' stalls as TCP does at (\d+) % loss$/, async function (spelled, percent) {
  await toxic(this, proxyName(spelled), 'tcp_loss', { type: 'tcp_loss', attributes: { loss_rate: Number(percent) / 100, burst: 1, rto_ms: 200 } });
});

// ------------------------------------------------------------------------------------ slow connects
function connectTimeoutOf(world, proxy) {
  const raw = world.settings.raw;
  const ms = proxy === 'mysql' ? raw.mysql?.connect_timeout_ms : raw.redis?.connect_timeout_ms;
  assert.that(Number.isFinite(ms), `GET /config lacks the connect timeout of '${proxy}'`);
  return ms;
}

// slow_open: every new connection through the proxy waits before it is connected upstream; open
// ones are untouched. Then the proxy's connections are closed, so the service must reconnect.
Given(/^'([^']+)' opens new connections in (half|twice) its connect timeout$/, async function (spelled, how) {
  const proxy = proxyName(spelled);
  const timeout = connectTimeoutOf(this, proxy);
  await toxic(this, proxy, 'slow_open', { type: 'slow_open', attributes: { delay: how === 'half' ? Math.round(timeout / 2) : timeout * 2 } });
});

Given(/^the connections to '([^']+)' are closed$/, async function (spelled) {
  const proxy = proxyName(spelled);
  await closeConnections(this, proxy);
  this.noteFault(proxy, 'connections closed');
});

When(/^the service has reconnected to '([^']+)'$/, async function (spelled) {
  await untilReconnected(this, proxyName(spelled));
});

// ------------------------------------------------------------------------------- outages that end alone
// A toxic with faultproxy's `duration_ms`: it removes itself, no step heals the proxy.
Given(/^'([^']+)' times out for (\d+) ms, then recovers by itself$/, async function (spelled, ms) {
  const proxy = proxyName(spelled);
  await toxic(this, proxy, 'timeout', { type: 'timeout', attributes: { timeout: 0 }, durationMs: Number(ms) });
  this.outageEndsAt = performance.now() + Number(ms);
  this.outageProxy = proxy;
});

// First the toxic must be gone by the end of its window (faultproxy removes it; 1 s of margin for
// this machine), then the user served as stored within `seconds` (plus margin) of that end.
Then(/^within (\d+) s of the outage's end, without any step healing it, that user is served as stored$/, async function (seconds) {
  const proxy = this.outageProxy;
  let left;
  await pollUntil(
    async () => {
      left = await faults.listToxics(proxy);
      return left.length === 0;
    },
    { withinMs: Math.max(0, this.outageEndsAt - performance.now()) + 1000, explain: () => `'${proxy}' still has toxics after the outage's end: ${JSON.stringify(left)}` },
  );
  const ambiguous = this.faults.has('mysql') && ['write', 'delete'].includes(this.operation)
    && this.answers.some((a) => a.status === 503);
  const bound = this.outageEndsAt - performance.now() + Number(seconds) * 1000 + (this.settings.bounds.recovery - 1000);
  await untilServedAsStored(this, Math.max(0, bound), ambiguous);
});

// The answer just checked came back while the outage lasted (so it is the outage's answer).
Then(/^it was answered during the outage$/, async function () {
  assert.that(performance.now() < this.outageEndsAt,
    `the outage ended ${Math.round(performance.now() - this.outageEndsAt)} ms before the answer was checked: this machine was too slow for the scenario to show anything`);
});
