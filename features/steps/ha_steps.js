// Steps that check the HA stack itself (features/ha/stack.feature): Sentinel's view, Redis and
// MariaDB replication, HAProxy in front of the instances, and the stack's own commands (./dev
// restart, ./dev failover mysql). The stack and its helpers: support/ha.js.
import * as assert from '../support/check.js';

import { Given, Then, When } from '@cucumber/cucumber';

import {
  agreedRedisMaster, failoverMysql, ha, kill9, mariadbRole, mariadbRoles, mariadbSlaveStatus, mariadbValue, processState,
  redisInfo, redisNodeAt, redisRole, restart, resume, sentinelMasters, sentinelView, stop, viaHaproxy, withMariadb,
  withRedis,
} from '../support/ha.js';
import { call, describe, pollUntil } from '../support/service.js';

const runTag = `${process.pid}-${Date.now().toString(36)}`;
let fresh = 0;

// ------------------------------------------------------------------------------------------- Redis
Then('the 3 Sentinels name the same Redis master, through its proxy', async function () {
  const answers = await sentinelMasters();
  const values = Object.values(answers);
  assert.that(values.length === 3 && values.every((v) => v === values[0]), `the Sentinels disagree: ${JSON.stringify(answers)}`);
  this.redisMaster = redisNodeAt(values[0]);
  assert.that(this.redisMaster, `the Sentinels name ${values[0]}, which is no Redis node's proxy (${ha.redis.map((n) => `${n.name} 127.0.0.1:${n.proxyPort}`).join(', ')})`);
});

Then('that node answers ROLE as master and the 2 others as its replicas', async function () {
  assert.equal(await redisRole(this.redisMaster), 'master', `ROLE of ${this.redisMaster.name}`);
  for (const n of ha.redis.filter((x) => x !== this.redisMaster)) {
    const info = await redisInfo(n);
    assert.equal([info.role, info.master_port, info.master_link_status], ['slave', String(this.redisMaster.proxyPort), 'up'],
      `${n.name}: role, master port (the master's proxy) and link`);
  }
});

Then('each Sentinel sees 2 replicas and 2 other Sentinels', async function () {
  for (const s of ha.sentinels) {
    const v = await sentinelView(s);
    assert.equal([Number(v['num-slaves']), Number(v['num-other-sentinels']), v.flags], [2, 2, 'master'],
      `${s.name}: replicas, other sentinels and flags of '${ha.masterName}'`);
  }
});

When('a fresh value is set on the Redis master the Sentinels name', async function () {
  this.redisMaster = await agreedRedisMaster();
  assert.that(this.redisMaster, `the Sentinels do not agree on a master: ${JSON.stringify(await sentinelMasters())}`);
  this.redisKey = `ha-check-${runTag}-${++fresh}`;
  this.redisValue = `v-${Date.now()}`;
  await withRedis(this.redisMaster.port, (c) => c.sendCommand(['SET', this.redisKey, this.redisValue, 'EX', '60']));
});

Then('both Redis replicas return it within {int} ms', async function (ms) {
  for (const n of ha.redis.filter((x) => x !== this.redisMaster)) {
    let got;
    await pollUntil(async () => {
      got = await withRedis(n.port, (c) => c.sendCommand(['GET', this.redisKey]));
      return got === this.redisValue;
    }, { withinMs: ms, explain: () => `${n.name} returns ${JSON.stringify(got)} for ${this.redisKey}, not ${this.redisValue}` });
  }
});

// ------------------------------------------------------------------------------------------ MariaDB
async function primaryAndReplica() {
  const roles = await mariadbRoles();
  const primary = ha.mariadb.find((n) => roles[n.name] === 'primary');
  assert.that(primary, `no MariaDB node is writable: ${JSON.stringify(roles)}`);
  const replica = ha.mariadb.find((n) => n !== primary);
  assert.equal(roles[replica.name], 'replica', `the role of ${replica.name} (roles: ${JSON.stringify(roles)})`);
  return { primary, replica };
}

async function commitRow(node) {
  return withMariadb(node, async (c) => {
    await c.query('CREATE DATABASE IF NOT EXISTS ha_check');
    await c.query('CREATE TABLE IF NOT EXISTS ha_check.t (id VARCHAR(80) PRIMARY KEY, at BIGINT NOT NULL)');
    const id = `row-${runTag}-${++fresh}`;
    await c.query('INSERT INTO ha_check.t (id, at) VALUES (?, ?)', [id, Date.now()]);
    const [rows] = await c.query({ sql: 'SELECT @@last_gtid', rowsAsArray: true });
    return { id, gtid: String(rows[0][0]) };
  });
}

async function appliedWithin(replica, gtid, ms) {
  const started = performance.now();
  // MASTER_GTID_WAIT returns 0 once the replica has applied the GTID, -1 on timeout.
  const got = Number(await mariadbValue(replica, `SELECT MASTER_GTID_WAIT('${gtid}', ${ms / 1000})`));
  const status = got === 0 ? null : await mariadbSlaveStatus(replica);
  assert.equal(got, 0, `${replica.name} has not applied ${gtid} within ${ms} ms (gtid_slave_pos ${await mariadbValue(replica, 'SELECT @@gtid_slave_pos')}; IO ${status?.Slave_IO_Running}, SQL ${status?.Slave_SQL_Running}, ${status?.Last_IO_Error || status?.Last_SQL_Error || 'no error'})`);
  return performance.now() - started;
}

Then('semi-synchronous replication is on at the MariaDB primary, with {int} replica connected', async function (n) {
  const { primary } = await primaryAndReplica();
  const status = await withMariadb(primary, async (c) => Object.fromEntries((await c.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'"))[0].map((r) => [r.Variable_name, r.Value])), { user: 'admin' });
  assert.equal([status.Rpl_semi_sync_master_status, Number(status.Rpl_semi_sync_master_clients)], ['ON', n],
    `${primary.name}: Rpl_semi_sync_master_status and _clients`);
  assert.equal(await mariadbValue(primary, 'SELECT @@rpl_semi_sync_master_wait_point'), 'AFTER_SYNC', `${primary.name}'s wait point`);
});

When('a row is committed on the MariaDB primary', async function () {
  const { primary, replica } = await primaryAndReplica();
  this.mariadbPair = { primary, replica };
  this.row = await commitRow(primary);
  assert.that(this.row.gtid.startsWith('0-'), `@@last_gtid after the commit: '${this.row.gtid}'`);
});

Then('the MariaDB replica has applied its GTID within {int} ms', async function (ms) {
  const took = await appliedWithin(this.mariadbPair.replica, this.row.gtid, ms);
  const seen = await mariadbValue(this.mariadbPair.replica, `SELECT COUNT(*) FROM ha_check.t WHERE id = '${this.row.id}'`);
  assert.equal(Number(seen), 1, `the row ${this.row.id} on ${this.mariadbPair.replica.name}`);
  this.attach(`${this.mariadbPair.replica.name} applied ${this.row.gtid} in ${Math.round(took)} ms`);
});

Then('the MariaDB replica refuses a write', async function () {
  const { replica } = this.mariadbPair;
  let error;
  try {
    await withMariadb(replica, (c) => c.query('INSERT INTO ha_check.t (id, at) VALUES (?, 0)', [`refused-${runTag}-${++fresh}`]));
  } catch (err) {
    error = err;
  }
  assert.that(error && /read-only/i.test(error.message), `a write as root on ${replica.name} (read-only) was ${error ? `refused otherwise: ${error.message}` : 'accepted'}`);
});

Given('the MariaDB primary and its replica', async function () {
  this.mariadbPair = await primaryAndReplica();
  this.firstPair = this.mariadbPair;
});

When("{string} runs", async function (command) {
  assert.equal(command, './dev failover mysql', 'the only command this step runs');
  this.before = this.mariadbPair ?? (await primaryAndReplica());
  this.output = await failoverMysql();
  this.attach(this.output);
});

Then('the old replica is writable and the old primary is read-only', async function () {
  const { primary, replica } = this.before;
  assert.equal([await mariadbRole(replica), await mariadbRole(primary)], ['primary', 'replica'],
    `the roles of ${replica.name} and ${primary.name} after the failover:\n${this.output}`);
  this.mariadbPair = { primary: replica, replica: primary };
});

Then('a row committed on the new primary reaches the old primary within {int} ms', async function (ms) {
  const row = await commitRow(this.mariadbPair.primary);
  assert.that(row.gtid.startsWith(`0-${this.mariadbPair.primary.name.slice(-1)}-`), `the new primary's GTID ${row.gtid} should carry its server id`);
  await appliedWithin(this.mariadbPair.replica, row.gtid, ms);
  const status = await mariadbSlaveStatus(this.mariadbPair.replica);
  assert.equal(Number(status.Master_Port), this.mariadbPair.primary.proxyPort, `${this.mariadbPair.replica.name} replicates through the new primary's proxy`);
});

Then('the first primary is the primary again and its replica follows it', async function () {
  const { primary, replica } = this.firstPair;
  assert.equal([await mariadbRole(primary), await mariadbRole(replica)], ['primary', 'replica'],
    `the roles of ${primary.name} and ${replica.name} after failing back:\n${this.output}`);
  this.mariadbPair = this.firstPair;
  const row = await commitRow(primary);
  await appliedWithin(replica, row.gtid, 2000);
});

// ------------------------------------------------------------------------------------------ HAProxy
async function metricsRequests(name) {
  const a = await call('GET', '/metrics', { baseUrl: ha.instances.find((i) => i.name === name).adminUrl });
  let sum = 0;
  for (const line of a.text.split('\n')) {
    const m = line.match(/^user_service_http_requests_total\{(.*)\} (\d+(?:\.\d+)?)$/);
    if (m && m[1].includes('route="/users/{id}"')) sum += Number(m[2]);
  }
  return sum;
}

When('{int} requests for a user are made through HAProxy', async function (n) {
  const id = `ha-spread-${runTag}-${++fresh}`;
  this.metricsBefore = {};
  for (const i of ha.instances) this.metricsBefore[i.name] = await metricsRequests(i.name);
  this.servedBy = {};
  for (let k = 0; k < n; k++) {
    const a = await viaHaproxy('GET', `/users/${id}`);
    this.answers.push(a);
    assert.that(a.status === 404 || a.status === 200, `GET through HAProxy: ${describe(a)}`);
    const by = a.headers.get('x-served-by') ?? '(no X-Served-By)';
    this.servedBy[by] = (this.servedBy[by] ?? 0) + 1;
  }
});

Then('each of the 3 instances served some of them, by HAProxy\'s header and by its own metrics', async function () {
  for (const i of ha.instances) {
    assert.that(this.servedBy[i.name] > 0, `HAProxy's X-Served-By counts: ${JSON.stringify(this.servedBy)}`);
    const now = await metricsRequests(i.name);
    assert.that(now - this.metricsBefore[i.name] >= this.servedBy[i.name],
      `${i.name} counted ${now - this.metricsBefore[i.name]} requests for /users/{id}, HAProxy says it sent ${this.servedBy[i.name]}`);
  }
});

// A loop reading one stored user through HAProxy, keeping every answer with its time.
Given('a stored user is read through HAProxy without pause', async function () {
  const id = `ha-reader-${runTag}-${++fresh}`;
  const put = await viaHaproxy('PUT', `/users/${id}`, { body: { name: 'Ann' } });
  assert.equal(put.status, 201, `PUT through HAProxy: ${describe(put)}`);
  this.reader = { id, answers: [], stop: false };
  const loop = async () => {
    while (!this.reader.stop) {
      const at = performance.now();
      let a;
      try {
        a = await viaHaproxy('GET', `/users/${id}`, { hangMs: 5000 });
      } catch (err) {
        a = { method: 'GET', path: `/users/${id}`, status: 0, headers: new Headers(), text: err.message, ms: performance.now() - at };
      }
      this.reader.answers.push({ at, a });
    }
  };
  this.reader.done = loop();
  this.cleanups = [...(this.cleanups ?? []), () => { this.reader.stop = true; }];
  await pollUntil(async () => this.reader.answers.length >= 3, { withinMs: 5000 });
});

When('{string} is killed with SIGKILL', async function (name) {
  const pid = await kill9(name);
  this.faultAt = performance.now();
  this.attach(`${name} (pid ${pid}) killed`);
});

Then('for {int} s every read through HAProxy is answered {int} within {int} ms', async function (seconds, status, ms) {
  const from = this.faultAt ?? performance.now();
  const until = from + seconds * 1000;
  while (performance.now() < until) await new Promise((r) => setTimeout(r, 50));
  // The read in flight at the kill counts too: it started before `from` but ended after.
  const window = this.reader.answers.filter(({ at, a }) => at + a.ms >= from && at <= until);
  assert.that(window.length >= 5, `only ${window.length} reads in ${seconds} s`);
  const bad = window.filter(({ a }) => a.status !== status || a.ms > ms || a.json?.name !== 'Ann');
  assert.that(bad.length === 0, () => `${bad.length} of ${window.length} reads failed or were slow:\n${bad.slice(0, 5).map(({ a }) => `  ${describe(a)}`).join('\n')}`);
  const slowest = Math.max(...window.map(({ a }) => a.ms));
  this.attach(`${window.length} reads in ${seconds} s after the fault, the slowest ${Math.round(slowest)} ms`);
});

When('{string} is stopped with SIGSTOP', async function (name) {
  const pid = await stop(name);
  this.faultAt = performance.now();
  this.attach(`${name} (pid ${pid}) stopped`);
});

When('{string} is continued with SIGCONT', async function (name) {
  await resume(name);
});

// HAProxy's health checks (inter 250 ms, fall 2, timeout check 500 ms) take a stopped instance out.
Then('HAProxy sends no request to {string} from {int} s after it stopped', async function (name, seconds) {
  const from = this.faultAt + seconds * 1000;
  const upTo = performance.now();
  assert.that(upTo > from + 500, `the scenario did not wait past ${seconds} s after the stop`);
  const after = this.reader.answers.filter(({ at }) => at >= from && at <= upTo);
  const sent = after.filter(({ a }) => a.headers.get('x-served-by') === name);
  assert.that(after.length >= 3, `only ${after.length} reads after ${seconds} s`);
  assert.that(sent.length === 0, `${sent.length} of ${after.length} reads started ${seconds} s after the stop were served by ${name}`);
});

When("{string} brings it back", async function (command) {
  const m = command.match(/^\.\/dev restart (\S+)$/);
  assert.that(m, `not a './dev restart <component>' command: ${command}`);
  this.attach(await restart(m[1]));
  assert.equal(processState(m[1]), 'running', `${m[1]} after ${command}`);
});

Then('HAProxy sends requests to {string} again within {int} s', async function (name, seconds) {
  let seen = {};
  await pollUntil(async () => {
    const a = await viaHaproxy('GET', '/health/live');
    const by = a.headers.get('x-served-by');
    seen[by] = (seen[by] ?? 0) + 1;
    return by === name;
  }, { withinMs: seconds * 1000, everyMs: 20, explain: () => `HAProxy served only from ${JSON.stringify(seen)}` });
  this.reader.stop = true;
  await this.reader.done;
  const failed = this.reader.answers.filter(({ a }) => a.status !== 200);
  assert.that(failed.length === 0, () => `reads failed while ${name} was away:\n${failed.slice(0, 5).map(({ a }) => `  ${describe(a)}`).join('\n')}`);
  seen = {};
});
