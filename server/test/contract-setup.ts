import { afterAll, expect } from 'vitest';
import { validateRecorded } from './contract.js';

// Every /v1 response a test file produced through the harness conforms to openapi/roster.yaml.
afterAll(() => {
  const { problems } = validateRecorded();
  expect(problems, 'responses that do not match openapi/roster.yaml').toEqual([]);
});
