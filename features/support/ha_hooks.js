// The hooks of the @ha scenarios (world.js's hooks skip them): before each, the HA stack is made
// whole and healthy again (support/ha.js, makeWhole); after a failure, what the stack looked like.
import { After, Before } from '@cucumber/cucumber';

import * as faults from './faults.js';
import { dev, ha, makeWhole, sentinelMasters } from './ha.js';
import { describe, readiness, settings } from './service.js';

Before({ tags: '@ha' }, async function () {
  this.ha = ha;
  await makeWhole();
  this.settings = await settings();
});

After({ tags: '@ha' }, async function ({ result }) {
  if (result?.status !== 'FAILED') return;
  const status = await dev('status').catch((err) => err.message);
  const ready = [];
  for (const i of ha.instances) ready.push(`${i.name}: ${await readiness(i.url).then((r) => describe(r.answer)).catch((err) => err.message)}`);
  this.attach(
    [
      'answers in this scenario:',
      ...this.answers.map((a) => `  ${describe(a)}`),
      `./dev status:\n${status}`,
      `sentinels: ${JSON.stringify(await sentinelMasters().catch((err) => err.message))}`,
      ...ready,
      `faultproxy:\n${await faults.describeProxies()}`,
    ].join('\n'),
    'text/plain',
  );
});
