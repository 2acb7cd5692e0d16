// Steps of features/ha/failover.feature: what user-service promises over Sentinel, a replicated
// MariaDB and several instances, while the catalog kills, stops, partitions and restarts parts of the
// HA stack (support/ha.js). Every bound comes from a configured deadline (GET /config, the Sentinels'
// own settings) plus a margin for this loaded 2-core machine; every wait polls toward its bound.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { Given, Then, When } from '@cucumber/cucumber';

import * as assert from '../support/check.js';
import {
  agreedRedisMaster, COMPONENTS, ha, kill9, mariadbRole, mariadbRoles, mariadbSlaveStatus, mariadbValue, processState,
  redisInfo, resume, sentinelMasters, sentinelView, start, stop, viaHaproxy, viaInstance, withRedis,
} from '../support/ha.js';
import { attachApplied } from '../support/faults.js';
import { describe, pollUntil, readiness } from '../support/service.js';

const runTag = `${process.pid}-${Date.now().toString(36)}`;
let fresh = 0;
const newId = (what) => `ha-${what}-${runTag}-${++fresh}`;
const instanceByName = (name) => ha.instances.find((i) => i.name === name);

// ------------------------------------------------------------------------------------------ bounds
// The cross-instance coherence bound of the README (1 s after an acknowledged write) plus a margin.
function bounds(world) {
  const s = world.settings;
  const cfg = s.raw;
  return {
    ...s.bounds,
    coherence: 1000 + 1000,
    // A write refused for want of a primary: at most one MariaDB call deadline, plus margin.
    fastRefusal: Math.round(s.mariadbDeadlineMs + Math.max(300, s.mariadbDeadlineMs * 0.3)),
    // An instance sees a new Redis master by +switch-master, or at worst its periodic discovery.
    discovery: (cfg.redis?.discovery_interval_ms ?? 1000) + (cfg.redis?.discovery_deadline_ms ?? 100) * 3 + 2000,
    lease: (cfg.cache?.feed_lease_ms ?? 600) * 2 + 2000,
    // Through HAProxy while an instance hangs: HAProxy waits its `timeout server` for it, then retries
    // on another instance, which answers within the request deadline.
    haproxyRetry: haproxyTimeoutServerMs() + s.bounds.request,
  };
}

function haproxyTimeoutServerMs() {
  const cfg = fs.readFileSync(path.join(ha.stackDir, 'haproxy.cfg'), 'utf8');
  const m = /^\s*timeout server\s+(\d+)(ms|s)?\s*$/m.exec(cfg);
  assert.that(m, `no 'timeout server' in ${path.join(ha.stackDir, 'haproxy.cfg')}`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

// How long the Sentinels may take to promote a replica: their own down-after and failover timeout.
async function sentinelFailoverBound() {
  const v = await sentinelView(ha.sentinels[0]);
  return Number(v['down-after-milliseconds']) + Number(v['failover-timeout']) + 5000;
}

// ------------------------------------------------------------------------------------ observations
async function topology(instance) {
  const r = await readiness(instance.url);
  return r.answer.json?.topology ?? {};
}

// The cached copy of a user on a Redis node (its real port), as { name, version }, or null.
async function cachedOn(world, node, id) {
  const reply = await withRedis(node.port, (c) => c.sendCommand(['HGETALL', `${world.settings.cacheKeyPrefix}${id}`]));
  const o = {};
  if (Array.isArray(reply)) for (let k = 0; k + 1 < reply.length; k += 2) o[String(reply[k])] = String(reply[k + 1]);
  else if (reply) for (const [k, v] of Object.entries(reply instanceof Map ? Object.fromEntries(reply) : reply)) o[k] = String(v);
  return o.name === undefined ? null : o;
}

async function putUser(world, id, name, via = viaHaproxy) {
  const a = await via('PUT', `/users/${id}`, { body: { name }, hangMs: 5000 });
  world.answers.push(a);
  assert.that(a.status === 200 || a.status === 201, `PUT /users/${id} {name: ${name}}: ${describe(a)}`);
  return a;
}

async function storeCached(world, id, name) {
  await putUser(world, id, name);
  const master = await agreedRedisMaster();
  await pollUntil(async () => (await cachedOn(world, master, id))?.name === name,
    { withinMs: bounds(world).coherence, explain: async () => `the master ${master.name} caches ${JSON.stringify(await cachedOn(world, master, id))} for ${id}` });
}

// A faultproxy toxic that hits one client's connections only (faultproxy's client_cidr): a timeout
// toxic with timeout 0 holds every byte, so that instance's Redis master path is cut, and only its.
async function partitionFromRedisMaster(world, instanceName) {
  const master = await agreedRedisMaster();
  assert.that(master, `the Sentinels disagree: ${JSON.stringify(await sentinelMasters())}`);
  const instance = instanceByName(instanceName);
  // Plain fetch: toxiproxy-node-client's Toxic drops fields it does not know (client_cidr).
  const body = { name: `partition_${instanceName}`, type: 'timeout', stream: 'upstream', toxicity: 1, attributes: { timeout: 0 },
    client_cidr: `${instance.sourceAddress}/32` };
  const res = await fetch(`${ha.faultproxyUrl}/proxies/${master.name}/toxics`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000),
  });
  const echo = await res.json().catch(() => null);
  assert.equal([res.status, echo?.type, echo?.client_cidr], [200, 'timeout', body.client_cidr], 'faultproxy\'s answer to the partition toxic');
  attachApplied(world, master.name, { toxic: body });
  world.partitioned = { instance, master };
  // It shows: the instance's probes of the master fail, so it calls the master down.
  await pollUntil(async () => (await readiness(instance.url)).states['redis-master'] !== 'up', {
    withinMs: bounds(world).notice,
    explain: async () => `${instanceName} still calls the Redis master up: ${describe((await readiness(instance.url)).answer)}`,
  });
  // The others still reach it.
  for (const other of ha.instances.filter((i) => i !== instance)) {
    const states = (await readiness(other.url)).states;
    assert.equal(states['redis-master'], 'up', `${other.name}'s view of the Redis master while only ${instanceName} is cut off`);
  }
}

// Polls a read through an instance until it answers 200 with `name`; returns the ms it took.
async function readsWithin(world, instanceName, id, name, withinMs) {
  let last;
  return pollUntil(async () => {
    last = await viaInstance(instanceName, 'GET', `/users/${id}`, { hangMs: 5000 });
    return last.status === 200 && last.json?.name === name;
  }, { withinMs, everyMs: 10, explain: () => `${instanceName} still answers ${describe(last)} (wanted name ${name})` });
}

// ------------------------------------------------------------------------------------------ load
// A read loop and (optionally) a write loop on one user through HAProxy, every answer kept with its
// start and end; written names carry a sequence number so a read's age can be told.
function startLoad(world, id, { writes }) {
  const load = { id, reads: [], writes: [], stop: false, seq: 0 };
  const timed = async (fn) => {
    const at = performance.now();
    let a;
    try {
      a = await fn();
    } catch (err) {
      a = { method: '?', path: `/users/${id}`, status: 0, headers: new Headers(), text: err.message, ms: performance.now() - at };
    }
    return { at, end: performance.now(), a };
  };
  const reader = async () => {
    while (!load.stop) load.reads.push(await timed(() => viaHaproxy('GET', `/users/${id}`, { hangMs: 5000 })));
  };
  const writer = async () => {
    while (!load.stop) {
      const seq = ++load.seq;
      const w = await timed(() => viaHaproxy('PUT', `/users/${id}`, { body: { name: `n-${seq}` }, hangMs: 5000 }));
      load.writes.push({ ...w, seq });
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  load.done = Promise.all([reader(), reader(), ...(writes ? [writer()] : [])]);
  load.halt = async () => {
    load.stop = true;
    await load.done;
  };
  world.load = load;
  world.cleanups = [...(world.cleanups ?? []), load.halt];
  return load;
}

const seqOf = (name) => (/^n-(\d+)$/.exec(name ?? '') ? Number(RegExp.$1) : 0);

// ============================================================================== the Redis master dies
Given('a user is stored and cached, and read and written through HAProxy without pause', async function () {
  const id = newId('load');
  await storeCached(this, id, 'n-0');
  const load = startLoad(this, id, { writes: true });
  await pollUntil(async () => load.reads.length >= 5 && load.writes.length >= 2, { withinMs: 5000 });
});

When('the Redis master is killed with SIGKILL', async function () {
  this.oldMaster = await agreedRedisMaster();
  assert.that(this.oldMaster, `the Sentinels disagree: ${JSON.stringify(await sentinelMasters())}`);
  await kill9(this.oldMaster.name);
  this.faultAt = performance.now();
});

// Waits until the Sentinels agree on a new master and every instance uses it (topology.redis.master);
// records when the last instance adopted it.
async function newMasterAdopted(world) {
  let agreed;
  await pollUntil(async () => {
    agreed = await agreedRedisMaster();
    return agreed && agreed !== world.oldMaster;
  }, { withinMs: await sentinelFailoverBound(), everyMs: 50, explain: async () => `the Sentinels say ${JSON.stringify(await sentinelMasters())}` });
  world.newMaster = agreed;
  world.switchSeenAt = performance.now();
  const address = `127.0.0.1:${agreed.proxyPort}`;
  const tops = {};
  await pollUntil(async () => {
    for (const i of ha.instances) tops[i.name] = (await topology(i)).redis?.master;
    return Object.values(tops).every((m) => m === address);
  }, { withinMs: bounds(world).discovery, everyMs: 10, explain: () => `the instances use ${JSON.stringify(tops)}, not ${address}` });
  world.adoptedAt = performance.now();
  world.attach(`new master ${agreed.name}: Sentinels agreed ${Math.round(world.switchSeenAt - world.faultAt)} ms after the kill, ` +
    `every instance used it ${Math.round(world.adoptedAt - world.faultAt)} ms after the kill`);
}

Then('the Sentinels promote a replica and every instance adopts it', async function () {
  await newMasterAdopted(this);
  // From the adoption on, watch the new master for the write acknowledged last before it (its own
  // cache update may have failed with no master to take it).
  const load = this.load;
  if (!load) return;
  const acked = load.writes.filter(({ end, a }) => end <= this.adoptedAt && (a.status === 200 || a.status === 201));
  const target = Math.max(0, ...acked.map((w) => w.seq));
  this.cacheWatch = (async () => {
    let got;
    while (performance.now() - this.adoptedAt <= bounds(this).coherence) {
      got = await cachedOn(this, this.newMaster, load.id).catch(() => null);
      if (seqOf(got?.name) >= target) return { target, ms: performance.now() - this.adoptedAt };
      await new Promise((r) => setTimeout(r, 10));
    }
    return { target, ms: null, got };
  })();
});

Then('every read through HAProxy was answered 200 with a value written to the user', async function () {
  const load = this.load;
  // Keep the load on past the switch, for as long as the coherence bound.
  const until = this.adoptedAt + bounds(this).coherence + 500;
  await pollUntil(async () => performance.now() > until, { withinMs: until - performance.now() + 1000, everyMs: 50 });
  await load.halt();
  const window = load.reads.filter(({ end }) => end >= this.faultAt);
  assert.that(window.length >= 10, `only ${window.length} reads during the failover`);
  const bad = window.filter(({ a }) => a.status !== 200 || !/^n-\d+$/.test(a.json?.name ?? '') || a.ms > bounds(this).request);
  assert.that(bad.length === 0, () => `${bad.length} of ${window.length} reads failed, were slow or odd:\n${bad.slice(0, 5).map(({ a }) => `  ${describe(a)}`).join('\n')}`);
  const failedWrites = load.writes.filter(({ end, a }) => end >= this.faultAt && !(a.status === 200 || a.status === 201));
  assert.that(failedWrites.length === 0, () => `${failedWrites.length} writes failed during the failover:\n${failedWrites.slice(0, 5).map(({ a }) => `  ${describe(a)}`).join('\n')}`);
  this.attach(`${window.length} reads and ${load.writes.filter(({ end }) => end >= this.faultAt).length} writes from the kill to ${bounds(this).coherence + 500} ms after the switch; slowest read ${Math.round(Math.max(...window.map(({ a }) => a.ms)))} ms`);
});

Then('the new master holds the last acknowledged write within 1 s of every instance adopting it', async function () {
  const load = this.load;
  const watched = await this.cacheWatch;
  assert.that(watched.ms !== null, `${this.newMaster.name} did not cache n-${watched.target} or later within ${bounds(this).coherence} ms of the adoption: ${JSON.stringify(watched.got)}`);
  let got;
  // And once the load stopped, the cache holds the very last acknowledged write: on the master the
  // Sentinels agree on now (on a loaded machine they may have failed over once more since, the
  // instances following them: what holds is where the cache is now, not where it was).
  const last = Math.max(...load.writes.filter(({ a }) => a.status === 200 || a.status === 201).map((w) => w.seq));
  let master = this.newMaster;
  await pollUntil(async () => {
    master = (await agreedRedisMaster()) ?? master;
    got = await cachedOn(this, master, load.id);
    return got?.name === `n-${last}`;
  }, { withinMs: bounds(this).coherence, everyMs: 10, explain: () => `${master.name} caches ${JSON.stringify(got)} after the load, not the last write n-${last}` });
  this.attach(`n-${watched.target} (acknowledged last before the adoption) was on ${this.newMaster.name} ${Math.round(watched.ms)} ms after every instance had adopted it` +
    (master.name !== this.newMaster.name ? `; the Sentinels then moved on to ${master.name}, which holds the last write n-${last}` : ''));
});

// Nothing stale: a read that started more than the coherence bound after a write was acknowledged
// returns that write or a later one, unless it says it is stale (X-Cache-Stale), once every instance
// has had the new master for the coherence bound (with no master at all, the bound does not hold).
Then('no read served a value older than a write acknowledged 1 s before it, once the new master was in use', async function () {
  const load = this.load;
  const b = bounds(this).coherence;
  const acked = load.writes.filter(({ a }) => a.status === 200 || a.status === 201);
  const stale = [];
  let checked = 0;
  for (const r of load.reads) {
    if (r.a.status !== 200 || r.a.headers.get('x-cache-stale')) continue;
    if (r.at > this.faultAt && r.at < this.adoptedAt + b) continue;
    checked++;
    const owed = Math.max(0, ...acked.filter((w) => w.end <= r.at - b).map((w) => w.seq));
    if (seqOf(r.a.json?.name) < owed) stale.push(`${describe(r.a)} started ${Math.round(r.at - this.faultAt)} ms after the kill; n-${owed} was acknowledged ${b} ms before`);
  }
  assert.that(checked >= 10, `only ${checked} reads outside the failover window`);
  assert.that(stale.length === 0, () => `${stale.length} stale reads:\n${stale.slice(0, 5).join('\n')}`);
});

// ========================================================================= the old Redis master returns
Given('the Redis master was killed and the Sentinels promoted a replica', async function () {
  this.oldMaster = await agreedRedisMaster();
  assert.that(this.oldMaster, `the Sentinels disagree: ${JSON.stringify(await sentinelMasters())}`);
  await kill9(this.oldMaster.name);
  this.faultAt = performance.now();
  await newMasterAdopted(this);
});

// MONITOR on the old master from its return: every command it is sent, as redis-cli prints it.
When('the old master is started again, with every command it receives recorded', async function () {
  await start(this.oldMaster.name);
  this.returnedAt = performance.now();
  const monitor = spawn('redis-cli', ['-p', String(this.oldMaster.port), 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
  this.monitor = { proc: monitor, lines: [] };
  monitor.stdout.setEncoding('utf8');
  let partial = '';
  monitor.stdout.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    this.monitor.lines.push(...parts);
  });
  this.cleanups = [...(this.cleanups ?? []), () => monitor.kill('SIGTERM')];
  // Writes through every instance while it returns.
  this.writtenWhileReturning = [];
  for (const i of ha.instances) {
    const id = newId('returning');
    await putUser(this, id, `via-${i.name}`, (m, p, o) => viaInstance(i.name, m, p, o));
    this.writtenWhileReturning.push({ id, name: `via-${i.name}` });
  }
});

Then('the Sentinels make it a replica of the new master', async function () {
  let info;
  await pollUntil(async () => {
    // The Sentinels may fail over once more (one that does not hear the promoted node within its
    // down-after-milliseconds, 1 s, counts it down): "the new master" is the one they agree on now,
    // as long as it is not the returned node.
    const current = await agreedRedisMaster();
    if (current && current !== this.oldMaster && current !== this.newMaster) {
      this.attach(`the Sentinels failed over again: from ${this.newMaster.name} to ${current.name}`);
      this.newMaster = current;
    }
    info = await redisInfo(this.oldMaster);
    return info.role === 'slave' && Number(info.master_port) === this.newMaster.proxyPort && info.master_link_status === 'up';
  }, { withinMs: 30_000, everyMs: 100, explain: () => `${this.oldMaster.name}: role ${info?.role}, master port ${info?.master_port}, link ${info?.master_link_status}` });
  this.demotedAt = performance.now();
});

Then('no instance sends it a write, and the writes are on the new master', async function () {
  // Writes through every instance after the demotion, too.
  for (const i of ha.instances) {
    const id = newId('returned');
    await putUser(this, id, `via-${i.name}`, (m, p, o) => viaInstance(i.name, m, p, o));
    this.writtenWhileReturning.push({ id, name: `via-${i.name}` });
  }
  for (const { id, name } of this.writtenWhileReturning) {
    let got;
    await pollUntil(async () => (got = await cachedOn(this, this.newMaster, id))?.name === name,
      { withinMs: bounds(this).coherence, explain: () => `${this.newMaster.name} caches ${JSON.stringify(got)} for ${id}, not ${name}` });
  }
  this.monitor.proc.kill('SIGTERM');
  // MONITOR shows what clients send (not REPLICAOF, an admin command, nor, as seen, the replication
  // stream a replica applies): any write in it came from a client, from its return to now.
  const lines = this.monitor.lines;
  assert.that(lines.some((l) => /"(ping|info)"/i.test(l)), `MONITOR on ${this.oldMaster.name} saw no PING or INFO (the Sentinels'): ${lines.length} lines`);
  const written = lines.filter((l) => /\] "(hset|hmset|hsetnx|set|del|unlink|eval|evalsha|fcall|expire|pexpire)"/i.test(l));
  assert.that(written.length === 0, () => `${this.oldMaster.name} was sent writes after its return:\n${written.slice(0, 5).join('\n')}`);
  this.attach(`MONITOR saw ${lines.length} commands on ${this.oldMaster.name}, none a write; it was a replica ${Math.round(this.demotedAt - this.returnedAt)} ms after ./dev start returned`);
});

// ================================================================================ 2 of 3 Sentinels down
Given('{string} and {string} are killed with SIGKILL', async function (a, b) {
  this.master = await agreedRedisMaster();
  assert.that(this.master, 'the Sentinels agree on a master before the kill');
  for (const name of [a, b]) await kill9(name);
  this.faultAt = performance.now();
});

Then('reads and writes through HAProxy keep working with the current master for {int} discovery intervals', async function (n) {
  const interval = this.settings.raw.redis.discovery_interval_ms;
  const until = performance.now() + n * interval;
  let count = 0;
  while (performance.now() < until || count < 6) {
    const id = newId('few-sentinels');
    const name = `n-${++count}`;
    await putUser(this, id, name);
    const r = await viaHaproxy('GET', `/users/${id}`, { hangMs: 5000 });
    this.answers.push(r);
    assert.that(r.status === 200 && r.json?.name === name && r.ms <= bounds(this).request, `read back: ${describe(r)}`);
    const cached = await cachedOn(this, this.master, id);
    assert.equal(cached?.name, name, `the cache on ${this.master.name} (the master before the kill) for ${id}`);
  }
  for (const i of ha.instances) {
    const r = await readiness(i.url);
    assert.equal([r.answer.status, r.answer.json?.topology?.redis?.master], [200, `127.0.0.1:${this.master.proxyPort}`], `${i.name} ready, on the same master`);
  }
  this.attach(`${count} writes and reads over ${n} discovery intervals of ${interval} ms`);
});

// ============================================================================= one instance partitioned
Given('a user is stored and cached as {string}', async function (name) {
  this.userId = newId('user');
  await storeCached(this, this.userId, name);
  // Every instance reads it (so that none has a reason to look elsewhere).
  for (const i of ha.instances) await readsWithin(this, i.name, this.userId, name, bounds(this).request);
});

Given('{string} cannot reach the Redis master', async function (name) {
  await partitionFromRedisMaster(this, name);
});

When('the user is renamed {string} through {string}', async function (name, instance) {
  this.writtenAt = performance.now();
  await putUser(this, this.userId, name, (m, p, o) => viaInstance(instance, m, p, o));
  this.ackedAt = performance.now();
});

Then('{string} serves {string} within 1 s of the acknowledgement', async function (instance, name) {
  const took = await readsWithin(this, instance, this.userId, name, bounds(this).coherence);
  this.attach(`${instance} served ${name} ${Math.round(performance.now() - this.ackedAt)} ms after the acknowledgement (polled ${Math.round(took)} ms)`);
});

// ================================================================================= the MariaDB primary
Given('a cached user and an uncached user for each instance are stored', async function () {
  this.cachedId = newId('cached');
  await storeCached(this, this.cachedId, 'cached');
  const master = await agreedRedisMaster();
  this.uncached = [];
  for (const i of ha.instances) {
    const id = newId('uncached');
    await putUser(this, id, `uncached-${i.name}`);
    this.uncached.push({ id, name: `uncached-${i.name}`, instance: i.name });
  }
  // Wait until the cache holds them (the feed may add them), then drop them from the cache.
  for (const u of this.uncached) {
    await pollUntil(async () => (await cachedOn(this, master, u.id))?.name === u.name, { withinMs: bounds(this).coherence });
    await withRedis(master.port, (c) => c.sendCommand(['DEL', `${this.settings.cacheKeyPrefix}${u.id}`]));
  }
  const roles = await mariadbRoles();
  const primary = ha.mariadb.find((n) => roles[n.name] === 'primary');
  this.mariadbPair = { primary, replica: ha.mariadb.find((n) => n !== primary) };
  // The replica has applied them (semi-sync only promises it received them).
  const pos = await mariadbValue(primary, 'SELECT @@gtid_binlog_pos');
  assert.equal(Number(await mariadbValue(this.mariadbPair.replica, `SELECT MASTER_GTID_WAIT('${pos}', 5)`)), 0, `the replica applied ${pos}`);
});

When('the MariaDB primary is killed with SIGKILL', async function () {
  await kill9(this.mariadbPair.primary.name);
  this.faultAt = performance.now();
});

Then('cached and uncached reads through the instances are answered 200, the uncached ones from the replica', async function () {
  const b = bounds(this);
  for (const i of ha.instances) {
    const a = await viaInstance(i.name, 'GET', `/users/${this.cachedId}`);
    this.answers.push(a);
    assert.that(a.status === 200 && a.json?.name === 'cached' && a.ms <= b.request, `a cached read through ${i.name}: ${describe(a)}`);
  }
  for (const u of this.uncached) {
    const a = await viaInstance(u.instance, 'GET', `/users/${u.id}`);
    this.answers.push(a);
    assert.that(a.status === 200 && a.json?.name === u.name && a.ms <= b.request && a.headers.get('x-data-source') === 'origin-replica',
      `an uncached read through ${u.instance}: ${describe(a)}`);
  }
});

Then('a write through each instance is answered 503 within one MariaDB deadline', async function () {
  const b = bounds(this);
  for (const i of ha.instances) {
    const a = await viaInstance(i.name, 'PUT', `/users/${this.cachedId}`, { body: { name: 'refused' } });
    this.answers.push(a);
    assert.that(a.status === 503 && a.ms <= b.fastRefusal, `a write through ${i.name} with no primary (bound ${b.fastRefusal} ms): ${describe(a)}`);
  }
});

Then('writes through HAProxy are accepted within 1 s', async function () {
  const from = performance.now();
  let last;
  await pollUntil(async () => {
    last = await viaHaproxy('PUT', `/users/${this.cachedId}`, { body: { name: 'after-failover' } });
    return last.status === 200 || last.status === 201;
  }, { withinMs: bounds(this).coherence, everyMs: 10, explain: () => `the last write: ${describe(last)}` });
  this.attach(`first write accepted ${Math.round(performance.now() - from)} ms after ./dev failover mysql returned`);
  // Every instance takes writes, and no refused write left anything behind.
  for (const i of ha.instances) {
    await pollUntil(async () => {
      last = await viaInstance(i.name, 'PUT', `/users/${newId('after')}`, { body: { name: 'x' } });
      return last.status === 200 || last.status === 201;
    }, { withinMs: bounds(this).coherence, everyMs: 10, explain: () => `${i.name}: ${describe(last)}` });
  }
  const r = await viaHaproxy('GET', `/users/${this.cachedId}`);
  assert.equal(r.json?.name, 'after-failover', `the user after the failover: ${describe(r)}`);
});

Then('the old primary, started again, is a read-only replica of the new one and takes no write', async function () {
  const { primary: old, replica: promoted } = this.mariadbPair;
  await start(old.name);
  let role;
  await pollUntil(async () => (role = await mariadbRole(old)) === 'replica', { withinMs: 30_000, everyMs: 100, explain: () => `${old.name} is ${role}` });
  const status = await mariadbSlaveStatus(old);
  assert.equal(Number(status.Master_Port), promoted.proxyPort, `${old.name} replicates from ${promoted.name}'s proxy`);
  const id = newId('after-return');
  for (const i of ha.instances) {
    await putUser(this, `${id}-${i.name}`, 'written', (m, p, o) => viaInstance(i.name, m, p, o));
    const t = await topology(i);
    assert.equal(t.mysql?.primary, `127.0.0.1:${promoted.proxyPort}`, `${i.name}'s MariaDB primary`);
  }
  // The writes reach the old primary by replication only: they carry the new primary's server id.
  const pos = await mariadbValue(promoted, 'SELECT @@gtid_binlog_pos');
  assert.equal(Number(await mariadbValue(old, `SELECT MASTER_GTID_WAIT('${pos}', 5)`)), 0, `${old.name} applied ${pos}`);
  const ownPos = String(await mariadbValue(old, 'SELECT @@gtid_binlog_pos'));
  assert.that(!new RegExp(`(^|,)0-${old.name.slice(-1)}-\\d+$`).test(ownPos) || ownPos === String(pos),
    `${old.name}'s binlog ${ownPos} (the primary's ${pos}): it logged a transaction of its own`);
  assert.equal(Number(await mariadbValue(old, 'SELECT @@read_only')), 1, `${old.name}'s read_only`);
});

// ================================================================================ an instance killed
Given('a user is read and written through HAProxy without pause', async function () {
  const id = newId('kill-load');
  await storeCached(this, id, 'n-0');
  const load = startLoad(this, id, { writes: true });
  await pollUntil(async () => load.reads.length >= 5, { withinMs: 5000 });
});

// Users cached with their old names, renamed through the instance (whose own cache updates fail when
// it is cut off from the master), which is killed right after the last acknowledgement.
When('users are renamed through {string}, which is then killed with SIGKILL', async function (instance) {
  this.renamed = [];
  for (let k = 0; k < 5; k++) {
    const id = newId('pending');
    await storeCached(this, id, 'old');
    this.renamed.push({ id, name: `new-${k}` });
  }
  const master = await agreedRedisMaster();
  for (const u of this.renamed) {
    await putUser(this, u.id, u.name, (m, p, o) => viaInstance(instance, m, p, o));
    u.ackedAt = performance.now();
    // Watched from the acknowledgement on, while the instance is killed: when the master caches it.
    u.cached = (async () => {
      let got;
      while (performance.now() - u.ackedAt <= bounds(this).coherence) {
        got = await cachedOn(this, master, u.id).catch(() => null);
        if (got?.name === u.name) return { ms: performance.now() - u.ackedAt };
        await new Promise((r) => setTimeout(r, 10));
      }
      return { ms: null, got };
    })();
  }
  const killing = performance.now();
  await kill9(instance);
  this.killed = instance;
  this.faultAt = performance.now();
  this.attach(`${instance} renamed ${this.renamed.length} users and was dead ${Math.round(this.faultAt - this.renamed.at(-1).ackedAt)} ms after the last acknowledgement (the kill took ${Math.round(this.faultAt - killing)} ms)`);
});

Then('the master caches the new names within 1 s of each acknowledgement, and the other instances serve them', async function () {
  const others = ha.instances.filter((x) => x.name !== this.killed);
  const took = [];
  for (const u of this.renamed) {
    const r = await u.cached;
    assert.that(r.ms !== null, `the master did not cache ${u.id} as ${u.name} within ${bounds(this).coherence} ms of the acknowledgement: ${JSON.stringify(r.got)}`);
    took.push(Math.round(r.ms));
    for (const i of others) await readsWithin(this, i.name, u.id, u.name, bounds(this).request);
  }
  this.attach(`the master cached the renames ${took.join(', ')} ms after their acknowledgements`);
});

Then('for {int} s every request through HAProxy succeeds within the request deadline', async function (seconds) {
  const until = this.faultAt + seconds * 1000;
  await pollUntil(async () => performance.now() > until, { withinMs: seconds * 1000 + 1000, everyMs: 50 });
  await this.load.halt();
  const all = [...this.load.reads, ...this.load.writes].filter(({ end }) => end >= this.faultAt);
  assert.that(all.length >= 10, `only ${all.length} requests in ${seconds} s`);
  const bad = all.filter(({ a }) => a.status < 200 || a.status > 201 || a.ms > bounds(this).request);
  assert.that(bad.length === 0, () => `${bad.length} of ${all.length} requests failed or were slow:\n${bad.slice(0, 5).map(({ a }) => `  ${describe(a)}`).join('\n')}`);
});

// =============================================================================== an instance stopped
When('the cache feed\'s lease holder is stopped with SIGSTOP under load', async function () {
  let holder;
  await pollUntil(async () => {
    for (const i of ha.instances) if ((await topology(i)).cache_feed?.holder) holder = i;
    return holder;
  }, { withinMs: bounds(this).lease });
  this.stopped = holder.name;
  const id = newId('stop-load');
  await storeCached(this, id, 'n-0');
  const load = startLoad(this, id, { writes: true });
  await pollUntil(async () => load.reads.length >= 5, { withinMs: 5000 });
  await stop(holder.name);
  this.faultAt = performance.now();
  this.cleanups = [...(this.cleanups ?? []), () => (processState(holder.name) === 'stopped' ? resume(holder.name) : null)];
});

Then('another instance holds the cache feed within twice its lease', async function () {
  const others = ha.instances.filter((i) => i.name !== this.stopped);
  let holders;
  await pollUntil(async () => {
    holders = [];
    for (const i of others) if ((await topology(i)).cache_feed?.holder) holders.push(i.name);
    return holders.length === 1;
  }, { withinMs: bounds(this).lease, everyMs: 20, explain: () => `holders among the running: ${JSON.stringify(holders)}` });
  this.newHolder = holders[0];
});

// HAProxy retries a read that timed out on another instance, but a write only when nothing was sent
// (a connection failure) or died with it: a write that reached the stopped instance gets HAProxy's 503 (its
// time-out answer) until the health check takes the instance out, and the instance, once continued, must not
// execute it (X-Request-Start: the next step checks the last acknowledged write is what it serves).
Then('for {int} s every request through HAProxy is answered within HAProxy\'s server timeout and a request deadline, writes to the stopped one before HAProxy takes it out with 503, none by it after {int} s', async function (seconds, after) {
  const until = this.faultAt + seconds * 1000;
  await pollUntil(async () => performance.now() > until, { withinMs: seconds * 1000 + 1000, everyMs: 50 });
  await this.load.halt();
  const all = [...this.load.reads, ...this.load.writes].filter(({ end }) => end >= this.faultAt);
  const writes = new Set(this.load.writes);
  const unknownOutcome = ({ at, a }, w) => w && a.status === 503 && at < this.faultAt + after * 1000;
  const bad = all.filter((r) => ((r.a.status !== 200 && r.a.status !== 201) && !unknownOutcome(r, writes.has(r))) ||
    r.a.ms > bounds(this).haproxyRetry);
  assert.that(bad.length === 0, () => `${bad.length} of ${all.length} requests failed or were slow:\n${bad.slice(0, 5).map(({ a }) => `  ${describe(a)}`).join('\n')}`);
  const late = all.filter(({ at, a }) => at >= this.faultAt + after * 1000 && a.headers.get('x-served-by') === this.stopped);
  assert.that(late.length === 0, `${late.length} requests started ${after} s after the stop were served by ${this.stopped}`);
  // Every 503 keeps the service's contract, HAProxy's own (no X-Served-By) too: Retry-After, a JSON
  // error naming the request's id (the one the instances log under), and for HAProxy's, which cannot
  // know whether the stopped instance will apply a write, outcome "unknown".
  const haproxys = ({ a }) => !a.headers.get('x-served-by');
  const broken = all.filter(({ a }) => a.status === 503).filter((r) => !r.a.headers.get('retry-after') ||
    typeof r.a.json?.error !== 'string' || !r.a.headers.get('x-request-id') ||
    r.a.json.request_id !== r.a.headers.get('x-request-id') || (haproxys(r) && r.a.json.outcome !== 'unknown'));
  assert.that(broken.length === 0, () => `${broken.length} 503s without Retry-After, their request id or (HAProxy's) outcome "unknown":\n` +
    broken.slice(0, 3).map(({ a }) => `  ${describe(a)} X-Request-Id: ${a.headers.get('x-request-id')}`).join('\n'));
});

When('the stopped instance is continued with SIGCONT', async function () {
  await resume(this.stopped);
  this.resumedAt = performance.now();
});

Then('exactly one instance holds the cache feed, and the continued one serves the last write within 1 s', async function () {
  const last = Math.max(...this.load.writes.filter(({ a }) => a.status === 200 || a.status === 201).map((w) => w.seq));
  await readsWithin(this, this.stopped, this.load.id, `n-${last}`, bounds(this).coherence);
  let holders;
  await pollUntil(async () => {
    holders = [];
    for (const i of ha.instances) if ((await topology(i)).cache_feed?.holder) holders.push(i.name);
    return holders.length === 1;
  }, { withinMs: bounds(this).lease, everyMs: 20, explain: () => `holders: ${JSON.stringify(holders)}` });
});

// ========================================================================= everything restarted
Given('users are stored through HAProxy', async function () {
  this.stored = [];
  for (let k = 0; k < 5; k++) {
    const id = newId('restart');
    await putUser(this, id, `kept-${k}`);
    this.stored.push({ id, name: `kept-${k}` });
  }
  // Acknowledged on the primary; the replica has applied them too.
  const roles = await mariadbRoles();
  const primary = ha.mariadb.find((n) => roles[n.name] === 'primary');
  const pos = await mariadbValue(primary, 'SELECT @@gtid_binlog_pos');
  for (const n of ha.mariadb.filter((x) => x !== primary)) {
    assert.equal(Number(await mariadbValue(n, `SELECT MASTER_GTID_WAIT('${pos}', 5)`)), 0, `${n.name} applied ${pos}`);
  }
});

When('every process of the stack is killed with SIGKILL and started again in a random order', { timeout: 240_000 }, async function () {
  for (const name of COMPONENTS) if (processState(name) !== 'dead') await kill9(name);
  const order = [...COMPONENTS];
  for (let k = order.length - 1; k > 0; k--) {
    const j = Math.floor(Math.random() * (k + 1));
    [order[k], order[j]] = [order[j], order[k]];
  }
  this.attach(`started again in this order: ${order.join(', ')}`);
  // ./dev start waits until each process is ready, and some readiness needs parts not started yet
  // (HAProxy's needs an instance, which needs the rest; a MariaDB node's check that its replica
  // replicates needs faultproxy, the replication path): such a start may report "not ready" with its
  // process running. That is noted; the outcome is judged by the next step. HAProxy's start (20 s of
  // waiting) runs alongside the others.
  const notes = [];
  const startOne = (name) => start(name).catch((err) => {
    if (processState(name) !== 'running') throw err;
    notes.push(`${name}: ${err.message.split('\n').slice(1).join(' ').trim()}`);
  });
  let haproxy;
  for (const name of order) {
    if (name === 'haproxy') haproxy = startOne(name);
    else await startOne(name);
  }
  await haproxy;
  if (notes.length) this.attach(`started, not ready at once:\n${notes.join('\n')}`);
  for (const name of COMPONENTS) assert.equal(processState(name), 'running', `${name} after ./dev start`);
  this.restartedAt = performance.now();
});

Then('within {int} s the service answers reads and writes through HAProxy with the stored values, over a replicating MariaDB', { timeout: 120_000 }, async function (seconds) {
  // Each instance may take a while to find its dependencies again (breakers open while they were
  // away, probes every resilience.probe_interval_ms): polled until every instance answers every
  // stored user, within the bound.
  let last;
  const deadline = this.restartedAt + seconds * 1000;
  for (const i of ha.instances) {
    for (const u of this.stored) {
      await pollUntil(async () => {
        last = await viaInstance(i.name, 'GET', `/users/${u.id}`, { hangMs: 5000 });
        return last.status === 200;
      }, { withinMs: Math.max(0, deadline - performance.now()), everyMs: 100, explain: () => `${i.name}: ${describe(last)}` });
      this.answers.push(last);
      assert.that(last.json?.name === u.name, `a stored user through ${i.name} after the restart: ${describe(last)}`);
    }
  }
  this.attach(`every instance answered every stored user ${Math.round(performance.now() - this.restartedAt)} ms after the last start`);
  await pollUntil(async () => {
    last = await viaHaproxy('PUT', `/users/${this.stored[0].id}`, { body: { name: 'renamed' }, hangMs: 5000 });
    return last.status === 200 || last.status === 201;
  }, { withinMs: Math.max(0, deadline - performance.now()), everyMs: 100, explain: () => `a write: ${describe(last)}` });
  for (const i of ha.instances) await readsWithin(this, i.name, this.stored[0].id, 'renamed', bounds(this).coherence);
  // One MariaDB primary, the other node replicating from it, whatever the order.
  let roles;
  let status;
  await pollUntil(async () => {
    roles = await mariadbRoles();
    const primary = ha.mariadb.find((n) => roles[n.name] === 'primary');
    const replica = ha.mariadb.find((n) => n !== primary);
    status = primary && (await mariadbSlaveStatus(replica));
    return status?.Slave_IO_Running === 'Yes' && status?.Slave_SQL_Running === 'Yes' && Number(status.Master_Port) === primary.proxyPort;
  }, { withinMs: seconds * 1000, everyMs: 200, explain: () => `MariaDB roles ${JSON.stringify(roles)}, replica IO ${status?.Slave_IO_Running} SQL ${status?.Slave_SQL_Running} ${status?.Last_IO_Error ?? ''}` });
});
