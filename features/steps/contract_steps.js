// Steps of contract.feature: the OpenAPI contract linted, and the service's answers validated
// against it (features/tools/contract-check.mjs does both).
import { Then, When } from '@cucumber/cucumber';

import * as assert from '../support/check.js';
import * as faults from '../support/faults.js';
import { stack } from '../support/stack.js';
import { checkContract, lintContract } from '../tools/contract-check.mjs';

When('docs\\/openapi.yaml is linted by Spectral \\(spectral:oas) and Redocly \\(recommended)', { timeout: 120_000 }, async function () {
  this.contractProblems = await lintContract();
});

Then('neither linter reports a problem', function () {
  assert.that(this.contractProblems.length === 0, this.contractProblems.join('\n\n'));
});

async function check(world, options) {
  const { problems, covered } = await checkContract({ serviceUrl: stack.userServiceUrl, adminUrl: stack.adminUrl, ...options });
  world.contractProblems = problems;
  world.attach(`method/status pairs provoked: ${covered.join(', ')}`, 'text/plain');
}

When("requests provoking every documented status are sent through Prism's validation proxy", { timeout: 120_000 }, async function () {
  await check(this, { part: 'statuses', setEnabled: (proxy, enabled) => faults.setEnabled(proxy, enabled, this) });
});

When("requests with a spent or an invalid X-Request-Timeout-Ms are sent through Prism's validation proxy", { timeout: 120_000 }, async function () {
  await check(this, { part: 'budget' });
});

Then('every answer has its expected status and matches the contract', function () {
  assert.that(this.contractProblems.length === 0, this.contractProblems.join('\n'));
});
