// Assertions whose message is the whole story (cucumber shows a bare diff for node:assert's
// equality errors, losing the message that says what the service did).
import { isDeepStrictEqual } from 'node:util';

export class CatalogError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ScenarioFailed';
  }
}

export function that(condition, message) {
  if (!condition) throw new CatalogError(typeof message === 'function' ? message() : message);
}

export function equal(actual, expected, message) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new CatalogError(`${message}\n  expected: ${JSON.stringify(expected)}\n  actual:   ${JSON.stringify(actual)}`);
  }
}
