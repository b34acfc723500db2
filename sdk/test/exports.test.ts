import { expect, it } from 'vitest';
import * as express from '../src/express.js';
import * as sdk from '../src/index.js';

// The public runtime surface of each entry point: a change here is a change for every user.
it('@roster/sdk exports exactly these values', () => {
  expect(Object.keys(sdk).sort()).toEqual([
    'PagePromise',
    'RosterError',
    'RosterWebhookError',
    'createEventConsumer',
    'createRevocationList',
    'createRoster',
    'createSessionVerifier',
    'snapshotDigest',
    'verifySession',
    'verifyWebhook',
  ]);
});

it('@roster/sdk/express exports exactly these values', () => {
  expect(Object.keys(express).sort()).toEqual([
    'clearSessionCookies',
    'createNodeSessionVerifier',
    'createRevocationList',
    'hasPermission',
    'requirePermission',
    'requireSession',
    'setSessionCookies',
    'withSession',
  ]);
});
