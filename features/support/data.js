// The data behind user-service, seeded and inspected directly (not through faultproxy): Redis master
// and replica with `redis`, MariaDB with `mysql2`.
import mysql from 'mysql2/promise';
import { createClient } from 'redis';

import { settings } from './service.js';
import { stack } from './stack.js';

let master;
let replica;
let db;

function redisClient(port) {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => {}); // a failed command rejects its promise; this only silences the emitter
  return client;
}

export async function open() {
  if (!master) {
    master = redisClient(stack.redisMasterPort);
    replica = redisClient(stack.redisReplicaPort);
    await Promise.all([master.connect(), replica.connect()]);
  }
  if (!db) {
    db = await mysql.createConnection({ host: '127.0.0.1', port: stack.mariadbPort, user: 'root', connectTimeout: 2000 });
  }
}

export async function close() {
  await Promise.allSettled([master?.quit(), replica?.quit(), db?.end()]);
  master = replica = db = undefined;
}

export async function redisMaster() {
  await open();
  return master;
}

export async function mariadb() {
  await open();
  return db;
}

// ------------------------------------------------------------------------------------------- schema
// The service creates `<database>`.`user` (id, name, version, updated_at) and the sequence
// `user_version` that every write takes its version from; seeded rows take theirs from it too, so a
// later write of the service always carries a higher version than the seeded cache entry.
let schema;
async function table() {
  if (schema) return schema;
  const s = await settings();
  schema = { name: `\`${s.database}\`.\`user\``, sequence: `\`${s.database}\`.\`user_version\`` };
  return schema;
}

export async function nextVersion() {
  const t = await table();
  const [rows] = await (await mariadb()).query({ sql: `SELECT NEXT VALUE FOR ${t.sequence}`, rowsAsArray: true });
  return Number(rows[0][0]);
}

export async function resetData() {
  const t = await table();
  await (await mariadb()).query(`DELETE FROM ${t.name}`);
  const m = await redisMaster();
  await m.sendCommand(['FLUSHALL']);
  await m.sendCommand(['WAIT', '1', '2000']);
}

export async function storeUser(id, name, version) {
  const t = await table();
  await (await mariadb()).query(
    `INSERT INTO ${t.name} (id, name, version) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE name = VALUES(name), version = VALUES(version)`,
    [id, name, version],
  );
}

// What MariaDB holds for the user: { name, version } or null.
export async function storedUser(id) {
  const t = await table();
  const [rows] = await (await mariadb()).query(`SELECT name, version FROM ${t.name} WHERE id = ?`, [id]);
  return rows.length ? { name: rows[0].name, version: Number(rows[0].version) } : null;
}

async function cacheKey(id) {
  return `${(await settings()).cacheKeyPrefix}${id}`;
}

// Caches the user as the service does (hash with id, name, version; the configured TTL) and waits
// until the replica has it, so a scenario that takes the master away finds it there.
export async function cacheUser(id, name, version) {
  const m = await redisMaster();
  const key = await cacheKey(id);
  await m.sendCommand(['HSET', key, 'id', id, 'name', name, 'version', String(version)]);
  await m.sendCommand(['EXPIRE', key, String((await settings()).cacheTtlS)]);
  const acked = await m.sendCommand(['WAIT', '1', '2000']);
  if (Number(acked) < 1) throw new Error(`the Redis replica did not acknowledge ${key} within 2 s`);
}

function hashToObject(reply) {
  if (reply instanceof Map) return Object.fromEntries(reply);
  if (Array.isArray(reply)) {
    const o = {};
    for (let i = 0; i + 1 < reply.length; i += 2) o[String(reply[i])] = String(reply[i + 1]);
    return o;
  }
  return reply ?? {};
}

// What the Redis master holds for the user: the hash's fields, or null when there is no key.
export async function cachedUser(id) {
  const m = await redisMaster();
  const h = hashToObject(await m.sendCommand(['HGETALL', await cacheKey(id)]));
  return Object.keys(h).length ? h : null;
}
