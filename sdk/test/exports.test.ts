import { expect, it } from 'vitest';
import * as sdk from '../src/index.js';

// The public runtime surface of `@roster/sdk`: a change here is a change for every user.
it('exports exactly these values', () => {
  expect(Object.keys(sdk).sort()).toEqual([
    'PagePromise',
    'RosterError',
    'RosterWebhookError',
    'createEventConsumer',
    'createRoster',
    'verifyWebhook',
  ]);
});
