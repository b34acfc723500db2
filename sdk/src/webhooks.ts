import type { Event } from './events.js';

/** Why a webhook delivery was not accepted. */
export class RosterWebhookError extends Error {
  override readonly name = 'RosterWebhookError';
  readonly reason:
    | 'missing_signature'
    | 'malformed_signature'
    | 'timestamp_out_of_tolerance'
    | 'signature_mismatch'
    | 'invalid_payload';

  constructor(reason: RosterWebhookError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

function hexToBytes(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[0-9a-f]{64}$/i.test(hex)) return undefined;
  const bytes = new Uint8Array(new ArrayBuffer(32));
  for (let i = 0; i < 32; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

export interface VerifyWebhookOptions {
  /** How old a delivery may be, in seconds (default 300): replayed old requests are refused. */
  toleranceSeconds?: number;
  /** Unix seconds now (tests). */
  now?: number;
}

/**
 * Verifies a Roster webhook delivery and returns its event. Pass the raw body exactly as received
 * (a string or bytes): a body parsed and re-serialised will not verify, by design. Uses Web Crypto,
 * so it runs in Node 20+, edge runtimes, Bun and Deno; the comparison is constant-time.
 *
 * @example
 * ```ts
 * // Express: app.post('/webhooks/roster', express.raw({ type: 'application/json' }), async (req, res) => {
 * const event = await verifyWebhook(req.body, req.headers, process.env.ROSTER_WEBHOOK_SECRET!);
 * if (event.type === 'user.deactivated') await signOut(event.data.id as string);
 * res.sendStatus(204);
 * ```
 * @throws RosterWebhookError
 */
export async function verifyWebhook(
  payload: string | Uint8Array | ArrayBuffer,
  headers: HeaderSource,
  secret: string,
  options: VerifyWebhookOptions = {},
): Promise<Event> {
  const signature = header(headers, 'roster-signature');
  if (!signature) throw new RosterWebhookError('missing_signature', 'No Roster-Signature header');
  const parts = Object.fromEntries(
    signature.split(',').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()];
    }),
  );
  const timestamp = Number(parts.t);
  const expected = parts.v1 ? hexToBytes(parts.v1) : undefined;
  if (!Number.isInteger(timestamp) || !expected) {
    throw new RosterWebhookError('malformed_signature', 'Roster-Signature must be t=<unix seconds>,v1=<hex>');
  }
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) {
    throw new RosterWebhookError(
      'timestamp_out_of_tolerance',
      'The delivery is too old (or the clocks disagree)',
    );
  }
  const body =
    typeof payload === 'string'
      ? new TextEncoder().encode(payload)
      : payload instanceof Uint8Array
        ? payload
        : new Uint8Array(payload);
  const prefix = new TextEncoder().encode(`${timestamp}.`);
  const signed = new Uint8Array(new ArrayBuffer(prefix.length + body.length));
  signed.set(prefix);
  signed.set(body, prefix.length);
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  );
  if (!(await crypto.subtle.verify('HMAC', key, expected, signed))) {
    throw new RosterWebhookError('signature_mismatch', 'The signature does not match this secret and body');
  }
  try {
    return JSON.parse(new TextDecoder().decode(body)) as Event;
  } catch {
    throw new RosterWebhookError('invalid_payload', 'The body is not JSON');
  }
}
