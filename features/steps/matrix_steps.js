// The steps of the failure matrix's Scenario Outlines: a user prepared for one of the four operations,
// the operation, its answer checked against the matrix cell, the store checked against the answer,
// and the recovery once the faults are removed.
import * as assert from '../support/check.js';

import { Given, Then, When } from '@cucumber/cucumber';

import { checkAnswer, perform } from '../support/answers.js';
import * as data from '../support/data.js';
import * as faults from '../support/faults.js';
import { call, describe, pollUntil } from '../support/service.js';

const OP = '(cached read|uncached read|write|delete)';

// cached read: stored and cached; uncached read: stored only; write and delete: an existing user,
// stored and cached, as it is after it was last read.
Given(new RegExp(`^a user for the ${OP}$`), async function (op) {
  this.operation = op;
  await data.storeUser(this.userId, this.oldName, await this.versionOf(this.userId));
  if (op !== 'uncached read') await data.cacheUser(this.userId, this.oldName, await this.versionOf(this.userId));
});

When(new RegExp(`^the ${OP} is made$`), async function (op) {
  this.operation = op;
  await perform(op, this);
});

Then(/^the answer is (.+)$/, async function (cell) {
  await checkAnswer(this, this.operation, cell);
});

// A write or delete answered 2xx is in MariaDB. One answered 503 left nothing behind when it cannot
// have reached MariaDB (its proxy was down) or its answer says so ("outcome": "not_applied"); otherwise its commit may have succeeded with only the
// acknowledgement lost, the one ambiguity no system avoids, so either state is accepted. Reads change
// nothing.
Then(/^MariaDB agrees with the answer$/, async function () {
  const stored = await data.storedUser(this.userId);
  const op = this.operation;
  const statuses = this.answers.map((a) => a.status);
  // Nothing was written when MariaDB was unreachable, or when every 503 said so ("outcome":
  // "not_applied": MariaDB refused the write or was not called).
  const certain = (this.faults.get('mysql')?.has('down') ?? false)
    || this.answers.every((a) => a.status !== 503 || a.json?.outcome === 'not_applied');
  const what = `after ${this.answers.length} answer(s) ${statuses.join(', ')}`;
  if (op === 'write') {
    if (statuses.some((s) => s === 200 || s === 201)) {
      assert.equal(stored?.name, this.newName, `the write was answered 2xx but MariaDB holds ${JSON.stringify(stored)} (${what})`);
    } else if (certain) {
      assert.equal(stored?.name, this.oldName, `the write was answered 503 with MariaDB unreachable or "not_applied", yet MariaDB holds ${JSON.stringify(stored)}`);
    } else {
      assert.that([this.oldName, this.newName].includes(stored?.name), `MariaDB holds ${JSON.stringify(stored)}, neither the old nor the new name (${what})`);
    }
  } else if (op === 'delete') {
    if (statuses.includes(204)) {
      assert.equal(stored, null, `the delete was answered 204 but MariaDB still holds ${JSON.stringify(stored)}`);
    } else if (certain) {
      assert.that(stored, `the delete was answered 503 with MariaDB unreachable or "not_applied", yet the user is gone from MariaDB (${what})`);
    }
  } else {
    assert.equal(stored?.name, this.oldName, `a read changed MariaDB: it holds ${JSON.stringify(stored)}`);
  }
});

// Removes every fault of the scenario, then polls (no fixed wait) until a read of the user answers
// what MariaDB holds, from the cache when the user exists (so the cache is right again too).
// A wrong value on the way fails at once, except in the one case the contract leaves open: a write or
// delete answered 503 under a MariaDB fault may have committed with only its acknowledgement lost, and
// the previous value stays a correct answer until the service has re-read MariaDB (within the bound).
Then(/^within (\d+) s of the faults being removed, that user is served as stored$/, async function (seconds) {
  const ambiguous = this.faults.has('mysql') && ['write', 'delete'].includes(this.operation)
    && this.answers.some((a) => a.status === 503);
  for (const proxy of [...this.faults.keys()]) await faults.heal(proxy);
  this.faults.clear();
  await untilServedAsStored(this, Number(seconds) * 1000 + (this.settings.bounds.recovery - 1000), ambiguous);
});

// Polls, within `bound` ms, until a read of the scenario's user answers what MariaDB holds, from the
// cache when the user exists. `ambiguous`: a write or delete answered 503 under a MariaDB fault may
// have committed, so the previous value stays a correct answer until the service re-read MariaDB.
export async function untilServedAsStored(world, bound, ambiguous) {
  const stored = await data.storedUser(world.userId);
  const path = `/users/${encodeURIComponent(world.userId)}`;
  let last;
  let wrong;
  const isWrong = (why) => {
    assert.that(ambiguous, `recovering: ${why}`);
    wrong = why;
    return false;
  };
  await pollUntil(
    async () => {
      last = await call('GET', path);
      if (last.status === 200) {
        if (!stored) return isWrong(`the deleted user is still served: ${describe(last)}`);
        if (last.json?.name !== stored.name) return isWrong(`a wrong value (MariaDB holds '${stored.name}'): ${describe(last)}`);
        return last.headers.get('x-data-source') === 'cache';
      }
      if (last.status === 404) {
        if (stored) return isWrong(`404 for a user MariaDB holds as ${JSON.stringify(stored)}`);
        return true;
      }
      assert.equal(last.status, 503, `recovering: an answer outside the contract: ${describe(last)}`);
      return false;
    },
    {
      withinMs: bound,
      everyMs: 25,
      explain: () => (wrong
        ? `the service still serves the value from before a ${world.operation} that was answered 503 but committed (MariaDB holds ${JSON.stringify(stored)}): ${describe(last)}`
        : `the user is not served as stored (MariaDB holds ${JSON.stringify(stored)}) from the cache yet; last: ${describe(last)}`),
    },
  );
}

// With MariaDB healthy, a read must answer exactly what MariaDB holds: never the stale cache entry
// the write or delete could not correct, never a 503.
Then(/^a read of that user during the fault answers what MariaDB holds$/, async function () {
  const stored = await data.storedUser(this.userId);
  const a = await call('GET', `/users/${encodeURIComponent(this.userId)}`);
  if (stored) {
    assert.equal(a.status, 200, `MariaDB holds ${JSON.stringify(stored)}, the read answered ${describe(a)}`);
    assert.equal(a.json?.name, stored.name, `a stale value: MariaDB holds '${stored.name}', the read answered ${describe(a)}`);
  } else {
    assert.equal(a.status, 404, `the user was deleted from MariaDB, the read answered ${describe(a)}`);
  }
  assert.that(a.ms <= this.settings.bounds.request, `answered after ${Math.round(a.ms)} ms: ${describe(a)}`);
});

// The recovery window (recovery-window.feature): the latest answer cost less than the call deadline
// of any dependency brought back in this scenario, over the service's cheapest answer (GET
// /health/live, asked right after). A request that waited for one of them would have paid at least
// that deadline; one that failed fast or found it back at once pays a few ms.
Then(/^that answer did not wait for a deadline$/, async function () {
  const answer = this.lastAnswer;
  assert.that(answer, 'no request was made');
  const back = [...this.enabledAt.keys()];
  assert.that(back.length > 0, 'no dependency was brought back in this scenario');
  const s = this.settings;
  const deadline = Math.min(...back.map((p) => (p === 'mysql' ? s.mariadbDeadlineMs : s.redisDeadlineMs)));
  const live = await call('GET', '/health/live');
  const excess = answer.ms - live.ms;
  this.attach(`answered in ${Math.round(answer.ms)} ms (GET /health/live: ${Math.round(live.ms)} ms)`);
  assert.that(excess < deadline,
    `the ${this.operation} took ${Math.round(answer.ms)} ms (GET /health/live ${Math.round(live.ms)} ms): it waited at least a deadline of ${deadline} ms for ${back.join(', ')}; ${describe(answer)}`);
});

// Right after a write answered 2xx, with no wait: a read of the user answers the written name.
Then(/^a read of that user answers what was written$/, async function () {
  const a = await call('GET', `/users/${encodeURIComponent(this.userId)}`);
  assert.equal(a.status, 200, `the read after the write: ${describe(a)}`);
  assert.equal(a.json?.name, this.newName, `the read after the write answered another name: ${describe(a)}`);
});

// Right after a write answered 2xx, with no wait: the Redis master holds the written name, put there
// by the write itself (not by a later repair).
Then(/^the Redis master holds what was written$/, async function () {
  const cached = await data.cachedUser(this.userId);
  assert.equal(cached?.name, this.newName, `the Redis master holds ${JSON.stringify(cached)} right after the write`);
});
