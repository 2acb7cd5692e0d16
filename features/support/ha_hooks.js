// The hooks of the @ha scenarios (world.js's hooks skip them): before each, the HA stack is made
// whole and healthy again (support/ha.js, makeWhole); after each, its answers and the instances'
// readiness, and after a failure what the stack looked like.
import { After, Before } from '@cucumber/cucumber';

import * as faults from './faults.js';
import { dev, ha, makeWhole, sentinelMasters } from './ha.js';
import { attachAnswers, readiness, settings } from './service.js';

// Repairing may take a while (a restarted MariaDB node, Sentinel turning a returned master into a
// replica within ~10 s): a bound of its own, above the default step timeout.
Before({ tags: '@ha', timeout: 120_000 }, async function () {
  this.ha = ha;
  await makeWhole();
  this.settings = await settings();
});

After({ tags: '@ha' }, async function ({ result }) {
  // Loops and child processes a scenario started end with it, whatever its outcome.
  for (const cleanup of this.cleanups ?? []) await cleanup();
  this.cleanups = [];
  // Every scenario's report shows its answers and each instance's readiness at its end.
  const ready = [];
  for (const i of ha.instances) ready.push([`${i.name} /health/ready`, await readiness(i.url).catch((err) => ({ answer: null, err }))]);
  attachAnswers(this, ready);
  if (result?.status !== 'FAILED') return;
  const status = await dev('status').catch((err) => err.message);
  this.attach(
    [
      `./dev status:\n${status}`,
      `sentinels: ${JSON.stringify(await sentinelMasters().catch((err) => err.message))}`,
      `faultproxy:\n${await faults.describeProxies()}`,
    ].join('\n'),
    'text/plain',
  );
});
