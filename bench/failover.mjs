// Failover figures of the HA stack (issue 11), in one run against a fresh `./dev up --ha`-like stack
// (bench/failover.sh starts it): steady load through HAProxy (a PUT and a GET every 20 ms) while
//  1. the Redis master is killed (SIGKILL): the time until the first cache write lands on the new
//     master (a fresh user written through HAProxy every 20 ms, looked up on the node the Sentinels
//     name master), the time until every instance uses the new master, and the requests that failed
//     meanwhile, by status;
//  2. the MariaDB primary is killed, then `./dev failover mysql` runs: how long the command takes, the
//     time from its end to the first accepted write, and the requests that failed, by status.
// Prints figures only: the machine is shared, so nothing here is asserted.
import { setTimeout as sleep } from 'node:timers/promises';

import * as h from '../features/support/ha.js';

const PACE_MS = 20;
const now = () => performance.now();

// Steady load through HAProxy; counts answers by status until stopped.
function load(tag) {
  const counts = new Map();
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const id = `bench-${tag}-${i % 50}`;
      for (const [method, body] of [['PUT', { name: `n${i}` }], ['GET', undefined]]) {
        let status = 'error';
        try {
          const a = await h.viaHaproxy(method, `/users/${id}`, body ? { body } : {});
          status = a.status;
          if (process.env.BENCH_VERBOSE && method === 'GET' && status === 503) console.log(`  GET ${id} 503: ${a.text}`);
        } catch { /* counted as error */ }
        counts.set(`${method} ${status}`, (counts.get(`${method} ${status}`) ?? 0) + 1);
      }
      await sleep(PACE_MS);
    }
  })();
  return { counts, stop: async () => { running = false; await done; } };
}

function failures(counts) {
  // A GET of a user whose PUT failed may rightly be 404.
  const bad = [...counts].filter(([k]) => !/ (20[014]|404)$/.test(k));
  return bad.length ? bad.map(([k, n]) => `${k}: ${n}`).join(', ') : 'none';
}

async function redisFailover() {
  let before = null;
  for (let i = 0; i < 100 && !before; i++) before = await h.agreedRedisMaster() ?? (await sleep(100), null);
  if (!before) throw new Error('the Sentinels do not agree on a master');
  const l = load('redis');
  await sleep(500);
  const killed = now();
  await h.kill9(before.name);
  let firstWrite = null, allMoved = null;
  for (let i = 0; now() - killed < 20000 && (firstWrite === null || allMoved === null); i++) {
    if (firstWrite === null) {
      const id = `bench-probe-${Date.now()}-${i}`;
      const put = await h.viaHaproxy('PUT', `/users/${id}`, { body: { name: 'probe' } }).catch(() => null);
      const master = await h.agreedRedisMaster().catch(() => null);
      if (put?.status >= 200 && put?.status < 300 && master && master.name !== before.name) {
        const exists = await h.withRedis(master.port, (c) => c.exists(`user:${id}`)).catch(() => 0);
        if (exists) firstWrite = now() - killed;
      }
    }
    if (allMoved === null) {
      const views = await Promise.all(h.ha.instances.map((inst) =>
        h.viaInstance(inst.name, 'GET', '/health/ready').then((r) => r.json?.topology?.redis?.master).catch(() => null)));
      if (views.every((v) => v && v !== `127.0.0.1:${before.proxyPort}`)) allMoved = now() - killed;
    }
    await sleep(PACE_MS);
  }
  await sleep(500);
  await l.stop();
  await h.restart(before.name);
  return { killed: before.name, firstWrite, allMoved, failed: failures(l.counts), total: [...l.counts.values()].reduce((a, b) => a + b, 0) };
}

async function mysqlFailover() {
  const roles = await h.mariadbRoles();
  const primary = { name: Object.keys(roles).find((n) => roles[n] === 'primary') };
  const l = load('mysql');
  await sleep(500);
  await h.kill9(primary.name);
  await sleep(1000);
  const started = now();
  await h.failoverMysql();
  const promoted = now();
  let firstWrite = null;
  for (let i = 0; now() - promoted < 10000 && firstWrite === null; i++) {
    const r = await h.viaHaproxy('PUT', `/users/bench-after-${i}`, { body: { name: 'x' } }).catch(() => null);
    if (r && r.status >= 200 && r.status < 300) firstWrite = now() - promoted;
    else await sleep(5);
  }
  await l.stop();
  await h.restart(primary.name);
  return { killed: primary.name, command: promoted - started, firstWrite, failed: failures(l.counts), total: [...l.counts.values()].reduce((a, b) => a + b, 0) };
}

const ms = (v) => (v === null ? 'not seen within the limit' : `${v.toFixed(0)} ms`);
await h.makeWhole();
const r = await redisFailover();
console.log(`Redis master ${r.killed} SIGKILLed under load (${r.total} requests):`);
console.log(`  first cache write on the new master    ${ms(r.firstWrite)} after the kill`);
console.log(`  every instance on the new master        ${ms(r.allMoved)} after the kill (Sentinel down-after 1000 ms)`);
console.log(`  requests failed, by status              ${r.failed}`);
await h.makeWhole();
const m = await mysqlFailover();
console.log(`MariaDB primary ${m.killed} SIGKILLed under load (${m.total} requests), then ./dev failover mysql:`);
console.log(`  ./dev failover mysql took               ${ms(m.command)}`);
console.log(`  first accepted write                    ${ms(m.firstWrite)} after it returned`);
console.log(`  requests failed, by status              ${m.failed} (writes get 503 until the promotion)`);
process.exit(0);
