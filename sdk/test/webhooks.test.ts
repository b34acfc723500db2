import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RosterWebhookError, verifyWebhook } from '../src/index.js';

const secret = 'whsec_test_secret';
const body = JSON.stringify({
  object: 'event',
  id: 'evt_1',
  type: 'user.deactivated',
  data: { id: 'user_1' },
});
const sign = (t: number, payload = body, key = secret) =>
  `t=${t},v1=${createHmac('sha256', key).update(`${t}.${payload}`).digest('hex')}`;
const now = 1_800_000_000;

describe('verifyWebhook', () => {
  it('accepts the exact body, as a string, bytes or with a Headers object', async () => {
    const headers = { 'Roster-Signature': sign(now) };
    expect((await verifyWebhook(body, headers, secret, { now })).id).toBe('evt_1');
    expect((await verifyWebhook(new TextEncoder().encode(body), headers, secret, { now })).type).toBe(
      'user.deactivated',
    );
    expect(
      (await verifyWebhook(body, new Headers({ 'roster-signature': sign(now) }), secret, { now })).id,
    ).toBe('evt_1');
  });

  it.each([
    [
      'a re-serialised body',
      () =>
        verifyWebhook(JSON.stringify(JSON.parse(body), null, 2), { 'roster-signature': sign(now) }, secret, {
          now,
        }),
      'signature_mismatch',
    ],
    [
      'another secret',
      () => verifyWebhook(body, { 'roster-signature': sign(now, body, 'whsec_other') }, secret, { now }),
      'signature_mismatch',
    ],
    [
      'an old delivery',
      () => verifyWebhook(body, { 'roster-signature': sign(now - 301) }, secret, { now }),
      'timestamp_out_of_tolerance',
    ],
    ['no signature', () => verifyWebhook(body, {}, secret, { now }), 'missing_signature'],
    [
      'a malformed signature',
      () => verifyWebhook(body, { 'roster-signature': 'v1=abc' }, secret, { now }),
      'malformed_signature',
    ],
  ])('rejects %s', async (_, call, reason) => {
    const error = await call().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterWebhookError);
    expect((error as RosterWebhookError).reason).toBe(reason);
  });
});
