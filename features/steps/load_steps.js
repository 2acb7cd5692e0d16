// Steps of admission-control.feature: bursts of concurrent requests, far above what the service admits
// to MariaDB at once, and what became of each; concurrent reads of one user and the MariaDB reads they
// cost. How many requests the service admits comes from GET /config (mysql.max_in_flight, 0 meaning
// mysql.pool_size, plus mysql.max_queued); the counters from GET /metrics (both on the admin listener).
import * as assert from '../support/check.js';

import { Then, When } from '@cucumber/cucumber';

import * as data from '../support/data.js';
import { call, describe, pollUntil } from '../support/service.js';
import { stack } from '../support/stack.js';

// Requests the service lets do MariaDB work at once, plus those it lets wait for their turn.
function admits(world) {
  const mysql = world.settings.raw.mysql ?? {};
  const inFlight = Number(mysql.max_in_flight) > 0 ? Number(mysql.max_in_flight) : Number(mysql.pool_size);
  const queued = Number(mysql.max_queued);
  assert.that(Number.isInteger(inFlight) && Number.isInteger(queued), `GET /config lacks mysql.max_in_flight, mysql.pool_size or mysql.max_queued: ${JSON.stringify(mysql)}`);
  return inFlight + queued;
}

// The sum of a metric's samples (every label set) in GET /metrics (on the admin listener).
async function metricSum(name) {
  const answer = await call('GET', '/metrics', { baseUrl: stack.adminUrl });
  let sum = 0;
  for (const line of answer.text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

let bursts = 0;
// `n` concurrent PUTs of users of their own; their answers, in order. First as many concurrent
// GET /health/live: they open the connections the PUTs then reuse (so no PUT's time includes a TCP
// handshake), and the slowest of them is the burst's baseline: what answering that many requests at
// once costs this machine and the client, whatever MariaDB does (`world.burstBaselineMs`).
async function writeBurst(world, n, { baseline = true } = {}) {
  if (baseline) {
    const live = await Promise.all(Array.from({ length: n }, () => call('GET', '/health/live')));
    world.burstBaselineMs = Math.max(...live.map((a) => a.ms));
  }
  const tag = `${world.userId}-b${++bursts}`;
  const ids = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  const answers = await Promise.all(ids.map((id) => call('PUT', `/users/${encodeURIComponent(id)}`, { body: { name: 'Load' } })));
  return ids.map((id, i) => ({ id, answer: answers[i] }));
}

const isShed = (a) => a.status === 503 && /\bshed\b/.test(a.json?.error ?? '');

When(/^a burst of (\d+) times as many concurrent writes as the service admits is made$/, async function (times) {
  this.shedBefore = await metricSum('user_service_requests_shed_total');
  this.burst = await writeBurst(this, Number(times) * admits(this));
  this.answers.push(...this.burst.map((w) => w.answer));
  const count = {};
  for (const { answer } of this.burst) {
    const k = isShed(answer) ? 'shed' : String(answer.status);
    count[k] = (count[k] ?? 0) + 1;
  }
  this.attach(`${this.burst.length} concurrent writes (the service admits ${admits(this)}): ${JSON.stringify(count)}; as many GET /health/live took up to ${Math.round(this.burstBaselineMs)} ms`);
});

// "At once": those shed on arrival (the bulk: the queue was full, or MariaDB's pace left no room)
// within the burst's baseline (see writeBurst) plus half the request deadline, which a request that
// queued into its deadline cannot meet; the median shed must meet it. A waiting request is shed later,
// when a freed turn shows it would not finish in time (the feature's text): every shed, that one
// included, comes before the deadline it would otherwise have waited out.
Then(/^some of them were shed at once, each a 503 saying so with Retry-After$/, async function () {
  const shed = this.burst.filter((w) => isShed(w.answer));
  assert.that(shed.length > 0, `no write of the burst was shed; answers: ${this.burst.slice(0, 5).map((w) => describe(w.answer)).join('; ')} ...`);
  const atOnce = this.burstBaselineMs + this.settings.requestDeadlineMs / 2;
  const beforeDeadline = this.burstBaselineMs + this.settings.requestDeadlineMs;
  for (const { answer } of shed) {
    assert.that(answer.ms < beforeDeadline, `a shed write took ${Math.round(answer.ms)} ms, as long as waiting out the ${this.settings.requestDeadlineMs} ms deadline (after the burst's baseline, ${Math.round(this.burstBaselineMs)} ms): ${describe(answer)}`);
    assert.that(Number(answer.headers.get('retry-after')) >= 1, `a shed write without Retry-After: ${describe(answer)}`);
    assert.equal(answer.json?.outcome, 'not_applied', `a shed write must say nothing was written: ${describe(answer)}`);
    assert.equal(answer.json?.request_id, answer.headers.get('x-request-id'), `the body's request_id is not the X-Request-Id: ${describe(answer)}`);
  }
  const ms = shed.map((w) => w.answer.ms).sort((a, b) => a - b);
  const median = ms[ms.length >> 1];
  assert.that(median < atOnce, `the median shed write took ${Math.round(median)} ms, not under ${Math.round(atOnce)} ms (the burst's baseline, ${Math.round(this.burstBaselineMs)} ms, plus half the ${this.settings.requestDeadlineMs} ms deadline): shedding is not at once`);
  this.attach(`${shed.length} shed, in ${Math.round(ms[0])} to ${Math.round(ms[ms.length - 1])} ms (median ${Math.round(median)} ms)`);
});

Then(/^no answer of the burst came later than the request deadline$/, async function () {
  const bound = this.burstBaselineMs + this.settings.bounds.request;
  for (const { answer } of this.burst) {
    assert.that(answer.ms <= bound, `answered after ${Math.round(answer.ms)} ms, past the request deadline (${this.settings.requestDeadlineMs} ms, with margin ${this.settings.bounds.request} ms, after the burst's baseline ${Math.round(this.burstBaselineMs)} ms): ${describe(answer)}`);
    assert.that([200, 201, 503].includes(answer.status), `a write of the burst answered ${describe(answer)}`);
  }
});

Then(/^some writes of the burst succeeded$/, async function () {
  const ok = this.burst.filter((w) => w.answer.status === 201 || w.answer.status === 200);
  assert.that(ok.length > 0, 'no write of the burst succeeded: MariaDB, slowed but answering, served none');
  for (const { id } of ok.slice(0, 20)) {
    const stored = await data.storedUser(id);
    assert.equal(stored?.name, 'Load', `${id} was answered 2xx but MariaDB holds ${JSON.stringify(stored)}`);
  }
});

Then(/^the shed writes left nothing in MariaDB$/, async function () {
  for (const { id, answer } of this.burst.filter((w) => isShed(w.answer))) {
    const stored = await data.storedUser(id);
    assert.equal(stored, null, `${id} was shed (${describe(answer)}), yet MariaDB holds ${JSON.stringify(stored)}`);
  }
});

Then(/^the service counted every shed write$/, async function () {
  const shed = this.burst.filter((w) => isShed(w.answer)).length;
  const counted = (await metricSum('user_service_requests_shed_total')) - this.shedBefore;
  assert.equal(counted, shed, `user_service_requests_shed_total rose by ${counted}; ${shed} answers said shed`);
});

Then(/^within (\d+) s a burst of as many concurrent writes as the service admits all succeed$/, async function (seconds) {
  const since = this.enabledAt.get('mysql');
  assert.that(since !== undefined, "'mysql' was not brought back in this scenario");
  let last;
  const took = await pollUntil(
    async () => {
      // The connections of the first burst are still open (keep-alive): no baseline needed.
      last = await writeBurst(this, admits(this), { baseline: false });
      return last.every((w) => w.answer.status === 201);
    },
    {
      withinMs: Math.max(0, Number(seconds) * 1000 - (performance.now() - since)),
      everyMs: 50,
      explain: () => `a burst of ${admits(this)} writes still had ${last.filter((w) => w.answer.status !== 201).length} not 201, e.g. ${describe(last.find((w) => w.answer.status !== 201)?.answer)}`,
    },
  );
  this.attach(`a whole burst of ${admits(this)} writes succeeded ${Math.round(performance.now() - since)} ms after MariaDB was healed (${Math.round(took)} ms of bursts)`);
});

// ---------------------------------------------------------------------------------- single-flight
When(/^(\d+) concurrent reads of that user are made$/, async function (n) {
  this.coalescedBefore = await metricSum('user_service_reads_coalesced_total');
  const path = `/users/${encodeURIComponent(this.userId)}`;
  this.reads = await Promise.all(Array.from({ length: Number(n) }, () => call('GET', path)));
  this.answers.push(...this.reads);
});

Then(/^every one answers the user as stored$/, async function () {
  for (const a of this.reads) {
    assert.equal(a.status, 200, describe(a));
    assert.equal(a.json?.name, this.oldName, describe(a));
  }
});

// Reads answered from MariaDB ("origin") that were not another read's shared answer made a MariaDB
// read each (the others were cache hits after the first read's fill).
Then(/^at most (\d+) MariaDB reads served them$/, async function (most) {
  const coalesced = (await metricSum('user_service_reads_coalesced_total')) - this.coalescedBefore;
  const origin = this.reads.filter((a) => a.headers.get('x-data-source') === 'origin').length;
  const made = origin - coalesced;
  this.attach(`${this.reads.length} reads: ${origin} from MariaDB, ${coalesced} of them sharing another's read: ${made} MariaDB read(s)`);
  assert.that(made >= 1 && made <= Number(most), `${made} MariaDB reads for ${this.reads.length} concurrent reads of one user (${origin} answered from MariaDB, ${coalesced} coalesced)`);
});
