import type { NextFunction, Request, Response } from 'express';
import type { Context } from '../../context.js';
import { ApiError } from '../../errors.js';
import { hashSecret } from '../../ids.js';
import type { KeyRing } from '../../key-ring.js';

const TTL_MS = 24 * 3_600_000;

/**
 * `Idempotency-Key` on POST (Stripe-style). The first request with a key runs and its response
 * (status and body, 4xx included) is stored; a retry with the same key and the same body receives
 * that response again (`Idempotent-Replayed: true`) without running twice; the same key with a
 * different body, or while the first is still running, is a 409. A 5xx is not stored, so the
 * request can be retried. Keys live 24 hours.
 *
 * The stored response is encrypted with the key ring: responses carry secrets shown once (SCIM
 * tokens, session and refresh tokens, webhook secrets, API keys), and a retry after a lost response
 * must still receive them, or the client could only rotate what it just created. The key is also
 * scoped to the caller (`principalId`): one API key never replays another's response.
 */
export function idempotency(ctx: Context, keyRing: KeyRing, principalId: (req: Request) => string) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const key = req.headers['idempotency-key'];
    if (req.method !== 'POST' || key === undefined) {
      next();
      return;
    }
    if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
      throw new ApiError(400, 'validation_failed', 'Idempotency-Key: must be 1 to 200 characters', {
        details: [{ path: 'Idempotency-Key', code: 'invalid', message: 'must be 1 to 200 characters' }],
      });
    }
    const keyHash = hashSecret(`${principalId(req)} ${req.method} ${req.baseUrl}${req.path} ${key}`);
    const requestHash = hashSecret(JSON.stringify(req.body ?? null));
    const now = ctx.now();
    // An expired key is free again (the purge job may not have run yet).
    await ctx.db
      .deleteFrom('idempotency_keys')
      .where('key_hash', '=', keyHash)
      .where('expires_at', '<', now)
      .execute();
    const claimed = await ctx.db
      .insertInto('idempotency_keys')
      .values({ key_hash: keyHash, request_hash: requestHash, expires_at: new Date(now.getTime() + TTL_MS) })
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .returning('key_hash')
      .executeTakeFirst();
    if (!claimed) {
      const row = await ctx.db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('key_hash', '=', keyHash)
        .executeTakeFirst();
      if (!row)
        throw new ApiError(
          409,
          'idempotency_in_progress',
          'A request with this Idempotency-Key is in progress; retry.',
        );
      if (row.request_hash !== requestHash) {
        throw new ApiError(
          409,
          'idempotency_key_reused',
          'This Idempotency-Key was used with a different request body.',
        );
      }
      if (row.status === null) {
        throw new ApiError(
          409,
          'idempotency_in_progress',
          'A request with this Idempotency-Key is in progress; retry.',
          {
            headers: { 'Retry-After': '1' },
          },
        );
      }
      res.status(row.status).set('Idempotent-Replayed', 'true');
      if (row.response === null) res.end();
      else res.type('application/json').send(keyRing.decrypt(row.response));
      return;
    }

    let stored = false;
    const store = (status: number, text: string | undefined) => {
      stored = true;
      return status >= 500
        ? ctx.db.deleteFrom('idempotency_keys').where('key_hash', '=', keyHash).execute()
        : ctx.db
            .updateTable('idempotency_keys')
            .set({ status, response: text === undefined ? null : keyRing.encrypt(text) })
            .where('key_hash', '=', keyHash)
            .execute();
    };
    // Store a response body before it is sent (res.json goes through res.send too), so that a
    // retry never finds the key still in progress.
    const send = res.send.bind(res);
    res.send = (body?: unknown) => {
      if (stored) return send(body);
      const text =
        typeof body === 'string'
          ? body
          : Buffer.isBuffer(body)
            ? body.toString('utf8')
            : JSON.stringify(body);
      store(res.statusCode, text).then(
        () => send(body),
        (error: unknown) => {
          req.log.warn({ err: error }, 'could not store the idempotent response');
          send(body);
        },
      );
      return res;
    };
    // Responses without a body (204) are stored when they finish.
    res.once('finish', () => {
      if (stored) return;
      store(res.statusCode, undefined).catch((error: unknown) =>
        req.log.warn({ err: error }, 'could not store the idempotent response'),
      );
    });
    // The client went away before a response: the request may still complete, so the key stays
    // claimed, but only for a minute instead of a day, after which a retry may run.
    res.once('close', () => {
      if (stored || res.writableFinished) return;
      ctx.db
        .updateTable('idempotency_keys')
        .set({ expires_at: new Date(ctx.now().getTime() + 60_000) })
        .where('key_hash', '=', keyHash)
        .where('status', 'is', null)
        .execute()
        .catch((error: unknown) => req.log.warn({ err: error }, 'could not release the idempotency key'));
    });
    next();
  };
}
