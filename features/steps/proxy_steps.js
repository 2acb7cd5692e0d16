// Steps that check the fault steps themselves: a raw Redis exchange through a proxy of faultproxy,
// timed, so each toxic is seen doing what Toxiproxy's does (faultproxy is a drop-in Toxiproxy, driven
// here, as everywhere, by the unmodified toxiproxy-node-client).
import net from 'node:net';

import { Then, When } from '@cucumber/cucumber';

import * as assert from '../support/check.js';
import { toxiproxy } from '../support/faults.js';
import * as data from '../support/data.js';
import * as faults from '../support/faults.js';
import { proxyName } from '../support/stack.js';

async function listenAddress(proxy) {
  const p = await toxiproxy.get(proxy);
  const [host, port] = p.listen.split(/:(?=\d+$)/);
  return { host: host === 'localhost' ? '127.0.0.1' : host, port: Number(port) };
}

// Sends `payload` (after the connection is up) and records what comes back and when, until the
// connection ends, `complete(received)` holds, or `waitMs` passes.
function exchange({ host, port }, payload, waitMs, complete = () => false) {
  return new Promise((resolve) => {
    const started = performance.now();
    const r = { data: Buffer.alloc(0), chunks: 0, error: null, endedAt: null, firstByteAt: null, refused: false };
    const socket = net.connect(port, host);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d) => {
      r.firstByteAt ??= performance.now() - started;
      r.chunks++;
      r.data = Buffer.concat([r.data, d]);
      if (complete(r.data.toString('latin1'))) finish();
    });
    socket.on('error', (e) => {
      r.error = e.code;
      r.refused = e.code === 'ECONNREFUSED';
      r.endedAt = performance.now() - started;
      finish();
    });
    socket.on('end', () => {
      r.endedAt = performance.now() - started;
      finish();
    });
  });
}

const show = (r) => `received ${JSON.stringify(r.data.toString('latin1').slice(0, 60))} (${r.data.length} bytes, first after ${r.firstByteAt === null ? '-' : Math.round(r.firstByteAt)} ms), ${r.error ? `error ${r.error}` : r.endedAt === null ? 'connection still open' : 'EOF'}${r.endedAt === null ? '' : ` after ${Math.round(r.endedAt)} ms`}`;

// How long "nothing arrives" is watched, and how long any other exchange may take at most.
const SILENCE = 1000;
const WAIT = 5000;

When(/^a PING is sent through '([^']+)'$/, async function (spelled) {
  this.exchange = await exchange(await listenAddress(proxyName(spelled)), 'PING\r\n', WAIT, (got) => got === '+PONG\r\n');
});

When(/^a PING is sent through '([^']+)' and the answer awaited for a while$/, async function (spelled) {
  this.exchange = await exchange(await listenAddress(proxyName(spelled)), 'PING\r\n', SILENCE);
});

When(/^QUIT is sent through '([^']+)'$/, async function (spelled) {
  this.exchange = await exchange(await listenAddress(proxyName(spelled)), 'QUIT\r\n', WAIT);
});

When(/^a value of (\d+) KB is read through '([^']+)'$/, async function (kb, spelled) {
  const value = 'v'.repeat(Number(kb) * 1000);
  await (await data.redisMaster()).sendCommand(['SET', 'catalog:blob', value]);
  await (await data.redisMaster()).sendCommand(['WAIT', '1', '2000']);
  this.expected = `$${value.length}\r\n${value}\r\n`;
  this.exchange = await exchange(await listenAddress(proxyName(spelled)), 'GET catalog:blob\r\nQUIT\r\n', 10_000);
});

Then('the connection is refused', function () {
  assert.that(this.exchange.refused, `expected ECONNREFUSED, ${show(this.exchange)}`);
});

Then('PONG arrives after {int} to {int} ms', function (min, max) {
  const r = this.exchange;
  assert.that(r.data.toString() === '+PONG\r\n', `expected +PONG, ${show(r)}`);
  assert.that(r.firstByteAt >= min && r.firstByteAt <= max, `expected PONG after ${min} to ${max} ms, ${show(r)}`);
});

Then('PONG arrives intact', function () {
  assert.that(this.exchange.data.toString() === '+PONG\r\n', `expected +PONG, ${show(this.exchange)}`);
});

Then('nothing arrives and the connection stays open', function () {
  const r = this.exchange;
  assert.that(r.data.length === 0 && r.endedAt === null, `expected silence on an open connection for ${SILENCE} ms, ${show(r)}`);
});

Then('nothing arrives and the connection is closed after {int} to {int} ms', function (min, max) {
  const r = this.exchange;
  assert.that(r.data.length === 0 && r.error === null && r.endedAt !== null, `expected silence, then EOF, ${show(r)}`);
  assert.that(r.endedAt >= min && r.endedAt <= max, `expected the close after ${min} to ${max} ms, ${show(r)}`);
});

Then('the connection is reset after {int} to {int} ms', function (min, max) {
  const r = this.exchange;
  assert.that(r.error === 'ECONNRESET', `expected ECONNRESET, ${show(r)}`);
  assert.that(r.endedAt >= min && r.endedAt <= max, `expected the reset after ${min} to ${max} ms, ${show(r)}`);
});

Then('exactly {string} arrives, then the connection is closed', function (text) {
  const r = this.exchange;
  const want = text.replace(/\\r/g, '\r').replace(/\\n/g, '\n');
  assert.that(r.data.toString() === want && r.endedAt !== null && r.error === null, `expected exactly ${JSON.stringify(want)} then EOF, ${show(r)}`);
});

Then('+OK arrives at once, and the close after {int} to {int} ms', function (min, max) {
  const r = this.exchange;
  assert.that(r.data.toString() === '+OK\r\n', `expected +OK, ${show(r)}`);
  assert.that(r.firstByteAt < min, `expected +OK before the delay, ${show(r)}`);
  assert.that(r.endedAt !== null && r.endedAt >= min && r.endedAt <= max, `expected the close after ${min} to ${max} ms, ${show(r)}`);
});

// ------------------------------------------------------------------------ toxics on a live link
// A connection kept busy with a PING every few ms, to watch what adding and removing a toxic does to
// the bytes of a link that is already open.
When(/^a connection through '([^']+)' sends a PING every (\d+) ms$/, async function (spelled, every) {
  const { host, port } = await listenAddress(proxyName(spelled));
  const socket = net.connect(port, host);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const live = { socket, sent: 0, received: '', ended: null };
  socket.on('data', (d) => {
    live.received += d.toString('latin1');
  });
  socket.on('error', (e) => {
    live.ended ??= e.code;
  });
  socket.on('end', () => {
    live.ended ??= 'EOF';
  });
  live.timer = setInterval(() => {
    if (live.ended) return;
    socket.write('PING\r\n');
    live.sent++;
  }, Number(every));
  this.live = live;
  this.cleanups = [...(this.cleanups ?? []), () => {
    clearInterval(live.timer);
    socket.destroy();
  }];
});

// Part of the scenario's subject: the toxic is removed while it is (for timed toxics) still pending.
When(/^(\d+) ms later '([^']+)' is healthy again$/, async function (ms, spelled) {
  await new Promise((r) => setTimeout(r, Number(ms)));
  await faults.heal(proxyName(spelled));
});

Then(/^within (\d+) ms every PING sent has been answered, unless the connection was closed$/, async function (ms) {
  const live = this.live;
  const pongs = () => (live.received.match(/\+PONG\r\n/g) ?? []).length;
  await new Promise((r) => setTimeout(r, Number(ms) / 2));
  clearInterval(live.timer);
  const deadline = performance.now() + Number(ms) / 2;
  while (!live.ended && pongs() < live.sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const answered = pongs();
  const garbage = live.received.replace(/\+PONG\r\n/g, '');
  assert.that(garbage === '', `bytes that are no PONG arrived: ${JSON.stringify(garbage.slice(0, 60))}`);
  assert.that(live.ended || answered === live.sent,
    `the connection stayed open but ${live.sent - answered} of ${live.sent} PINGs were never answered: bytes were lost (or held) by the toxic, and a client of this link is now out of step`);
});

Then('the value arrives intact after {int} to {int} ms', function (min, max) {
  const r = this.exchange;
  const got = r.data.toString();
  assert.that(got === `${this.expected}+OK\r\n`, `expected the value then +OK, ${show(r)}`);
  assert.that(r.endedAt >= min && r.endedAt <= max, `expected it all after ${min} to ${max} ms, ${show(r)}`);
});
