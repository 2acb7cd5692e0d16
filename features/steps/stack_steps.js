// Steps that talk to the stack's servers directly (not through faultproxy), to check the stack itself.
import * as assert from '../support/check.js';
import { Then, When } from '@cucumber/cucumber';
import mysql from 'mysql2/promise';
import { createClient } from 'redis';

import { stack } from '../support/stack.js';

async function withRedis(port, fn) {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 2000, reconnectStrategy: false } });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.quit();
  }
}

When('the key {string} is set to {string} on the Redis master', async function (key, value) {
  await withRedis(stack.redisMasterPort, (c) => c.set(key, value));
});

Then('the Redis replica returns {string} for {string} within {int} ms', async function (value, key, ms) {
  const deadline = Date.now() + ms;
  let got;
  while (Date.now() < deadline) {
    got = await withRedis(stack.redisReplicaPort, (c) => c.get(key));
    if (got === value) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(got, value, `the replica did not receive '${key}' within ${ms} ms`);
});

Then('MariaDB answers {string} with {string}', async function (sql, expected) {
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: stack.mariadbPort, user: 'root', connectTimeout: 2000 });
  try {
    const [rows] = await conn.query({ sql, rowsAsArray: true });
    assert.equal(String(rows[0][0]), expected, `MariaDB's answer to '${sql}'`);
  } finally {
    await conn.end();
  }
});
