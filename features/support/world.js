// The state of one scenario, and the hooks that give every scenario a healthy, empty stack: faultproxy
// reset, user-service reporting every dependency up, Redis and MariaDB emptied. Scenarios therefore do
// not depend on their order.
import { After, AfterAll, AfterStep, Before, setDefaultTimeout, setWorldConstructor, World } from '@cucumber/cucumber';

import * as data from './data.js';
import * as faults from './faults.js';
import { attachAnswers, attachNewAnswers, readiness, settings, successfulCalls, waitUntilServing } from './service.js';
import { stopInstances } from './instances.js';
import { SCRATCH_PROXY, stack } from './stack.js';

// A scenario's own bounds are derived from the service's deadlines; this only stops a wedged step.
setDefaultTimeout(30_000);

// Scenario users get ids of their own (the service remembers recent writes for a while, to spot a
// lagging replica: nothing of an earlier scenario may bear on a later one).
const runTag = Date.now().toString(36);
let scenarios = 0;

class CatalogWorld extends World {
  constructor(options) {
    super(options);
    this.userId = `u-${runTag}-${++scenarios}`;
    this.versions = new Map();
    this.oldName = 'Jack';
    this.newName = 'Joe';
    this.answers = [];
    this.faults = new Map(); // proxy -> fault kinds applied in this scenario
    this.enabledAt = new Map(); // proxy -> performance.now() when it was brought back
  }

  get lastAnswer() {
    return this.answers[this.answers.length - 1];
  }

  // The version a seeded user has in this scenario (cache and store agree on it), taken from the
  // service's own version sequence.
  async versionOf(id) {
    if (!this.versions.has(id)) this.versions.set(id, await data.nextVersion());
    return this.versions.get(id);
  }

  noteFault(proxy, kind) {
    if (!this.faults.has(proxy)) this.faults.set(proxy, new Set());
    this.faults.get(proxy).add(kind);
  }
}
setWorldConstructor(CatalogWorld);

// The service's settings and the connections to the data are made on first use (in the first Before):
// the @ha scenarios start with a stack that may still be broken, which their own hook repairs.

// The @ha scenarios run against the HA stack, with hooks of their own (support/ha.js).
Before({ tags: 'not @ha' }, async function () {
  this.settings = await settings();
  const faulted = await faults.resetAll();
  const before = Object.fromEntries(Object.entries(await successfulCalls()).filter(([dep]) => faulted.includes(dep)));
  // A cache update the service remembered during the previous scenario's outage is applied when the
  // master is back; waiting for readiness first lets it land before the data is emptied.
  await waitUntilServing({ withinMs: this.settings.bounds.recovery + this.settings.bounds.notice, before });
  await data.resetData();
});

// The scenarios that check faultproxy itself work on a proxy of their own.
Before({ tags: '@faultproxy' }, async function () {
  await faults.createProxy(SCRATCH_PROXY, `127.0.0.1:${stack.redisMasterPort}`);
});

After({ tags: '@faultproxy' }, async function () {
  await faults.removeProxy(SCRATCH_PROXY);
});

// Cleanups of every scenario (After hooks run in the reverse order of their definition: this one last).
After(async function () {
  for (const cleanup of this.cleanups ?? []) cleanup();
  await stopInstances();
  for (const db of this.databasesToDrop ?? []) await (await data.mariadb()).query(`DROP DATABASE IF EXISTS \`${db}\``);
});

// Every scenario's report shows its answers (status, data source, time) under the step that got them.
AfterStep(function () {
  attachNewAnswers(this);
});

// ... and the service's readiness at its end; a failed one also faultproxy's state.
After({ tags: 'not @ha' }, async function ({ result }) {
  const ready = await readiness().catch((err) => ({ answer: null, err }));
  attachAnswers(this, [['/health/ready', ready]]);
  if (result?.status === 'FAILED') this.attach(`faultproxy:\n${await faults.describeProxies()}`, 'text/plain');
});

AfterAll(async function () {
  await faults.resetAll().catch(() => {});
  await stopInstances();
  await data.close();
});
