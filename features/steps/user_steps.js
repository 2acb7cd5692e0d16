// Domain steps in the article's words: users cached, stored, requested, created and updated, and
// where the answer came from ('Redis' is the cache, 'MySQL' the origin: MariaDB).
import * as assert from '../support/check.js';

import { Given, Then, When } from '@cucumber/cucumber';

import * as data from '../support/data.js';
import { call, describe, pollUntil } from '../support/service.js';
import { proxyName } from '../support/stack.js';

const SOURCES = { redis: 'cache', cache: 'cache', mysql: 'origin', mariadb: 'origin', origin: 'origin' };
function sourceOf(spelled) {
  const s = SOURCES[spelled.toLowerCase()];
  if (!s) throw new Error(`unknown data source '${spelled}' (Redis or MySQL)`);
  return s;
}

function userPath(id) {
  return `/users/${encodeURIComponent(id)}`;
}

Given('user {string} with name {string} is cached', async function (id, name) {
  await data.cacheUser(id, name, await this.versionOf(id));
  this.knownNames ??= {};
  this.knownNames[id] = name;
});

Given('user {string} with name {string} is stored', async function (id, name) {
  await data.storeUser(id, name, await this.versionOf(id));
  this.knownNames ??= {};
  this.knownNames[id] = name;
});

When('user {string} is requested', async function (id) {
  this.answers.push(await call('GET', userPath(id)));
});

When('new user created with id {string} and name {string}', async function (id, name) {
  this.answers.push(await call('PUT', userPath(id), { body: { name } }));
});

When('user is updated with id {string} and name {string}', async function (id, name) {
  this.answers.push(await call('PUT', userPath(id), { body: { name } }));
});

function checkReturned(world, answer, id, name, source) {
  assert.equal(answer.status, 200, `expected the user '${id}', got ${describe(answer)}`);
  assert.equal(answer.json?.id, id, `expected the user '${id}', got ${describe(answer)}`);
  if (name !== undefined) assert.equal(answer.json?.name, name, `expected the name '${name}', got ${describe(answer)}`);
  assert.equal(answer.headers.get('x-data-source'), sourceOf(source), `expected the user from '${source}' (X-Data-Source: ${sourceOf(source)}), got ${describe(answer)}`);
}

Then('the user with id {string} is returned from {string}', function (id, source) {
  checkReturned(this, this.lastAnswer, id, this.knownNames?.[id], source);
});

Then('the user with id {string} and name {string} is returned from {string}', function (id, name, source) {
  checkReturned(this, this.lastAnswer, id, name, source);
});

Then('the user with id {string} and name {string} is returned', function (id, name) {
  const a = this.lastAnswer;
  assert.equal(a.status, 200, `expected the user '${id}', got ${describe(a)}`);
  assert.equal({ id: a.json?.id, name: a.json?.name }, { id, name }, `got ${describe(a)}`);
});

Then('HTTP {int} is returned', function (status) {
  assert.equal(this.lastAnswer.status, status, `got ${describe(this.lastAnswer)}`);
  if (status === 503) assert.that(this.lastAnswer.headers.get('retry-after'), `a 503 without Retry-After: ${describe(this.lastAnswer)}`);
});

Then('the stale user with id {string} and name {string} is returned from {string}, marked stale', function (id, name, source) {
  checkReturned(this, this.lastAnswer, id, name, source);
  assert.equal(this.lastAnswer.headers.get('x-cache-stale'), 'true', `expected X-Cache-Stale: true, got ${describe(this.lastAnswer)}`);
});

// Deterministic replacement for the article's "we wait a bit": polls the Redis master directly (no
// request to the service) from the moment the proxy came back.
Then('within {int} s of {string} being up, the cache holds user {string} with name {string}', async function (seconds, spelled, id, name) {
  const proxy = proxyName(spelled);
  const since = this.enabledAt.get(proxy);
  assert.that(since !== undefined, `'${proxy}' was not brought back in this scenario`);
  let last;
  const bound = seconds * 1000 + (this.settings.bounds.recovery - 1000);
  const took = await pollUntil(
    async () => {
      last = await data.cachedUser(id);
      return last?.name === name;
    },
    { withinMs: Math.max(0, bound - (performance.now() - since)), everyMs: 20, explain: () => `the Redis master holds ${JSON.stringify(last)}` },
  );
  this.attach(`the cache held '${name}' ${Math.round(performance.now() - since)} ms after '${proxy}' came back (${Math.round(took)} ms of polling)`);
});

Then('MySQL holds user {string} with name {string}', async function (id, name) {
  const stored = await data.storedUser(id);
  assert.equal(stored?.name, name, `MariaDB holds ${JSON.stringify(stored)} for '${id}'`);
});

Then('MySQL holds no user {string}', async function (id) {
  const stored = await data.storedUser(id);
  assert.equal(stored, null, `MariaDB holds ${JSON.stringify(stored)} for '${id}', which was never acknowledged`);
});

Then('the answer arrives within the {word} deadline', function (which) {
  const s = this.settings;
  const deadline = { request: s.requestDeadlineMs, redis: s.redisDeadlineMs, mariadb: s.mariadbDeadlineMs }[which.toLowerCase()];
  assert.that(deadline !== undefined, `unknown deadline '${which}' (request, Redis, MariaDB)`);
  const bound = Math.round(deadline + Math.max(300, deadline * 0.3));
  assert.that(this.lastAnswer.ms <= bound, `answered in ${Math.round(this.lastAnswer.ms)} ms, past the ${which} deadline of ${deadline} ms (bound ${bound} ms): ${describe(this.lastAnswer)}`);
});
