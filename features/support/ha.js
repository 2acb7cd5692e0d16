// The HA stack (`./dev up --ha`) as the @ha scenarios see it, and what they do to it: its addresses
// (from the environment `./dev test` exports, defaulting to `./dev up --ha`'s, base 17000), process
// faults by pid file (kill -9, SIGSTOP, SIGCONT), `./dev restart|start <component>` and
// `./dev failover mysql` on that stack (DEV_STACK), what the Sentinels, Redis nodes and MariaDB nodes
// say about their roles, and makeWhole(), which gives every @ha scenario a whole, healthy stack (the
// hooks: ha_hooks.js).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import mysql from 'mysql2/promise';
import { createClient } from 'redis';

import * as faults from './faults.js';
import { call, describe, readiness } from './service.js';

const env = process.env;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const base = Number(env.HA_PORT_BASE ?? 17000);
const stackName = env.DEV_STACK ?? 'dev';

// Offsets as in stack/ports (the HA part).
const node = (name, port, proxyPort) => ({ name, port, proxyPort });
export const ha = {
  stackName,
  stackDir: env.DEV_STACK ? (env.STACK_DIR ?? path.join(ROOT, '.stack', stackName)) : path.join(ROOT, '.stack', stackName),
  devScript: path.join(ROOT, 'dev'),
  haproxyUrl: env.HAPROXY_URL ?? `http://127.0.0.1:${base + 80}`,
  faultproxyUrl: env.FAULTPROXY_URL ?? `http://127.0.0.1:${base + 474}`,
  masterName: 'users',
  instances: [1, 2, 3].map((k) => ({
    name: `user-service-${k}`,
    url: env[`INSTANCE_${k}_URL`] ?? `http://127.0.0.1:${base + 80 + k}`,
    adminUrl: env[`INSTANCE_${k}_ADMIN_URL`] ?? `http://127.0.0.1:${base + 90 + k}`,
    sourceAddress: `127.0.1.${k}`,
  })),
  mariadb: [1, 2].map((k) =>
    node(`mariadb-${k}`, Number(env[`MARIADB_${k}_PORT`] ?? base + 305 + k), Number(env[`PROXY_MARIADB_${k}_PORT`] ?? base + 315 + k))),
  redis: [1, 2, 3].map((k) =>
    node(`redis-${k}`, Number(env[`REDIS_${k}_PORT`] ?? base + 378 + k), Number(env[`PROXY_REDIS_${k}_PORT`] ?? base + 388 + k))),
  sentinels: [1, 2, 3].map((k) => node(`redis-sentinel-${k}`, Number(env[`SENTINEL_${k}_PORT`] ?? base + 500 + k))),
};
// Every process of the stack, in the order ./dev starts them.
export const COMPONENTS = ['faultproxy', ...ha.mariadb.map((n) => n.name), ...ha.redis.map((n) => n.name),
  ...ha.sentinels.map((n) => n.name), ...ha.instances.map((i) => i.name), 'haproxy'];

export function component(name) {
  const c = [...ha.mariadb, ...ha.redis, ...ha.sentinels, ...ha.instances].find((n) => n.name === name);
  if (!c && !COMPONENTS.includes(name)) throw new Error(`unknown component '${name}' of the HA stack (${COMPONENTS.join(', ')})`);
  return c ?? { name };
}

// ------------------------------------------------------------------------------------------ processes
// The pid ./dev recorded for a component (first field of .stack/<stack>/pids/<name>.pid), or null.
export function pidOf(name) {
  try {
    const pid = Number(fs.readFileSync(path.join(ha.stackDir, 'pids', `${name}.pid`), 'utf8').split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

// A process's state letter (R, S, D, T, Z, ...) from /proc/PID/stat, or null if there is none.
export function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

// 'running', 'stopped' (every thread in T: a SIGSTOP has taken effect) or 'dead' (no process, or a zombie).
export function processState(name) {
  const pid = pidOf(name);
  const state = pid && procState(pid);
  if (!state || state === 'Z' || state === 'X') return 'dead';
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`).map((t) => procState(`${pid}/task/${t}`));
  } catch {
    return 'dead';
  }
  return tasks.length && tasks.every((s) => s === 'T' || s === 't') ? 'stopped' : 'running';
}

async function signal(name, sig, until, what) {
  const pid = pidOf(name);
  if (!pid || processState(name) === 'dead') throw new Error(`${name} is not running (pid file ${pid ?? 'missing'})`);
  process.kill(pid, sig);
  const started = performance.now();
  while (!until(processState(name))) {
    if (performance.now() - started > 5000) throw new Error(`${name} (pid ${pid}) is not ${what} 5 s after ${sig}`);
    await sleep(10);
  }
  return pid;
}

export const kill9 = (name) => signal(name, 'SIGKILL', (s) => s === 'dead', 'gone');
export const stop = (name) => signal(name, 'SIGSTOP', (s) => s === 'stopped', 'stopped');
export const resume = (name) => signal(name, 'SIGCONT', (s) => s === 'running', 'running');

// ./dev <args...> on this stack (DEV_STACK); resolves to its output, rejects with it.
export function dev(...args) {
  // user-service refuses unknown USER_SERVICE_* variables, and the catalog's are not its settings.
  const childEnv = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('USER_SERVICE_')));
  childEnv.DEV_STACK = ha.stackName;
  return new Promise((resolve, reject) => {
    execFile(ha.devScript, args, { env: childEnv, timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
      if (err) reject(new Error(`./dev ${args.join(' ')} failed (${err.code ?? err.signal}):\n${output}`));
      else resolve(output);
    });
  });
}

export const restart = (name) => dev('restart', name);
export const start = (name) => dev('start', name);
export const failoverMysql = () => dev('failover', 'mysql');

// --------------------------------------------------------------------------------------------- Redis
// A connection lost or refused is a transport error (pollUntil asks again): a node being
// reconfigured drops its clients (Sentinel sends CLIENT KILL TYPE normal with REPLICAOF).
export async function withRedis(port, fn) {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } catch (err) {
    if (err.code?.startsWith?.('ECONN') || err.code === 'EPIPE' || /Socket|ClientClosed|Timeout/.test(err.name ?? '')) err.transport = true;
    throw err;
  } finally {
    client.destroy(); // not quit(): Sentinel has no QUIT command
  }
}

function pairs(reply) {
  const o = {};
  if (reply instanceof Map) for (const [k, v] of reply) o[String(k)] = v;
  else if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) o[String(reply[i])] = reply[i + 1];
  else Object.assign(o, reply);
  return o;
}

// What a sentinel says the master of `users` is: '127.0.0.1:PORT' (a proxy address), or null.
export async function sentinelMaster(sentinel) {
  const reply = await withRedis(sentinel.port, (c) => c.sendCommand(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', ha.masterName]));
  return reply ? `${reply[0]}:${reply[1]}` : null;
}

// SENTINEL MASTER users as a plain object (num-slaves, num-other-sentinels, flags, ...).
export async function sentinelView(sentinel) {
  return pairs(await withRedis(sentinel.port, (c) => c.sendCommand(['SENTINEL', 'MASTER', ha.masterName])));
}

// Each sentinel's answer (or the error it gave), by name.
export async function sentinelMasters() {
  const out = {};
  for (const s of ha.sentinels) out[s.name] = await sentinelMaster(s).catch((err) => `error: ${err.message}`);
  return out;
}

// The Redis node behind a proxy address '127.0.0.1:PORT'.
export function redisNodeAt(address) {
  return ha.redis.find((n) => address === `127.0.0.1:${n.proxyPort}`) ?? null;
}

// ROLE of a node on its real port: 'master', 'slave', or 'down'.
export async function redisRole(n) {
  try {
    const reply = await withRedis(n.port, (c) => c.sendCommand(['ROLE']));
    return String(reply[0]);
  } catch {
    return 'down';
  }
}

export async function redisInfo(n, section = 'replication') {
  const text = String(await withRedis(n.port, (c) => c.sendCommand(['INFO', section])));
  return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
}

// The Redis master every sentinel names, if they all agree and it says it is one; else null.
export async function agreedRedisMaster() {
  const answers = Object.values(await sentinelMasters());
  if (answers.some((a) => a !== answers[0])) return null;
  const master = redisNodeAt(answers[0]);
  if (!master || (await redisRole(master)) !== 'master') return null;
  return master;
}

// ------------------------------------------------------------------------------------------- MariaDB
// A connection to a node's real port. `admin` administers (root, over TCP, has no READ_ONLY ADMIN on
// the HA stack: it cannot write to a read-only node, as the service cannot).
export async function withMariadb(n, fn, { user = 'root' } = {}) {
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: n.port, user, connectTimeout: 2000, multipleStatements: true });
  try {
    return await fn(conn);
  } finally {
    await conn.end().catch(() => {});
  }
}

export async function mariadbValue(n, sql, opts) {
  return withMariadb(n, async (c) => {
    const [rows] = await c.query({ sql, rowsAsArray: true });
    return rows[0]?.[0];
  }, opts);
}

// 'primary' (read_only = 0), 'replica' (read-only, replication configured), 'read-only' or 'down'.
export async function mariadbRole(n) {
  try {
    const readOnly = Number(await mariadbValue(n, 'SELECT @@read_only'));
    if (readOnly === 0) return 'primary';
    const status = await mariadbSlaveStatus(n);
    return status ? 'replica' : 'read-only';
  } catch {
    return 'down';
  }
}

export async function mariadbSlaveStatus(n) {
  return withMariadb(n, async (c) => (await c.query('SHOW SLAVE STATUS'))[0][0] ?? null, { user: 'admin' });
}

export async function mariadbRoles() {
  const out = {};
  for (const n of ha.mariadb) out[n.name] = await mariadbRole(n);
  return out;
}

// The primary ./dev recorded (the one `./dev failover mysql` made last; mariadb-1 at first).
export function recordedPrimary() {
  try {
    return fs.readFileSync(path.join(ha.stackDir, 'mariadb-primary'), 'utf8').trim();
  } catch {
    return 'mariadb-1';
  }
}

export function mariadbNode(name) {
  const n = ha.mariadb.find((m) => m.name === name);
  if (!n) throw new Error(`unknown MariaDB node '${name}'`);
  return n;
}

// ------------------------------------------------------------------------------------------ requests
export const viaHaproxy = (method, urlPath, opts = {}) => call(method, urlPath, { ...opts, baseUrl: ha.haproxyUrl });
export function viaInstance(name, method, urlPath, opts = {}) {
  const i = ha.instances.find((x) => x.name === name);
  if (!i) throw new Error(`unknown instance '${name}'`);
  return call(method, urlPath, { ...opts, baseUrl: i.url });
}

// ----------------------------------------------------------------------------------------- the hooks
async function waitFor(what, withinMs, probe) {
  const started = performance.now();
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last === true) return;
    } catch (err) {
      last = err.message;
    }
    if (performance.now() - started > withinMs) throw new Error(`HA stack: ${what} not within ${withinMs} ms; last: ${typeof last === 'string' ? last : JSON.stringify(last)}`);
    await sleep(100);
  }
}

// Brings the stack back to whole and healthy: faultproxy reset, stopped processes continued, dead
// ones started again (./dev start), one writable MariaDB node with a running replica, Sentinels in
// agreement over a master with 2 linked replicas, every instance ready, HAProxy using all three.
export async function makeWhole() {
  for (const name of COMPONENTS) {
    const state = processState(name);
    if (state === 'stopped') await resume(name);
    else if (state === 'dead') await start(name);
  }
  await faults.resetAll();

  // MariaDB: exactly one primary (a returning old primary may be writable: it rejoins as replica).
  let roles = await mariadbRoles();
  const writable = Object.keys(roles).filter((n) => roles[n] === 'primary');
  if (writable.length > 1) await restart(writable.find((n) => n !== recordedPrimary()) ?? writable[1]);
  else if (writable.length === 0) await failoverMysql();
  await waitFor('a MariaDB primary with a running, semi-sync replica', 15_000, async () => {
    roles = await mariadbRoles();
    const primary = ha.mariadb.find((n) => roles[n.name] === 'primary');
    const replica = ha.mariadb.find((n) => n !== primary);
    if (!primary) return roles;
    const s = await mariadbSlaveStatus(replica);
    const clients = await withMariadb(primary, async (c) => (await c.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'"))[0][0]?.Value, { user: 'admin' });
    return (s?.Slave_IO_Running === 'Yes' && s?.Slave_SQL_Running === 'Yes' && Number(clients) >= 1) ||
      { roles, io: s?.Slave_IO_Running, sql: s?.Slave_SQL_Running, error: s?.Last_IO_Error || s?.Last_SQL_Error, semiSyncClients: clients };
  });

  // Redis: the Sentinels agree (a restarted old master is turned into a replica within ~10 s).
  await waitFor('Sentinels agreeing on a master with 2 linked replicas', 30_000, async () => {
    const master = await agreedRedisMaster();
    if (!master) return await sentinelMasters();
    for (const n of ha.redis.filter((x) => x !== master)) {
      const info = await redisInfo(n);
      if (info.role !== 'slave' || info.master_link_status !== 'up' || Number(info.master_port) !== master.proxyPort) return { [n.name]: info };
    }
    for (const s of ha.sentinels) {
      const v = await sentinelView(s);
      if (Number(v['num-slaves']) < 2 || Number(v['num-other-sentinels']) < 2 || /down/.test(v.flags)) return { [s.name]: v };
    }
    return true;
  });

  for (const i of ha.instances) {
    let last;
    await waitFor(`${i.name} ready`, 20_000, async () => {
      last = await readiness(i.url);
      return last.answer.status === 200 || describe(last.answer);
    });
  }
  await waitFor('HAProxy serving from all three instances', 10_000, async () => {
    const seen = new Set();
    for (let k = 0; k < 9; k++) {
      const a = await viaHaproxy('GET', '/health/ready', { hangMs: 3000 });
      if (a.status !== 200) return describe(a);
      seen.add(a.headers.get('x-served-by'));
    }
    return seen.size === ha.instances.length || `served by ${[...seen].join(', ')}`;
  });
}
